// The 3.x native style (SPEC §4a), seen from the webhook: a Tarantool container that names a config
// file — env TT_CONFIG, or `--config FILE` / `-c FILE` on its command line — runs a Tarantool 3
// config. Shoal keeps the user's file as SHOAL_USER_CONFIG and points Tarantool at the config the
// agent writes into the run volume (the user's options plus the topology), names the instance after
// its pod and preloads the module that waits for that config. Pure: container in, changes out.
import type { V1Container, V1EnvVar } from '@kubernetes/client-node';
import { RUN_DIR } from '../common/names.js';

export const NATIVE_CONFIG = `${RUN_DIR}/config.yaml`;
export const NATIVE_PRELOAD = `${RUN_DIR}/preload.lua`;
export const USER_CONFIG_ENV = 'SHOAL_USER_CONFIG';

type Found = { path: string; from: 'env' } | { path: string; from: 'args'; list: 'command' | 'args'; index: number; inline: boolean };

/** Where the container names its config file, if it does. */
function configOf(c: V1Container, problems: string[]): Found | null {
  for (const list of ['command', 'args'] as const) {
    const items = c[list] ?? [];
    for (let i = 0; i < items.length; i++) {
      const a = items[i] ?? '';
      if (a === '--config' || a === '-c') {
        const path = items[i + 1];
        if (path === undefined) problems.push(`${list}[${i}] ${a} has no file after it`);
        else return { path, from: 'args', list, index: i + 1, inline: false };
      }
      if (a.startsWith('--config=')) return { path: a.slice('--config='.length), from: 'args', list, index: i, inline: true };
    }
  }
  const env = (c.env ?? []).find((e) => e.name === 'TT_CONFIG');
  if (!env) return null;
  if (env.valueFrom) {
    problems.push('TT_CONFIG must be a plain value (the config file\'s path), not valueFrom');
    return null;
  }
  return { path: env.value ?? '', from: 'env' };
}

/** Names Shoal reserves in a native-style container, with what to do instead. */
function nameProblems(c: V1Container): string[] {
  const problems: string[] = [];
  for (const list of ['command', 'args'] as const) {
    for (const a of c[list] ?? []) {
      if (a === '--name' || a === '-n' || a.startsWith('--name=')) {
        problems.push(`remove ${a} from ${list}: Shoal names each instance after its pod (TT_INSTANCE_NAME)`);
      }
    }
  }
  const own = (c.env ?? []).find((e) => e.name === 'TT_INSTANCE_NAME');
  if (own && own.valueFrom?.fieldRef?.fieldPath !== 'metadata.name') {
    problems.push('remove the TT_INSTANCE_NAME env: Shoal names each instance after its pod');
  }
  return problems;
}

export interface NativeStyle {
  /** The user's config file, or null when the container runs the Lua style (init.lua). */
  userConfig: string | null;
  problems: string[];
  /** Where the container names its config (what applyNativeStyle rewrites). */
  found?: Found;
}

/** Reads the container's style; problems say what to change. */
export function nativeStyleOf(c: V1Container): NativeStyle {
  const problems: string[] = [];
  const found = configOf(c, problems);
  if (!found) return { userConfig: null, problems };
  // Already injected: the user's path is kept in SHOAL_USER_CONFIG.
  const kept = (c.env ?? []).find((e) => e.name === USER_CONFIG_ENV)?.value;
  const userConfig = found.path === NATIVE_CONFIG && kept ? kept : found.path;
  if (userConfig === NATIVE_CONFIG) problems.push(`the config file cannot be ${NATIVE_CONFIG}: Shoal writes that one`);
  else if (userConfig === '') problems.push('the config file\'s path is empty');
  problems.push(...nameProblems(c));
  return { userConfig, problems, found };
}

function setEnv(c: V1Container, env: V1EnvVar): void {
  c.env ??= [];
  const i = c.env.findIndex((e) => e.name === env.name);
  if (i < 0) c.env.push(env);
  else c.env[i] = env;
}

/**
 * Points the container at Shoal's config (idempotent: an injected container stays as it is).
 * `style` is nativeStyleOf(c) on this very container, with a user config and no problems.
 */
export function applyNativeStyle(c: V1Container, style: NativeStyle & { userConfig: string }): void {
  const { found, userConfig } = style;
  if (found?.from === 'args') {
    const items = c[found.list] as string[];
    items[found.index] = found.inline ? `--config=${NATIVE_CONFIG}` : NATIVE_CONFIG;
  }
  if (found?.from === 'env' || (c.env ?? []).some((e) => e.name === 'TT_CONFIG')) setEnv(c, { name: 'TT_CONFIG', value: NATIVE_CONFIG });
  if (!(c.env ?? []).some((e) => e.name === USER_CONFIG_ENV)) setEnv(c, { name: USER_CONFIG_ENV, value: userConfig });
  setEnv(c, { name: 'TT_INSTANCE_NAME', valueFrom: { fieldRef: { fieldPath: 'metadata.name' } } });
  const preload = (c.env ?? []).find((e) => e.name === 'TT_PRELOAD')?.value;
  const entries = (preload ?? '').split(';').filter((e) => e !== '' && e !== NATIVE_PRELOAD);
  // Shoal's first: the user's preloads run once the config is there.
  setEnv(c, { name: 'TT_PRELOAD', value: [NATIVE_PRELOAD, ...entries].join(';') });
}
