/**
 * The CLI's connection to the local shoald: its root-only unix socket (`-H unix:///PATH`,
 * `SHOAL_HOST`, default /run/shoal/shoal.sock), with api's generated Swarm and Control clients.
 * Every call goes through api's `unary` (errors rebuilt as ShoalErrors); a socket nobody serves
 * becomes one DaemonUnreachableError line, as docker's "Cannot connect to the Docker daemon".
 */
import { accessSync, constants, statSync } from 'node:fs';
import { credentials } from '@grpc/grpc-js';
import {
  ControlClient,
  SwarmClient,
  unary,
  type CallSettings,
  type CreateConfigRequest,
  type CreateConfigResponse,
  type DeployStackRequest,
  type DeployStackResponse,
  type CreateNetworkRequest,
  type CreateNetworkResponse,
  type CreateSecretRequest,
  type CreateSecretResponse,
  type CreateServiceRequest,
  type CreateServiceResponse,
  type GetConfigRequest,
  type GetConfigResponse,
  type GetSecretRequest,
  type GetSecretResponse,
  type GetServiceRequest,
  type GetServiceResponse,
  type GetTaskRequest,
  type GetTaskResponse,
  type ListConfigsRequest,
  type ListConfigsResponse,
  type ListNetworksRequest,
  type ListNetworksResponse,
  type ListSecretsRequest,
  type ListSecretsResponse,
  type ListServicesRequest,
  type ListServicesResponse,
  type RemoveConfigRequest,
  type RemoveConfigResponse,
  type RemoveNetworkRequest,
  type RemoveNetworkResponse,
  type RemoveSecretRequest,
  type RemoveSecretResponse,
  type RemoveServiceRequest,
  type RemoveServiceResponse,
  type UpdateServiceRequest,
  type UpdateServiceResponse,
  type GetClusterRequest,
  type GetClusterResponse,
  type GetNodeRequest,
  type GetNodeResponse,
  type GetUnlockKeyRequest,
  type GetUnlockKeyResponse,
  type ListNodesRequest,
  type ListNodesResponse,
  type ListTasksRequest,
  type ListTasksResponse,
  type RemoveNodeRequest,
  type RemoveNodeResponse,
  type SwarmInfo,
  type SwarmInfoRequest,
  type SwarmInitRequest,
  type SwarmInitResponse,
  type SwarmJoinRequest,
  type SwarmJoinResponse,
  type SwarmLeaveRequest,
  type SwarmLeaveResponse,
  type SwarmUnlockRequest,
  type SwarmUnlockResponse,
  type LocalAttachNetworkRequest,
  type LocalAttachNetworkResponse,
  type LocalDetachNetworkRequest,
  type LocalDetachNetworkResponse,
  type LocalContainerNetworksRequest,
  type LocalContainerNetworksResponse,
  type UpdateClusterRequest,
  type UpdateClusterResponse,
  type UpdateNodeRequest,
  type UpdateNodeResponse,
} from '@shoal/api';
import { InvalidArgumentError, ShoalError, errnoCode } from '@shoal/common';

export const DEFAULT_DAEMON_SOCKET = '/run/shoal/shoal.sock';

/** No daemon answers on the socket (absent, refused, or not a socket). */
export class DaemonUnreachableError extends ShoalError {
  constructor(readonly host: string) {
    super('CLI_DAEMON_UNREACHABLE', `Cannot connect to the Shoal daemon at ${host}. Is shoald running?`, {
      kind: 'unavailable',
      retryable: true,
    });
  }
}

/** The socket exists but this user may not open it (it is root-only). */
export class DaemonPermissionError extends ShoalError {
  constructor(readonly host: string) {
    super(
      'CLI_DAEMON_PERMISSION_DENIED',
      `permission denied while trying to connect to the Shoal daemon socket at ${host} (it is root-only)`,
      { kind: 'permission-denied' },
    );
  }
}

/**
 * The socket path of `-H`/`SHOAL_HOST`: `unix:///abs/path` (or a bare absolute path). Anything
 * else (tcp://, a relative path) is refused: the cluster port 2377 is not the CLI's.
 */
export function socketPathOf(host: string | undefined): string {
  const h = host === undefined || host === '' ? `unix://${DEFAULT_DAEMON_SOCKET}` : host;
  const path = h.startsWith('unix://') ? h.slice('unix://'.length) : h;
  if (!path.startsWith('/') || /^[a-z][a-z0-9+.-]*:\/\//i.test(h.replace(/^unix:\/\//, ''))) {
    throw new InvalidArgumentError(
      `invalid daemon host ${JSON.stringify(h)}: expected unix:///absolute/path/to/shoal.sock (only unix sockets are supported)`,
    );
  }
  return path;
}

/** The host to use: the flag, else $SHOAL_HOST, else the default socket. */
export function daemonHost(flag: string | undefined, env: NodeJS.ProcessEnv = process.env): string {
  const h = flag ?? env['SHOAL_HOST'];
  return `unix://${socketPathOf(h === '' ? undefined : h)}`;
}

type Unary<Req, Res> = (req: Req, settings?: CallSettings) => Promise<Res>;

/** The daemon's local Swarm service, promise-returning. */
export interface SwarmCalls {
  init: Unary<SwarmInitRequest, SwarmInitResponse>;
  join: Unary<SwarmJoinRequest, SwarmJoinResponse>;
  leave: Unary<SwarmLeaveRequest, SwarmLeaveResponse>;
  unlock: Unary<SwarmUnlockRequest, SwarmUnlockResponse>;
  info: Unary<SwarmInfoRequest, SwarmInfo>;
  attachNetwork: Unary<LocalAttachNetworkRequest, LocalAttachNetworkResponse>;
  detachNetwork: Unary<LocalDetachNetworkRequest, LocalDetachNetworkResponse>;
  containerNetworks: Unary<LocalContainerNetworksRequest, LocalContainerNetworksResponse>;
}

