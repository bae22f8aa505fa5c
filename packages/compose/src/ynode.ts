/**
 * The light node tree both YAML paths produce before values are built: just what the Compose
 * reader needs (text, plain or not, tag, start offset), with aliases already pointing at their
 * anchored node (undefined: an unknown anchor, reported when the value is built).
 */
export type YNode =
  | { kind: 'scalar'; text: string; plain: boolean; tag: string | undefined; offset: number }
  | { kind: 'seq'; items: YNode[]; offset: number }
  | { kind: 'map'; keys: YNode[]; values: YNode[]; offset: number }
  | { kind: 'alias'; target: YNode | undefined; name: string; offset: number };
