import { defineConfig } from 'vitest/config';

// Four projects: pure unit tests (fast, parallel), integration tests against real Tarantool
// processes, and end-to-end tests on local Kubernetes control planes: `e2e` shares one cluster
// (started in globalSetup; files one at a time, each in its own namespace), `e2e-own` holds the
// files that start a cluster of their own (one at a time, beside the `e2e` files).
const OWN_CLUSTER_FILES = ['test/e2e/api-outage.test.ts', 'test/e2e/chaos.test.ts', 'test/e2e/demo.test.ts', 'test/e2e/kubelet-outage.test.ts'];

export default defineConfig({
  test: {
    reporters: ['default', './test/support/summary-reporter.ts'],
    projects: [
      { test: { name: 'unit', include: ['test/unit/**/*.test.ts'], testTimeout: 20_000 } },
      {
        test: {
          name: 'integration',
          include: ['test/integration/**/*.test.ts'],
          testTimeout: 120_000,
          hookTimeout: 120_000,
          pool: 'forks',
        },
      },
      {
        test: {
          name: 'e2e',
          include: ['test/e2e/**/*.test.ts'],
          exclude: OWN_CLUSTER_FILES,
          globalSetup: ['test/e2e/global-setup.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
          pool: 'forks',
        },
      },
      {
        // Files that start a local cluster of their own (they stop its API server, put a fault proxy
        // in front of it, or run the demo): one at a time, beside the shared-cluster files.
        test: {
          name: 'e2e-own',
          include: OWN_CLUSTER_FILES,
          globalSetup: ['test/e2e/build-setup.ts'],
          fileParallelism: false,
          testTimeout: 600_000,
          hookTimeout: 600_000,
          pool: 'forks',
        },
      },
    ],
  },
});
