// Kubernetes Events (core/v1) on a StatefulSet or a pod, for `kubectl describe`: the agent's and the
// process kubelet's. Built so a loop that
// repeats itself cannot flood the API server: a repeated event (same object, type, reason, message)
// only bumps `count` — written at most every `minUpdateIntervalMs` — and each object has a token
// bucket for new events (client-go's EventCorrelator does the same). The one event recorder.
import { randomBytes } from 'node:crypto';
import type { CoreV1Event } from '@kubernetes/client-node';
import { errorMessage } from '../errors.js';
import type { Logger } from '../log.js';
import { isNotFound } from './errors.js';
import type { KubeClient } from './client.js';
import { KINDS, MERGE_PATCH, Resource } from './resources.js';

export interface InvolvedObject {
  kind: 'StatefulSet' | 'Pod';
  name: string;
  uid?: string;
  /** Default: the recorder's namespace. */
  namespace?: string;
  /** e.g. spec.containers{tarantool}: the part of the object the event is about. */
  fieldPath?: string;
}

export interface EventSpec {
  type: 'Normal' | 'Warning';
  /** UpperCamelCase, e.g. Bootstrapped, Joined, Expelled. */
  reason: string;
  message: string;
}

export interface EventRecorderOptions {
  /** Where events go: `namespace` is the default for objects that name none. */
  kube: { client: KubeClient; namespace: string };
  /** source.host / reportingInstance: the pod name. */
  host: string;
  /** source.component (default shoal-agent) and reportingComponent (default shoal.dev/agent). */
  component?: string;
  reportingComponent?: string;
  logger: Logger;
  /** New events per object allowed at once (default 10) … */
  burst?: number;
  /** … refilled by one every refillMs (default 30 s). */
  refillMs?: number;
  /** A repeat within this window counts on the same Event (default 10 min). */
  aggregateWindowMs?: number;
  /** Count updates of one Event are written at most this often (default 10 s). */
  minUpdateIntervalMs?: number;
  clock?: () => number;
}

interface Aggregate {
  eventName: string;
  count: number;
  writtenCount: number;
  firstMs: number;
  lastMs: number;
  lastWriteMs: number;
  firstSeenMs: number;
  involved: InvolvedObject;
  spec: EventSpec;
}

const MAX_AGGREGATES = 1000;
const MAX_QUEUE = 100;
const MAX_MESSAGE = 1024;

export class EventRecorder {
  private readonly aggregates = new Map<string, Aggregate>();
  private readonly buckets = new Map<string, { tokens: number; atMs: number }>();
  private readonly dirty = new Set<string>();
  private queue: Promise<void> = Promise.resolve();
  private queued = 0;
  private flushTimer: NodeJS.Timeout | undefined;
  private closed = false;
  private readonly clock: () => number;
  private readonly controller = new AbortController();

  constructor(private readonly opts: EventRecorderOptions) {
    this.clock = opts.clock ?? Date.now;
  }

  /** Records an event; never throws and never waits (writes are queued, bounded, and best effort). */
  record(involved: InvolvedObject, spec: EventSpec): void {
    if (this.closed) return;
    const message = spec.message.length > MAX_MESSAGE ? `${spec.message.slice(0, MAX_MESSAGE - 1)}…` : spec.message;
    const ev = { ...spec, message };
    const key = JSON.stringify([involved.kind, this.namespaceOf(involved), involved.name, involved.uid ?? '', involved.fieldPath ?? '', ev.type, ev.reason, ev.message]);
    const now = this.clock();
    const agg = this.aggregates.get(key);
    if (agg && now - agg.firstSeenMs < (this.opts.aggregateWindowMs ?? 600_000)) {
      agg.count++;
      agg.lastMs = now;
      if (now - agg.lastWriteMs >= (this.opts.minUpdateIntervalMs ?? 10_000)) this.enqueue(() => this.writeCount(key));
      else this.markDirty(key, agg);
      return;
    }
    if (!this.takeToken(`${involved.kind}/${this.namespaceOf(involved)}/${involved.name}`, now)) {
      this.opts.logger.debug({ reason: ev.reason, object: involved.name }, 'event dropped by the rate limit');
      return;
    }
    const fresh: Aggregate = {
      eventName: `${involved.name}.${now.toString(16)}${randomBytes(3).toString('hex')}`,
      count: 1,
      writtenCount: 0,
      firstMs: now,
      lastMs: now,
      lastWriteMs: now,
      firstSeenMs: now,
      involved,
      spec: ev,
    };
    this.remember(key, fresh);
    this.enqueue(() => this.create(fresh));
  }

  /** Writes pending count updates now. */
  async flush(): Promise<void> {
    for (const key of [...this.dirty]) this.enqueue(() => this.writeCount(key));
    await this.queue;
  }

