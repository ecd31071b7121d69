import { afterEach, describe, expect, it, vi } from 'vitest';
import { DEFAULT_AGENT_IMAGE, parseWebhookArgs, webhookCommand } from '../../webhook/cli.js';
import { VERSION } from '../../common/version.js';

const argv = (...args: string[]) => ['node', 'shoal-webhook', ...args];
/** A command that throws instead of exiting and keeps commander's output out of the test log. */
const quiet = () => webhookCommand().exitOverride().configureOutput({ writeErr: () => {}, writeOut: () => {} });

describe('shoal-webhook flags', () => {
  afterEach(() => vi.unstubAllEnvs());

  it('has the SPEC defaults', () => {
    expect(parseWebhookArgs(argv('--cert-dir', '/certs'), quiet())).toEqual({
      port: 8443,
      host: '0.0.0.0',
      certDir: '/certs',
      service: 'shoal-webhook',
      namespace: 'shoal-system',
      agentImage: `shoal/agent:${VERSION}`,
      agentPort: 8080,
      sidecarMode: 'auto',
    });
    expect(DEFAULT_AGENT_IMAGE).toBe(`shoal/agent:${VERSION}`);
  });

  it('reads every flag from SHOAL_WEBHOOK_<FLAG>, and a flag beats its env var', () => {
    vi.stubEnv('SHOAL_WEBHOOK_PORT', '9443');
    vi.stubEnv('SHOAL_WEBHOOK_HOST', '127.0.0.1');
    vi.stubEnv('SHOAL_WEBHOOK_CERT_DIR', '/env-certs');
    vi.stubEnv('SHOAL_WEBHOOK_SERVICE', 'svc');
    vi.stubEnv('SHOAL_WEBHOOK_NAMESPACE', 'ns');
    vi.stubEnv('SHOAL_WEBHOOK_WEBHOOK_CONFIG', 'cfg');
    vi.stubEnv('SHOAL_WEBHOOK_AGENT_IMAGE', 'img:1');
    vi.stubEnv('SHOAL_WEBHOOK_AGENT_PORT', '9090');
    vi.stubEnv('SHOAL_WEBHOOK_SIDECAR_MODE', 'container');
    vi.stubEnv('SHOAL_WEBHOOK_KUBECONFIG', '/kc');
    expect(parseWebhookArgs(argv('--port', '7443'), quiet())).toEqual({
      port: 7443,
      host: '127.0.0.1',
      certDir: '/env-certs',
      service: 'svc',
      namespace: 'ns',
      webhookConfig: 'cfg',
      agentImage: 'img:1',
      agentPort: 9090,
      sidecarMode: 'container',
      kubeconfig: '/kc',
    });
  });

  it.each([
    [['--port', 'x', '--cert-dir', '/c'], /expected a port number/],
    [['--port', '70000', '--cert-dir', '/c'], /expected a port number/],
    [['--sidecar-mode', 'maybe', '--cert-dir', '/c'], /Allowed choices are auto, native, container/],
    [[], /--cert-dir <dir>' not specified/],
  ])('rejects %j', (args, message) => {
    expect(() => parseWebhookArgs(argv(...args), quiet())).toThrow(message);
  });
});
