/**
 * `npm run bench -- ca`: costs of the CA operations a cluster does often, with real crypto.
 * Ends with one JSON line of named figures.
 */
import { X509Certificate } from 'node:crypto';
import { performance } from 'node:perf_hooks';
import { DekCipher, UnlockKey, generateDek } from '../autolock.js';
import { createCsr } from '../csr.js';
import { newJoinTokens, roleForJoinToken } from '../join-token.js';
import { decodeKeyFile, encodeKeyFile } from '../key-store.js';
import { generateNodeKey } from '../keys.js';
import { RootCA, newClusterId, newNodeId } from '../root-ca.js';
import { verifyNodeCertificate } from '../verify.js';

async function timeEach(n: number, fn: () => unknown): Promise<number> {
  const start = performance.now();
  for (let i = 0; i < n; i++) await fn();
  return (performance.now() - start) / n;
}

const round = (x: number, d = 3) => Number(x.toFixed(d));

const root = await RootCA.create();
const clusterId = newClusterId();
const rootCreateMs = await timeEach(20, () => RootCA.create());
const key = generateNodeKey();
const csrMs = await timeEach(100, () => createCsr(key));
const csr = await createCsr(key);
const issueMs = await timeEach(100, () => root.issue(csr, { nodeId: newNodeId(), role: 'worker', clusterId }));
const { certPem } = await root.issue(csr, { nodeId: newNodeId(), role: 'manager', clusterId });
const cert = new X509Certificate(certPem);
const roots = root.trustedRoots();
const verifyUs = 1000 * (await timeEach(2000, () => verifyNodeCertificate([cert], roots, { roles: ['manager'] })));
const tokens = newJoinTokens(root.digest);
const tokenCheckUs = 1000 * (await timeEach(20000, () => roleForJoinToken(tokens.manager, tokens, root.digest)));
const unlock = UnlockKey.generate();
const locked = encodeKeyFile({ key, dek: generateDek() }, unlock);
const unlockMs = await timeEach(200, () => decodeKeyFile(locked, unlock));

const cipher = new DekCipher(generateDek());
const record = Buffer.alloc(4096, 7);
const n = 20000;
let t = performance.now();
const sealed: Uint8Array[] = [];
for (let i = 0; i < n; i++) sealed.push(cipher.seal(record));
const sealMBs = (n * record.length) / 1e6 / ((performance.now() - t) / 1000);
t = performance.now();
for (const s of sealed) cipher.open(s);
const openMBs = (n * record.length) / 1e6 / ((performance.now() - t) / 1000);

const figures = {
  root_create_ms: round(rootCreateMs),
  csr_create_ms: round(csrMs),
  issue_cert_ms: round(issueMs),
  verify_peer_us: round(verifyUs, 1),
  join_token_check_us: round(tokenCheckUs, 2),
  unlock_key_file_ms: round(unlockMs),
  dek_seal_4k_mb_s: round(sealMBs, 0),
  dek_open_4k_mb_s: round(openMBs, 0),
};
console.log('issue = CSR verify + sign; verify = chain + validity + subject; DEK records 4 KiB, AES-256-GCM');
console.log(JSON.stringify(figures));
