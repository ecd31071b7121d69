import { readFileSync } from 'node:fs';
import { request as httpRequest } from 'node:http';
import { request as httpsRequest } from 'node:https';
import { setTimeout as sleep } from 'node:timers/promises';
import { ShoalError, errorMessage } from '../../common/errors.js';
import type { ManagedProcess } from './processes.js';

// Bounded waits on a starting process's HTTP health endpoint; a process that exits meanwhile fails
// the wait at once, with the last lines of its log.

interface ProbeResult {
  status: number;
  body: string;
}

export interface TlsMaterial {
  ca?: string;
  cert?: string;
  key?: string;
  insecure?: boolean;
}

export function probe(url: string, tls: TlsMaterial = {}): Promise<ProbeResult> {
  return new Promise((resolveProbe, reject) => {
    const isHttps = url.startsWith('https:');
    const options = isHttps
      ? { ca: tls.ca, cert: tls.cert, key: tls.key, rejectUnauthorized: !tls.insecure, timeout: 3000 }
      : { timeout: 3000 };
    const req = (isHttps ? httpsRequest : httpRequest)(url, options, (res) => {
      let body = '';
      res.setEncoding('utf8');
      res.on('data', (chunk: string) => {
        body += chunk;
      });
      res.on('end', () => resolveProbe({ status: res.statusCode ?? 0, body }));
      res.on('error', reject);
    });
    req.on('timeout', () => req.destroy(new Error(`timeout probing ${url}`)));
    req.on('error', reject);
    req.end();
  });
}

function tailOf(path: string, lines = 15): string {
  try {
    const text = readFileSync(path, 'utf8');
    // Only the latest run: the log file is appended to across restarts.
    const run = text.slice(Math.max(0, text.lastIndexOf('\n=== ')));
    return run.trimEnd().split('\n').slice(-lines).join('\n');
  } catch {
    return '(log file unreadable)';
  }
}

/** Polls `ready` until it returns true; fails early when the process exits, and names its log. */
export async function waitUntil(
  what: string,
  proc: ManagedProcess,
  ready: () => Promise<boolean>,
  timeoutMs: number,
  signal?: AbortSignal,
): Promise<void> {
  const deadline = Date.now() + timeoutMs;
  let lastError = '';
  for (;;) {
    signal?.throwIfAborted();
    if (!proc.running) {
      const exit = proc.lastExit;
      throw new ShoalError(
        `${proc.name} exited (code ${exit?.code ?? '?'}, signal ${exit?.signal ?? 'none'}) while waiting for ${what}; ` +
          `last lines of ${proc.logFile}:\n${tailOf(proc.logFile)}`,
        `read ${proc.logFile}`,
      );
    }
    try {
      if (await ready()) return;
    } catch (err) {
      lastError = errorMessage(err);
    }
    if (Date.now() > deadline) {
      throw new ShoalError(
        `${what} not reached within ${Math.round(timeoutMs / 1000)} s${lastError ? ` (last error: ${lastError})` : ''}`,
        `read ${proc.logFile}`,
      );
    }
    await sleep(250, undefined, signal ? { signal } : {});
  }
}
