// The encryption probe against the kernel itself: `checkEncryptionSupport` must agree with an
// independent attempt to add an ESP AES-GCM state, and when the kernel lacks it the refusal names
// the missing feature. Runs as root; the namespaces it makes are removed.
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { readdirSync } from 'node:fs';
import { randomBytes } from 'node:crypto';
import { run } from '@shoal/common';
import { EncryptionUnsupportedError, checkEncryptionSupport, requireEncryptionSupportFor } from './index.js';

async function kernelHasEspGcm(): Promise<boolean> {
  const ns = `shoal-nwt-xfrm-${randomBytes(3).toString('hex')}`;
  await run('ip', ['netns', 'add', ns]);
  try {
    const r = await run(
      'ip',
      [
        '-n',
        ns,
        'xfrm',
        'state',
        'add',
        'src',
        '127.0.0.2',
        'dst',
        '127.0.0.3',
        'proto',
        'esp',
        'spi',
        '0x42',
        'mode',
        'transport',
        'aead',
        'rfc4106(gcm(aes))',
        `0x${'ab'.repeat(20)}`,
        '128',
      ],
      { check: false },
    );
    return r.code === 0;
  } finally {
    await run('ip', ['netns', 'del', ns]);
  }
}

test('--opt encrypted is refused exactly when the kernel has no ESP with AES-GCM, naming it', async () => {
  const supported = await kernelHasEspGcm();
  const plain = { Name: 'n', DriverConfiguration: { Name: 'overlay' } };
  const encrypted = { Name: 'n', DriverConfiguration: { Name: 'overlay', Options: { encrypted: '' } } };
  await requireEncryptionSupportFor(plain); // no encryption asked: never refused
  if (supported) {
    await checkEncryptionSupport();
    await requireEncryptionSupportFor(encrypted);
  } else {
    for (const attempt of [checkEncryptionSupport(), requireEncryptionSupportFor(encrypted)])
      await assert.rejects(
        attempt,
        (err: unknown) =>
          err instanceof EncryptionUnsupportedError &&
          err.code === 'NETWORK_ENCRYPTION_UNSUPPORTED' &&
          err.kind === 'failed-precondition' &&
          /IPsec ESP/.test(err.message) &&
          /rfc4106\(gcm\(aes\)\)/.test(err.message) &&
          /CONFIG_INET_ESP/.test(err.message),
      );
  }
  assert.deepEqual(
    readdirSync('/run/netns').filter((n) => n.startsWith('shoal-xfrm-probe-')),
    [],
    'probe namespace left behind',
  );
});
