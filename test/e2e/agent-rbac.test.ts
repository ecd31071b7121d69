// Least privilege, checked by the API server itself: what `kubectl auth can-i --list` says the
// agents' ServiceAccount may do in its namespace is exactly what the agent calls (the rules of
// manifests/agent-rbac.yaml, plus system:auth-delegator's TokenReview and SubjectAccessReview for
// POST /switchover), and nothing that lets it read users' Secrets or change workloads. And only the
// agent holds that ServiceAccount's token: on a running pod, the Tarantool container has none.
import { afterAll, beforeAll, describe, expect, inject, it } from 'vitest';
import { agentRbacObjects, applyObjects } from '../../demo/local-install.js';
import { createNamespace, deleteNamespace, kubeClients, kubectl } from '../../tools/kube.js';
import { agentStatus, deployReplicaSet, waitForReplicaSet } from '../../tools/shoal-cluster.js';

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

const SA_DIR = '/var/run/secrets/kubernetes.io/serviceaccount';

describe('the ServiceAccount token in a Shoal pod (issue 14)', () => {
  let ns = '';
  afterAll(async () => {
    if (!ns) return;
    await deleteNamespace(k.client, ns);
    await kubectl(kubeconfig, ['delete', 'clusterrolebinding', `shoal-agent-auth-delegator-${ns}`, '--ignore-not-found']);
  });

  /** Runs a shell command in a container of the pod (kubectl exec, through the API server and the kubelet). */
  async function inContainer(pod: string, container: string, script: string): Promise<string> {
    const r = await kubectl(kubeconfig, ['-n', ns, 'exec', pod, '-c', container, '--', 'sh', '-c', script], { timeoutMs: 30_000 });
    expect(r.code, `${container}: ${r.stderr}`).toBe(0);
    return r.stdout.trim();
  }

  it('is mounted in the agent alone; the agent works with it; Tarantool cannot read it', async () => {
    ns = await createNamespace(k.client, 'sat');
    await deployReplicaSet(k, { namespace: ns, cluster: 'sat', name: 'store', replicas: 1 });
    const master = await waitForReplicaSet(k, ns, 'store', 1, { timeoutMs: 180_000 });
    const pod = await k.in(ns).pods.get(master);
    const spec = pod.spec!;

    // The pod spec: no automount, one token mount — the agent's projected volume, read-only.
    expect(spec.automountServiceAccountToken).toBe(false);
    const holders = [...(spec.initContainers ?? []), ...spec.containers].filter((c) => (c.volumeMounts ?? []).some((m) => m.mountPath === SA_DIR));
    expect(holders.map((c) => c.name)).toEqual(['shoal-agent']);
    expect(holders[0]!.volumeMounts!.find((m) => m.mountPath === SA_DIR)).toEqual({ name: 'shoal-api-access', mountPath: SA_DIR, readOnly: true });
    const sources = spec.volumes!.find((v) => v.name === 'shoal-api-access')?.projected?.sources ?? [];
    expect(sources.map((src) => Object.keys(src).filter((key) => src[key as keyof typeof src] !== undefined)[0])).toEqual(['serviceAccountToken', 'configMap', 'downwardAPI']);

    // What each container sees: each runs in its own mount namespace on the process kubelet.
    expect(await inContainer(master, 'tarantool', `if [ -e ${SA_DIR}/token ]; then echo present; else echo absent; fi`)).toBe('absent');
    expect(await inContainer(master, 'shoal-agent', `cat ${SA_DIR}/namespace; echo; [ -s ${SA_DIR}/ca.crt ] && echo ca`)).toBe(`${ns}\nca`);
    const token = await inContainer(master, 'shoal-agent', `cat ${SA_DIR}/token`);
    const claims = JSON.parse(Buffer.from(token.split('.')[1] ?? '', 'base64url').toString()) as {
      iat: number;
      exp: number;
      'kubernetes.io': { namespace: string; pod: { name: string; uid: string }; serviceaccount: { name: string }; warnafter?: number };
    };
    // Bound to this pod (TokenRequest with the pod as bound object): void once the pod is gone.
    expect(claims['kubernetes.io']).toMatchObject({ namespace: ns, pod: { name: master, uid: pod.metadata!.uid }, serviceaccount: { name: 'shoal-agent' } });
    // The API server extends 3607 s tokens to a year and only warns after 3607 s
    // (--service-account-extend-token-expiration, default true in 1.20); the process kubelet, like
    // the real one, still fetches it again at 80 % of the 3607 s it asked for.
    expect({ lifetime: claims.exp - claims.iat, warnAfter: (claims['kubernetes.io'].warnafter ?? 0) - claims.iat }).toEqual({ lifetime: 365 * 24 * 3600, warnAfter: 3607 });

    // The mesh-CA token (issue 14, hole 6): the agent alone holds it, bound to this pod, for the mesh
    // CA's audience only — the webhook is the one party it is ever shown to.
    const meshDir = '/var/run/secrets/shoal.dev/mesh-ca';
    expect(await inContainer(master, 'tarantool', `if [ -e ${meshDir}/token ]; then echo present; else echo absent; fi`)).toBe('absent');
    const meshToken = await inContainer(master, 'shoal-agent', `cat ${meshDir}/token`);
    const meshClaims = JSON.parse(Buffer.from(meshToken.split('.')[1] ?? '', 'base64url').toString()) as { aud: string[]; 'kubernetes.io': { pod: { name: string; uid: string } } };
    expect(meshClaims.aud).toEqual(['shoal.dev/mesh-ca']);
    expect(meshClaims['kubernetes.io'].pod).toEqual({ name: master, uid: pod.metadata!.uid });

    // The agent calls the API with that token: it holds the Lease and publishes a coordinator.
    const status = await agentStatus(pod.status?.podIP);
    expect(status?.coordinator).toMatchObject({ pod: master, self: true });
    expect(status?.instance.role).toBe('master');
  });
});
