import fc from 'fast-check';
import { describe, expect, it } from 'vitest';
import { MAX_MESSAGE_BYTES, parseMessage, type Heartbeat } from '../../agent/wire/mesh-protocol.js';

const REASONS = ['too_large', 'binary', 'not_json', 'not_object', 'bad_version', 'unknown_type', 'bad_field'];

const heartbeat: Heartbeat = {
  type: 'heartbeat',
  v: 1,
  pod: 'storage-0',
  term: 3,
  sentAt: 1_700_000_000_000,
  agentVersion: '0.1.0',
  sees: ['storage-1', 'storage-2'],
  instance: {
    role: 'master',
    ro: false,
    vclock: { '0': 5, '1': 42 },
    lag: 0,
    healthy: true,
    configured: true,
    upstreams: [{ peer: '127.0.1.2:3301', status: 'follow', lag: 0.001, idle: 0.2, message: null }],
  },
};

const valid = {
  hello: { type: 'hello', v: 1, pod: 'storage-0', cluster: 'demo', term: 0, agentVersion: '0.1.0' },
  heartbeat,
  command: { type: 'command', v: 1, id: 'storage-0-3-1-abcd', term: 3, from: 'storage-0', kind: 'joinReplica', payload: { replication: ['a:1'] } },
  ack: { type: 'ack', v: 1, id: 'x-1', ok: false, error: 'nope', result: { a: [1, 2] } },
  topology: { type: 'topology', v: 1, term: 3, from: 'storage-0', topology: { replicasets: [] } },
};

const parse = (v: unknown) => parseMessage(JSON.stringify(v));

describe('mesh protocol validation', () => {
  it('accepts every well-formed message type and returns exactly its fields', () => {
    for (const [type, msg] of Object.entries(valid)) {
      const r = parse(msg);
      expect(r, type).toEqual({ ok: true, msg });
    }
  });

  it('ignores (drops) unknown fields instead of passing them on', () => {
    const r = parse({ ...heartbeat, extra: 'x', instance: { ...heartbeat.instance, evil: true } });
    expect(r.ok).toBe(true);
    if (r.ok) {
      expect(r.msg).not.toHaveProperty('extra');
      expect((r.msg as Heartbeat).instance).not.toHaveProperty('evil');
    }
  });

  it.each([
    ['binary frame', () => parseMessage(Buffer.from('{}'), true), 'binary'],
    ['oversized', () => parseMessage('x'.repeat(MAX_MESSAGE_BYTES + 1)), 'too_large'],
    ['not JSON', () => parseMessage('{"type":'), 'not_json'],
    ['an array', () => parse([1, 2]), 'not_object'],
    ['a string', () => parse('hello'), 'not_object'],
    ['missing version', () => parse({ ...valid.hello, v: undefined }), 'bad_version'],
    ['future version', () => parse({ ...valid.hello, v: 2 }), 'bad_version'],
    ['unknown type', () => parse({ ...valid.hello, type: 'exec' }), 'unknown_type'],
    ['pod not DNS', () => parse({ ...valid.hello, pod: 'Storage_0' }), 'bad_field'],
    ['cluster not DNS-1123', () => parse({ ...valid.hello, cluster: 'a.b' }), 'bad_field'],
    ['negative term', () => parse({ ...valid.command, term: -1 }), 'bad_field'],
    ['fractional term', () => parse({ ...valid.command, term: 1.5 }), 'bad_field'],
    ['term as string', () => parse({ ...valid.command, term: '7' }), 'bad_field'],
    ['payload array', () => parse({ ...valid.command, payload: [] }), 'bad_field'],
    ['payload __proto__ key', () => parseMessage('{"type":"command","v":1,"id":"a","term":1,"from":"p","kind":"k","payload":{"__proto__":{"x":1}}}'), 'bad_field'],
    ['payload nested too deep', () => parse({ ...valid.command, payload: { a: JSON.parse('['.repeat(40) + ']'.repeat(40)) as unknown } }), 'bad_field'],
    ['bad command id', () => parse({ ...valid.command, id: 'has space' }), 'bad_field'],
    ['bad kind', () => parse({ ...valid.command, kind: 'Drop Table' }), 'bad_field'],
    ['vclock id out of range', () => parse({ ...heartbeat, instance: { ...heartbeat.instance, vclock: { '32': 1 } } }), 'bad_field'],
    ['vclock negative lsn', () => parse({ ...heartbeat, instance: { ...heartbeat.instance, vclock: { '1': -1 } } }), 'bad_field'],
    ['unknown role', () => parse({ ...heartbeat, instance: { ...heartbeat.instance, role: 'leader' } }), 'bad_field'],
    ['sees not pods', () => parse({ ...heartbeat, sees: [1] }), 'bad_field'],
    ['lag NaN-ish', () => parse({ ...heartbeat, instance: { ...heartbeat.instance, lag: 'slow' } }), 'bad_field'],
    ['ack without ok', () => parse({ ...valid.ack, ok: undefined }), 'bad_field'],
  ])('rejects %s with a reason', (_name, run, reason) => {
    const r = run();
    expect(r.ok).toBe(false);
    if (!r.ok) {
      expect(r.reason).toBe(reason);
      expect(r.detail.length).toBeGreaterThan(0);
    }
  });

  it('never throws on random JSON, and every rejection names a known reason', () => {
    fc.assert(
      fc.property(fc.jsonValue(), (v) => {
        const r = parseMessage(JSON.stringify(v) ?? 'null');
        if (!r.ok) expect(REASONS).toContain(r.reason);
      }),
      { numRuns: 2000 },
    );
  });

  it('never throws on random bytes', () => {
    fc.assert(
      fc.property(fc.uint8Array({ maxLength: 512 }), fc.boolean(), (bytes, binary) => {
        const r = parseMessage(Buffer.from(bytes), binary);
        expect(typeof r.ok).toBe('boolean');
      }),
      { numRuns: 1000 },
    );
  });

  it('never throws when any field of a valid message is replaced by random JSON', () => {
    const samples = Object.values(valid) as Array<Record<string, unknown>>;
    fc.assert(
      fc.property(fc.constantFrom(...samples), fc.nat(), fc.jsonValue(), (msg, i, value) => {
        const keys = Object.keys(msg);
        const key = keys[i % keys.length] as string;
        const r = parse({ ...msg, [key]: value });
        if (!r.ok) expect(REASONS).toContain(r.reason);
        else expect(r.msg.type).toBe(msg.type);
      }),
      { numRuns: 2000 },
    );
  });
});
