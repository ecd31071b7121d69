import { describe, expect, it } from 'vitest';
import {
  authorizeClient,
  EXEC_PROTOCOLS,
  expectedExecStreams,
  exitStatus,
  ForwardPairs,
  internalErrorStatus,
  negotiateProtocol,
  parseExecQuery,
  parseForwardStream,
  parseKubeletPath,
  parseResizes,
  PORT_FORWARD_PROTOCOLS,
  upgradeKind,
  websocketRefusal,
} from '../../localcluster/kubelet/streaming.js';

// The pure part of the kubelet's exec and port-forward endpoints (localcluster/kubelet/streaming.ts),
// checked against what a v1.20 API server sends and kubectl expects.

describe('kubelet paths', () => {
  it.each([
    ['/healthz', { kind: 'healthz' }],
    ['/containerLogs/ns/p/c', { kind: 'containerLogs', namespace: 'ns', pod: 'p', container: 'c' }],
    ['/exec/ns/storage-0/tarantool', { kind: 'exec', namespace: 'ns', pod: 'storage-0', container: 'tarantool' }],
    ['/exec/ns/p/0f1e-uid/c', { kind: 'exec', namespace: 'ns', pod: 'p', container: 'c' }],
    ['/attach/ns/p/c', { kind: 'attach', namespace: 'ns', pod: 'p', container: 'c' }],
    ['/portForward/ns/p', { kind: 'portForward', namespace: 'ns', pod: 'p' }],
    ['/portForward/ns/p/0f1e-uid', { kind: 'portForward', namespace: 'ns', pod: 'p' }],
    ['/portForward/ns%2Fx/p', { kind: 'portForward', namespace: 'ns/x', pod: 'p' }],
  ])('%s is %j', (path, route) => {
    expect(parseKubeletPath(path)).toEqual(route);
  });

  it.each(['/', '/exec/ns/p', '/exec/ns//c', '/portForward/ns', '/containerLogs/ns/p', '/exec/ns/p/u/c/x', '/run/ns/p/c', '/exec/%E0%A4%A/p/c'])(
    '%s is no endpoint',
    (path) => {
      expect(parseKubeletPath(path)).toEqual({ kind: 'unknown' });
    },
  );
});

describe('who may call', () => {
  const users = ['kube-apiserver-kubelet-client'];

  it('lets the API server in', () => {
    expect(authorizeClient({ authorized: true, commonName: 'kube-apiserver-kubelet-client' }, users)).toEqual({ ok: true, user: 'kube-apiserver-kubelet-client' });
  });

  it('turns away a caller without a certificate (401)', () => {
    expect(authorizeClient({ authorized: false, authorizationError: 'UNABLE_TO_GET_ISSUER_CERT' }, users)).toEqual({
      ok: false,
      status: 401,
      message: 'Unauthorized: no client certificate',
    });
  });

  it('turns away a certificate another CA signed (401), naming why', () => {
    const d = authorizeClient({ authorized: false, authorizationError: 'UNABLE_TO_VERIFY_LEAF_SIGNATURE', commonName: 'kube-apiserver-kubelet-client' }, users);
    expect(d).toEqual({ ok: false, status: 401, message: 'Unauthorized: UNABLE_TO_VERIFY_LEAF_SIGNATURE' });
  });

  it('turns away another user of the cluster CA, even an admin (403)', () => {
    const d = authorizeClient({ authorized: true, commonName: 'shoal-admin' }, users);
    expect(d.ok).toBe(false);
    expect(d).toMatchObject({ status: 403 });
    expect(!d.ok && d.message).toContain('user=shoal-admin');
  });
});

