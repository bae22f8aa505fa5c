/** Helpers shared by this package's tests (not exported from index.ts). */
import { type KeyObject, webcrypto } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import type { Clock } from '@shoal/common';
import { createCsr } from './csr.js';
import { generateNodeKey, signingParams, toCryptoKeyPair } from './keys.js';
import { type RootCA, newClusterId, newNodeId } from './root-ca.js';
import type { NodeRole } from './roles.js';
import { x509 } from './x509.js';

export async function tempDir(t: { after: (fn: () => Promise<void>) => void }, prefix: string): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), `shoal-ca-${prefix}-`));
  t.after(() => rm(dir, { recursive: true, force: true }));
  return dir;
}

/** A node key and its certificate from `root`. */
export async function issueNode(
  root: RootCA,
  role: NodeRole,
  opts: { clusterId?: string; nodeId?: string; now?: number; expiryMs?: number } = {},
): Promise<{ key: KeyObject; certPem: string; nodeId: string; clusterId: string }> {
  const key = generateNodeKey();
  const nodeId = opts.nodeId ?? newNodeId();
  const clusterId = opts.clusterId ?? newClusterId();
  const { certPem } = await root.issue(await createCsr(key), {
    nodeId,
    role,
    clusterId,
    now: opts.now,
    expiryMs: opts.expiryMs,
  });
  return { key, certPem, nodeId, clusterId };
}

/** A self-signed leaf that claims to be a manager of `clusterId`. */
export async function selfSignedNodeCert(clusterId: string): Promise<{ key: KeyObject; certPem: string }> {
  const key = generateNodeKey();
  const cert = await x509.X509CertificateGenerator.createSelfSigned({
    name: [{ O: [clusterId] }, { OU: ['swarm-manager'] }, { CN: [newNodeId()] }],
    keys: await toCryptoKeyPair(key),
    signingAlgorithm: signingParams(key).signingAlgorithm,
    notBefore: new Date(Date.now() - 3600_000),
    notAfter: new Date(Date.now() + 3600_000),
    extensions: [
      new x509.BasicConstraintsExtension(false, undefined, true),
      new x509.ExtendedKeyUsageExtension([x509.ExtendedKeyUsage.serverAuth, x509.ExtendedKeyUsage.clientAuth]),
    ],
  });
  return { key, certPem: cert.toString('pem') };
}

/** A clock whose time moves only by advance(). */
export class FakeClock implements Clock {
  private t: number;
  private timers: { at: number; fn: () => void; id: number }[] = [];
  private nextId = 0;
  constructor(start: number) {
    this.t = start;
  }
  now(): number {
    return this.t;
  }
  setTimeout(fn: () => void, ms: number): { cancel(): void } {
    const id = this.nextId++;
    this.timers.push({ at: this.t + ms, fn, id });
    return { cancel: () => (this.timers = this.timers.filter((x) => x.id !== id)) };
  }
  /** Pending timer deadlines. */
  pending(): number[] {
    return this.timers.map((x) => x.at).sort((a, b) => a - b);
  }
  /** Moves time forward by `ms`, firing due timers in order. */
  advance(ms: number): void {
    const end = this.t + ms;
    for (;;) {
      const due = this.timers.filter((x) => x.at <= end).sort((a, b) => a.at - b.at)[0];
      if (!due) break;
      this.timers = this.timers.filter((x) => x.id !== due.id);
      this.t = Math.max(this.t, due.at);
      due.fn();
    }
    this.t = end;
  }
}

export { webcrypto };
