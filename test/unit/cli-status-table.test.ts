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

describe('shoal status table of a sharded cluster (SPEC §4b)', () => {
  const sharded: AgentStatus = {
    ...status,
    replicasets: [
      { name: 'storage-a', master: 'storage-a-0', instances: [{ pod: 'storage-a-0', role: 'master', healthy: true, lag: null }] },
      { name: 'storage-b', master: 'storage-b-0', instances: [{ pod: 'storage-b-0', role: 'master', healthy: true, lag: null }] },
      { name: 'router', master: null, instances: [{ pod: 'router-0', role: 'master', healthy: true, lag: null }] },
    ],
    rollout: null,
    sharding: {
      replicasets: [
        { name: 'storage-a', role: 'storage', buckets: { active: 1500, sending: 0, receiving: 0, garbage: 0 } },
        { name: 'storage-b', role: 'storage', buckets: { active: 1497, sending: 3, receiving: 0, garbage: 2 } },
        { name: 'router', role: 'router', buckets: null },
      ],
      bootstrap: { state: 'done', how: 'bootstrapped', by: 'router-0', atMs: 5, reason: 'buckets bootstrapped through router-0' },
      routers: [{ pod: 'router-0', masters: { 'storage-a': 'storage-a-0', 'storage-b': null }, unknown: 0, unreachable: 1497 }],
    },
  };

  it('adds a Buckets column: active per storage, what is in flight, routers marked', () => {
    const out = renderStatusTable(sharded);
    expect(out).toMatch(/\| Replica set \| Member\s+\| Role\s+\| Healthy \| Lag \(s\) \| Buckets\s+\|/);
    expect(out).toMatch(/\| storage-a\s+\| storage-a-0 \| master \| yes\s+\| -\s+\| 1500\s+\|/);
    expect(out).toMatch(/\| storage-b\s+\| storage-b-0 \| master \| yes\s+\| -\s+\| 1497 \(sending 3, garbage 2\) \|/);
    expect(out).toMatch(/\| router\s+\| router-0\s+\| master \| yes\s+\| -\s+\| router\s+\|/);
    expect(out).toContain('Buckets: bootstrapped through router-0');
    expect(out).toContain('router router-0: masters storage-a=storage-a-0, storage-b=none; unknown buckets 0, unreachable 1497');
  });

  it('lists what is wrong with how a role is given', () => {
    const wrong = { ...sharded, sharding: { ...sharded.sharding!, replicasets: [{ name: 'router', role: 'router' as const, buckets: null, problems: ['annotation says storage'] }] } };
    expect(renderStatusTable(wrong)).toContain('  - router: annotation says storage');
  });

  it('says why the bootstrap waits', () => {
    const waiting = { ...sharded, sharding: { ...sharded.sharding!, bootstrap: { state: 'waiting' as const, how: null, by: null, atMs: null, reason: 'buckets wait: storage-b has no master yet' } } };
    expect(renderStatusTable(waiting)).toContain('Buckets: waiting — buckets wait: storage-b has no master yet');
  });

  it('a plain replica set has no Buckets column', () => {
    expect(renderStatusTable(status)).not.toContain('Buckets');
  });
});
