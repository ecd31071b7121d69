// The agent's HTTP server (SPEC §4): /status, /healthz, /readyz, /metrics on one express app.
// The underlying http.Server is exposed so the mesh can attach its `upgrade` handler for /mesh,
// and the app so the coordinator can add /switchover and /prestop, on the same port.
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import express, { type Express, type Request, type Response } from 'express';
import { errorMessage } from '../../common/errors.js';
import type { Logger } from '../../common/log.js';
import type { InstanceIdentity } from '../instance/identity.js';
import { readinessOf } from '../instance/readiness.js';
import type { InstanceState } from '../instance/state.js';
import type { AgentMetrics } from './metrics.js';
import { NO_CLUSTER_STATUS, statusDocument, type ClusterStatus, type ClusterStatusProvider } from './status.js';

/** What the server needs from the local instance (LocalInstance has it). */
export interface InstanceSource {
  state(o: { timeoutMs?: number; signal?: AbortSignal }): Promise<InstanceState>;
}

export interface AgentServerOptions {
  identity: InstanceIdentity;
  instance: InstanceSource;
  metrics: AgentMetrics;
  logger: Logger;
  /** Bound of the console call behind each request. Default 2 s. */
  statusTimeoutMs?: number;
  cluster?: ClusterStatusProvider;
}

export interface AgentServer {
  readonly app: Express;
  /** Attach the mesh's `upgrade` handler here. */
  readonly server: Server;
  setClusterStatusProvider(provider: ClusterStatusProvider): void;
  listen(host: string, port: number): Promise<AddressInfo>;
  close(): Promise<void>;
}

export function createAgentServer(opts: AgentServerOptions): AgentServer {
  const log = opts.logger;
  const timeoutMs = opts.statusTimeoutMs ?? 2_000;
  let provider: ClusterStatusProvider | undefined = opts.cluster;

  const readState = async (): Promise<InstanceState | { error: string }> => {
    try {
      return await opts.instance.state({ timeoutMs });
    } catch (err) {
      return { error: errorMessage(err) };
    }
  };

  const clusterStatus = async (): Promise<ClusterStatus> => {
    if (!provider) return NO_CLUSTER_STATUS;
    try {
      return await provider.clusterStatus();
    } catch (err) {
      log.warn({ err: errorMessage(err) }, 'cluster status provider failed');
      return NO_CLUSTER_STATUS;
    }
  };

  const app = express();
  app.disable('x-powered-by');

  app.get('/healthz', (_req: Request, res: Response) => {
    // The agent process is alive and its event loop turns; Tarantool's health is /readyz's business.
    res.json({ ok: true, pid: process.pid });
  });

  app.get('/readyz', async (_req: Request, res: Response) => {
    const state = await readState();
    const readiness = 'error' in state ? { ready: false, reason: `Tarantool console: ${state.error}` } : readinessOf(state);
    res.status(readiness.ready ? 200 : 503).json(readiness);
  });

  app.get('/status', async (_req: Request, res: Response) => {
    const [state, cluster] = await Promise.all([readState(), clusterStatus()]);
    res.json(statusDocument(opts.identity, state, cluster));
  });

  app.get('/metrics', async (_req: Request, res: Response) => {
    const state = await readState();
    opts.metrics.observe('error' in state ? undefined : state);
    res.type(opts.metrics.registry.contentType).send(await opts.metrics.registry.metrics());
  });

  const server = createServer(app);

  return {
    app,
    server,
    setClusterStatusProvider(p: ClusterStatusProvider): void {
      provider = p;
    },
    listen(host: string, port: number): Promise<AddressInfo> {
      return new Promise((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          const addr = server.address() as AddressInfo;
          log.info({ host: addr.address, port: addr.port }, 'agent HTTP server listening');
          resolve(addr);
        });
      });
    },
    close(): Promise<void> {
      return new Promise((resolve) => {
        if (!server.listening) return resolve();
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
