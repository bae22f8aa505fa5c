import { isDeepStrictEqual } from 'node:util';
import { LineCounter, parseAllDocuments, isAlias, isMap, isScalar, isSeq, type Alias, type Node } from 'yaml';
import { cstDocument } from './yamlcst.js';
import { fastDocument } from './yamlfast.js';
import type { YNode } from './ynode.js';
import { Diagnostics } from './errors.js';
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

/** Which YAML reader `parseComposeYaml` uses: `auto` tries fast, then CST, then the Composer. */
export type YamlReader = 'auto' | 'fast' | 'cst' | 'composer';

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
 *
 * Three readers give the same light node tree: Shoal's own scanner for the subset Compose files
 * use (`yamlfast.ts`), else the `yaml` package's CST (`yamlcst.ts`), else (and for every file
 * with a syntax error) its Composer. `reader` forces a path (the benchmark's comparison and the
 * tests that the paths agree); `composer: true` is `reader: 'composer'`.
 */
export function parseComposeYaml(
  file: string,
  source: string,
  diags: Diagnostics,
  opts: { composer?: boolean; reader?: YamlReader } = {},
): ParsedFile | undefined {
  const reader = opts.composer ? 'composer' : (opts.reader ?? 'auto');
  let lineCounter = new LineCounter();
  let rootNode: YNode | undefined;
  if (reader === 'auto' || reader === 'fast') rootNode = fastDocument(source, lineCounter.addNewLine);
  if (rootNode && CHECK_FAST) checkFastTree(file, source, rootNode, lineCounter.lineStarts);
  if (!rootNode && (reader === 'auto' || reader === 'cst')) {
    lineCounter = new LineCounter();
    rootNode = cstDocument(source, lineCounter.addNewLine);
  }
  if (!rootNode) {
    lineCounter = new LineCounter();
    const r = composerDocument(file, source, lineCounter, diags);
    if (!r) return undefined;
    if (r === 'empty') {
      diags.add({ file, line: 1, column: 1 }, '(root)', 'top-level object must be a mapping');
      return undefined;
    }
    rootNode = r;
  }
  return buildValues(file, rootNode, lineCounter, diags);
}

/**
 * `SHOAL_COMPOSE_YAML_CHECK=1` (set by the differential test when it runs the other compose
 * tests): every tree the fast reader accepts is compared with the Composer's, and a difference
 * is thrown, so that every YAML text of every test is checked.
 */
const CHECK_FAST = process.env['SHOAL_COMPOSE_YAML_CHECK'] === '1';

function checkFastTree(file: string, source: string, root: YNode, lineStarts: number[]): void {
  const other = yamlTree(source, 'composer');
  if (!isDeepStrictEqual({ root, lineStarts }, other))
    throw new Error(`fast YAML reader differs from the Composer on ${file}: ${JSON.stringify(source.slice(0, 200))}`);
}

/**
 * The light node tree one reader gives for `source` (undefined: the reader gave up, or the
 * Composer found a YAML error), with the line starts it recorded. For the tests that compare them.
 */
export function yamlTree(
  source: string,
  reader: 'fast' | 'cst' | 'composer',
): { root: YNode | 'empty' | undefined; lineStarts: number[] } {
  const lineCounter = new LineCounter();
  const root =
    reader === 'fast'
      ? fastDocument(source, lineCounter.addNewLine)
      : reader === 'cst'
        ? cstDocument(source, lineCounter.addNewLine)
        : composerDocument('f.yml', source, lineCounter, new Diagnostics());
  return { root, lineStarts: lineCounter.lineStarts };
}

/** The Composer path: a Document, its errors reported, then turned into light nodes. */
function composerDocument(
  file: string,
  source: string,
  lineCounter: LineCounter,
  diags: Diagnostics,
): YNode | 'empty' | undefined {
  const docs = parseAllDocuments(source, {
    lineCounter,
    version: '1.2',
    schema: 'failsafe',
    merge: false,
    uniqueKeys: false,
    prettyErrors: false,
  });
  const list = Array.isArray(docs) ? docs : [docs];
  const doc = list[0];
  if (!doc) return 'empty';
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
  // One shared cache of anchored nodes: without it, yaml walks the whole document per alias.
  const aliasCtx = {} as NonNullable<Parameters<Alias['resolve']>[1]>;
  const light = new Map<Node, YNode>();
  const convert = (node: Node | null | undefined, fallback: number): YNode => {
    if (node === null || node === undefined)
      return { kind: 'scalar', text: '', plain: true, tag: '!null', offset: fallback };
    const offset = node.range?.[0] ?? fallback;
    if (isAlias(node)) {
      const target = node.resolve(doc, aliasCtx) as Node | undefined;
      const t = target ? light.get(target) : undefined;
      return { kind: 'alias', target: t, name: node.source, offset };
    }
    let out: YNode;
    if (isScalar(node)) {
      const text = typeof node.value === 'string' ? node.value : String(node.value);
      out = { kind: 'scalar', text, plain: node.type === 'PLAIN', tag: node.tag, offset };
      light.set(node, out);
    } else if (isSeq(node)) {
      const items: YNode[] = [];
      out = { kind: 'seq', items, offset };
      light.set(node, out);
      for (const item of node.items as Node[]) items.push(convert(item, offset));
    } else if (isMap(node)) {
      const keys: YNode[] = [];
      const values: YNode[] = [];
      out = { kind: 'map', keys, values, offset };
      light.set(node, out);
      for (const pair of node.items) {
        const k = convert(pair.key as Node | null, offset);
        keys.push(k);
        values.push(convert(pair.value as Node | null, k.offset));
      }
    } else out = { kind: 'scalar', text: '', plain: true, tag: '!null', offset };
    return out;
  };
  return convert(doc.contents, 0);
}

