// shoal-agent entry point: configuration from the environment, then the agent (runtime.ts) until
// SIGTERM/SIGINT. Until the coordinator exists the agent serves its endpoints and watches Tarantool.
import { createLogger } from '../shared/log.js';
import { errorMessage, ShoalError } from '../shared/errors.js';
import { VERSION } from '../shared/version.js';
import { parseConfig } from './config.js';
import { startAgent } from './runtime.js';

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
  const log = createLogger({ component: 'agent', cluster: config.cluster, pod: config.pod, namespace: config.namespace });
  log.info({ version: VERSION, replicaset: config.replicaset, port: config.port, runDir: config.runDir }, 'shoal-agent starting');
  const agent = await startAgent(config, log);

  const shutdown = (signal: string): void => {
    log.info({ signal }, 'stopping');
    setTimeout(() => process.exit(1), STOP_BOUND_MS).unref();
    void agent.stop().then(() => process.exit(0));
  };
  process.once('SIGTERM', () => shutdown('SIGTERM'));
  process.once('SIGINT', () => shutdown('SIGINT'));
}

main().catch((err: unknown) => {
  process.stderr.write(`shoal-agent: ${err instanceof ShoalError ? err.message : (err instanceof Error ? err.stack : String(err))}\n`);
  process.exit(1);
});
