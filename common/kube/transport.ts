// HTTP to the API server over node:http(s): no client library, so the agent loads no generated
// models. One keep-alive agent per target carries the cluster CA and the client certificate.
import { Agent as HttpAgent, request as httpRequest, type IncomingMessage } from 'node:http';
import { Agent as HttpsAgent, request as httpsRequest } from 'node:https';
import type { KubeTarget } from './target.js';

export type Query = Record<string, string | number | boolean | undefined>;

export interface HttpCall {
  method: 'GET' | 'POST' | 'PUT' | 'PATCH' | 'DELETE';
  /** e.g. /api/v1/namespaces/default/pods */
  path: string;
  query?: Query;
  /** Sent as JSON. */
  body?: unknown;
  /** Default application/json; merge and JSON patches name theirs. */
  contentType?: string;
}

export function urlOf(server: string, call: Pick<HttpCall, 'path' | 'query'>): URL {
  const url = new URL(server);
  // A server URL may carry a path prefix (a proxy); the API path goes after it.
  url.pathname = `${url.pathname.replace(/\/$/, '')}${call.path}`;
  for (const [k, v] of Object.entries(call.query ?? {})) if (v !== undefined && v !== '') url.searchParams.set(k, String(v));
  return url;
}

export class Transport {
  private readonly agent: HttpAgent | HttpsAgent;
  private readonly secure: boolean;

  constructor(readonly target: KubeTarget) {
    this.secure = new URL(target.server).protocol === 'https:';
    // keepAlive: the agent talks to one server all day; idle sockets are unref'd by Node, so they
    // never hold a process open.
    this.agent = this.secure
      ? new HttpsAgent({
          keepAlive: true,
          ...(target.ca ? { ca: target.ca } : {}),
          ...(target.cert ? { cert: target.cert } : {}),
          ...(target.key ? { key: target.key } : {}),
          rejectUnauthorized: !target.insecureSkipTLSVerify,
        })
      : new HttpAgent({ keepAlive: true });
  }

  /** Sends `call`; resolves with the response (any status) once its headers arrive. `signal` also ends the body. */
  async send(call: HttpCall, signal: AbortSignal): Promise<IncomingMessage> {
    const token = this.target.token ? await this.target.token() : undefined;
    signal.throwIfAborted();
    const payload = call.body === undefined ? undefined : Buffer.from(JSON.stringify(call.body));
    const headers: Record<string, string | number> = { accept: 'application/json' };
    if (token) headers['authorization'] = `Bearer ${token}`;
    if (payload) {
      headers['content-type'] = call.contentType ?? 'application/json';
      headers['content-length'] = payload.length;
    }
    const request = this.secure ? httpsRequest : httpRequest;
    return new Promise<IncomingMessage>((resolve, reject) => {
      const req = request(urlOf(this.target.server, call), { method: call.method, headers, agent: this.agent, signal }, resolve);
      req.on('error', reject);
      req.end(payload);
    });
  }

  /** Closes idle keep-alive sockets. */
  close(): void {
    this.agent.destroy();
  }
}

/** The whole body as text; rejects when the response is cut off (abort, reset). */
export function readBody(res: IncomingMessage): Promise<string> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    res.on('data', (c: Buffer) => chunks.push(c));
    res.on('end', () => resolve(Buffer.concat(chunks).toString('utf8')));
    res.on('error', reject);
    res.on('aborted', () => reject(new Error('the response was cut off')));
  });
}
