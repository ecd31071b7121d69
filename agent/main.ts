// shoal-agent entry point: configuration from the environment, then the agent (runtime.ts) with
// coordination (start.ts) until SIGTERM/SIGINT. `shoal-agent install-lua` only writes
// shoal.lua into the run directory and exits (the pod's init container, before Tarantool starts).
import { createLogger } from '../common/log.js';
import { errorMessage, ShoalError } from '../common/errors.js';
import { VERSION } from '../common/version.js';
import { parseConfig } from './config.js';
import { installShoalLua } from './lua/module.js';
import { RUN_DIR } from '../common/names.js';
import { startAgent, type Agent } from './runtime.js';

// Bound of a clean stop; after it the process exits anyway (the kubelet would SIGKILL it).
const STOP_BOUND_MS = 10_000;

async function installLua(): Promise<void> {
  const path = await installShoalLua(process.env.SHOAL_RUN_DIR?.trim() || RUN_DIR);
  process.stdout.write(`shoal-agent: wrote ${path}\n`);
}

async function main(): Promise<void> {
  let config;
  try {
    config = parseConfig(process.env);
  } catch (err) {
    process.stderr.write(`shoal-agent: ${errorMessage(err)}\n`);
    process.exit(2);
  }
  // Every line carries the newest coordinator term this agent knows (once coordination runs).
  const started: { agent?: Agent } = {};
  const log = createLogger({ component: 'agent', cluster: config.cluster, pod: config.pod, namespace: config.namespace }, () => started.agent?.control?.term());
  log.info({ version: VERSION, replicaset: config.replicaset, port: config.port, runDir: config.runDir }, 'shoal-agent starting');
  const running = await startAgent(config, log, { control: {} });
  started.agent = running;

  const shutdown = (signal: string): void => {
    log.info({ signal }, 'stopping');
    // A running /prestop hand-over is waited for first (bounded by SHOAL_PRESTOP_TIMEOUT_MS).
    setTimeout(() => process.exit(1), STOP_BOUND_MS + config.timings.prestopTimeoutMs).unref();
    void running.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

(process.argv[2] === 'install-lua' ? installLua() : main()).catch((err: unknown) => {
  process.stderr.write(`shoal-agent: ${err instanceof ShoalError ? err.message : (err instanceof Error ? err.stack : String(err))}\n`);
  process.exit(1);
});
