// ConsoleClient: the agent's only control path into Tarantool (TARANTOOL.md "Control path").
// One connection, one request in flight (FIFO queue), a deadline per call that covers queueing,
// connecting and the reply, reconnect with exponential backoff, and typed errors (errors.ts).
import { setTimeout as sleep } from 'node:timers/promises';
import type { Logger } from '../../common/log.js';
import { ConnectionLostError, ConsoleConnection } from './connection.js';
import { callLine, decodeCallReply, type JsonValue } from './envelope.js';
import {
  ConsoleClosedError,
  ConsoleError,
  ConsoleProtocolError,
  ConsoleTimeoutError,
  LuaError,
  TarantoolGoneError,
} from './errors.js';
import { abortAfter } from '../../common/abort.js';
import { FifoLock } from './lock.js';
import { readLogTail } from './logtail.js';
import type { ReplyValue } from './reply.js';

export type ConsoleOutcome = 'ok' | 'lua-error' | 'timeout' | 'gone' | 'protocol' | 'aborted' | 'closed';

/** Receives every call's duration and outcome (metrics live outside the client). */
export interface ConsoleObserver {
  onCall(durationMs: number, outcome: ConsoleOutcome): void;
}

export interface ConsoleClientOptions {
  socketPath: string;
  /** Tarantool's log file, when the agent can read it: its tail goes into TarantoolGoneError. */
  logPath?: string;
  /** Default per-call deadline (queue + connect + reply). Default 10 s. */
  timeoutMs?: number;
  /** Bound of one connect attempt (connect + greeting + envelope). Default 3 s. */
  connectAttemptMs?: number;
  /** Reconnect backoff: first delay and cap. Defaults 50 ms and 2 s. */
  backoffInitialMs?: number;
  backoffMaxMs?: number;
  logger?: Logger;
  observer?: ConsoleObserver;
}

export interface CallOptions {
  /** Deadline of this call in ms (default: the client's timeoutMs). */
  timeoutMs?: number;
  signal?: AbortSignal;
  /** When not connected, try to connect once and throw TarantoolGoneError at once if that fails (no retries). */
  failFast?: boolean;
}

type ConnectionListener = (connected: boolean, error?: Error) => void;

export class ConsoleClient {
  readonly socketPath: string;
  private readonly opts: Required<Pick<ConsoleClientOptions, 'timeoutMs' | 'connectAttemptMs' | 'backoffInitialMs' | 'backoffMaxMs'>>;
  private readonly lock = new FifoLock();
  private closed = false;
  /** The controllers of calls under way, aborted by close(). */
  private readonly active = new Set<AbortController>();
  private conn: ConsoleConnection | undefined;
  private nextId = 1;
  private failures = 0;
  private nextAttemptAt = 0;
  private lastConnectError: unknown;
  private readonly listeners = new Set<ConnectionListener>();

  constructor(private readonly options: ConsoleClientOptions) {
    this.socketPath = options.socketPath;
    this.opts = {
      timeoutMs: options.timeoutMs ?? 10_000,
      connectAttemptMs: options.connectAttemptMs ?? 3_000,
      backoffInitialMs: options.backoffInitialMs ?? 50,
      backoffMaxMs: options.backoffMaxMs ?? 2_000,
    };
  }

  /** True while a connection is open (it may still turn out dead on the next call). */
  get connected(): boolean {
    return this.conn !== undefined && !this.conn.closed;
  }

  /** Called with true on every new connection and false (with the reason) when one is lost. Returns an unsubscribe. */
  onConnectionChange(listener: ConnectionListener): () => void {
    this.listeners.add(listener);
    return () => this.listeners.delete(listener);
  }

  /** Waits until the console answers (retrying with backoff), bounded by opts.timeoutMs. */
  async connect(opts: CallOptions = {}): Promise<void> {
    await this.run(opts, async () => undefined);
  }

  /** Sends one raw console line and returns the parsed values (no envelope: `- error:` is just a value). */
  async request(line: string, opts: CallOptions = {}): Promise<ReplyValue[]> {
    return this.run(opts, (conn, signal) => conn.request(line, signal));
  }

  /**
   * Runs a Lua chunk (any length, any number of lines) with `args` as `...` and returns its first
   * return value, JSON-decoded. Throws LuaError when the chunk raises, TarantoolGoneError when
   * Tarantool is not there, ConsoleTimeoutError at the deadline, signal.reason when aborted.
   * Integers beyond 2^53 lose precision (JSON); return them as strings if that matters.
   */
  async eval(lua: string, args: readonly JsonValue[] = [], opts: CallOptions = {}): Promise<unknown> {
    return this.run(opts, async (conn, signal) => {
      const id = this.nextId++;
      return decodeCallReply(await conn.request(callLine(id, lua, args), signal), id);
    });
  }

  /** Stops everything: pending and queued calls reject with ConsoleClosedError, the socket closes. */
  async close(): Promise<void> {
    if (this.closed) return;
    this.closed = true;
    for (const ctl of this.active) ctl.abort(new ConsoleClosedError());
    this.conn?.destroy(new ConnectionLostError('client closed'));
    this.conn = undefined;
  }

