// The webhook's few conversations with the API server, behind an interface so the logic that uses
// them (cert-sync.ts, sidecar-mode.ts) is tested without a cluster. The calls go through the shared
// Kubernetes layer: bounded, and failing as KubeApiError.
import { existsSync } from 'node:fs';
import { join } from 'node:path';
import type { V1Secret } from '@kubernetes/client-node';
import { ShoalError } from '../common/errors.js';
import { KubeClient } from '../common/kube/client.js';
import { SERVICE_ACCOUNT_DIR, loadKubeConfig } from '../common/kube/config.js';
import { apiStatus } from '../common/kube/errors.js';
import { JSON_PATCH, KINDS, Resource, mutatingWebhookConfigurations, serverVersion } from '../common/kube/resources.js';

export { apiStatus };

export interface StoredSecret {
  data: Record<string, string>; // decoded text values
  resourceVersion: string;
}

export interface ClusterAccess {
  /** e.g. "v1.20.2" with major/minor as numbers. */
  serverVersion(): Promise<{ major: number; minor: number; gitVersion: string }>;
  readSecret(namespace: string, name: string): Promise<StoredSecret | null>;
  /** 'exists' on 409 AlreadyExists: another replica was first. */
  createSecret(namespace: string, name: string, data: Record<string, string>): Promise<'created' | 'exists'>;
  /** 'conflict' on 409: the Secret changed since `resourceVersion`. */
  replaceSecret(namespace: string, name: string, resourceVersion: string, data: Record<string, string>): Promise<'replaced' | 'conflict'>;
  /** The caBundle (PEM text, '' when unset) of each webhook, or null when the configuration does not exist. */
  readCaBundles(configName: string): Promise<{ name: string; caBundle: string }[] | null>;
  /** Sets caBundle on the webhooks at `indexes` (each guarded by a JSON Patch test of its name). */
  patchCaBundles(configName: string, webhooks: { index: number; name: string }[], caPem: string): Promise<void>;
}

/** The given kubeconfig, else in-cluster config when running in a pod; null when neither is there. */
export function clusterClient(kubeconfig?: string, env: NodeJS.ProcessEnv = process.env): KubeClient | null {
  if (kubeconfig) return new KubeClient(loadKubeConfig({ kubeconfig }));
  if (env.KUBERNETES_SERVICE_HOST && existsSync(join(SERVICE_ACCOUNT_DIR, 'token'))) return new KubeClient(loadKubeConfig({ env }));
  return null;
}

const b64 = (s: string) => Buffer.from(s, 'utf8').toString('base64');
const unb64 = (s: string) => Buffer.from(s, 'base64').toString('utf8');

function secretBody(name: string, data: Record<string, string>, resourceVersion?: string): V1Secret {
  return {
    apiVersion: 'v1',
    kind: 'Secret',
    type: 'Opaque',
    metadata: { name, labels: { 'app.kubernetes.io/name': 'shoal-webhook' }, ...(resourceVersion ? { resourceVersion } : {}) },
    data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, b64(v)])),
  };
}

export function kubeClusterAccess(client: KubeClient): ClusterAccess {
  const secrets = (namespace: string): Resource<V1Secret> => new Resource<V1Secret>(client, KINDS.Secret, namespace);
  const admission = mutatingWebhookConfigurations(client);
  return {
    async serverVersion() {
      const v = await serverVersion(client);
      // Managed clusters report minor versions such as "29+".
      const major = parseInt(v.major, 10);
      const minor = parseInt(v.minor, 10);
      if (Number.isNaN(major) || Number.isNaN(minor)) {
        throw new ShoalError(`the API server reports an unreadable version ${JSON.stringify(v)}`, 'pass --sidecar-mode native or container');
      }
      return { major, minor, gitVersion: v.gitVersion };
    },
    async readSecret(namespace, name) {
      try {
        const s = await secrets(namespace).get(name);
        const data = Object.fromEntries(Object.entries(s.data ?? {}).map(([k, v]) => [k, unb64(v)]));
        return { data, resourceVersion: s.metadata?.resourceVersion ?? '' };
      } catch (err) {
        if (apiStatus(err) === 404) return null;
        throw err;
      }
    },
    async createSecret(namespace, name, data) {
      try {
        await secrets(namespace).create(secretBody(name, data));
        return 'created';
      } catch (err) {
        if (apiStatus(err) === 409) return 'exists';
        throw err;
      }
    },
    async replaceSecret(namespace, name, resourceVersion, data) {
      try {
        await secrets(namespace).replace(name, secretBody(name, data, resourceVersion));
        return 'replaced';
      } catch (err) {
        if (apiStatus(err) === 409) return 'conflict';
        throw err;
      }
    },
    async readCaBundles(configName) {
      try {
        const cfg = await admission.get(configName);
        return (cfg.webhooks ?? []).map((w) => ({ name: w.name, caBundle: w.clientConfig.caBundle ? unb64(w.clientConfig.caBundle) : '' }));
      } catch (err) {
        if (apiStatus(err) === 404) return null;
        throw err;
      }
    },
    async patchCaBundles(configName, webhooks, caPem) {
      const body = webhooks.flatMap(({ index, name }) => [
        { op: 'test', path: `/webhooks/${index}/name`, value: name },
        { op: 'add', path: `/webhooks/${index}/clientConfig/caBundle`, value: b64(caPem) },
      ]);
      await admission.patch(configName, body, JSON_PATCH);
    },
  };
}
