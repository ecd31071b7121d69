// The shared event recorder as the process kubelet uses it: events land in each pod's namespace,
// name the container, and say the kubelet wrote them.
import { pino } from 'pino';
import { describe, expect, it } from 'vitest';
import { eventRecorder } from '../../localcluster/kubelet/events.js';
import { sleep } from '../../common/time.js';
import { answerJson, fakeApiServer } from '../support/fake-apiserver.js';

const { start } = fakeApiServer();

describe('kubelet events through the shared recorder', () => {
  it('creates the Event in the pod\'s namespace, with the container field path and the kubelet as source', async () => {
    const calls: { method: string; path: string; body: Record<string, unknown> }[] = [];
    const client = await start((req, res, url, body) => {
      calls.push({ method: req.method ?? '', path: url.pathname, body: JSON.parse(body) as Record<string, unknown> });
      answerJson(res, {}, req.method === 'POST' ? 201 : 200);
    });
    const record = eventRecorder(client, 'node-1', pino({ level: 'silent' }));
    const pod = { namespace: 'team-a', name: 'web-0', uid: 'u1' };
    record(pod, 'Warning', 'Unhealthy', 'Readiness probe failed', 'app');
    const deadline = Date.now() + 5_000;
    while (calls.length < 1 && Date.now() < deadline) await sleep(10);
    expect(calls[0]?.method).toBe('POST');
    expect(calls[0]?.path).toBe('/api/v1/namespaces/team-a/events');
    expect(calls[0]?.body).toMatchObject({
      involvedObject: { kind: 'Pod', apiVersion: 'v1', namespace: 'team-a', name: 'web-0', uid: 'u1', fieldPath: 'spec.containers{app}' },
      type: 'Warning',
      reason: 'Unhealthy',
      count: 1,
      source: { component: 'kubelet', host: 'node-1' },
      reportingComponent: 'kubelet',
      reportingInstance: 'node-1',
    });
  });
});
