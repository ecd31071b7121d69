// Typed-enough API calls with bounded cancellation: every call takes the caller's AbortSignal and a
// time budget, and fails as a KubeApiError. The caller's abort is rethrown as its own reason, so
// loops can tell "stop" from "failed".
import type { IncomingMessage } from 'node:http';
import { abortAfter, linkedAbort } from '../abort.js';
import type { KubeTarget } from './target.js';
import { statusError, transportError } from './errors.js';
import { readBody, Transport, type HttpCall } from './transport.js';

/** Default bound on one API request: longer than any sane API server latency, short enough to retry. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

/** How long a call may take and who may stop it. */
export interface Bound {
  signal?: AbortSignal;
  timeoutMs?: number;
}

class RequestTimeout extends Error {
  override name = 'TimeoutError';
}

/**
 * Runs `op` under one signal that follows the caller's and fires after `timeoutMs`: the one place
 * a caller's signal and a time budget are combined (a held timer, not AbortSignal.timeout under
 * AbortSignal.any, which Node 20 may collect early and otherwise leaks per call).
 */
export async function withBound<T>(what: string, bound: Bound, op: (signal: AbortSignal) => Promise<T>): Promise<T> {
  bound.signal?.throwIfAborted();
  // A fractional budget (derived from performance.now()) is rounded up, never to 0.
  const ms = Math.max(1, Math.ceil(bound.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS));
  const link = abortAfter(ms, () => new RequestTimeout(`${what}: no answer within ${ms} ms`), bound.signal);
  try {
    return await op(link.signal);
  } catch (err) {
    if (bound.signal?.aborted) throw bound.signal.reason;
    throw transportError(what, link.signal.aborted ? link.signal.reason : err);
  } finally {
    link.unlink();
  }
}

export class KubeClient {
  private readonly transport: Transport;

  constructor(readonly target: KubeTarget) {
    this.transport = new Transport(target);
  }

  /** One request; the parsed JSON body on 2xx, else a KubeApiError. */
  request<T>(what: string, call: HttpCall, bound: Bound = {}): Promise<T> {
    return withBound(what, bound, async (signal) => {
      const res = await this.transport.send(call, signal);
      const text = await readBody(res);
      const code = res.statusCode ?? 0;
      if (code < 200 || code > 299) throw statusError(what, code, text);
      return (text ? JSON.parse(text) : {}) as T;
    });
  }

  /**
   * A long-lived response (a watch): only the wait for its headers is bounded by `timeoutMs`; the
   * body then streams until `signal` aborts or the server ends it. Non-2xx answers reject.
   */
  async stream(what: string, call: HttpCall, signal: AbortSignal, timeoutMs = DEFAULT_REQUEST_TIMEOUT_MS): Promise<IncomingMessage> {
    // The request follows `signal` for its whole life; the header budget aborts it only while waiting.
    const link = linkedAbort(signal);
    let res: IncomingMessage;
    try {
      res = await withBound(what, { signal, timeoutMs }, (headers) => {
        const onLate = (): void => link.controller.abort(headers.reason);
        headers.addEventListener('abort', onLate, { once: true });
        return this.transport.send(call, link.signal).finally(() => headers.removeEventListener('abort', onLate));
      });
    } catch (err) {
      link.unlink();
      throw err;
    }
    res.once('close', () => link.unlink());
    const code = res.statusCode ?? 0;
    if (code < 200 || code > 299) {
      const text = await readBody(res).catch(() => '');
      throw statusError(what, code, text);
    }
    return res;
  }

  /** Closes idle connections (a CLI that wants to exit at once). */
  close(): void {
    this.transport.close();
  }
}
