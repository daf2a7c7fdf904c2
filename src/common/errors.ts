/**
 * Failures the user can act on: bad input, a missing file, a model folder that is not one. Each
 * module's own error class extends UserError, so the CLI's choice between "one line, exit 2" and
 * "unexpected failure" is one `instanceof`, and the extension shows the message as it is.
 */
export class UserError extends Error {
  override readonly name: string = 'UserError';
  constructor(
    message: string,
    /** What a library said, for the log rather than the user (a decoder's own words). */
    readonly detail?: string,
  ) {
    super(message);
  }
}

/** The technical detail an error carries for the log, if any. */
export function detailOf(e: unknown): string | undefined {
  const d = (e as { detail?: unknown } | null)?.detail;
  return typeof d === 'string' && d ? d : undefined;
}

/** The message of anything thrown. */
export function messageOf(e: unknown): string {
  return e instanceof Error ? e.message : String(e);
}