/**
 * Builds the plain values from the light node tree. Positions are not recorded here: the
 * returned PositionMap records them on first use (only errors and a few warnings need them) by
 * walking the same node tree again into a tree of its own, so a file without problems never
 * pays for them.
 */
function buildValues(
  file: string,
  rootNode: YNode,
  lineCounter: LineCounter,
  diags: Diagnostics,
): ParsedFile | undefined {
  const linePos = (offset: number) => lineCounter.linePos(offset);
  const root = walkValues(file, rootNode, lineCounter, diags, undefined);
  if (root === undefined) return undefined;
  const positions = new PositionMap(file, linePos, (into) => {
    const again = walkValues(file, rootNode, lineCounter, new Diagnostics(), into);
    if (again !== undefined) into.setRoot(again, rootNode.offset);
  });
  return { file, dict: root, positions };
}

// Paths are built only for diagnostics: a linked list of (parent, key).
type PathLink = { up: PathLink | undefined; key: string | number } | undefined;

function toPath(l: PathLink): (string | number)[] {
  const out: (string | number)[] = [];
  for (let x = l; x; x = x.up) out.push(x.key);
  return out.reverse();
}

function isNull(n: YNode): boolean {
  return n.kind === 'scalar' && n.tag === '!null';
}

function isMergeKey(k: YNode): boolean {
  return k.kind === 'scalar' && k.plain && k.text === '<<' && k.tag === undefined;
}

/** The value of a scalar node, a FloatBox for a float (unboxed into its container). */
function scalarOf(n: YNode & { kind: 'scalar' }): Value {
  if (n.plain && (n.tag === undefined || n.tag === '!')) {
    const text = n.text;
    // Only the empty string, `~`, null/true/false spellings, `.`-started and number-like text
    // resolve to something else than the string itself (resolvePlain's cases).
    const c = text.charCodeAt(0);
    if (
      text.length > 0 &&
      (c < 48 || c > 57) &&
      c !== 43 && // +
      c !== 45 && // -
      c !== 46 && // .
      c !== 126 && // ~
      c !== 110 && // n
      c !== 78 && // N
      c !== 116 && // t
      c !== 84 && // T
      c !== 102 && // f
      c !== 70 // F
    )
      return text;
    return floatBox(resolvePlain(text));
  }
  if (n.tag !== undefined && n.tag.startsWith('tag:yaml.org,2002:')) return floatBox(resolveTagged(n.text, n.tag));
  return n.text;
}

/**
 * One walk of the node tree into plain values; with `positions`, it also records where every
 * value and key starts. Returns undefined (with diagnostics) when the tree cannot be used.
 */
