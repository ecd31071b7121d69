// The chaos history through Porcupine: tools/linearizability (Go), built and cached by
// scripts/provision-linearizability.sh. The verdict is parsed from its one output line (pure:
// `parseVerdict`); running it is a bounded, cancellable execFile.
import { execFile } from 'node:child_process';
import { homedir } from 'node:os';
import path from 'node:path';

export type LinearizabilityVerdict = 'ok' | 'violated' | 'unknown';

export interface LinearizabilityResult {
  verdict: LinearizabilityVerdict;
  /** The checker's own line (what it checked, the offending keys), or why it did not run. */
  detail: string;
  history: string;
  /** Porcupine's visualisation of the offending keys (only when violated). */
  html?: string;
}

/** $SHOAL_LINEARIZABILITY, else the cached build. */
export function linearizabilityBinary(): string {
  const fromEnv = process.env['SHOAL_LINEARIZABILITY'];
  if (fromEnv) return fromEnv;
  const cache = process.env['SHOAL_CACHE_DIR'] ?? path.join(homedir(), '.cache', 'shoal');
  return path.join(cache, 'linearizability', 'shoal-linearizability');
}

/** Pure: exit code 0 linearizable, 1 not, anything else (2, a signal, no binary) unknown; the line as the detail. */
export function parseVerdict(exitCode: number | null, stdout: string, stderr = ''): { verdict: LinearizabilityVerdict; detail: string } {
  const line = stdout.split('\n').find((l) => l.startsWith('linearizability: '))?.slice('linearizability: '.length);
  if (exitCode === 0 && line?.startsWith('OK')) return { verdict: 'ok', detail: line };
  if (exitCode === 1 && line?.startsWith('VIOLATED')) return { verdict: 'violated', detail: line };
  return { verdict: 'unknown', detail: line ?? `the checker exited with ${exitCode ?? 'a signal'}: ${(stderr || stdout).trim().split('\n')[0] ?? ''}` };
}

export interface CheckOptions {
  binary?: string;
  /** Bound of the whole check. Default 10 min. */
  timeoutMs?: number;
  signal?: AbortSignal;
}

export function checkLinearizability(history: string, html: string, o: CheckOptions = {}): Promise<LinearizabilityResult> {
  const binary = o.binary ?? linearizabilityBinary();
  return new Promise((resolve) => {
    execFile(
      binary,
      ['-history', history, '-html', html],
      { timeout: o.timeoutMs ?? 600_000, maxBuffer: 1 << 20, ...(o.signal ? { signal: o.signal } : {}) },
      (err, stdout, stderr) => {
        const code = err === null ? 0 : typeof err.code === 'number' ? err.code : null;
        const v = parseVerdict(code, stdout, err && code === null ? `${err.message} ${stderr}` : stderr);
        resolve({ ...v, history, ...(v.verdict === 'violated' ? { html } : {}) });
      },
    );
  });
}
