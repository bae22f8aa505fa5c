/**
 * The embedded DNS server's names: each record is a name, an IPv4 address and the network it is
 * valid on. A container sees only the records of the networks it is on. Names are matched
 * without case and without a trailing dot. The manager/agent fills it: `<service>` -> VIP (or the
 * task addresses with endpoint mode dnsrr), `tasks.<service>` -> task addresses, aliases and
 * hostnames -> the task's address. A network may have a name: `resolve` then also answers
 * `<name>.<network name>` (as Docker's resolver does) for clients on that network. Pure.
 */
import { InvalidDnsNameError } from '../errors.js';
import { parseIp } from '../ipv4.js';

const LABEL = /^[a-z0-9_]([a-z0-9_-]{0,61}[a-z0-9_])?$/;

/** A name in the table's form: lower case, no trailing dot; validated. */
export function normaliseName(name: string): string {
  const n = name.toLowerCase().replace(/\.$/, '');
  if (n === '') throw new InvalidDnsNameError(name, 'empty');
  if (n.length > 253) throw new InvalidDnsNameError(name, 'longer than 253 characters');
  for (const label of n.split('.'))
    if (!LABEL.test(label))
      throw new InvalidDnsNameError(name, `label "${label}" must be 1..63 of letters, digits, '-' or '_'`);
  return n;
}

export class DnsTable {
  /** name -> network -> addresses (in the order added). */
  private readonly byName = new Map<string, Map<string, Set<string>>>();
  /** address -> network -> names (for PTR). */
  private readonly byAddress = new Map<string, Map<string, Set<string>>>();
  /** network -> its name (lower case), for `<name>.<network name>`. */
  private readonly networkNames = new Map<string, string>();

  /** Adds a record; adding it again changes nothing. */
  add(name: string, address: string, network: string): void {
    const n = normaliseName(name);
    parseIp(address, `address of ${name}`);
    put(this.byName, n, network, address);
    put(this.byAddress, address, network, n);
  }

  /** Removes a record; an absent one is fine. */
  remove(name: string, address: string, network: string): void {
    const n = normaliseName(name);
    drop(this.byName, n, network, address);
    drop(this.byAddress, address, network, n);
  }

  /** Names a network (or forgets its name: undefined), so `<name>.<network name>` resolves. */
  setNetworkName(network: string, name: string | undefined): void {
    if (name) this.networkNames.set(network, name.toLowerCase());
    else this.networkNames.delete(network);
  }

  /** Removes every record of a network, and its name (the network is gone from this node). */
  removeNetwork(network: string): void {
    this.networkNames.delete(network);
    for (const index of [this.byName, this.byAddress])
      for (const [key, nets] of index) {
        nets.delete(network);
        if (nets.size === 0) index.delete(key);
      }
  }

  /**
   * The addresses of `name` on the given networks (all networks when undefined), without
   * duplicates; an empty list when the table has no such name there.
   */
  lookup(name: string, networks?: ReadonlySet<string>): string[] {
    return collect(this.byName.get(name.toLowerCase().replace(/\.$/, '')), networks);
  }

  /**
   * What a client on `networks` (all when undefined) gets for `name`, as Docker's resolver
   * answers a container: the name itself on any of them; else, for `a.b.c`, `a.b` on the network
   * named `c`, then `a` on the network named `b.c` (each only when the client is on it).
   */
  resolve(name: string, networks?: ReadonlySet<string>): string[] {
    const n = name.toLowerCase().replace(/\.$/, '');
    const direct = collect(this.byName.get(n), networks);
    if (direct.length > 0 || this.networkNames.size === 0) return direct;
    for (let dot = n.lastIndexOf('.'); dot > 0; dot = n.lastIndexOf('.', dot - 1)) {
      const nets = this.named(n.slice(dot + 1), networks);
      if (nets.size === 0) continue;
      const found = collect(this.byName.get(n.slice(0, dot)), nets);
      if (found.length > 0) return found;
    }
    return [];
  }

  /** The networks called `name` among `networks` (all when undefined). */
  private named(name: string, networks?: ReadonlySet<string>): Set<string> {
    const out = new Set<string>();
    for (const [id, n] of this.networkNames) if (n === name && (!networks || networks.has(id))) out.add(id);
    return out;
  }

  /** The names of an address on the given networks (for PTR queries). */
  reverse(address: string, networks?: ReadonlySet<string>): string[] {
    return collect(this.byAddress.get(address), networks);
  }

  /** The number of records. */
  get size(): number {
    let n = 0;
    for (const nets of this.byName.values()) for (const s of nets.values()) n += s.size;
    return n;
  }
}

function put(index: Map<string, Map<string, Set<string>>>, key: string, network: string, value: string): void {
  let nets = index.get(key);
  if (!nets) index.set(key, (nets = new Map<string, Set<string>>()));
  let values = nets.get(network);
  if (!values) nets.set(network, (values = new Set<string>()));
  values.add(value);
}

function drop(index: Map<string, Map<string, Set<string>>>, key: string, network: string, value: string): void {
  const nets = index.get(key);
  const values = nets?.get(network);
  if (!nets || !values) return;
  values.delete(value);
  if (values.size === 0) nets.delete(network);
  if (nets.size === 0) index.delete(key);
}

function collect(nets: Map<string, Set<string>> | undefined, networks?: ReadonlySet<string>): string[] {
  if (!nets) return [];
  const out = new Set<string>();
  for (const [network, values] of nets) if (!networks || networks.has(network)) for (const v of values) out.add(v);
  return [...out];
}
