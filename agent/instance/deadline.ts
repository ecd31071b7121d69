// Bounded operations: one AbortSignal that fires at the operation's deadline (with a typed reason)
// or when the caller aborts, and an abortable sleep for polling loops.
import { setTimeout as sleep } from 'node:timers/promises';
import { abortAfter } from '../../common/abort.js';
import { InstanceTimeoutError } from './errors.js';

export interface Bounded {
  timeoutMs?: number;
  signal?: AbortSignal;
}

export interface Deadline {
  signal: AbortSignal;
  /** ms left before the deadline (at least 1). */
  remaining(): number;
  done(): void;
}

export function deadline(operation: string, o: Bounded, defaultMs: number): Deadline {
  const ms = o.timeoutMs ?? defaultMs;
  const end = Date.now() + ms;
  const link = abortAfter(ms, () => new InstanceTimeoutError(operation, ms), o.signal);
  return {
    signal: link.signal,
    remaining: () => Math.max(1, end - Date.now()),
    done: link.unlink,
  };
}

/** Sleeps `ms`; rejects with signal.reason when aborted. */
export async function pause(ms: number, signal: AbortSignal): Promise<void> {
  try {
    await sleep(ms, undefined, { signal });
  } catch {
    signal.throwIfAborted();
  }
}
