import type { AgentStatus } from '../common/status.js';

// Renders an agent's /status as a patronictl-style table: one row per member of every replica
// set, with the coordinator and term in the header. Pure, so it is unit-tested.

const HEADERS = ['Replica set', 'Member', 'Role', 'Healthy', 'Lag (s)'];

function pad(cells: string[], widths: number[]): string {
  return `| ${cells.map((c, i) => c.padEnd(widths[i] ?? 0)).join(' | ')} |`;
}

export function renderStatusTable(status: AgentStatus): string {
  const rows: string[][] = [];
  for (const rs of status.replicasets) {
    for (const m of rs.instances) {
      const healthy = m.diverged ? 'DIVERGED' : m.healthy ? 'yes' : 'NO';
      rows.push([rs.name, m.pod, m.role, healthy, m.lag === null ? '-' : m.lag.toFixed(3)]);
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
