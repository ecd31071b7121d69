// Loopback IP allocation for pods: 127.x.y.2 … 127.x.y.254 on one base. Allocation goes round-robin
// so an IP just released is the last to be handed out again (a late packet or a stale peer list
// then does not reach a new pod at once); an IP in use is never handed out twice.

const FIRST_HOST = 2; // .1 is left alone: 127.0.0.1 is the host's and looks like it.
const LAST_HOST = 254;

/** Validates `127.a.b` and returns its octets. */
export function parseIpBase(base: string): [number, number, number] {
  const parts = base.split('.');
  const octets = parts.map((p) => (/^\d{1,3}$/.test(p) ? Number(p) : NaN));
  if (octets.length !== 3 || octets.some((o) => Number.isNaN(o) || o > 255) || octets[0] !== 127) {
    throw new Error(`pod IP base "${base}" is not of the form 127.<0-255>.<0-255>`);
  }
  return octets as [number, number, number];
}

/** The unix uid a pod with this IP runs as: unique per loopback IP, so two local clusters never share one. */
export function unixUidForIp(ip: string, uidBase: number): number {
  const [, b, c, d] = ip.split('.').map(Number) as [number, number, number, number];
  return uidBase + ((b << 16) | (c << 8) | d);
}

/** The uid range [min, max] of every pod on a base (to find leftovers of an earlier run). */
export function unixUidRange(base: string, uidBase: number): [number, number] {
  return [unixUidForIp(`${base}.${FIRST_HOST}`, uidBase), unixUidForIp(`${base}.${LAST_HOST}`, uidBase)];
}

export class IpAllocator {
  private readonly base: string;
  private readonly inUse = new Map<string, string>(); // ip → owner (pod uid)
  private next = FIRST_HOST;

  constructor(base: string) {
    parseIpBase(base);
    this.base = base;
  }

  /** Returns the owner's IP, allocating one when it has none. `preferred` is taken when it is ours and free. */
  allocate(owner: string, preferred?: string): string {
    for (const [ip, o] of this.inUse) if (o === owner) return ip;
    if (preferred && this.isOurs(preferred) && !this.inUse.has(preferred)) {
      this.inUse.set(preferred, owner);
      return preferred;
    }
    for (let i = 0; i <= LAST_HOST - FIRST_HOST; i++) {
      const host = this.next;
      this.next = host >= LAST_HOST ? FIRST_HOST : host + 1;
      const ip = `${this.base}.${host}`;
      if (!this.inUse.has(ip)) {
        this.inUse.set(ip, owner);
        return ip;
      }
    }
    throw new Error(`no free pod IP left in ${this.base}.${FIRST_HOST}-${LAST_HOST}`);
  }

  release(owner: string): void {
    for (const [ip, o] of this.inUse) if (o === owner) this.inUse.delete(ip);
  }

  private isOurs(ip: string): boolean {
    const m = /^(\d+\.\d+\.\d+)\.(\d+)$/.exec(ip);
    return m !== null && m[1] === this.base && Number(m[2]) >= FIRST_HOST && Number(m[2]) <= LAST_HOST;
  }
}
