import {
  ApiException,
  AppsV1Api,
  CoordinationV1Api,
  CoreV1Api,
  KubeConfig,
  Observable,
  type ConfigurationOptions,
  type RequestContext,
  type ResponseContext,
} from '@kubernetes/client-node';
import { existsSync } from 'node:fs';
import { isIPv6 } from 'node:net';
import { delimiter, join } from 'node:path';
import { ShoalError, errorMessage } from '../../shared/errors.js';

/** The API clients the agent's adapters use, bound to one namespace. */
export interface KubeClients {
  readonly kc: KubeConfig;
  readonly namespace: string;
  readonly core: CoreV1Api;
  readonly apps: AppsV1Api;
  readonly coordination: CoordinationV1Api;
}

/** Where a pod's service account credentials are mounted. */
export const SERVICE_ACCOUNT_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

/**
 * In-cluster config when KUBERNETES_SERVICE_HOST is set (the agent in a pod), otherwise KUBECONFIG or
 * ~/.kube/config (an agent or a test outside a cluster).
 */
export function loadKubeConfig(env: NodeJS.ProcessEnv = process.env, serviceAccountDir = SERVICE_ACCOUNT_DIR): KubeConfig {
  const kc = new KubeConfig();
  try {
    const host = env.KUBERNETES_SERVICE_HOST;
    if (host) {
      const tokenFile = join(serviceAccountDir, 'token');
      if (!existsSync(tokenFile)) {
        throw new ShoalError(
          `KUBERNETES_SERVICE_HOST is set but there is no service account token at ${tokenFile}`,
          'mount the pod\'s service account token (automountServiceAccountToken: true), or unset KUBERNETES_SERVICE_HOST and set KUBECONFIG',
        );
      }
      const server = `https://${isIPv6(host) ? `[${host}]` : host}:${env.KUBERNETES_SERVICE_PORT ?? '443'}`;
      kc.loadFromOptions({
        clusters: [{ name: 'in-cluster', server, caFile: join(serviceAccountDir, 'ca.crt'), skipTLSVerify: false }],
        // tokenFile re-reads the token, so rotated service account tokens keep working.
        users: [{ name: 'service-account', authProvider: { name: 'tokenFile', config: { tokenFile } } }],
        contexts: [{ name: 'in-cluster', cluster: 'in-cluster', user: 'service-account' }],
        currentContext: 'in-cluster',
      });
    } else if (env.KUBECONFIG) {
      const file = env.KUBECONFIG.split(delimiter).find((f) => f && existsSync(f));
      if (!file) throw new ShoalError(`KUBECONFIG names no readable file (${env.KUBECONFIG})`, 'point KUBECONFIG at an existing kubeconfig');
      kc.loadFromFile(file);
    } else {
      kc.loadFromDefault();
    }
  } catch (err) {
    if (err instanceof ShoalError) throw err;
    throw new ShoalError(`cannot load a Kubernetes client configuration: ${errorMessage(err)}`, 'run inside a pod with a service account, or set KUBECONFIG to a readable kubeconfig', {
      cause: err,
    });
  }
  if (!kc.getCurrentCluster()) {
    throw new ShoalError('the Kubernetes client configuration names no current cluster', 'set current-context in the kubeconfig');
  }
  return kc;
}

export function createKubeClients(kc: KubeConfig, namespace: string): KubeClients {
  return {
    kc,
    namespace,
    core: kc.makeApiClient(CoreV1Api),
    apps: kc.makeApiClient(AppsV1Api),
    coordination: kc.makeApiClient(CoordinationV1Api),
  };
}

/** Default bound on one API request: longer than any sane API server latency, short enough to retry. */
export const DEFAULT_REQUEST_TIMEOUT_MS = 10_000;

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

// Hints for the codes a human can act on; the rest are transient and retried by the callers.
const HINTS: Record<number, string> = {
  401: 'the agent\'s credentials were rejected: check the service account token or the kubeconfig user',
  403: 'grant the agent\'s service account this verb on this resource (see manifests/ RBAC)',
  422: 'the object was rejected by validation: this is a Shoal bug, please report it with this message',
};

/** Turns whatever an API call threw into a KubeApiError (ApiException bodies are raw JSON strings). */
export function toKubeError(what: string, err: unknown): KubeApiError {
  if (err instanceof KubeApiError) return err;
  if (err instanceof ApiException) {
    const code = typeof err.code === 'number' ? err.code : 0;
    let reason = code ? `HTTP${code}` : 'Unknown';
    let detail = '';
    const status = parseStatusBody(err.body);
    if (status) {
      if (status.reason) reason = status.reason;
      if (status.message) detail = status.message;
    }
    return new KubeApiError(what, code, reason, detail, HINTS[code], { cause: err });
  }
  const name = err instanceof Error ? err.name : '';
  if (name === 'AbortError' || name === 'TimeoutError') {
    return new KubeApiError(what, 0, 'Timeout', 'the request was aborted or timed out', 'check that the API server is reachable', { cause: err });
  }
  return new KubeApiError(what, 0, 'Unreachable', errorMessage(err), 'check that the API server is reachable from this pod', { cause: err });
}

function parseStatusBody(body: unknown): { reason?: string; message?: string } | null {
  let value: unknown = body;
  if (typeof body === 'string') {
    try {
      value = JSON.parse(body);
    } catch {
      return body ? { message: body.slice(0, 300) } : null;
    }
  }
  if (typeof value !== 'object' || value === null) return null;
  const rec = value as Record<string, unknown>;
  return {
    ...(typeof rec.reason === 'string' ? { reason: rec.reason } : {}),
    ...(typeof rec.message === 'string' ? { message: rec.message } : {}),
  };
}

export interface CallOptions {
  signal?: AbortSignal;
  timeoutMs?: number;
  /** Extra configuration (e.g. setHeaderOptions for a merge patch); the abort middleware is appended. */
  configuration?: ConfigurationOptions;
}

/**
 * Runs one API request bounded by `timeoutMs` and cancellable by `signal`, and turns failures into
 * KubeApiError. The caller's abort is rethrown as its own reason, so loops can tell "stop" from "failed".
 */
export async function kubeCall<T>(
  what: string,
  request: (options: ConfigurationOptions) => Promise<T>,
  opts: CallOptions = {},
): Promise<T> {
  opts.signal?.throwIfAborted();
  // AbortSignal.timeout throws on a fractional delay (callers derive bounds from performance.now()).
  const timeout = AbortSignal.timeout(Math.max(1, Math.ceil(opts.timeoutMs ?? DEFAULT_REQUEST_TIMEOUT_MS)));
  const signal = opts.signal ? AbortSignal.any([opts.signal, timeout]) : timeout;
  const abortMiddleware = {
    pre: (ctx: RequestContext): Observable<RequestContext> => {
      ctx.setSignal(signal);
      return new Observable(Promise.resolve(ctx));
    },
    post: (ctx: ResponseContext): Observable<ResponseContext> => new Observable(Promise.resolve(ctx)),
  };
  const base = opts.configuration ?? {};
  const options: ConfigurationOptions = {
    ...base,
    middleware: [...(base.middleware ?? []), abortMiddleware],
    middlewareMergeStrategy: 'append',
  };
  try {
    return await request(options);
  } catch (err) {
    if (opts.signal?.aborted) throw opts.signal.reason;
    throw toKubeError(what, err);
  }
}
