// The pure part of the kubelet's streaming endpoints (what `kubectl exec` and `kubectl
// port-forward` reach through the API server): which endpoint a path names, who may call it, the
// exec options in the query, sub-protocol negotiation, how port-forward streams pair up, and the
// status an exec reports. Facts from Kubernetes v1.20 (pkg/kubelet/cri/streaming and
// apimachinery's httpstream); the I/O lives in server.ts, spdy.ts, exec.ts and portforward.ts.

/** SPDY sub-protocols (X-Stream-Protocol-Version) the kubelet accepts, in its order of preference. */
export const PORT_FORWARD_PROTOCOLS = ['portforward.k8s.io'] as const;
/** v4 is the first that reports the exit code as a JSON Status; kubectl 1.20 and later offer it. */
export const EXEC_PROTOCOLS = ['v4.channel.k8s.io'] as const;

export type KubeletRoute =
  | { kind: 'healthz' }
  | { kind: 'containerLogs'; namespace: string; pod: string; container: string }
  | { kind: 'exec'; namespace: string; pod: string; container: string }
  | { kind: 'attach'; namespace: string; pod: string; container: string }
  | { kind: 'portForward'; namespace: string; pod: string }
  | { kind: 'unknown' };

/**
 * The endpoint a request path names. The API server sends /exec/<ns>/<pod>/<container> and
 * /portForward/<ns>/<pod>; the kubelet also takes the forms with the pod's uid before the container.
 */
export function parseKubeletPath(pathname: string): KubeletRoute {
  if (pathname === '/healthz') return { kind: 'healthz' };
  const parts = pathname.split('/').slice(1);
  let seg: string[];
  try {
    seg = parts.map((p) => decodeURIComponent(p));
  } catch {
    return { kind: 'unknown' };
  }
  if (seg.some((s) => s === '')) return { kind: 'unknown' };
  const [head, namespace, pod] = seg as [string, string, string];
  const n = seg.length;
  if (head === 'containerLogs' && n === 4) return { kind: 'containerLogs', namespace, pod, container: seg[3]! };
  if ((head === 'exec' || head === 'attach') && (n === 4 || n === 5)) return { kind: head, namespace, pod, container: seg[n - 1]! };
  if (head === 'portForward' && (n === 3 || n === 4)) return { kind: 'portForward', namespace, pod };
  return { kind: 'unknown' };
}

// ---------------------------------------------------------------------------------------------
// Who may call

export interface PeerCertificate {
  /** The TLS layer verified the client's certificate against the cluster CA. */
  authorized: boolean;
  /** Why it did not (Node's authorizationError), or that there was no certificate. */
  authorizationError?: string;
  /** The certificate's subject CN (the Kubernetes user name), when one was presented. */
  commonName?: string;
}

export type AuthDecision = { ok: true; user: string } | { ok: false; status: 401 | 403; message: string };

/**
 * Like the kubelet with anonymous auth off and webhook authorization: a client certificate signed
 * by the cluster CA authenticates its CN; only the listed users (the API server's kubelet client)
 * are authorized.
 */
export function authorizeClient(peer: PeerCertificate, users: readonly string[]): AuthDecision {
  if (!peer.authorized || !peer.commonName) {
    const why = peer.commonName ? (peer.authorizationError ?? 'not signed by the cluster CA') : 'no client certificate';
    return { ok: false, status: 401, message: `Unauthorized: ${why}` };
  }
  if (!users.includes(peer.commonName)) {
    return { ok: false, status: 403, message: `Forbidden (user=${peer.commonName}): only ${users.join(', ')} may use the kubelet API` };
  }
  return { ok: true, user: peer.commonName };
}

// ---------------------------------------------------------------------------------------------
// Upgrades and sub-protocols

export type Headers = Record<string, string | string[] | undefined>;

/** A header's values (case-insensitive name; repeated headers and comma-separated lists flattened). */
export function headerValues(headers: Headers, name: string): string[] {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const raw = key === undefined ? undefined : headers[key];
  const list = raw === undefined ? [] : Array.isArray(raw) ? raw : [raw];
  return list.flatMap((v) => v.split(',')).map((v) => v.trim()).filter((v) => v !== '');
}

/** First value of a header, or undefined. */
export function header(headers: Headers, name: string): string | undefined {
  const key = Object.keys(headers).find((k) => k.toLowerCase() === name.toLowerCase());
  const raw = key === undefined ? undefined : headers[key];
  return Array.isArray(raw) ? raw[0] : raw;
}

