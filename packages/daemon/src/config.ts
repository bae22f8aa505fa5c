/**
 * shoald's settings: command-line flags over `/etc/shoal/daemon.json` (like Docker's daemon.json)
 * over defaults. Flags win over the file; unknown keys, wrong types and bad values are errors that
 * name the key and the file. `reloadable` keys change live on SIGHUP (log level, insecure registries).
 */
import { readFile } from 'node:fs/promises';
import { isIP } from 'node:net';
import { errnoCode } from '@shoal/common';
import { DaemonConfigError } from './errors.js';

export const DEFAULT_DATA_ROOT = '/var/lib/shoal';
export const DEFAULT_RUN_ROOT = '/run/shoal';
export const DEFAULT_SOCKET = '/run/shoal/shoal.sock';
export const DEFAULT_CONFIG_FILE = '/etc/shoal/daemon.json';
export const DEFAULT_LISTEN_ADDR = '0.0.0.0:2377';
export const DEFAULT_PORT = 2377;
export const LOG_LEVELS = ['trace', 'debug', 'info', 'warn', 'error', 'fatal', 'silent'] as const;
export type LogLevel = (typeof LOG_LEVELS)[number];

export interface AddressPool {
  base: string;
  size: number;
}

export interface DaemonSettings {
  dataRoot: string;
  runRoot: string;
  listenAddr: string;
  /** Empty: the listen address when it is a specific IP, else decided at init/join. */
  advertiseAddr: string;
  socket: string;
  configFile: string;
  logLevel: LogLevel;
  insecureRegistries: string[];
  defaultAddressPools: AddressPool[];
  /** The gateway bridge's node-local subnet (egress of overlay containers); empty: 172.18.0.0/16, as Docker's. */
  gatewaySubnet: string;
}

/** What SIGHUP may change without a restart. */
export const RELOADABLE: readonly (keyof DaemonSettings)[] = ['logLevel', 'insecureRegistries'];

interface KeySpec {
  flag: string;
  file: string;
  setting: keyof DaemonSettings;
  kind: 'string' | 'string[]' | 'pools' | 'level' | 'cidr';
}

const KEYS: readonly KeySpec[] = [
  { flag: '--data-root', file: 'data-root', setting: 'dataRoot', kind: 'string' },
  { flag: '--run-root', file: 'run-root', setting: 'runRoot', kind: 'string' },
  { flag: '--listen-addr', file: 'listen-addr', setting: 'listenAddr', kind: 'string' },
  { flag: '--advertise-addr', file: 'advertise-addr', setting: 'advertiseAddr', kind: 'string' },
  { flag: '--socket', file: 'socket', setting: 'socket', kind: 'string' },
  { flag: '--log-level', file: 'log-level', setting: 'logLevel', kind: 'level' },
  { flag: '--insecure-registry', file: 'insecure-registries', setting: 'insecureRegistries', kind: 'string[]' },
  { flag: '--default-address-pool', file: 'default-address-pools', setting: 'defaultAddressPools', kind: 'pools' },
  { flag: '--gwbridge-subnet', file: 'gwbridge-subnet', setting: 'gatewaySubnet', kind: 'cidr' },
];

export function defaultSettings(): DaemonSettings {
  return {
    dataRoot: DEFAULT_DATA_ROOT,
    runRoot: DEFAULT_RUN_ROOT,
    listenAddr: DEFAULT_LISTEN_ADDR,
    advertiseAddr: '',
    socket: DEFAULT_SOCKET,
    configFile: DEFAULT_CONFIG_FILE,
    logLevel: 'info',
    insecureRegistries: [],
    defaultAddressPools: [],
    gatewaySubnet: '',
  };
}

export interface ParsedFlags {
  /** Settings given as flags only. */
  values: Partial<DaemonSettings>;
  configFile: string;
  /** True when --config was given (then a missing file is an error). */
  configGiven: boolean;
  version: boolean;
  help: boolean;
}

export const USAGE = `Usage: shoald [OPTIONS]

  --data-root DIR            state directory (default ${DEFAULT_DATA_ROOT})
  --run-root DIR             runtime directory (default ${DEFAULT_RUN_ROOT})
  --listen-addr HOST:PORT    cluster port (default ${DEFAULT_LISTEN_ADDR})
  --advertise-addr HOST[:PORT]  address other nodes reach this one at
  --socket PATH              the CLI's unix socket (default ${DEFAULT_SOCKET})
  --config FILE              daemon.json (default ${DEFAULT_CONFIG_FILE})
  --log-level LEVEL          ${LOG_LEVELS.join('|')} (default info)
  --insecure-registry HOST[:PORT]  repeatable
  --default-address-pool base=CIDR,size=N  repeatable
  --gwbridge-subnet CIDR     the gateway bridge's subnet (default 172.18.0.0/16)
  --version, --help
`;

