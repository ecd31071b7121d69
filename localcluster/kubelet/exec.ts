import { errorMessage } from '../../common/errors.js';
import { exitCodeOf, signalGroup, spawnInContainer, type ContainerTarget } from './process.js';
import { acceptSpdy, type SpdyStream, type SpdyUpgrade } from './spdy.js';
import {
  expectedExecStreams,
  exitStatus,
  header,
  internalErrorStatus,
  isExecStreamType,
  type ExecOptions,
  type ExecStatus,
  type ExecStreamType,
} from './streaming.js';

// `kubectl exec` on the process kubelet: the v4 remote-command protocol over SPDY. The client opens
// an error stream and one stream per requested std stream; the command runs in the container
// (spawnInContainer: its mount namespace, uid, environment and working directory); its exit is
// reported on the error stream as a metav1.Status, then the connection is closed.

export interface ExecRequest extends SpdyUpgrade {
  options: ExecOptions;
  target: ContainerTarget;
  /** The kubelet's streamCreationTimeout: how long the client has to open its streams. */
  streamTimeoutMs: number;
}

export function serveExec(req: ExecRequest): void {
  const { options, logger } = req;
  const expected = expectedExecStreams(options);
  const streams = new Map<ExecStreamType, SpdyStream>();
  let started = false;
  let kill: (() => void) | undefined;

  const conn = acceptSpdy(req, (stream) => {
    const type = header(stream.headers, 'streamType');
    if (started || !isExecStreamType(type) || !expected.includes(type) || streams.has(type)) {
      logger.debug({ streamType: type }, 'exec: unexpected stream, reset');
      stream.abort();
      return;
    }
    streams.set(type, stream);
    if (expected.every((t) => streams.has(t))) {
      started = true;
      clearTimeout(waiting);
      // GOAWAY only once the status and the output are out: spdystream drops what comes after it.
      const out = [...streams].filter(([t]) => t !== 'stdin' && t !== 'resize').map(([, s]) => s);
      const flushed = Promise.all(out.map((s) => new Promise<void>((resolve) => s.once('finish', resolve).once('close', resolve))));
      kill = run(streams, req, () => void flushed.then(() => conn.close()));
    }
  });
  const waiting = setTimeout(() => {
    logger.warn({ got: [...streams.keys()], expected }, 'exec: timed out waiting for the client to create streams');
    conn.close(0);
  }, req.streamTimeoutMs);
  // kubectl gone (or the kubelet stopping): the command goes with it.
  void conn.closed.then(() => {
    clearTimeout(waiting);
    kill?.();
  });
}

function writeStatus(stream: SpdyStream | undefined, status: ExecStatus): void {
  stream?.end(JSON.stringify(status));
}

/** Runs the command with the streams connected; returns how to kill it. */
function run(streams: Map<ExecStreamType, SpdyStream>, req: ExecRequest, done: () => void): () => void {
  const { options, logger } = req;
  const errorStream = streams.get('error');
  const stdin = streams.get('stdin');
  const stdout = streams.get('stdout');
  const stderr = streams.get('stderr');
  if (options.tty) {
    writeStatus(errorStream, internalErrorStatus('the process kubelet runs exec without a TTY (drop -t)'));
    stdout?.end();
    done();
    return () => undefined;
  }
  const child = spawnInContainer(req.target, options.command, [stdin ? 'pipe' : 'ignore', stdout ? 'pipe' : 'ignore', stderr ? 'pipe' : 'ignore']);
  const log = logger.child({ exec: options.command.join(' ').slice(0, 200), pid: child.pid });
  log.info('exec started');
  if (stdin && child.stdin) {
    child.stdin.on('error', () => undefined); // the command may exit without reading its input
    stdin.pipe(child.stdin);
  }
  if (stdout && child.stdout) child.stdout.pipe(stdout);
  if (stderr && child.stderr) child.stderr.pipe(stderr);
  let finished = false;
  child.once('exit', () => {
    // Whatever the command left running in its group ends with it, as with a runtime's exec.
    if (child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
  });
  child.once('error', (err) => {
    if (finished) return;
    finished = true;
    log.warn({ err: errorMessage(err) }, 'exec could not start');
    writeStatus(errorStream, internalErrorStatus(`error executing command in container: ${errorMessage(err)}`));
    stdout?.end();
    stderr?.end();
    done();
  });
  child.once('close', (code, signal) => {
    if (finished) return;
    finished = true;
    const exitCode = exitCodeOf(code, signal);
    log.info({ exitCode }, 'exec finished');
    writeStatus(errorStream, exitStatus(exitCode, options.command));
    done();
  });
  return () => {
    if (!finished && child.pid !== undefined) signalGroup(child.pid, 'SIGKILL');
  };
}