export type UpgradeKind = 'spdy' | 'websocket' | 'other' | 'none';

/** What a request asks to upgrade to: the kubelet speaks SPDY/3.1 only. */
export function upgradeKind(headers: Headers): UpgradeKind {
  const connection = headerValues(headers, 'connection').map((v) => v.toLowerCase());
  if (!connection.includes('upgrade')) return 'none';
  const upgrade = headerValues(headers, 'upgrade').map((v) => v.toLowerCase());
  if (upgrade.some((u) => u.includes('spdy/3.1'))) return 'spdy';
  if (upgrade.includes('websocket')) return 'websocket';
  return 'other';
}

export type Negotiation = { ok: true; protocol: string } | { ok: false; status: 400 | 403; message: string };

/**
 * apimachinery's httpstream.Handshake: the client's first X-Stream-Protocol-Version the server
 * accepts wins; none offered is 400, none in common 403 (with X-Accepted-Stream-Protocol-Versions).
 */
export function negotiateProtocol(headers: Headers, supported: readonly string[]): Negotiation {
  const offered = headerValues(headers, 'x-stream-protocol-version');
  if (offered.length === 0) return { ok: false, status: 400, message: 'unable to upgrade: X-Stream-Protocol-Version is required' };
  const chosen = offered.find((p) => supported.includes(p));
  if (chosen === undefined) {
    return {
      ok: false,
      status: 403,
      message: `unable to upgrade: unable to negotiate protocol: client supports [${offered.join(' ')}], server accepts [${supported.join(' ')}]`,
    };
  }
  return { ok: true, protocol: chosen };
}

/** The refusal of a WebSocket upgrade, as a v1.20 kubelet answers the v5 protocols newer clients ask for (they then fall back to SPDY). */
export function websocketRefusal(headers: Headers): string {
  const asked = headerValues(headers, 'sec-websocket-protocol');
  return `requested protocol(s) are not supported: [${asked.join(' ')}]; the process kubelet streams over SPDY/3.1 only`;
}

// ---------------------------------------------------------------------------------------------
// exec

export interface ExecOptions {
  command: string[];
  stdin: boolean;
  stdout: boolean;
  stderr: boolean;
  tty: boolean;
}

export type ExecOptionsResult = { ok: true; options: ExecOptions } | { ok: false; message: string };

/** The query the API server sends: command=… (repeated), input=1, output=1, error=1, tty=1. */
export function parseExecQuery(params: URLSearchParams): ExecOptionsResult {
  const flag = (k: string): boolean => params.get(k) === '1';
  const tty = flag('tty');
  const stdin = flag('input');
  const stdout = flag('output');
  const stderr = flag('error') && !tty; // a terminal has no separate stderr
  const command = params.getAll('command');
  if (!stdin && !stdout && !stderr) return { ok: false, message: 'you must specify at least 1 of stdin, stdout, stderr' };
  if (command.length === 0) return { ok: false, message: 'you must specify a command' };
  return { ok: true, options: { command, stdin, stdout, stderr, tty } };
}

export type ExecStreamType = 'error' | 'stdin' | 'stdout' | 'stderr' | 'resize';

/** The streams a v4 client opens: always the error stream, one per requested std stream, resize with a TTY. */
export function expectedExecStreams(o: ExecOptions): ExecStreamType[] {
  return [
    'error',
    ...(o.stdin ? (['stdin'] as const) : []),
    ...(o.stdout ? (['stdout'] as const) : []),
    ...(o.stderr ? (['stderr'] as const) : []),
    ...(o.tty ? (['resize'] as const) : []),
  ];
}

export function isExecStreamType(t: string | undefined): t is ExecStreamType {
  return t === 'error' || t === 'stdin' || t === 'stdout' || t === 'stderr' || t === 'resize';
}

/** metav1.Status as the v4 protocol writes it on the error stream (field order as Go marshals it). */
export interface ExecStatus {
  metadata: Record<string, never>;
  status: 'Success' | 'Failure';
  message?: string;
  reason?: string;
  details?: { causes: { reason?: string; message: string }[] };
  code?: number;
}

/** What the error stream carries when the command ended: Success, or NonZeroExitCode with the code as a cause. */
export function exitStatus(exitCode: number, command: string[]): ExecStatus {
  if (exitCode === 0) return { metadata: {}, status: 'Success' };
  return {
    metadata: {},
    status: 'Failure',
    message: `command terminated with non-zero exit code: command '${command.join(' ')}' exited with ${exitCode}`,
    reason: 'NonZeroExitCode',
    details: { causes: [{ reason: 'ExitCode', message: String(exitCode) }] },
  };
}

