import { CST, Parser } from 'yaml';
import type { YNode } from './ynode.js';

/**
 * The fast path of the Compose YAML reader: builds the light node tree straight from the `yaml`
 * package's CST (Lexer + Parser), skipping its Document/Composer layer. It accepts only a
 * conservative subset of YAML that the Composer reads without any error or warning (block
 * mappings and sequences, single-line flow collections, plain/quoted/block scalars, value anchors
 * and aliases; no tags, directives, explicit keys or multi-document streams). Anything else
 * returns undefined, and the caller takes the Composer path, which also produces every error
 * message: so both paths give the same values, positions and diagnostics.
 */
export function cstDocument(source: string, onNewLine: (offset: number) => void): YNode | undefined {
  // Tabs and over-long keys have Composer-only rules: leave them to the Composer.
  if (source.includes('\t')) return undefined;
  let doc: CST.Document | undefined;
  for (const tok of new Parser(onNewLine).parse(source)) {
    if (tok.type === 'document') {
      if (doc) return undefined;
      doc = tok;
    } else if (!isBlank(tok.type)) return undefined;
  }
  if (!doc || !doc.value) return undefined;
  for (const t of doc.start) if (t.type !== 'doc-start' && !isBlank(t.type)) return undefined;
  if (doc.start.some((t) => t.type === 'doc-start') && !doc.start.some((t) => t.type === 'newline')) return undefined;
  if (doc.end) for (const t of doc.end) if (!isBlank(t.type)) return undefined;
  if (doc.value.type !== 'block-map') return undefined;
  const b = new Builder();
  try {
    return b.node(doc.value, undefined);
  } catch (e) {
    if (e instanceof Unsupported) return undefined;
    throw e;
  }
}

class Unsupported extends Error {}

function isBlank(type: string): boolean {
  return type === 'space' || type === 'newline' || type === 'comment';
}

/** Checks a run of separator tokens: only blanks, comments after white space, no tabs. */
function blanks(tokens: readonly CST.SourceToken[], from: number): boolean {
  let newline = false;
  for (let i = from; i < tokens.length; i++) {
    const t = tokens[i] as CST.SourceToken;
    if (t.type === 'newline') newline = true;
    else if (t.type === 'space') {
      if (t.source.includes('\t')) throw new Unsupported();
    } else if (t.type === 'comment') {
      const prev = tokens[i - 1];
      if (i === 0 || (prev?.type !== 'space' && prev?.type !== 'newline')) throw new Unsupported();
    } else throw new Unsupported();
  }
  return newline;
}

/** Where the Composer places an empty value: after the props, skipping trailing white space. */
function emptyOffset(end: number, before: readonly CST.SourceToken[]): number {
  let offset = end;
  for (let i = before.length - 1; i >= 0; --i) {
    let st = before[i] as CST.SourceToken;
    if (st.type === 'space' || st.type === 'comment' || st.type === 'newline') {
      offset -= st.source.length;
      continue;
    }
    for (st = before[++i] as CST.SourceToken; st?.type === 'space'; st = before[++i] as CST.SourceToken)
      offset += st.source.length;
    break;
  }
  return offset;
}

function tokenEnd(tokens: readonly CST.SourceToken[], fallback: number): number {
  const last = tokens[tokens.length - 1];
  return last ? last.offset + last.source.length : fallback;
}

class Builder {
  private readonly anchors = new Map<string, YNode>();

  /** Reads `props` (value properties after an indicator at `from`): at most one anchor. */
  private anchorIn(props: readonly CST.SourceToken[], from: number): { name: string | undefined; newline: boolean } {
    let name: string | undefined;
    let newline = false;
    for (let i = from; i < props.length; i++) {
      const t = props[i] as CST.SourceToken;
      if (t.type === 'anchor') {
        if (name !== undefined || newline || t.source.length < 2) throw new Unsupported();
        name = t.source.substring(1);
        const next = props[i + 1];
        if (!next || (next.type !== 'space' && next.type !== 'newline') || name.endsWith(':')) throw new Unsupported();
      } else if (t.type === 'newline') newline = true;
      else if (t.type === 'space') {
        if (t.source.includes('\t')) throw new Unsupported();
      } else if (t.type === 'comment') {
        const prev = props[i - 1];
        if (i === from || (prev?.type !== 'space' && prev?.type !== 'newline')) throw new Unsupported();
      } else throw new Unsupported();
    }
    return { name, newline };
  }

  private anchored(name: string | undefined, n: YNode): YNode {
    if (name !== undefined) this.anchors.set(name, n);
    return n;
  }

  private scalar(tok: CST.FlowScalar | CST.BlockScalar): { text: string; plain: boolean; offset: number } {
    let bad = false;
    const r = CST.resolveAsScalar(tok, true, () => (bad = true));
    if (bad || !r) throw new Unsupported();
    if ('end' in tok && tok.end) blanks(tok.end, 0);
    return { text: r.value, plain: r.type === 'PLAIN', offset: r.range[0] };
  }

