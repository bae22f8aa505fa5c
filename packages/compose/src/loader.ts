import { readFileSync } from 'node:fs';
import { dirname, resolve } from 'node:path';
import { errnoCode } from '@shoal/common';
import { decodeFile } from './decode.js';
import { Diagnostics, type SourcePos, type Warning } from './errors.js';
import { interpolateFile } from './interpolate.js';
import { mergeConfigs } from './merge.js';
import { PositionMap, type KeyPath } from './positions.js';
import { goNumberString } from './scalars.js';
import { hasSchema, normalizeVersion, validateSchema, DEFAULT_VERSION } from './schema.js';
import type { Lookup } from './template.js';
import type { ComposeConfig } from './types.js';
import { isDict, isFloat, parseComposeYaml, type Dict, type ParsedFile } from './yaml.js';
import { parseDotEnv } from './dotenv.js';

/** One Compose file: a path, and its content when it does not come from disk (`-` is stdin). */
export interface ComposeFileInput {
  path: string;
  content?: string | Buffer;
}

export interface LoadOptions {
  /** The `-c` files, in order (at least one). */
  files: (string | ComposeFileInput)[];
  /** Variables for interpolation and empty environment values; default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Directory for `-` (stdin) as the only file; default `process.cwd()`. */
  cwd?: string;
  /**
   * Compose-spec extras Docker's `stack deploy` lacks: a `.env` file in the working
   * directory (the process environment wins over it), `${VAR:+alt}` / `${VAR+alt}`, and
   * nested templates in defaults. Off by default: Docker CLI 28 behaviour.
   */
  compat?: boolean;
  /**
   * Leave `$` expressions as written (`stack config --skip-interpolation`): no substitution,
   * no casts, no interpolation errors. Validation and decoding still run on the result.
   */
  skipInterpolation?: boolean;
  /**
   * Reject an empty or malformed image (default true, as `stack deploy` in CLI 28.2+).
   * `stack config` does not check images.
   */
  checkImages?: boolean;
}

/** Forbidden service keys and Docker's hint for each (rejected before anything else). */
export const FORBIDDEN_PROPERTIES: Readonly<Record<string, string>> = {
  extends: 'Support for `extends` is not implemented yet.',
  volume_driver:
    'Instead of setting the volume driver on the service, define a volume using the top-level `volumes` option and specify the driver there.',
  volumes_from:
    'To share a volume between services, define it using the top-level `volumes` option and reference it from each service that shares it using the service-level `volumes` option.',
  cpu_quota: 'Set resource limits using deploy.resources',
  cpu_shares: 'Set resource limits using deploy.resources',
  cpuset: 'Set resource limits using deploy.resources',
  mem_limit: 'Set resource limits using deploy.resources',
  memswap_limit: 'Set resource limits using deploy.resources',
};

/** Service keys `stack deploy` ignores with "Ignoring unsupported options". */
export const UNSUPPORTED_PROPERTIES: readonly string[] = [
  'build',
  'cgroupns_mode',
  'cgroup_parent',
  'devices',
  'domainname',
  'external_links',
  'ipc',
  'links',
  'mac_address',
  'network_mode',
  'pid',
  'privileged',
  'restart',
  'security_opt',
  'shm_size',
  'userns_mode',
];

/** Service keys ignored with "Ignoring deprecated options". */
export const DEPRECATED_PROPERTIES: Readonly<Record<string, string>> = {
  container_name: 'Setting the container name is not supported.',
  expose:
    "Exposing ports is unnecessary - services on the same network can access each other's containers on any port.",
};

/** A loaded stack file set: the merged config, Docker's warnings and a way back to positions. */
export interface LoadedCompose {
  config: ComposeConfig;
  /** Warnings in Docker's wording (stderr material), in a stable order. */
  warnings: Warning[];
  /** The first file's directory: all relative paths were resolved against it. */
  workingDir: string;
  /** Parsed files in order (raw, before interpolation). */
  files: ParsedFile[];
  /** Interpolated dicts in order (what `stack config` merges and prints). */
  dicts: Dict[];
  /** Where `path` (e.g. `['services','web','image']`) was last written, for later errors. */
  locate: (path: KeyPath) => SourcePos;
  /** The variable lookup used (process env, plus `.env` in compat mode). */
  lookup: Lookup;
}

function versionOf(dict: Dict): string {
  if (!('version' in dict)) return DEFAULT_VERSION;
  const v = dict['version'];
  let s: string;
  if (typeof v === 'string') s = v;
  else if (typeof v === 'number') s = goNumberString(v, isFloat(dict, 'version'));
  else if (typeof v === 'boolean') s = String(v);
  else if (v === null) s = '<nil>';
  else s = Array.isArray(v) ? `[${v.map((x) => JSON.stringify(x)).join(' ')}]` : 'map[]';
  return normalizeVersion(s);
}

