import { describe, expect, it } from 'vitest';
import type { V1PersistentVolumeClaim, V1Pod } from '@kubernetes/client-node';
import { downwardFiles, keyFiles } from '../../localcluster/kubelet/volume-files.js';
import { storageClass, volumeFor, wantsVolume } from '../../localcluster/provisioner.js';
import { refreshTokenVolumes, tokenRefreshDelayMs, type VolumeContext } from '../../localcluster/kubelet/volumes.js';
import { mkdir, mkdtemp, readdir, readFile, rm, stat, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import path from 'node:path';

const data = { 'ca.crt': Buffer.from('CA'), namespace: Buffer.from('ns1'), token: Buffer.from('tok') };

describe('secret and configMap volume files', () => {
  it('writes every key as a 0644 file when there are no items (the ServiceAccount token volume)', () => {
    const r = keyFiles('secret', 'default-token-x', data, undefined, 420, undefined);
    expect(r.ok && r.files.map((f) => [f.path, f.data.toString(), f.mode])).toEqual([
      ['ca.crt', 'CA', 0o644],
      ['namespace', 'ns1', 0o644],
      ['token', 'tok', 0o644],
    ]);
  });

  it('writes only the listed items at their paths and modes', () => {
    const r = keyFiles('configmap', 'cm', data, [{ key: 'token', path: 'sub/t', mode: 0o600 }, { key: 'namespace', path: 'ns' }], 0o640, false);
    expect(r.ok && r.files.map((f) => [f.path, f.mode])).toEqual([
      ['sub/t', 0o600],
      ['ns', 0o640],
    ]);
  });

  it('fails on a missing object or key unless optional', () => {
    expect(keyFiles('secret', 's', null, undefined, undefined, false)).toEqual({ ok: false, message: 'secret "s" not found' });
    expect(keyFiles('secret', 's', null, undefined, undefined, true)).toEqual({ ok: true, files: [] });
    expect(keyFiles('secret', 's', data, [{ key: 'nope', path: 'x' }], undefined, false).ok).toBe(false);
    expect(keyFiles('secret', 's', data, [{ key: 'nope', path: 'x' }], undefined, true)).toEqual({ ok: true, files: [] });
  });

  it('refuses paths that leave the volume', () => {
    expect(keyFiles('secret', 's', data, [{ key: 'token', path: '../x' }], undefined, false).ok).toBe(false);
    expect(keyFiles('secret', 's', data, [{ key: 'token', path: '/etc/x' }], undefined, false).ok).toBe(false);
  });
});

describe('downwardAPI volume files', () => {
  const pod: V1Pod = { metadata: { name: 'p', namespace: 'n', labels: { b: '2', a: '1' } } };
  const facts = { pod, podIP: '127.0.1.9', hostIP: '127.0.0.1' };

  it('writes field values', () => {
    const r = downwardFiles(
      [
        { path: 'labels', fieldRef: { fieldPath: 'metadata.labels' } },
        { path: 'name', fieldRef: { fieldPath: 'metadata.name' } },
      ],
      facts,
      undefined,
    );
    expect(r.ok && r.files.map((f) => [f.path, f.data.toString()])).toEqual([
      ['labels', 'a="1"\nb="2"'],
      ['name', 'p'],
    ]);
  });

  it('refuses resourceFieldRef and unknown paths', () => {
    expect(downwardFiles([{ path: 'cpu', resourceFieldRef: { resource: 'limits.cpu' } }], facts, undefined).ok).toBe(false);
    expect(downwardFiles([{ path: 'x', fieldRef: { fieldPath: 'spec.nope' } }], facts, undefined).ok).toBe(false);
  });
});

describe('local volume provisioner', () => {
  const claim = (annotations: Record<string, string>, phase = 'Pending'): V1PersistentVolumeClaim => ({
    metadata: { name: 'data-st-0', namespace: 'ns1', uid: 'abc', annotations },
    spec: { accessModes: ['ReadWriteOnce'], resources: { requests: { storage: '2Gi' } }, storageClassName: 'local' },
    status: { phase },
  });
  const placed = { 'volume.kubernetes.io/selected-node': 'node-a', 'volume.beta.kubernetes.io/storage-provisioner': 'shoal.dev/local' };

  it('provisions only claims the scheduler placed on this node for this provisioner', () => {
    expect(wantsVolume(claim(placed), 'node-a')).toBe(true);
    expect(wantsVolume(claim(placed), 'node-b')).toBe(false);
    expect(wantsVolume(claim({ ...placed, 'volume.beta.kubernetes.io/storage-provisioner': 'other' }), 'node-a')).toBe(false);
    expect(wantsVolume(claim({ 'volume.kubernetes.io/selected-node': 'node-a' }), 'node-a')).toBe(false);
    expect(wantsVolume(claim(placed, 'Bound'), 'node-a')).toBe(false);
  });

  it('makes the PV the binder accepts', () => {
    const pv = volumeFor(claim(placed), 'node-a', '/run/volumes/pvc-abc');
    expect(pv.metadata).toEqual({ name: 'pvc-abc', annotations: { 'pv.kubernetes.io/provisioned-by': 'shoal.dev/local' } });
    expect(pv.spec).toMatchObject({
      capacity: { storage: '2Gi' },
      accessModes: ['ReadWriteOnce'],
      persistentVolumeReclaimPolicy: 'Delete',
      storageClassName: 'local',
      claimRef: { kind: 'PersistentVolumeClaim', namespace: 'ns1', name: 'data-st-0', uid: 'abc' },
      local: { path: '/run/volumes/pvc-abc' },
    });
    expect(pv.spec?.nodeAffinity?.required?.nodeSelectorTerms[0]?.matchExpressions?.[0]).toEqual({
      key: 'kubernetes.io/hostname',
      operator: 'In',
      values: ['node-a'],
    });
  });

  it('declares the default StorageClass with WaitForFirstConsumer', () => {
    expect(storageClass()).toMatchObject({
      metadata: { name: 'local', annotations: { 'storageclass.kubernetes.io/is-default-class': 'true' } },
      provisioner: 'shoal.dev/local',
      volumeBindingMode: 'WaitForFirstConsumer',
      reclaimPolicy: 'Delete',
    });
  });
});

describe('projected service account tokens', () => {
  const tokenPod = (expirations: Array<number | undefined>): V1Pod => ({
    spec: {
      containers: [],
      volumes: [
        { name: 'run', emptyDir: {} },
        ...expirations.map((e, i) => ({ name: `t${i}`, projected: { sources: [{ serviceAccountToken: { path: 'token', ...(e ? { expirationSeconds: e } : {}) } }] } })),
      ],
    },
  });
  it.each([
    ['none', [], null],
    ['one of 3607 s', [3607], 2_885_600],
    ['the shortest of two', [3607, 600], 480_000],
    ['the API default when none is named', [undefined], 2_880_000],
  ])('refreshes at 80 %% of the shortest lifetime: %s', (_n, exp, want) => {
    expect(tokenRefreshDelayMs(tokenPod(exp))).toBe(want);
  });

  it('rewrites each token file in place with a fresh token, leaving the directory the pod sees', async () => {
    const dir = await mkdtemp(path.join(tmpdir(), 'shoal-tokens-'));
    try {
      const vol = path.join(dir, 't0');
      await mkdir(vol);
      await writeFile(path.join(vol, 'token'), 'old');
      const before = (await stat(vol)).ino;
      let n = 0;
      const ctx = {
        pod: tokenPod([600]),
        facts: { pod: {}, podIP: '', hostIP: '' },
        podDir: dir,
        unixUid: process.getuid?.() ?? 0,
        objects: { secrets: new Map(), configMaps: new Map() },
        claimPath: async () => '',
        serviceAccountToken: async () => `fresh-${++n}`,
      } as unknown as VolumeContext;
      expect(await refreshTokenVolumes(ctx, { t0: vol, run: path.join(dir, 'run') })).toEqual(['t0']);
      expect(await readFile(path.join(vol, 'token'), 'utf8')).toBe('fresh-1');
      expect((await stat(vol)).ino).toBe(before);
      expect(await readdir(vol)).toEqual(['token']);
    } finally {
      await rm(dir, { recursive: true, force: true });
    }
  });
});
