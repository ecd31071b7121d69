import { describe, expect, it } from 'vitest';
import { instanceUuid, replicasetUuid } from '../../common/identity.js';
import { dns1123LabelProblem, isDns1123Label } from '../../common/dns.js';

describe('identity', () => {
  it('is deterministic and distinct per pod, namespace and cluster', () => {
    const a = instanceUuid('default', 'demo', 'storage-0');
    expect(a).toBe(instanceUuid('default', 'demo', 'storage-0'));
    expect(a).toMatch(/^[0-9a-f]{8}-[0-9a-f]{4}-5[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/);
    expect(instanceUuid('default', 'demo', 'storage-1')).not.toBe(a);
    expect(instanceUuid('other', 'demo', 'storage-0')).not.toBe(a);
    expect(instanceUuid('default', 'demo2', 'storage-0')).not.toBe(a);
  });

  it('derives the replica set UUID from the StatefulSet name in the same way (SPEC §4)', () => {
    expect(replicasetUuid('default', 'demo', 'storage')).toBe(replicasetUuid('default', 'demo', 'storage'));
    expect(replicasetUuid('default', 'demo', 'storage')).not.toBe(replicasetUuid('default', 'demo', 'router'));
  });

  it('pins the namespace: a known input maps to a known UUID forever', () => {
    // If this changes, every existing data directory stops matching its pod's identity.
    expect(instanceUuid('default', 'demo', 'storage-0')).toMatchSnapshot();
  });
});

describe('DNS-1123 labels', () => {
  it.each([
    ['demo', true],
    ['a', true],
    ['my-cluster-1', true],
    ['', false],
    ['Demo', false],
    ['-demo', false],
    ['demo-', false],
    ['de_mo', false],
    ['a'.repeat(63), true],
    ['a'.repeat(64), false],
  ])('%j → %s', (value, ok) => {
    expect(isDns1123Label(value)).toBe(ok);
    expect(dns1123LabelProblem(value) === null).toBe(ok);
  });
});
