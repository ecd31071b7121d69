// SVG timelines of a write load, drawn with vega-lite → vega's SVG renderer (no browser, no canvas).
// Each row covers a fixed window of the run (long runs become several rows, each with its own x axis
// from its window's start): successful writes per bucket as bars, write gaps shaded with their length
// written on them, and under them the events as markers in one lane per kind (colour and shape per
// kind, one legend). The x axis counts seconds from the start of the load; events from before it are
// dropped (the subtitle says how many). Spec building, gap finding and segmentation are pure.
//   npx tsx tools/timeline-svg.ts <chart.json> <out.svg>   (or npm run timeline -- …) redraws a chart
//   from the data a chaos run writes next to its SVG (<svg>.json).
import { mkdir, readFile, writeFile } from 'node:fs/promises';
import { dirname } from 'node:path';
import { pathToFileURL } from 'node:url';
import * as vega from 'vega';
import { compile, type TopLevelSpec } from 'vega-lite';
import type { EventKind, TimelineEvent } from './events.js';
import type { WriteSummary } from './workload.js';

export interface TimelineChart {
  title: string;
  timeline: WriteSummary['timeline'];
  events: readonly TimelineEvent[];
}

export interface TimelineOptions {
  /** Seconds per row; a run longer than this is split into rows of this window. Default 300. */
  windowS?: number;
  /** A run of buckets without a successful write counts as a gap when longer than this. Default 1000. */
  minGapMs?: number;
}

/** A run of buckets without a successful write, in seconds since the load started. */
export interface WriteGap {
  fromS: number;
  toS: number;
  seconds: number;
}

/** One row of the picture: its window [fromS, toS) on the run's clock. */
export interface TimelineRow {
  fromS: number;
  toS: number;
}

const WINDOW_S = 300;
const MIN_GAP_MS = 1000;
const ROW_WIDTH = 1200;
const WRITES_COLOR = '#4c78a8';

/** Every kind in a fixed order (lanes top to bottom: faults, then what the instances did), with its mark. */
const KINDS: readonly { kind: EventKind; color: string; shape: string }[] = [
  // Faults on processes and pods, on the network, on the API server; then what the instances did.
  { kind: 'kill', color: '#d62728', shape: 'cross' }, { kind: 'agent-kill', color: '#ff7f0e', shape: 'cross' },
  { kind: 'pod-delete', color: '#8c564b', shape: 'square' }, { kind: 'rollout', color: '#7f7f7f', shape: 'square' },
  { kind: 'partition', color: '#9467bd', shape: 'triangle-down' }, { kind: 'heal', color: '#9467bd', shape: 'triangle-up' },
  { kind: 'api-down', color: '#e377c2', shape: 'triangle-down' }, { kind: 'api-flaky', color: '#e377c2', shape: 'diamond' },
  { kind: 'api-up', color: '#e377c2', shape: 'triangle-up' },
  { kind: 'down', color: '#bcbd22', shape: 'triangle-down' }, { kind: 'up', color: '#17becf', shape: 'triangle-up' },
  { kind: 'fence', color: '#1f77b4', shape: 'diamond' }, { kind: 'promote', color: '#2ca02c', shape: 'circle' },
];

const sec = (ms: number): number => Math.round(ms) / 1000;

/** Runs of buckets without a successful write longer than `minGapMs` (a run at either end counts too). */
export function findWriteGaps(timeline: WriteSummary['timeline'], minGapMs = MIN_GAP_MS): WriteGap[] {
  const { bucketMs, successes } = timeline;
  const gaps: WriteGap[] = [];
  let from: number | null = null;
  const close = (to: number): void => {
    if (from !== null && (to - from) * bucketMs > minGapMs) gaps.push({ fromS: sec(from * bucketMs), toS: sec(to * bucketMs), seconds: sec((to - from) * bucketMs) });
    from = null;
  };
  successes.forEach((n, i) => {
    if (n === 0) from ??= i;
    else close(i);
  });
  close(successes.length);
  return gaps;
}

