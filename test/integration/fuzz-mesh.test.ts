// Input hardening of /mesh: seeded random and mutated inputs against a running Mesh — unauthenticated
// upgrades, garbage frames, mutated commands, forged (stale) terms, oversized frames, replays.
// Asserts no crash, no handler run for an invalid input, every drop counted; reports inputs tried.
import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import fc from 'fast-check';
import { counterValue, credentialsFor, startNode, until, upgradeStatus, type Node } from '../support/mesh.js';

const SEED = 8008;
const nodes: Node[] = [];
const sockets: WebSocket[] = [];
afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

/** A peer with a valid certificate for `pod`, which `port`'s node must know. */
async function peer(port: number, pod: string): Promise<WebSocket> {
  const c = await credentialsFor(pod);
  const ws = new WebSocket(`wss://127.0.0.1:${port}/mesh`, {
    key: c.key,
    cert: c.cert,
    ca: c.ca,
    checkServerIdentity: (() => undefined) as unknown as () => boolean,
    headers: { 'x-shoal-pod': pod },
  });
  sockets.push(ws);
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return ws;
}

const dropped = async (n: Node): Promise<number> => {
  const m = n.registry.getSingleMetric('shoal_mesh_messages_dropped_total');
  return m ? (await m.get()).values.reduce((s, v) => s + v.value, 0) : 0;
};
const rejected = async (n: Node): Promise<number> => {
  const m = n.registry.getSingleMetric('shoal_mesh_connections_rejected_total');
  return m ? (await m.get()).values.reduce((s, v) => s + v.value, 0) : 0;
};

const valid = { type: 'command', v: 1, id: 'c', term: 5, from: 'b', kind: 'noop', payload: {} };

/** A valid command with one field replaced by something of the wrong kind, or removed. */
const mutatedCommand = fc
  .tuple(fc.constantFrom('type', 'v', 'id', 'term', 'from', 'kind', 'payload'), fc.oneof(fc.constant(undefined), fc.anything()))
  .filter(([field, value]) => typeof value !== typeof (valid as Record<string, unknown>)[field] || field === 'from' || field === 'v' || field === 'type');

