import type { V1Container } from '@kubernetes/client-node';
import { expandVars } from './env.js';
import type { ImageSpec, ImageTable } from './types.js';

/** The image's repository without registry `docker.io/`, `library/`, tag or digest: `tarantool/tarantool`. */
export function imageRepository(image: string): string {
  let name = image.split('@')[0] ?? image;
  const lastSlash = name.lastIndexOf('/');
  const colon = name.lastIndexOf(':');
  if (colon > lastSlash) name = name.slice(0, colon);
  for (const prefix of ['docker.io/', 'index.docker.io/', 'library/']) {
    if (name.startsWith(prefix)) name = name.slice(prefix.length);
  }
  return name;
}

/** The image's tag (`3.8` of `tarantool/tarantool:3.8`); '' when it has none. */
export function imageTag(image: string): string {
  const name = image.split('@')[0] ?? image;
  const colon = name.lastIndexOf(':');
  return colon > name.lastIndexOf('/') ? name.slice(colon + 1) : '';
}

/** Whether `tag` is `prefix` or starts with `prefix.` / `prefix-` (`3` matches `3.8`, not `30`). */
const tagMatches = (tag: string, prefix: string): boolean => tag === prefix || tag.startsWith(`${prefix}.`) || tag.startsWith(`${prefix}-`);

/**
 * The table entry for an image: the longest key that is the repository or a path prefix of it,
 * a key with a tag prefix (`repo:3`) only for a tag of that version.
 */
export function lookupImage(table: ImageTable, image: string): ImageSpec | undefined {
  const repo = imageRepository(image);
  const tag = imageTag(image);
  let best: string | undefined;
  for (const key of Object.keys(table)) {
    const colon = key.lastIndexOf(':');
    const keyRepo = colon > key.lastIndexOf('/') ? key.slice(0, colon) : key;
    const keyTag = colon > key.lastIndexOf('/') ? key.slice(colon + 1) : undefined;
    const repoMatches = repo === keyRepo || repo.startsWith(keyRepo.endsWith('/') ? keyRepo : `${keyRepo}/`);
    const matches = image === key || (repoMatches && (keyTag === undefined || tagMatches(tag, keyTag)));
    if (matches && (best === undefined || key.length > best.length)) best = key;
  }
  return best === undefined ? undefined : table[best];
}

/**
 * The argv a container runs, as Docker composes it: `command` replaces the image's entrypoint and,
 * when given, also drops the image's default arguments; `args` replace the default arguments.
 * `$(VAR)` references are expanded with the container's environment, as the kubelet does.
 */
export function containerArgv(image: ImageSpec, container: Pick<V1Container, 'command' | 'args'>, env: Record<string, string>): string[] {
  const command = container.command?.length ? container.command : undefined;
  const args = container.args?.length ? container.args : undefined;
  const expand = (xs: string[]): string[] => xs.map((x) => expandVars(x, env));
  const entry = command ? expand(command) : image.entrypoint;
  const rest = args ? expand(args) : command ? [] : (image.cmd ?? []);
  return [...entry, ...rest];
}
