// What a failed API request looks like to callers: one error type with the HTTP code and the
// Status `reason`, and the predicates the retry loops branch on.
import { ShoalError, errorMessage } from '../errors.js';
import { isRecord } from '../json.js';

/** A failed API request, with the HTTP code and the Status `reason` (Conflict, AlreadyExists, NotFound, …). */
export class KubeApiError extends ShoalError {
  constructor(
    readonly what: string,
    readonly code: number,
    readonly reason: string,
    readonly detail: string,
    hint?: string,
    options?: { cause?: unknown },
  ) {
    super(`${what}: ${code ? `HTTP ${code} ` : ''}${reason}${detail ? `: ${detail}` : ''}`, hint, options);
    this.name = 'KubeApiError';
  }
}

export const isConflict = (err: unknown): boolean => err instanceof KubeApiError && err.code === 409 && err.reason !== 'AlreadyExists';
export const isAlreadyExists = (err: unknown): boolean => err instanceof KubeApiError && err.code === 409 && err.reason === 'AlreadyExists';
export const isNotFound = (err: unknown): boolean => err instanceof KubeApiError && err.code === 404;
/**
 * The HTTP status an API error carries, or undefined when no answer came (refused, reset, timed
 * out) or `err` is something else. Reads any numeric `code`, so test doubles (and client-node's
 * ApiException, which tests may still meet) answer too.
 */
export function apiStatus(err: unknown): number | undefined {
  const code = (err as { code?: unknown } | null)?.code;
  return typeof code === 'number' && code > 0 ? code : undefined;
}

/** No answer from the API server at all (refused, reset, timeout): it is down or unreachable. */
export const isUnreachable = (err: unknown): boolean => apiStatus(err) === undefined;

// Hints for the codes a human can act on; the rest are transient and retried by the callers.
const HINTS: Record<number, string> = {
  401: 'the agent\'s credentials were rejected: check the service account token or the kubeconfig user',
  403: 'grant the agent\'s service account this verb on this resource (see manifests/ RBAC)',
  422: 'the object was rejected by validation: this is a Shoal bug, please report it with this message',
};

/** An HTTP answer that is not 2xx → KubeApiError, reading the Status body when there is one. */
export function statusError(what: string, code: number, body: string): KubeApiError {
  let reason = code ? `HTTP${code}` : 'Unknown';
  let detail = '';
  const status = parseStatusBody(body);
  if (status) {
    if (status.reason) reason = status.reason;
    if (status.message) detail = status.message;
  }
  return new KubeApiError(what, code, reason, detail, HINTS[code]);
}

/** A request that got no answer → KubeApiError (Timeout when it was aborted by its time budget). */
export function transportError(what: string, err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  const name = err instanceof Error ? err.name : '';
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new KubeApiError(what, 0, 'Timeout', 'the request was aborted or timed out', 'check that the API server is reachable', { cause: err });
  }
  return new KubeApiError(what, 0, 'Unreachable', errorMessage(err), 'check that the API server is reachable from this pod', { cause: err });
}

function parseStatusBody(body: string): { reason?: string; message?: string } | null {
  let value: unknown;
  try {
    value = JSON.parse(body);
  } catch {
    return body ? { message: body.slice(0, 300) } : null;
  }
  if (!isRecord(value)) return null;
  return {
    ...(typeof value['reason'] === 'string' ? { reason: value['reason'] } : {}),
    ...(typeof value['message'] === 'string' ? { message: value['message'] } : {}),
  };
}
