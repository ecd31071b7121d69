// shoal-webhook's flags (SPEC §2), each also read from SHOAL_WEBHOOK_<FLAG>.
import { Command, InvalidArgumentError, Option } from 'commander';
import { DEFAULT_AGENT_PORT, DEFAULT_WEBHOOK_PORT } from '../common/names.js';
import { VERSION } from '../common/version.js';
import { SIDECAR_MODES, type SidecarModeFlag } from './sidecar-mode.js';

export interface WebhookConfig {
  port: number;
  host: string;
  certDir: string;
  service: string;
  namespace: string;
  /** The MutatingWebhookConfiguration whose caBundle is kept current; undefined = patch nothing. */
  webhookConfig?: string;
  agentImage: string;
  agentPort: number;
  sidecarMode: SidecarModeFlag;
  /** Talk to this cluster instead of the in-cluster one (also enables the Secret and caBundle handling). */
  kubeconfig?: string;
  /** Where agents ask for mesh certificates (SHOAL_MESH_CA_URL); default https://<service>.<namespace>.svc:443. */
  meshCaUrl?: string;
}

export const DEFAULT_AGENT_IMAGE = `shoal/agent:${VERSION}`;

function port(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 65535) throw new InvalidArgumentError('expected a port number 0-65535');
  return n;
}

const opt = (flags: string, description: string, envName: string) => new Option(flags, description).env(`SHOAL_WEBHOOK_${envName}`);

export function webhookCommand(): Command {
  return new Command('shoal-webhook')
    .description("Shoal's mutating admission webhook: injects the agent into pods of StatefulSets labelled shoal.dev/cluster")
    .version(VERSION)
    .addOption(opt('--port <port>', 'HTTPS port (0 = any free port)', 'PORT').argParser(port).default(DEFAULT_WEBHOOK_PORT))
    .addOption(opt('--host <host>', 'address to bind', 'HOST').default('0.0.0.0'))
    .addOption(opt('--cert-dir <dir>', 'directory with tls.crt, tls.key, ca.crt (generated when absent)', 'CERT_DIR').makeOptionMandatory())
    .addOption(opt('--service <name>', "the webhook's Service (DNS names in the certificate)", 'SERVICE').default('shoal-webhook'))
    .addOption(opt('--namespace <ns>', "the webhook's namespace (certificate names, certificate Secret)", 'NAMESPACE').default('shoal-system'))
    .addOption(opt('--webhook-config <name>', 'MutatingWebhookConfiguration whose caBundle to keep current', 'WEBHOOK_CONFIG'))
    .addOption(opt('--agent-image <image>', 'image of the injected shoal-agent container', 'AGENT_IMAGE').default(DEFAULT_AGENT_IMAGE))
    .addOption(opt('--agent-port <port>', "the agent's HTTP port in injected pods", 'AGENT_PORT').argParser(port).default(DEFAULT_AGENT_PORT))
    .addOption(opt('--sidecar-mode <mode>', 'how to add the agent: native (1.29+), container, or auto', 'SIDECAR_MODE').choices(SIDECAR_MODES).default('auto'))
    .addOption(opt('--kubeconfig <file>', 'kubeconfig to use instead of the in-cluster service account', 'KUBECONFIG'))
    .addOption(opt('--mesh-ca-url <url>', 'where injected agents ask this webhook for mesh certificates (default https://<service>.<namespace>.svc:443)', 'MESH_CA_URL'));
}

/** Parses argv (node-style: [node, script, ...args]); commander prints usage and exits on bad flags. */
export function parseWebhookArgs(argv: string[], command = webhookCommand()): WebhookConfig {
  const o = command.parse(argv).opts<WebhookConfig>();
  return {
    port: o.port,
    host: o.host,
    certDir: o.certDir,
    service: o.service,
    namespace: o.namespace,
    agentImage: o.agentImage,
    agentPort: o.agentPort,
    sidecarMode: o.sidecarMode,
    ...(o.webhookConfig ? { webhookConfig: o.webhookConfig } : {}),
    ...(o.kubeconfig ? { kubeconfig: o.kubeconfig } : {}),
    ...(o.meshCaUrl ? { meshCaUrl: o.meshCaUrl } : {}),
  };
}
