// Marks on a timeline: what a benchmark or the chaos runner did (kills, partitions, pod deletions)
// and what the sampler saw the instances do in answer (fenced, promoted, down, back).
import type { Sample } from './sampler.js';

export type EventKind = 'kill' | 'agent-kill' | 'pod-delete' | 'partition' | 'heal' | 'api-down' | 'api-up' | 'api-flaky' | 'rollout' | 'fence' | 'promote' | 'down' | 'up';

export interface TimelineEvent {
  /** Epoch ms (the write load's clock). */
  at: number;
  kind: EventKind;
  label: string;
}

type Seen = 'writable' | 'ro' | 'down';

const stateOf = (o: Sample['instances'][number]): Seen => (!o.answered ? 'down' : o.writable ? 'writable' : 'ro');

/** Each instance's changes between consecutive samples: promoted (→ writable), fenced (writable → ro), down, up. */
export function instanceTransitions(samples: readonly Sample[]): TimelineEvent[] {
  const last = new Map<string, Seen>();
  const out: TimelineEvent[] = [];
  for (const s of samples) {
    for (const o of s.instances) {
      const now = stateOf(o);
      const before = last.get(o.name);
      last.set(o.name, now);
      if (before === undefined || before === now) continue;
      const at = o.receivedAt;
      if (now === 'writable') out.push({ at, kind: 'promote', label: `${o.name} writable` });
      else if (now === 'down') out.push({ at, kind: 'down', label: `${o.name} down` });
      else if (before === 'writable') out.push({ at, kind: 'fence', label: `${o.name} read-only` });
      else out.push({ at, kind: 'up', label: `${o.name} back (ro)` });
    }
  }
  return out;
}
