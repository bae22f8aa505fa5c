/**
 * A Go text/template subset, enough for what docker users write after `--format`:
 * `{{.Field.Sub}}`, `{{.Method "arg"}}`, `{{json .}}`, `{{.Labels | json}}`, `{{index .Spec.Labels "k"}}`,
 * `{{if .X}}..{{else}}..{{end}}`, `{{range .Xs}}{{.}} {{end}}`, `{{with .X}}..{{end}}`,
 * `{{- trim -}}` markers, `$` for the root, and docker's functions (json, join, split, lower,
 * upper, title, pad, truncate, println, printf) plus Go's (index, len, eq, ne, lt, le, gt, ge,
 * and, or, not). Values print as Go prints them: `<no value>` for a missing field, `[a b]` for
 * lists, `map[k:v]` for maps.
 */
import { InvalidArgumentError } from '@shoal/common';

type Value = unknown;

interface TextNode {
  readonly t: 'text';
  readonly text: string;
}
interface ActionNode {
  readonly t: 'action';
  readonly pipe: Pipeline;
}
interface IfNode {
  readonly t: 'if' | 'with';
  readonly pipe: Pipeline;
  readonly then: Node[];
  readonly otherwise: Node[];
}
interface RangeNode {
  readonly t: 'range';
  readonly pipe: Pipeline;
  readonly body: Node[];
  readonly otherwise: Node[];
}
type Node = TextNode | ActionNode | IfNode | RangeNode;

type Operand =
  | { readonly o: 'field'; readonly root: 'dot' | 'dollar'; readonly path: readonly string[] }
  | { readonly o: 'literal'; readonly value: Value }
  | { readonly o: 'func'; readonly name: string }
  | { readonly o: 'pipe'; readonly pipe: Pipeline };
type Command = readonly Operand[];
type Pipeline = readonly Command[];

/** A template that failed to parse or execute: the message says where, as Go's does. */
export class TemplateError extends InvalidArgumentError {}

const FUNCS: Record<string, (...args: Value[]) => Value> = {
  json: (v) => JSON.stringify(v ?? null),
  join: (list, sep) => (Array.isArray(list) ? list.map(show).join(String(sep)) : show(list)),
  split: (s, sep) => String(s).split(String(sep)),
  lower: (s) => show(s).toLowerCase(),
  upper: (s) => show(s).toUpperCase(),
  title: (s) => show(s).replace(/\b\w/g, (c) => c.toUpperCase()),
  pad: (s, left, right) => ' '.repeat(Number(left)) + show(s) + ' '.repeat(Number(right)),
  truncate: (s, n) => [...show(s)].slice(0, Number(n)).join(''),
  println: (...a) => a.map(show).join(' ') + '\n',
  printf: (fmt, ...a) => printf(String(fmt), a),
  index: (v, ...keys) => keys.reduce((acc: Value, k) => lookup(acc, String(k)), v),
  len: (v) =>
    Array.isArray(v) || typeof v === 'string'
      ? v.length
      : typeof v === 'object' && v !== null
        ? Object.keys(v).length
        : 0,
  eq: (a, ...b) => b.some((x) => x === a),
  ne: (a, b) => a !== b,
  lt: (a, b) => (a as number) < (b as number),
  le: (a, b) => (a as number) <= (b as number),
  gt: (a, b) => (a as number) > (b as number),
  ge: (a, b) => (a as number) >= (b as number),
  and: (...a) => a.find((x) => !truthy(x)) ?? a[a.length - 1],
  or: (...a) => a.find((x) => truthy(x)) ?? a[a.length - 1],
  not: (a) => !truthy(a),
};

