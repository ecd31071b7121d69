import type { V1Pod } from '@kubernetes/client-node';
import { startLocalCluster, type LocalCluster, type LocalClusterOptions } from '../localcluster/cluster.js';
import { shoalImages } from './images.js';

// The local cluster as Shoal runs on it: Shoal's images in the kubelet's table, and every pod told
// to bind its pod IP (all pods share the host's loopback, so 0.0.0.0 would collide).

/** What the kubelet adds to each container's environment: SHOAL_BIND_HOST, read by the agent. */
export const shoalPodEnv = (_pod: V1Pod, podIP: string): Record<string, string> => ({ SHOAL_BIND_HOST: podIP });

export function startShoalLocalCluster(opts: LocalClusterOptions): Promise<LocalCluster> {
  return startLocalCluster({ ...opts, images: { ...shoalImages(), ...opts.images }, extraEnv: shoalPodEnv });
}
