import { createServer } from 'node:net';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';
import type { ControlPlanePorts } from './types.js';

// Ports picked free on loopback, so several control planes run side by side; a pick can be lost
// to someone else before our process binds it, so a launch that hits a taken port picks again.

/** Free loopback ports, all held open at once so they are distinct. */
async function freePorts(count: number): Promise<number[]> {
  const servers = await Promise.all(
    Array.from({ length: count }, () => {
      return new Promise<ReturnType<typeof createServer>>((resolveServer, reject) => {
        const server = createServer();
        server.once('error', reject);
        server.listen(0, '127.0.0.1', () => resolveServer(server));
      });
    }),
  );
  const ports = servers.map((s) => {
    const addr = s.address();
    if (addr === null || typeof addr === 'string') throw new Error('unexpected server address');
    return addr.port;
  });
  await Promise.all(servers.map((s) => new Promise<void>((r) => s.close(() => r()))));
  return ports;
}

/** Runs `launch` on the wanted ports, the rest picked free; up to 3 attempts while a picked port turns out taken. */
export async function withFreePorts<T>(
  wanted: Partial<ControlPlanePorts>,
  launch: (ports: ControlPlanePorts) => Promise<T>,
  log: Logger,
  signal?: AbortSignal,
): Promise<T> {
  for (let attempt = 1; ; attempt++) {
    const picked = await freePorts(5);
    const ports: ControlPlanePorts = {
      etcdClient: wanted.etcdClient ?? picked[0]!,
      etcdPeer: wanted.etcdPeer ?? picked[1]!,
      apiServer: wanted.apiServer ?? picked[2]!,
      controllerManager: wanted.controllerManager ?? picked[3]!,
      scheduler: wanted.scheduler ?? picked[4]!,
    };
    try {
      return await launch(ports);
    } catch (err) {
      // A port picked free can be taken by someone else before our process binds it: pick again.
      const message = errorMessage(err);
      const fixedPortBusy = Object.values(wanted).some((p) => message.includes(`127.0.0.1:${p}: bind`));
      if (attempt >= 3 || signal?.aborted || fixedPortBusy || !message.includes('address already in use')) throw err;
      log.warn({ attempt, err: message.split('\n')[0] }, 'a picked port was taken meanwhile; retrying with new ports');
    }
  }
}