function readInput(input: ComposeFileInput, diags: Diagnostics): string | undefined {
  if (input.content !== undefined)
    return typeof input.content === 'string' ? input.content : input.content.toString('utf8');
  try {
    return readFileSync(input.path, 'utf8');
  } catch (e) {
    const code = errnoCode(e);
    // No position: the file has none to give (formatDiagnostic prints the message alone).
    const pos = { file: input.path, line: 0, column: 0 };
    if (code === 'ENOENT') diags.add(pos, '(root)', `open ${input.path}: no such file or directory`);
    else if (code === 'EISDIR') diags.add(pos, '(root)', `read ${input.path}: is a directory`);
    else if (code !== undefined) diags.add(pos, '(root)', `open ${input.path}: ${(e as Error).message}`);
    else throw e;
    return undefined;
  }
}

/**
 * Loads, interpolates, validates and merges Compose files exactly as Docker CLI 28's
 * `stack deploy` does, but reports every problem it finds (each with file:line:column) in one
 * ComposeError instead of stopping at the first.
 */
export function loadCompose(opts: LoadOptions): LoadedCompose {
  const diags = new Diagnostics();
  const inputs = opts.files.map((f) => (typeof f === 'string' ? { path: f } : f));
  if (inputs.length === 0) {
    diags.add(undefined, '', 'Specify a Compose file (with --compose-file)');
    diags.throwIfAny();
  }
  diags.fileOrder = inputs.map((i) => i.path);
  const first = inputs[0] as ComposeFileInput;
  const workingDir =
    first.path === '-' && inputs.length === 1
      ? resolve(opts.cwd ?? process.cwd())
      : dirname(resolve(opts.cwd ?? process.cwd(), first.path));
  const env = opts.env ?? process.env;
  let dotenv: Map<string, string> | undefined;
  if (opts.compat) dotenv = readDotEnv(workingDir, diags);
  const lookup: Lookup = (name) => {
    const v = env[name];
    if (v !== undefined) return v;
    return dotenv?.get(name);
  };

  const parsed: (ParsedFile | undefined)[] = inputs.map((input) => {
    const text = readInput(input, diags);
    if (text === undefined) return undefined;
    return parseComposeYaml(input.path, text, diags);
  });
  const files = parsed.filter((f): f is ParsedFile => f !== undefined);

  const warnings: Warning[] = [];
  let version = '';
  const configs: ComposeConfig[] = [];
  const dicts: Dict[] = [];
  for (const file of files) {
    const v = versionOf(file.dict);
    if (version === '') version = v;
    if (version !== v) {
      diags.add(
        file.positions.value(['version']),
        'version',
        `version mismatched between two composefiles : ${version} and ${v}`,
      );
      continue;
    }
    // Docker checks forbidden keys before the version has a schema: a v2 file with mem_limit
    // gets "unsupported options", not "unsupported Compose file version" (recorded in the parity
    // corpus, compose-v2); Shoal reports both.
    const before = diags.size;
    const forbidden = forbiddenIn(file);
    for (const f of forbidden) diags.add(f.pos, f.path, f.message);
    if (!hasSchema(version)) {
      diags.add(file.positions.value(['version']), 'version', `unsupported Compose file version: ${version}`);
      continue;
    }
    const failed: string[][] = forbidden.map((f) => f.path.split('.'));
    const dict = opts.skipInterpolation
      ? file.dict
      : interpolateFile(file, { lookup, compat: opts.compat ?? false }, diags, failed);
    validateSchema(dict, version, file, diags, failed);
    if (diags.size > before) continue;
    dicts.push(dict);
    configs.push(decodeFile(dict, { parsed: file, version, workingDir, lookup, diags, warnings }));
  }
  diags.throwIfAny();

  const config = mergeConfigs(configs);
  warnings.unshift(...ignoredWarnings(files));

  for (const s of opts.checkImages === false ? [] : config.services) {
    const pos = () =>
      s.image === undefined ? locateKeyIn(files, ['services', s.name]) : locateIn(files, ['services', s.name, 'image']);
    if (s.image === undefined || s.image === '') {
      diags.add(pos(), `services.${s.name}.image`, `invalid image reference for service ${s.name}: no image specified`);
      continue;
    }
    const problem = imageReferenceProblem(s.image);
    if (problem)
      diags.add(pos(), `services.${s.name}.image`, `invalid image reference for service ${s.name}: ${problem}`);
  }
  diags.throwIfAny();
  return { config, warnings, workingDir, files, dicts, locate: (p) => locateIn(files, p), lookup };
}