function walkValues(
  file: string,
  rootNode: YNode,
  lineCounter: LineCounter,
  diags: Diagnostics,
  positions: PositionMap | undefined,
): Dict | undefined {
  const pos = (offset: number) => {
    const lp = lineCounter.linePos(offset);
    return { file, line: lp.line, column: lp.col };
  };
  const before = diags.size;
  let count = 0;
  const deref = (n: YNode): YNode => {
    if (n.kind !== 'alias') return n;
    if (!n.target) throw new UnknownAnchor(n);
    return n.target;
  };
  // `link` is the path of `node`'s parent; `key` its key there (NO_KEY for the root).
  const walk = (node: YNode, up: PathLink, key: string | number, depth: number): Value => {
    if (++count > MAX_VALUES) throw new AliasBomb();
    if (depth > 1000) throw new AliasBomb();
    if (node.kind === 'alias') return walk(deref(node), up, key, depth + 1);
    if (node.kind === 'scalar') return node.tag === '!null' ? null : scalarOf(node);
    const link: PathLink = key === NO_KEY ? up : { up, key };
    if (node.kind === 'seq') {
      const items = node.items;
      const out: Value[] = new Array<Value>(items.length);
      for (let i = 0; i < items.length; i++) {
        const item = items[i] as YNode;
        let v = walk(item, link, i, depth + 1);
        if (v instanceof FloatBox) v = unbox(v, out, i);
        out[i] = v;
        if (positions) positions.record(out, i, deref(item).offset);
      }
      return out;
    }
    const out: Dict = {};
    const { keys, values } = node;
    let merges: YNode[] | undefined;
    for (let i = 0; i < keys.length; i++) {
      if (!isMergeKey(keys[i] as YNode)) continue;
      const v = values[i] as YNode;
      merges ??= [];
      if (v.kind === 'seq') merges.push(...v.items);
      else if (!isNull(v)) merges.push(v);
    }
    if (merges) {
      for (const m of merges) {
        const src = deref(m);
        if (src.kind !== 'map') {
          diags.add(
            pos(m.offset),
            dotted(toPath(link)),
            'yaml: map merge requires map or sequence of maps as the value',
          );
          continue;
        }
        const merged = walk(src, up, key, depth + 1);
        if (isDict(merged)) {
          for (const mk in merged) {
            if (Object.hasOwn(out, mk)) continue;
            setOwn(out, mk, merged[mk] as Value);
            if (isFloat(merged, mk)) markFloat(out, mk);
            if (positions) positions.copy(merged, out, mk);
          }
        }
      }
    }
    // Keys written explicitly in this mapping (only needed apart from `out` with merge keys).
    const explicit = merges ? new Set<string>() : undefined;
    for (let i = 0; i < keys.length; i++) {
      const k = keys[i] as YNode;
      if (merges && isMergeKey(k)) continue;
      const kt = k.kind === 'alias' ? deref(k) : k;
      let keyValue: Value;
      if (kt.kind === 'scalar' && kt.tag === undefined && kt.plain) {
        keyValue = scalarOf(kt);
        if (keyValue instanceof FloatBox) keyValue = keyValue.value;
      } else keyValue = isNull(k) ? null : kt.kind === 'scalar' ? unboxed(scalarOf(kt)) : {};
      if (typeof keyValue !== 'string') {
        const path = toPath(link);
        diags.add(
          pos(k.offset),
          dotted(path),
          `non-string key ${path.length === 0 ? 'at top level' : `in ${path.join('.')}`}: ${JSON.stringify(keyValue)}`,
        );
        continue;
      }
      if (explicit ? explicit.has(keyValue) : Object.hasOwn(out, keyValue)) {
        diags.add(
          pos(k.offset),
          dotted([...toPath(link), keyValue]),
          `mapping key ${JSON.stringify(keyValue)} already defined at line ${lineCounter.linePos(firstKeyOffset(keys, i, keyValue)).line}`,
        );
        continue;
      }
      explicit?.add(keyValue);
      const vnode = values[i] as YNode;
      let v = walk(vnode, link, keyValue, depth + 1);
      if (v instanceof FloatBox) v = unbox(v, out, keyValue);
      setOwn(out, keyValue, v);
      if (positions) positions.record(out, keyValue, isNull(vnode) ? k.offset : deref(vnode).offset, k.offset);
    }
    return out;
  };
  let root: Value;
  try {
    root = walk(rootNode, undefined, NO_KEY, 0);
  } catch (e) {
    if (e instanceof UnknownAnchor) {
      diags.add(pos(e.alias.offset), '(root)', `yaml: unknown anchor '${e.alias.name}' referenced`);
      return undefined;
    }
    if (e instanceof AliasBomb) {
      diags.add({ file, line: 1, column: 1 }, '(root)', 'yaml: document contains excessive aliasing');
      return undefined;
    }
    throw e;
  }
  if (!isDict(root)) {
    diags.add(pos(rootNode.offset), '(root)', 'top-level object must be a mapping');
    return undefined;
  }
  if (diags.size > before) return undefined;
  return root;
}

/** The key of the root (which has none). */
const NO_KEY = -1;

/** The offset of the first key before `i` whose string value is `name` (a duplicate's original). */
function firstKeyOffset(keys: YNode[], i: number, name: string): number {
  for (let j = 0; j < i; j++) {
    const k = keys[j] as YNode;
    if (isMergeKey(k)) continue;
    const kt = k.kind === 'alias' ? k.target : k;
    if (kt?.kind === 'scalar' && !isNull(k) && unboxed(scalarOf(kt)) === name) return k.offset;
  }
  return keys[i]?.offset ?? 0;
}

function unboxed(v: Value): Value {
  return v instanceof FloatBox ? v.value : v;
}

class AliasBomb extends Error {}

class UnknownAnchor extends Error {
  constructor(readonly alias: YNode & { kind: 'alias' }) {
    super(`unknown anchor ${alias.name}`);
  }
}

/** Scalars travel through `walk` boxed with their float flag, unboxed into their container. */
class FloatBox {
  constructor(readonly value: number) {}
}

function floatBox(r: { value: Resolved; float: boolean }): Value {
  return r.float && typeof r.value === 'number' ? (new FloatBox(r.value) as unknown as Value) : r.value;
}

function unbox(v: FloatBox, container: object, key: string | number): Value {
  markFloat(container, key);
  return v.value;
}
