import type { YNode } from './ynode.js';

/**
 * The fastest path of the Compose YAML reader: a hand-written scanner for the subset of YAML that
 * Compose files use, producing the same light node tree (`ynode.ts`, same offsets) as the other
 * two paths, without the `yaml` package.
 *
 * Accepted: one document whose top level is a block mapping at column 0; block mappings and
 * sequences (also compact `- key: v` and a sequence at its parent key's indentation); keys that
 * are single-line plain or quoted scalars; single-line plain, single- and double-quoted scalars
 * (with escapes); literal and folded block scalars with chomping and indentation indicators;
 * flow sequences and mappings of those on one line; anchors on values and known aliases;
 * comments. Anything else (tabs, CR, control characters, directives, `---`/`...`, tags, explicit
 * `?` keys, multi-line plain, quoted or flow scalars, empty flow entries, unknown aliases,
 * anything malformed) returns undefined and the caller takes another path, which also reports
 * every YAML error: this reader never reports one.
 */
export function fastDocument(source: string, onNewLine: (offset: number) => void): YNode | undefined {
  if (UNSUPPORTED_CHARS.test(source) || MARKER_LINES.test(source)) return undefined;
  let node: YNode | undefined;
  try {
    node = new Reader(source).document();
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
  if (!node) return undefined;
  onNewLine(0);
  for (let i = source.indexOf('\n'); i >= 0; i = source.indexOf('\n', i + 1)) onNewLine(i + 1);
  return node;
}

/** Tabs, CR, control characters, BOM, NEL and the Unicode line separators: left to the others. */
// eslint-disable-next-line no-control-regex
const UNSUPPORTED_CHARS = /[\u0000-\u0009\u000b-\u001f\u007f\u0085\u2028\u2029\ufeff]/;
/** Directives and document markers. */
const MARKER_LINES = /^(?:%|---|\.\.\.)/m;

class Unsupported extends Error {}

const SPACE = 32;
const NL = 10;
const HASH = 35;
const COLON = 58;
const DASH = 45;

/** Characters that cannot start a plain scalar (`-`, `?` and `:` only before a space or a line end). */
const INDICATORS = new Set([...',[]{}#&*!|>\'"%@`'].map((c) => c.charCodeAt(0)));
const FLOW_INDICATORS = new Set([...',[]{}'].map((c) => c.charCodeAt(0)));
const ANCHOR_NAME = /[A-Za-z0-9_.-]+/y;

const ESCAPES: Record<string, string> = {
  '0': '\0',
  a: '\x07',
  b: '\b',
  t: '\t',
  n: '\n',
  v: '\v',
  f: '\f',
  r: '\r',
  e: '\x1b',
  ' ': ' ',
  '"': '"',
  '/': '/',
  '\\': '\\',
  N: '\u0085',
  _: '\u00a0',
  L: '\u2028',
  P: '\u2029',
};
const HEX_DIGITS: Record<string, number> = { x: 2, u: 4, U: 8 };

function fail(): never {
  throw new Unsupported();
}

type Context = 'map' | 'seq';

class Reader {
  private readonly anchors = new Map<string, YNode>();
  /** Start of the next line not yet consumed by a block node. */
  private pos = 0;

  constructor(private readonly src: string) {}

  document(): YNode | undefined {
    const first = this.nextContentLine(0);
    if (first >= this.src.length) return undefined;
    if (this.indent(first) !== 0) fail();
    const root = this.blockMap(first, 0, undefined);
    if (this.nextContentLine(this.pos) < this.src.length) fail();
    return root;
  }

  // --- lines -------------------------------------------------------------------------------

  private lineEnd(p: number): number {
    const i = this.src.indexOf('\n', p);
    return i < 0 ? this.src.length : i;
  }

  private indent(lineStart: number): number {
    let i = lineStart;
    while (this.src.charCodeAt(i) === SPACE) i++;
    return i - lineStart;
  }

  private skipSpaces(p: number): number {
    while (this.src.charCodeAt(p) === SPACE) p++;
    return p;
  }

  /** The start of the first line at or after `lineStart` that is not blank or a comment. */
  private nextContentLine(lineStart: number): number {
    const src = this.src;
    let l = lineStart;
    while (l < src.length) {
      const i = this.skipSpaces(l);
      const c = src.charCodeAt(i);
      if (i < src.length && c !== NL && c !== HASH) return l;
      const e = this.lineEnd(i);
      l = e + 1;
    }
    return src.length;
  }

  /** After a value ending at `p`: only spaces and a comment (after a space) up to the line end. */
  private restOfLine(p: number): number {
    const q = this.skipSpaces(p);
    const c = this.src.charCodeAt(q);
    if (q >= this.src.length || c === NL) return q;
    if (c === HASH && q > p) return this.lineEnd(q);
    fail();
  }

  /** The next block line after a single-line value in a node of indentation `n`: not deeper. */
  private endLine(lineEnd: number, n: number): void {
    const next = this.nextContentLine(lineEnd + 1);
    if (next < this.src.length && this.indent(next) > n) fail();
    this.pos = next;
  }

  private isBlankAfter(p: number): boolean {
    const c = this.src.charCodeAt(p);
    return p >= this.src.length || c === SPACE || c === NL;
  }

  // --- block collections -------------------------------------------------------------------

  /** A block mapping whose first key starts at `first`, its keys at column `col`. */
  private blockMap(first: number, col: number, anchor: string | undefined): YNode {
    const out: YNode & { kind: 'map' } = { kind: 'map', keys: [], values: [], offset: first };
    if (anchor !== undefined) this.anchors.set(anchor, out);
    let at = first;
    for (;;) {
      const key = this.key(at);
      if (!key) fail();
      out.keys.push(key.node);
      out.values.push(this.blockValue(key.colon + 1, col, 'map'));
      const l = this.nextContentLine(this.pos);
      if (l >= this.src.length) break;
      const m = this.indent(l);
      if (m < col) break;
      if (m > col) fail();
      at = l + m;
    }
    return out;
  }

  /** A block sequence whose first `-` is at `first`, at column `col`. */
  private blockSeq(first: number, col: number, anchor: string | undefined): YNode {
    const out: YNode & { kind: 'seq' } = { kind: 'seq', items: [], offset: first };
    if (anchor !== undefined) this.anchors.set(anchor, out);
    let at = first;
    for (;;) {
      out.items.push(this.seqItem(at + 1, col));
      const l = this.nextContentLine(this.pos);
      if (l >= this.src.length) break;
      const m = this.indent(l);
      if (m < col) break;
      if (m > col) fail();
      if (!this.isSeqIndicator(l + m)) break;
      at = l + m;
    }
    return out;
  }

  private isSeqIndicator(p: number): boolean {
    return this.src.charCodeAt(p) === DASH && this.isBlankAfter(p + 1);
  }

  /** The item after a `-` (ending at `p`) of a sequence at column `col`. */
  private seqItem(p: number, col: number): YNode {
    const q = this.skipSpaces(p);
    if (q > p && this.src.charCodeAt(q) !== NL && q < this.src.length && this.src.charCodeAt(q) !== HASH) {
      if (this.isSeqIndicator(q)) return this.blockSeq(q, q - this.lineStartOf(q), undefined);
      if (this.key(q)) return this.blockMap(q, q - this.lineStartOf(q), undefined);
    }
    return this.blockValue(p, col, 'seq');
  }

  private lineStartOf(p: number): number {
    return this.src.lastIndexOf('\n', p - 1) + 1;
  }

  /**
   * The value after an indicator (`:` or `-`) ending at `p`, in a block node of indentation `n`:
   * on the same line, or a block collection on the next lines, or empty.
   */
  private blockValue(p: number, n: number, ctx: Context): YNode {
    const src = this.src;
    let q = this.skipSpaces(p);
    if (q < src.length && src.charCodeAt(q) !== NL && q === p) fail();
    let anchor: string | undefined;
    if (src.charCodeAt(q) === 38 /* & */) {
      const a = this.anchorName(q + 1);
      anchor = a.name;
      if (!this.isBlankAfter(a.end)) fail();
      q = this.skipSpaces(a.end);
    }
    const c = src.charCodeAt(q);
    if (q >= src.length || c === NL || c === HASH) {
      // Nothing more on this line: a block collection below, or an empty value.
      const emptyAt = q;
      const e = this.lineEnd(q);
      const l = this.nextContentLine(e + 1);
      if (l < src.length) {
        const m = this.indent(l);
        if (m > n) {
          if (this.isSeqIndicator(l + m)) return this.blockSeq(l + m, m, anchor);
          if (!this.key(l + m)) fail();
          return this.blockMap(l + m, m, anchor);
        }
        if (m === n && ctx === 'map' && this.isSeqIndicator(l + m)) return this.blockSeq(l + m, m, anchor);
      }
      this.pos = l;
      return this.anchored(anchor, { kind: 'scalar', text: '', plain: true, tag: undefined, offset: emptyAt });
    }
    if (c === 42 /* * */) {
      if (anchor !== undefined) fail();
      const node = this.alias(q);
      this.endLine(this.restOfLine(this.aliasEnd), n);
      return node;
    }
    if (c === 124 /* | */ || c === 62 /* > */) return this.anchored(anchor, this.blockScalar(q, n));
    if (c === 91 /* [ */ || c === 123 /* { */) {
      const node = this.flowCollection(q, anchor);
      this.endLine(this.restOfLine(this.flowEnd), n);
      return node;
    }
    if (c === 39 /* ' */ || c === 34 /* " */) {
      const s = this.quoted(q);
      this.endLine(this.restOfLine(s.end), n);
      return this.anchored(anchor, s.node);
    }
    if (!this.plainStart(q, false)) fail();
    const s = this.plain(q, false);
    if (s.key) fail();
    this.endLine(this.restOfLine(s.end), n);
    return this.anchored(anchor, s.node);
  }

  private anchored(anchor: string | undefined, node: YNode): YNode {
    if (anchor !== undefined) this.anchors.set(anchor, node);
    return node;
  }

  private anchorName(p: number): { name: string; end: number } {
    ANCHOR_NAME.lastIndex = p;
    const m = ANCHOR_NAME.exec(this.src);
    if (!m) fail();
    return { name: m[0], end: p + m[0].length };
  }

  private aliasEnd = 0;

  private alias(q: number): YNode {
    const a = this.anchorName(q + 1);
    const target = this.anchors.get(a.name);
    if (!target) fail();
    this.aliasEnd = a.end;
    return { kind: 'alias', target, name: a.name, offset: q };
  }

  // --- keys and scalars --------------------------------------------------------------------

  /** An implicit key at `p` (a single-line plain or quoted scalar, then `:` and a blank), or undefined. */
  private key(p: number): { node: YNode; colon: number } | undefined {
    const src = this.src;
    const c = src.charCodeAt(p);
    let node: YNode;
    let colon: number;
    if (c === 39 || c === 34) {
      const s = this.quoted(p);
      colon = this.skipSpaces(s.end);
      if (src.charCodeAt(colon) !== COLON) return undefined;
      if (!this.isBlankAfter(colon + 1)) fail();
      node = s.node;
    } else {
      if (!this.plainStart(p, false)) return undefined;
      const s = this.plain(p, false);
      if (!s.key) return undefined;
      colon = s.colon;
      node = s.node;
      if (/[[\]{},]/.test((node as { text: string }).text)) fail();
    }
    if (colon - p > 1000) fail();
    return { node, colon };
  }

  /** Whether a plain scalar may start at `p`. */
  private plainStart(p: number, flow: boolean): boolean {
    const src = this.src;
    const c = src.charCodeAt(p);
    if (p >= src.length || c === NL || c === SPACE) return false;
    if (INDICATORS.has(c)) return false;
    if (c === DASH || c === 63 /* ? */ || c === COLON) {
      const d = src.charCodeAt(p + 1);
      if (this.isBlankAfter(p + 1) || (flow && FLOW_INDICATORS.has(d))) return false;
      if (c !== DASH) fail();
    }
    return true;
  }

  /**
   * A single-line plain scalar at `p`. Stops at a line end, ` #`, or `:` before a blank (then
   * `key` is true), and in flow context also at a flow indicator or `:` before one.
   */
  private plain(p: number, flow: boolean): { node: YNode; end: number; key: boolean; colon: number } {
    const src = this.src;
    let i = p;
    let key = false;
    for (; i < src.length; i++) {
      const c = src.charCodeAt(i);
      if (c === NL) break;
      if (c === HASH && src.charCodeAt(i - 1) === SPACE) break;
      if (c === COLON) {
        const d = src.charCodeAt(i + 1);
        if (this.isBlankAfter(i + 1) || (flow && FLOW_INDICATORS.has(d))) {
          key = true;
          break;
        }
      }
      if (flow && FLOW_INDICATORS.has(c)) break;
    }
    let end = i;
    while (src.charCodeAt(end - 1) === SPACE) end--;
    if (end === p) fail();
    const node: YNode = { kind: 'scalar', text: src.slice(p, end), plain: true, tag: undefined, offset: p };
    return { node, end, key, colon: i };
  }

  /** A single-line single- or double-quoted scalar at `p`. */
  private quoted(p: number): { node: YNode; end: number } {
    const src = this.src;
    const q = src.charCodeAt(p);
    let text = '';
    let i = p + 1;
    if (q === 39) {
      for (;;) {
        const j = src.indexOf("'", i);
        if (j < 0) fail();
        const nl = src.indexOf('\n', i);
        if (nl >= 0 && nl < j) fail();
        text += src.slice(i, j);
        if (src.charCodeAt(j + 1) === 39) {
          text += "'";
          i = j + 2;
          continue;
        }
        i = j + 1;
        break;
      }
    } else {
      let run = i;
      for (;;) {
        if (i >= src.length) fail();
        const c = src.charCodeAt(i);
        if (c === NL) fail();
        if (c === 34) {
          text += src.slice(run, i);
          i++;
          break;
        }
        if (c === 92 /* \ */) {
          text += src.slice(run, i);
          const e = src[i + 1] ?? '';
          const simple = ESCAPES[e];
          if (simple !== undefined) {
            text += simple;
            i += 2;
          } else {
            const n = HEX_DIGITS[e];
            if (n === undefined) fail();
            const hex = src.slice(i + 2, i + 2 + n);
            if (hex.length !== n || !/^[0-9a-fA-F]+$/.test(hex)) fail();
            const code = parseInt(hex, 16);
            if ((code >= 0xd800 && code <= 0xdfff) || code > 0x10ffff) fail();
            text += String.fromCodePoint(code);
            i += 2 + n;
          }
          run = i;
          continue;
        }
        i++;
      }
    }
    return { node: { kind: 'scalar', text, plain: false, tag: undefined, offset: p }, end: i };
  }

  /** A literal or folded block scalar whose header is at `p`, in a node of indentation `n`. */
  private blockScalar(p: number, n: number): YNode {
    const src = this.src;
    const folded = src.charCodeAt(p) === 62;
    let chomp: 'clip' | 'strip' | 'keep' = 'clip';
    let explicit = 0;
    let i = p + 1;
    for (let k = 0; k < 2; k++) {
      const c = src.charCodeAt(i);
      if (c === DASH && chomp === 'clip') chomp = 'strip';
      else if (c === 43 /* + */ && chomp === 'clip') chomp = 'keep';
      else if (c >= 49 && c <= 57 && explicit === 0) explicit = c - 48;
      else break;
      i++;
    }
    const headerEnd = this.restOfLine(i);
    if (headerEnd >= src.length) fail();
    // Content indentation: explicit, or the first non-empty line's.
    let ci: number;
    let l = headerEnd + 1;
    if (explicit > 0) ci = n + explicit;
    else {
      let maxBlank = 0;
      ci = -1;
      for (let x = l; x < src.length;) {
        const s = this.indent(x);
        const e = this.lineEnd(x);
        if (x + s === e) {
          maxBlank = Math.max(maxBlank, s);
          x = e + 1;
          continue;
        }
        ci = s;
        break;
      }
      if (ci <= n || maxBlank > ci) fail();
    }
    const lines: string[] = [];
    let blanksAfter = 0;
    for (; l < src.length;) {
      const s = this.indent(l);
      const e = this.lineEnd(l);
      if (l + s === e) {
        if (s > ci) fail();
        if (e >= src.length) fail();
        lines.push('');
        blanksAfter++;
        l = e + 1;
        continue;
      }
      if (s < ci) break;
      if (e >= src.length) fail();
      lines.push(src.slice(l + ci, e));
      blanksAfter = 0;
      l = e + 1;
    }
    const contentLines = lines.length - blanksAfter;
    if (contentLines === 0) fail();
    let text = '';
    let empty = 0;
    let started = false;
    let moreIndented = false;
    for (let k = 0; k < contentLines; k++) {
      const line = lines[k] as string;
      if (line === '') {
        empty++;
        continue;
      }
      if (!folded) text += '\n'.repeat(started ? 1 + empty : empty);
      else if (line.charCodeAt(0) === SPACE) {
        moreIndented = true;
        text += '\n'.repeat(started ? 1 + empty : empty);
      } else if (moreIndented) {
        moreIndented = false;
        text += '\n'.repeat(empty + 1);
      } else if (empty === 0) {
        if (started) text += ' ';
      } else text += '\n'.repeat(empty);
      text += line;
      started = true;
      empty = 0;
    }
    if (chomp === 'clip') text += '\n';
    else if (chomp === 'keep') text += '\n'.repeat(1 + blanksAfter);
    const next = this.nextContentLine(l);
    if (next < src.length && this.indent(next) > n) fail();
    this.pos = next;
    return { kind: 'scalar', text, plain: false, tag: undefined, offset: p };
  }

  // --- flow collections (one line) ---------------------------------------------------------

  private flowEnd = 0;

  private flowCollection(p: number, anchor: string | undefined): YNode {
    const src = this.src;
    const isMap = src.charCodeAt(p) === 123;
    const close = isMap ? 125 : 93;
    const out: YNode = isMap ? { kind: 'map', keys: [], values: [], offset: p } : { kind: 'seq', items: [], offset: p };
    if (anchor !== undefined) this.anchors.set(anchor, out);
    let i = this.skipSpaces(p + 1);
    if (src.charCodeAt(i) === close) {
      this.flowEnd = i + 1;
      return out;
    }
    for (;;) {
      if (out.kind === 'map') {
        const c = src.charCodeAt(i);
        let key: YNode;
        let after: number;
        if (c === 39 || c === 34) {
          const s = this.quoted(i);
          key = s.node;
          after = this.skipSpaces(s.end);
        } else {
          if (!this.plainStart(i, true)) fail();
          const s = this.plain(i, true);
          if (!s.key) fail();
          key = s.node;
          after = s.colon;
        }
        if (src.charCodeAt(after) !== COLON || src.charCodeAt(after + 1) !== SPACE) fail();
        const v = this.skipSpaces(after + 1);
        const r = this.flowNode(v);
        out.keys.push(key);
        out.values.push(r.node);
        i = r.end;
      } else {
        const r = this.flowNode(i);
        out.items.push(r.node);
        i = r.end;
      }
      i = this.skipSpaces(i);
      const c = src.charCodeAt(i);
      if (c === close) {
        this.flowEnd = i + 1;
        return out;
      }
      if (c !== 44 /* , */) fail();
      i = this.skipSpaces(i + 1);
      if (src.charCodeAt(i) === close) fail();
    }
  }

  /** A value inside a flow collection at `p` (maybe anchored); `end` is just after it. */
  private flowNode(p: number): { node: YNode; end: number } {
    const src = this.src;
    let i = p;
    let anchor: string | undefined;
    if (src.charCodeAt(i) === 38) {
      const a = this.anchorName(i + 1);
      if (src.charCodeAt(a.end) !== SPACE) fail();
      anchor = a.name;
      i = this.skipSpaces(a.end);
    }
    const c = src.charCodeAt(i);
    let node: YNode;
    let end: number;
    if (c === 42) {
      if (anchor !== undefined) fail();
      node = this.alias(i);
      end = this.aliasEnd;
    } else if (c === 91 || c === 123) {
      node = this.flowCollection(i, anchor);
      end = this.flowEnd;
    } else if (c === 39 || c === 34) {
      const s = this.quoted(i);
      node = this.anchored(anchor, s.node);
      end = s.end;
    } else {
      if (!this.plainStart(i, true)) fail();
      const s = this.plain(i, true);
      if (s.key) fail();
      node = this.anchored(anchor, s.node);
      end = s.end;
    }
    // A `:` right after a value would make it a key (a single-pair mapping): not in the subset.
    if (src.charCodeAt(this.skipSpaces(end)) === COLON) fail();
    return { node, end };
  }
}