describe('upgrades', () => {
  it('tells SPDY from WebSocket and from no upgrade', () => {
    expect(upgradeKind({ connection: 'Upgrade', upgrade: 'SPDY/3.1' })).toBe('spdy');
    expect(upgradeKind({ Connection: 'keep-alive, Upgrade', Upgrade: 'spdy/3.1' })).toBe('spdy');
    expect(upgradeKind({ connection: 'Upgrade', upgrade: 'websocket' })).toBe('websocket');
    expect(upgradeKind({ connection: 'Upgrade', upgrade: 'h2c' })).toBe('other');
    expect(upgradeKind({ upgrade: 'SPDY/3.1' })).toBe('none');
  });

  it('takes the client\'s first protocol it supports (kubectl offers v4 … v1 for exec)', () => {
    const h = { 'x-stream-protocol-version': ['v5.channel.k8s.io', 'v4.channel.k8s.io', 'v3.channel.k8s.io', 'v2.channel.k8s.io', 'channel.k8s.io'] };
    expect(negotiateProtocol(h, EXEC_PROTOCOLS)).toEqual({ ok: true, protocol: 'v4.channel.k8s.io' });
    expect(negotiateProtocol({ 'X-Stream-Protocol-Version': 'portforward.k8s.io' }, PORT_FORWARD_PROTOCOLS)).toEqual({ ok: true, protocol: 'portforward.k8s.io' });
    expect(negotiateProtocol({ 'x-stream-protocol-version': 'a, portforward.k8s.io' }, PORT_FORWARD_PROTOCOLS)).toEqual({ ok: true, protocol: 'portforward.k8s.io' });
  });

  it('refuses no protocol with 400 and none in common with 403', () => {
    expect(negotiateProtocol({}, EXEC_PROTOCOLS)).toMatchObject({ ok: false, status: 400 });
    const r = negotiateProtocol({ 'x-stream-protocol-version': 'channel.k8s.io' }, EXEC_PROTOCOLS);
    expect(r).toMatchObject({ ok: false, status: 403 });
    expect(!r.ok && r.message).toContain('server accepts [v4.channel.k8s.io]');
  });

  it('names the WebSocket protocols it refuses', () => {
    expect(websocketRefusal({ 'sec-websocket-protocol': 'v5.channel.k8s.io, v4.channel.k8s.io' })).toContain('[v5.channel.k8s.io v4.channel.k8s.io]');
  });
});

describe('exec', () => {
  it('reads the query the API server sends the kubelet', () => {
    const q = new URLSearchParams('command=sh&command=-c&command=exit+3&output=1&error=1');
    expect(parseExecQuery(q)).toEqual({ ok: true, options: { command: ['sh', '-c', 'exit 3'], stdin: false, stdout: true, stderr: true, tty: false } });
    expect(parseExecQuery(new URLSearchParams('command=cat&input=1&output=1'))).toMatchObject({ ok: true, options: { stdin: true, stdout: true, stderr: false } });
  });

  it('drops stderr under a TTY, and wants a stream and a command', () => {
    expect(parseExecQuery(new URLSearchParams('command=sh&input=1&output=1&error=1&tty=1'))).toMatchObject({ ok: true, options: { tty: true, stderr: false } });
    expect(parseExecQuery(new URLSearchParams('command=ls'))).toEqual({ ok: false, message: 'you must specify at least 1 of stdin, stdout, stderr' });
    expect(parseExecQuery(new URLSearchParams('output=1'))).toEqual({ ok: false, message: 'you must specify a command' });
  });

  it('expects the error stream, one per std stream, and resize under a TTY', () => {
    expect(expectedExecStreams({ command: ['x'], stdin: false, stdout: true, stderr: true, tty: false })).toEqual(['error', 'stdout', 'stderr']);
    expect(expectedExecStreams({ command: ['x'], stdin: true, stdout: true, stderr: false, tty: true })).toEqual(['error', 'stdin', 'stdout', 'resize']);
  });

  it('reports exit 0 as Success and any other code as NonZeroExitCode with the code as its cause', () => {
    expect(JSON.stringify(exitStatus(0, ['true']))).toBe('{"metadata":{},"status":"Success"}');
    const s = exitStatus(3, ['sh', '-c', 'exit 3']);
    expect(JSON.stringify(s)).toBe(
      '{"metadata":{},"status":"Failure","message":"command terminated with non-zero exit code: command \'sh -c exit 3\' exited with 3",' +
        '"reason":"NonZeroExitCode","details":{"causes":[{"reason":"ExitCode","message":"3"}]}}',
    );
  });

  it('reports a command that could not run as an internal error (HTTP 500 in the Status)', () => {
    expect(internalErrorStatus('no such container')).toEqual({
      metadata: {},
      status: 'Failure',
      message: 'Internal error occurred: no such container',
      reason: 'InternalError',
      details: { causes: [{ message: 'no such container' }] },
      code: 500,
    });
  });

  it('reads terminal sizes as they arrive, keeping a partial one for later', () => {
    const first = parseResizes('{"Width":80,"Height":24}{"Width":120,');
    expect(first.sizes).toEqual([{ width: 80, height: 24 }]);
    expect(parseResizes(`${first.rest}"Height":40}\n{"Width":0,"Height":1}`)).toEqual({ sizes: [{ width: 120, height: 40 }], rest: '' });
  });
});

