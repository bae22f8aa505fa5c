import type { SourcePos } from './errors.js';

/** A key path as a list of segments: mapping keys and list indexes. */
export type KeyPath = readonly (string | number)[];

/** Docker's dotted path: `services.web.ports.0`, `(root)` for the empty path. */
export function dotted(path: KeyPath): string {
  return path.length === 0 ? '(root)' : path.join('.');
}

/** Docker's interpolation path: list elements shown as `[]`. */
export function interpolationPath(path: KeyPath): string {
  return path.map((p) => (typeof p === 'number' ? '[]' : p)).join('.');
}

type LinePos = (offset: number) => { line: number; col: number };

/**
 * Where every value (and mapping key) of one parsed file starts. Offsets are stored per
 * container object of the parsed tree (no path strings), and turned into line:column only
 * when asked. Values that come from an alias or a merge key point at the anchored node.
 */
export class PositionMap {
  private root: object | undefined;
  private rootOffset = 0;
  private readonly children = new WeakMap<object, Map<string | number, [number, number]>>();

  /**
   * `build`, when given, records every position the first time one is asked for (the parsed
   * file's values are built without them: most loads never need one).
   */
  constructor(
    readonly file: string,
    private readonly linePos: LinePos = () => ({ line: 1, col: 1 }),
    private build?: (into: PositionMap) => void,
  ) {}

  setRoot(root: object, offset: number): void {
    this.root = root;
    this.rootOffset = offset;
  }

  /** Records where `container[key]` (its value, and its key for mappings) starts. */
  record(container: object, key: string | number, valueOffset: number, keyOffset = valueOffset): void {
    let m = this.children.get(container);
    if (!m) this.children.set(container, (m = new Map<string | number, [number, number]>()));
    m.set(key, [valueOffset, keyOffset]);
  }

  /** Copies the record of `from[key]` to `to[key]` (merge keys). */
  copy(from: object, to: object, key: string | number): void {
    const r = this.children.get(from)?.get(key);
    if (r) this.record(to, key, r[0], r[1]);
  }

  private pos(offset: number): SourcePos {
    const lp = this.linePos(offset);
    return { file: this.file, line: lp.line || 1, column: lp.col || 1 };
  }

  /** The deepest recorded offsets along `path`, and whether the whole path was found. */
  private built(): void {
    if (!this.build) return;
    const build = this.build;
    this.build = undefined;
    build(this);
  }

  private find(path: KeyPath): { value: number; key: number; exact: boolean } {
    this.built();
    let best = { value: this.rootOffset, key: this.rootOffset, exact: path.length === 0 };
    let cur: unknown = this.root;
    for (let i = 0; i < path.length; i++) {
      if (typeof cur !== 'object' || cur === null) return best;
      let seg: string | number = Array.isArray(cur) ? Number(path[i]) : String(path[i]);
      // A name looked up in a list (`networks: [front]`) points at that list item.
      if (Array.isArray(cur) && Number.isNaN(seg)) seg = cur.indexOf(path[i]);
      const r = this.children.get(cur)?.get(seg);
      if (!r) return best;
      best = { value: r[0], key: r[1], exact: i === path.length - 1 };
      cur = (cur as Record<string | number, unknown>)[seg];
    }
    return best;
  }

  /** True if a value was recorded exactly at `path`. */
  has(path: KeyPath): boolean {
    this.built();
    return this.root !== undefined && this.find(path).exact;
  }

  /** The value at `path`, else the nearest ancestor that has a position. */
  value(path: KeyPath): SourcePos {
    return this.pos(this.find(path).value);
  }

  /** The key of the mapping entry at `path` (falls back to the nearest value). */
  key(path: KeyPath): SourcePos {
    const f = this.find(path);
    return this.pos(f.exact ? f.key : f.value);
  }
}