function printf(fmt: string, args: Value[]): string {
  let i = 0;
  return fmt.replace(/%([-+ 0#]*\d*(?:\.\d+)?)([sdvqf%])/g, (_m, _flags: string, verb: string) => {
    if (verb === '%') return '%';
    const a = args[i++];
    if (verb === 'q') return JSON.stringify(show(a));
    if (verb === 'd') return String(Math.trunc(Number(a)));
    if (verb === 'f') return Number(a).toFixed(6);
    return show(a);
  });
}

function lookup(v: Value, key: string): Value {
  if (typeof v === 'object' && v !== null && Object.hasOwn(v, key)) return (v as Record<string, Value>)[key];
  return undefined;
}

function truthy(v: Value): boolean {
  if (v === undefined || v === null || v === false || v === 0 || v === '') return false;
  if (Array.isArray(v)) return v.length > 0;
  if (typeof v === 'object') return Object.keys(v).length > 0;
  return true;
}

/** Go's %v rendering of a JSON-shaped value. */
export function show(v: Value): string {
  if (v === undefined) return '<no value>';
  if (v === null) return '<nil>';
  if (typeof v === 'string') return v;
  if (typeof v === 'number' || typeof v === 'boolean' || typeof v === 'bigint') return String(v);
  if (Array.isArray(v)) return `[${v.map(show).join(' ')}]`;
  if (typeof v === 'object') {
    const entries = Object.entries(v).sort(([a], [b]) => (a < b ? -1 : a > b ? 1 : 0));
    return `map[${entries.map(([k, x]) => `${k}:${show(x)}`).join(' ')}]`;
  }
  return typeof v === 'symbol' ? v.toString() : typeof v === 'function' ? '<func>' : '';
}

// ---- lexing and parsing ----

interface Tok {
  readonly kind: 'text' | 'action';
  readonly text: string;
  readonly pos: number;
}

function lex(src: string): Tok[] {
  const out: Tok[] = [];
  let i = 0;
  while (i < src.length) {
    const open = src.indexOf('{{', i);
    if (open < 0) {
      out.push({ kind: 'text', text: src.slice(i), pos: i });
      break;
    }
    let text = src.slice(i, open);
    let start = open + 2;
    if (src[start] === '-' && /\s/.test(src[start + 1] ?? '')) {
      text = text.replace(/\s+$/, '');
      start += 1;
    }
    if (text !== '') out.push({ kind: 'text', text, pos: i });
    const close = findClose(src, start);
    if (close < 0) throw new TemplateError(`template: :${open + 1}: unclosed action`);
    let end = close;
    let next = close + 2;
    if (src[close - 1] === '-' && /\s/.test(src[close - 2] ?? '')) {
      end = close - 1;
      while (next < src.length && /\s/.test(src[next] ?? '')) next++;
    }
    out.push({ kind: 'action', text: src.slice(start, end).trim(), pos: open });
    i = next;
  }
  return out;
}

/** The index of the `}}` closing an action, skipping string literals. */
function findClose(src: string, from: number): number {
  let i = from;
  while (i < src.length) {
    const c = src[i];
    if (c === '"' || c === '`') {
      const q = c;
      i++;
      while (i < src.length && src[i] !== q) i += src[i] === '\\' && q === '"' ? 2 : 1;
      i++;
      continue;
    }
    if (c === '}' && src[i + 1] === '}') return i;
    i++;
  }
  return -1;
}

function tokenizeAction(s: string, pos: number): string[] {
  const out: string[] = [];
  let i = 0;
  while (i < s.length) {
    const c = s[i] ?? '';
    if (/\s/.test(c)) {
      i++;
    } else if (c === '"' || c === '`') {
      let j = i + 1;
      while (j < s.length && s[j] !== c) j += s[j] === '\\' && c === '"' ? 2 : 1;
      if (j >= s.length) throw new TemplateError(`template: :${pos + 1}: unterminated quoted string`);
      out.push(s.slice(i, j + 1));
      i = j + 1;
    } else if (c === '|' || c === '(' || c === ')') {
      out.push(c);
      i++;
    } else {
      let j = i;
      while (j < s.length && !/[\s|()]/.test(s[j] ?? '')) j++;
      out.push(s.slice(i, j));
      i = j;
    }
  }
  return out;
}

function parsePipeline(words: string[], pos: number): Pipeline {
  const cmds: Command[] = [];
  let cur: Operand[] = [];
  let i = 0;
  const operand = (w: string): Operand => {
    if (w === '.') return { o: 'field', root: 'dot', path: [] };
    if (w === '$') return { o: 'field', root: 'dollar', path: [] };
    if (w.startsWith('.')) return { o: 'field', root: 'dot', path: w.slice(1).split('.') };
    if (w.startsWith('$.')) return { o: 'field', root: 'dollar', path: w.slice(2).split('.') };
    if (w.startsWith('"')) return { o: 'literal', value: JSON.parse(w) as string };
    if (w.startsWith('`')) return { o: 'literal', value: w.slice(1, -1) };
    if (w === 'true' || w === 'false') return { o: 'literal', value: w === 'true' };
    if (w === 'nil') return { o: 'literal', value: null };
    if (/^-?\d+(\.\d+)?$/.test(w)) return { o: 'literal', value: Number(w) };
    if (Object.hasOwn(FUNCS, w)) return { o: 'func', name: w };
    throw new TemplateError(`template: :${pos + 1}: function "${w}" not defined`);
  };
  while (i < words.length) {
    const w = words[i++] ?? '';
    if (w === '|') {
      if (cur.length === 0) throw new TemplateError(`template: :${pos + 1}: missing command before '|'`);
      cmds.push(cur);
      cur = [];
    } else if (w === '(') {
      let depth = 1;
      const start = i;
      while (i < words.length && depth > 0) {
        if (words[i] === '(') depth++;
        else if (words[i] === ')') depth--;
        i++;
      }
      if (depth !== 0) throw new TemplateError(`template: :${pos + 1}: unclosed '('`);
      cur.push({ o: 'pipe', pipe: parsePipeline(words.slice(start, i - 1), pos) });
    } else if (w === ')') {
      throw new TemplateError(`template: :${pos + 1}: unexpected ')'`);
    } else {
      cur.push(operand(w));
    }
  }
  if (cur.length === 0) throw new TemplateError(`template: :${pos + 1}: missing value for command`);
  cmds.push(cur);
  return cmds;
}

function parse(src: string): Node[] {
  const toks = lex(src);
  let i = 0;
  const eof = (pos: number): TemplateError => new TemplateError(`template: :${pos + 1}: unexpected EOF`);
  /** Nodes up to one of `stopAt` (returned with the rest of its words), or to the end. */
  const block = (stopAt: readonly string[]): { nodes: Node[]; stop: string; words: string[] } => {
    const nodes: Node[] = [];
    while (i < toks.length) {
      const tok = toks[i++];
      if (tok === undefined) break;
      if (tok.kind === 'text') {
        nodes.push({ t: 'text', text: tok.text });
        continue;
      }
      const words = tokenizeAction(tok.text, tok.pos);
      const head = words[0] ?? '';
      if (head.startsWith('/*')) continue;
      if (stopAt.includes(head)) return { nodes, stop: head, words: words.slice(1) };
      if (head === 'if' || head === 'with' || head === 'range') {
        nodes.push(control(head, words.slice(1), tok.pos));
        continue;
      }
      if (head === 'end' || head === 'else')
        throw new TemplateError(`template: :${tok.pos + 1}: unexpected {{${head}}}`);
      nodes.push({ t: 'action', pipe: parsePipeline(words, tok.pos) });
    }
    return { nodes, stop: '', words: [] };
  };
  /** An if/with/range whose header was just read; consumes through its `end`. */
  const control = (head: 'if' | 'with' | 'range', header: string[], pos: number): Node => {
    const pipe = parsePipeline(header, pos);
    const body = block(['else', 'end']);
    let otherwise: Node[] = [];
    if (body.stop === 'else') {
      if (body.words[0] === 'if' && head === 'if') {
        // `{{else if X}}` nests an if in the else branch; the nested if consumes the shared `end`.
        otherwise = [control('if', body.words.slice(1), pos)];
      } else {
        const rest = block(['end']);
        if (rest.stop !== 'end') throw eof(pos);
        otherwise = rest.nodes;
      }
    } else if (body.stop !== 'end') {
      throw eof(pos);
    }
    return head === 'range'
      ? { t: 'range', pipe, body: body.nodes, otherwise }
      : { t: head, pipe, then: body.nodes, otherwise };
  };
  return block([]).nodes;
}

// ---- execution ----

interface Scope {
  readonly dot: Value;
  readonly root: Value;
}

function evalOperand(op: Operand, s: Scope, piped: Value[]): Value {
  switch (op.o) {
    case 'literal':
      return op.value;
    case 'pipe':
      return evalPipeline(op.pipe, s);
    case 'func':
      return FUNCS[op.name]?.(...piped);
    case 'field': {
      let v = op.root === 'dot' ? s.dot : s.root;
      for (const k of op.path) v = lookup(v, k);
      return v;
    }
  }
}

function evalCommand(cmd: Command, s: Scope, prev: Value[]): Value {
  const [head, ...rest] = cmd;
  if (head === undefined) return undefined;
  if (head.o === 'func') {
    const args = rest.map((o) => evalOperand(o, s, []));
    return evalOperand(head, s, [...args, ...prev]);
  }
  const v = evalOperand(head, s, []);
  // a method of the item, as Go's `{{.Label "k"}}`
  if (typeof v === 'function')
    return (v as (...a: Value[]) => Value)(...rest.map((o) => evalOperand(o, s, [])), ...prev);
  if (rest.length > 0 || prev.length > 0) throw new TemplateError(`template: can't give argument to non-function`);
  return v;
}

function evalPipeline(p: Pipeline, s: Scope): Value {
  let prev: Value[] = [];
  let v: Value;
  for (const cmd of p) {
    v = evalCommand(cmd, s, prev);
    prev = [v];
  }
  return v;
}

function exec(nodes: readonly Node[], s: Scope, out: string[]): void {
  for (const n of nodes) {
    switch (n.t) {
      case 'text':
        out.push(n.text);
        break;
      case 'action':
        out.push(show(evalPipeline(n.pipe, s)));
        break;
      case 'if':
      case 'with': {
        const v = evalPipeline(n.pipe, s);
        if (truthy(v)) exec(n.then, n.t === 'with' ? { ...s, dot: v } : s, out);
        else exec(n.otherwise, s, out);
        break;
      }
      case 'range': {
        const v = evalPipeline(n.pipe, s);
        const items = Array.isArray(v)
          ? v
          : typeof v === 'object' && v !== null
            ? Object.keys(v)
                .sort()
                .map((k) => (v as Record<string, Value>)[k])
            : [];
        if (items.length === 0) exec(n.otherwise, s, out);
        for (const item of items) exec(n.body, { ...s, dot: item }, out);
        break;
      }
    }
  }
}

/** A parsed template, executed once per value. */
export class Template {
  private readonly nodes: Node[];
  constructor(readonly source: string) {
    this.nodes = parse(source);
  }
  execute(value: Value): string {
    const out: string[] = [];
    exec(this.nodes, { dot: value, root: value }, out);
    return out.join('');
  }
}
