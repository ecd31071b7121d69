// One admin-console socket: connect, read the 128-byte greeting, install the call envelope, then
// carry one request at a time. Anything unexpected (unsolicited bytes, an abandoned request)
// destroys the socket: a console connection is cheap to reopen, a mixed-up reply is not.
import { createConnection, type Socket } from 'node:net';
import { ConsoleProtocolError } from './errors.js';
import { INSTALL_LINE, checkInstalled } from './envelope.js';
import { ReplySplitter, parseReply, ReplyParseError, type ReplyValue } from './reply.js';

const GREETING_BYTES = 128;

/** The socket closed under a request (EOF, reset, or an error). The client turns it into TarantoolGoneError. */
export class ConnectionLostError extends Error {
  constructor(readonly detail: string) {
    super(`console connection lost: ${detail}`);
    this.name = 'ConnectionLostError';
  }
}

interface Pending {
  resolve: (values: ReplyValue[]) => void;
  reject: (err: unknown) => void;
}

export class ConsoleConnection {
  private readonly splitter = new ReplySplitter();
  private greeting = Buffer.alloc(0);
  private greeted: (() => void) | undefined;
  private pending: Pending | undefined;
  private lost: Error | undefined;
  private readonly closeListeners: Array<(err: Error) => void> = [];

  private constructor(
    private readonly socket: Socket,
    readonly path: string,
  ) {
    socket.on('data', (chunk: Buffer) => this.onData(chunk));
    socket.on('error', (err: NodeJS.ErrnoException) => this.fail(new ConnectionLostError(err.code ?? err.message)));
    socket.on('close', () => this.fail(new ConnectionLostError('socket closed (EOF)')));
  }

  /** Connects, checks the greeting and installs the envelope; rejects with signal.reason when aborted. */
  static async open(path: string, signal: AbortSignal): Promise<ConsoleConnection> {
    signal.throwIfAborted();
    const socket = createConnection({ path });
    const conn = new ConsoleConnection(socket, path);
    const onAbort = (): void => conn.destroy(new ConnectionLostError('connect aborted'));
    signal.addEventListener('abort', onAbort, { once: true });
    try {
      await new Promise<void>((resolve, reject) => {
        conn.greeted = resolve;
        conn.closeListeners.push(reject);
      });
      conn.closeListeners.length = 0;
      const greeting = conn.greeting.toString('utf8');
      if (!greeting.startsWith('Tarantool') || !greeting.includes('(Lua console)')) {
        conn.destroy(new ConnectionLostError('not a console'));
        throw new ConsoleProtocolError(`unexpected greeting on ${path}: ${JSON.stringify(greeting.slice(0, 64).trim())}`);
      }
      checkInstalled(await conn.request(INSTALL_LINE, signal));
      return conn;
    } catch (err) {
      conn.destroy(new ConnectionLostError('connect failed'));
      if (signal.aborted) throw signal.reason;
      throw err;
    } finally {
      signal.removeEventListener('abort', onAbort);
    }
  }

  get closed(): boolean {
    return this.lost !== undefined;
  }

  /** Called once when the socket is gone (never when it is already gone: check `closed`). */
  onClose(listener: (err: Error) => void): void {
    this.closeListeners.push(listener);
  }

  /**
   * Sends one line and resolves with the parsed reply. An abort destroys the connection (the reply
   * would otherwise arrive for the next request) and rejects with signal.reason.
   */
  request(line: string, signal: AbortSignal): Promise<ReplyValue[]> {
    if (this.lost) return Promise.reject(this.lost);
    if (this.pending) return Promise.reject(new Error('console connection: request already in flight'));
    if (line.includes('\n')) return Promise.reject(new Error('console request must be a single line'));
    signal.throwIfAborted();
    return new Promise<ReplyValue[]>((resolve, reject) => {
      const onAbort = (): void => {
        this.pending = undefined;
        reject(signal.reason);
        this.destroy(new ConnectionLostError('request abandoned'));
      };
      signal.addEventListener('abort', onAbort, { once: true });
      this.pending = {
        resolve: (v) => {
          signal.removeEventListener('abort', onAbort);
          resolve(v);
        },
        reject: (e) => {
          signal.removeEventListener('abort', onAbort);
          reject(e);
        },
      };
      this.socket.write(line + '\n');
    });
  }

  destroy(err: Error): void {
    this.fail(err);
    this.socket.destroy();
  }

  private onData(chunk: Buffer): void {
    if (this.greeting.length < GREETING_BYTES) {
      const need = GREETING_BYTES - this.greeting.length;
      this.greeting = Buffer.concat([this.greeting, chunk.subarray(0, need)]);
      chunk = chunk.subarray(need);
      if (this.greeting.length === GREETING_BYTES) this.greeted?.();
      if (chunk.length === 0) return;
    }
    for (const raw of this.splitter.push(chunk)) {
      const pending = this.pending;
      this.pending = undefined;
      if (!pending) {
        this.destroy(new ConnectionLostError('unsolicited reply'));
        return;
      }
      try {
        pending.resolve(parseReply(raw));
      } catch (err) {
        pending.reject(err instanceof ReplyParseError ? new ConsoleProtocolError(err.message, err.raw) : err);
        this.destroy(new ConnectionLostError('unparsable reply'));
        return;
      }
    }
  }

  private fail(err: Error): void {
    if (this.lost) return;
    this.lost = err;
    const pending = this.pending;
    this.pending = undefined;
    pending?.reject(err);
    for (const l of this.closeListeners.splice(0)) l(err);
  }
}
