import { describe, expect, it } from 'vitest';
import { asAgentStatus, renderStatusTable } from '../../cli/status-table.js';
import type { AgentStatus } from '../../common/status.js';

const status: AgentStatus = {
  cluster: 'demo',
  namespace: 'default',
  pod: 'storage-1',
  replicaset: 'storage',
  instance: { uuid: 'u', id: 2, listen: '127.0.1.3:3301', role: 'replica', ro: true, status: 'running', vclock: { '1': 4 }, lag: 0, pid: 1 },
  coordinator: { pod: 'storage-0', term: 7, self: false },
  mesh: [],
  replicasets: [
    {
      name: 'storage',
      master: 'storage-0',
      instances: [
        { pod: 'storage-0', role: 'master', healthy: true, lag: null },
        { pod: 'storage-1', role: 'replica', healthy: false, lag: 1.5, problem: 'storage-1 is not following its master (upstream stopped: CONFIRM message arrived for an unknown master id 1, expected 0)' },
      ],
    },
  ],
  rollout: { replicaset: 'storage', phase: 'restarting-replicas', next: 'storage-2' },
};

describe('shoal status table', () => {
  it('shows coordinator, term, every member with role, health and lag, and the rollout', () => {
    const out = renderStatusTable(status);
    expect(out).toContain('Cluster: demo (namespace default) — coordinator storage-0, term 7');
    expect(out).toMatch(/\| storage\s+\| storage-0 \| master\s+\| yes\s+\| -\s+\|/);
    expect(out).toMatch(/\| storage\s+\| storage-1 \| replica\s+\| NO\s+\| 1\.500\s+\|/);
    expect(out).toContain('Rollout of storage: restarting-replicas, next storage-2');
    expect(out).toContain('Problems:\n  - storage-1 is not following its master (upstream stopped: CONFIRM message');
    expect(out.match(/^ {2}- /gm)).toHaveLength(1);
  });

  it('marks a diverged member and says where its repair is', () => {
    const error = "Duplicate key exists in unique index 'pk' in space 't'";
    const diverged: AgentStatus = {
      ...status,
      replicasets: [
        {
          name: 'storage',
          master: 'storage-0',
          instances: [
            { pod: 'storage-0', role: 'master', healthy: true, lag: null },
            { pod: 'storage-1', role: 'replica', healthy: false, lag: null, problem: 'storage-1 diverged', diverged: { from: 'storage-0', error, repair: 'reported' } },
          ],
        },
      ],
    };
    const out = renderStatusTable(diverged);
    expect(out).toMatch(/\| storage\s+\| storage-1 \| replica\s+\| DIVERGED \| -\s+\|/);
    expect(out).toContain(`  - storage-1 diverged from storage-0 (${error}); repair: reported`);
  });

  it('says so when no replica set is known yet', () => {
    expect(renderStatusTable({ ...status, replicasets: [], rollout: null })).toContain('no replica sets reported yet');
  });

  it.each([null, 42, 'x', {}, { cluster: 'demo', replicasets: 'no' }])('rejects a non-status document %j', (v) => {
    expect(() => asAgentStatus(v)).toThrow(/not a Shoal \/status document/);
  });
});
