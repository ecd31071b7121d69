import type { AgentStatus, StatusSharding } from '../common/status.js';

// Renders an agent's /status as a patronictl-style table: one row per member of every replica
// set, with the coordinator and term in the header. Pure, so it is unit-tested.

const BASE_HEADERS = ['Replica set', 'Member', 'Role', 'Healthy', 'Lag (s)'];

function pad(cells: string[], widths: number[]): string {
  return `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
}

/** The Buckets cell of a replica set (SPEC §4b): a storage's active buckets, and any in flight. */
function bucketsCell(sharding: StatusSharding, replicaset: string): string {
  const entry = sharding.replicasets.find((r) => r.name === replicaset);
  if (!entry) return '-';
  if (entry.role === 'router') return 'router';
  const b = entry.buckets;
  if (!b) return '?';
  const moving = [b.sending ? `sending ${b.sending}` : '', b.receiving ? `receiving ${b.receiving}` : '', b.garbage ? `garbage ${b.garbage}` : ''].filter(Boolean);
  return `${b.active}${moving.length ? ` (${moving.join(', ')})` : ''}`;
}

export function renderStatusTable(status: AgentStatus): string {
  const rows: string[][] = [];
  const sharding = status.sharding ?? null;
  const HEADERS = sharding ? [...BASE_HEADERS, 'Buckets'] : BASE_HEADERS;
  for (const rs of status.replicasets) {
    for (const m of rs.instances) {
      const healthy = m.diverged ? 'DIVERGED' : m.healthy ? 'yes' : 'NO';
      const row = [rs.name, m.pod, m.role, healthy, m.lag === null ? '-' : m.lag.toFixed(3)];
      rows.push(sharding ? [...row, bucketsCell(sharding, rs.name)] : row);
    }
  }
  const widths = HEADERS.map((h, i) => Math.max(h.length, ...rows.map((r) => (r[i] ?? '').length)));
  const rule = `+${widths.map((w) => '-'.repeat(w + 2)).join('+')}+`;
  const coordinator = status.coordinator.pod ?? 'none';
  const title = `Cluster: ${status.cluster} (namespace ${status.namespace}) — coordinator ${coordinator}, term ${status.coordinator.term}`;
  const lines = [title, rule, pad(HEADERS, widths), rule, ...rows.map((r) => pad(r, widths)), rule];
  // Why a member is unhealthy, in the coordinator's words (patronictl leaves you to guess).
  const problems = status.replicasets.flatMap((rs) =>
    rs.instances.flatMap((m) => [
      ...(m.problem ? [`  - ${m.problem}`] : []),
      ...(m.diverged ? [`  - ${m.pod} diverged from ${m.diverged.from} (${m.diverged.error}); repair: ${m.diverged.repair ?? 'on hold'}`] : []),
    ]),
  );
  if (problems.length) lines.push('Problems:', ...problems);
  const r = status.rollout;
  if (r && r.phase !== 'idle') {
    lines.push(`Rollout of ${r.replicaset ?? '?'}: ${r.phase}${r.next ? `, next ${r.next}` : ''}${r.reason ? ` — ${r.reason}` : ''}`);
  }
  if (sharding) {
    const b = sharding.bootstrap;
    const how = b.state === 'done' ? (b.how === 'found' ? `found on ${b.by ?? '?'}` : `bootstrapped through ${b.by ?? '?'}`) : b.state === 'requested' ? `requested through ${b.by ?? '?'}` : 'waiting';
    lines.push(`Buckets: ${how}${b.state !== 'done' && b.reason ? ` — ${b.reason}` : ''}`);
    for (const rs of sharding.replicasets) for (const p of rs.problems ?? []) lines.push(`  - ${rs.name}: ${p}`);
    for (const r of sharding.routers) {
      const masters = Object.entries(r.masters).map(([rs, m]) => `${rs}=${m ?? 'none'}`).join(', ');
      lines.push(`  router ${r.pod}: masters ${masters || 'none'}; unknown buckets ${r.unknown}, unreachable ${r.unreachable}`);
    }
  }
  if (rows.length === 0) lines.push('(no replica sets reported yet: is a coordinator elected?)');
  return lines.join('\n');
}

/** Checks that a parsed JSON value has the shape of /status, so the CLI fails with a clear message. */
export function asAgentStatus(value: unknown): AgentStatus {
  const v = value as Partial<AgentStatus> | null;
  if (!v || typeof v !== 'object' || typeof v.cluster !== 'string' || !Array.isArray(v.replicasets) || !v.coordinator) {
    throw new Error('the reply is not a Shoal /status document (expected cluster, coordinator and replicasets)');
  }
  return v as AgentStatus;
}
