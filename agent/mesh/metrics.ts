// Prometheus metrics of the mesh: what was refused or dropped and why, commands by outcome, links.
import { Counter, Gauge, register as defaultRegistry, type Registry } from 'prom-client';

export type DropReason =
  | 'too_large'
  | 'binary'
  | 'not_json'
  | 'not_object'
  | 'bad_version'
  | 'unknown_type'
  | 'bad_field'
  /** A message whose pod/from does not match the authenticated peer of its connection. */
  | 'identity_mismatch'
  /** A command id already handled (or still running). */
  | 'replayed'
  /** An ack nobody waits for (late, or never asked). */
  | 'unexpected_ack'
  /** A command or topology push whose term is refused. */
  | 'stale_term';

export interface MeshMetrics {
  dropped(reason: DropReason): void;
  rejected(reason: string): void;
  command(result: 'ok' | 'failed' | 'refused'): void;
  links(direction: 'inbound' | 'outbound', open: number): void;
}

export function createMeshMetrics(registry: Registry = defaultRegistry): MeshMetrics {
  // Several meshes may share one registry in tests: reuse a metric that already exists.
  const counter = (name: string, help: string, labelNames: string[]): Counter =>
    (registry.getSingleMetric(name) as Counter | undefined) ?? new Counter({ name, help, labelNames, registers: [registry] });
  const dropped = counter('shoal_mesh_messages_dropped_total', 'Mesh messages dropped without acting on them, by reason.', ['reason']);
  const rejected = counter('shoal_mesh_connections_rejected_total', 'Mesh connections refused before the websocket handshake, by reason.', ['reason']);
  const commands = counter('shoal_mesh_commands_received_total', 'Coordinator commands received, by result (ok, failed, refused).', ['result']);
  const links =
    (registry.getSingleMetric('shoal_mesh_links') as Gauge | undefined) ??
    new Gauge({ name: 'shoal_mesh_links', help: 'Open mesh websocket connections, by direction.', labelNames: ['direction'], registers: [registry] });
  return {
    dropped: (reason) => dropped.inc({ reason }),
    rejected: (reason) => rejected.inc({ reason }),
    command: (result) => commands.inc({ result }),
    links: (direction, open) => links.set({ direction }, open),
  };
}
