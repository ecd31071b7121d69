import os from 'node:os';
import type { V1Node, V1Taint } from '@kubernetes/client-node';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import type { KubeClient } from '../../common/kube/client.js';
import { isAlreadyExists, isConflict, isNotFound } from '../../common/kube/errors.js';
import { KINDS, MERGE_PATCH, microTime, nodes, Resource, type LeaseJson } from '../../common/kube/resources.js';
import { kubeTime } from './lifecycle.js';
import { sleep } from '../../common/time.js';

// The Node object and its heartbeats: a Lease in kube-node-lease renewed every 10 s, and a status
// PATCH with a fresh lastHeartbeatTime (the only thing that brings a node back to Ready after the
// lifecycle controller marked it Unknown).

const LEASE_NAMESPACE = 'kube-node-lease';
const LEASE_DURATION_S = 40;

/** Scheduling capacity. Nothing is enforced; generous so tests on a 2-core machine can request resources. */
const CAPACITY = { cpu: '64', memory: '256Gi', pods: '250', 'ephemeral-storage': '1Ti' };

export interface NodeHeartbeatOptions {
  client: KubeClient;
  nodeName: string;
  logger: Logger;
  leaseRenewMs: number;
  nodeStatusMs: number;
  /** Called after the API server answered again following failed heartbeats: re-post every pod status. */
  onReconnect: () => void;
  kubeletPort: number;
  /** Taints for a newly registered Node. */
  taints?: V1Taint[];
  signal: AbortSignal;
}

const ARCH: Record<string, string> = { x64: 'amd64', arm64: 'arm64', arm: 'arm', ppc64: 'ppc64le', s390x: 's390x' };

/** `kubeletPort`: where the API server reaches this kubelet (for `kubectl logs`). */
export function nodeStatus(nodeName: string, kubeletPort: number, readySinceMs: number, nowMs: number): Record<string, unknown> {
  const now = kubeTime(nowMs);
  const since = kubeTime(readySinceMs);
  const cond = (type: string, status: string, reason: string, message: string): Record<string, string> => ({
    type,
    status,
    reason,
    message,
    lastHeartbeatTime: now,
    lastTransitionTime: since,
  });
  return {
    capacity: CAPACITY,
    allocatable: CAPACITY,
    conditions: [
      cond('MemoryPressure', 'False', 'KubeletHasSufficientMemory', 'process kubelet has sufficient memory available'),
      cond('DiskPressure', 'False', 'KubeletHasNoDiskPressure', 'process kubelet has no disk pressure'),
      cond('PIDPressure', 'False', 'KubeletHasSufficientPID', 'process kubelet has sufficient PID available'),
      cond('Ready', 'True', 'KubeletReady', 'Shoal process kubelet is posting ready status'),
    ],
    // No Hostname address: the API server would dial it first (--kubelet-preferred-address-types)
    // and the node name does not resolve.
    addresses: [{ type: 'InternalIP', address: '127.0.0.1' }],
    daemonEndpoints: { kubeletEndpoint: { Port: kubeletPort } },
    nodeInfo: {
      machineID: '',
      systemUUID: '',
      bootID: '',
      kernelVersion: os.release(),
      osImage: 'Shoal process kubelet',
      containerRuntimeVersion: 'process://shoal',
      kubeletVersion: 'v1.20.2',
      kubeProxyVersion: 'v1.20.2',
      operatingSystem: 'linux',
      architecture: ARCH[process.arch] ?? process.arch,
    },
  };
}

