import { describe, expect, it } from 'vitest';
import type { V1Container, V1Pod } from '@kubernetes/client-node';
import { expandVars, fieldRefValue, formatMap, resolveEnv, serviceEnv, type ObjectData } from '../../localcluster/kubelet/env.js';
import { referencedObjects } from '../../localcluster/kubelet/refs.js';

const pod: V1Pod = {
  metadata: { name: 'web-0', namespace: 'ns1', uid: 'u-1', labels: { app: 'web', tier: 'x"y' }, annotations: { a: '1' } },
  spec: { nodeName: 'node-a', serviceAccountName: 'sa1', containers: [] },
};
const facts = { pod, podIP: '127.0.1.5', hostIP: '127.0.0.1' };
const objects: ObjectData = {
  secrets: new Map([['s1', { password: 'p4ss', 'bad key': 'x' }], ['gone', null]]),
  configMaps: new Map([['c1', { MODE: 'fast', PORT: '3301' }]]),
};

describe('expandVars (the kubelet $(VAR) rules)', () => {
  it.each([
    ['$(A)-$(B)', 'a-b'],
    ['$(MISSING)', '$(MISSING)'],
    ['$$(A)', '$(A)'],
    ['$$', '$'],
    ['cost $5', 'cost $5'],
    ['open $(A', 'open $(A'],
    ['trailing $', 'trailing $'],
    ['', ''],
  ])('%s → %s', (input, expected) => {
    expect(expandVars(input, { A: 'a', B: 'b' })).toBe(expected);
  });
});

describe('fieldRefValue', () => {
  it.each([
    ['metadata.name', 'web-0'],
    ['metadata.namespace', 'ns1'],
    ['metadata.uid', 'u-1'],
    ["metadata.labels['app']", 'web'],
    ["metadata.labels['none']", ''],
    ["metadata.annotations['a']", '1'],
    ['status.podIP', '127.0.1.5'],
    ['status.hostIP', '127.0.0.1'],
    ['spec.nodeName', 'node-a'],
    ['spec.serviceAccountName', 'sa1'],
  ])('%s', (path, value) => expect(fieldRefValue(facts, path)).toBe(value));

  it('is undefined for an unknown path', () => expect(fieldRefValue(facts, 'spec.unknown')).toBeUndefined());

  it('formats whole maps as sorted quoted lines', () => {
    expect(formatMap(pod.metadata?.labels)).toBe('app="web"\ntier="x\\"y"');
  });
});

describe('resolveEnv', () => {
  const base = { ...serviceEnv('127.0.0.1', 6443), SHOAL_BIND_HOST: '127.0.1.5' };

  it('resolves values, downward API, secrets and configmaps, with $(VAR) to earlier entries', () => {
    const c: V1Container = {
      name: 'c',
      envFrom: [{ configMapRef: { name: 'c1' }, prefix: 'CFG_' }],
      env: [
        { name: 'POD_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } },
        { name: 'POD_IP', valueFrom: { fieldRef: { fieldPath: 'status.podIP' } } },
        { name: 'LISTEN', value: '$(POD_IP):$(CFG_PORT)' },
        { name: 'API', value: 'https://$(KUBERNETES_SERVICE_HOST):$(KUBERNETES_SERVICE_PORT)' },
        { name: 'LATER_REF', value: '$(DEFINED_LATER)' },
        { name: 'DEFINED_LATER', value: 'x' },
        { name: 'PASSWORD', valueFrom: { secretKeyRef: { name: 's1', key: 'password' } } },
        { name: 'OPT', valueFrom: { secretKeyRef: { name: 'gone', key: 'k', optional: true } } },
      ],
    };
    const r = resolveEnv(c, facts, objects, base, { PATH: '/bin', IMAGE_ONLY: '1', SHOAL_BIND_HOST: 'image' });
    expect(r.ok).toBe(true);
    if (!r.ok) return;
    expect(r.env).toMatchObject({
      PATH: '/bin',
      IMAGE_ONLY: '1',
      SHOAL_BIND_HOST: '127.0.1.5', // the cluster's extras beat the image's env
      CFG_MODE: 'fast',
      POD_NAME: 'web-0',
      LISTEN: '127.0.1.5:3301',
      API: 'https://127.0.0.1:6443',
      LATER_REF: '$(DEFINED_LATER)',
      PASSWORD: 'p4ss',
      KUBERNETES_SERVICE_HOST: '127.0.0.1',
      KUBERNETES_SERVICE_PORT: '6443',
    });
    expect(r.env).not.toHaveProperty('OPT');
  });

  it('lets the container env override envFrom and the base', () => {
    const c: V1Container = {
      name: 'c',
      envFrom: [{ secretRef: { name: 's1' } }],
      env: [{ name: 'SHOAL_BIND_HOST', value: 'mine' }, { name: 'password', value: 'override' }],
    };
    const r = resolveEnv(c, facts, objects, base);
    expect(r.ok && r.env.SHOAL_BIND_HOST).toBe('mine');
    expect(r.ok && r.env.password).toBe('override');
    expect(r.ok && 'bad key' in r.env).toBe(false); // invalid names from envFrom are skipped
  });

  it.each([
    [{ name: 'X', valueFrom: { secretKeyRef: { name: 'gone', key: 'k' } } }, 'key "k" of secret "gone" not found'],
    [{ name: 'X', valueFrom: { configMapKeyRef: { name: 'c1', key: 'nope' } } }, 'key "nope" of configmap "c1" not found'],
    [{ name: 'X', valueFrom: { fieldRef: { fieldPath: 'spec.bogus' } } }, 'unsupported fieldPath'],
    [{ name: 'X', valueFrom: { resourceFieldRef: { resource: 'limits.cpu' } } }, 'resourceFieldRef'],
  ])('fails on %j', (e, message) => {
    const r = resolveEnv({ name: 'c', env: [e] }, facts, objects, base);
    expect(r.ok).toBe(false);
    expect(!r.ok && r.message).toContain(message);
  });

  it('fails on a missing envFrom object unless optional', () => {
    expect(resolveEnv({ name: 'c', envFrom: [{ secretRef: { name: 'gone' } }] }, facts, objects, base).ok).toBe(false);
    expect(resolveEnv({ name: 'c', envFrom: [{ secretRef: { name: 'gone', optional: true } }] }, facts, objects, base).ok).toBe(true);
  });
});

describe('referencedObjects', () => {
  it('collects secrets and configmaps from env, envFrom and volumes of every container', () => {
    const p: V1Pod = {
      spec: {
        initContainers: [{ name: 'i', env: [{ name: 'A', valueFrom: { secretKeyRef: { name: 's-init', key: 'k' } } }] }],
        containers: [{ name: 'c', envFrom: [{ configMapRef: { name: 'cm-from' } }] }],
        volumes: [
          { name: 'v1', secret: { secretName: 'default-token-abc' } },
          { name: 'v2', configMap: { name: 'cm-vol' } },
          { name: 'v3', projected: { sources: [{ secret: { name: 's-proj' } }, { configMap: { name: 'cm-proj' } }] } },
        ],
      },
    };
    const r = referencedObjects(p);
    expect([...r.secrets].sort()).toEqual(['default-token-abc', 's-init', 's-proj']);
    expect([...r.configMaps].sort()).toEqual(['cm-from', 'cm-proj', 'cm-vol']);
  });
});