/** The Control calls the CLI makes, promise-returning. */
export interface ControlCalls {
  getNode: Unary<GetNodeRequest, GetNodeResponse>;
  listNodes: Unary<ListNodesRequest, ListNodesResponse>;
  updateNode: Unary<UpdateNodeRequest, UpdateNodeResponse>;
  removeNode: Unary<RemoveNodeRequest, RemoveNodeResponse>;
  listTasks: Unary<ListTasksRequest, ListTasksResponse>;
  getCluster: Unary<GetClusterRequest, GetClusterResponse>;
  updateCluster: Unary<UpdateClusterRequest, UpdateClusterResponse>;
  getUnlockKey: Unary<GetUnlockKeyRequest, GetUnlockKeyResponse>;
  getTask: Unary<GetTaskRequest, GetTaskResponse>;
  getService: Unary<GetServiceRequest, GetServiceResponse>;
  listServices: Unary<ListServicesRequest, ListServicesResponse>;
  createService: Unary<CreateServiceRequest, CreateServiceResponse>;
  updateService: Unary<UpdateServiceRequest, UpdateServiceResponse>;
  removeService: Unary<RemoveServiceRequest, RemoveServiceResponse>;
  getSecret: Unary<GetSecretRequest, GetSecretResponse>;
  listSecrets: Unary<ListSecretsRequest, ListSecretsResponse>;
  createSecret: Unary<CreateSecretRequest, CreateSecretResponse>;
  removeSecret: Unary<RemoveSecretRequest, RemoveSecretResponse>;
  getConfig: Unary<GetConfigRequest, GetConfigResponse>;
  listConfigs: Unary<ListConfigsRequest, ListConfigsResponse>;
  createConfig: Unary<CreateConfigRequest, CreateConfigResponse>;
  removeConfig: Unary<RemoveConfigRequest, RemoveConfigResponse>;
  listNetworks: Unary<ListNetworksRequest, ListNetworksResponse>;
  createNetwork: Unary<CreateNetworkRequest, CreateNetworkResponse>;
  removeNetwork: Unary<RemoveNetworkRequest, RemoveNetworkResponse>;
  deployStack: Unary<DeployStackRequest, DeployStackResponse>;
}

export interface DaemonClient {
  readonly host: string;
  readonly swarm: SwarmCalls;
  readonly control: ControlCalls;
  close(): void;
}

/** How long one CLI call may take before it fails as unavailable. */
const CALL_TIMEOUT_MS = 60_000;

function promised<C extends object>(
  client: C,
  host: string,
  methods: readonly string[],
  check: () => void,
): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const name of methods) {
    const fn = (client as Record<string, unknown>)[name];
    if (typeof fn !== 'function') continue;
    out[name] = async (req: unknown, settings: CallSettings = {}) => {
      check();
      try {
        return await unary(
          (fn as (...a: unknown[]) => unknown).bind(client) as unknown as Parameters<typeof unary>[0],
          req,
          { deadline: Date.now() + CALL_TIMEOUT_MS, ...settings },
        );
      } catch (err) {
        // grpc-js's own UNAVAILABLE (no Shoal code): nothing listens on the socket.
        if (err instanceof ShoalError && err.code === 'GRPC_UNAVAILABLE') throw new DaemonUnreachableError(host);
        throw err;
      }
    };
  }
  return out;
}

const SWARM_METHODS = [
  'init',
  'join',
  'leave',
  'unlock',
  'info',
  'attachNetwork',
  'detachNetwork',
  'containerNetworks',
] as const;
const CONTROL_METHODS = [
  'getNode',
  'listNodes',
  'updateNode',
  'removeNode',
  'listTasks',
  'getCluster',
  'updateCluster',
  'getUnlockKey',
  'getTask',
  'getService',
  'listServices',
  'createService',
  'updateService',
  'removeService',
  'getSecret',
  'listSecrets',
  'createSecret',
  'removeSecret',
  'getConfig',
  'listConfigs',
  'createConfig',
  'removeConfig',
  'listNetworks',
  'createNetwork',
  'removeNetwork',
  'deployStack',
] as const;

/** Checks the socket before dialling, so the error says what is wrong (absent, not a socket, root-only). */
function checkSocket(path: string, host: string): void {
  try {
    if (!statSync(path).isSocket()) throw new DaemonUnreachableError(host);
    accessSync(path, constants.R_OK | constants.W_OK);
  } catch (err) {
    if (err instanceof ShoalError) throw err;
    const code = errnoCode(err);
    if (code === 'EACCES' || code === 'EPERM') throw new DaemonPermissionError(host);
    if (code === 'ENOENT' || code === 'ENOTDIR') throw new DaemonUnreachableError(host);
    throw err;
  }
}

/** Opens clients on the daemon's socket (lazily: nothing is dialled or checked before the first call). */
export function connectDaemon(hostFlag?: string, env: NodeJS.ProcessEnv = process.env): DaemonClient {
  const host = daemonHost(hostFlag, env);
  const path = socketPathOf(host);
  let checked = false;
  // Checked at the first call, so that flag values are checked (and fail) first.
  const check = (): void => {
    if (!checked) checkSocket(path, host);
    checked = true;
  };
  const target = `unix://${path}`;
  const creds = credentials.createInsecure();
  const swarm = new SwarmClient(target, creds);
  const control = new ControlClient(target, creds);
  return {
    host,
    swarm: promised(swarm, host, SWARM_METHODS, check) as unknown as SwarmCalls,
    control: promised(control, host, CONTROL_METHODS, check) as unknown as ControlCalls,
    close: () => {
      swarm.close();
      control.close();
    },
  };
}
