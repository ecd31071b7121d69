// The outbound half of the mesh: one connection to one peer, kept up — reconnect with capped
// exponential backoff and jitter after any close, until stopped.
import WebSocket from 'ws';
import type { Logger } from '../../common/log.js';
import { Backoff, type BackoffPolicy } from '../../common/time.js';
import { CLUSTER_HEADER, MESH_PATH, POD_HEADER } from './server.js';
import type { LogThrottle } from './throttle.js';

export interface PeerDialerOptions {
  /** The peer we dial. */
  pod: string;
  /** host:port of its agent. */
  address: string;
  self: string;
  cluster: string;
  token: string;
  maxPayload: number;
  handshakeTimeoutMs: number;
  backoff: BackoffPolicy;
  logger: Logger;
  throttle: LogThrottle;
  /** A connection is open: the mesh wraps it in a MeshLink. */
  onOpen: (ws: WebSocket) => void;
}

export class PeerDialer {
  private ws: WebSocket | undefined;
  private timer: NodeJS.Timeout | undefined;
  private stopped = false;
  private readonly backoff: Backoff;
  private address: string;

  constructor(private readonly opts: PeerDialerOptions) {
    this.backoff = new Backoff(opts.backoff);
    this.address = opts.address;
  }

  get target(): string {
    return this.address;
  }

  start(): void {
    this.dial();
  }

  /** The peer moved (new pod IP): drop the old connection and dial the new address at once. */
  retarget(address: string): void {
    if (address === this.address) return;
    this.address = address;
    this.backoff.reset();
    clearTimeout(this.timer);
    this.timer = undefined;
    if (this.ws) this.ws.terminate(); // its close schedules the redial
    else this.dial();
  }

  /** Stops for good: no redial, the connection is closed. */
  stop(): void {
    this.stopped = true;
    clearTimeout(this.timer);
    this.ws?.terminate();
  }

  private dial(): void {
    if (this.stopped) return;
    const { opts } = this;
    const ws = new WebSocket(`ws://${this.address}${MESH_PATH}`, {
      headers: { authorization: `Bearer ${opts.token}`, [CLUSTER_HEADER]: opts.cluster, [POD_HEADER]: opts.self },
      maxPayload: opts.maxPayload,
      handshakeTimeout: opts.handshakeTimeoutMs,
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.ws = ws;
    ws.on('unexpected-response', (_req, res) => {
      // 401/403: our token or cluster is wrong (or theirs is). Retrying is right (the secret may be
      // being created), but it must be loud.
      const key = `dial/${opts.pod}/${res.statusCode}`;
      const suppressed = opts.throttle.admit(key);
      if (suppressed !== null) {
        opts.logger.warn({ peer: opts.pod, address: this.address, status: res.statusCode, suppressed }, 'mesh peer refused our connection');
      }
      res.resume();
      ws.terminate();
    });
    ws.on('open', () => {
      this.backoff.reset();
      opts.onOpen(ws);
    });
    ws.on('error', (err) => {
      opts.logger.debug({ peer: opts.pod, address: this.address, err: err.message }, 'mesh dial error');
    });
    ws.on('close', () => {
      if (this.ws === ws) this.ws = undefined;
      this.scheduleRedial();
    });
  }

  private scheduleRedial(): void {
    if (this.stopped || this.timer) return;
    const delay = this.backoff.next();
    this.timer = setTimeout(() => {
      this.timer = undefined;
      this.dial();
    }, delay);
  }
}
