// SLOT — agent idle RSS (SPEC §7), in MB. Measured by the agent's owners once an agent runs idle in
// a configured pod of the local cluster: replace this slot with a Benchmark that reads the agent
// process's VmRSS (/proc/<pid>/status, pid from the demo state file) after it has settled.
import { slot } from './types.js';

export const agentIdleRssBenchmark = slot(
  'agent idle RSS',
  [{ name: 'agent idle RSS', unit: 'MB', what: 'resident memory of shoal-agent, idle, in a configured 3-instance replica set' }],
  'the agent is measured idle in a running local cluster; that measurement belongs to the agent work and is not written yet (slot: bench/agent-rss.ts)',
);
