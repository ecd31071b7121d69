// The one configuration loader: in-cluster variables and service account files, or a kubeconfig.
import { mkdtemp, rm, writeFile } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { afterEach, describe, expect, it } from 'vitest';
import { loadKubeConfig } from '../../common/kube/config.js';
import { parseKubeconfig } from '../../common/kube/kubeconfig.js';
import { tokenFileSource } from '../../common/kube/target.js';

const dirs: string[] = [];
afterEach(async () => {
  for (const d of dirs.splice(0)) await rm(d, { recursive: true, force: true });
});
async function tempDir(): Promise<string> {
  const d = await mkdtemp(join(tmpdir(), 'shoal-kubeconfig-'));
  dirs.push(d);
  return d;
}

describe('loadKubeConfig', () => {
  it('fails with a hint when the in-cluster service account is missing, or KUBECONFIG names nothing', () => {
    expect(() => loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1', KUBERNETES_SERVICE_PORT: '443' }, serviceAccountDir: '/nonexistent/sa' })).toThrow(
      /no service account token at \/nonexistent\/sa\/token.*fix: mount/,
    );
    expect(() => loadKubeConfig({ env: { KUBECONFIG: '/nonexistent/kubeconfig' } })).toThrow(/KUBECONFIG names no readable file/);
  });

  it('builds an in-cluster target from the environment and the service account directory', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'token'), 'abc\n');
    await writeFile(join(dir, 'ca.crt'), 'CA PEM');
    const t = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: 'fd00::1', KUBERNETES_SERVICE_PORT: '6443' }, serviceAccountDir: dir });
    expect(t.server).toBe('https://[fd00::1]:6443');
    expect(t.ca?.toString()).toBe('CA PEM');
    expect(await t.token?.()).toBe('abc');
    const v4 = loadKubeConfig({ env: { KUBERNETES_SERVICE_HOST: '10.96.0.1' }, serviceAccountDir: dir });
    expect(v4.server).toBe('https://10.96.0.1:443');
  });

  it('prefers an explicit kubeconfig to the in-cluster variables, and KUBECONFIG to ~/.kube/config', async () => {
    const dir = await tempDir();
    const file = join(dir, 'config');
    await writeFile(file, 'apiVersion: v1\ncurrent-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "https://x:1"}}]\nusers: [{name: u, user: {token: t}}]\n');
    expect(loadKubeConfig({ kubeconfig: file, env: { KUBERNETES_SERVICE_HOST: '10.0.0.1' } }).server).toBe('https://x:1');
    expect(loadKubeConfig({ env: { KUBECONFIG: `/nonexistent:${file}` } }).server).toBe('https://x:1');
    // No ~/.kube/config under that HOME:
    expect(() => loadKubeConfig({ env: { HOME: dir } })).toThrow(/cannot load a Kubernetes client configuration/);
  });
});

describe('parseKubeconfig', () => {
  it('reads the current context: inline CA and client certificate, the context namespace', () => {
    const b64 = (s: string): string => Buffer.from(s).toString('base64');
    const t = parseKubeconfig(
      [
        'apiVersion: v1',
        'kind: Config',
        'current-context: admin',
        'contexts:',
        '- {name: other, context: {cluster: nowhere, user: nobody}}',
        '- {name: admin, context: {cluster: local, user: admin, namespace: demo}}',
        'clusters:',
        `- {name: local, cluster: {server: "https://127.0.0.1:6443", certificate-authority-data: ${b64('CA')}}}`,
        'users:',
        `- {name: admin, user: {client-certificate-data: ${b64('CERT')}, client-key-data: ${b64('KEY')}}}`,
      ].join('\n'),
      '/x/config',
    );
    expect(t.server).toBe('https://127.0.0.1:6443');
    expect([t.ca?.toString(), t.cert?.toString(), t.key?.toString()]).toEqual(['CA', 'CERT', 'KEY']);
    expect(t.namespace).toBe('demo');
    expect(t.token).toBeUndefined();
  });

  it('resolves file paths relative to the kubeconfig, and reads a token file', async () => {
    const dir = await tempDir();
    await writeFile(join(dir, 'ca.pem'), 'CA FILE');
    await writeFile(join(dir, 'tok'), ' secret \n');
    const t = parseKubeconfig(
      'current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "https://h", certificate-authority: ca.pem, insecure-skip-tls-verify: true}}]\nusers: [{name: u, user: {tokenFile: tok}}]\n',
      join(dir, 'config'),
    );
    expect(t.ca?.toString()).toBe('CA FILE');
    expect(t.insecureSkipTLSVerify).toBe(true);
    expect(await t.token?.()).toBe('secret');
  });

  it('refuses what it cannot honour, naming the fix', () => {
    expect(() => parseKubeconfig('apiVersion: v1\n', 'k')).toThrow(/names no current cluster/);
    expect(() => parseKubeconfig('current-context: c\ncontexts: []\n', 'k')).toThrow(/k has no context named "c"/);
    expect(() =>
      parseKubeconfig('current-context: c\ncontexts: [{name: c, context: {cluster: k, user: u}}]\nclusters: [{name: k, cluster: {server: "https://h"}}]\nusers: [{name: u, user: {exec: {command: aws}}}]\n', 'k'),
    ).toThrow(/plugin \(exec\/auth-provider\)/);
  });
});

describe('tokenFileSource', () => {
  it('re-reads a rotated token once the cached one is a minute old', async () => {
    const dir = await tempDir();
    const file = join(dir, 'token');
    await writeFile(file, 'one');
    let now = 0;
    const token = tokenFileSource(file, () => now);
    expect(await token()).toBe('one');
    await writeFile(file, 'two');
    now = 59_000;
    expect(await token()).toBe('one');
    now = 60_000;
    expect(await token()).toBe('two');
  });
});
