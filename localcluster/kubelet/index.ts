import { renameSync, writeFileSync } from 'node:fs';
import { mkdir } from 'node:fs/promises';
import path from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { errorMessage } from '../../common/errors.js';
import { DEFAULT_BACKOFF, KUBELET_WATCH } from './backoff.js';
import { serviceEnv } from './env.js';
import { eventRecorder } from './events.js';
import { IpAllocator, unixUidRange } from './ipam.js';
import { lockIpBase, type IpBaseLock } from './ipbase-lock.js';
import { runNodeHeartbeat } from './node.js';
import { PodWorker } from './pod-worker.js';
import { killUids, pidsOfUids } from './process.js';
import { startKubeletServer } from './server.js';
import { KubeClient } from '../../common/kube/client.js';
import { loadKubeConfig } from '../../common/kube/config.js';
import { ListWatch } from '../../common/kube/reflector.js';
import { sleep, waitAtMost } from '../../common/time.js';
import type { Kubelet, KubeletOptions, KubeletState, PodRuntimeInfo } from './types.js';

export type { ImageSpec, ImageTable, Kubelet, KubeletOptions, KubeletState, PodRuntimeInfo } from './types.js';

const HOST_IP = '127.0.0.1';
const DEFAULT_UID_BASE = 200_000;

/**
 * Shoal's process kubelet: registers `nodeName`, keeps it alive, and runs every pod bound to it as
 * local processes (see ../../docs/DESIGN.md and KUBERNETES.md "What a kubelet must do here").
 */
