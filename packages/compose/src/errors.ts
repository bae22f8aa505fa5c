import { ShoalError } from '@shoal/common';

/** Where a diagnostic points: a file and a 1-based line and column. */
export interface SourcePos {
  file: string;
  line: number;
  column: number;
}

/**
 * One problem found while loading, validating or converting a Compose file. `path` is the
 * key path in Docker's notation (`services.web.deploy.replicas`, `(root)` at the top);
 * `message` is Docker CLI 28's text where Docker has one.
 */
export interface Diagnostic extends SourcePos {
  path: string;
  message: string;
}

/** A warning Docker would print on stderr (or one Shoal adds), with a position when known. */
export interface Warning {
  message: string;
  pos?: SourcePos;
}

/**
 * `file:line:column: message`, or just the message when there is no position (line 0: a file
 * that cannot be read, whose message names it).
 */
export function formatDiagnostic(d: Diagnostic): string {
  if (d.line === 0) return d.message;
  return `${d.file}:${d.line}:${d.column}: ${d.message}`;
}

/**
 * Thrown when a Compose file (or set of files) is rejected. Carries every problem found, not
 * just the first: the message lists them one per line, each with file:line:column.
 */
export class ComposeError extends ShoalError {
  readonly diagnostics: readonly Diagnostic[];

  constructor(diagnostics: readonly Diagnostic[]) {
    super('COMPOSE_INVALID', diagnostics.map(formatDiagnostic).join('\n'), {
      kind: 'invalid-argument',
    });
    this.diagnostics = diagnostics;
  }
}

/** Collects diagnostics; `throwIfAny` raises one ComposeError with all of them. */
export class Diagnostics {
  readonly list: Diagnostic[] = [];

  add(pos: SourcePos | undefined, path: string, message: string): void {
    this.list.push({ file: pos?.file ?? '', line: pos?.line ?? 0, column: pos?.column ?? 0, path, message });
  }

  get size(): number {
    return this.list.length;
  }

  /** Files in the order they were given, for sorting. */
  fileOrder: string[] = [];

  throwIfAny(): void {
    if (this.list.length > 0) throw new ComposeError(sortDiagnostics(this.list, this.fileOrder));
  }
}

/** Stable order: by file (in the order first seen), line, column, message. */
export function sortDiagnostics(list: readonly Diagnostic[], files: readonly string[] = []): Diagnostic[] {
  const fileOrder = new Map<string, number>();
  for (const f of files) if (!fileOrder.has(f)) fileOrder.set(f, fileOrder.size);
  for (const d of list) if (!fileOrder.has(d.file)) fileOrder.set(d.file, fileOrder.size);
  return [...list].sort(
    (a, b) =>
      (fileOrder.get(a.file) ?? 0) - (fileOrder.get(b.file) ?? 0) ||
      a.line - b.line ||
      a.column - b.column ||
      (a.message < b.message ? -1 : a.message > b.message ? 1 : 0),
  );
}