  private async run<T>(opts: CallOptions, fn: (conn: ConsoleConnection, signal: AbortSignal) => Promise<T>): Promise<T> {
    const started = performance.now();
    const timeoutMs = opts.timeoutMs ?? this.opts.timeoutMs;
    let stage: 'queue' | 'connect' | 'reply' = 'queue';
    const call = abortAfter(timeoutMs, () => new ConsoleTimeoutError(timeoutMs, stage), opts.signal);
    const signal = call.signal;
    if (this.closed) call.controller.abort(new ConsoleClosedError());
    this.active.add(call.controller);
    let outcome: ConsoleOutcome = 'ok';
    try {
      await this.lock.acquire(signal);
      try {
        stage = 'connect';
        const conn = await this.connection(signal, opts.failFast === true);
        stage = 'reply';
        try {
          return await fn(conn, signal);
        } catch (err) {
          if (err instanceof ConnectionLostError) throw await this.goneError(err.detail, err);
          throw err;
        }
      } finally {
        this.lock.release();
      }
    } catch (err) {
      outcome = classify(err);
      throw err;
    } finally {
      call.unlink();
      this.active.delete(call.controller);
      this.options.observer?.onCall(performance.now() - started, outcome);
    }
  }

  /** The open connection, or a new one: attempts with backoff until one works or `signal` aborts. */
  private async connection(signal: AbortSignal, failFast: boolean): Promise<ConsoleConnection> {
    if (this.conn && !this.conn.closed) return this.conn;
    for (;;) {
      try {
        const wait = this.nextAttemptAt - Date.now();
        if (wait > 0 && !failFast) await sleep(wait, undefined, { signal });
        const attempt = abortAfter(this.opts.connectAttemptMs, () => new Error('connect attempt timed out'), signal);
        try {
          const conn = await ConsoleConnection.open(this.socketPath, attempt.signal);
          this.adopt(conn);
          return conn;
        } finally {
          attempt.unlink();
        }
      } catch (err) {
        if (signal.aborted) throw await this.connectAbortError(signal.reason);
        this.lastConnectError = err;
        if (failFast) throw err instanceof ConnectionLostError ? await this.goneError(`cannot connect: ${err.detail}`, err) : err;
        this.failures++;
        const delay = Math.min(this.opts.backoffMaxMs, this.opts.backoffInitialMs * 2 ** (this.failures - 1));
        this.nextAttemptAt = Date.now() + delay * (0.8 + Math.random() * 0.4);
        this.options.logger?.debug({ err: describe(err), retryInMs: Math.round(delay) }, 'console connect failed');
      }
    }
  }

  private adopt(conn: ConsoleConnection): void {
    const reconnected = this.failures > 0;
    this.failures = 0;
    this.nextAttemptAt = 0;
    this.lastConnectError = undefined;
    this.conn = conn;
    this.options.logger?.info({ socket: this.socketPath, reconnected }, 'console connected');
    this.emit(true);
    conn.onClose((err) => {
      if (this.conn === conn) this.conn = undefined;
      if (this.closed) return;
      // The next connect should not hammer a socket that just died.
      this.nextAttemptAt = Date.now() + this.opts.backoffInitialMs;
      this.options.logger?.warn({ socket: this.socketPath, reason: err.message }, 'console connection lost');
      this.emit(false, err);
    });
  }

  /**
   * What a caller whose deadline passed while connecting sees: Tarantool gone when nothing listens
   * on the socket (or it keeps dying), otherwise the timeout / abort / close reason itself.
   */
  private async connectAbortError(reason: unknown): Promise<unknown> {
    const last = this.lastConnectError;
    if (!(reason instanceof ConsoleTimeoutError)) return reason;
    if (last instanceof ConsoleProtocolError) return last;
    if (last instanceof ConnectionLostError) return this.goneError(`cannot connect: ${last.detail}`, last);
    return reason;
  }

  private async goneError(reason: string, cause: unknown): Promise<TarantoolGoneError> {
    const tail = this.options.logPath ? await readLogTail(this.options.logPath) : undefined;
    return new TarantoolGoneError(reason, this.socketPath, tail, { cause });
  }

  private emit(connected: boolean, error?: Error): void {
    for (const l of this.listeners) {
      try {
        l(connected, error);
      } catch (err) {
        this.options.logger?.error({ err: describe(err) }, 'console connection listener failed');
      }
    }
  }
}

function classify(err: unknown): ConsoleOutcome {
  if (err instanceof LuaError) return 'lua-error';
  if (err instanceof ConsoleTimeoutError) return 'timeout';
  if (err instanceof TarantoolGoneError) return 'gone';
  if (err instanceof ConsoleClosedError) return 'closed';
  if (err instanceof ConsoleProtocolError) return 'protocol';
  if (err instanceof ConsoleError) return 'protocol';
  return 'aborted';
}

function describe(err: unknown): string {
  return err instanceof Error ? err.message : String(err);
}
