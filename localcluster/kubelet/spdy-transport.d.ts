// The part of spdy-transport 3.0 (CommonJS, no published types) that spdy.ts uses.
declare module 'spdy-transport' {
  import type { Duplex } from 'node:stream';
  import type { EventEmitter } from 'node:events';

  export interface SpdyStream extends Duplex {
    readonly id: number;
    /** Lower-cased names, as the SYN_STREAM carried them. */
    readonly headers: Record<string, string | string[]>;
    /** Sends SYN_REPLY. */
    respond(status: number, headers: Record<string, string>, callback?: (err?: Error) => void): void;
    /** RST_STREAM (CANCEL unless a code is given). */
    abort(code?: string, callback?: () => void): void;
  }

  export interface SpdyConnection extends EventEmitter {
    /** Sends GOAWAY; the socket is closed once every stream has closed. */
    end(callback?: () => void): void;
    destroyStreams(err?: Error): void;
    on(event: 'stream', listener: (stream: SpdyStream) => void): this;
    on(event: 'error', listener: (err: Error) => void): this;
    on(event: 'close', listener: (err?: Error) => void): this;
    on(event: string, listener: (...args: unknown[]) => void): this;
    /** Internal state; spdy.ts sets the default send window on it (see there). */
    _spdyState: { streamWindow: { send: { setMax(max: number): void } } };
  }

  export interface SpdyParser {
    parseKVs(buffer: unknown, callback: (err: Error | null, headers?: Record<string, string | string[]>) => void): void;
  }

  export interface Protocol {
    name: string;
    parser: { create(options: unknown): SpdyParser };
    [key: string]: unknown;
  }

  const transport: {
    protocol: Record<string, Protocol>;
    connection: {
      create(
        socket: Duplex,
        options: { protocol: string; isServer: boolean; windowSize?: number; maxChunk?: number | false; autoSpdy31?: boolean },
      ): SpdyConnection;
    };
  };
  export default transport;
}
