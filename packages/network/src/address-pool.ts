/**
 * The cluster's address pools (`swarm init --default-addr-pool --default-addr-pool-mask-length`):
 * the subnets networks without a `--subnet` are carved from, one of `size` bits each, first free
 * first. Pure: which subnets are taken is passed in.
 */
import { InvalidAddressError, PoolExhaustedError, SubnetOverlapError } from './errors.js';
import { formatCidr, lastIp, overlaps, parseCidr, prefixSize, type Cidr } from './ipv4.js';

/** Docker's default pool. Lab clusters and tests give their own (inside 198.18.0.0/15). */
export const DEFAULT_ADDR_POOL: readonly string[] = ['10.0.0.0/8'];
/** Docker's default subnet size: a /24 per network. */
export const DEFAULT_SUBNET_SIZE = 24;
/** The smallest subnet worth a network: network, gateway, broadcast and a few tasks. */
export const MAX_SUBNET_SIZE = 29;

export class AddressPool {
  readonly pools: readonly Cidr[];
  readonly size: number;

  /** Validates the pool list and mask length; errors name the flag's value that is wrong. */
  constructor(pools: readonly string[] = DEFAULT_ADDR_POOL, size: number = DEFAULT_SUBNET_SIZE) {
    if (pools.length === 0) throw new InvalidAddressError('invalid --default-addr-pool: the pool list is empty');
    if (!Number.isInteger(size) || size < 1 || size > MAX_SUBNET_SIZE)
      throw new InvalidAddressError(
        `invalid --default-addr-pool-mask-length ${size}: must be an integer between 1 and ${MAX_SUBNET_SIZE}`,
      );
    const parsed = pools.map((p) => parseCidr(p, 'default address pool'));
    for (const [i, p] of parsed.entries()) {
      if (p.prefix > size)
        throw new InvalidAddressError(
          `invalid --default-addr-pool ${formatCidr(p)}: smaller than one /${size} subnet ` +
            `(--default-addr-pool-mask-length must be at least ${p.prefix})`,
        );
      for (const q of parsed.slice(0, i))
        if (overlaps(p, q)) throw new SubnetOverlapError(formatCidr(p), formatCidr(q), 'another default address pool');
    }
    this.pools = parsed;
    this.size = size;
  }

  /**
   * The first /size subnet of the pools that overlaps none of `taken`. Skips over a taken subnet
   * in one step, so the cost grows with the number of networks, not the size of the pool.
   */
  nextFree(taken: readonly Cidr[]): Cidr {
    const step = prefixSize(this.size);
    const sorted = [...taken].sort((a, b) => a.base - b.base);
    for (const pool of this.pools) {
      let base = pool.base;
      const end = lastIp(pool);
      while (base + step - 1 <= end) {
        const candidate = { base, prefix: this.size };
        const hit = sorted.find((t) => overlaps(t, candidate));
        if (!hit) return candidate;
        // The next aligned candidate after the taken subnet.
        const after = lastIp(hit) + 1;
        base = Math.ceil(after / step) * step;
      }
    }
    throw new PoolExhaustedError(this.pools.map(formatCidr), this.size);
  }
}
