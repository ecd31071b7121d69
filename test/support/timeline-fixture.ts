// A synthetic write-load timeline for the timeline drawing's tests (and a sample picture:
// `npx tsx -e "…syntheticChart()…"` → JSON → `npm run timeline -- <json> <svg>`).
import type { TimelineEvent } from '../../tools/events.js';
import type { TimelineChart } from '../../tools/timeline-svg.js';

const T0 = 1_700_000_000_000;

/**
 * A synthetic 660 s chaos run, writes per 100 ms: a 2.5 s outage after a kill at 12 s, a 0.5 s dip
 * (not a gap), a 6.2 s outage at 310 s under a partition, one straddling the 600 s row boundary, and
 * an event from before the load started.
 */
export function syntheticChart(): TimelineChart {
  const n = 6600;
  let seed = 7;
  const rand = (): number => ((seed = (seed * 1103515245 + 12345) % 2 ** 31) / 2 ** 31);
  const zero = (fromS: number, toS: number) => (i: number) => i >= fromS * 10 && i < toS * 10;
  const outages = [zero(12, 14.5), zero(100, 100.5), zero(310, 316.2), zero(598, 603)];
  const successes = Array.from({ length: n }, (_, i) => (outages.some((o) => o(i)) ? 0 : 30 + Math.floor(rand() * 20)));
  const failures = successes.map((s, i) => (s === 0 && i % 3 === 0 ? 2 : 0));
  const ev = (s: number, kind: TimelineEvent['kind'], label: string): TimelineEvent => ({ at: T0 + s * 1000, kind, label });
  return {
    title: 'Chaos: seed 87, 11 min (synthetic)',
    timeline: { startedAt: T0, bucketMs: 100, successes, failures },
    events: [
      ev(-200, 'promote', 'cs-0 writable'),
      ev(11.9, 'kill', 'cs-0 tarantool'),
      ev(12.1, 'down', 'cs-0 down'),
      ev(14.3, 'promote', 'cs-1 writable'),
      ev(16, 'up', 'cs-0 back (ro)'),
      ev(99.9, 'api-down', 'API server down'),
      ev(130, 'api-up', 'API server up'),
      ev(200, 'api-flaky', '20% 500s'),
      ev(309.8, 'partition', 'cs-1 cut off'),
      ev(310.6, 'fence', 'cs-1 read-only'),
      ev(316, 'promote', 'cs-2 writable'),
      ev(330, 'heal', 'cs-1 healed'),
      ev(450, 'agent-kill', 'cs-2 agent'),
      ev(597.9, 'pod-delete', 'cs-2'),
      ev(598.1, 'down', 'cs-2 down'),
      ev(602.8, 'promote', 'cs-0 writable'),
      ev(640, 'rollout', 'template changed'),
    ],
  };
}
