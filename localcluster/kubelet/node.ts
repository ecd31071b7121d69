import os from 'node:os';
import { V1MicroTime, type CoordinationV1Api, type CoreV1Api, type V1Lease, type V1Taint } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';
import { apiStatus as httpStatusOf } from '../../shared/kube/errors.js';
import { MERGE_PATCH } from './api.js';
import { kubeTime } from './lifecycle.js';
import { sleep } from '../../shared/time.js';

// The Node object and its heartbeats: a Lease in kube-node-lease renewed every 10 s, and a status
// PATCH with a fresh lastHeartbeatTime (the only thing that brings a node back to Ready after the
// lifecycle controller marked it Unknown).

const LEASE_NAMESPACE = 'kube-node-lease';
const LEASE_DURATION_S = 40;

/** Scheduling capacity. Nothing is enforced; generous so tests on a 2-core machine can request resources. */
const CAPACITY = { cpu: '64', memory: '256Gi', pods: '250', 'ephemeral-storage': '1Ti' };

export interface NodeHeartbeatOptions {
  core: CoreV1Api;
  coordination: CoordinationV1Api;
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
export async function registerNode(core: CoreV1Api, nodeName: string, kubeletPort: number, readySinceMs: number, taints: V1Taint[] = []): Promise<string> {
  const arch = ARCH[process.arch] ?? process.arch;
  const labels = {
    'kubernetes.io/hostname': nodeName,
    'kubernetes.io/os': 'linux',
    'kubernetes.io/arch': arch,
    'beta.kubernetes.io/os': 'linux',
    'beta.kubernetes.io/arch': arch,
  };
  try {
    const created = await core.createNode({
      body: {
        apiVersion: 'v1',
        kind: 'Node',
        metadata: { name: nodeName, labels },
        ...(taints.length ? { spec: { taints } } : {}),
        status: nodeStatus(nodeName, kubeletPort, readySinceMs, Date.now()),
      },
    });
    return created.metadata?.uid ?? '';
  } catch (err) {
    if (httpStatusOf(err) !== 409) throw err;
  }
  const patched = await core.patchNodeStatus(
    { name: nodeName, body: { status: nodeStatus(nodeName, kubeletPort, readySinceMs, Date.now()) } },
    MERGE_PATCH,
  );
  return patched.metadata?.uid ?? '';
}

function leaseBody(nodeName: string, nodeUid: string, existing?: V1Lease): V1Lease {
  return {
    apiVersion: 'coordination.k8s.io/v1',
    kind: 'Lease',
    metadata: {
      ...(existing?.metadata ?? {}),
      name: nodeName,
      namespace: LEASE_NAMESPACE,
      ownerReferences: [{ apiVersion: 'v1', kind: 'Node', name: nodeName, uid: nodeUid }],
    },
    spec: { holderIdentity: nodeName, leaseDurationSeconds: LEASE_DURATION_S, renewTime: new V1MicroTime() },
  };
}

/** Keeps the node alive until `signal` aborts: Lease renewals, status heartbeats, re-registration. */
export async function runNodeHeartbeat(opts: NodeHeartbeatOptions): Promise<void> {
  const { core, coordination, nodeName, logger, signal } = opts;
  const readySinceMs = Date.now();
  let nodeUid = '';
  let lease: V1Lease | undefined;
  let lastStatusMs = 0;
  let failing = false;

  const beat = async (): Promise<void> => {
    if (!nodeUid) {
      nodeUid = await registerNode(core, nodeName, opts.kubeletPort, readySinceMs, opts.taints);
      lastStatusMs = Date.now();
      logger.info('node registered');
    } else if (Date.now() - lastStatusMs >= opts.nodeStatusMs || failing) {
      try {
        await core.patchNodeStatus({ name: nodeName, body: { status: nodeStatus(nodeName, opts.kubeletPort, readySinceMs, Date.now()) } }, MERGE_PATCH);
        lastStatusMs = Date.now();
      } catch (err) {
        if (httpStatusOf(err) !== 404) throw err;
        nodeUid = ''; // the Node was deleted: register again
        lease = undefined;
        return beat();
      }
    }
    try {
      if (lease) {
        lease = await coordination.replaceNamespacedLease({ name: nodeName, namespace: LEASE_NAMESPACE, body: leaseBody(nodeName, nodeUid, lease) });
      } else {
        lease = await coordination.createNamespacedLease({ namespace: LEASE_NAMESPACE, body: leaseBody(nodeName, nodeUid) });
      }
    } catch (err) {
      const code = httpStatusOf(err);
      if (code === 409) {
        // Stale version, or it exists already: renew on top of what is there.
        const current = await coordination.readNamespacedLease({ name: nodeName, namespace: LEASE_NAMESPACE });
        lease = await coordination.replaceNamespacedLease({ name: nodeName, namespace: LEASE_NAMESPACE, body: leaseBody(nodeName, nodeUid, current) });
      } else if (code === 404) {
        lease = await coordination.createNamespacedLease({ namespace: LEASE_NAMESPACE, body: leaseBody(nodeName, nodeUid) });
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
