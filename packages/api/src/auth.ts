import {
  ServerInterceptingCall,
  type Metadata,
  type ServerInterceptingCallInterface,
  type ServerInterceptor,
} from '@grpc/grpc-js';
import type { PeerCertificate } from 'node:tls';
import { ShoalError } from '@shoal/common';
import { toStatusObject } from './errors.js';
import { methodRoles, mayCall, type CallerRole } from './roles.js';

/** What an auth interceptor knows about a call when it decides the caller's role. */
export interface CallIdentity {
  /** The gRPC method path, `/shoal.Control/GetNode`. */
  path: string;
  /** The client's TLS certificate, when it presented one (mTLS). */
  peerCertificate: PeerCertificate | undefined;
  /** The peer address as grpc-js reports it (`ipv4:198.18.0.2:41234`, `unix:...`). */
  peer: string;
  metadata: Metadata;
}

/** The thrown (and sent) error when a caller's role may not call a method. */
export class PermissionDeniedError extends ShoalError {
  constructor(message: string) {
    super('API_PERMISSION_DENIED', message, { kind: 'permission-denied' });
  }
}

function denial(path: string, role: CallerRole | undefined): PermissionDeniedError {
  const roles = methodRoles(path);
  if (roles === undefined) return new PermissionDeniedError(`permission denied: ${path} is not a Shoal RPC`);
  const who = role === undefined ? 'a caller without a certificate' : `a ${role}`;
  return new PermissionDeniedError(`permission denied: ${path} may be called by ${roles.join(' or ')}, not by ${who}`);
}

function peerCertificateOf(call: ServerInterceptingCallInterface): PeerCertificate | undefined {
  const cert = call.getAuthContext().sslPeerCertificate;
  // Node reports "no certificate" as an empty object.
  return cert && Object.keys(cert).length > 0 ? cert : undefined;
}

/**
 * A grpc-js server interceptor that enforces the roles every RPC declares in proto/ (METHOD_ROLES):
 * `resolveRole` says who the caller is (from its certificate, or `local` on the unix socket;
 * undefined for no certificate), and a call whose role is not allowed ends with
 * permission-denied before its handler runs. Unknown methods are refused too.
 * `new Server({ interceptors: [authInterceptor(resolve)] })`.
 */
export function authInterceptor(resolveRole: (identity: CallIdentity) => CallerRole | undefined): ServerInterceptor {
  return (method, call) =>
    new ServerInterceptingCall(call, {
      start: (next) => {
        next({
          onReceiveMetadata: (metadata, nextMetadata) => {
            let role: CallerRole | undefined;
            try {
              role = resolveRole({
                path: method.path,
                peerCertificate: peerCertificateOf(call),
                peer: call.getPeer(),
                metadata,
              });
            } catch (err) {
              call.sendStatus(toStatusObject(err));
              return;
            }
            if (mayCall(method.path, role)) nextMetadata(metadata);
            else call.sendStatus(toStatusObject(denial(method.path, role)));
          },
        });
      },
    });
}
