import { describe, expect, it } from 'vitest';
import { parseConfig } from '../../agent/config.js';
import { ShoalError } from '../../common/errors.js';

const BASE = { POD_NAME: 'storage-2', POD_NAMESPACE: 'default', POD_IP: '10.1.0.5', SHOAL_CLUSTER: 'demo' };

describe('agent config', () => {
  it('applies the documented defaults', () => {
    expect(parseConfig(BASE)).toEqual({
      pod: 'storage-2',
      namespace: 'default',
      podIp: '10.1.0.5',
      cluster: 'demo',
      replicaset: 'storage',
      port: 8080,
      listenPort: 3301,
      meshPort: 8081,
      bindHost: '0.0.0.0',
      runDir: '/var/run/shoal',
      consoleSocket: '/var/run/shoal/console.sock',
      tarantoolLog: undefined,
      replicationUser: 'shoal_replicator',
      replicationPassword: undefined,
      timings: { leaseSeconds: 15, failoverTimeoutMs: 5_000, prestopTimeoutMs: 30_000, consoleTimeoutMs: 10_000, statusTimeoutMs: 2_000 },
    });
  });

  it('takes every override', () => {
    const c = parseConfig({
      ...BASE,
      SHOAL_REPLICASET: 'router',
      SHOAL_PORT: '9090',
      SHOAL_LISTEN_PORT: '3302',
      SHOAL_BIND_HOST: '127.0.1.5',
      SHOAL_RUN_DIR: '/tmp/run',
      SHOAL_TARANTOOL_LOG: '/tmp/run/tarantool.log',
      SHOAL_REPLICATION_PASSWORD: 'abc123',
      SHOAL_FAILOVER_TIMEOUT_MS: '7000',
      POD_UID: 'b1c2',
    });
    expect(c).toMatchObject({ podUid: 'b1c2', replicaset: 'router', port: 9090, listenPort: 3302, bindHost: '127.0.1.5', runDir: '/tmp/run', consoleSocket: '/tmp/run/console.sock', tarantoolLog: '/tmp/run/tarantool.log', replicationPassword: 'abc123' });
    expect(c.timings.failoverTimeoutMs).toBe(7000);
    expect(parseConfig({ ...BASE, SHOAL_CONSOLE_SOCKET: '/s.sock' }).consoleSocket).toBe('/s.sock');
  });

  it('reports every problem at once, with the fix', () => {
    let err: unknown;
    try {
      parseConfig({ POD_NAME: 'lonely', SHOAL_CLUSTER: 'Not_DNS', SHOAL_PORT: '70000', SHOAL_LISTEN_PORT: 'x', SHOAL_RUN_DIR: 'relative' });
    } catch (e) {
      err = e;
    }
    expect(err).toBeInstanceOf(ShoalError);
    const msg = (err as Error).message;
    for (const part of ['POD_NAMESPACE is not set', 'POD_IP is not set', 'SHOAL_CLUSTER="Not_DNS"', 'SHOAL_REPLICASET is not set and POD_NAME="lonely"', 'SHOAL_PORT="70000"', 'SHOAL_LISTEN_PORT="x"', 'SHOAL_RUN_DIR="relative"', 'fix:']) {
      expect(msg).toContain(part);
    }
  });

  it('refuses the same port for HTTP and iproto', () => {
    expect(() => parseConfig({ ...BASE, SHOAL_PORT: '3301' })).toThrow(/both 3301/);
  });
});
