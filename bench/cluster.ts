// The one local cluster (control plane, process kubelet, webhook) every cluster benchmark shares:
// started by the first benchmark that asks, stopped by run.ts after the last one. Also the tally of
// acknowledged writes checked and lost across the benchmarks that write (the "lost writes" figure),
// and the Tarantool version every pod reported (results.json records it beside the lane asked for).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import type { TarantoolLane } from '../demo/tarantool-binaries.js';
import { createLogger } from '../common/log.js';
import { freeIpBase } from '../localcluster/kubelet/ipbase-lock.js';
import { startShoalStack, type ShoalStack } from '../demo/shoal-stack.js';
import { createNamespace, kubeClients, type KubeClients } from '../tools/kube.js';
import { deployReplicaSet, waitForReplicaSet, consoleOf, instancesOf, tarantoolVersions, type ReplicaSetSpec } from '../tools/shoal-cluster.js';
import { acknowledgedKeys, verifyAcknowledged, type WriteLog, type WriteTarget } from '../tools/workload.js';

export interface BenchCluster {
  stack: ShoalStack;
  k: KubeClients;
  namespace: string;
  runDir: string;
  logFile: string;
  /** The Tarantool every replica set of this cluster runs. */
  lane: TarantoolLane;
  /** The pieces of a replica set spec every benchmark's sets share (lane, memtx memory for the unpaced writers). */
  spec: Pick<ReplicaSetSpec, 'lane' | 'memtxMemoryMB'>;
  /** Deploys (once) a 3-instance replica set of that name and waits until it has one agreed master. */
  replicaSet(name: string, signal: AbortSignal): Promise<string>;
}

let starting: Promise<BenchCluster> | undefined;
const deployed = new Set<string>();

export const REPLICAS = 3;
export const CLUSTER = 'bench';

/** Where each benchmark's write mixes put their keys on the `fo` set they share (see write-mix.ts mixKeySpan). */
export const KEY_REGIONS = { failover: 1, writes: 1_000_000_000_000 } as const;

/** memtx_memory of the bench's replica sets: the unpaced writers write hundreds of thousands of rows. */
const MEMTX_MEMORY_MB = 256;

/**
 * Tarantool versions the benchmarks saw, by where: `<replica set>/<pod>` from the agents' /status
 * (instance.version), or a standalone Tarantool's _TARANTOOL. run.ts writes them to results.json.
 */
export const seenVersions = new Map<string, string | null>();

let startedLane: TarantoolLane | undefined;

export function benchCluster(log: (m: string) => void, signal: AbortSignal, lane: TarantoolLane): Promise<BenchCluster> {
  if (startedLane !== undefined && startedLane !== lane) return Promise.reject(new Error(`the bench cluster runs lane ${startedLane}, not ${lane}`));
  startedLane = lane;
  starting ??= start(log, signal, lane);
  return starting;
}

async function start(log: (m: string) => void, signal: AbortSignal, lane: TarantoolLane): Promise<BenchCluster> {
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-'));
  const logFile = path.join(runDir, 'bench.log');
  // Away from the demo's 127.0.1 and the e2e runs' 127.0.2x.
  const ipBase = freeIpBase(40, 49);
  const t0 = Date.now();
  const stack = await startShoalStack({ runDir, name: `bench${ipBase.split('.')[2]}`, ipBase, logger: createLogger({ component: 'bench' }, undefined, logFile), signal });
  log(`local cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s (pods on ${ipBase}.x, logs ${logFile})`);
  const k = kubeClients(stack.cluster.kubeconfig);
  const namespace = await createNamespace(k.client, 'bench', signal);
  const c: BenchCluster = {
    stack,
    k,
    namespace,
    runDir,
    logFile,
    lane,
    spec: { lane, memtxMemoryMB: MEMTX_MEMORY_MB },
    async replicaSet(name, sig) {
      if (!deployed.has(name)) {
        await deployReplicaSet(k, { namespace, cluster: CLUSTER, name, replicas: REPLICAS, ...c.spec });
        deployed.add(name);
      }
      const master = await waitForReplicaSet(k, namespace, name, REPLICAS, { timeoutMs: 240_000, signal: sig });
      for (const [pod, version] of Object.entries(await tarantoolVersions(k, namespace, name))) seenVersions.set(`${name}/${pod}`, version);
      return master;
    },
  };
  return c;
}

/** Stops the cluster if one was started (every process it ran); removes its run directory unless asked to keep it. */
export async function stopBenchCluster(keep: boolean): Promise<string | undefined> {
  if (!starting) return undefined;
  const c = await starting.catch(() => undefined);
  starting = undefined;
  startedLane = undefined;
  deployed.clear();
  if (!c) return undefined;
  await c.stack.stop();
  if (!keep) await rm(c.runDir, { recursive: true, force: true });
  return keep ? c.runDir : undefined;
}

/** The consoles of a replica set's live instances (for verifying acknowledged writes). */
export async function consolesOf(c: BenchCluster, replicaset: string): Promise<WriteTarget[]> {
  const inst = await instancesOf(c.k, c.namespace, replicaset);
  return inst.flatMap((i) => {
    const console = consoleOf(c.stack.cluster.stateFile, c.namespace, i.pod);
    return console ? [{ name: i.pod, console }] : [];
  });
}

export interface LostTally {
  /** Acknowledged writes checked on every instance. */
  checked: number;
  /** Acknowledged writes missing on at least one instance. */
  lost: number;
  /** Instances that could not be read (their check did not happen). */
  unread: string[];
  runs: string[];
}

export const lostTally: LostTally = { checked: 0, lost: 0, unread: [], runs: [] };

/** Checks that every acknowledged write of every writer's log is on every instance of the replica set; adds to the tally. */
export async function checkAcknowledged(c: BenchCluster, replicaset: string, logs: readonly WriteLog[], run: string, signal: AbortSignal): Promise<number> {
  await c.replicaSet(replicaset, signal); // settled: one master, every pod Ready
  const checks = await verifyAcknowledged(logs, await consolesOf(c, replicaset), { settleMs: 15_000, signal });
  const missing = new Set(checks.flatMap((ch) => ch.missing));
  lostTally.checked += acknowledgedKeys(logs).length;
  lostTally.lost += missing.size;
  lostTally.unread.push(...checks.filter((ch) => ch.error !== undefined).map((ch) => `${run}: ${ch.name} (${ch.error ?? ''})`));
  lostTally.runs.push(run);
  return missing.size;
}