/** Creates the Node (or takes over an existing one) and posts a Ready status. Returns its uid. */
export async function registerNode(
  client: KubeClient,
  nodeName: string,
  kubeletPort: number,
  readySinceMs: number,
  taints: V1Taint[] = [],
  signal?: AbortSignal,
): Promise<string> {
  const o = signal ? { signal } : {};
  const arch = ARCH[process.arch] ?? process.arch;
  const labels = {
    'kubernetes.io/hostname': nodeName,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': arch,
    'beta.kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': arch,
  };
  try {
    const body: V1Node = {
      apiVersion: 'v1',
      kind: 'Node',
      metadata: { name: nodeName, labels },
      ...(taints.length ? { spec: { taints } } : {}),
      status: nodeStatus(nodeName, kubeletPort, readySinceMs, Date.now()),
    };
    const created = await nodes(client).create(body, o);
    return created.metadata?.uid ?? '';
  } catch (err) {
    if (!isAlreadyExists(err)) throw err;
  }
  return (await patchNodeStatus(client, nodeName, nodeStatus(nodeName, kubeletPort, readySinceMs, Date.now()), signal)).metadata?.uid ?? '';
}

/** The nodes/status subresource, as a JSON merge patch (conditions and addresses replaced whole). */
function patchNodeStatus(client: KubeClient, nodeName: string, status: Record<string, unknown>, signal?: AbortSignal): Promise<V1Node> {
  return nodes(client).patch(nodeName, { status }, MERGE_PATCH, { subresource: 'status', ...(signal ? { signal } : {}) });
}

function leaseBody(nodeName: string, nodeUid: string, existing?: LeaseJson): LeaseJson {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      ...(existing?.metadata ?? {}),
      name: nodeName,
      namespace: LEASE_NAMESPACE,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid }],
    },
    // MicroTime with microseconds, as the API server requires (client-node's V1MicroTime did the same);
    // the existing Lease's spec (acquireTime …) is not carried over, as before.
    spec: { holderIdentity: nodeName, leaseDurationSeconds: LEASE_DURATION_S, renewTime: microTime() },
  };
}

/** Keeps the node alive until `signal` aborts: Lease renewals, status heartbeats, re-registration. */
export async function runNodeHeartbeat(opts: NodeHeartbeatOptions): Promise<void> {
  const { client, nodeName, logger, signal } = opts;
  const leases = new Resource<LeaseJson>(client, KINDS.Lease, LEASE_NAMESPACE);
  const o = { signal };
  const readySinceMs = Date.now();
  let nodeUid = '';
  let lease: LeaseJson | undefined;
  let lastStatusMs = 0;
  let failing = false;

  const beat = async (): Promise<void> => {
    if (!nodeUid) {
      nodeUid = await registerNode(client, nodeName, opts.kubeletPort, readySinceMs, opts.taints, signal);
      lastStatusMs = Date.now();
      logger.info('node registered');
    } else if (Date.now() - lastStatusMs >= opts.nodeStatusMs || failing) {
      try {
        await patchNodeStatus(client, nodeName, nodeStatus(nodeName, opts.kubeletPort, readySinceMs, Date.now()), signal);
        lastStatusMs = Date.now();
      } catch (err) {
        if (!isNotFound(err)) throw err;
        nodeUid = ''; // the Node was deleted: register again
        lease = undefined;
        return beat();
      }
    }
    try {
      lease = lease ? await leases.replace(nodeName, leaseBody(nodeName, nodeUid, lease), o) : await leases.create(leaseBody(nodeName, nodeUid), o);
    } catch (err) {
      if (isConflict(err) || isAlreadyExists(err)) {
        // Stale version, or it exists already: renew on top of what is there.
        const current = await leases.get(nodeName, o);
        lease = await leases.replace(nodeName, leaseBody(nodeName, nodeUid, current), o);
      } else if (isNotFound(err)) {
        lease = await leases.create(leaseBody(nodeName, nodeUid), o);
      } else throw err;
    }
  };

  while (!signal.aborted) {
    try {
      await beat();
      if (failing) {
        logger.info('API server reachable again: re-posting node and pod status');
        failing = false;
        opts.onReconnect();
      }
    } catch (err) {
      if (signal.aborted) return;
      if (!failing) logger.warn({ err: errorMessage(err) }, 'node heartbeat failed');
      failing = true;
      lease = undefined; // read it again once the API server is back
      await sleep(1_000, signal).catch(() => undefined);
      continue;
    }
    await sleep(opts.leaseRenewMs, signal).catch(() => undefined);
  }
}
