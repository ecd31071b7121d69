import type { V1ClusterRole, V1ClusterRoleBinding } from '@kubernetes/client-node';
import { KubeClient } from '../../common/kube/client.js';
import { loadKubeConfig } from '../../common/kube/config.js';
import { clusterRoleBindings, clusterRoles } from '../../common/kube/resources.js';

// RBAC for nodes beyond what the Node authorizer grants.

const NODE_EXTRA_ROLE = 'shoal:node-extra';

// The Node authorizer (+ NodeRestriction admission) covers a kubelet's own Node, its Lease,
// its pods' status and deletion, events, and the secrets/configmaps/PVCs/PVs its pods
// reference. It does not cover the local volume provisioner the process kubelet runs: creating
// and deleting PersistentVolumes, watching PVCs and reading StorageClasses. That is granted to
// the group system:nodes here.
const nodeExtraRole: V1ClusterRole = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRole',
  metadata: { name: NODE_EXTRA_ROLE, labels: { 'app.kubernetes.io/managed-by': 'shoal' } },
  rules: [
    { apiGroups: [''], resources: ['persistentvolumes'], verbs: ['get', 'list', 'watch', 'create', 'update', 'patch', 'delete'] },
    { apiGroups: [''], resources: ['persistentvolumeclaims'], verbs: ['get', 'list', 'watch', 'update', 'patch'] },
    { apiGroups: ['storage.k8s.io'], resources: ['storageclasses'], verbs: ['get', 'list', 'watch'] },
    { apiGroups: ['', 'events.k8s.io'], resources: ['events'], verbs: ['create', 'update', 'patch'] },
  ],
};

const nodeExtraBinding: V1ClusterRoleBinding = {
  apiVersion: 'rbac.authorization.k8s.io/v1',
  kind: 'ClusterRoleBinding',
  metadata: { name: NODE_EXTRA_ROLE, labels: { 'app.kubernetes.io/managed-by': 'shoal' } },
  roleRef: { apiGroup: 'rbac.authorization.k8s.io', kind: 'ClusterRole', name: NODE_EXTRA_ROLE },
  subjects: [{ apiGroup: 'rbac.authorization.k8s.io', kind: 'Group', name: 'system:nodes' }],
};

/** Creates (or replaces) the node-extra ClusterRole and its binding to system:nodes. */
export async function applyNodeRbac(kubeconfigPath: string): Promise<void> {
  const client = new KubeClient(loadKubeConfig({ kubeconfig: kubeconfigPath }));
  try {
    await clusterRoles(client).createOrReplace(nodeExtraRole);
    await clusterRoleBindings(client).createOrReplace(nodeExtraBinding);
  } finally {
    client.close();
  }
}
