import type { Duplex } from 'node:stream';
import transport, { type SpdyConnection, type SpdyStream } from 'spdy-transport';
import type { Logger } from '../../common/log.js';
import { errorMessage } from '../../common/errors.js';

// The server side of the SPDY/3.1 upgrade the API server proxies from kubectl (apimachinery's
// httpstream/spdy over Go's spdystream), on spdy-transport. Go's spdystream differs from the
// browsers spdy-transport was written for in two ways, both adapted here and nowhere else:
//  - its SYN_STREAM frames carry only the Kubernetes headers (streamType, port, requestID…), no
//    `:method`/`:path`, which spdy-transport's parser otherwise rejects as a protocol error;
//  - it never sends WINDOW_UPDATE (it has no flow control: TCP's back-pressure is all there is), so
//    a sender that honours SPDY/3's 64 KiB initial stream window stalls after 64 KiB. Streams here
//    start with a send window no transfer exhausts instead.

export type { SpdyStream } from 'spdy-transport';

const PROTOCOL = 'spdy-kubernetes';
const SEND_WINDOW = 2 ** 30; // under the 2^31-1 limit even if a peer did grant more

function registerProtocol(): void {
  if (transport.protocol[PROTOCOL]) return;
  const spdy = transport.protocol.spdy;
  if (!spdy) throw new Error('spdy-transport has no spdy protocol');
  transport.protocol[PROTOCOL] = {
    ...spdy,
    parser: {
      create: (options: unknown) => {
        const parser = spdy.parser.create(options);
        const parseKVs = parser.parseKVs.bind(parser);
        parser.parseKVs = (buffer, callback) =>
          parseKVs(buffer, (err, headers) => {
            // Placeholders for the pseudo-headers spdystream does not send (never read here).
            if (headers) {
              headers[':method'] ??= 'POST';
              headers[':path'] ??= '/';
            }
            callback(err, headers);
          });
        return parser;
      },
    },
  };
}

export interface SpdyServerConnection {
  /** GOAWAY, then the socket closes when every stream has; destroyed after `graceMs` regardless. */
  close(graceMs?: number): void;
  /** Resolves when the socket has closed. */
  closed: Promise<void>;
}

/** An upgrade request the kubelet accepted: its socket, the bytes read past its head, the sub-protocol agreed on. */
export interface SpdyUpgrade {
  socket: Duplex;
  head: Buffer;
  protocol: string;
  logger: Logger;
}

/**
 * Answers the upgrade on its socket (101 with the negotiated sub-protocol) and serves SPDY on it.
 * Every stream the client opens is replied to (SYN_REPLY) and handed to `onStream`.
 */
export function acceptSpdy(opts: SpdyUpgrade, onStream: (stream: SpdyStream) => void): SpdyServerConnection {
  registerProtocol();
  const { socket, logger } = opts;
  socket.write(
    'HTTP/1.1 101 Switching Protocols\r\n' +
      'Connection: Upgrade\r\n' +
      'Upgrade: SPDY/3.1\r\n' +
      `X-Stream-Protocol-Version: ${opts.protocol}\r\n\r\n`,
  );
  if (opts.head.length > 0) socket.unshift(opts.head);
  const conn: SpdyConnection = transport.connection.create(socket, { protocol: PROTOCOL, isServer: true, windowSize: SEND_WINDOW });
  conn._spdyState.streamWindow.send.setMax(SEND_WINDOW);
  conn.on('error', (err) => logger.debug({ err: errorMessage(err) }, 'SPDY connection error'));
  conn.on('stream', (stream: SpdyStream) => {
    stream.on('error', (err: Error) => logger.debug({ err: errorMessage(err), stream: stream.id }, 'SPDY stream error'));
    stream.respond(200, {});
    onStream(stream);
  });
  const closed = new Promise<void>((resolve) => {
    if (socket.destroyed) resolve();
    socket.once('close', () => resolve());
  });
  let timer: NodeJS.Timeout | undefined;
  void closed.then(() => clearTimeout(timer));
  return {
    closed,
    close: (graceMs = 5_000) => {
      if (socket.destroyed || timer) return;
      try {
        conn.end();
      } catch (err) {
        logger.debug({ err: errorMessage(err) }, 'SPDY GOAWAY failed');
      }
      timer = setTimeout(() => socket.destroy(), graceMs);
    },
  };
}
