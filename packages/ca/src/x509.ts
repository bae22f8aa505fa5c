/**
 * The one place that loads @peculiar/x509: it needs a Reflect metadata polyfill (its dependency
 * tsyringe checks for one at import) and a WebCrypto provider, which is Node's own.
 */
import 'reflect-metadata';
import { webcrypto } from 'node:crypto';
import * as x509 from '@peculiar/x509';

x509.cryptoProvider.set(webcrypto as unknown as Parameters<typeof x509.cryptoProvider.set>[0]);

export { x509 };
