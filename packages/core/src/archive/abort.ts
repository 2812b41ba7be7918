/**
 * Cancellation: the error an aborted archive operation rejects with, shaped like Node's own
 * (`name: 'AbortError'`, `code: 'ABORT_ERR'`, the signal's reason as `cause`), since Node 20 has
 * no public AbortError class.
 */

export class AbortError extends Error {
  readonly code = 'ABORT_ERR';
  constructor(message = 'The operation was aborted', options?: { cause?: unknown }) {
    super(message, options);
  }
  override get name(): string {
    return 'AbortError';
  }
}

export function abortErrorFrom(signal: AbortSignal): AbortError {
  return new AbortError('The operation was aborted', { cause: signal.reason });
}

/** Throws the AbortError when `signal` is already aborted. */
export function throwIfAborted(signal: AbortSignal | undefined): void {
  if (signal?.aborted === true) throw abortErrorFrom(signal);
}
