// The agent's node flags: the same in the image's ENTRYPOINT as in the process kubelet's image table,
// and each one accepted by this node (an unknown flag makes node exit before the agent starts).
import { execFileSync } from 'node:child_process';
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { AGENT_NODE_FLAGS } from '../../agent/node-flags.js';
import { shoalImages } from '../../demo/images.js';
import { repoRoot } from '../../demo/repo-root.js';

describe('agent node flags', () => {
  it('Dockerfile.agent runs node with exactly these flags before the agent', () => {
    const dockerfile = readFileSync(path.join(repoRoot(), 'Dockerfile.agent'), 'utf8');
    const line = /^ENTRYPOINT (\[.*\])$/m.exec(dockerfile)?.[1];
    expect(line).toBeDefined();
    expect(JSON.parse(line ?? '[]')).toEqual(['node', ...AGENT_NODE_FLAGS, '/app/bin/shoal-agent.js']);
  });

  it('the process kubelet starts the built agent with the same flags', () => {
    const entry = shoalImages('/repo')['shoal/agent']?.entrypoint;
    expect(entry).toEqual([process.execPath, ...AGENT_NODE_FLAGS, '/repo/dist/agent/main.js']);
  });

  it('node accepts every flag and runs with them', () => {
    const out = execFileSync(process.execPath, [...AGENT_NODE_FLAGS, '-e', "process.stdout.write(String(require('node:v8').getHeapStatistics().heap_size_limit >> 20))"], { encoding: 'utf8' });
    // The old-space cap shows in the heap limit (old space plus the young generation).
    expect(Number(out)).toBeGreaterThanOrEqual(128);
    expect(Number(out)).toBeLessThan(160);
  });
});