/** The rows of a run of `durationS` seconds: one row when it fits a window, else one per window. */
export function timelineRows(durationS: number, windowS = WINDOW_S): TimelineRow[] {
  if (!(windowS > 0)) throw new Error(`window must be positive, not ${windowS}`);
  if (durationS <= windowS) return [{ fromS: 0, toS: Math.max(durationS, 1) }];
  const rows: TimelineRow[] = [];
  for (let fromS = 0; fromS < durationS; fromS += windowS) rows.push({ fromS, toS: fromS + windowS });
  return rows;
}

/** What the picture shows, on the load's clock (seconds); events before the load started are dropped. */
export function timelineData(c: TimelineChart, minGapMs = MIN_GAP_MS) {
  const { startedAt, bucketMs } = c.timeline;
  const writes = c.timeline.successes.map((n, i) => ({ t: sec(i * bucketMs), t2: sec((i + 1) * bucketMs), writes: n }));
  const failures = c.timeline.failures.flatMap((n, i) => (n > 0 ? [{ t: sec((i + 0.5) * bucketMs), failed: n }] : []));
  const shown = c.events.filter((e) => e.at >= startedAt);
  const events = shown.map((e) => ({ t: sec(e.at - startedAt), kind: e.kind, label: e.label }));
  const gaps = findWriteGaps(c.timeline, minGapMs);
  const durationS = Math.max(sec(c.timeline.successes.length * bucketMs), ...events.map((e) => e.t));
  return { writes, failures, events, gaps, durationS, dropped: c.events.length - shown.length };
}

const within = <T extends { t: number }>(xs: readonly T[], r: TimelineRow): T[] => xs.filter((x) => x.t >= r.fromS && x.t < r.toS);

/** The vega-lite spec: one row per window, each a writes panel over an events panel sharing its x axis. */
export function timelineSpec(c: TimelineChart, o: TimelineOptions = {}): TopLevelSpec {
  const d = timelineData(c, o.minGapMs);
  const rows = timelineRows(d.durationS, o.windowS);
  const kinds = KINDS.filter((k) => d.events.some((e) => e.kind === k.kind));
  const present = kinds.map((k) => k.kind);
  const color = { field: 'kind', type: 'nominal', title: 'event', scale: { domain: present, range: kinds.map((k) => k.color) } } as const;
  const shape = { field: 'kind', type: 'nominal', title: 'event', scale: { domain: present, range: kinds.map((k) => k.shape) } } as const;
  const yMax = Math.max(1, ...d.writes.map((w) => w.writes));
  const bucketMs = c.timeline.bucketMs;
  const maxWindow = Math.max(...rows.map((r) => r.toS - r.fromS));
  const subtitle = [
    `shaded: no successful write for more than ${(o.minGapMs ?? MIN_GAP_MS) / 1000} s (${d.gaps.length} such gaps${d.gaps.length ? `, longest ${Math.max(...d.gaps.map((g) => g.seconds)).toFixed(1)} s` : ''})`,
    ...(d.dropped > 0 ? [`${d.dropped} event${d.dropped === 1 ? '' : 's'} from before the load started not shown`] : []),
  ];
  const panel = (r: TimelineRow, i: number) => {
    // The same pixels per second in every row, so rows compare at a glance.
    const width = Math.round((ROW_WIDTH * (r.toS - r.fromS)) / maxWindow);
    const scale = { domain: [r.fromS, r.toS], nice: false, zero: false };
    // The writes panel's axis has ticks only: the events panel right under it carries the numbers.
    const x = { field: 't', type: 'quantitative', scale, axis: { labels: false, title: null } } as const;
    const xEvents = { field: 't', type: 'quantitative', scale, title: i === rows.length - 1 ? 'seconds since the load started' : null } as const;
    const gaps = d.gaps
      .filter((g) => g.toS > r.fromS && g.fromS < r.toS)
      .map((g) => {
        const t = Math.max(g.fromS, r.fromS);
        const t2 = Math.min(g.toS, r.toS);
        return { t, t2, mid: (t + t2) / 2, label: `${g.seconds.toFixed(1)} s` };
      });
    const gapRect = (xx: typeof x | typeof xEvents) => ({ data: { values: gaps }, mark: { type: 'rect', color: '#f4a582', opacity: 0.45 }, encoding: { x: xx, x2: { field: 't2' } } }) as const;
    const writesY = { field: 'writes', type: 'quantitative', scale: { domain: [0, yMax] }, title: `writes / ${bucketMs} ms` } as const;
    const writesPanel = {
      width,
      height: 120,
      layer: [
        gapRect(x),
        // Bars thinner than 2 px blur into hatching: then the same bars are drawn as one solid step outline.
        (width * bucketMs) / 1000 / (r.toS - r.fromS) >= 2
          ? { data: { values: within(d.writes, r) }, mark: { type: 'bar', color: WRITES_COLOR }, encoding: { x, x2: { field: 't2' }, y: writesY } }
          : { data: { values: within(d.writes, r) }, mark: { type: 'area', color: WRITES_COLOR, interpolate: 'step-after' }, encoding: { x, y: writesY } },
        { data: { values: within(d.failures, r) }, mark: { type: 'tick', color: '#e45756', thickness: 2, size: 8 }, encoding: { x, y: { value: 116 } } },
        { data: { values: gaps }, mark: { type: 'text', baseline: 'top', align: 'center', dy: 3, fontSize: 11, fontWeight: 'bold', color: '#b2182b' }, encoding: { x: { ...x, field: 'mid' }, y: { value: 0 }, text: { field: 'label' } } },
      ],
      resolve: { scale: { y: 'independent' } },
    };
    const eventsPanel = {
      width,
      height: Math.max(16, 16 * present.length),
      layer: [
        gapRect(xEvents),
        {
          data: { values: within(d.events, r) },
          mark: { type: 'point', filled: true, size: 60, opacity: 0.9 },
          encoding: { x: xEvents, y: { field: 'kind', type: 'nominal', scale: { domain: present }, title: null }, color, shape, tooltip: { field: 'label' } },
        },
      ],
    };
    return { title: { text: rows.length > 1 ? `${r.fromS}–${r.toS} s` : '', anchor: 'start', fontSize: 11 }, spacing: 2, vconcat: [writesPanel, eventsPanel] };
  };
  return {
    $schema: 'https://vega.github.io/schema/vega-lite/v6.json',
    title: { text: c.title, subtitle, anchor: 'start' },
    background: 'white',
    spacing: 18,
    vconcat: rows.map(panel),
    resolve: { scale: { color: 'shared', shape: 'shared' } },
    config: { legend: { orient: 'right' }, axis: { labelFontSize: 10 } },
  } as TopLevelSpec;
}

