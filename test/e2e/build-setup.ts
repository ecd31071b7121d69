// Global setup of both e2e projects: pods run the agent (and the demo test the demo) from dist/, as
// the image would, so a source tree newer than its build would test an older agent. `npm test`
// builds first; a lone `vitest run` builds here. Both projects' setups run in the one vitest main
// process, so the build is shared, not raced.
import { execFileSync } from 'node:child_process';
import { readdir, stat } from 'node:fs/promises';
import path from 'node:path';

const ROOT = path.resolve(import.meta.dirname, '../..');

/** Newest modification time (ms) of the TypeScript and Lua sources under `dir`. */
async function newestSource(dir: string): Promise<number> {
  let newest = 0;
  for (const entry of await readdir(dir, { withFileTypes: true, recursive: true })) {
    if (!entry.isFile() || !/\.(ts|lua)$/.test(entry.name)) continue;
    newest = Math.max(newest, (await stat(path.join(entry.parentPath, entry.name))).mtimeMs);
  }
  return newest;
}

let building: Promise<void> | undefined;

/** Runs `npm run build` when any source is newer than dist/ (once per vitest run). */
export function buildIfStale(): Promise<void> {
  building ??= build();
  return building;
}

async function build(): Promise<void> {
  const built = await stat(path.join(ROOT, 'dist/agent/main.js')).then((s) => s.mtimeMs, () => 0);
  const sources = await Promise.all(['common', 'webhook', 'agent', 'localcluster', 'demo', 'cli', 'tools'].map((d) => newestSource(path.join(ROOT, d))));
  if (Math.max(...sources) <= built) return;
  process.stderr.write('[e2e] dist/ is older than the sources: npm run build\n');
  try {
    execFileSync('npm', ['run', '--silent', 'build'], { cwd: ROOT, stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' });
  } catch (err) {
    const out = err as { stdout?: string; stderr?: string };
    throw new Error(`npm run build failed, so the e2e pods would run a stale agent:\n${out.stdout ?? ''}${out.stderr ?? ''}`);
  }
}

export default buildIfStale;
