import net from 'node:net';
import { errorMessage } from '../../common/errors.js';
import { acceptSpdy, type SpdyStream, type SpdyUpgrade } from './spdy.js';
import { ForwardPairs, parseForwardStream, type ForwardPair } from './streaming.js';

// `kubectl port-forward` on the process kubelet: the portforward.k8s.io protocol over SPDY. Each
// connection kubectl accepts locally becomes a data and an error stream with the same requestID;
// once both are there, the data stream is joined to a TCP connection to the port on the pod's IP
// (pods here bind their own loopback IP, not a network namespace's localhost). What goes wrong is
// written on the error stream, which kubectl prints.

export interface PortForwardRequest extends SpdyUpgrade {
  /** namespace/name, for messages. */
  pod: string;
  podIP: string;
  /** How long a request's second stream may take (the kubelet's streamCreationTimeout). */
  streamTimeoutMs: number;
}

export function servePortForward(req: PortForwardRequest): void {
  const { logger } = req;
  const pairs = new ForwardPairs<SpdyStream>();
  const timers = new Set<NodeJS.Timeout>();
  const upstreams = new Set<net.Socket>();

  const conn = acceptSpdy(req, (stream) => {
    const parsed = parseForwardStream(stream.headers, stream.id);
    if (!parsed.ok) {
      logger.debug({ err: parsed.message }, 'port-forward: stream rejected');
      stream.abort();
      return;
    }
    const added = pairs.add(parsed.info, stream);
    if (added.kind === 'duplicate') {
      logger.debug({ err: added.message }, 'port-forward: duplicate stream');
      added.errorStream?.write(added.message);
      stream.abort();
    } else if (added.kind === 'waiting' && added.created) {
      const timer = setTimeout(() => {
        timers.delete(timer);
        const { expired, errorStream } = pairs.expire(parsed.info.requestId);
        if (expired) errorStream?.end(`(request ${parsed.info.requestId}) timed out waiting for streams`);
      }, req.streamTimeoutMs);
      timers.add(timer);
    } else if (added.kind === 'complete') {
      const upstream = forward(added.pair, req, () => upstreams.delete(upstream));
      upstreams.add(upstream);
    }
  });
  void conn.closed.then(() => {
    for (const t of timers) clearTimeout(t);
    for (const s of upstreams) s.destroy();
  });
}

/** Joins a pair's data stream to the pod's port; both streams end when the pod side closes. */
function forward(pair: ForwardPair<SpdyStream>, req: PortForwardRequest, onClose: () => void): net.Socket {
  const { data, error, port } = pair;
  const upstream = net.connect({ host: req.podIP, port });
  let failed = false;
  upstream.once('connect', () => {
    data.pipe(upstream);
    upstream.pipe(data);
  });
  upstream.once('error', (err) => {
    failed = true;
    const message = `error forwarding port ${port} to pod ${req.pod}: ${errorMessage(err)}`;
    req.logger.info({ port, requestId: pair.requestId, err: errorMessage(err) }, 'port-forward: connection to the pod failed');
    error.end(message);
    data.end();
  });
  upstream.once('close', () => {
    if (!failed) error.end();
    onClose();
  });
  // kubectl dropped this connection (RST on the data stream): so does the pod side.
  data.once('close', () => upstream.destroy());
  return upstream;
}
