/**
 * Typed errors of @shoal/network. Every class carries a stable `code` (documented in
 * docs/network.md) and a `kind`; callers and boundaries switch on those, never on the text.
 */
import { ShoalError, type ErrorKind } from '@shoal/common';

/** Base class of every error thrown on purpose by @shoal/network. */
export class NetworkError extends ShoalError {
  constructor(code: string, message: string, kind: ErrorKind, options?: { cause?: unknown }) {
    super(code, message, { ...options, kind });
  }
}

/** A CIDR, address, range, pool or mask length that does not parse or does not fit. */
export class InvalidAddressError extends NetworkError {
  constructor(reason: string) {
    super('NETWORK_INVALID_ADDRESS', reason, 'invalid-argument');
  }
}

/** A requested subnet overlaps one a network already has (or two cluster pools overlap). */
export class SubnetOverlapError extends NetworkError {
  constructor(subnet: string, other: string, owner: string) {
    super('NETWORK_SUBNET_OVERLAP', `subnet ${subnet} overlaps ${other} of ${owner}`, 'already-exists');
  }
}

/** Every subnet of the cluster's address pools is taken. */
export class PoolExhaustedError extends NetworkError {
  constructor(pools: readonly string[], size: number) {
    super(
      'NETWORK_POOL_EXHAUSTED',
      `no free /${size} subnet left in the address pool ${pools.join(', ')} ` +
        '(remove networks, or give the network a --subnet outside the pool)',
      'failed-precondition',
    );
  }
}

/** Every address of a network's range is taken. */
export class AddressesExhaustedError extends NetworkError {
  constructor(network: string, range: string) {
    super(
      'NETWORK_ADDRESSES_EXHAUSTED',
      `no free address left in ${range} of network ${network}`,
      'failed-precondition',
    );
  }
}

/** A specific address (or VNI) that is already allocated. */
export class AddressInUseError extends NetworkError {
  constructor(what: string, network: string) {
    super('NETWORK_ADDRESS_IN_USE', `${what} is already allocated on network ${network}`, 'already-exists');
  }
}

/** A network id the allocator or the data plane does not know. */
export class NetworkNotFoundError extends NetworkError {
  constructor(id: string) {
    super('NETWORK_NOT_FOUND', `network ${id} not found (not allocated)`, 'not-found');
  }
}

/** A VXLAN id that is not a number in 4096..16777215. */
export class InvalidVniError extends NetworkError {
  constructor(reason: string) {
    super('NETWORK_INVALID_VNI', reason, 'invalid-argument');
  }
}

/** A requested VXLAN id another network has. */
export class VniInUseError extends NetworkError {
  constructor(vni: number, network: string) {
    super('NETWORK_VNI_IN_USE', `network ${network}: VXLAN id ${vni} is already in use`, 'already-exists');
  }
}

/** Every VXLAN id 4096..16777215 is taken. */
export class VniExhaustedError extends NetworkError {
  constructor(first: number, last: number) {
    super('NETWORK_VNI_EXHAUSTED', `no free VXLAN id left (${first}..${last})`, 'failed-precondition');
  }
}

/** Store objects that contradict each other (two owners of one address) while rebuilding state. */
export class RestoreConflictError extends NetworkError {
  constructor(reason: string) {
    super('NETWORK_RESTORE_CONFLICT', `cannot rebuild network allocations from the store: ${reason}`, 'internal');
  }
}

/** `--opt encrypted` on a kernel without IPsec ESP: refused, never silently unencrypted. */
export class EncryptionUnsupportedError extends NetworkError {
  constructor(detail: string) {
    super(
      'NETWORK_ENCRYPTION_UNSUPPORTED',
      'encrypted overlay networks (--opt encrypted) need IPsec ESP with AES-GCM (rfc4106(gcm(aes))) ' +
        `in the kernel (CONFIG_INET_ESP, CONFIG_CRYPTO_GCM), which this kernel lacks: ${detail}`,
      'failed-precondition',
    );
  }
}

/** An `ip`/`bridge` command of the data plane failed. */
export class DataPlaneError extends NetworkError {
  constructor(what: string, options?: { cause?: unknown }) {
    super('NETWORK_DATAPLANE', what, 'internal', options);
  }
}

/** A DNS name that is not a valid host name (labels of 1..63 letters, digits, '-' or '_'; 253 in all). */
export class InvalidDnsNameError extends NetworkError {
  constructor(name: string, reason: string) {
    super('NETWORK_INVALID_DNS_NAME', `invalid DNS name "${name}": ${reason}`, 'invalid-argument');
  }
}

/** A DNS message that does not parse (the server answers FORMERR). */
export class DnsFormatError extends NetworkError {
  constructor(reason: string) {
    super('NETWORK_DNS_FORMAT', `malformed DNS message: ${reason}`, 'invalid-argument');
  }
}
