// The write-load timeline: gaps found from the buckets, long runs split into rows of a fixed window,
// events on the load's clock in one lane per kind (those before the load dropped), and a render
// through the real vega path of a synthetic 11-minute run.
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { findWriteGaps, parseTimelineChart, renderTimelineSvg, timelineData, timelineRows, timelineSpec, writeTimelineSvg } from '../../tools/timeline-svg.js';
import { syntheticChart } from '../support/timeline-fixture.js';

const tl = (successes: number[], bucketMs = 100) => ({ startedAt: 0, bucketMs, successes, failures: successes.map(() => 0) });

describe('findWriteGaps', () => {
  it('finds runs of buckets without a success longer than the threshold, at either end too', () => {
    const gaps = findWriteGaps(tl([0, 0, 0, 5, 5, 0, 0, 0, 0, 5, 0, 5, 0, 0, 0]), 200);
    expect(gaps).toEqual([
      { fromS: 0, toS: 0.3, seconds: 0.3 },
      { fromS: 0.5, toS: 0.9, seconds: 0.4 },
      { fromS: 1.2, toS: 1.5, seconds: 0.3 },
    ]);
  });

  it('ignores runs up to the threshold and a timeline that never stops', () => {
    expect(findWriteGaps(tl([5, 0, 0, 5]), 200)).toEqual([]);
    expect(findWriteGaps(tl([5, 5, 5]))).toEqual([]);
  });
});

describe('timelineRows', () => {
  it('keeps a short run in one row from 0 to its end', () => {
    expect(timelineRows(42.5, 300)).toEqual([{ fromS: 0, toS: 42.5 }]);
  });

  it('splits a long run into whole windows, the last one as wide as the others', () => {
    expect(timelineRows(660, 300)).toEqual([
      { fromS: 0, toS: 300 },
      { fromS: 300, toS: 600 },
      { fromS: 600, toS: 900 },
    ]);
  });
});

describe('timelineData', () => {
  it('puts events on the load clock and drops those from before the load started', () => {
    const d = timelineData(syntheticChart());
    expect(d.dropped).toBe(1);
    expect(d.events[0]).toEqual({ t: 11.9, kind: 'kill', label: 'cs-0 tarantool' });
    expect(Math.min(...d.events.map((e) => e.t))).toBeGreaterThanOrEqual(0);
    expect(d.gaps.map((g) => g.seconds)).toEqual([2.5, 6.2, 5]);
    expect(d.durationS).toBe(660);
  });
});

describe('timelineSpec', () => {
  it('draws one row per window, each with its own x domain, and one lane per event kind present', () => {
    const spec = timelineSpec(syntheticChart()) as unknown as { vconcat: { vconcat: { layer: { encoding: { x: { scale: { domain: number[] } }; y?: { scale?: { domain?: string[] } } } }[] }[] }[] };
    expect(spec.vconcat).toHaveLength(3);
    const lanes = spec.vconcat.map((row) => row.vconcat[1]?.layer[1]?.encoding);
    expect(lanes.map((e) => e?.x.scale.domain)).toEqual([
      [0, 300],
      [300, 600],
      [600, 900],
    ]);
    expect(lanes[0]?.y?.scale?.domain).toEqual(['kill', 'agent-kill', 'pod-delete', 'rollout', 'partition', 'heal', 'api-down', 'api-flaky', 'api-up', 'down', 'up', 'fence', 'promote']);
  });
});

describe('renderTimelineSvg', () => {
  it('renders through vega with the gap lengths written on the gaps and a legend of kinds', async () => {
    const svg = await renderTimelineSvg(syntheticChart());
    expect(svg.startsWith('<svg')).toBe(true);
    for (const label of ['2.5 s', '6.2 s', '5.0 s']) expect(svg).toContain(`>${label}<`);
    expect(svg).not.toContain('>0.5 s<');
    expect(svg).toContain('>partition<');
    // Event labels are data (tooltips), not free-floating text.
    expect(svg).not.toContain('>cs-1 cut off<');
  });

  it('writes the chart data next to the SVG, and the data redraws the same picture', async () => {
    const dir = await mkdtemp(path.join(os.tmpdir(), 'timeline-'));
    try {
      const file = path.join(dir, 'chaos.svg');
      await writeTimelineSvg(file, syntheticChart(), { data: true });
      const again = parseTimelineChart(await readFile(`${file}.json`, 'utf8'));
      expect(await renderTimelineSvg(again)).toBe(await readFile(file, 'utf8'));
      expect(() => parseTimelineChart('{"title": "x"}')).toThrow(/not a timeline chart/);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