function locateIn(files: ParsedFile[], path: KeyPath): SourcePos {
  for (let n = path.length; n >= 0; n--) {
    const p = path.slice(0, n);
    for (let i = files.length - 1; i >= 0; i--) {
      const f = files[i] as ParsedFile;
      if (f.positions.has(p)) return f.positions.value(p);
    }
  }
  const f = files[0];
  return f ? f.positions.value([]) : { file: '', line: 0, column: 0 };
}

function locateKeyIn(files: ParsedFile[], path: KeyPath): SourcePos {
  for (let i = files.length - 1; i >= 0; i--) {
    const f = files[i] as ParsedFile;
    if (f.positions.has(path)) return f.positions.key(path);
  }
  return locateIn(files, path);
}

function forbiddenIn(file: ParsedFile): { pos: SourcePos; path: string; message: string }[] {
  const services = file.dict['services'];
  if (!isDict(services)) return [];
  const out: { pos: SourcePos; path: string; message: string }[] = [];
  for (const [name, svc] of Object.entries(services)) {
    if (!isDict(svc)) continue;
    for (const key of Object.keys(svc)) {
      const hint = FORBIDDEN_PROPERTIES[key];
      if (hint === undefined) continue;
      out.push({
        pos: file.positions.key(['services', name, key]),
        path: `services.${name}.${key}`,
        message: `Compose file contains unsupported options: ${key}: ${hint}`,
      });
    }
  }
  return out;
}

/** Docker's two stderr warnings, computed from the raw dicts of all files. */
function ignoredWarnings(files: ParsedFile[]): Warning[] {
  const unsupported = new Set<string>();
  const deprecated = new Map<string, string>();
  for (const f of files) {
    const services = f.dict['services'];
    if (!isDict(services)) continue;
    for (const svc of Object.values(services)) {
      if (!isDict(svc)) continue;
      for (const key of UNSUPPORTED_PROPERTIES) if (key in svc) unsupported.add(key);
      for (const [key, hint] of Object.entries(DEPRECATED_PROPERTIES)) if (key in svc) deprecated.set(key, hint);
    }
  }
  const out: Warning[] = [];
  if (unsupported.size > 0)
    out.push({ message: `Ignoring unsupported options: ${[...unsupported].sort().join(', ')}` });
  if (deprecated.size > 0) {
    const lines = [...deprecated].map(([k, v]) => `${k}: ${v}`).sort();
    out.push({ message: `Ignoring deprecated options:\n\n${lines.join('\n\n')}` });
  }
  return out;
}

// distribution/reference's grammar (ParseAnyReference): a 64-hex id, or name[:tag][@digest].
const ALNUM = '[a-z0-9]+';
const SEP = '(?:[._]|__|[-]+)';
const PATH_COMPONENT = `${ALNUM}(?:${SEP}${ALNUM})*`;
const DOMAIN_COMPONENT = '(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])';
const DOMAIN = `(?:(?:${DOMAIN_COMPONENT}(?:\\.${DOMAIN_COMPONENT})*)|\\[[a-fA-F0-9:]+\\])(?::[0-9]+)?`;
const NAME = `(?:${DOMAIN}/)?${PATH_COMPONENT}(?:/${PATH_COMPONENT})*`;
const TAG = '[\\w][\\w.-]{0,127}';
const DIGEST = '[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}';
const REFERENCE = new RegExp(`^(${NAME})(?::(${TAG}))?(?:@(${DIGEST}))?$`);

/** Why `ref` is not a valid image reference (distribution/reference's wording), or undefined. */
export function imageReferenceProblem(ref: string): string | undefined {
  if (/^[a-f0-9]{64}$/.test(ref)) return undefined;
  const m = REFERENCE.exec(ref);
  if (!m) {
    const lower = REFERENCE.exec(ref.toLowerCase());
    if (lower) return `invalid reference format: repository name (${ref.split(/[:@]/)[0]}) must be lowercase`;
    return 'invalid reference format';
  }
  if ((m[1] ?? '').length > 255) return 'repository name must not be more than 255 characters';
  return undefined;
}

function readDotEnv(workingDir: string, diags: Diagnostics): Map<string, string> | undefined {
  const path = resolve(workingDir, '.env');
  let text: string;
  try {
    text = readFileSync(path, 'utf8');
  } catch (e) {
    if (errnoCode(e) === 'ENOENT') return undefined;
    throw e;
  }
  try {
    return parseDotEnv(text);
  } catch (e) {
    diags.add({ file: path, line: 0, column: 0 }, '', `${path}: ${(e as Error).message}`);
    return undefined;
  }
}

export { PositionMap };
