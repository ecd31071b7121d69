// shoal-agent entry point: configuration from the environment, then the agent (runtime.ts) with
// coordination (control/start.ts) until SIGTERM/SIGINT.
import { createLogger } from '../shared/log.js';
import { errorMessage, ShoalError } from '../shared/errors.js';
import { VERSION } from '../shared/version.js';
import { parseConfig } from './config.js';
import { startAgent, type Agent } from './runtime.js';

// Bound of a clean stop; after it the process exits anyway (the kubelet would SIGKILL it).
const STOP_BOUND_MS = 10_000;

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

main().catch((err: unknown) => {
  process.stderr.write(`shoal-agent: ${err instanceof ShoalError ? err.message : (err instanceof Error ? err.stack : String(err))}\n`);
  process.exit(1);
});
