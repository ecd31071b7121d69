// Native sidecars (an init container with restartPolicy: Always) exist from Kubernetes 1.29; older
// API servers silently drop the restartPolicy, which would leave a pod stuck on an init container
// that never ends. `auto` asks the API server once at start.
import { errorMessage } from '../common/errors.js';
import type { SidecarMode } from './agent-container.js';
import type { ClusterAccess } from './cluster.js';

export type SidecarModeFlag = 'auto' | SidecarMode;
export const SIDECAR_MODES: readonly SidecarModeFlag[] = ['auto', 'native', 'container'];

export interface ResolvedMode {
  mode: SidecarMode;
  reason: string;
}

type Version = { major: number; minor: number; gitVersion: string };

/** Pure: the mode for a flag and what the API server said (a version, an error, or null = no cluster). */
export function decideSidecarMode(flag: SidecarModeFlag, server: Version | Error | null): ResolvedMode {
  if (flag !== 'auto') return { mode: flag, reason: `--sidecar-mode ${flag}` };
  if (server === null) return { mode: 'native', reason: 'auto: no cluster to ask, assuming Kubernetes 1.29 or newer' };
  if (server instanceof Error) return { mode: 'native', reason: `auto: cannot ask the API server (${server.message}), assuming 1.29 or newer` };
  const native = server.major > 1 || (server.major === 1 && server.minor >= 29);
  return native
    ? { mode: 'native', reason: `auto: API server ${server.gitVersion} has native sidecars` }
    : { mode: 'container', reason: `auto: API server ${server.gitVersion} is older than 1.29, agent runs as an ordinary container` };
}

export async function resolveSidecarMode(flag: SidecarModeFlag, access: ClusterAccess | null, timeoutMs = 5000): Promise<ResolvedMode> {
  if (flag !== 'auto' || access === null) return decideSidecarMode(flag, null);
  let timer: NodeJS.Timeout | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(() => reject(new Error(`no answer within ${timeoutMs} ms`)), timeoutMs);
  });
  try {
    return decideSidecarMode(flag, await Promise.race([access.serverVersion(), timeout]));
  } catch (err) {
    return decideSidecarMode(flag, new Error(errorMessage(err)));
  } finally {
    clearTimeout(timer);
  }
}
