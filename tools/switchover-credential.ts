// A Kubernetes credential for POST /switchover, for tests and tools on the local 1.20 cluster: its
// admin kubeconfig holds a client certificate (no bearer token) and `kubectl create token` does not
// exist yet, so a ServiceAccount's legacy token Secret (made by the token controller) is the token.
// With `grant`, a Role allowing `update` on the StatefulSets (what /switchover checks) is bound to it.
import type { V1Role } from '@kubernetes/client-node';
import { isAlreadyExists } from '../common/kube/errors.js';
import { reviewAccess, type Resources } from '../common/kube/resources.js';
import { waitFor } from './kube.js';

export interface SwitchoverCredentialOptions {
  /** Bind a Role with `update` on statefulsets.apps (default true); false = a token without the right. */
  grant?: boolean;
  /** Limit the Role to these StatefulSets (resourceNames); default all of the namespace. */
  statefulsets?: string[];
  /** Bound of the whole preparation. Default 60 s. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

const created = async (p: Promise<unknown>): Promise<void> => {
  await p.catch((err: unknown) => {
    if (!isAlreadyExists(err)) throw err;
  });
};

/**
 * Creates ServiceAccount `name` in `kube.namespace` (and, with `grant`, Role + RoleBinding `name`),
 * waits for its token and, with `grant`, until the API server's authorizer allows it; returns the token.
 */
export async function switchoverToken(kube: Resources, name: string, o: SwitchoverCredentialOptions = {}): Promise<string> {
  const grant = o.grant ?? true;
  const wait = { timeoutMs: o.timeoutMs ?? 60_000, intervalMs: 200, ...(o.signal ? { signal: o.signal } : {}) };
  const call = o.signal ? { signal: o.signal } : {};
  await created(kube.serviceAccounts.create({ metadata: { name } }, call));
  if (grant) {
    const role: V1Role = {
      metadata: { name },
      rules: [{ apiGroups: ['apps'], resources: ['statefulsets'], verbs: ['update'], ...(o.statefulsets ? { resourceNames: o.statefulsets } : {}) }],
    };
    await created(kube.roles.create(role, call));
    await created(
      kube.roleBindings.create(
        { metadata: { name }, roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'Role', name }, subjects: [{ kind: 'ServiceAccount', name, namespace: kube.namespace }] },
        call,
      ),
    );
  }
  const token = await waitFor(
    `the token Secret of ServiceAccount ${kube.namespace}/${name}`,
    async () => {
      const secret = (await kube.serviceAccounts.get(name, call)).secrets?.[0]?.name;
      const data = secret ? (await kube.secrets.get(secret, call)).data?.['token'] : undefined;
      return data ? Buffer.from(data, 'base64').toString('utf8') : undefined;
    },
    wait,
  );
  if (grant) {
    // RBAC reaches the authorizer through a watch: wait until it allows, or the first /switchover
    // could meet (and cache for 10 s) a 403.
    const user = `system:serviceaccount:${kube.namespace}:${name}`;
    const groups = ['system:serviceaccounts', `system:serviceaccounts:${kube.namespace}`, 'system:authenticated'];
    const resourceAttributes = { verb: 'update', group: 'apps', resource: 'statefulsets', namespace: kube.namespace, ...(o.statefulsets?.[0] ? { name: o.statefulsets[0] } : {}) };
    await waitFor(`${user} to be allowed to update statefulsets`, async () => (await reviewAccess(kube.client, { user, groups, resourceAttributes }, call)).allowed === true, wait);
  }
  return token;
}
