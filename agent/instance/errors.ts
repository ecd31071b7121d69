import { ShoalError } from '../../common/errors.js';

/** An instance operation failed for a reason the agent understands (wrong phase, box.cfg refused…). */
export class InstanceError extends ShoalError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, hint, options);
    this.name = 'InstanceError';
  }
}

/** An instance operation (bootstrap, promote, wait for a vclock…) did not finish within its bound. */
export class InstanceTimeoutError extends ShoalError {
  constructor(
    readonly operation: string,
    readonly timeoutMs: number,
    detail?: string,
  ) {
    super(`${operation} did not finish within ${timeoutMs} ms${detail ? ` (${detail})` : ''}`);
    this.name = 'InstanceTimeoutError';
  }
}
