// A kubeconfig file → KubeTarget: the current context's cluster and user. Covers what our clusters
// and the usual ones use (server, CA, client certificate, token, token file; inline or by path,
// paths relative to the file). Exec and auth-provider plugins are refused with a clear message
// rather than half-supported.
import { readFileSync } from 'node:fs';
import { dirname, isAbsolute, resolve } from 'node:path';
import { parse as parseYaml } from 'yaml';
import { ShoalError } from '../errors.js';
import { isRecord, type JsonRecord } from '../json.js';
import { tokenFileSource, type KubeTarget } from './target.js';

function named(list: unknown, name: string, what: string, file: string): JsonRecord {
  const entry = Array.isArray(list) ? list.find((e) => isRecord(e) && e['name'] === name) : undefined;
  if (!isRecord(entry)) throw new ShoalError(`${file} has no ${what} named "${name}"`, `add it, or fix current-context in ${file}`);
  const body = entry[what];
  return isRecord(body) ? body : {};
}

const str = (rec: JsonRecord, key: string): string | undefined => (typeof rec[key] === 'string' && rec[key] !== '' ? (rec[key] as string) : undefined);

/** Parses kubeconfig text; `file` resolves relative paths and names the file in errors. */
export function parseKubeconfig(text: string, file: string): KubeTarget {
  const doc: unknown = parseYaml(text);
  if (!isRecord(doc)) throw new ShoalError(`${file} is not a kubeconfig (not a YAML mapping)`, 'point KUBECONFIG at a kubeconfig file');
  const current = typeof doc['current-context'] === 'string' ? doc['current-context'] : '';
  if (!current) throw new ShoalError('the Kubernetes client configuration names no current cluster', 'set current-context in the kubeconfig');
  const context = named(doc['contexts'], current, 'context', file);
  const clusterName = str(context, 'cluster');
  if (!clusterName) throw new ShoalError('the Kubernetes client configuration names no current cluster', 'set current-context in the kubeconfig');
  const cluster = named(doc['clusters'], clusterName, 'cluster', file);
  const userName = str(context, 'user');
  const user = userName ? named(doc['users'], userName, 'user', file) : {};
  const server = str(cluster, 'server');
  if (!server) throw new ShoalError(`cluster "${clusterName}" in ${file} has no server`, 'set clusters[].cluster.server');
  if (user['exec'] !== undefined || user['auth-provider'] !== undefined) {
    throw new ShoalError(`user "${userName ?? ''}" in ${file} authenticates with a plugin (exec/auth-provider), which Shoal does not run`, 'use a kubeconfig with a client certificate or a token');
  }
  const base = dirname(resolve(file));
  const at = (p: string): string => (isAbsolute(p) ? p : resolve(base, p));
  // `<key>-data` is inline base64, `<key>` a path; inline wins, as in client-go.
  const material = (rec: JsonRecord, key: string): Buffer | undefined => {
    const data = str(rec, `${key}-data`);
    if (data) return Buffer.from(data, 'base64');
    const path = str(rec, key);
    return path ? readFileSync(at(path)) : undefined;
  };
  const ca = material(cluster, 'certificate-authority');
  const cert = material(user, 'client-certificate');
  const key = material(user, 'client-key');
  const token = str(user, 'token');
  const tokenFile = str(user, 'tokenFile');
  const namespace = str(context, 'namespace');
  return {
    server,
    ...(ca ? { ca } : {}),
    ...(cert ? { cert } : {}),
    ...(key ? { key } : {}),
    ...(token ? { token: () => Promise.resolve(token) } : tokenFile ? { token: tokenFileSource(at(tokenFile)) } : {}),
    ...(cluster['insecure-skip-tls-verify'] === true ? { insecureSkipTLSVerify: true } : {}),
    ...(namespace ? { namespace } : {}),
  };
}
