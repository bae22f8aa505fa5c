/**
 * Placement constraints as the scheduler matches them: `KEY==VALUE` or `KEY!=VALUE`, all of a
 * task's constraints must hold (AND). Keys: `node.id`, `node.hostname`, `node.role`,
 * `node.platform.os`, `node.platform.arch`, `node.labels.NAME`, `engine.labels.NAME`. Values
 * compare without case, as Docker does; a label the node does not have never equals a value
 * (so `!=` holds). The Control API validates constraints at service create (services/
 * constraint.ts); this copy parses them again for matching, so a bad one stored some other way
 * makes the task unschedulable with its reason instead of crashing the scheduler.
 */
import type { Node } from '@shoal/api';

export interface Constraint {
  readonly key: string;
  readonly equal: boolean;
  readonly value: string;
}

/** Parses one constraint; a string naming what is wrong when it cannot be used. */
export function parseConstraint(text: string): Constraint | string {
  const m = /^\s*([^=!\s]+)\s*(==|!=)\s*(.*?)\s*$/.exec(text);
  if (m === null) return `invalid constraint '${text}': expected KEY==VALUE or KEY!=VALUE`;
  const [, rawKey = '', op, value = ''] = m;
  if (value === '') return `invalid constraint '${text}': no value`;
  const lower = rawKey.toLowerCase();
  for (const prefix of ['node.labels.', 'engine.labels.']) {
    if (lower.startsWith(prefix)) {
      const name = rawKey.slice(prefix.length);
      if (name === '') return `invalid constraint '${text}': no label name`;
      return { key: prefix + name, equal: op === '==', value };
    }
  }
  if (!FIXED_KEYS.has(lower)) return `invalid constraint '${text}': unknown key '${rawKey}'`;
  return { key: lower, equal: op === '==', value };
}

const FIXED_KEYS = new Set(['node.id', 'node.hostname', 'node.role', 'node.platform.os', 'node.platform.arch']);

/** Parses a task's constraints: all of them, or the first error. */
export function parseConstraints(texts: readonly string[] | undefined): Constraint[] | string {
  const out: Constraint[] = [];
  for (const t of texts ?? []) {
    const c = parseConstraint(t);
    if (typeof c === 'string') return c;
    out.push(c);
  }
  return out;
}

/** Architecture names as the engine and image indexes spell them, to one form. */
export function normalizeArch(arch: string): string {
  const a = arch.toLowerCase();
  if (a === 'x86_64' || a === 'x86-64') return 'amd64';
  if (a === 'aarch64') return 'arm64';
  if (a === 'armhf' || a === 'armv7l') return 'arm';
  return a;
}

function nodeValues(c: Constraint, node: Node): string[] | undefined {
  switch (c.key) {
    case 'node.id':
      return [node.ID ?? ''];
    case 'node.hostname':
      return [node.Description?.Hostname ?? ''];
    case 'node.role':
      return [node.Spec?.Role ?? ''];
    case 'node.platform.os':
      return [node.Description?.Platform?.OS ?? ''];
    case 'node.platform.arch': {
      const a = node.Description?.Platform?.Architecture ?? '';
      return [a, normalizeArch(a)];
    }
    default: {
      const labels = c.key.startsWith('node.labels.') ? node.Spec?.Labels : node.Description?.Engine?.Labels;
      const name = c.key.slice(c.key.indexOf('.labels.') + '.labels.'.length);
      const v = labels?.[name];
      return v === undefined ? undefined : [v];
    }
  }
}

/** True when `node` satisfies every constraint. */
export function matchesConstraints(constraints: readonly Constraint[], node: Node): boolean {
  for (const c of constraints) {
    const values = nodeValues(c, node);
    const want = c.value.toLowerCase();
    const eq = values !== undefined && values.some((v) => v.toLowerCase() === want);
    if (eq !== c.equal) return false;
  }
  return true;
}