export async function renderTimelineSvg(c: TimelineChart, o: TimelineOptions = {}): Promise<string> {
  const view = new vega.View(vega.parse(compile(timelineSpec(c, o)).spec), { renderer: 'none' });
  try {
    return await view.toSVG();
  } finally {
    view.finalize();
  }
}

/** Draws the chart into `file`; with `data`, also writes its input as `<file>.json` (redraw with the CLI below). */
export async function writeTimelineSvg(file: string, c: TimelineChart, opts: TimelineOptions & { data?: boolean } = {}): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  if (opts.data) await writeFile(`${file}.json`, JSON.stringify(c) + '\n');
  await writeFile(file, await renderTimelineSvg(c, opts));
}

/** Reads a chart written by writeTimelineSvg(…, { data: true }). */
export function parseTimelineChart(text: string): TimelineChart {
  const c = JSON.parse(text) as Partial<TimelineChart>;
  const t = c.timeline;
  if (typeof c.title !== 'string' || !Array.isArray(c.events) || !t || typeof t.startedAt !== 'number' || typeof t.bucketMs !== 'number' || !Array.isArray(t.successes) || !Array.isArray(t.failures)) {
    throw new Error('not a timeline chart: expected { title, timeline: { startedAt, bucketMs, successes, failures }, events }');
  }
  return c as TimelineChart;
}

async function cli(argv: readonly string[]): Promise<void> {
  const [input, output] = argv;
  if (!input || !output) {
    process.stderr.write('usage: npx tsx tools/timeline-svg.ts <chart.json> <out.svg>\n');
    process.exit(2);
  }
  await writeTimelineSvg(output, parseTimelineChart(await readFile(input, 'utf8')));
  process.stdout.write(`wrote ${output}\n`);
}

if (process.argv[1] && import.meta.url === pathToFileURL(process.argv[1]).href) await cli(process.argv.slice(2));
