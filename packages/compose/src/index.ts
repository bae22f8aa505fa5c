/**
 * @module @shoal/compose
 * Compose files to Swarm objects exactly as Docker CLI 28's `stack deploy` does it: the
 * loader (YAML with positions, interpolation, env files, several files merged), validation
 * against Docker's v3.x JSON Schemas (every error at once, each with file:line:column), checks
 * Docker leaves to the daemon, and conversion to network, secret, config and service specs.
 *
 * ```ts
 * import { loadCompose } from '@shoal/compose';
 * const loaded = loadCompose({ files: ['docker-stack.yml'] });
 * ```
 */
export {
  loadCompose,
  imageReferenceProblem,
  FORBIDDEN_PROPERTIES,
  UNSUPPORTED_PROPERTIES,
  DEPRECATED_PROPERTIES,
} from './loader.js';
export type { LoadOptions, LoadedCompose, ComposeFileInput } from './loader.js';
export { ComposeError, formatDiagnostic, type Diagnostic, type Warning, type SourcePos } from './errors.js';
export { substituteDocker, substituteCompat, TemplateError, type Lookup } from './template.js';
export { parseDuration, parseRAMInBytes, parseCPUs, parsePortSpec, shlexSplit } from './units.js';
export { parseVolumeSpec } from './decode.js';
export { SCHEMA_VERSIONS, DEFAULT_VERSION } from './schema.js';
export { goNumberString, resolvePlainScalar } from './scalars.js';
export type * from './types.js';
export {
  convertStack,
  effectiveCaps,
  isUserDefinedNetwork,
  servicesNetworks,
  LABEL_NAMESPACE,
  LABEL_IMAGE,
  DEFAULT_NETWORK_DRIVER,
  type StackSpecs,
  type ConvertOptions,
} from './convert.js';
export { checkStack, constraintProblem, dnsNameProblem } from './checks.js';
export { prepareStack, validateStackName, type PreparedStack } from './stack.js';