/** What it carries when the command could not be run at all (apierrors.NewInternalError). */
export function internalErrorStatus(message: string): ExecStatus {
  return {
    metadata: {},
    status: 'Failure',
    message: `Internal error occurred: ${message}`,
    reason: 'InternalError',
    details: { causes: [{ message }] },
    code: 500,
  };
}

export interface TerminalSize {
  width: number;
  height: number;
}

/** Terminal sizes from the resize stream: JSON objects {"Width":w,"Height":h} one after another; returns them and the unparsed rest. */
export function parseResizes(buffered: string): { sizes: TerminalSize[]; rest: string } {
  const sizes: TerminalSize[] = [];
  let rest = buffered;
  for (;;) {
    const end = rest.indexOf('}');
    if (end < 0) break;
    const chunk = rest.slice(0, end + 1);
    rest = rest.slice(end + 1);
    try {
      const v = JSON.parse(chunk.slice(chunk.indexOf('{'))) as { Width?: unknown; Height?: unknown };
      if (typeof v.Width === 'number' && typeof v.Height === 'number' && v.Width > 0 && v.Height > 0) {
        sizes.push({ width: v.Width, height: v.Height });
      }
    } catch {
      // not a size: skipped, as the kubelet's decoder would stop on it
    }
  }
  return { sizes, rest };
}

// ---------------------------------------------------------------------------------------------
// port-forward

export interface ForwardStreamInfo {
  requestId: string;
  port: number;
  type: 'data' | 'error';
}

export type ForwardStreamResult = { ok: true; info: ForwardStreamInfo } | { ok: false; message: string };

/**
 * A port-forward stream's headers: `port`, `streamType` (data or error) and `requestID`. Clients
 * older than the request id get one from the stream id (error stream n, data stream n + 2), as the
 * kubelet does.
 */
export function parseForwardStream(headers: Headers, streamId: number): ForwardStreamResult {
  const portText = header(headers, 'port');
  if (!portText) return { ok: false, message: '"port" header is required' };
  if (!/^\d+$/.test(portText) || Number(portText) > 65535) return { ok: false, message: `unable to parse "${portText}" as a port` };
  const port = Number(portText);
  if (port < 1) return { ok: false, message: `port "${portText}" must be > 0` };
  const type = header(headers, 'streamType');
  if (!type) return { ok: false, message: '"streamType" header is required' };
  if (type !== 'data' && type !== 'error') return { ok: false, message: `invalid stream type "${type}"` };
  const requestId = header(headers, 'requestID') || String(type === 'error' ? streamId : streamId - 2);
  return { ok: true, info: { requestId, port, type } };
}

export interface ForwardPair<S> {
  requestId: string;
  port: number;
  data: S;
  error: S;
}

export type PairAdd<S> =
  | { kind: 'waiting'; created: boolean }
  | { kind: 'complete'; pair: ForwardPair<S> }
  | { kind: 'duplicate'; message: string; errorStream: S | undefined };

/** Pairs each request's data and error streams (they arrive in any order, interleaved with other requests'). */
export class ForwardPairs<S> {
  private readonly pending = new Map<string, { port: number; data?: S; error?: S }>();

  add(info: ForwardStreamInfo, stream: S): PairAdd<S> {
    const existing = this.pending.get(info.requestId);
    const p = existing ?? { port: info.port };
    if (p[info.type] !== undefined) {
      return { kind: 'duplicate', message: `error processing stream for request ${info.requestId}: ${info.type} stream already assigned`, errorStream: p.error };
    }
    p[info.type] = stream;
    if (p.data !== undefined && p.error !== undefined) {
      this.pending.delete(info.requestId);
      return { kind: 'complete', pair: { requestId: info.requestId, port: p.port, data: p.data, error: p.error } };
    }
    this.pending.set(info.requestId, p);
    return { kind: 'waiting', created: existing === undefined };
  }

  /** Drops a request that never got both streams; returns its error stream to report that on, if it has one. */
  expire(requestId: string): { expired: boolean; errorStream: S | undefined } {
    const p = this.pending.get(requestId);
    this.pending.delete(requestId);
    return { expired: p !== undefined, errorStream: p?.error };
  }

  get size(): number {
    return this.pending.size;
  }
}
