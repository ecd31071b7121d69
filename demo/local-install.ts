// Registering a webhook that runs as a local process (the local 1.20 cluster, where a Service's
// ClusterIP routes nowhere): the MutatingWebhookConfiguration of manifests/ with clientConfig.url
// instead of clientConfig.service. Rendered from the same YAML so the rules never drift apart.
import { readFileSync } from 'node:fs';
import { parseAllDocuments } from 'yaml';
import type { KubernetesObject, V1MutatingWebhookConfiguration } from '@kubernetes/client-node';
import { ShoalError } from '../common/errors.js';
import type { Bound, KubeClient } from '../common/kube/client.js';
import { resourceFor } from '../common/kube/resources.js';

/** The objects of a file in manifests/ (works from demo/ and from dist/demo/), each `${VAR}` replaced from `vars`. */
export function loadManifest(file: string, vars: Record<string, string> = {}): KubernetesObject[] {
  for (const rel of [`../manifests/${file}`, `../../manifests/${file}`]) {
    let text: string;
    try {
      text = readFileSync(new URL(rel, import.meta.url), 'utf8');
    } catch {
      continue;
    }
    const filled = text.replace(/\$\{([A-Z_]+)\}/g, (whole, name: string) => vars[name] ?? whole);
    return parseAllDocuments(filled).map((d) => d.toJS() as KubernetesObject).filter((o) => o !== null);
  }
  throw new ShoalError(`manifests/${file} not found next to the demo code`, 'run from a checkout of the Shoal repository');
}

export interface LocalWebhookOptions {
  /** Where the webhook listens, e.g. https://127.0.0.1:8443 (the certificate must cover its host). */
  url: string;
  /** PEM of the CA that signed the webhook's certificate (its ca.crt). */
  caCert: string;
}

/** manifests/mutatingwebhook.yaml pointed at `url` (each webhook keeps its path) with the caBundle set. */
export function localWebhookConfiguration(o: LocalWebhookOptions): V1MutatingWebhookConfiguration {
  const cfg = loadManifest('mutatingwebhook.yaml')[0] as V1MutatingWebhookConfiguration;
  const base = o.url.replace(/\/+$/, '');
  for (const w of cfg.webhooks ?? []) {
    const path = w.clientConfig.service?.path ?? '/';
    w.clientConfig = { url: `${base}${path}`, caBundle: Buffer.from(o.caCert).toString('base64') };
  }
  return cfg;
}

/** Kinds of manifests/ that are cluster-scoped: they get no metadata.namespace. */
const CLUSTER_SCOPED = new Set(['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration']);

/**
 * The agents' ServiceAccount, Role and RoleBinding (manifests/agent-rbac.yaml) for `namespace`,
 * and the ClusterRoleBinding to system:auth-delegator named after it, as `sed` would render it.
 */
export function agentRbacObjects(namespace: string): KubernetesObject[] {
  return loadManifest('agent-rbac.yaml', { NAMESPACE: namespace }).map((o) =>
    CLUSTER_SCOPED.has(o.kind ?? '') ? o : { ...o, metadata: { ...o.metadata, namespace } },
  );
}

/**
 * Creates each object, or replaces it at its live resourceVersion when it exists (like `kubectl
 * apply` for objects we own). Kinds come from common/kube's table (KINDS): one it lacks is refused.
 */
export async function applyObjects(client: KubeClient, objects: KubernetesObject[], o: Bound = {}): Promise<void> {
  for (const obj of objects) await resourceFor(client, obj).createOrReplace(obj, o);
}

/** Registers a locally running webhook with the cluster behind `client`. Takes 1–2 s to take effect. */
export async function installLocalWebhook(client: KubeClient, o: LocalWebhookOptions): Promise<void> {
  await applyObjects(client, [localWebhookConfiguration(o)]);
}
