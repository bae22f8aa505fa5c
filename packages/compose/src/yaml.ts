import { LineCounter, parseAllDocuments, isAlias, isMap, isScalar, isSeq, type Alias, type Node } from 'yaml';
import type { Diagnostics } from './errors.js';
import { PositionMap, dotted } from './positions.js';
import { resolvePlain, resolveTagged, type Resolved } from './scalars.js';

/** A parsed Compose value: what go-yaml v3 gives Docker, as plain JSON-like data. */
export type Value = Resolved | Value[] | { [key: string]: Value };
export type Dict = { [key: string]: Value };

/** Which entries of a parsed mapping or list hold YAML floats (so Go-style printing can differ). */
const floats = new WeakMap<object, Set<string | number>>();

/** True if `container[key]` was written as a YAML float (`1.0`, `1e3`), not an integer. */
export function isFloat(container: object, key: string | number): boolean {
  return floats.get(container)?.has(key) ?? false;
}

/** Marks `container[key]` as a float (used when values are copied, e.g. by interpolation). */
export function markFloat(container: object, key: string | number): void {
  let s = floats.get(container);
  if (!s) floats.set(container, (s = new Set()));
  s.add(key);
}

/** Sets an own property, also for the key `__proto__` (which plain assignment would not). */
export function setOwn(o: Dict, key: string, value: Value): void {
  if (key === '__proto__')
    Object.defineProperty(o, key, { value, enumerable: true, writable: true, configurable: true });
  else o[key] = value;
}

