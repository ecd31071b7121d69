// One authenticated websocket to a known peer pod, in either direction: validates every frame before
// handing it on, and detects a dead connection with ping/pong (terminate on a missed pong).
import type { RawData, WebSocket } from 'ws';
import type { Logger } from '../../common/log.js';
import type { DropReason, MeshMetrics } from './metrics.js';
import { encodeMessage, parseMessage, type MeshMessage } from '../wire/mesh-protocol.js';
import type { LogThrottle } from './throttle.js';

export type Direction = 'inbound' | 'outbound';

export interface LinkOptions {
  /** The authenticated peer: the pod we dialled, or the pod the inbound handshake claimed. */
  pod: string;
  direction: Direction;
  ws: WebSocket;
  maxMessageBytes: number;
  pingIntervalMs: number;
  logger: Logger;
  metrics: MeshMetrics;
  throttle: LogThrottle;
  onMessage: (link: MeshLink, msg: MeshMessage) => void;
  onClose: (link: MeshLink) => void;
}

/** A peer that reads slower than we write is cut off rather than buffered without bound. */
const MAX_BUFFERED_BYTES = 4 * 1024 * 1024;

export class MeshLink {
  readonly pod: string;
  readonly direction: Direction;
  private readonly ws: WebSocket;
  private readonly pinger: NodeJS.Timeout;
  private awaitingPong = false;

  constructor(private readonly opts: LinkOptions) {
    this.pod = opts.pod;
    this.direction = opts.direction;
    this.ws = opts.ws;
    this.ws.on('message', (data, isBinary) => this.receive(data, isBinary));
    this.ws.on('pong', () => {
      this.awaitingPong = false;
    });
    this.ws.on('error', (err: Error & { code?: string }) => {
      if (err.code === 'WS_ERR_UNSUPPORTED_MESSAGE_LENGTH') this.drop('too_large', err.message);
      else this.opts.logger.debug({ peer: this.pod, err: err.message }, 'mesh connection error');
    });
    this.ws.on('close', () => {
      clearInterval(this.pinger);
      this.opts.onClose(this);
    });
    this.pinger = setInterval(() => this.ping(), opts.pingIntervalMs);
  }

  get open(): boolean {
    return this.ws.readyState === this.ws.OPEN;
  }

  send(msg: MeshMessage): boolean {
    if (!this.open) return false;
    if (this.ws.bufferedAmount > MAX_BUFFERED_BYTES) {
      this.opts.logger.warn({ peer: this.pod, buffered: this.ws.bufferedAmount }, 'mesh peer is not reading; dropping the connection');
      this.ws.terminate();
      return false;
    }
    this.ws.send(encodeMessage(msg));
    return true;
  }

  /** Closes politely; a peer that doesn't answer the close handshake is cut after 1 s. */
  close(code = 1000, reason = ''): void {
    if (this.ws.readyState === this.ws.CLOSED) return;
    this.ws.close(code, reason);
    setTimeout(() => this.ws.terminate(), 1_000).unref();
  }

  terminate(): void {
    this.ws.terminate();
  }

  private ping(): void {
    if (this.awaitingPong) {
      this.opts.logger.info({ peer: this.pod, direction: this.direction }, 'mesh peer missed a pong; terminating the connection');
      this.ws.terminate();
      return;
    }
    if (!this.open) return;
    this.awaitingPong = true;
    this.ws.ping();
  }

  private receive(data: RawData, isBinary: boolean): void {
    const buf = Array.isArray(data) ? Buffer.concat(data) : Buffer.isBuffer(data) ? data : Buffer.from(data);
    const parsed = parseMessage(buf, isBinary, this.opts.maxMessageBytes);
    if (!parsed.ok) {
      this.drop(parsed.reason, parsed.detail);
      return;
    }
    this.opts.onMessage(this, parsed.msg);
  }

  /** Counts and (throttled) logs a message that is not acted on. */
  drop(reason: DropReason, detail: string): void {
    this.opts.metrics.dropped(reason);
    const suppressed = this.opts.throttle.admit(`${this.pod}/${reason}`);
    if (suppressed !== null) {
      this.opts.logger.warn({ peer: this.pod, direction: this.direction, reason, detail, suppressed }, 'dropped an invalid mesh message');
    }
  }
}
