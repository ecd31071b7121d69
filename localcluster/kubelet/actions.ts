import http from 'node:http';
import https from 'node:https';
import net from 'node:net';
import type { V1ContainerPort, V1ExecAction, V1HTTPGetAction, V1TCPSocketAction } from '@kubernetes/client-node';
import { errorMessage } from '../../common/errors.js';
import { execInContainer } from './process.js';

// The three handler kinds probes and lifecycle hooks share: httpGet, tcpSocket, exec.

export interface Handler {
  httpGet?: V1HTTPGetAction;
  tcpSocket?: V1TCPSocketAction;
  exec?: V1ExecAction;
}

export interface HandlerTarget {
  podIP: string;
  ports: V1ContainerPort[];
  /** The container's main process (exec runs in its mount namespace); undefined when not running. */
  pid?: number;
  uid: number;
  gid: number;
  env: Record<string, string>;
  /** The container's working directory (exec starts there). */
  workingDir: string;
}

export interface HandlerOutcome {
  ok: boolean;
  message: string;
}

/** A numeric port, or a named one looked up in the container's ports. */
export function resolvePort(port: number | string | undefined, ports: V1ContainerPort[]): number | undefined {
  if (typeof port === 'number') return port;
  if (port === undefined) return undefined;
  if (/^\d+$/.test(port)) return Number(port);
  return ports.find((p) => p.name === port)?.containerPort;
}

function httpGet(action: V1HTTPGetAction, target: HandlerTarget, timeoutMs: number): Promise<HandlerOutcome> {
  const port = resolvePort(action.port as number | string, target.ports);
  if (port === undefined) return Promise.resolve({ ok: false, message: `port ${String(action.port)} not found` });
  const scheme = (action.scheme ?? 'HTTP').toUpperCase();
  const mod = scheme === 'HTTPS' ? https : http;
  const headers: Record<string, string> = { 'User-Agent': 'kube-probe/1.20', Accept: '*/*' };
  for (const h of action.httpHeaders ?? []) headers[h.name] = h.value;
  const host = action.host || target.podIP;
  const reqPath = action.path ? (action.path.startsWith('/') ? action.path : `/${action.path}`) : '/';
  return new Promise((resolve) => {
    const req = mod.request(
      // The whole exchange is bounded, not only idle time. Certificates are not checked (as the kubelet).
      { host, port, path: reqPath, method: 'GET', headers, signal: AbortSignal.timeout(timeoutMs), rejectUnauthorized: false },
      (res) => {
        const status = res.statusCode ?? 0;
        res.resume();
        res.on('end', () => resolve({ ok: status >= 200 && status < 400, message: `HTTP ${status}` }));
        res.on('error', (err) => resolve({ ok: false, message: errorMessage(err) }));
      },
    );
    req.on('error', (err) => resolve({ ok: false, message: `GET ${scheme.toLowerCase()}://${host}:${port}${reqPath}: ${errorMessage(err)}` }));
    req.end();
  });
}

function tcpSocket(action: V1TCPSocketAction, target: HandlerTarget, timeoutMs: number): Promise<HandlerOutcome> {
  const port = resolvePort(action.port as number | string, target.ports);
  if (port === undefined) return Promise.resolve({ ok: false, message: `port ${String(action.port)} not found` });
  const host = action.host || target.podIP;
  return new Promise((resolve) => {
    const socket = net.connect({ host, port });
    const timer = setTimeout(() => finish(false, `dial ${host}:${port}: timeout`), timeoutMs);
    const finish = (ok: boolean, message: string): void => {
      clearTimeout(timer);
      socket.destroy();
      resolve({ ok, message });
    };
    socket.once('connect', () => finish(true, 'connected'));
    socket.once('error', (err) => finish(false, `dial ${host}:${port}: ${errorMessage(err)}`));
  });
}

async function exec(action: V1ExecAction, target: HandlerTarget, timeoutMs: number): Promise<HandlerOutcome> {
  if (target.pid === undefined) return { ok: false, message: 'container is not running' };
  const argv = action.command ?? [];
  if (argv.length === 0) return { ok: false, message: 'exec with an empty command' };
  const r = await execInContainer({ pid: target.pid, uid: target.uid, gid: target.gid, env: target.env, workingDir: target.workingDir }, argv, timeoutMs);
  if (r.timedOut) return { ok: false, message: `command timed out after ${timeoutMs} ms` };
  return { ok: r.exitCode === 0, message: `exit ${r.exitCode}${r.output ? `: ${r.output.trim().slice(0, 500)}` : ''}` };
}

/** Runs a probe or hook handler once, bounded by `timeoutMs`. */
export function runHandler(handler: Handler, target: HandlerTarget, timeoutMs: number): Promise<HandlerOutcome> {
  if (handler.httpGet) return httpGet(handler.httpGet, target, timeoutMs);
  if (handler.tcpSocket) return tcpSocket(handler.tcpSocket, target, timeoutMs);
  if (handler.exec) return exec(handler.exec, target, timeoutMs);
  return Promise.resolve({ ok: false, message: 'handler has no httpGet, tcpSocket or exec' });
}
