// Carrying out one scheduled fault on a running local cluster. Each fault ends healed (a
// partition healed, the API server back) before the next one starts; what it hit is logged.
import { setTimeout as sleep } from 'node:timers/promises';
import type { LocalCluster } from '../../localcluster/cluster.js';
import { AGENT_CONTAINER } from '../../common/names.js';
import type { EventKind } from '../events.js';
import type { KubeClients } from '../kube.js';
import { agentStatus, localPods } from '../shoal-cluster.js';
import { prng, type ScheduledFault } from './schedule.js';

/** In a flaky-API window: the fraction of the pods' API requests that get a fault, and how late a slow one is forwarded. */
export const API_FLAKY_RATE = 0.4;
export const API_FLAKY_SLOW_MS: readonly [number, number] = [200, 4000];

export interface FaultTarget {
  cluster: LocalCluster;
  k: KubeClients;
  namespace: string;
  replicaset: string;
  replicas: number;
  mark(kind: EventKind, label: string): void;
  signal: AbortSignal;
}

/** What happened: the pod hit, or why nothing was (e.g. no master known at that moment). */
export interface FaultOutcome {
  fault: ScheduledFault;
  at: number;
  done: boolean;
  detail: string;
}

const pickOf = <T>(xs: readonly T[], p: number): T | undefined => xs[Math.min(xs.length - 1, Math.floor(p * xs.length))];

async function roles(t: FaultTarget): Promise<{ pod: string; role: string | undefined; coordinator: boolean }[]> {
  const pods = localPods(t.cluster.stateFile, t.namespace, t.replicaset, t.replicas);
  return Promise.all(
    pods.map(async (p) => {
      const s = await agentStatus(p.ip, 1000);
      return { pod: p.pod, role: s?.instance.role, coordinator: s?.coordinator.self === true };
    }),
  );
}

function kill(t: FaultTarget, pod: string, container: string): string {
  const pid = t.cluster.podInfo(t.namespace, pod)?.pids[container];
  if (!pid) return `${pod} has no running ${container}`;
  try {
    process.kill(pid, 'SIGKILL');
  } catch (err) {
    return `kill ${pid} failed: ${(err as Error).message}`;
  }
  return '';
}

export async function injectFault(t: FaultTarget, f: ScheduledFault): Promise<FaultOutcome> {
  const at = Date.now();
  const out = (done: boolean, detail: string): FaultOutcome => ({ fault: f, at, done, detail });
  const pods = await roles(t);
  const all = pods.map((p) => p.pod);
  switch (f.kind) {
    case 'kill-master-tarantool':
    case 'kill-replica-tarantool': {
      const wanted = f.kind === 'kill-master-tarantool' ? 'master' : 'replica';
      const pod = pickOf(pods.filter((p) => p.role === wanted).map((p) => p.pod), f.pick);
      if (!pod) return out(false, `no ${wanted} known`);
      const err = kill(t, pod, 'tarantool');
      if (!err) t.mark('kill', `SIGKILL ${pod} tarantool (${wanted})`);
      return out(!err, err || `${pod} (${wanted})`);
    }
    case 'kill-coordinator-agent': {
      const pod = pods.find((p) => p.coordinator)?.pod;
      if (!pod) return out(false, 'no coordinator known');
      const err = kill(t, pod, AGENT_CONTAINER);
      if (!err) t.mark('agent-kill', `SIGKILL ${pod} agent (coordinator)`);
      return out(!err, err || pod);
    }
    case 'delete-pod': {
      const pod = pickOf(all, f.pick);
      if (!pod) return out(false, 'no pod running');
      t.mark('pod-delete', `delete ${pod}`);
      await t.k.in(t.namespace).pods.delete(pod);
      return out(true, pod);
    }
    case 'partition': {
      // Half the partitions cut the master off: the interesting case.
      const master = pods.find((p) => p.role === 'master')?.pod;
      const pod = f.pick < 0.5 && master ? master : pickOf(all, f.pick);
      if (!pod) return out(false, 'no pod running');
      await t.cluster.cutOff(t.namespace, pod);
      t.mark('partition', `cut off ${pod}`);
      try {
        await sleep(f.durationS * 1000, undefined, { signal: t.signal }).catch(() => undefined);
      } finally {
        await t.cluster.heal(t.namespace, pod);
        t.mark('heal', `heal ${pod}`);
      }
      return out(true, `${pod}${pod === master ? ' (master)' : ''} for ${f.durationS} s`);
    }
    case 'api-down': {
      await t.cluster.controlPlane.stopApiServer();
      t.mark('api-down', 'API server stopped');
      try {
        await sleep(f.durationS * 1000, undefined, { signal: t.signal }).catch(() => undefined);
      } finally {
        await t.cluster.controlPlane.startApiServer();
        t.mark('api-up', 'API server back');
      }
      return out(true, `for ${f.durationS} s`);
    }
    case 'api-flaky': {
      const proxy = t.cluster.apiFaultProxy;
      if (!proxy) return out(false, 'the pods talk to the API server directly (cluster started without apiFaultProxy)');
      const before = proxy.counts();
      const seed = Math.floor(f.pick * 2 ** 32);
      proxy.openWindow({ random: prng(seed), rate: API_FLAKY_RATE, slowMs: API_FLAKY_SLOW_MS });
      t.mark('api-flaky', `API answers 500/409/slow (seed ${seed})`);
      try {
        await sleep(f.durationS * 1000, undefined, { signal: t.signal }).catch(() => undefined);
      } finally {
        proxy.closeWindow();
        t.mark('api-up', 'API answers faithfully');
      }
      const after = proxy.counts();
      const d = (k: keyof typeof after): number => after[k] - before[k];
      return out(true, `for ${f.durationS} s, seed ${seed}: ${d('error')} × 500, ${d('conflict')} × 409, ${d('slow')} slow, ${d('forwarded')} forwarded`);
    }
  }
}
