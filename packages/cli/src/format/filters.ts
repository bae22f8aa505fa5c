/**
 * `--filter key=value` as docker parses it: repeatable, keys checked against what the command
 * accepts, several values of one key OR-ed, different keys AND-ed.
 */
import { InvalidArgumentError } from '@shoal/common';

export type Filters = ReadonlyMap<string, readonly string[]>;

export function parseFilters(args: readonly string[], accepted: readonly string[]): Filters {
  const out = new Map<string, string[]>();
  for (const a of args) {
    const eq = a.indexOf('=');
    if (eq <= 0) throw new InvalidArgumentError(`bad format of filter (expected name=value): ${a}`);
    const key = a.slice(0, eq).trim().toLowerCase();
    const value = a.slice(eq + 1);
    if (!accepted.includes(key)) throw new InvalidArgumentError(`invalid filter '${key}'`);
    out.set(key, [...(out.get(key) ?? []), value]);
  }
  return out;
}

/** True when `labels` satisfies every `label=` filter value (`k` or `k=v`). */
export function matchLabels(labels: Readonly<Record<string, string>> | undefined, wanted: readonly string[]): boolean {
  return wanted.every((w) => {
    const eq = w.indexOf('=');
    if (eq < 0) return labels !== undefined && Object.hasOwn(labels, w);
    return labels?.[w.slice(0, eq)] === w.slice(eq + 1);
  });
}

/** docker's id filter: a prefix of the ID; name: a substring of the name. */
export function matchesAny(values: readonly string[] | undefined, test: (v: string) => boolean): boolean {
  return values === undefined || values.some(test);
}
