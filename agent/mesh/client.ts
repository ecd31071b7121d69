// The outbound half of the mesh: one mTLS connection to one peer, kept up — reconnect with capped
// exponential backoff and jitter after any close, until stopped. The handshake shows our
// certificate and accepts the peer's only when it chains to the mesh CA and names the pod we dialled.
import type { PeerCertificate } from 'node:tls';
import WebSocket, { type ClientOptions } from 'ws';
import type { Logger } from '../../common/log.js';
import { meshIdentityFromSan } from '../../common/mesh-identity.js';
import { Backoff, type BackoffPolicy } from '../../common/time.js';
import { judgePeer } from './identity.js';
import { MESH_PATH, POD_HEADER, type MeshCredentials } from './server.js';
import type { LogThrottle } from './throttle.js';

export interface PeerDialerOptions {
  /** The peer we dial. */
  pod: string;
  /** host:port of its agent. */
  address: string;
  self: string;
  namespace: string;
  cluster: string;
  /** Read at every dial: a renewed certificate is used from the next connection on. */
  credentials: () => MeshCredentials;
  maxPayload: number;
  handshakeTimeoutMs: number;
  backoff: BackoffPolicy;
  logger: Logger;
  throttle: LogThrottle;
  /** A connection is open: the mesh wraps it in a MeshLink. */
  onOpen: (ws: WebSocket) => void;
}

const IDENTITY_ERROR = 'SHOAL_MESH_PEER_IDENTITY';

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
    const { key, cert, ca } = opts.credentials();
    // Not the host name: the peer is a pod IP; its certificate must name the pod we meant to reach.
    const checkServerIdentity = (_host: string, peer: PeerCertificate): Error | undefined => {
      const v = judgePeer({ identity: meshIdentityFromSan(peer.subjectaltname), namespace: opts.namespace, cluster: opts.cluster, expected: opts.pod, known: () => true });
      return v.ok ? undefined : Object.assign(new Error(`mesh peer at ${this.address} is not ${opts.pod}: ${v.detail}`), { code: IDENTITY_ERROR });
    };
    const ws = new WebSocket(`wss://${this.address}${MESH_PATH}`, {
      key,
      cert,
      ca,
      minVersion: 'TLSv1.2',
      // ws hands its options to tls.connect, whose callback returns an Error (ws's types say boolean).
      checkServerIdentity: checkServerIdentity as unknown as ClientOptions['checkServerIdentity'],
      headers: { [POD_HEADER]: opts.self },
      maxPayload: opts.maxPayload,
      handshakeTimeout: opts.handshakeTimeoutMs,
      perMessageDeflate: false,
      followRedirects: false,
    });
    this.ws = ws;
    ws.on('unexpected-response', (_req, res) => {
      // 403: the peer does not accept our certificate for who we are; 503: it does not know us yet
      // (its pod watch lags). Retrying is right, but a refusal must be loud.
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
      // A peer whose certificate names someone else is worth a warning; a refused port is not.
      if ((err as Error & { code?: string }).code === IDENTITY_ERROR) {
        const suppressed = opts.throttle.admit(`dial/${opts.pod}/identity`);
        if (suppressed !== null) opts.logger.warn({ peer: opts.pod, address: this.address, err: err.message, suppressed }, 'mesh peer has the wrong certificate');
      } else {
        opts.logger.debug({ peer: opts.pod, address: this.address, err: err.message }, 'mesh dial error');
      }
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
