// Least privilege, checked by the API server itself: what `kubectl auth can-i --list` says the
// agents' ServiceAccount may do in its namespace is exactly what the agent calls (the rules of
// manifests/agent-rbac.yaml, plus system:auth-delegator's TokenReview and SubjectAccessReview for
// POST /switchover), and nothing that lets it read users' Secrets or change workloads.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { agentRbacObjects, applyObjects } from '../../demo/local-install.js';
import { createNamespace, deleteNamespace, kubeClients, kubectl } from '../../tools/kube.js';

const kubeconfig = inject('kubeconfig');
const k = kubeClients(kubeconfig);
let ns = '';

/** `resource → verbs` from can-i's table (Resources, Non-Resource URLs, Resource Names, Verbs). */
function permissions(table: string): Map<string, string[]> {
  const out = new Map<string, string[]>();
  for (const line of table.split('\n').slice(1)) {
    const m = /^(\S+)\s+.*\[([^\]]*)\]\s*$/.exec(line.trim());
    if (!m?.[1] || m[1].startsWith('[')) continue; // a non-resource URL row
    out.set(m[1], (m[2] ?? '').split(/\s+/).filter(Boolean).sort());
  }
  return out;
}

describe('the agents’ ServiceAccount', () => {
  beforeAll(async () => {
    ns = await createNamespace(k.client, 'rbac');
    await applyObjects(k.client, agentRbacObjects(ns));
  });
  afterAll(async () => {
    if (!ns) return;
    await deleteNamespace(k.client, ns);
    await kubectl(kubeconfig, ['delete', 'clusterrolebinding', `shoal-agent-auth-delegator-${ns}`, '--ignore-not-found']); // cluster-scoped: outlives the namespace
  });

  it('may do exactly what the agent calls', async () => {
    const r = await kubectl(kubeconfig, ['-n', ns, 'auth', 'can-i', '--list', `--as=system:serviceaccount:${ns}:shoal-agent`]);
    expect(r.code, r.stderr).toBe(0);
    const granted = permissions(r.stdout);
    // What every authenticated user may do (system:basic-user, system:discovery) is not ours.
    for (const builtin of ['selfsubjectaccessreviews.authorization.k8s.io', 'selfsubjectrulesreviews.authorization.k8s.io']) granted.delete(builtin);
    expect(Object.fromEntries(granted), r.stdout).toEqual({
      pods: ['delete', 'list', 'watch'],
      'statefulsets.apps': ['list', 'watch'],
      configmaps: ['create', 'get', 'update'],
      'leases.coordination.k8s.io': ['create', 'get', 'update'],
      secrets: ['create', 'get'],
      events: ['create', 'patch'],
      // system:auth-delegator (cluster-wide): who a /switchover caller is, and whether they may.
      'tokenreviews.authentication.k8s.io': ['create'],
      'subjectaccessreviews.authorization.k8s.io': ['create'],
    });
  });

  it('cannot read or list users’ Secrets, nor change their workloads', async () => {
    const as = `--as=system:serviceaccount:${ns}:shoal-agent`;
    const denied: Array<[string, string]> = [['list', 'secrets'], ['watch', 'secrets'], ['update', 'secrets'], ['get', 'pods'], ['patch', 'statefulsets.apps'], ['update', 'statefulsets.apps'], ['create', 'events.events.k8s.io']];
    for (const [verb, resource] of denied) {
      const r = await kubectl(kubeconfig, ['-n', ns, 'auth', 'can-i', verb, resource, as]);
      expect(r.stdout.trim(), `${verb} ${resource}`).toBe('no');
    }
  });
});
