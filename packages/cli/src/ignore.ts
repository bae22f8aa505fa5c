import { ShoalError } from '@shoal/common';

/**
 * A catch handler that swallows only ShoalErrors with one of `codes` and rethrows anything else:
 * `await engine.remove(id).catch(ignoreCodes('ENGINE_CONTAINER_NOT_FOUND'))`.
 */
export function ignoreCodes(...codes: string[]): (err: unknown) => undefined {
  return (err: unknown) => {
    if (err instanceof ShoalError && codes.includes(err.code)) return undefined;
    throw err;
  };
}