  /** Flushes what is pending (for at most `timeoutMs`) and stops. */
  async close(timeoutMs = 2_000): Promise<void> {
    clearTimeout(this.flushTimer);
    const timer = setTimeout(() => this.controller.abort(), timeoutMs);
    try {
      await this.flush();
    } finally {
      clearTimeout(timer);
      this.closed = true;
      this.controller.abort();
    }
  }

  private namespaceOf(involved: InvolvedObject): string {
    return involved.namespace ?? this.opts.kube.namespace;
  }

  private events(involved: InvolvedObject): Resource<CoreV1Event> {
    return new Resource<CoreV1Event>(this.opts.kube.client, KINDS.Event, this.namespaceOf(involved));
  }

  private takeToken(object: string, now: number): boolean {
    const burst = this.opts.burst ?? 10;
    const refillMs = this.opts.refillMs ?? 30_000;
    const b = this.buckets.get(object) ?? { tokens: burst, atMs: now };
    const refilled = Math.min(burst, b.tokens + (now - b.atMs) / refillMs);
    if (refilled < 1) {
      this.buckets.set(object, { tokens: refilled, atMs: now });
      return false;
    }
    this.buckets.set(object, { tokens: refilled - 1, atMs: now });
    if (this.buckets.size > MAX_AGGREGATES) this.buckets.delete(this.buckets.keys().next().value as string);
    return true;
  }

  private remember(key: string, agg: Aggregate): void {
    this.aggregates.delete(key);
    this.aggregates.set(key, agg);
    if (this.aggregates.size > MAX_AGGREGATES) {
      const oldest = this.aggregates.keys().next().value as string;
      this.aggregates.delete(oldest);
      this.dirty.delete(oldest);
    }
  }

  private markDirty(key: string, agg: Aggregate): void {
    this.dirty.add(key);
    if (this.flushTimer) return;
    const wait = Math.max(0, agg.lastWriteMs + (this.opts.minUpdateIntervalMs ?? 10_000) - this.clock());
    this.flushTimer = setTimeout(() => {
      this.flushTimer = undefined;
      void this.flush();
    }, wait);
    this.flushTimer.unref();
  }

  // Writes run one at a time; a full queue drops (the event is lost, the agent is not).
  private enqueue(op: () => Promise<void>): void {
    if (this.queued >= MAX_QUEUE) {
      this.opts.logger.warn('event queue full; dropping an event write');
      return;
    }
    this.queued++;
    this.queue = this.queue
      .then(op)
      .catch((err: unknown) => this.opts.logger.warn({ err: errorMessage(err) }, 'could not write a Kubernetes event'))
      .finally(() => {
        this.queued--;
      });
  }

  private body(a: Aggregate): CoreV1Event {
    const namespace = this.namespaceOf(a.involved);
    return {
      apiVersion: 'v1',
      kind: 'Event',
      metadata: { name: a.eventName, namespace },
      involvedObject: {
        kind: a.involved.kind,
        apiVersion: a.involved.kind === 'StatefulSet' ? 'apps/v1' : 'v1',
        name: a.involved.name,
        namespace,
        ...(a.involved.uid ? { uid: a.involved.uid } : {}),
        ...(a.involved.fieldPath ? { fieldPath: a.involved.fieldPath } : {}),
      },
      type: a.spec.type,
      reason: a.spec.reason,
      message: a.spec.message,
      count: a.count,
      firstTimestamp: new Date(a.firstMs),
      lastTimestamp: new Date(a.lastMs),
      source: { component: this.opts.component ?? 'shoal-agent', host: this.opts.host },
      reportingComponent: this.opts.reportingComponent ?? 'shoal.dev/agent',
      reportingInstance: this.opts.host,
    };
  }

  private async create(a: Aggregate): Promise<void> {
    const count = a.count;
    await this.events(a.involved).create(this.body(a), { what: `create Event ${a.eventName}`, signal: this.controller.signal });
    a.writtenCount = count;
    a.lastWriteMs = this.clock();
  }

  private async writeCount(key: string): Promise<void> {
    this.dirty.delete(key);
    const a = this.aggregates.get(key);
    if (!a || a.count === a.writtenCount) return;
    const count = a.count;
    try {
      await this.events(a.involved).patch(a.eventName, { count, lastTimestamp: new Date(a.lastMs).toISOString() }, MERGE_PATCH, {
        what: `update Event ${a.eventName}`,
        signal: this.controller.signal,
      });
    } catch (err) {
      if (!isNotFound(err)) throw err;
      // Events expire (1 h by default): start a new one carrying the count.
      a.eventName = `${a.involved.name}.${this.clock().toString(16)}${randomBytes(3).toString('hex')}`;
      await this.create(a);
      return;
    }
    a.writtenCount = count;
    a.lastWriteMs = this.clock();
  }
}
