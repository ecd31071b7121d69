// manifests/ must say what the code expects: names, flags, selectors, the SPEC's webhook settings.
import { describe, expect, it } from 'vitest';
import { readFileSync } from 'node:fs';
import { parse } from 'yaml';
import type { KubernetesObject, V1ClusterRole, V1Deployment, V1MutatingWebhookConfiguration, V1Role } from '@kubernetes/client-node';
import { agentRbacObjects, loadManifest, localWebhookConfiguration } from '../../demo/local-install.js';
import { certSecretName } from '../../webhook/cert-sync.js';
import { CLUSTER_LABEL } from '../../common/names.js';

const kustomization = parse(readFileSync(new URL('../../manifests/kustomization.yaml', import.meta.url), 'utf8')) as { resources: string[] };
const all: KubernetesObject[] = kustomization.resources.flatMap((f) => loadManifest(f));
const find = <T extends KubernetesObject>(kind: string) => all.find((o) => o.kind === kind) as T;

describe('manifests/', () => {
  it('installs everything into shoal-system', () => {
    expect(all.map((o) => o.kind).sort()).toEqual(
      ['ClusterRole', 'ClusterRoleBinding', 'Deployment', 'MutatingWebhookConfiguration', 'Namespace', 'PodDisruptionBudget', 'Role', 'RoleBinding', 'Service', 'ServiceAccount'].sort(),
    );
    for (const o of all.filter((o) => !['Namespace', 'ClusterRole', 'ClusterRoleBinding', 'MutatingWebhookConfiguration'].includes(o.kind!))) {
      expect(o.metadata?.namespace, `${o.kind} ${o.metadata?.name}`).toBe('shoal-system');
    }
  });

  it('registers both webhooks as SPEC §2 says', () => {
    const cfg = find<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration');
    const byName = Object.fromEntries(cfg.webhooks!.map((w) => [w.name, w]));
    for (const w of cfg.webhooks!) {
      expect(w.objectSelector).toEqual({ matchExpressions: [{ key: CLUSTER_LABEL, operator: 'Exists' }] });
      expect(w).toMatchObject({ failurePolicy: 'Fail', sideEffects: 'None', reinvocationPolicy: 'IfNeeded', admissionReviewVersions: ['v1'] });
      expect(w.timeoutSeconds).toBeLessThanOrEqual(5);
      expect(w.clientConfig.caBundle).toBeUndefined(); // the webhook fills it in
    }
    expect(byName['pods.shoal.dev']!.clientConfig.service?.path).toBe('/mutate/pods');
    expect(byName['pods.shoal.dev']!.rules).toEqual([{ apiGroups: [''], apiVersions: ['v1'], operations: ['CREATE'], resources: ['pods'], scope: 'Namespaced' }]);
    expect(byName['statefulsets.shoal.dev']!.clientConfig.service?.path).toBe('/mutate/statefulsets');
    expect(byName['statefulsets.shoal.dev']!.rules![0]).toMatchObject({ apiGroups: ['apps'], operations: ['CREATE', 'UPDATE'], resources: ['statefulsets'] });
  });

  it('runs two non-root, read-only replicas whose flags match the RBAC names', () => {
    const d = find<V1Deployment>('Deployment');
    expect(d.spec!.replicas).toBe(2);
    const pod = d.spec!.template.spec!;
    const c = pod.containers[0]!;
    expect(pod.securityContext?.runAsNonRoot).toBe(true);
    expect(c.securityContext).toMatchObject({ readOnlyRootFilesystem: true, allowPrivilegeEscalation: false });
    expect(c.readinessProbe?.httpGet).toMatchObject({ path: '/healthz', scheme: 'HTTPS' });
    expect(c.livenessProbe?.httpGet).toMatchObject({ path: '/healthz', scheme: 'HTTPS' });
    const certDir = c.args!.find((a) => a.startsWith('--cert-dir='))!.split('=')[1];
    expect(c.volumeMounts!.find((m) => m.mountPath === certDir)).toBeDefined();
    expect(pod.volumes!.find((v) => v.name === 'certs')?.emptyDir).toBeDefined();

    const service = c.args!.find((a) => a.startsWith('--service='))!.split('=')[1]!;
    const webhookConfig = c.args!.find((a) => a.startsWith('--webhook-config='))!.split('=')[1];
    const role = find<V1Role>('Role');
    expect(role.rules!.flatMap((r) => r.resourceNames ?? [])).toEqual([certSecretName(service)]);
    expect(role.rules!.every((r) => r.resources?.join() === 'secrets')).toBe(true);
    const clusterRole = find<V1ClusterRole>('ClusterRole');
    expect(clusterRole.rules).toEqual([
      { apiGroups: ['admissionregistration.k8s.io'], resources: ['mutatingwebhookconfigurations'], resourceNames: [webhookConfig], verbs: ['get', 'patch'] },
      // The mesh CA: TokenReview of the agent's token, and the pod it names.
      { apiGroups: ['authentication.k8s.io'], resources: ['tokenreviews'], verbs: ['create'] },
      { apiGroups: [''], resources: ['pods'], verbs: ['get'] },
    ]);
    expect(find<V1MutatingWebhookConfiguration>('MutatingWebhookConfiguration').metadata!.name).toBe(webhookConfig);
  });
});

describe('local install helpers', () => {
  it('point the same webhooks at a URL with the caBundle', () => {
    const cfg = localWebhookConfiguration({ url: 'https://127.0.0.1:9443/', caCert: 'PEM' });
    expect(cfg.webhooks!.map((w) => w.clientConfig)).toEqual([
      { url: 'https://127.0.0.1:9443/mutate/statefulsets', caBundle: Buffer.from('PEM').toString('base64') },
      { url: 'https://127.0.0.1:9443/mutate/pods', caBundle: Buffer.from('PEM').toString('base64') },
    ]);
    expect(cfg.webhooks![1]!.objectSelector).toBeDefined();
  });

  it('render the agent RBAC into a namespace, the cluster-scoped binding named after it', () => {
    const objs = agentRbacObjects('apps');
    expect(objs.map((o) => `${o.kind}/${o.metadata!.name}/${o.metadata!.namespace}`)).toEqual([
      'ServiceAccount/shoal-agent/apps',
      'Role/shoal-agent/apps',
      'RoleBinding/shoal-agent/apps',
      'ClusterRoleBinding/shoal-agent-auth-delegator-apps/undefined',
    ]);
    expect(objs[3]).toMatchObject({
      roleRef: { kind: 'ClusterRole', name: 'system:auth-delegator' },
      subjects: [{ kind: 'ServiceAccount', name: 'shoal-agent', namespace: 'apps' }],
    });
    expect(JSON.stringify(agentRbacObjects('other'))).not.toMatch(/\$\{|-apps\b/); // every placeholder filled
  });
});
