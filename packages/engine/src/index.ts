/**
 * @module @shoal/engine
 * (being built; see docs/ and the open issues)
 */
export const PACKAGE = '@shoal/engine';

// runtime: lifecycle
export { Engine, type EngineOptions, type ImageResolver, type StopOptions } from './engine.js';
export type {
  ContainerCreateOptions,
  ContainerRecord,
  ContainerStatus,
  ContainerStats,
  ContainerSummary,
  ExitStatus,
  HealthcheckConfig,
  HealthProbe,
  HealthState,
  HealthStatus,
  BindMount,
  TmpfsMount,
} from './container/types.js';
export { readLogs, parseLogLine, type LogEntry, type ReadLogsOptions } from './logs/reader.js';
export { defaultShimPath, residentKb, type ShimStarted } from './monitor/shim.js';
export { Runc, type RuncState, type RuncExecOptions, type RuncExecResult } from './runtime/runc.js';
export { basicBundleBuilder, type BundleBuilder, type BundleRequest } from './runtime/bundle.js';
export {
  ContainerNotFoundError,
  NameInUseError,
  RuncFailedError,
  ContainerStateError,
  MonitorError,
  InvalidContainerSpecError,
} from './errors.js';
