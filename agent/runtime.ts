// Composes the agent's pieces: shoal.lua in the run dir, metrics, the console client, the local
// instance and the HTTP server. main.ts runs it; the coordinator plugs in through the returned
// handles (instance, http.app / http.server, setClusterStatusProvider) without touching this file much.
import type { Logger } from '../common/log.js';
import { errorMessage } from '../common/errors.js';
import type { AgentConfig } from './config.js';
import { ConsoleClient } from './console/client.js';
import { TarantoolGoneError } from './console/errors.js';
import { createAgentServer, type AgentServer } from './http/server.js';
import { AgentMetrics } from './http/metrics.js';
import { identityOf } from './instance/identity.js';
import { LocalInstance } from './instance/local.js';
import { installShoalLua } from './lua/module.js';
import { startControl, type Control, type ControlOptions } from './start.js';
import { settledWithin } from './util/bounded.js';

export interface Agent {
  config: AgentConfig;
  console: ConsoleClient;
  instance: LocalInstance;
  metrics: AgentMetrics;
  http: AgentServer;
  /** Resolves once the Tarantool console has answered for the first time (never rejects). */
  consoleReady: Promise<boolean>;
  /** Coordination (mesh, election, coordinator, self-fencing) when started with `control`. */
  control?: Control;
  /** Stops everything this agent started; idempotent. */
  stop(): Promise<void>;
}

export interface StartOptions {
  processMetrics?: boolean;
  /** Join the cluster's coordination (needs Kubernetes: in-cluster config or KUBECONFIG). */
  control?: ControlOptions;
}

export async function startAgent(config: AgentConfig, log: Logger, opts: StartOptions = {}): Promise<Agent> {
  const luaPath = await installShoalLua(config.runDir);
  log.info({ path: luaPath }, 'shoal.lua written');

  const metrics = new AgentMetrics({ processMetrics: opts.processMetrics });
  const consoleOf = (module: string): ConsoleClient =>
    new ConsoleClient({
      socketPath: config.consoleSocket,
      logPath: config.tarantoolLog,
      timeoutMs: config.timings.consoleTimeoutMs,
      logger: log.child({ module }),
      observer: metrics.consoleObserver,
    });
  const console = consoleOf('console');
  // Fencing and the watchdog lease get a connection of their own: a burst of /status or a long
  // join on the main one never delays them.
  const urgentConsole = consoleOf('console-urgent');
  const instance = new LocalInstance({
    console,
    urgentConsole,
    identity: identityOf(config),
    credentials: config.replicationPassword ? { user: config.replicationUser, password: config.replicationPassword } : undefined,
    logger: log.child({ module: 'instance' }),
    callTimeoutMs: config.timings.consoleTimeoutMs,
  });
  const http = createAgentServer({
    identity: instance.identity,
    instance,
    metrics,
    logger: log.child({ module: 'http' }),
    statusTimeoutMs: config.timings.statusTimeoutMs,
  });
  await http.listen(config.bindHost, config.port);

  const stopping = new AbortController();
  const consoleReady = waitForTarantool(instance, stopping.signal, log);
  let control: Control | undefined;
  try {
    control = opts.control ? startControl({ config, instance, metrics, http }, log, opts.control) : undefined;
  } catch (err) {
    await http.close();
    throw err;
  }
  let stopped: Promise<void> | undefined;

  return {
    config,
    console,
    instance,
    metrics,
    http,
    consoleReady,
    ...(control ? { control } : {}),
    stop(): Promise<void> {
      stopped ??= (async () => {
        stopping.abort();
        await control?.stop(); // bounded step by step (agent/start.ts)
        if (!(await settledWithin(Promise.allSettled([http.close(), console.close(), urgentConsole.close()]), 10_000))) {
          log.error('stopping: closing the HTTP server and the console did not finish in 10 s; going on without it');
        }
        log.info('agent stopped');
      })();
      return stopped;
    },
  };
}

/** Tarantool may start before or after the agent (SPEC §2 container mode): wait for it, logging. */
async function waitForTarantool(instance: LocalInstance, signal: AbortSignal, log: Logger): Promise<boolean> {
  while (!signal.aborted) {
    try {
      await instance.waitForConsole({ timeoutMs: 60_000, signal });
      const s = await instance.state({ signal });
      log.info({ phase: s.phase, role: s.role, pid: s.pid }, 'Tarantool console connected');
      return true;
    } catch (err) {
      if (signal.aborted) break;
      log.info({ reason: err instanceof TarantoolGoneError ? err.reason : errorMessage(err) }, 'still waiting for the Tarantool console');
    }
  }
  return false;
}
