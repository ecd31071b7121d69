// SVG timelines of a write load (successful writes per bucket) with event markers, drawn with
// vega-lite → vega's SVG renderer, which needs no browser and no canvas in Node.
import { mkdir, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { TimelineEvent } from './events.js';
import type { WriteSummary } from './workload.js';

export interface TimelineChart {
  title: string;
  timeline: WriteSummary['timeline'];
  events: readonly TimelineEvent[];
}

/** The vega-lite spec: writes per bucket as bars over seconds, one coloured rule and label per event. */
export function timelineSpec(c: TimelineChart): TopLevelSpec {
  const t0 = c.timeline.startedAt;
  const sec = (ms: number): number => Math.round(ms) / 1000;
  const writes = c.timeline.successes.map((n, i) => ({ t: sec(i * c.timeline.bucketMs), writes: n }));
  const failures = c.timeline.failures.map((n, i) => ({ t: sec(i * c.timeline.bucketMs), failed: n })).filter((f) => f.failed > 0);
  const events = c.events.map((e, i) => ({ t: sec(e.at - t0), kind: e.kind, label: e.label, row: i % 6 }));
  const width = Math.min(2400, Math.max(700, writes.length * 2));
  const x = { field: 't', type: 'quantitative', title: 'seconds since the load started' } as const;
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: c.title,
    width,
    height: 260,
    background: 'white',
    layer: [
      { data: { values: writes }, mark: { type: 'bar', color: '#4c78a8' }, encoding: { x, y: { field: 'writes', type: 'quantitative', title: `successful writes per ${c.timeline.bucketMs} ms` } } },
      // Failed attempts: red ticks along the bottom edge.
      { data: { values: failures }, mark: { type: 'tick', color: '#e45756', thickness: 2 }, encoding: { x, y: { value: 258 } } },
      {
        data: { values: events },
        mark: { type: 'rule', strokeDash: [4, 3], strokeWidth: 1.5 },
        encoding: { x, color: { field: 'kind', type: 'nominal', title: 'event', scale: { scheme: 'dark2' } } },
      },
      {
        data: { values: events },
        mark: { type: 'text', align: 'left', dx: 3, fontSize: 9, angle: 0 },
        encoding: { x, y: { field: 'row', type: 'quantitative', scale: { domain: [0, 6] }, axis: null }, text: { field: 'label' }, color: { field: 'kind', type: 'nominal', scale: { scheme: 'dark2' } } },
      },
    ],
    resolve: { scale: { y: 'independent' } },
  };
}

export async function renderTimelineSvg(c: TimelineChart): Promise<string> {
  const view = new vega.View(vega.parse(compile(timelineSpec(c)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

export async function writeTimelineSvg(file: string, c: TimelineChart): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  await writeFile(file, await renderTimelineSvg(c));
}