describe('port-forward streams', () => {
  it('reads port, stream type and request id (header names lower-cased, as SPDY carries them)', () => {
    expect(parseForwardStream({ port: '8080', streamtype: 'error', requestid: '7' }, 3)).toEqual({ ok: true, info: { requestId: '7', port: 8080, type: 'error' } });
    expect(parseForwardStream({ Port: '1', StreamType: 'data', RequestID: '0' }, 5)).toEqual({ ok: true, info: { requestId: '0', port: 1, type: 'data' } });
  });

  it('derives the request id of an old client from the stream id (error n, data n + 2)', () => {
    expect(parseForwardStream({ port: '80', streamtype: 'error' }, 5)).toMatchObject({ ok: true, info: { requestId: '5' } });
    expect(parseForwardStream({ port: '80', streamtype: 'data' }, 7)).toMatchObject({ ok: true, info: { requestId: '5' } });
  });

  it.each([
    [{ streamtype: 'data' }, '"port" header is required'],
    [{ port: 'http', streamtype: 'data' }, 'unable to parse "http" as a port'],
    [{ port: '70000', streamtype: 'data' }, 'unable to parse "70000" as a port'],
    [{ port: '0', streamtype: 'data' }, 'port "0" must be > 0'],
    [{ port: '80' }, '"streamType" header is required'],
    [{ port: '80', streamtype: 'stdout' }, 'invalid stream type "stdout"'],
  ])('rejects %j: %s', (headers, message) => {
    expect(parseForwardStream(headers, 1)).toEqual({ ok: false, message });
  });

  it('pairs each request\'s streams in any order, among other requests\' streams', () => {
    const pairs = new ForwardPairs<string>();
    expect(pairs.add({ requestId: '0', port: 8080, type: 'error' }, 'e0')).toEqual({ kind: 'waiting', created: true });
    expect(pairs.add({ requestId: '1', port: 8080, type: 'data' }, 'd1')).toEqual({ kind: 'waiting', created: true });
    expect(pairs.add({ requestId: '0', port: 8080, type: 'data' }, 'd0')).toEqual({ kind: 'complete', pair: { requestId: '0', port: 8080, data: 'd0', error: 'e0' } });
    expect(pairs.add({ requestId: '1', port: 8080, type: 'error' }, 'e1')).toEqual({ kind: 'complete', pair: { requestId: '1', port: 8080, data: 'd1', error: 'e1' } });
    expect(pairs.size).toBe(0);
  });

  it('refuses a second stream of the same type, and expires a request whose pair never completed', () => {
    const pairs = new ForwardPairs<string>();
    pairs.add({ requestId: '4', port: 80, type: 'error' }, 'e4');
    expect(pairs.add({ requestId: '4', port: 80, type: 'error' }, 'e4b')).toEqual({
      kind: 'duplicate',
      message: 'error processing stream for request 4: error stream already assigned',
      errorStream: 'e4',
    });
    expect(pairs.expire('4')).toEqual({ expired: true, errorStream: 'e4' });
    expect(pairs.expire('4')).toEqual({ expired: false, errorStream: undefined });
    // A completed pair is not pending, so it does not expire.
    pairs.add({ requestId: '5', port: 80, type: 'data' }, 'd5');
    pairs.add({ requestId: '5', port: 80, type: 'error' }, 'e5');
    expect(pairs.expire('5').expired).toBe(false);
  });
});
