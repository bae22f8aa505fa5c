/**
 * The seam to `packages/manager` (wave2-common.md): `new Manager({ nodeId, store, raft, rootCA,
 * logger })` with `services()`, `bootstrapCluster(opts)`, `start()`, `stop()`, `isLeader()`.
 * The daemon loads it at run time so that it builds and runs (Swarm, Raft, Health) before the
 * manager package is in the tree; without it a manager serves no Control, CA or Dispatcher.
 */
import type { UntypedServiceImplementation } from '@grpc/grpc-js';
import type { Logger } from '@shoal/common';
import type { RootCA } from '@shoal/ca';
import type { RaftNode } from '@shoal/raft';
import type { ClusterStore } from '@shoal/store';

export interface ManagerServices {
  Control?: UntypedServiceImplementation;
  CA?: UntypedServiceImplementation;
  Dispatcher?: UntypedServiceImplementation;
  RaftMembership?: UntypedServiceImplementation;
}

export interface BootstrapClusterOptions {
  clusterId: string;
  nodeId: string;
  hostname: string;
  advertiseAddr: string;
  autolock: boolean;
  unlockKey?: string;
  spec?: unknown;
  availability?: string;
  defaultAddrPool?: string[];
  subnetSize?: number;
}

export interface ManagerLike {
  services(): ManagerServices;
  bootstrapCluster(opts: BootstrapClusterOptions): Promise<unknown>;
  start(): Promise<void> | void;
  stop(): Promise<void> | void;
  isLeader(): boolean;
}

export interface ManagerFactoryOptions {
  nodeId: string;
  store: ClusterStore;
  raft: RaftNode;
  rootCA: RootCA;
  logger: Logger;
  advertiseAddr: string;
}

export type ManagerFactory = (opts: ManagerFactoryOptions) => ManagerLike;

/** The Manager class of @shoal/manager, or undefined when that package is not installed. */
export async function loadManagerFactory(log: Logger): Promise<ManagerFactory | undefined> {
  const specifier = '@shoal/manager';
  try {
    const mod = (await import(specifier)) as { Manager?: new (opts: ManagerFactoryOptions) => ManagerLike };
    if (typeof mod.Manager !== 'function') return undefined;
    const M = mod.Manager;
    return (opts) => new M(opts);
  } catch (err) {
    if ((err as { code?: string }).code === 'ERR_MODULE_NOT_FOUND') {
      log.warn('@shoal/manager is not installed: this manager serves Swarm, Raft and Health only');
      return undefined;
    }
    throw err;
  }
}