describe('fuzz: /mesh', () => {
  it('refuses every upgrade whose claim or certificate does not name a known pod of this cluster', async () => {
    const a = await startNode('a');
    nodes.push(a);
    a.mesh.setPeers([{ pod: 'b', address: '127.0.0.1:1' }]);
    const b = await credentialsFor('b');
    const name = fc.stringMatching(/^[a-z0-9]([-a-z0-9]{0,10}[a-z0-9])?$/);
    const wrong = fc.oneof(
      // b's certificate claiming to be someone else (any printable header value but "b")
      fc.string().filter((p) => p !== 'b' && /^[\x21-\x7e]+$/.test(p)).map((claim) => ({ claim, id: {} })),
      // a certificate of another namespace, cluster or an unknown pod
      fc.tuple(fc.constantFrom('namespace', 'cluster', 'pod'), name).filter(([, v]) => v !== 'b' && v !== 'demo' && v !== 'default').map(([k, v]) => ({ claim: undefined, id: { [k]: v } })),
    );
    const inputs = fc.sample(wrong, { seed: SEED, numRuns: 120 });
    const statuses: number[] = [];
    for (const w of inputs) {
      const creds = Object.keys(w.id).length === 0 ? b : await credentialsFor('b', { id: w.id });
      statuses.push(await upgradeStatus(a.port, w.claim === undefined ? {} : { 'x-shoal-pod': w.claim }, creds).catch(() => -1));
    }
    expect(statuses.filter((s) => s === 101)).toEqual([]);
    expect(await rejected(a)).toBeGreaterThanOrEqual(inputs.filter((_, i) => statuses[i] !== -1).length);
    console.log(`fuzz /mesh: ${inputs.length} mismatched or unknown upgrades refused`);
  });

  it('drops random, mutated, forged, oversized and replayed messages without running a handler', async () => {
    const a = await startNode('a', { maxMessageBytes: 4096 });
    nodes.push(a);
    let handled = 0;
    a.mesh.onCommand(async () => {
      handled++;
      return { ok: true };
    });
    a.mesh.observeTerm(5, 'b'); // b is the coordinator of term 5
    a.mesh.setPeers([{ pod: 'b', address: '127.0.0.1:1' }]);
    let ws = await peer(a.port, 'b');
    const send = async (data: string | Buffer, binary = false): Promise<void> => {
      if (ws.readyState !== WebSocket.OPEN) ws = await peer(a.port, 'b');
      ws.send(data, { binary });
    };
    const frames: Array<[string | Buffer, boolean]> = [
      ...fc.sample(fc.string({ maxLength: 200 }), { seed: SEED, numRuns: 100 }).map((s): [string, boolean] => [s, false]),
      ...fc.sample(fc.uint8Array({ maxLength: 200 }), { seed: SEED, numRuns: 50 }).map((b): [Buffer, boolean] => [Buffer.from(b), true]),
      ...fc.sample(fc.jsonValue(), { seed: SEED, numRuns: 100 }).map((v): [string, boolean] => [JSON.stringify(v) ?? 'null', false]),
      ...fc.sample(mutatedCommand, { seed: SEED, numRuns: 150 }).map(([field, value], i): [string, boolean] => {
        const m: Record<string, unknown> = { ...valid, id: `mut-${i}` };
        if (value === undefined) delete m[field];
        else m[field] = value;
        if (field === 'from' && value === 'b') m['from'] = 'c';
        if (field === 'v' && value === 1) m['v'] = 2;
        if (field === 'type' && value === 'command') m['type'] = 'commandx';
        return [JSON.stringify(m) ?? '', false];
      }),
      // Forged terms: older than the known one.
      ...fc.sample(fc.integer({ min: -5, max: 4 }), { seed: SEED, numRuns: 30 }).map((term, i): [string, boolean] => [JSON.stringify({ ...valid, id: `old-${i}`, term }), false]),
      // Over maxMessageBytes but under ws's hard limit.
      ...Array.from({ length: 10 }, (_, i): [string, boolean] => [JSON.stringify({ ...valid, id: `big-${i}`, payload: { pad: 'x'.repeat(5000 + i) } }), false]),
    ];
    const before = await dropped(a);
    for (const [data, binary] of frames) await send(data, binary);
    // Beyond ws's hard limit: the connection is closed (1009), the process stays up.
    await send('x'.repeat(4 * 4096 + 1));
    // Counted drops reach (nearly) every frame: the ones sent on a connection closed by the last are lost with it.
    for (const deadline = Date.now() + 10_000; (await dropped(a)) - before < frames.length - 40 && Date.now() < deadline; ) await new Promise((r) => setTimeout(r, 50));
    expect((await dropped(a)) - before).toBeGreaterThanOrEqual(frames.length - 40);
    expect(handled).toBe(0);

    // Still serving: a valid command runs once, its replay not again.
    ws = await peer(a.port, 'b');
    const acks: unknown[] = [];
    ws.on('message', (d) => acks.push(JSON.parse(String(d))));
    ws.send(JSON.stringify({ ...valid, id: 'real-1' }));
    await until(() => acks.some((m) => (m as { type?: string }).type === 'ack'), 5_000, 'ack of the valid command');
    ws.send(JSON.stringify({ ...valid, id: 'real-1' }));
    await until(() => acks.filter((m) => (m as { type?: string }).type === 'ack').length >= 2, 5_000, 'acks of the valid command and its replay');
    expect(handled).toBe(1);
    expect(await counterValue(a.registry, 'shoal_mesh_messages_dropped_total', { reason: 'replayed' })).toBe(1);
    expect(a.logs.some((l) => l.msg === 'dropped an invalid mesh message')).toBe(true);
    const total = (await dropped(a)) - before;
    console.log(`fuzz /mesh: ${frames.length + 3} messages sent, ${total} dropped and counted, ${a.logs.filter((l) => l.msg === 'refused a coordinator command').length} commands refused (stale term), 1 handled`);
  });
});
