export * from './errors.js';
export {
  parseIp,
  formatIp,
  parseCidr,
  formatCidr,
  overlaps,
  contains,
  containsCidr,
  lastIp,
  prefixSize,
  type Cidr,
} from './ipv4.js';
export { AddressPool, DEFAULT_ADDR_POOL, DEFAULT_SUBNET_SIZE, MAX_SUBNET_SIZE } from './address-pool.js';
export { SubnetAddresses, subnetConfig, type SubnetConfig } from './subnet-addresses.js';
export { VniSet, VNI_MIN, VNI_MAX, VXLAN_ID_OPTION } from './vni.js';
export {
  NetworkAllocator,
  taskOwner,
  vipOwner,
  type NetworkAllocatorOptions,
  type AllocatorObjects,
  type RestoreSummary,
} from './allocator.js';
export { macFromIp } from './mac.js';
export { NetlinkCli } from './netlink-cli.js';
export { runInNetns, netnsShellScript, type NetnsScript } from './netns-script.js';
export {
  OverlayDataPlane,
  vethName,
  VXLAN_PORT,
  VXLAN_OVERHEAD,
  type OverlayNodeOptions,
  type OverlayNetworkSpec,
  type OverlayPeer,
  type AttachRequest,
  type Attachment,
} from './overlay.js';
export { checkEncryptionSupport, requireEncryptionSupportFor, ENCRYPTED_OPTION } from './encryption.js';
export {
  RR_TYPE,
  RCODE,
  UDP_LIMIT,
  parseQuery,
  encodeQuery,
  encodeResponse,
  parseResponse,
  type DnsQuery,
  type DnsQuestion,
  type DnsAnswer,
  type DnsResponse,
} from './dns/dns-message.js';
export { DnsTable, normaliseName } from './dns/dns-table.js';
export {
  EmbeddedDnsServer,
  DNS_TTL,
  MAX_UPSTREAMS,
  FORWARD_TIMEOUT_MS,
  TCP_IDLE_MS,
  parseUpstream,
  type DnsServerOptions,
  type DnsClient,
  type DnsTransport,
} from './dns/dns-server.js';
export { TcpFramer, frame as frameTcpMessage, askOverTcp, TCP_MESSAGE_MAX } from './dns/dns-tcp.js';
export { ThreadedDnsServer, type ThreadedDnsOptions } from './dns/dns-thread.js';
export type { DnsThreadRecord } from './dns/dns-thread-messages.js';
export {
  GatewayBridge,
  gwVethName,
  GWBRIDGE_NAME,
  GWBRIDGE_TABLE,
  DEFAULT_GWBRIDGE_SUBNET,
  type GatewayBridgeOptions,
  type GatewayAttachRequest,
  type GatewayAttachment,
} from './gateway-bridge.js';
export { NftHelper, defaultNftHelperPath, spawnNft, type NftRunner, type NftHelperOptions } from './nft-helper.js';
export { VipBalancer, vipRules, VIP_TABLE, type VipService } from './vip-balancer.js';
export { SerialQueue } from './serial-queue.js';
export {
  EMBEDDED_DNS_ADDRESS,
  DNS_REDIRECT_TABLE,
  dnsRedirectRules,
  installDnsRedirect,
  removeDnsRedirect,
  resolvConfNameservers,
  containerResolvConf,
  type DnsRedirect,
} from './dns/dns-redirect.js';
export {
  PortPublisher,
  publishedPortRules,
  PORTS_TABLE,
  type PublishedPort,
  type PublishOptions,
} from './published-ports.js';
