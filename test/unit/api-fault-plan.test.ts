import { describe, expect, it } from 'vitest';
import { conflictStatus, decideFault, internalErrorStatus, isWatch, pathObject, type FaultDecision } from '../../localcluster/api-fault-plan.js';
import { chaosSchedule, prng } from '../../tools/chaos/schedule.js';

const METHODS = ['GET', 'PUT', 'PATCH', 'POST', 'DELETE', 'GET', 'GET'];
const run = (seed: number, rate: number, n: number): FaultDecision[] => {
  const w = { random: prng(seed), rate, slowMs: [100, 900] as const };
  return Array.from({ length: n }, (_, i) => decideFault(w, METHODS[i % METHODS.length]));
};

describe('decideFault', () => {
  it('gives the same decisions for the same seed and different ones for another seed', () => {
    expect(run(42, 0.5, 200)).toEqual(run(42, 0.5, 200));
    expect(run(43, 0.5, 200)).not.toEqual(run(42, 0.5, 200));
  });

  it('faults about the asked fraction of requests, every kind among them', () => {
    const ds = run(7, 0.4, 5000);
    const faulted = ds.filter((d) => d.kind !== 'forward').length / ds.length;
    expect(faulted).toBeGreaterThan(0.37);
    expect(faulted).toBeLessThan(0.43);
    expect(new Set(ds.map((d) => d.kind))).toEqual(new Set(['forward', 'error', 'conflict', 'slow']));
  });

  it('forwards everything at rate 0 and faults everything at rate 1', () => {
    expect(run(1, 0, 300).every((d) => d.kind === 'forward')).toBe(true);
    expect(run(1, 1, 300).some((d) => d.kind === 'forward')).toBe(false);
  });

  it('answers 409 only to writes (POST, PUT, PATCH), and slow delays stay in their bounds', () => {
    const w = { random: prng(3), rate: 1, slowMs: [100, 900] as const };
    for (let i = 0; i < 2000; i++) {
      const method = METHODS[i % METHODS.length] ?? 'GET';
      const d = decideFault(w, method);
      if (d.kind === 'conflict') expect(['POST', 'PUT', 'PATCH']).toContain(method);
      if (d.kind === 'slow') {
        expect(d.delayMs).toBeGreaterThanOrEqual(100);
        expect(d.delayMs).toBeLessThanOrEqual(900);
      }
    }
  });
});

describe('pathObject', () => {
  it.each([
    ['/api/v1/namespaces/ns/configmaps/shoal-x-state', 'configmaps', 'shoal-x-state'],
    ['/apis/coordination.k8s.io/v1/namespaces/ns/leases/shoal-x?timeout=10s', 'leases', 'shoal-x'],
    ['/api/v1/namespaces/ns/events', 'events', ''],
    ['/api/v1/nodes/n1/status', 'nodes', 'n1'],
    ['/api/v1/namespaces/ns', 'namespaces', 'ns'],
    ['/healthz', '', ''],
  ])('%s → %s %s', (url, resource, name) => {
    expect(pathObject(url)).toEqual({ resource, name });
  });
});

describe('isWatch', () => {
  it.each([
    ['/api/v1/namespaces/ns/pods?labelSelector=a%3Db&watch=true&resourceVersion=5', true],
    ['/apis/apps/v1/namespaces/ns/statefulsets?watch=1', true],
    ['/api/v1/watch/namespaces/ns/pods', true],
    ['/apis/apps/v1/watch/statefulsets', true],
    ['/api/v1/namespaces/ns/pods?watch=false', false],
    ['/api/v1/namespaces/ns/pods', false],
    ['/api/v1/namespaces/watch/pods', false],
  ])('%s → %s', (url, expected) => {
    expect(isWatch(url)).toBe(expected);
  });
});

describe('Status bodies', () => {
  it('are real Kubernetes Status objects', () => {
    expect(internalErrorStatus()).toMatchObject({ kind: 'Status', apiVersion: 'v1', status: 'Failure', reason: 'InternalError', code: 500 });
    expect(conflictStatus('PUT', '/apis/coordination.k8s.io/v1/namespaces/ns/leases/l1')).toMatchObject({
      kind: 'Status',
      apiVersion: 'v1',
      status: 'Failure',
      reason: 'Conflict',
      code: 409,
      details: { name: 'l1', kind: 'leases' },
      message: 'Operation cannot be fulfilled on leases "l1": the object has been modified; please apply your changes to the latest version and try again',
    });
    expect(conflictStatus('POST', '/api/v1/namespaces/ns/secrets')).toMatchObject({ reason: 'AlreadyExists', code: 409, message: 'secrets already exists' });
  });
});

describe('chaos schedule', () => {
  it('draws flaky-API windows of 8–20 s among the other faults', () => {
    const flaky = Array.from({ length: 30 }, (_, i) => chaosSchedule({ seed: i + 1, durationS: 300 }))
      .flat()
      .filter((f) => f.kind === 'api-flaky');
    expect(flaky.length).toBeGreaterThan(10);
    for (const f of flaky) {
      expect(f.durationS).toBeGreaterThanOrEqual(8);
      expect(f.durationS).toBeLessThanOrEqual(20);
    }
    // The short run in npm test (test/e2e/chaos.test.ts) has one.
    expect(chaosSchedule({ seed: 8, durationS: 90 }).some((f) => f.kind === 'api-flaky')).toBe(true);
  });
});
