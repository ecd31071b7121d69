// What a connection to one API server needs, whichever way it was found (config.ts, kubeconfig.ts).
import { readFile } from 'node:fs/promises';

/** A bearer token source: called per request, so a rotated token is picked up. */
export type TokenSource = () => Promise<string>;

/** Everything the transport needs to reach one API server. */
export interface KubeTarget {
  /** e.g. https://10.0.0.1:443 (http:// only for test fakes). */
  readonly server: string;
  /** PEM of the CA that signs the server's certificate; absent = the system roots. */
  readonly ca?: Buffer;
  /** PEM client certificate and key (kubeconfig users of local clusters). */
  readonly cert?: Buffer;
  readonly key?: Buffer;
  readonly token?: TokenSource;
  readonly insecureSkipTLSVerify?: boolean;
  /** The kubeconfig context's namespace, when it names one. */
  readonly namespace?: string;
}

// Service account tokens rotate (bound tokens about hourly); re-reading each minute is client-go's pace.
const TOKEN_REREAD_MS = 60_000;

/** Reads a token file, again once it is older than a minute. */
export function tokenFileSource(file: string, clock: () => number = Date.now): TokenSource {
  let cached: { token: string; at: number } | undefined;
  return async () => {
    const now = clock();
    if (!cached || now - cached.at >= TOKEN_REREAD_MS) cached = { token: (await readFile(file, 'utf8')).trim(), at: now };
    return cached.token;
  };
}
