import type { ServiceDefinition } from '@grpc/grpc-js';
import { METHOD_ROLES } from './gen/roles.js';
import { CAService } from './gen/shoal/ca.js';
import { ControlService } from './gen/shoal/control.js';
import { DispatcherService } from './gen/shoal/dispatcher.js';
import { HealthService } from './gen/shoal/health.js';
import { LogBrokerService } from './gen/shoal/logbroker.js';
import { RaftMembershipService, RaftService } from './gen/shoal/raft.js';
import { SwarmService } from './gen/shoal/swarm.js';

/**
 * Who may call an RPC, as declared by `option (shoal.roles)` in proto/:
 * - `manager`, `worker`: a node whose certificate carries that role;
 * - `local`: a caller on the daemon's root-only unix socket (the CLI);
 * - `anonymous`: anyone, with or without a client certificate (joining nodes).
 */
export type CallerRole = 'manager' | 'worker' | 'local';
export type Role = CallerRole | 'anonymous';
export const ROLES: readonly Role[] = ['manager', 'worker', 'local', 'anonymous'];

/** Every gRPC service of Shoal by its full name, as grpc-js definitions. */
export const SERVICES = {
  'shoal.Control': ControlService,
  'shoal.Dispatcher': DispatcherService,
  'shoal.LogBroker': LogBrokerService,
  'shoal.CA': CAService,
  'shoal.RaftMembership': RaftMembershipService,
  'shoal.Raft': RaftService,
  'shoal.Health': HealthService,
  'shoal.Swarm': SwarmService,
} as const satisfies Record<string, ServiceDefinition>;

/** The roles declared for a method path (`/shoal.Control/GetNode`); undefined if unknown. */
export function methodRoles(path: string): readonly Role[] | undefined {
  return Object.hasOwn(METHOD_ROLES, path) ? (METHOD_ROLES[path] as readonly Role[]) : undefined;
}

/**
 * Whether a caller may call a method: `role` is what its certificate says, `local` for the
 * unix socket, undefined for a caller without a certificate. Unknown methods are refused.
 */
export function mayCall(path: string, role: CallerRole | undefined): boolean {
  const roles = methodRoles(path);
  if (roles === undefined) return false;
  if (roles.includes('anonymous')) return true;
  return role !== undefined && roles.includes(role);
}
