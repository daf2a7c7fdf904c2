/**
 * Failures the user can act on: bad input, a missing file, a model folder that is not one. Each
 * module's own error class extends UserError, so the CLI's choice between "one line, exit 2" and
 * "unexpected failure" is one `instanceof`, and the extension shows the message as it is.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
}

/** The message of anything thrown. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
