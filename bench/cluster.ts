// The one local cluster (control plane, process kubelet, webhook) every cluster benchmark shares:
// started by the first benchmark that asks, stopped by run.ts after the last one. Also the tally of
// acknowledged writes checked and lost across the benchmarks that write (the "lost writes" figure).
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { createLogger } from '../shared/log.js';
import { freeIpBase } from '../localcluster/kubelet/ipbase-lock.js';
import { startShoalStack, type ShoalStack } from '../localcluster/shoal-stack.js';
import { createNamespace, kubeClients, type KubeClients } from '../tools/kube.js';
import { deployReplicaSet, waitForReplicaSet, consoleOf, instancesOf } from '../tools/shoal-cluster.js';
import { verifyAcknowledged, type WriteLog, type WriteTarget } from '../tools/workload.js';

export interface BenchCluster {
  stack: ShoalStack;
  k: KubeClients;
  namespace: string;
  runDir: string;
  logFile: string;
  /** Deploys (once) a 3-instance replica set of that name and waits until it has one agreed master. */
  replicaSet(name: string, signal: AbortSignal): Promise<string>;
}

let starting: Promise<BenchCluster> | undefined;
const deployed = new Set<string>();

export const REPLICAS = 3;
export const CLUSTER = 'bench';

export function benchCluster(log: (m: string) => void, signal: AbortSignal): Promise<BenchCluster> {
  starting ??= start(log, signal);
  return starting;
}

async function start(log: (m: string) => void, signal: AbortSignal): Promise<BenchCluster> {
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-bench-'));
  const logFile = path.join(runDir, 'bench.log');
  // Away from the demo's 127.0.1 and the e2e runs' 127.0.2x.
  const ipBase = freeIpBase(40, 49);
  const t0 = Date.now();
  const stack = await startShoalStack({ runDir, name: `bench${ipBase.split('.')[2]}`, ipBase, logger: createLogger({ component: 'bench' }, undefined, logFile), signal });
  log(`local cluster up in ${((Date.now() - t0) / 1000).toFixed(1)} s (pods on ${ipBase}.x, logs ${logFile})`);
  const k = kubeClients(stack.cluster.kubeconfig);
  const namespace = await createNamespace(k.core, 'bench', signal);
  const c: BenchCluster = {
    stack,
    k,
    namespace,
    runDir,
    logFile,
    async replicaSet(name, sig) {
      if (!deployed.has(name)) {
        await deployReplicaSet(k, { namespace, cluster: CLUSTER, name, replicas: REPLICAS });
        deployed.add(name);
      }
      return waitForReplicaSet(k, namespace, name, REPLICAS, { timeoutMs: 240_000, signal: sig });
    },
  };
  return c;
}

/** Stops the cluster if one was started (every process it ran); removes its run directory unless asked to keep it. */
export async function stopBenchCluster(keep: boolean): Promise<string | undefined> {
  if (!starting) return undefined;
  const c = await starting.catch(() => undefined);
  starting = undefined;
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

/** Checks that every acknowledged write of `log` is on every instance of the replica set; adds to the tally. */
export async function checkAcknowledged(c: BenchCluster, replicaset: string, log: WriteLog, run: string, signal: AbortSignal): Promise<number> {
  await c.replicaSet(replicaset, signal); // settled: one master, every pod Ready
  const checks = await verifyAcknowledged(log, await consolesOf(c, replicaset), { settleMs: 15_000, signal });
  const missing = new Set(checks.flatMap((ch) => ch.missing));
  lostTally.checked += log.attempts.filter((a) => a.ok).length;
  lostTally.lost += missing.size;
  lostTally.unread.push(...checks.filter((ch) => ch.error !== undefined).map((ch) => `${run}: ${ch.name} (${ch.error ?? ''})`));
  lostTally.runs.push(run);
  return missing.size;
}
