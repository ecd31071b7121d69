import { randomBytes } from 'node:crypto';
import type { CoreV1Api } from '@kubernetes/client-node';
import type { Logger } from '../../shared/log.js';
import { errorMessage } from '../../shared/errors.js';

// Pod events as the kubelet records them (Started, Killing, Unhealthy, BackOff, Failed…), so
// `kubectl describe pod` and `kubectl get events` tell what happened. Fire and forget: an event
// that cannot be written is only logged. The same event is not repeated within 30 s.

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

export type EventRecorder = (pod: PodRef, type: 'Normal' | 'Warning', reason: string, message: string, container?: string) => void;

const QUIET_MS = 30_000;

export function eventRecorder(core: CoreV1Api, nodeName: string, logger: Logger): EventRecorder {
  const recent = new Map<string, number>();
  return (pod, type, reason, message, container) => {
    const key = `${pod.uid}/${container ?? ''}/${reason}/${message}`;
    const now = Date.now();
    if ((recent.get(key) ?? 0) > now - QUIET_MS) return;
    recent.set(key, now);
    if (recent.size > 1_000) for (const [k, t] of recent) if (t < now - QUIET_MS) recent.delete(k);
    void core
      .createNamespacedEvent({
        namespace: pod.namespace,
        body: {
          metadata: { name: `${pod.name}.${randomBytes(8).toString('hex')}`, namespace: pod.namespace },
          involvedObject: {
            apiVersion: 'v1',
            kind: 'Pod',
            namespace: pod.namespace,
            name: pod.name,
            uid: pod.uid,
            ...(container ? { fieldPath: `spec.containers{${container}}` } : {}),
          },
          type,
          reason,
          message,
          source: { component: 'kubelet', host: nodeName },
          reportingComponent: 'kubelet',
          reportingInstance: nodeName,
          count: 1,
          firstTimestamp: new Date(now),
          lastTimestamp: new Date(now),
        },
      })
      .catch((err: unknown) => logger.debug({ err: errorMessage(err), reason }, 'event not recorded'));
  };
}
