/**
 * One formatter for every `ls` and `inspect` (docker's rules):
 * - no `--format`: the command's default table;
 * - `table` or `table TEMPLATE`: a header row, then one row per item, columns aligned;
 * - `json`: one JSON object per line;
 * - anything else: a Go template executed per item, one line each.
 * The header of a table comes from executing its template on the command's header names, so
 * `table {{.ID}}\t{{.Name}}` prints `ID   NAME` as docker does.
 */
import { Template, TemplateError, show } from './template.js';
import { alignColumns } from './tabwriter.js';

export interface FormatOptions {
  /** The command's default table template (without the `table ` prefix). */
  readonly defaultTable: string;
  /**
   * Header names by field, e.g. `{ ID: 'ID', ManagerStatus: 'MANAGER STATUS' }`; a method of the
   * rows (`{{.Label "k"}}`) has a function giving its header.
   */
  readonly headers: Readonly<Record<string, Header>>;
  /** The value `-q` prints per item (usually the ID). */
  readonly quietField?: string;
}

/** Formats `items` (view objects with the fields the templates name) as text lines. */
export function formatList(
  items: readonly object[],
  format: string | undefined,
  opts: FormatOptions & { quiet?: boolean },
): string {
  if (opts.quiet === true) {
    const field = opts.quietField ?? 'ID';
    return lines(items.map((i) => show((i as Record<string, unknown>)[field] ?? '')));
  }
  const f = format === undefined || format === '' ? `table ${opts.defaultTable}` : format;
  if (f === 'json') return lines(items.map((i) => JSON.stringify(i)));
  if (f === 'table' || f.startsWith('table ')) {
    const body = f === 'table' ? opts.defaultTable : f.slice('table '.length);
    const t = new Template(unescapeTabs(body));
    const header = t.execute(headerContext(opts.headers));
    return lines(alignColumns([header, ...items.map((i) => t.execute(i))]));
  }
  const t = new Template(unescapeTabs(f));
  return lines(items.map((i) => t.execute(i)));
}

/**
 * Formats objects for `inspect`: no format prints them as an indented JSON array (docker's
 * default); `json` prints each compactly; a template prints one line per object.
 */
export function formatInspect(objects: readonly object[], format: string | undefined): string {
  if (format === undefined || format === '') return JSON.stringify(objects, null, 4) + '\n';
  if (format === 'json') return lines(objects.map((o) => JSON.stringify(o)));
  const t = new Template(unescapeTabs(format));
  return lines(objects.map((o) => t.execute(o)));
}

/** Checks a format before anything runs, so a typo fails before the command acts. */
export function checkFormat(format: string | undefined): void {
  if (format === undefined || format === '' || format === 'json' || format === 'table') return;
  new Template(unescapeTabs(format.startsWith('table ') ? format.slice(6) : format));
}

export { TemplateError };

type Header = string | ((...args: unknown[]) => string);

function headerContext(headers: Readonly<Record<string, Header>>): Record<string, Header> {
  return new Proxy(
    { ...headers },
    {
      get: (target, key) =>
        typeof key === 'string' ? (target[key] ?? key.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase()) : undefined,
      has: () => true,
      getOwnPropertyDescriptor: (target, key) =>
        typeof key === 'string'
          ? {
              value: target[key] ?? key.replace(/([a-z])([A-Z])/g, '$1 $2').toUpperCase(),
              enumerable: true,
              configurable: true,
            }
          : undefined,
    },
  );
}

/** docker accepts a literal `\t` typed in a shell-quoted format as a tab. */
function unescapeTabs(s: string): string {
  return s.replace(/\\t/g, '\t').replace(/\\n/g, '\n');
}

function lines(ls: readonly string[]): string {
  return ls.length === 0 ? '' : ls.join('\n') + '\n';
}