/** Parses shoald's argv (`--flag value` or `--flag=value`). */
export function parseFlags(argv: readonly string[]): ParsedFlags {
  const out: ParsedFlags = {
    values: {},
    configFile: DEFAULT_CONFIG_FILE,
    configGiven: false,
    version: false,
    help: false,
  };
  const lists: Record<string, unknown[]> = {};
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] ?? '';
    if (arg === '--version' || arg === '-v') {
      out.version = true;
      continue;
    }
    if (arg === '--help' || arg === '-h') {
      out.help = true;
      continue;
    }
    if (!arg.startsWith('--'))
      throw new DaemonConfigError(`unexpected argument "${arg}" (shoald takes only flags; see --help)`);
    const eq = arg.indexOf('=');
    const name = eq < 0 ? arg : arg.slice(0, eq);
    let value: string;
    if (eq >= 0) value = arg.slice(eq + 1);
    else {
      const next = argv[i + 1];
      if (next === undefined || next.startsWith('--')) throw new DaemonConfigError(`flag ${name} needs a value`);
      value = next;
      i++;
    }
    if (name === '--config') {
      out.configFile = value;
      out.configGiven = true;
      continue;
    }
    const spec = KEYS.find((k) => k.flag === name);
    if (!spec) throw new DaemonConfigError(`unknown flag ${name} (see shoald --help)`);
    const where = `flag ${name}`;
    if (spec.kind === 'string[]') (lists[spec.setting] ??= []).push(checkString(value, where));
    else if (spec.kind === 'pools') (lists[spec.setting] ??= []).push(parsePoolFlag(value, where));
    else if (spec.kind === 'level') out.values.logLevel = checkLevel(value, where);
    else if (spec.kind === 'cidr') (out.values as Record<string, unknown>)[spec.setting] = checkCidr(value, where);
    else (out.values as Record<string, unknown>)[spec.setting] = checkString(value, where);
  }
  Object.assign(out.values, lists);
  return out;
}

function checkString(v: unknown, where: string): string {
  if (typeof v !== 'string' || v.length === 0) throw new DaemonConfigError(`${where}: expected a non-empty string`);
  return v;
}

function checkLevel(v: unknown, where: string): LogLevel {
  if (typeof v !== 'string' || !(LOG_LEVELS as readonly string[]).includes(v)) {
    throw new DaemonConfigError(`${where}: log level ${JSON.stringify(v)} is not one of ${LOG_LEVELS.join(', ')}`);
  }
  return v as LogLevel;
}

function checkPool(v: unknown, where: string): AddressPool {
  if (typeof v !== 'object' || v === null || Array.isArray(v)) {
    throw new DaemonConfigError(`${where}: expected {"base": "CIDR", "size": N}`);
  }
  const o = v as Record<string, unknown>;
  for (const k of Object.keys(o)) {
    if (k !== 'base' && k !== 'size') throw new DaemonConfigError(`${where}: unknown key "${k}" (expected base, size)`);
  }
  const base = o['base'];
  const size = o['size'];
  if (
    typeof base !== 'string' ||
    !/^\d+\.\d+\.\d+\.\d+\/\d+$/.test(base) ||
    isIP(base.split('/')[0] ?? '') !== 4 ||
    Number(base.split('/')[1]) > 32
  ) {
    throw new DaemonConfigError(`${where}: base ${JSON.stringify(base)} is not an IPv4 CIDR`);
  }
  const prefix = Number(base.split('/')[1]);
  if (typeof size !== 'number' || !Number.isInteger(size) || size < prefix || size > 32 || prefix > 32) {
    throw new DaemonConfigError(
      `${where}: size ${JSON.stringify(size)} must be an integer between the base's prefix /${prefix} and 32`,
    );
  }
  return { base, size };
}

function parsePoolFlag(v: string, where: string): AddressPool {
  const o: Record<string, unknown> = {};
  for (const part of v.split(',')) {
    const [k, val] = part.split('=', 2);
    if (k === undefined || val === undefined)
      throw new DaemonConfigError(`${where}: expected base=CIDR,size=N, got "${v}"`);
    o[k] = k === 'size' ? Number(val) : val;
  }
  return checkPool(o, where);
}

