// Every benchmark `npm run bench` runs, in order. A new measurement is one file exporting a
// Benchmark, listed here. The cluster ones share one local cluster (cluster.ts), stopped by run.ts.
import { agentIdleRssBenchmark } from './agent-rss.js';
import { applyToReadyBenchmark } from './apply-to-ready.js';
import { consoleBenchmark } from './console.js';
import { failoverBenchmark } from './failover.js';
import { lostWritesBenchmark } from './lost-writes.js';
import { rollingRestartBenchmark } from './rolling-restart.js';
import type { Benchmark } from './types.js';
import { webhookBenchmark } from './webhook.js';
import { writesBenchmark } from './writes.js';

export const BENCHMARKS: readonly Benchmark[] = [
  webhookBenchmark,
  consoleBenchmark,
  applyToReadyBenchmark,
  agentIdleRssBenchmark,
  writesBenchmark,
  failoverBenchmark,
  rollingRestartBenchmark,
  lostWritesBenchmark,
];
