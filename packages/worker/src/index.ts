/**
 * @module @shoal/worker
 * The node agent of a Shoal worker: it applies the dispatcher's assignments to the engine
 * (pull, create, start, follow, stop, remove), keeps secrets and configs in memory and on
 * per-container tmpfs only, reports task states in batches, and re-adopts its containers after
 * a restart. The session to the managers is the daemon's; it hands the agent a DispatcherLink.
 */
export { Agent, ATTACHMENT_CLAIM_MS, type AgentOptions, type NetworkAttachmentResult } from './agent.js';
export { AttachmentRunner, isAttachmentTask } from './attachment-runner.js';
export type { DispatcherLink } from './dispatcher-link.js';
export { NetworkController, type NodeNetworkOptions, type TaskNetworkOptions } from './network/network-controller.js';
export { sandboxName } from './network/task-sandbox.js';
export { INGRESS_IFNAME } from './network/ingress-sandbox.js';
export * as networkViews from './network/network-views.js';
export { LogPublisher, type LogBrokerLink, type LogEngine, type LogPublisherOptions } from './log-publisher.js';
export { StatusReporter } from './status-reporter.js';
export { TaskRunner, wantsStop, type RunnerContext } from './task-runner.js';
export { taskContainerOptions, DEFAULT_STOP_GRACE_MS, type TaskContainerInput } from './container-options.js';
export { expandTemplate, templateValues, containerName, type NodeInfo } from './template.js';
export { decodeRegistryAuth } from './registry-auth.js';
export { ImagePuller, DEFAULT_PULL_FRESH_MS, type ImagePullerOptions } from './image-puller.js';
export * from './labels.js';
export {
  WorkerError,
  TaskSpecError,
  SecretMissingError,
  RegistryAuthError,
  AssignmentsSequenceError,
  NetworkAttachmentError,
  NotConnectedError,
} from './errors.js';