export async function startKubelet(opts: KubeletOptions): Promise<Kubelet> {
  const log = opts.logger.child({ node: opts.nodeName });
  const client = new KubeClient(loadKubeConfig({ kubeconfig: opts.kubeconfigPath })); // every call: node, pods, volumes, events
  const uidBase = opts.uidBase ?? DEFAULT_UID_BASE;
  const ipam = new IpAllocator(opts.ipBase);
  const [minUid, maxUid] = unixUidRange(opts.ipBase, uidBase);
  await mkdir(path.join(opts.runDir, 'pods'), { recursive: true });

  const workers = new Map<string, PodWorker>(); // by pod uid: a recreated pod of the same name is another pod
  const workerOf = (namespace: string, name: string): PodWorker | undefined => {
    const matches = [...workers.values()].filter((w) => w.namespace === namespace && w.name === name);
    // The live pod of that name rather than one still terminating.
    return matches.find((w) => !w.isTerminating) ?? matches[0];
  };
  const podInfo = (namespace: string, name: string): PodRuntimeInfo | undefined => workerOf(namespace, name)?.info();
  const httpServer = await startKubeletServer({
    pods: {
      logPath: (ns, pod, container) => podInfo(ns, pod)?.logs[container],
      podIP: (ns, pod) => podInfo(ns, pod)?.ip ?? undefined,
      execTarget: (ns, pod, container) => workerOf(ns, pod)?.execTarget(container),
    },
    auth: opts.serverAuth,
    logger: log,
  });

  // The IP base (and its uid range) is ours alone from here on; a live owner makes this throw.
  let lock: IpBaseLock;
  try {
    lock = lockIpBase(opts.ipBase);
  } catch (err) {
    await httpServer.close();
    throw err;
  }
  // Processes of an earlier kubelet on the same IP base that died without stopping its pods.
  const leftovers = killUids(minUid, maxUid);
  if (leftovers > 0) log.warn({ killed: leftovers }, 'killed processes an earlier kubelet left behind');

  const abort = new AbortController();
  let stateTimer: NodeJS.Timeout | undefined;

  const pods = (): PodRuntimeInfo[] => [...workers.values()].map((w) => w.info());
  const writeState = (): void => {
    if (!opts.stateFile) return;
    const state: KubeletState = { nodeName: opts.nodeName, pods: pods() };
    const tmp = `${opts.stateFile}.tmp`;
    writeFileSync(tmp, JSON.stringify(state, null, 2));
    renameSync(tmp, opts.stateFile);
  };
  const stateChanged = (): void => {
    if (!opts.stateFile || stateTimer) return;
    stateTimer = setTimeout(() => {
      stateTimer = undefined;
      try {
        writeState();
      } catch (err) {
        log.warn({ err: errorMessage(err) }, 'cannot write the kubelet state file');
      }
    }, 50);
  };

  const deps = {
    client,
    hostIP: HOST_IP,
    runDir: opts.runDir,
    ipam,
    uidBase,
    images: opts.images,
    serviceEnv: serviceEnv(opts.apiServer.host, opts.apiServer.port),
    ...(opts.extraEnv ? { extraEnv: opts.extraEnv } : {}),
    backoff: { ...DEFAULT_BACKOFF, maxMs: opts.maxRestartBackoffMs ?? DEFAULT_BACKOFF.maxMs },
    logger: log,
    record: eventRecorder(client, opts.nodeName, log),
    onChange: stateChanged,
    onDone: (w: PodWorker) => {
      if (workers.get(w.uid) === w) workers.delete(w.uid);
      stateChanged();
    },
  };

  const upsert = (pod: V1Pod): void => {
    const uid = pod.metadata?.uid;
    if (!uid || abort.signal.aborted) return;
    const existing = workers.get(uid);
    if (existing) {
      existing.update(pod);
      return;
    }
    const worker = new PodWorker(pod, deps);
    workers.set(uid, worker);
    worker.start();
    stateChanged();
  };

  const heartbeat = runNodeHeartbeat({
    client,
    nodeName: opts.nodeName,
    kubeletPort: httpServer.port,
    logger: log,
    leaseRenewMs: opts.leaseRenewMs ?? 10_000,
    nodeStatusMs: opts.nodeStatusMs ?? 10_000,
    onReconnect: () => {
      for (const w of workers.values()) w.repostStatus();
    },
    ...(opts.registerWithTaints ? { taints: opts.registerWithTaints } : {}),
    signal: abort.signal,
  });

  // The shared reflector: a re-list reports pods that vanished meanwhile as DELETED, so the
  // workers always match the API's pods bound to this node.
  const podReflector = new ListWatch<V1Pod>({
    what: `pods bound to ${opts.nodeName}`,
    client,
    path: '/api/v1/pods',
    fieldSelector: `spec.nodeName=${opts.nodeName}`,
    key: (p) => p.metadata?.uid, // a recreated pod of the same name is another pod
    logger: log,
    ...KUBELET_WATCH,
  });
  podReflector.on((ev) => {
    if (ev.type === 'DELETED') workers.get(ev.object.metadata?.uid ?? '')?.removed();
    else if (ev.type !== 'SYNCED') upsert(ev.object);
  });
  const podWatch = podReflector.run(abort.signal);

  log.info({ ipBase: opts.ipBase, uids: `${minUid}-${maxUid}` }, 'process kubelet started');

  let stopping: Promise<void> | undefined;
  const stop = (): Promise<void> => {
    stopping ??= (async () => {
      log.info('process kubelet stopping: killing every pod process');
      abort.abort();
      await Promise.all([...workers.values()].map((w) => w.shutdown()));
      await waitAtMost(Promise.all([heartbeat, podWatch]), 5_000);
      await httpServer.close();
      const left = killUids(minUid, maxUid);
      if (left > 0) log.warn({ killed: left }, 'killed leftover pod processes');
      // SIGKILL is delivered asynchronously: return only once the pods' uids run nothing (bounded).
      const deadline = Date.now() + 5_000;
      while (pidsOfUids(minUid, maxUid).length > 0 && Date.now() < deadline) {
        killUids(minUid, maxUid);
        await sleep(20);
      }
      const stuck = pidsOfUids(minUid, maxUid);
      if (stuck.length > 0) log.error({ pids: stuck }, 'pod processes survived SIGKILL for 5 s (uninterruptible sleep?)');
      lock.release();
      clearTimeout(stateTimer);
      try {
        writeState();
      } catch {
        // the run directory may be gone already
      }
      log.info('process kubelet stopped');
    })();
    return stopping;
  };

  return {
    nodeName: opts.nodeName,
    podInfo,
    pods,
    stop,
  };
}
