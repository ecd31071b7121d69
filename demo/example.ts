import { parseAllDocuments } from 'yaml';
import { CLUSTER_LABEL } from '../common/names.js';

// What an example (examples/<name>.yaml) brings up, read from its StatefulSets (pure): the demo waits
// for that many pods of that cluster, whatever the example (one replica set, or a sharded cluster).

export interface ExampleShape {
  /** The shoal.dev/cluster label its StatefulSets share. */
  cluster: string;
  statefulSets: Array<{ name: string; replicas: number; shardingRole: string | null }>;
  /** Pods it runs once every StatefulSet is at its replicas. */
  pods: number;
}

type Doc = { kind?: unknown; metadata?: { name?: unknown; labels?: Record<string, unknown>; annotations?: Record<string, unknown> }; spec?: { replicas?: unknown } };

export function exampleShape(text: string): ExampleShape {
  const sets = parseAllDocuments(text)
    .map((d) => d.toJS() as Doc | null)
    .filter((d): d is Doc => d !== null && d.kind === 'StatefulSet');
  const clusters = new Set(sets.map((s) => s.metadata?.labels?.[CLUSTER_LABEL]).filter((c): c is string => typeof c === 'string'));
  if (sets.length === 0 || clusters.size !== 1) {
    throw new Error(`an example must hold StatefulSets labelled ${CLUSTER_LABEL} with one cluster name (found ${sets.length} StatefulSets, clusters ${[...clusters].join(', ') || 'none'})`);
  }
  const statefulSets = sets.map((s) => {
    const role = s.metadata?.annotations?.['shoal.dev/sharding-role'];
    return {
      name: String(s.metadata?.name ?? ''),
      replicas: typeof s.spec?.replicas === 'number' ? s.spec.replicas : 1,
      shardingRole: typeof role === 'string' ? role : null,
    };
  });
  return { cluster: [...clusters][0] as string, statefulSets, pods: statefulSets.reduce((n, s) => n + s.replicas, 0) };
}
