import { describe, expect, it } from 'vitest';
import { formatSummary, runChaos } from '../../tools/chaos/run.js';
import { FAULT_KINDS } from '../../tools/chaos/schedule.js';

// A short seeded chaos run (npm run chaos -- --minutes 1.5 --seed 8) on a local cluster of its own
// (it puts the API fault proxy between the pods and the API server): seed 8 draws seven kinds in
// 90 s — master and replica Tarantool kills, a coordinator agent kill, a one-way partition, a mesh
// cut, a frozen master agent and a window of 500s/409s/slow answers from the API.

describe('chaos (short seeded run)', () => {
  it('loses no acknowledged write, never has two writable instances, and converges', async () => {
    const lines: string[] = [];
    const summary = await runChaos({ minutes: 1.5, seed: 8, log: (l) => void lines.push(l) });
    process.stderr.write(`${formatSummary(summary)}\n`);
    expect(summary.violations, lines.join('\n')).toEqual([]);
    expect(summary.lost).toBe(0);
    expect(summary.unread).toEqual([]);
    expect(summary.dualWritableSamples).toBe(0);
    // The write history's check ran on every acknowledged write (Tarantool 3.x reports the queue term).
    expect(summary.dualWritableHistory.violations).toBe(0);
    if (summary.tarantool.lane !== '2.6') expect(summary.dualWritableHistory.checked).toBe(summary.writes.acknowledged);
    expect(summary.linearizability.verdict, summary.linearizability.detail).toBe('ok');
    expect(summary.history.gets).toBeGreaterThan(0);
    expect(summary.convergeS).not.toBeNull();
    expect(summary.writes.acknowledged).toBeGreaterThan(0);
    // The schedule really injected faults (a run that skipped them all would prove nothing)…
    const injected = FAULT_KINDS.filter((k) => summary.faults[k].injected > 0);
    expect(injected.length).toBeGreaterThanOrEqual(4);
    expect(summary.faults['partition-oneway'].injected + summary.faults['mesh-cut'].injected, lines.join('\n')).toBeGreaterThan(0);
    // …among them a flaky-API window in which the agents' requests really got faults.
    expect(summary.faults['api-flaky'].injected, lines.join('\n')).toBe(1);
    expect((summary.apiProxy?.error ?? 0) + (summary.apiProxy?.conflict ?? 0) + (summary.apiProxy?.slow ?? 0), lines.join('\n')).toBeGreaterThan(0);
  });
});