  /** A value token (with an already read anchor name). */
  node(tok: CST.Token, anchor: string | undefined): YNode {
    if (
      tok.type === 'scalar' ||
      tok.type === 'single-quoted-scalar' ||
      tok.type === 'double-quoted-scalar' ||
      tok.type === 'block-scalar'
    ) {
      const s = this.scalar(tok);
      return this.anchored(anchor, { kind: 'scalar', text: s.text, plain: s.plain, tag: undefined, offset: s.offset });
    }
    if (tok.type === 'alias') {
      if (anchor !== undefined) throw new Unsupported();
      const target = this.anchors.get(tok.source.substring(1));
      if (!target) throw new Unsupported();
      if (tok.end) blanks(tok.end, 0);
      return { kind: 'alias', target, name: tok.source.substring(1), offset: tok.offset };
    }
    if (tok.type === 'block-map') return this.blockMap(tok, anchor);
    if (tok.type === 'block-seq') return this.blockSeq(tok, anchor);
    if (tok.type === 'flow-collection') return this.flow(tok, anchor);
    throw new Unsupported();
  }

  /** A mapping key: a single-line plain or quoted scalar. */
  private key(tok: CST.Token | undefined, indent: number | undefined): YNode {
    if (
      !tok ||
      (tok.type !== 'scalar' && tok.type !== 'single-quoted-scalar' && tok.type !== 'double-quoted-scalar') ||
      (indent !== undefined && tok.indent !== indent) ||
      tok.source.includes('\n') ||
      tok.source.includes('\r') ||
      tok.source.length > 1000 ||
      tok.end?.some((t) => t.type === 'newline')
    )
      throw new Unsupported();
    const s = this.scalar(tok);
    return { kind: 'scalar', text: s.text, plain: s.plain, tag: undefined, offset: s.offset };
  }

  /** The value after a `:` in `sep` (whose first token must be the indicator). */
  private mapValue(sep: readonly CST.SourceToken[], value: CST.Token | undefined, block: boolean): YNode {
    const ind = sep[0];
    if (ind?.type !== 'map-value-ind') throw new Unsupported();
    const { name, newline } = this.anchorIn(sep, 1);
    if (!value) {
      const offset = emptyOffset(tokenEnd(sep, ind.offset + 1), sep);
      return this.anchored(name, { kind: 'scalar', text: '', plain: true, tag: undefined, offset });
    }
    if ((value.type === 'block-map' || value.type === 'block-seq') && (!block || !newline)) throw new Unsupported();
    if (!block && newline) throw new Unsupported();
    return this.node(value, name);
  }

  private blockMap(bm: CST.BlockMap, anchor: string | undefined): YNode {
    const out: YNode = { kind: 'map', keys: [], values: [], offset: bm.offset };
    this.anchored(anchor, out);
    for (const item of bm.items) {
      blanks(item.start, 0);
      if (!item.key && !item.sep) {
        if ('value' in item && item.value) throw new Unsupported();
        continue;
      }
      if (!item.sep) throw new Unsupported();
      out.keys.push(this.key(item.key ?? undefined, bm.indent));
      out.values.push(this.mapValue(item.sep, item.value, true));
    }
    return out;
  }

  private blockSeq(bs: CST.BlockSequence, anchor: string | undefined): YNode {
    const out: YNode = { kind: 'seq', items: [], offset: bs.offset };
    this.anchored(anchor, out);
    for (const item of bs.items) {
      const i = item.start.findIndex((t) => t.type === 'seq-item-ind');
      if (i < 0) {
        blanks(item.start, 0);
        if (item.value) throw new Unsupported();
        continue;
      }
      const ind = item.start[i] as CST.SourceToken;
      if (ind.indent !== bs.indent) throw new Unsupported();
      blanks(item.start.slice(0, i), 0);
      const { name, newline } = this.anchorIn(item.start, i + 1);
      if (name !== undefined && item.value?.type === 'block-seq' && !newline) throw new Unsupported();
      if (!item.value) {
        const offset = emptyOffset(tokenEnd(item.start, ind.offset + 1), item.start);
        out.items.push(this.anchored(name, { kind: 'scalar', text: '', plain: true, tag: undefined, offset }));
      } else out.items.push(this.node(item.value, name));
    }
    return out;
  }

  /** A flow collection on one line, with no empty entries. */
  private flow(fc: CST.FlowCollection, anchor: string | undefined): YNode {
    const isMap = fc.start.type === 'flow-map-start';
    const close = fc.end[0];
    if (close?.type !== (isMap ? 'flow-map-end' : 'flow-seq-end')) throw new Unsupported();
    blanks(fc.end, 1);
    const out: YNode = isMap
      ? { kind: 'map', keys: [], values: [], offset: fc.offset }
      : { kind: 'seq', items: [], offset: fc.offset };
    this.anchored(anchor, out);
    fc.items.forEach((item, n) => {
      let i = 0;
      if (n > 0) {
        if (item.start[0]?.type !== 'comma') throw new Unsupported();
        i = 1;
      }
      const { name, newline } = this.anchorIn(item.start, i);
      if (newline || !item.value) throw new Unsupported();
      if (out.kind === 'map') {
        if (name !== undefined || !item.sep) throw new Unsupported();
        out.keys.push(this.key(item.key ?? undefined, undefined));
        out.values.push(this.mapValue(item.sep, item.value, false));
      } else {
        if (item.key || item.sep) throw new Unsupported();
        out.items.push(this.node(item.value, name));
      }
      const v = item.value;
      if ((v.type === 'scalar' || v.type.endsWith('quoted-scalar')) && 'source' in v && /[\r\n]/.test(v.source))
        throw new Unsupported();
    });
    return out;
  }
}
