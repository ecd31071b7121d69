// Typed errors of the console client. Callers branch on the class: a LuaError is the chunk's own
// failure (the connection is fine), the others are about reaching Tarantool at all.
import { ShoalError } from '../../common/errors.js';

/** Base class of every console failure. */
export class ConsoleError extends ShoalError {
  constructor(message: string, hint?: string, options?: { cause?: unknown }) {
    super(message, hint, options);
    this.name = 'ConsoleError';
  }
}

/** The Lua chunk raised an error (or could not be compiled). The connection stays usable. */
export class LuaError extends ConsoleError {
  constructor(
    readonly luaMessage: string,
    /** box.error type and code when the error was a box.error (e.g. ClientError, 7 = read-only). */
    readonly luaType?: string,
    readonly code?: number,
  ) {
    super(`Lua error: ${luaMessage}`);
    this.name = 'LuaError';
  }
}

/**
 * Tarantool is not there: the socket closed or hit EOF (the process died or exited), or nothing
 * listens on it. `logTail` holds the end of Tarantool's log when the agent can read it — fatal
 * box.cfg errors are only reported there.
 */
export class TarantoolGoneError extends ConsoleError {
  constructor(
    readonly reason: string,
    readonly socketPath: string,
    readonly logTail?: string,
    options?: { cause?: unknown },
  ) {
    super(
      `Tarantool is gone (${reason}) on console ${socketPath}${logTail ? `; last log lines:\n${logTail}` : ''}`,
      logTail
        ? undefined
        : 'look at the Tarantool container\'s log (kubectl logs <pod> -c <tarantool container>); set SHOAL_TARANTOOL_LOG to a log file the agent can read to see it here',
      options,
    );
    this.name = 'TarantoolGoneError';
  }
}

/** The call did not complete in time. The connection was reset, so no late reply can be mistaken for another. */
export class ConsoleTimeoutError extends ConsoleError {
  constructor(
    readonly timeoutMs: number,
    readonly stage: 'queue' | 'connect' | 'reply',
  ) {
    super(
      `console call timed out after ${timeoutMs} ms (waiting for ${stage})`,
      stage === 'reply' ? 'the Lua chunk may block; check Tarantool (box.info, fiber.info) or raise the timeout' : undefined,
    );
    this.name = 'ConsoleTimeoutError';
  }
}

/** The reply could not be understood (not our envelope, not YAML). The connection was reset. */
export class ConsoleProtocolError extends ConsoleError {
  constructor(
    message: string,
    readonly raw?: string,
  ) {
    super(message, 'make sure the socket is a Tarantool admin console (require("console").listen), not iproto');
    this.name = 'ConsoleProtocolError';
  }
}

/** close() was called on the client. */
export class ConsoleClosedError extends ConsoleError {
  constructor() {
    super('console client is closed');
    this.name = 'ConsoleClosedError';
  }
}
