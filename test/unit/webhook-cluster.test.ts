import { describe, expect, it } from 'vitest';
import { ensureClusterBundle, syncCaBundle } from '../../webhook/cert-sync.js';
import type { ClusterAccess, StoredSecret } from '../../webhook/cluster.js';
import { decideSidecarMode, resolveSidecarMode } from '../../webhook/sidecar-mode.js';
import { bundleProblems, generateBundle, servingNames } from '../../webhook/tls.js';
import { createLogger } from '../../common/log.js';

const NAMES = servingNames('shoal-webhook', 'shoal-system');
const log = createLogger({ component: 'test' }).child({}, { level: 'silent' });
const DAY = 24 * 3600 * 1000;

/** An API server holding one namespace's Secrets and one MutatingWebhookConfiguration. */
class FakeCluster implements ClusterAccess {
  secrets = new Map<string, StoredSecret>();
  webhooks: { name: string; caBundle: string }[] | null = [
    { name: 'statefulsets.shoal.dev', caBundle: '' },
    { name: 'pods.shoal.dev', caBundle: '' },
  ];
  patches: number[][] = [];
  rv = 0;
  /** Runs once, between a replica's read and its write: another replica acting at that moment. */
  interleave: (() => Promise<void>) | undefined;
  version: { major: number; minor: number; gitVersion: string } | Error = { major: 1, minor: 20, gitVersion: 'v1.20.2' };

  async serverVersion() {
    if (this.version instanceof Error) throw this.version;
    return this.version;
  }
  async readSecret(_ns: string, name: string) {
    const s = this.secrets.get(name);
    return s ? structuredClone(s) : null;
  }
  private async race() {
    const f = this.interleave;
    this.interleave = undefined;
    await f?.();
  }
  async createSecret(_ns: string, name: string, data: Record<string, string>) {
    await this.race();
    if (this.secrets.has(name)) return 'exists' as const;
    this.secrets.set(name, { data, resourceVersion: String(++this.rv) });
    return 'created' as const;
  }
  async replaceSecret(_ns: string, name: string, resourceVersion: string, data: Record<string, string>) {
    await this.race();
    if (this.secrets.get(name)?.resourceVersion !== resourceVersion) return 'conflict' as const;
    this.secrets.set(name, { data, resourceVersion: String(++this.rv) });
    return 'replaced' as const;
  }
  async readCaBundles() {
    return this.webhooks && structuredClone(this.webhooks);
  }
  async patchCaBundles(_name: string, webhooks: { index: number; name: string }[], caPem: string) {
    this.patches.push(webhooks.map((w) => w.index));
    for (const w of webhooks) {
      expect(this.webhooks![w.index]!.name).toBe(w.name);
      this.webhooks![w.index]!.caBundle = caPem;
    }
  }
}

const opts = { namespace: 'shoal-system', secretName: 'shoal-webhook-tls', names: NAMES, local: null, log };

describe('certificate Secret', () => {
  it('is created by the first replica and read by the next: one CA', async () => {
    const cluster = new FakeCluster();
    const a = await ensureClusterBundle(cluster, opts);
    const b = await ensureClusterBundle(cluster, opts);
    expect(b).toEqual(a);
    expect(cluster.secrets.get('shoal-webhook-tls')!.data['ca.key']).toBe(a.caKey);
  });

  it('treats a 409 on create as "read theirs"', async () => {
    const cluster = new FakeCluster();
    let theirs: unknown;
    cluster.interleave = async () => {
      theirs = await ensureClusterBundle(cluster, opts); // the other replica wins the race
    };
    const mine = await ensureClusterBundle(cluster, opts);
    expect(mine).toEqual(theirs);
  });

  it('is seeded from the files in --cert-dir when they fit', async () => {
    const cluster = new FakeCluster();
    const files = await generateBundle(NAMES);
    const { caKey: _k, ...onDisk } = files;
    expect(await ensureClusterBundle(cluster, { ...opts, local: onDisk })).toEqual(onDisk);
  });

  it('renews an expiring serving certificate under the same CA, and a conflict re-reads', async () => {
    const cluster = new FakeCluster();
    const first = await ensureClusterBundle(cluster, opts);
    const later = new Date(Date.now() + 720 * DAY);
    let theirs: unknown;
    cluster.interleave = async () => {
      theirs = await ensureClusterBundle(cluster, { ...opts, now: later });
    };
    const renewed = await ensureClusterBundle(cluster, { ...opts, now: later });
    expect(renewed).toEqual(theirs);
    expect(renewed.caCert).toBe(first.caCert);
    expect(renewed.cert).not.toBe(first.cert);
    expect(bundleProblems(renewed, NAMES, later)).toEqual([]);
  });

  it('explains what to fix when the API server refuses', async () => {
    const cluster = new FakeCluster();
    cluster.readSecret = async () => {
      throw Object.assign(new Error('forbidden'), { code: 403 });
    };
    await expect(ensureClusterBundle(cluster, opts)).rejects.toThrow(/fix: let the webhook's ServiceAccount get\/create\/update Secret shoal-webhook-tls/);
  });
});

describe('caBundle', () => {
  it('patches only the webhooks whose caBundle differs, and nothing when current', async () => {
    const cluster = new FakeCluster();
    cluster.webhooks![1]!.caBundle = 'CA';
    expect(await syncCaBundle(cluster, 'shoal-webhook', 'CA')).toBe('patched');
    expect(cluster.patches).toEqual([[0]]);
    expect(await syncCaBundle(cluster, 'shoal-webhook', 'CA')).toBe('current');
    expect(cluster.patches).toHaveLength(1);
    cluster.webhooks = null;
    expect(await syncCaBundle(cluster, 'shoal-webhook', 'CA')).toBe('missing');
  });
});

describe('sidecar mode', () => {
  it.each([
    ['native', null, 'native'],
    ['container', { major: 1, minor: 30, gitVersion: 'v1.30.0' }, 'container'],
    ['auto', null, 'native'],
    ['auto', new Error('refused'), 'native'],
    ['auto', { major: 1, minor: 20, gitVersion: 'v1.20.2' }, 'container'],
    ['auto', { major: 1, minor: 28, gitVersion: 'v1.28.9' }, 'container'],
    ['auto', { major: 1, minor: 29, gitVersion: 'v1.29.0-gke.1' }, 'native'],
    ['auto', { major: 2, minor: 0, gitVersion: 'v2.0.0' }, 'native'],
  ] as const)('%s with server %j → %s', (flag, server, want) => {
    const r = decideSidecarMode(flag, server);
    expect(r.mode).toBe(want);
    expect(r.reason).not.toBe('');
  });

  it('asks the API server once, and falls back to native when it cannot', async () => {
    const cluster = new FakeCluster();
    expect((await resolveSidecarMode('auto', cluster)).mode).toBe('container');
    cluster.serverVersion = () => new Promise(() => {}); // never answers
    const slow = await resolveSidecarMode('auto', cluster, 50);
    expect(slow).toMatchObject({ mode: 'native' });
    expect(slow.reason).toMatch(/no answer within 50 ms/);
  });
});
