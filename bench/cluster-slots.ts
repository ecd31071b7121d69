// SLOTS — the SPEC §7 figures that need the local cluster (localcluster/cluster.ts, webhook,
// agents, a 3-instance replica set) and the write load (test/helpers/workload.ts). Each becomes a
// file of its own exporting a Benchmark (e.g. bench/failover.ts), listed in benchmarks.ts in place
// of its slot here.
import { slot, type FigureSpec } from './types.js';

const WHY = 'needs the local cluster with agents running a 3-instance replica set, which is not ready yet';

export const failoverSlot = slot(
  'failover',
  [{ name: 'failover time', unit: 's', what: "SIGKILL of the master's Tarantool → first acknowledged write on the new master; ≥ 5 runs" }],
  WHY,
);

export const rollingRestartSlot = slot(
  'rolling restart',
  [
    {
      name: 'rolling restart write gap',
      unit: 's',
      what: 'seconds without a successful write during a full rolling restart of 3 instances; baseline: naive restart in StatefulSet order',
    },
  ],
  WHY,
);

const LOST: FigureSpec = { name: 'acknowledged writes lost', unit: 'writes', what: 'acknowledged writes missing on any instance after the failover and rollout runs (must be 0)' };
export const lostWritesSlot = slot('lost writes', [LOST], WHY);

export const applyToReadySlot = slot(
  'apply to ready',
  [{ name: 'apply to all pods ready', unit: 's', what: 'kubectl apply of a 3-replica StatefulSet → every pod Ready' }],
  WHY,
);
