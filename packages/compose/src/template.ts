/**
 * Variable substitution in one string, as Docker CLI 28's `stack deploy` does it, quirks
 * included (see docs/compose.md, "Interpolation"), plus an opt-in Compose-spec mode.
 */

/** Looks a variable up: its value, or undefined when unset. */
export type Lookup = (name: string) => string | undefined;

/** A substitution failure; `template` is the text Docker quotes in its message. */
export class TemplateError extends Error {
  constructor(readonly template: string) {
    super(`Invalid template: ${JSON.stringify(template)}`);
  }
}

// $$ | $name[op...] | ${name[op...]} | $ (invalid). Operators are found by substring later.
const DOCKER_PATTERN = /\$(?:(\$)|([_a-z][_a-z0-9]*(?::?[-?][^}]*)?)|\{([_a-z][_a-z0-9]*(?::?[-?][^}]*)?)\}|())/gi;

function partition(s: string, sep: string): [string, string] {
  const i = s.indexOf(sep);
  return i < 0 ? [s, ''] : [s.slice(0, i), s.slice(i + sep.length)];
}

/**
 * Docker's substitution. Returns the new string and, like Docker, only the error of the
 * *last* substitution that set one (a later plain `$VAR` clears an earlier `:?` error).
 */
export function substituteDocker(template: string, lookup: Lookup): { value: string; error?: TemplateError } {
  let error: TemplateError | undefined;
  const value = template.replace(DOCKER_PATTERN, (_m, escaped?: string, named?: string, braced?: string) => {
    if (escaped) return escaped;
    const sub = named || braced || '';
    if (sub === '') {
      error = new TemplateError(template);
      return '';
    }
    // Soft default, hard default, required non-empty, required; each tried in turn and each
    // resets the error, as Docker's loop over its substitute functions does.
    error = undefined;
    if (sub.includes(':-')) {
      const [name, def] = partition(sub, ':-');
      const v = lookup(name);
      return v === undefined || v === '' ? def : v;
    }
    if (sub.includes('-')) {
      const [name, def] = partition(sub, '-');
      const v = lookup(name);
      return v === undefined ? def : v;
    }
    if (sub.includes(':?')) {
      const [name, msg] = partition(sub, ':?');
      const v = lookup(name);
      if (v === undefined || v === '') {
        error = new TemplateError(`required variable ${name} is missing a value: ${msg}`);
        return '';
      }
      return v;
    }
    if (sub.includes('?')) {
      const [name, msg] = partition(sub, '?');
      const v = lookup(name);
      if (v === undefined) {
        error = new TemplateError(`required variable ${name} is missing a value: ${msg}`);
        return '';
      }
      return v;
    }
    return lookup(sub) ?? '';
  });
  return error ? { value, error } : { value };
}

const NAME = /^[_a-zA-Z][_a-zA-Z0-9]*/;

/**
 * Compose-spec substitution (opt-in): nested templates inside defaults (`${A:-${B}}`), the
 * `${VAR:+alt}` / `${VAR+alt}` forms, unbraced `$VAR` never takes operators, errors are never
 * lost. Otherwise the same forms as Docker's.
 */
export function substituteCompat(template: string, lookup: Lookup): { value: string; error?: TemplateError } {
  try {
    return { value: expand(template, lookup, template) };
  } catch (e) {
    if (e instanceof TemplateError) return { value: '', error: e };
    throw e;
  }
}

function expand(s: string, lookup: Lookup, whole: string): string {
  let out = '';
  let i = 0;
  while (i < s.length) {
    const c = s[i];
    if (c !== '$') {
      out += c;
      i++;
      continue;
    }
    const next = s[i + 1];
    if (next === '$') {
      out += '$';
      i += 2;
      continue;
    }
    if (next === '{') {
      const end = matchingBrace(s, i + 1);
      if (end < 0) throw new TemplateError(whole);
      out += expandBraced(s.slice(i + 2, end), lookup, whole);
      i = end + 1;
      continue;
    }
    const m = NAME.exec(s.slice(i + 1));
    if (!m) throw new TemplateError(whole);
    out += lookup(m[0]) ?? '';
    i += 1 + m[0].length;
  }
  return out;
}

function matchingBrace(s: string, open: number): number {
  let depth = 0;
  for (let j = open; j < s.length; j++) {
    if (s[j] === '$' && s[j + 1] === '$') {
      j++;
      continue;
    }
    if (s[j] === '{') depth++;
    else if (s[j] === '}' && --depth === 0) return j;
  }
  return -1;
}

function expandBraced(body: string, lookup: Lookup, whole: string): string {
  const m = NAME.exec(body);
  if (!m) throw new TemplateError(whole);
  const name = m[0];
  const rest = body.slice(name.length);
  if (rest === '') return lookup(name) ?? '';
  const op = /^(:-|-|:\?|\?|:\+|\+)/.exec(rest);
  if (!op) throw new TemplateError(whole);
  const arg = rest.slice(op[0].length);
  const v = lookup(name);
  switch (op[0]) {
    case ':-':
      return v === undefined || v === '' ? expand(arg, lookup, whole) : v;
    case '-':
      return v === undefined ? expand(arg, lookup, whole) : v;
    case ':?':
      if (v === undefined || v === '')
        throw new TemplateError(`required variable ${name} is missing a value: ${expand(arg, lookup, whole)}`);
      return v;
    case '?':
      if (v === undefined)
        throw new TemplateError(`required variable ${name} is missing a value: ${expand(arg, lookup, whole)}`);
      return v;
    case ':+':
      return v === undefined || v === '' ? '' : expand(arg, lookup, whole);
    default:
      return v === undefined ? '' : expand(arg, lookup, whole);
  }
}
