// Entry point of `shoal-webhook`: parse flags, start, stop cleanly on SIGTERM/SIGINT.
import { createLogger } from '../common/log.js';
import { errorMessage } from '../common/errors.js';
import { parseWebhookArgs } from './cli.js';
import { startWebhook } from './start.js';

const log = createLogger({ component: 'webhook' });
const config = parseWebhookArgs(process.argv);

try {
  const webhook = await startWebhook(config, { logger: log });
  let stopping = false;
  const stop = (signal: string) => {
    if (stopping) return;
    stopping = true;
    log.info({ signal }, 'shutting down');
    // Requests in flight finish (bounded); the Deployment's preStop sleep covers endpoint propagation.
    void webhook.close().then(() => process.exit(0));
  };
  process.on('SIGTERM', () => stop('SIGTERM'));
  process.on('SIGINT', () => stop('SIGINT'));
} catch (err) {
  log.fatal({ err: errorMessage(err) }, 'shoal-webhook cannot start');
  process.exit(1);
}