export function isDict(v: unknown): v is Dict {
  return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The result of parsing one file: its top-level mapping and where every value sits. */
export interface ParsedFile {
  file: string;
  dict: Dict;
  positions: PositionMap;
}

/** Upper bound on values produced by aliases, against alias bombs. */
const MAX_VALUES = 2_000_000;

/**
 * Parses one Compose file the way Docker CLI 28 does (go-yaml v3 into untyped maps), keeping
 * positions: syntax errors, duplicate keys, non-string keys and a top level that is not a
 * mapping are reported into `diags`; anchors, aliases and `<<` merge keys are expanded.
 * Returns undefined when the file cannot be used at all.
 */
export function parseComposeYaml(file: string, source: string, diags: Diagnostics): ParsedFile | undefined {
  const lineCounter = new LineCounter();
  const docs = parseAllDocuments(source, {
    lineCounter,
    version: '1.2',
    schema: 'failsafe',
    merge: false,
    uniqueKeys: false,
    prettyErrors: false,
  });
  const positions = new PositionMap(file, (offset) => lineCounter.linePos(offset));
  const pos = (offset: number) => {
    const lp = lineCounter.linePos(offset);
    return { file, line: lp.line, column: lp.col };
  };
  const list = Array.isArray(docs) ? docs : [docs];
  const doc = list[0];
  if (!doc) {
    diags.add({ file, line: 1, column: 1 }, '(root)', 'top-level object must be a mapping');
    return undefined;
  }
  if (doc.errors.length > 0) {
    for (const e of doc.errors) {
      const at = lineCounter.linePos(e.pos[0]);
      diags.add(
        { file, line: at.line || 1, column: at.col || 1 },
        '(root)',
        `yaml: ${e.message.split('\n')[0] ?? e.message}`,
      );
    }
    return undefined;
  }
  const before = diags.size;
  let count = 0;
  // One shared cache of anchored nodes: without it, yaml walks the whole document per alias.
  const aliasCtx = {} as NonNullable<Parameters<Alias['resolve']>[1]>;
  const resolveAlias = (a: Alias): Node | undefined => {
    const target = a.resolve(doc, aliasCtx) as Node | undefined;
    if (!target) throw new UnknownAnchor(a);
    return target;
  };
  // Paths are built only for diagnostics: a linked list of (parent, key).
  type PathLink = { up: PathLink | undefined; key: string | number } | undefined;
  const toPath = (l: PathLink): (string | number)[] => {
    const out: (string | number)[] = [];
    for (let x = l; x; x = x.up) out.push(x.key);
    return out.reverse();
  };
  const offsetOf = (node: Node | null | undefined, fallback: number): number => node?.range?.[0] ?? fallback;
  const walk = (node: Node | null | undefined, link: PathLink, depth: number): Value => {
    if (++count > MAX_VALUES) throw new AliasBomb();
    if (depth > 1000) throw new AliasBomb();
    if (node === null || node === undefined) return null;
    if (isAlias(node)) return walk(resolveAlias(node), link, depth + 1);
    if (isScalar(node)) {
      const text = typeof node.value === 'string' ? node.value : String(node.value);
      let r: { value: Resolved; float: boolean };
      if (node.type === 'PLAIN' && (node.tag === undefined || node.tag === '!')) r = resolvePlain(text);
      else if (node.tag !== undefined && node.tag.startsWith('tag:yaml.org,2002:')) r = resolveTagged(text, node.tag);
      else r = { value: text, float: false };
      return floatBox(r);
    }
    if (isSeq(node)) {
      const out: Value[] = [];
      const items = node.items as Node[];
      for (let i = 0; i < items.length; i++) {
        const item = items[i];
        const target = isAlias(item) ? resolveAlias(item) : item;
        const v = unbox(walk(item, { up: link, key: i }, depth + 1), out, i);
        out.push(v);
        positions.record(out, i, offsetOf(target, offsetOf(node, 0)));
      }
      return out;
    }
    if (isMap(node)) {
      const out: Dict = {};
      const explicit = new Map<string, number>();
      const merges: Node[] = [];
      for (const pair of node.items) {
        const k = pair.key as Node | null;
        if (isScalar(k) && k.type === 'PLAIN' && k.value === '<<' && k.tag === undefined) {
          const v = pair.value as Node | null;
          if (isSeq(v)) merges.push(...(v.items as Node[]));
          else if (v) merges.push(v);
        }
      }
      for (const m of merges) {
        const src = isAlias(m) ? resolveAlias(m) : m;
        if (!isMap(src)) {
          diags.add(
            pos(offsetOf(m, offsetOf(node, 0))),
            dotted(toPath(link)),
            'yaml: map merge requires map or sequence of maps as the value',
          );
          continue;
        }
        const merged = walk(src, link, depth + 1);
        if (isDict(merged)) {
          for (const [key, value] of Object.entries(merged)) {
            if (Object.hasOwn(out, key)) continue;
            setOwn(out, key, value);
            if (isFloat(merged, key)) markFloat(out, key);
            positions.copy(merged, out, key);
          }
        }
      }
      for (const pair of node.items) {
        const k = pair.key as Node | null;
        if (isScalar(k) && k.type === 'PLAIN' && k.value === '<<' && k.tag === undefined) continue;
        const keyOffset = offsetOf(k, offsetOf(node, 0));
        const keyValue = k === null ? null : walkKey(k);
        if (typeof keyValue !== 'string') {
          const path = toPath(link);
          diags.add(
            pos(keyOffset),
            dotted(path),
            `non-string key ${path.length === 0 ? 'at top level' : `in ${path.join('.')}`}: ${JSON.stringify(keyValue)}`,
          );
          continue;
        }
        const prev = explicit.get(keyValue);
        if (prev !== undefined) {
          diags.add(
            pos(keyOffset),
            dotted([...toPath(link), keyValue]),
            `mapping key ${JSON.stringify(keyValue)} already defined at line ${prev}`,
          );
          continue;
        }
        explicit.set(keyValue, lineCounter.linePos(keyOffset).line);
        const vnode = pair.value as Node | null;
        const target = isAlias(vnode) ? resolveAlias(vnode) : vnode;
        setOwn(out, keyValue, unbox(walk(vnode, { up: link, key: keyValue }, depth + 1), out, keyValue));
        positions.record(out, keyValue, offsetOf(target, keyOffset), keyOffset);
      }
      return out;
    }
    return null;
  };
  const walkKey = (k: Node): Resolved | object => {
    const target = isAlias(k) ? resolveAlias(k) : k;
    if (isScalar(target)) {
      const text = typeof target.value === 'string' ? target.value : String(target.value);
      if (target.type === 'PLAIN' && (target.tag === undefined || target.tag === '!')) return resolvePlain(text).value;
      if (target.tag !== undefined && target.tag.startsWith('tag:yaml.org,2002:'))
        return resolveTagged(text, target.tag).value;
      return text;
    }
    return {};
  };
  let root: Value;
  try {
    root = walk(doc.contents, undefined, 0);
  } catch (e) {
    if (e instanceof UnknownAnchor) {
      const at = e.alias.range ? lineCounter.linePos(e.alias.range[0]) : { line: 1, col: 1 };
      diags.add(
        { file, line: at.line, column: at.col },
        '(root)',
        `yaml: unknown anchor '${e.alias.source}' referenced`,
      );
      return undefined;
    }
    if (e instanceof AliasBomb) {
      diags.add({ file, line: 1, column: 1 }, '(root)', 'yaml: document contains excessive aliasing');
      return undefined;
    }
    throw e;
  }
  const rootNode = doc.contents as Node | null;
  if (!isDict(root)) {
    diags.add(pos(offsetOf(rootNode, 0)), '(root)', 'top-level object must be a mapping');
    return undefined;
  }
  if (diags.size > before) return undefined;
  positions.setRoot(root, offsetOf(rootNode, 0));
  return { file, dict: root, positions };
}

class AliasBomb extends Error {}

class UnknownAnchor extends Error {
  constructor(readonly alias: Alias) {
    super(`unknown anchor ${alias.source}`);
  }
}

/** Scalars travel through `walk` boxed with their float flag, unboxed into their container. */
class FloatBox {
  constructor(readonly value: number) {}
}

function floatBox(r: { value: Resolved; float: boolean }): Value {
  return r.float && typeof r.value === 'number' ? (new FloatBox(r.value) as unknown as Value) : r.value;
}

function unbox(v: Value, container: object, key: string | number): Value {
  if (v instanceof FloatBox) {
    markFloat(container, key);
    return v.value;
  }
  return v;
}
