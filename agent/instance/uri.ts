// Replication URIs `user:password@host:port` (TARANTOOL.md). Credentials come from the agent's
// configuration, never from code; URIs are redacted before they reach a log line or a status page.
import { ShoalError } from '../../common/errors.js';

export interface ReplicationCredentials {
  user: string;
  password: string;
}

// Tarantool's URI parser has no escaping: '@', ':' and '/' in a user or password would split it.
const SAFE = /^[A-Za-z0-9._~!$&'()*+,;=-]+$/;

export function checkCredentials(c: ReplicationCredentials): void {
  if (!SAFE.test(c.user)) {
    throw new ShoalError(`replication user ${JSON.stringify(c.user)} cannot go into a Tarantool URI`, 'use letters, digits, "-", "_" and "."');
  }
  if (!SAFE.test(c.password)) {
    throw new ShoalError('the replication password cannot go into a Tarantool URI (it contains "@", ":", "/", "?", "#" or spaces)', 'use a password of letters and digits (e.g. hex)');
  }
}

/** `user:password@address` for box.cfg.replication; `address` is host:port. */
export function replicationUri(c: ReplicationCredentials, address: string): string {
  return `${c.user}:${c.password}@${address}`;
}

/** `user:***@host:port`: safe to log. */
export function redactUri(uri: string): string {
  return uri.replace(/^([^:@/]+):[^@]*@/, '$1:***@');
}
