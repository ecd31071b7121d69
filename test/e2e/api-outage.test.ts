import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { setTimeout as sleep } from 'node:timers/promises';
import { describe, expect, it } from 'vitest';
import { freeIpBase } from '../../localcluster/kubelet/ipbase-lock.js';
import { unixUidRange } from '../../localcluster/kubelet/ipam.js';
import { pidsOfUids } from '../../localcluster/kubelet/process.js';
import { startShoalStack, type ShoalStack } from '../../demo/shoal-stack.js';
import { createLogger } from '../../common/log.js';
import { createNamespace, kubeClients, waitFor } from '../../tools/kube.js';
import { agentStatus, consoleOf, deployReplicaSet, instancesOf, waitForReplicaSet, type LiveInstance } from '../../tools/shoal-cluster.js';
import { startWriteLoad } from '../../tools/workload.js';
import { evalOn, factsOf, persisted, scale } from '../support/instance-facts.js';

// Issue 5: with the API server stopped for a minute, masters keep accepting writes (no demotion
// because the API blinked) and coordination resumes when it returns. On a Shoal stack of its own
// (stopping the shared cluster's API server would disturb the other files), so it runs beside them.

function record(what: string, ms: number): void {
  process.stderr.write(`[e2e api-outage] ${what}: ${(ms / 1000).toFixed(1)} s\n`);
}

describe('the coordinator through an API server outage (issue 5), end to end', () => {
it('keeps masters writable through a one-minute API server outage and resumes coordinating after it', async () => {
  const runDir = await mkdtemp(path.join(os.tmpdir(), 'shoal-e2e-coord-'));
  const ipBase = freeIpBase(60, 69);
  const logFile = path.join(runDir, 'stack.log');
  let stack: ShoalStack | undefined;
  try {
    const t0 = Date.now();
    stack = await startShoalStack({ runDir, name: `coord${ipBase.split('.')[2]}`, ipBase, logger: createLogger({ component: 'test' }, undefined, logFile) });
    record('own Shoal stack (control plane + kubelet + webhook) up', Date.now() - t0);
    const own = kubeClients(stack.cluster.kubeconfig);
    const ownState = stack.cluster.stateFile;
    const ns = await createNamespace(own.client, 'co-api');
    let t = Date.now();
    await deployReplicaSet(own, { namespace: ns, cluster: 'api', name: 'store', replicas: 3 });
    const master = await waitForReplicaSet(own, ns, 'store', 3, { timeoutMs: 180_000 });
    record('own stack: 3 replicas Ready', Date.now() - t);
    const inst: LiveInstance[] = await instancesOf(own, ns, 'store');
    const termBefore = (await persisted(own, ns, 'api')).term;
    const masterConsole = consoleOf(ownState, ns, master)!;

    // The write load targets the master's console directly: finding it through the API would fail now.
    const load = startWriteLoad({ target: async () => ({ name: master, console: masterConsole }), space: 'load', intervalMs: 100 });
    const writable: string[] = [];
    const roles: string[] = [];
    let outageStart = 0;
    let outageEnd = 0;
    try {
      await sleep(2_000);
      outageStart = Date.now();
      await stack.cluster.controlPlane.stopApiServer();
      const down = Date.now();
      // For a minute: who is writable, what the agents say.
      while (Date.now() - down < 60_000) {
        for (const i of inst) {
          const ro = await evalOn(ownState, ns, i.pod, 'return box.info.ro').catch(() => null);
          if (ro === false && i.pod !== master) writable.push(`${i.pod} at +${Date.now() - outageStart} ms`);
          if (ro !== false && i.pod === master) writable.push(`master ${master} not writable (ro=${String(ro)}) at +${Date.now() - outageStart} ms`);
          const s = await agentStatus(i.ip);
          if (s && (i.pod === master) !== (s.instance.role === 'master')) roles.push(`${i.pod}: ${s.instance.role} at +${Date.now() - outageStart} ms`);
        }
        await sleep(2_000);
      }
    } finally {
      if (outageStart && !outageEnd) {
        await stack.cluster.controlPlane.startApiServer();
        outageEnd = Date.now();
      }
    }
    record('API server outage (stop called → start returned)', outageEnd - outageStart);
    await sleep(3_000);
    const summary = await load.stop();
    const during = load.log.attempts.filter((a) => a.startedAt >= outageStart && a.endedAt <= outageEnd);
    const acked = during.filter((a) => a.ok).length;
    process.stderr.write(
      `[e2e api-outage] writes during the outage: ${acked} acknowledged of ${during.length}; whole load: ${summary.acknowledged}/${summary.attempted}, longest gap ${summary.longestGapMs.toFixed(0)} ms, errors ${JSON.stringify(summary.errors)}\n`,
    );
    expect(writable).toEqual([]);
    expect(roles).toEqual([]);
    // Writes kept being acknowledged through the whole outage, in every 10-s slice of it.
    for (let from = outageStart; from + 10_000 <= outageEnd; from += 10_000) {
      expect(during.filter((a) => a.ok && a.endedAt >= from && a.endedAt < from + 10_000).length).toBeGreaterThan(0);
    }
    expect(summary.errors.lua ?? 0).toBe(0); // never "read-only"

    // Coordination resumes: a scale-up after the outage is joined; the master is unchanged.
    t = Date.now();
    await scale(stack.cluster.kubeconfig, ns, 'store', 4);
    await waitFor('pod store-3 created', () => own.in(ns).pods.get('store-3'), { timeoutMs: 120_000, intervalMs: 500 });
    record('after the outage: scale 3 → 4 → pod store-3 created (controllers back)', Date.now() - t);
    const masterAfter = await waitForReplicaSet(own, ns, 'store', 4, { timeoutMs: 180_000 });
    record('after the outage: scale 3 → 4 joined', Date.now() - t);
    expect(masterAfter).toBe(master);
    await waitFor(
      'store-3 in the master\'s replication and _cluster, quorum 3',
      async () => {
        const f = await factsOf(ownState, ns, master);
        return f.replication.length === 4 && f.cluster.length === 4 && f.quorum === 3;
      },
      { timeoutMs: 60_000, intervalMs: 500 },
    );
    const termAfter = (await persisted(own, ns, 'api')).term;
    process.stderr.write(`[e2e api-outage] own stack: term ${termBefore} before the outage, ${termAfter} after\n`);
    expect(termAfter).toBeGreaterThanOrEqual(termBefore);
  } finally {
    await stack?.stop();
    const [minUid, maxUid] = unixUidRange(ipBase, 200_000);
    expect(pidsOfUids(minUid, maxUid)).toEqual([]);
    await rm(runDir, { recursive: true, force: true });
  }
});
});
