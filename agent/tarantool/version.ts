// Which Tarantool versions Shoal drives (pure). 3.x: what users deploy (the synchronous queue has an
// owner and a term; box.ctl.promote claims it). 2.6: Debian's, a compatibility lane with its own
// workarounds. Anything else is refused with a reason, never retried into a crash loop: 1.10 has no
// synchronous replication, 2.x before 2.6 has no box.ctl.clear_synchro_queue that promotion needs,
// and 2.7–2.11 are untested middle grounds (promote exists, the queue's term semantics changed).

export type VersionSupport = { supported: true; major: number; minor: number } | { supported: false; reason: string };

/** Support of `version` as require('tarantool').version gives it (e.g. `3.8.0-0-gdce7be8a79`). */
export function versionSupport(version: string): VersionSupport {
  const m = /^(\d+)\.(\d+)/.exec(version);
  if (!m) return { supported: false, reason: `cannot read the Tarantool version "${version}"` };
  const major = Number(m[1]);
  const minor = Number(m[2]);
  if (major >= 3 || (major === 2 && minor === 6)) return { supported: true, major, minor };
  return {
    supported: false,
    reason: `Tarantool ${version} is not supported: Shoal runs Tarantool 3.x (and 2.6 as a compatibility lane); use a tarantool/tarantool:3 image`,
  };
}

/** The refusal for a reported version; null when supported or not reported (an older shoal.lua). */
export function unsupportedVersion(version: string | undefined): string | null {
  if (version === undefined) return null;
  const s = versionSupport(version);
  return s.supported ? null : s.reason;
}
