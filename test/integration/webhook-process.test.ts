// `shoal-webhook` as a real process: flags and env, a labelled pod's review patched and re-reviewed,
// clean exit on SIGTERM. Runs dist/ when it is up to date with the sources, else the sources via tsx.
import { afterAll, beforeAll, describe, expect, it } from 'vitest';
import { spawn, type ChildProcess } from 'node:child_process';
import { existsSync, readdirSync, statSync } from 'node:fs';
import { mkdtemp, readFile, rm } from 'node:fs/promises';
import { request } from 'node:https';
import { createInterface } from 'node:readline';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { V1Pod } from '@kubernetes/client-node';
import { applied, review, stsPod, type ReviewResponse } from '../support/webhook-fixtures.js';

const ROOT = join(import.meta.dirname, '../..');

function entry(): string[] {
  const dist = join(ROOT, 'dist/webhook/main.js');
  const newestSource = Math.max(...['webhook', 'common'].flatMap((d) => readdirSync(join(ROOT, d)).map((f) => statSync(join(ROOT, d, f)).mtimeMs)));
  return existsSync(dist) && statSync(dist).mtimeMs >= newestSource ? [dist] : ['--import', 'tsx', join(ROOT, 'webhook/main.ts')];
}

function cleanEnv(extra: Record<string, string>): NodeJS.ProcessEnv {
  const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !k.startsWith('SHOAL_WEBHOOK_') && k !== 'KUBERNETES_SERVICE_HOST'));
  return { ...env, SHOAL_LOG_LEVEL: 'info', ...extra };
}

function post(url: string, ca: string, path: string, body: unknown): Promise<{ status: number; json: { response: ReviewResponse } }> {
  return new Promise((resolve, reject) => {
    const req = request(new URL(path, url), { method: 'POST', ca, headers: { 'content-type': 'application/json' } }, (res) => {
      let text = '';
      res.on('data', (c: Buffer) => (text += c.toString()));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, json: JSON.parse(text) as { response: ReviewResponse } }));
    });
    req.on('error', reject);
    req.end(JSON.stringify(body));
  });
}

describe('shoal-webhook process', () => {
  let dir: string;
  let child: ChildProcess;
  let url: string;
  const exited = () => new Promise<number | null>((resolve) => (child.exitCode !== null ? resolve(child.exitCode) : child.once('exit', (code) => resolve(code))));

  beforeAll(async () => {
    dir = await mkdtemp(join(tmpdir(), 'shoal-whp-'));
    child = spawn(process.execPath, [...entry(), '--cert-dir', dir, '--port', '0', '--host', '127.0.0.1'], {
      cwd: ROOT,
      env: cleanEnv({ SHOAL_WEBHOOK_SIDECAR_MODE: 'container', SHOAL_WEBHOOK_AGENT_IMAGE: 'shoal/agent:from-env' }),
      stdio: ['ignore', 'pipe', 'inherit'],
    });
    url = await new Promise<string>((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('shoal-webhook did not report serving within 30 s')), 30_000);
      child.once('exit', (code) => reject(new Error(`shoal-webhook exited with ${code}`)));
      createInterface({ input: child.stdout! }).on('line', (line) => {
        let rec: { msg?: string; url?: string } = {};
        try {
          rec = JSON.parse(line) as typeof rec;
        } catch {
          return; // not a log line
        }
        if (rec.msg === 'shoal-webhook serving' && rec.url) {
          clearTimeout(timer);
          resolve(rec.url);
        }
      });
    });
  });
  afterAll(async () => {
    if (child && child.exitCode === null) {
      child.kill('SIGKILL');
      await exited();
    }
    await rm(dir, { recursive: true, force: true });
  });

  it('patches a labelled pod so it gets the agent, the shared volume, env and probes; the result gets no patch', async () => {
    const ca = await readFile(join(dir, 'ca.crt'), 'utf8');
    const pod = stsPod();
    const first = await post(url, ca, '/mutate/pods', review('Pod', pod));
    expect(first.status).toBe(200);
    const patched = applied(pod, first.json.response) as V1Pod;
    const spec = patched.spec!;
    const agent = spec.containers.find((c) => c.name === 'shoal-agent')!;
    expect(agent.image).toBe('shoal/agent:from-env');
    expect(agent.readinessProbe?.httpGet?.path).toBe('/readyz');
    expect(agent.livenessProbe?.httpGet?.path).toBe('/healthz');
    expect(spec.volumes).toContainEqual({ name: 'shoal-run', emptyDir: {} });
    for (const c of spec.containers) expect(c.volumeMounts).toContainEqual({ name: 'shoal-run', mountPath: '/var/run/shoal' });
    expect(agent.env!.map((e) => e.name)).toEqual(expect.arrayContaining(['POD_NAME', 'POD_NAMESPACE', 'POD_IP', 'SHOAL_CLUSTER', 'SHOAL_REPLICASET']));
    expect(spec.containers[0]!.env!.map((e) => e.name)).toEqual(['SHOAL_CONSOLE_SOCKET', 'LUA_PATH']);
    const second = await post(url, ca, '/mutate/pods', review('Pod', patched));
    expect(second.json.response.allowed).toBe(true);
    expect(second.json.response.patch).toBeUndefined();
  });

  it('exits 0 on SIGTERM', async () => {
    child.kill('SIGTERM');
    expect(await exited()).toBe(0);
  });
});

describe('shoal-webhook flags', () => {
  it('rejects a bad --sidecar-mode with a usage message', async () => {
    const p = spawn(process.execPath, [...entry(), '--cert-dir', tmpdir(), '--sidecar-mode', 'sometimes'], { cwd: ROOT, env: cleanEnv({}), stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    p.stderr!.on('data', (c: Buffer) => (err += c.toString()));
    const code = await new Promise<number | null>((resolve) => p.once('exit', resolve));
    expect(code).not.toBe(0);
    expect(err).toMatch(/--sidecar-mode.*Allowed choices are auto, native, container/s);
  });
});
