/**
 * Whether this kernel can encrypt overlay traffic: IPsec ESP in transport mode with AES-GCM
 * (`rfc4106(gcm(aes))`), as Docker's encrypted overlays use. Probed for real: an ESP security
 * association is added in a throwaway network namespace (so nothing lands in the node's own
 * XFRM tables), and the namespace is deleted. Without it `--opt encrypted` is refused; a network
 * is never silently left unencrypted.
 */
import { existsSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import type { NetworkSpec } from '@shoal/api';
import { run } from '@shoal/common';
import { EncryptionUnsupportedError } from './errors.js';

/** The driver option that asks for an encrypted overlay (`--opt encrypted`). */
export const ENCRYPTED_OPTION = 'encrypted';

let cached: Promise<void> | undefined;

/** Resolves when the kernel has ESP with AES-GCM; else rejects with EncryptionUnsupportedError. */
export function checkEncryptionSupport(): Promise<void> {
  cached ??= probe().catch((err: unknown) => {
    // Only the kernel's answer is kept; a failure to ask (ip missing, netns busy) is asked again.
    if (!(err instanceof EncryptionUnsupportedError)) cached = undefined;
    throw err;
  });
  return cached;
}

/** Refuses a network spec asking for encryption on a kernel that cannot do it. */
export async function requireEncryptionSupportFor(spec: NetworkSpec): Promise<void> {
  const opts = spec.DriverConfiguration?.Options ?? {};
  if (Object.hasOwn(opts, ENCRYPTED_OPTION)) await checkEncryptionSupport();
}

async function probe(): Promise<void> {
  if (!existsSync('/proc/net/xfrm_stat'))
    throw new EncryptionUnsupportedError('no XFRM (IPsec) framework: /proc/net/xfrm_stat is missing (CONFIG_XFRM)');
  const ns = `shoal-xfrm-probe-${randomBytes(4).toString('hex')}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    const key = `0x${randomBytes(20).toString('hex')}`; // 16-byte AES key + 4-byte salt
    const r = await run(
      'ip',
      [
        '-n',
        ns,
        'xfrm',
        'state',
        'add',
        'src',
        '127.0.0.1',
        'dst',
        '127.0.0.1',
        'proto',
        'esp',
        'spi',
        '0x00000100',
        'reqid',
        '1',
        'mode',
        'transport',
        'aead',
        'rfc4106(gcm(aes))',
        key,
        '64',
      ],
      { check: false },
    );
    if (r.code !== 0)
      throw new EncryptionUnsupportedError(
        `adding an ESP state failed: ${r.stderr.trim().split('\n').pop() ?? `exit ${r.code}`}`,
      );
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
}
