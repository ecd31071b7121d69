import { afterEach, describe, expect, it } from 'vitest';
import WebSocket from 'ws';
import type { CommandMessage } from '../../agent/wire/mesh-protocol.js';
import { sleep } from '../../common/time.js';
import { CLUSTER, connectAll, counterValue, credentialsFor, instanceState, newCa, startNode, until, upgradeStatus, type Node } from '../support/mesh.js';

const nodes: Node[] = [];
const sockets: WebSocket[] = [];

async function node(pod: string, ...rest: Parameters<typeof startNode> extends [string, ...infer R] ? R : never): Promise<Node> {
  const n = await startNode(pod, ...rest);
  nodes.push(n);
  return n;
}

afterEach(async () => {
  for (const ws of sockets.splice(0)) ws.terminate();
  await Promise.all(nodes.splice(0).map((n) => n.stop()));
});

/** A hand-driven peer with a valid certificate for `pod` (made known to `n` unless told not to); sends whatever the test wants. */
async function rawPeer(n: Node, pod: string, makeKnown = true): Promise<{ ws: WebSocket; received: unknown[] }> {
  if (makeKnown) n.mesh.setPeers([{ pod, address: '127.0.0.1:1' }]);
  const creds = await credentialsFor(pod);
  const ws = new WebSocket(`wss://127.0.0.1:${n.port}/mesh`, { key: creds.key, cert: creds.cert, ca: creds.ca, checkServerIdentity: (() => undefined) as unknown as () => boolean, headers: { 'x-shoal-pod': pod } });
  sockets.push(ws);
  const received: unknown[] = [];
  ws.on('message', (d) => received.push(JSON.parse(String(d))));
  await new Promise<void>((resolve, reject) => {
    ws.once('open', () => resolve());
    ws.once('error', reject);
  });
  return { ws, received };
}

const command = (over: Partial<CommandMessage>): CommandMessage => ({ type: 'command', v: 1, id: 'c-1', term: 1, from: 'a', kind: 'noop', payload: {}, ...over });

