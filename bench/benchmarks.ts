// Every benchmark `npm run bench` runs, in order. A new measurement is one file exporting a
// Benchmark, listed here (replacing its slot when there is one).
import { agentIdleRssBenchmark } from './agent-rss.js';
import { applyToReadySlot, failoverSlot, lostWritesSlot, rollingRestartSlot } from './cluster-slots.js';
import { consoleBenchmark } from './console.js';
import type { Benchmark } from './types.js';
import { webhookBenchmark } from './webhook.js';

export const BENCHMARKS: readonly Benchmark[] = [
  webhookBenchmark,
  consoleBenchmark,
  agentIdleRssBenchmark,
  failoverSlot,
  rollingRestartSlot,
  lostWritesSlot,
  applyToReadySlot,
];
