// Prometheus metrics of the webhook: requests and their latency by endpoint and outcome.
import { Counter, Histogram, Registry, collectDefaultMetrics } from 'prom-client';

export interface WebhookMetrics {
  registry: Registry;
  observe(endpoint: string, outcome: string, seconds: number): void;
}

/** A registry of its own, so several servers (tests, a demo) can live in one process. */
export function createWebhookMetrics(): WebhookMetrics {
  const registry = new Registry();
  collectDefaultMetrics({ register: registry, prefix: 'shoal_webhook_' });
  const labelNames = ['endpoint', 'outcome'] as const;
  const requests = new Counter({
    name: 'shoal_webhook_requests_total',
    help: 'Admission requests answered, by endpoint and outcome (patched, allowed, refused, bad-request, error).',
    labelNames,
    registers: [registry],
  });
  const latency = new Histogram({
    name: 'shoal_webhook_request_duration_seconds',
    help: 'Time from request to response, by endpoint and outcome.',
    labelNames,
    // Admission sits in the path of every pod creation: resolve the sub-millisecond range.
    buckets: [0.0005, 0.001, 0.002, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5],
    registers: [registry],
  });
  return {
    registry,
    observe(endpoint, outcome, seconds) {
      requests.inc({ endpoint, outcome });
      latency.observe({ endpoint, outcome }, seconds);
    },
  };
}
