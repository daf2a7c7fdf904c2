import { UserError } from '../common/errors';

/** A problem with what the user asked or gave: printed as one line, exit code 2, no stack. */
export class CliError extends UserError {
  override readonly name = 'CliError';
}

export const EXIT_OK = 0;
export const EXIT_FAILURE = 1;
export const EXIT_BAD_INPUT = 2;
