/**
 * @module @shoal/ca
 * The cluster's certificate authority and node identity: root CA (self-signed or external),
 * node certificates from CSRs with the identity the CA decides (CN node ID, OU role, O cluster),
 * renewal timing, join tokens (`SWMTKN-1-...`), verification of peers, mutual-TLS settings,
 * key storage on disk, and autolock (unlock key, wrapped DEK, record cipher for the Raft WAL).
 *
 * ```ts
 * import { RootCA, createCsr, generateNodeKey, newJoinTokens, checkJoinToken } from '@shoal/ca';
 * const root = await RootCA.create();
 * const tokens = newJoinTokens(root.digest);
 * const key = generateNodeKey();
 * const role = checkJoinToken(tokens.worker, tokens, root.digest);
 * const { certPem } = await root.issue(await createCsr(key), { nodeId, role, clusterId });
 * ```
 */
export * from './errors.js';
export * from './roles.js';
export {
  JOIN_TOKEN_PREFIX,
  CA_DIGEST_LENGTH,
  TOKEN_SECRET_LENGTH,
  caDigestOfDer,
  newTokenSecret,
  formatJoinToken,
  parseJoinToken,
  newJoinTokens,
  rotateJoinTokens,
  roleForJoinToken,
  checkJoinToken,
  type ParsedJoinToken,
  type JoinTokens,
} from './join-token.js';
export { generateNodeKey, privateKeyToPem, privateKeyFromPem, spkiDer } from './keys.js';
export { createCsr, verifyCsr, type VerifiedCsr } from './csr.js';
export {
  RootCA,
  checkCertExpiry,
  newNodeId,
  newClusterId,
  ROOT_CA_VALIDITY_MS,
  DEFAULT_NODE_CERT_EXPIRY_MS,
  MIN_NODE_CERT_EXPIRY_MS,
  NODE_CERT_BACKDATE_MS,
  ROOT_CA_CN,
  type IssueOptions,
  type IssuedCertificate,
} from './root-ca.js';
export {
  verifyNodeCertificate,
  identifyTlsPeer,
  identityOf,
  peerCertificateChain,
  subjectAttributes,
  type VerifyOptions,
} from './verify.js';
export {
  renewalTime,
  renewalDelay,
  isRenewalDue,
  CertRenewer,
  RENEW_MIN_FRACTION,
  RENEW_MAX_FRACTION,
  type Validity,
  type CertRenewerOptions,
} from './renewal.js';
export {
  UnlockKey,
  UNLOCK_KEY_PREFIX,
  formatUnlockKey,
  generateDek,
  wrapDek,
  unwrapDek,
  rewrapDek,
  sealWithUnlockKey,
  openWithUnlockKey,
  DekCipher,
  type RecordCipherLike,
} from './autolock.js';
export {
  NodeKeyStore,
  encodeKeyFile,
  decodeKeyFile,
  isLockedKeyFile,
  KEY_FILE,
  CERT_FILE,
  ROOT_FILE,
  KEY_MODE,
  CERT_MODE,
  DIR_MODE,
  type NodeKeyMaterial,
} from './key-store.js';
export { writeFileAtomic, ensurePrivateDir } from './atomic-file.js';
export {
  TLS_MIN_VERSION,
  parseRoots,
  serverTlsOptions,
  clientTlsOptions,
  nodeServerIdentityCheck,
  bootstrapClientTlsOptions,
  checkRootAgainstToken,
  joinerClientTlsOptions,
  grpcServerCredentialsArgs,
  grpcClientCredentialsArgs,
  type NodeTlsMaterial,
} from './tls.js';
export {
  NodeCertificateProvider,
  identifyGrpcPeer,
  type CaCertificateUpdate,
  type IdentityCertificateUpdate,
} from './grpc-certs.js';
export { issueForJoin, type JoinPolicy, type JoinRequest } from './join-request.js';
