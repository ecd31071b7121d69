// The chaos schedule (pure, seeded) and the choice of the pod a targeted fault hits.
import { describe, expect, it } from 'vitest';
import { mostlyMaster } from '../../tools/chaos/faults.js';
import { chaosSchedule, describeSchedule, FAULT_DURATION_S, FAULT_KINDS, MASTER_SHARE } from '../../tools/chaos/schedule.js';

describe('chaosSchedule', () => {
  const long = chaosSchedule({ seed: 2026, durationS: 3600 });

  it('is the same for the same seed and differs for another', () => {
    expect(chaosSchedule({ seed: 2026, durationS: 3600 })).toEqual(long);
    expect(chaosSchedule({ seed: 2027, durationS: 3600 })).not.toEqual(long);
  });

  it('draws every kind, the new partition shapes and the agent freeze included', () => {
    const kinds = new Set(long.map((f) => f.kind));
    expect([...kinds].sort()).toEqual([...FAULT_KINDS].sort());
    for (const k of ['partition-oneway', 'mesh-cut', 'freeze-agent'] as const) expect(long.filter((f) => f.kind === k).length).toBeGreaterThan(5);
  });

  it('gives every windowed kind a length in its range and instant kinds none', () => {
    for (const f of long) {
      const range = FAULT_DURATION_S[f.kind];
      if (range) {
        expect(f.durationS).toBeGreaterThanOrEqual(range[0]);
        expect(f.durationS).toBeLessThanOrEqual(range[1]);
      } else expect(f.durationS).toBe(0);
    }
    // freezes both shorter and longer than the 5 s failover timeout
    const freezes = long.filter((f) => f.kind === 'freeze-agent').map((f) => f.durationS);
    expect(Math.min(...freezes)).toBeLessThan(5);
    expect(Math.max(...freezes)).toBeGreaterThan(5);
  });

  it('draws the direction of a one-way cut, both ways about equally, and only for that kind', () => {
    const oneway = long.filter((f) => f.kind === 'partition-oneway');
    expect(oneway.every((f) => typeof f.reverse === 'boolean')).toBe(true);
    const reversed = oneway.filter((f) => f.reverse).length;
    expect(reversed).toBeGreaterThan(0);
    expect(reversed).toBeLessThan(oneway.length);
    expect(long.filter((f) => f.kind !== 'partition-oneway').every((f) => f.reverse === undefined)).toBe(true);
  });

  it('starts each fault after the previous one ended and a quiet gap', () => {
    for (let i = 1; i < long.length; i++) {
      const prev = long[i - 1];
      const f = long[i];
      if (!prev || !f) continue;
      expect(f.atS).toBeGreaterThanOrEqual(prev.atS + prev.durationS + 6 - 0.1);
    }
  });

  it('describes a one-way cut with its direction', () => {
    expect(describeSchedule([{ atS: 1, kind: 'partition-oneway', pick: 0.1, durationS: 4, reverse: false }])).toContain('out: the pod stops being heard');
    expect(describeSchedule([{ atS: 1, kind: 'partition-oneway', pick: 0.1, durationS: 4, reverse: true }])).toContain('in: the pod stops hearing');
  });
});

describe('mostlyMaster', () => {
  const pods = [
    { pod: 'cs-0', role: 'replica' },
    { pod: 'cs-1', role: 'master' },
    { pod: 'cs-2', role: 'replica' },
  ];

  it('hits the master below MASTER_SHARE and any pod above it', () => {
    expect(mostlyMaster(pods, 0)).toBe('cs-1');
    expect(mostlyMaster(pods, MASTER_SHARE - 0.001)).toBe('cs-1');
    const above = new Set([0.76, 0.85, 0.95, 0.999].map((p) => mostlyMaster(pods, p)));
    expect(above).toEqual(new Set(['cs-0', 'cs-1', 'cs-2']));
  });

  it('draws among all pods when no master is known, and nothing when there is no pod', () => {
    const none = pods.map((p) => ({ ...p, role: undefined }));
    expect(new Set([0, 0.5, 0.99].map((p) => mostlyMaster(none, p)))).toEqual(new Set(['cs-0', 'cs-1', 'cs-2']));
    expect(mostlyMaster([], 0.3)).toBeUndefined();
  });
});
