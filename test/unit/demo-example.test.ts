// What each example brings up, read from its StatefulSets: the demo waits for exactly those pods.
import { readFileSync } from 'node:fs';
import path from 'node:path';
import { describe, expect, it } from 'vitest';
import { exampleShape } from '../../demo/example.js';
import { repoRoot } from '../../demo/repo-root.js';

const read = (name: string): string => readFileSync(path.join(repoRoot(), 'examples', `${name}.yaml`), 'utf8');

describe('exampleShape', () => {
  it.each([
    ['storage', 'demo', 3, [['storage', 3, null]]],
    ['storage-lua', 'demo', 3, [['storage', 3, null]]],
    ['sharded', 'shard', 8, [['storage-a', 3, null], ['storage-b', 3, null], ['router', 2, 'router']]],
  ] as const)('examples/%s.yaml: cluster %s, %d pods', (name, cluster, pods, sets) => {
    const shape = exampleShape(read(name));
    expect(shape.cluster).toBe(cluster);
    expect(shape.pods).toBe(pods);
    expect(shape.statefulSets.map((s) => [s.name, s.replicas, s.shardingRole])).toEqual(sets);
  });

  it('refuses a file without one cluster label', () => {
    expect(() => exampleShape('kind: ConfigMap\n')).toThrow(/one cluster name/);
    const two = ['a', 'b'].map((c) => `kind: StatefulSet\nmetadata:\n  name: ${c}\n  labels: {shoal.dev/cluster: ${c}}\n`).join('---\n');
    expect(() => exampleShape(two)).toThrow(/clusters a, b/);
  });
});
