// An error that carries context and, where one exists, the fix a human should apply.
export class ShoalError extends Error {
  constructor(
    message: string,
    readonly hint?: string,
    options?: { cause?: unknown },
  ) {
    super(hint ? `${message} (fix: ${hint})` : message, options);
    this.name = 'ShoalError';
  }
}

/** The message of anything thrown, for logs and replies. */
export function errorMessage(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
