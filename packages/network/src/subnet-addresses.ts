/**
 * The addresses of one network: its subnet, gateway and the range task addresses and VIPs are
 * taken from, with the owner of each allocated address. Allocation goes round from the last
 * address handed out, so a released address is not reused at once (stale ARP/DNS entries for it
 * elsewhere have time to go). Pure.
 */
import { AddressInUseError, AddressesExhaustedError, InvalidAddressError } from './errors.js';
import { contains, containsCidr, formatCidr, formatIp, lastIp, parseCidr, parseIp, type Cidr } from './ipv4.js';

export interface SubnetConfig {
  subnet: Cidr;
  gateway: number;
  /** Where addresses are taken from; the subnet when the user gave no `--ip-range`. */
  range: Cidr;
  /** Whether the user gave the range (it is then kept in the store's IPAMConfig.Range). */
  rangeGiven: boolean;
}

/**
 * Validates a user's `--subnet`, `--gateway`, `--ip-range` (the gateway defaults to the first
 * address, the range to the whole subnet). Errors name the flag and value.
 */
export function subnetConfig(subnetText: string, gatewayText?: string, rangeText?: string): SubnetConfig {
  const subnet = parseCidr(subnetText, 'subnet');
  if (subnet.prefix > 30)
    throw new InvalidAddressError(`invalid subnet ${subnetText}: too small for a network (at most /30)`);
  if (subnet.prefix < 8) throw new InvalidAddressError(`invalid subnet ${subnetText}: too large (at least /8)`);
  const last = lastIp(subnet);
  let gateway = subnet.base + 1;
  if (gatewayText !== undefined && gatewayText !== '') {
    gateway = parseIp(gatewayText, 'gateway');
    if (!contains(subnet, gateway))
      throw new InvalidAddressError(`invalid gateway ${gatewayText}: not inside subnet ${subnetText}`);
    if (gateway === subnet.base || gateway === last)
      throw new InvalidAddressError(
        `invalid gateway ${gatewayText}: the network or broadcast address of ${subnetText}`,
      );
  }
  let range = subnet;
  const rangeGiven = rangeText !== undefined && rangeText !== '';
  if (rangeGiven) {
    range = parseCidr(rangeText, 'ip-range');
    if (!containsCidr(subnet, range))
      throw new InvalidAddressError(`invalid ip-range ${rangeText}: not inside subnet ${subnetText}`);
  }
  return { subnet, gateway, range, rangeGiven };
}

export class SubnetAddresses {
  readonly config: SubnetConfig;
  private readonly owners = new Map<number, string>();
  private readonly first: number;
  private readonly last: number;
  private readonly capacity: number;
  private cursor: number;

  constructor(
    readonly network: string,
    config: SubnetConfig,
  ) {
    this.config = config;
    const { subnet, range, gateway } = config;
    // Never the subnet's network or broadcast address.
    this.first = Math.max(range.base, subnet.base + 1);
    this.last = Math.min(lastIp(range), lastIp(subnet) - 1);
    this.capacity = this.last - this.first + 1 - (gateway >= this.first && gateway <= this.last ? 1 : 0);
    this.cursor = this.first;
  }

  get prefix(): number {
    return this.config.subnet.prefix;
  }

  /** Number of addresses allocated (the gateway not counted). */
  get used(): number {
    return this.owners.size;
  }

  /** Addresses that can still be allocated. */
  get free(): number {
    return this.capacity - this.owners.size;
  }

  /** The owner of an address, if allocated. */
  ownerOf(ip: number): string | undefined {
    return this.owners.get(ip);
  }

  /** `ip/prefix`, the form the store keeps addresses in. */
  cidrOf(ip: number): string {
    return `${formatIp(ip)}/${this.prefix}`;
  }

  /**
   * Allocates an address for `owner`: `requested` (plain or CIDR form) if given, else the next
   * free one after the last handed out.
   */
  allocate(owner: string, requested?: string): number {
    if (requested !== undefined) {
      const ip = this.parseOwn(requested);
      this.mark(ip, owner);
      return ip;
    }
    if (this.free <= 0) throw new AddressesExhaustedError(this.network, formatCidr(this.config.range));
    let ip = this.cursor;
    for (;;) {
      if (ip > this.last) ip = this.first;
      if (ip !== this.config.gateway && !this.owners.has(ip)) break;
      ip++;
    }
    this.owners.set(ip, owner);
    this.cursor = ip + 1;
    return ip;
  }

  /** Records an allocation made earlier (restore); the same owner again is not a conflict. */
  mark(ip: number, owner: string): void {
    const held = this.owners.get(ip);
    if (held !== undefined && held !== owner)
      throw new AddressInUseError(`address ${formatIp(ip)} (held by ${held}, wanted by ${owner})`, this.network);
    this.owners.set(ip, owner);
  }

  /** Frees every address. */
  clear(): void {
    this.owners.clear();
    this.cursor = this.first;
  }

  /** Frees an address; returns whether it was allocated. */
  release(ip: number): boolean {
    return this.owners.delete(ip);
  }

  /** Parses an address of this network (plain or CIDR with this subnet's prefix). */
  parseOwn(text: string): number {
    const slash = text.indexOf('/');
    const ip = parseIp(slash < 0 ? text : text.slice(0, slash), `address on network ${this.network}`);
    if (slash >= 0 && text.slice(slash + 1) !== String(this.prefix))
      throw new InvalidAddressError(
        `invalid address ${text} on network ${this.network}: its subnet is ${formatCidr(this.config.subnet)}`,
      );
    if (!contains(this.config.subnet, ip))
      throw new InvalidAddressError(
        `invalid address ${text}: not inside subnet ${formatCidr(this.config.subnet)} of network ${this.network}`,
      );
    if (ip === this.config.subnet.base || ip === lastIp(this.config.subnet) || ip === this.config.gateway)
      throw new InvalidAddressError(
        `invalid address ${text} on network ${this.network}: the network, broadcast or gateway address`,
      );
    return ip;
  }
}
