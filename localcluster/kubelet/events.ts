import type { KubeClient } from '../../common/kube/client.js';
import { EventRecorder as SharedRecorder } from '../../common/kube/events.js';
import type { Logger } from '../../common/log.js';

// Pod events as the kubelet records them (Started, Killing, Unhealthy, BackOff, Failed…), so
// `kubectl describe pod` and `kubectl get events` tell what happened. Fire and forget through the
// shared recorder: a repeat bumps the count of the same Event (as client-go's correlator does), new
// events per pod are rate-limited, and an event that cannot be written is only logged.

export interface PodRef {
  namespace: string;
  name: string;
  uid: string;
}

export type EventRecorder = (pod: PodRef, type: 'Normal' | 'Warning', reason: string, message: string, container?: string) => void;

export function eventRecorder(client: KubeClient, nodeName: string, logger: Logger): EventRecorder {
  // Every pod names its namespace; the default is never used.
  const recorder = new SharedRecorder({ kube: { client, namespace: 'default' }, host: nodeName, component: 'kubelet', reportingComponent: 'kubelet', logger });
  return (pod, type, reason, message, container) =>
    recorder.record(
      { kind: 'Pod', namespace: pod.namespace, name: pod.name, uid: pod.uid, ...(container ? { fieldPath: `spec.containers{${container}}` } : {}) },
      { type, reason, message },
    );
}
