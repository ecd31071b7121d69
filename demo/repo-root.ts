import { readFileSync } from 'node:fs';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { ShoalError } from '../common/errors.js';

/** The repository root (this file runs from the source tree under vitest/tsx and from dist/). */
export function repoRoot(): string {
  const here = path.dirname(fileURLToPath(import.meta.url));
  for (const rel of ['..', '../..']) {
    const dir = path.resolve(here, rel);
    try {
      const pkg = JSON.parse(readFileSync(path.join(dir, 'package.json'), 'utf8')) as { name?: string };
      if (pkg.name === 'shoal') return dir;
    } catch {
      // next
    }
  }
  throw new ShoalError(`cannot find the Shoal repository above ${here}`);
}