/** Reads daemon.json; a missing default file is no file, anything else wrong is an error. */
export async function readConfigFile(path: string, required: boolean): Promise<Partial<DaemonSettings>> {
  let text: string;
  try {
    text = await readFile(path, 'utf8');
  } catch (err) {
    if (errnoCode(err) === 'ENOENT' && !required) return {};
    throw new DaemonConfigError(`cannot read configuration file ${path}: ${(err as Error).message}`, { cause: err });
  }
  let doc: unknown;
  try {
    doc = JSON.parse(text);
  } catch (err) {
    throw new DaemonConfigError(`configuration file ${path} is not valid JSON: ${(err as Error).message}`, {
      cause: err,
    });
  }
  if (typeof doc !== 'object' || doc === null || Array.isArray(doc)) {
    throw new DaemonConfigError(`configuration file ${path}: expected a JSON object`);
  }
  const out: Record<string, unknown> = {};
  for (const [key, value] of Object.entries(doc)) {
    const spec = KEYS.find((k) => k.file === key);
    const where = `${path}: "${key}"`;
    if (!spec) {
      throw new DaemonConfigError(
        `configuration file ${path}: unknown key "${key}" (known: ${KEYS.map((k) => k.file).join(', ')})`,
      );
    }
    if (spec.kind === 'string[]') {
      if (!Array.isArray(value)) throw new DaemonConfigError(`${where}: expected an array of strings`);
      out[spec.setting] = value.map((v, i) => checkString(v, `${where}[${i}]`));
    } else if (spec.kind === 'pools') {
      if (!Array.isArray(value)) throw new DaemonConfigError(`${where}: expected an array of {"base", "size"}`);
      out[spec.setting] = value.map((v, i) => checkPool(v, `${where}[${i}]`));
    } else if (spec.kind === 'level') out[spec.setting] = checkLevel(value, where);
    else if (spec.kind === 'cidr') out[spec.setting] = checkCidr(value, where);
    else out[spec.setting] = checkString(value, where);
  }
  return out;
}

/** An IPv4 CIDR (`a.b.c.d/len`, len 8..30); `where` names the source. */
function checkCidr(value: unknown, where: string): string {
  const v = checkString(value, where);
  const [ip = '', len = ''] = v.split('/');
  if (isIP(ip) !== 4 || !/^\d+$/.test(len) || Number(len) < 8 || Number(len) > 30)
    throw new DaemonConfigError(`${where}: ${JSON.stringify(v)} is not an IPv4 CIDR with a prefix length of 8 to 30`);
  return v;
}

/** host:port with a literal IP (or a host name) and a port 1-65535; `where` names the source. */
export function parseHostPort(addr: string, where: string, defaultPort?: number): { host: string; port: number } {
  const m = /^(?:\[([^\]]+)\]|([^:]*))(?::(\d+))?$/.exec(addr);
  const host = m?.[1] ?? m?.[2] ?? '';
  const portText = m?.[3];
  if (!m || host === '' || (portText === undefined && defaultPort === undefined)) {
    throw new DaemonConfigError(`${where}: "${addr}" is not a HOST:PORT address`);
  }
  const port = portText === undefined ? (defaultPort as number) : Number(portText);
  if (!Number.isInteger(port) || port < 1 || port > 65535)
    throw new DaemonConfigError(`${where}: port in "${addr}" is not 1-65535`);
  if (isIP(host) === 0 && !/^[A-Za-z0-9.-]+$/.test(host))
    throw new DaemonConfigError(`${where}: "${host}" is not an IP address or host name`);
  return { host, port };
}

/** Flags over file over defaults, checked. */
export async function loadSettings(
  argv: readonly string[],
): Promise<{ settings: DaemonSettings; flags: ParsedFlags; overridden: string[] }> {
  const flags = parseFlags(argv);
  const file = await readConfigFile(flags.configFile, flags.configGiven);
  const overridden = Object.keys(flags.values).filter((k) => k in file);
  const settings: DaemonSettings = { ...defaultSettings(), ...file, ...flags.values, configFile: flags.configFile };
  parseHostPort(settings.listenAddr, 'listen address');
  if (settings.advertiseAddr !== '') parseHostPort(settings.advertiseAddr, 'advertise address', DEFAULT_PORT);
  return { settings, flags, overridden };
}

/** The settings a SIGHUP applies: the reloadable keys of file + flags; what else changed is reported. */
export async function reloadSettings(
  current: DaemonSettings,
  flags: ParsedFlags,
): Promise<{ settings: DaemonSettings; changed: string[]; needRestart: string[] }> {
  const file = await readConfigFile(flags.configFile, flags.configGiven);
  const next: DaemonSettings = { ...defaultSettings(), ...file, ...flags.values, configFile: flags.configFile };
  const changed: string[] = [];
  const needRestart: string[] = [];
  const settings = { ...current };
  for (const key of Object.keys(next) as (keyof DaemonSettings)[]) {
    if (JSON.stringify(next[key]) === JSON.stringify(current[key])) continue;
    if (RELOADABLE.includes(key)) {
      (settings as Record<string, unknown>)[key] = next[key];
      changed.push(key);
    } else needRestart.push(key);
  }
  return { settings, changed, needRestart };
}
