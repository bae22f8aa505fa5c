/**
 * Placement constraints (`--constraint`): parsing and matching against a node, as Docker's
 * (`node.id`, `node.hostname`, `node.role`, `node.ip`, `node.platform.os`, `node.platform.arch`,
 * `node.labels.X`, `engine.labels.X`, with `==` or `!=`; values compare case-insensitively; a
 * label the node does not have matches `!=` and never `==`). The orchestrators and the scheduler
 * share these (the scheduler turns a parse error into the task's pending reason).
 */
import { type Constraint, type Node, parseConstraint } from '@shoal/api';
import { InvalidRequestError } from '../errors.js';

export type { Constraint };

/** Parses every constraint; throws MANAGER_INVALID_REQUEST naming the first bad one. */
export function parseConstraints(exprs: readonly string[] | undefined): Constraint[] {
  return (exprs ?? []).map((e) => {
    try {
      return parseConstraint(e);
    } catch (err) {
      throw new InvalidRequestError(err instanceof Error ? err.message : String(err));
    }
  });
}

const ARCH_ALIASES: Readonly<Record<string, string>> = {
  x86_64: 'amd64',
  'x86-64': 'amd64',
  aarch64: 'arm64',
  armhf: 'arm',
  armv7l: 'arm',
  i386: '386',
};

/** Architecture names as engines and image indexes spell them, to one form (`x86_64` -> `amd64`). */
export function normalizeArch(a: string): string {
  const l = a.toLowerCase();
  return ARCH_ALIASES[l] ?? l;
}

/** The node's value for a constraint key, or undefined when it has none (a missing label). */
export function nodeValue(node: Node & { ID?: string }, key: string): string | undefined {
  switch (key) {
    case 'node.id':
      return node.ID ?? '';
    case 'node.hostname':
      return node.Description?.Hostname ?? '';
    case 'node.role':
      return node.Spec?.Role ?? '';
    case 'node.ip':
      return node.Status?.Addr ?? '';
    case 'node.platform.os':
      return node.Description?.Platform?.OS ?? '';
    case 'node.platform.arch':
      return node.Description?.Platform?.Architecture ?? '';
    default:
      break;
  }
  if (key.startsWith('node.labels.')) return node.Spec?.Labels?.[key.slice('node.labels.'.length)];
  if (key.startsWith('engine.labels.')) return node.Description?.Engine?.Labels?.[key.slice('engine.labels.'.length)];
  return undefined;
}

/** True when the node satisfies one constraint. */
export function constraintMatches(c: Constraint, node: Node & { ID?: string }): boolean {
  const v = nodeValue(node, c.key);
  if (v === undefined) return c.operator === '!=';
  const eq =
    c.key === 'node.platform.arch'
      ? normalizeArch(v) === normalizeArch(c.value)
      : v.localeCompare(c.value, undefined, { sensitivity: 'accent' }) === 0;
  return c.operator === '==' ? eq : !eq;
}

/** True when the node satisfies every constraint. */
export function constraintsMatch(cs: readonly Constraint[], node: Node & { ID?: string }): boolean {
  return cs.every((c) => constraintMatches(c, node));
}
