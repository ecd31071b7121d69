import { readFile, writeFile } from 'node:fs/promises';
import { join } from 'node:path';
import { stringify as toYaml } from 'yaml';
import { ShoalError } from '../../common/errors.js';
import type { Pki } from './pki.js';

// Kubeconfigs for the cluster's users, each with a client certificate of the cluster PKI. They are
// rewritten on every start: the API server's port may have changed.

const DNS1123_SUBDOMAIN = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

async function writeKubeconfig(
  path: string,
  server: string,
  caPath: string,
  user: string,
  certPath: string,
  keyPath: string,
): Promise<void> {
  const b64 = async (p: string): Promise<string> => (await readFile(p)).toString('base64');
  // Certificates embedded so the file stands alone (copied, or given to kubectl).
  const config = {
    apiVersion: 'v1',
    kind: 'Config',
    clusters: [{ name: 'shoal-local', cluster: { server, 'certificate-authority-data': await b64(caPath) } }],
    users: [
      { name: user, user: { 'client-certificate-data': await b64(certPath), 'client-key-data': await b64(keyPath) } },
    ],
    contexts: [{ name: 'shoal-local', context: { cluster: 'shoal-local', user } }],
    'current-context': 'shoal-local',
  };
  await writeFile(path, toYaml(config), { mode: 0o600 });
}

/** Where the kubeconfig called `name` lives in `dir`. */
export const kubeconfigPathIn =
  (dir: string) =>
  (name: string): string =>
    join(dir, `${name}.kubeconfig`);

/** The kubeconfigs of one API server URL, written into `dir`. */
export class Kubeconfigs {
  private readonly path: (name: string) => string;
  private readonly issued = new Map<string, Promise<string>>();

  constructor(
    dir: string,
    private readonly pki: Pki,
    private readonly apiServerUrl: string,
  ) {
    this.path = kubeconfigPathIn(dir);
  }

  /** Writes kubeconfig `name` for `user` with the PKI's certificate `certName`; returns its path. */
  async write(name: string, user: string, certName: string): Promise<string> {
    const path = this.path(name);
    await writeKubeconfig(path, this.apiServerUrl, this.pki.path('ca', 'crt'), user, this.pki.path(certName, 'crt'), this.pki.path(certName, 'key'));
    return path;
  }

  /** The admin's, the controller-manager's and the scheduler's (their certificates exist already). */
  async writeComponents(): Promise<{ admin: string; controllerManager: string; scheduler: string }> {
    return {
      admin: await this.write('admin', 'shoal-admin', 'admin'),
      controllerManager: await this.write('controller-manager', 'system:kube-controller-manager', 'controller-manager'),
      scheduler: await this.write('scheduler', 'system:kube-scheduler', 'scheduler'),
    };
  }

  /** A kubeconfig with a new client certificate for `user` in `groups`; once per name. */
  user(name: string, user: string, groups: string[] = []): Promise<string> {
    if (!DNS1123_SUBDOMAIN.test(name)) {
      return Promise.reject(new ShoalError(`kubeconfig name '${name}' must be a DNS-1123 subdomain`));
    }
    let p = this.issued.get(name);
    if (!p) {
      p = (async () => {
        const certName = join('users', name);
        await this.pki.leaf(certName, 'ca', { cn: user, o: groups, usage: 'client' });
        return this.write(`user-${name}`, user, certName);
      })();
      p.catch(() => this.issued.delete(name));
      this.issued.set(name, p);
    }
    return p;
  }

  /** A node's kubeconfig: CN system:node:<nodeName>, O system:nodes. */
  kubelet(nodeName: string): Promise<string> {
    if (!DNS1123_SUBDOMAIN.test(nodeName) || nodeName.length > 253) {
      return Promise.reject(new ShoalError(`node name '${nodeName}' must be a DNS-1123 subdomain`));
    }
    return this.user(`node-${nodeName}`, `system:node:${nodeName}`, ['system:nodes']);
  }
}
