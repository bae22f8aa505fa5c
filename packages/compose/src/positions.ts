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

/**
 * Positions of every value (and every mapping key) of one parsed file, by key path. Values
 * that come from an alias or a merge key point at the anchored node they were copied from.
 */
export class PositionMap {
  private readonly values = new Map<string, SourcePos>();
  private readonly keys = new Map<string, SourcePos>();

  constructor(readonly file: string) {}

  private static key(path: KeyPath): string {
    return path.join('\u0000');
  }

  setValue(path: KeyPath, pos: SourcePos): void {
    this.values.set(PositionMap.key(path), pos);
  }

  setKey(path: KeyPath, pos: SourcePos): void {
    this.keys.set(PositionMap.key(path), pos);
  }

  /** True if a value was recorded exactly at `path`. */
  has(path: KeyPath): boolean {
    return this.values.has(PositionMap.key(path));
  }

  /** The value at `path`, else the nearest ancestor that has a position. */
  value(path: KeyPath): SourcePos {
    for (let n = path.length; n >= 0; n--) {
      const p = this.values.get(PositionMap.key(path.slice(0, n)));
      if (p) return p;
    }
    return { file: this.file, line: 1, column: 1 };
  }

  /** The key of the mapping entry at `path` (falls back to its value). */
  key(path: KeyPath): SourcePos {
    return this.keys.get(PositionMap.key(path)) ?? this.value(path);
  }
}