describe('mesh over real sockets', () => {
  it('three agents connect over mTLS, exchange heartbeats and see each other', async () => {
    const [a, b, c] = [await node('a'), await node('b'), await node('c')];
    connectAll([a, b, c]);
    for (const n of [a, b, c]) n.mesh.startHeartbeats(() => instanceState());
    await until(() => [a, b, c].every((n) => n.mesh.reachability().sees.length === 2), 5_000, 'full reachability');
    await until(() => a.mesh.reachability().mutual.length === 2, 5_000, 'mutual reachability');
    expect(a.mesh.reachability()).toEqual({ sees: ['b', 'c'], mutual: ['b', 'c'], peers: 2 });
    const peersOfA = a.mesh.peers();
    expect(peersOfA.map((p) => [p.pod, p.connected])).toEqual([
      ['b', true],
      ['c', true],
    ]);
    // Each heartbeat carries the sender's own view: what the coordinator needs for "unreachable from a majority".
    await until(() => (a.mesh.peers().find((p) => p.pod === 'b')?.heartbeat?.sees.length ?? 0) === 2, 3_000, "b's view");
    expect(a.mesh.peers().find((p) => p.pod === 'b')?.heartbeat?.sees).toEqual(['a', 'c']);
  });

  it('judges a peer by its certificate: claims, namespace, cluster and the pod list; logs each refusal once', async () => {
    const a = await node('a');
    a.mesh.setPeers([{ pod: 'b', address: '127.0.0.1:1' }]); // b is known (its dial goes nowhere)
    const b = await credentialsFor('b');
    const hdr = (pod: string) => ({ 'x-shoal-pod': pod });
    expect(await upgradeStatus(a.port, hdr('c'), b)).toBe(403); // b's certificate claiming c
    expect(await upgradeStatus(a.port, hdr('b'), await credentialsFor('b', { id: { namespace: 'other' } }))).toBe(403);
    expect(await upgradeStatus(a.port, hdr('b'), await credentialsFor('b', { id: { cluster: 'other' } }))).toBe(403);
    expect(await upgradeStatus(a.port, hdr('z'), await credentialsFor('z'))).toBe(503); // not in the pod list
    expect(await upgradeStatus(a.port, hdr('c'), b)).toBe(403); // again: counted, not logged again
    expect(await upgradeStatus(a.port, hdr('b'), b)).toBe(101);
    const refused = a.logs.filter((l) => l.msg === 'refused a mesh connection').map((l) => l.reason);
    expect(refused).toEqual(['claim_mismatch', 'wrong_namespace', 'wrong_cluster', 'unknown_pod']);
    expect(await counterValue(a.registry, 'shoal_mesh_connections_rejected_total', { reason: 'claim_mismatch' })).toBe(2);
  });

  it('refuses a certificate from another CA and a plain ws:// connection at the TLS handshake', async () => {
    const a = await node('a');
    a.mesh.setPeers([{ pod: 'b', address: '127.0.0.1:1' }]);
    const other = await newCa();
    await expect(upgradeStatus(a.port, { 'x-shoal-pod': 'b' }, await credentialsFor('b', { ca: other }))).rejects.toThrow();
    const plain = new WebSocket(`ws://127.0.0.1:${a.port}/mesh`, { headers: { 'x-shoal-pod': 'b' } });
    sockets.push(plain);
    const outcome = await new Promise<string>((resolve) => {
      plain.once('open', () => resolve('open'));
      plain.once('error', (err) => resolve(`error: ${err.message}`));
    });
    expect(outcome).toMatch(/^error/);
    await until(() => a.logs.filter((l) => l.msg === 'refused a mesh connection' && l.reason === 'tls').length >= 1, 2_000, 'TLS refusal logged');
    expect(a.mesh.peers().filter((p) => p.connected)).toEqual([]);
  });

  it('an agent with another CA\'s certificate cannot join, and the dialler refuses a peer that is not who it dialled', async () => {
    const a = await node('a');
    const intruder = await node('x', { credentials: await credentialsFor('x', { ca: await newCa() }) });
    a.mesh.setPeers([{ pod: 'x', address: `127.0.0.1:${intruder.port}` }]);
    intruder.mesh.setPeers([{ pod: 'a', address: `127.0.0.1:${a.port}` }]);
    await sleep(500);
    expect(a.mesh.peers()[0]?.connected).toBe(false);
    expect(intruder.mesh.peers()[0]?.connected).toBe(false);
    // c answers at the address where a expects b (a reused pod IP): a's handshake refuses it.
    const c = await node('c');
    a.mesh.setPeers([{ pod: 'b', address: `127.0.0.1:${c.port}` }]);
    await until(() => a.logs.some((l) => l.msg === 'mesh peer has the wrong certificate'), 3_000, 'wrong certificate logged');
    expect(a.mesh.peers().find((p) => p.pod === 'b')?.connected).toBe(false);
  });

  it('a peer with a valid certificate for b that speaks as c is dropped and logged, and nothing runs', async () => {
    const a = await node('a');
    let handled = 0;
    a.mesh.onCommand(async () => {
      handled++;
      return { ok: true };
    });
    a.mesh.setPeers([{ pod: 'b', address: '127.0.0.1:1' }, { pod: 'c', address: '127.0.0.1:1' }]);
    const peer = await rawPeer(a, 'b', false);
    peer.ws.send(JSON.stringify({ type: 'hello', v: 1, pod: 'c', cluster: CLUSTER, term: 0, agentVersion: 'x' }));
    peer.ws.send(JSON.stringify(command({ from: 'c', term: 99 })));
    await until(() => a.logs.filter((l) => l.msg === 'dropped an invalid mesh message' && l.reason === 'identity_mismatch').length >= 1, 2_000, 'mismatch logged');
    expect(await counterValue(a.registry, 'shoal_mesh_messages_dropped_total', { reason: 'identity_mismatch' })).toBeGreaterThanOrEqual(1);
    expect(handled).toBe(0);
    expect(a.mesh.highestTerm().term).toBe(0);
  });

  it('carries a forwarded request over mTLS to the pod named; the server learns the sender from its certificate', async () => {
    const [a, b] = [await node('a'), await node('b')];
    connectAll([a, b]);
    b.mesh.serveHttp((req, res, pod) => {
      res.writeHead(200, { 'content-type': 'application/json' }).end(JSON.stringify({ pod, auth: req.headers.authorization }));
    });
    const req = () => a.mesh.request('b', { method: 'POST', path: '/switchover', headers: { authorization: 'Bearer t' }, body: '{}', signal: AbortSignal.timeout(2_000) });
    expect(await req()).toEqual({ status: 200, body: { pod: 'a', auth: 'Bearer t' } });
    // Whoever answers at b's address must be b: c there is refused before anything is sent.
    const c = await node('c');
    a.mesh.setPeers([{ pod: 'b', address: `127.0.0.1:${c.port}` }]);
    await expect(req()).rejects.toThrow('is not b');
    // A client without a mesh certificate gets nothing from b.
    await expect(fetch(`https://127.0.0.1:${b.port}/switchover`, { method: 'POST' })).rejects.toThrow();
  });

  it('drops and counts malformed, oversized and mislabelled messages without acting on them', async () => {
    const a = await node('a', { maxMessageBytes: 4096 });
    let handled = 0;
    a.mesh.onCommand(async () => {
      handled++;
      return { ok: true };
    });
    const peer = await rawPeer(a, 'b');
    peer.ws.send('this is not json');
    peer.ws.send(JSON.stringify({ type: 'command', v: 1, id: 'x', term: 'one' }));
    peer.ws.send(Buffer.from([1, 2, 3]), { binary: true });
    peer.ws.send(JSON.stringify({ ...command({}), payload: { pad: 'x'.repeat(5000) } })); // > maxMessageBytes, < ws limit
    peer.ws.send(JSON.stringify(command({ from: 'c' }))); // b speaking for c
    peer.ws.send(JSON.stringify({ type: 'heartbeat', v: 1, pod: 'c', term: 0, sentAt: 0, agentVersion: 'x', sees: [], instance: instanceState() }));
    const reasons = ['not_json', 'bad_field', 'binary', 'too_large', 'identity_mismatch'];
    await until(() => a.logs.filter((l) => l.msg === 'dropped an invalid mesh message').length >= 5, 3_000, 'drops logged');
    for (const reason of reasons) {
      expect(await counterValue(a.registry, 'shoal_mesh_messages_dropped_total', { reason }), reason).toBeGreaterThan(0);
    }
    expect(await counterValue(a.registry, 'shoal_mesh_messages_dropped_total', { reason: 'identity_mismatch' })).toBe(2);
    expect(handled).toBe(0);
    // The connection survives dropped messages …
    expect(peer.ws.readyState).toBe(WebSocket.OPEN);
    // … but a frame beyond ws's hard limit (4 × maxMessageBytes) closes it with 1009.
    const closed = new Promise<number>((resolve) => peer.ws.once('close', (code) => resolve(code)));
    peer.ws.send('x'.repeat(4 * 4096 + 1));
    expect(await closed).toBe(1009);
    expect(await counterValue(a.registry, 'shoal_mesh_messages_dropped_total', { reason: 'too_large' })).toBe(2);
  });

  it('refuses a forged command of an old term and never runs it', async () => {
    const b = await node('b');
    const ran: string[] = [];
    b.mesh.onCommand(async (cmd) => {
      ran.push(cmd.id);
      return { ok: true };
    });
    b.mesh.observeTerm(5, 'a'); // the state ConfigMap says term 5 belongs to a
    const old = await rawPeer(b, 'old');
    old.ws.send(JSON.stringify(command({ id: 'forged-1', term: 4, from: 'old' })));
    await until(() => old.received.some((m) => (m as { type: string }).type === 'ack'), 2_000, 'ack');
    expect(old.received.find((m) => (m as { type: string }).type === 'ack')).toMatchObject({ id: 'forged-1', ok: false, error: expect.stringContaining('stale term 4') });
    // Same term, wrong coordinator: also refused.
    old.ws.send(JSON.stringify(command({ id: 'forged-2', term: 5, from: 'old' })));
    await until(() => old.received.filter((m) => (m as { type: string }).type === 'ack').length === 2, 2_000, 'second ack');
    expect(old.received.at(-1)).toMatchObject({ id: 'forged-2', ok: false, error: expect.stringContaining('belongs to a') });
    expect(ran).toEqual([]);
    expect(b.logs.filter((l) => l.msg === 'refused a coordinator command')).toHaveLength(2);
  });

  it('a new term fences the old coordinator: after accepting term 6, term 5 is refused', async () => {
    const [a, b, c] = [await node('a'), await node('b'), await node('c')];
    connectAll([a, b, c]);
    const ran: Array<[string, number]> = [];
    c.mesh.onCommand(async (cmd) => {
      ran.push([cmd.from, cmd.term]);
      return { ok: true, result: { done: cmd.kind } };
    });
    await until(() => a.mesh.peers().some((p) => p.pod === 'c' && p.connected) && b.mesh.peers().some((p) => p.pod === 'c' && p.connected), 3_000, 'links');
    expect(await a.mesh.sendCommand('c', { kind: 'reconfigure', payload: {}, term: 5 }, 2_000)).toMatchObject({ ok: true, result: { done: 'reconfigure' } });
    expect(await b.mesh.sendCommand('c', { kind: 'promote', payload: {}, term: 6 }, 2_000)).toMatchObject({ ok: true });
    const late = await a.mesh.sendCommand('c', { kind: 'promote', payload: {}, term: 5 }, 2_000);
    expect(late).toMatchObject({ ok: false, error: expect.stringContaining('stale term 5') });
    expect(ran).toEqual([
      ['a', 5],
      ['b', 6],
    ]);
  });

  it('with a term authority, a term the state ConfigMap does not hold is refused', async () => {
    const b = await node('b', { termAuthority: async () => ({ term: 3, holder: 'a' }) });
    let handled = 0;
    b.mesh.onCommand(async () => {
      handled++;
      return { ok: true };
    });
    const liar = await rawPeer(b, 'liar');
    liar.ws.send(JSON.stringify(command({ id: 'big-term', term: 1_000_000, from: 'liar' })));
    await until(() => liar.received.some((m) => (m as { type: string }).type === 'ack'), 2_000, 'ack');
    expect(liar.received.find((m) => (m as { type: string }).type === 'ack')).toMatchObject({ ok: false, error: expect.stringContaining('not persisted') });
    expect(b.mesh.highestTerm()).toEqual({ term: 3, holder: 'a' });
    b.mesh.setPeers([{ pod: 'liar', address: '127.0.0.1:1' }, { pod: 'a', address: '127.0.0.1:1' }]);
    const real = await rawPeer(b, 'a', false);
    real.ws.send(JSON.stringify(command({ id: 'real', term: 3, from: 'a' })));
    await until(() => real.received.some((m) => (m as { type: string }).type === 'ack'), 2_000, 'real ack');
    expect(real.received.find((m) => (m as { type: string }).type === 'ack')).toMatchObject({ id: 'real', ok: true });
    expect(handled).toBe(1);
  });

  it('runs a replayed command id once and answers the replay with the same ack', async () => {
    const [a, b] = [await node('a'), await node('b')];
    connectAll([a, b]);
    let runs = 0;
    b.mesh.onCommand(async () => {
      runs++;
      return { ok: true, result: runs };
    });
    await until(() => a.mesh.peers()[0]?.connected === true, 3_000, 'link');
    const first = await a.mesh.sendCommand('b', { kind: 'expel', payload: {}, term: 1, id: 'expel-1' }, 2_000);
    const replay = await a.mesh.sendCommand('b', { kind: 'expel', payload: {}, term: 1, id: 'expel-1' }, 2_000);
    expect(first).toMatchObject({ ok: true, result: 1 });
    expect(replay).toEqual(first);
    expect(runs).toBe(1);
    expect(await counterValue(b.registry, 'shoal_mesh_messages_dropped_total', { reason: 'replayed' })).toBe(1);
  });

  it('times out a command nobody acks, and honours an abort signal', async () => {
    const [a, b] = [await node('a'), await node('b')];
    connectAll([a, b]);
    b.mesh.onCommand(() => new Promise(() => undefined)); // never answers
    await until(() => a.mesh.peers()[0]?.connected === true, 3_000, 'link');
    await expect(a.mesh.sendCommand('b', { kind: 'slow', payload: {}, term: 1 }, 200)).rejects.toThrow('no ack');
    const ac = new AbortController();
    const p = a.mesh.sendCommand('b', { kind: 'slow', payload: {}, term: 1 }, 10_000, ac.signal);
    ac.abort(new Error('cancelled'));
    await expect(p).rejects.toThrow('cancelled');
    await expect(a.mesh.sendCommand('nobody', { kind: 'x', payload: {}, term: 1 }, 200)).rejects.toThrow('no mesh connection');
  });

  it('reconnects after the peer restarts on the same address', async () => {
    const a = await node('a');
    let b = await node('b');
    const port = b.port;
    connectAll([a, b]);
    a.mesh.startHeartbeats(() => instanceState());
    b.mesh.startHeartbeats(() => instanceState());
    await until(() => a.mesh.reachability().sees.length === 1, 3_000, 'first connection');
    await b.stop();
    await until(() => a.mesh.peers()[0]?.connected === false, 3_000, 'disconnect noticed');
    await until(() => a.mesh.reachability().sees.length === 0, 3_000, 'b goes stale');
    b = await node('b', {}, port);
    b.mesh.setPeers([{ pod: 'a', address: `127.0.0.1:${a.port}` }]);
    b.mesh.startHeartbeats(() => instanceState());
    b.mesh.onCommand(async () => ({ ok: true }));
    await until(() => a.mesh.peers()[0]?.outbound === true, 5_000, 'redial');
    await until(() => a.mesh.reachability().sees.length === 1, 3_000, 'b seen again');
    expect(await a.mesh.sendCommand('b', { kind: 'noop', payload: {}, term: 1 }, 2_000)).toMatchObject({ ok: true });
  });

  it('a command to itself goes through the same term check', async () => {
    const a = await node('a');
    a.mesh.onCommand(async () => ({ ok: true }));
    a.mesh.observeTerm(2, 'a');
    expect(await a.mesh.sendCommand('a', { kind: 'noop', payload: {}, term: 2 }, 1_000)).toMatchObject({ ok: true });
    expect(await a.mesh.sendCommand('a', { kind: 'noop', payload: {}, term: 1 }, 1_000)).toMatchObject({ ok: false });
  });
});
