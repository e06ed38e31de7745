import { type ParseArgsConfig, parseArgs } from "node:util";
import { parseDuration } from "../agent/kustomization.ts";
import { UsageError } from "../errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/** parseArgs with strict checking, turning its exceptions into one-line usage errors. */
export function parseFlags<T extends Options>(command: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: argv, options, strict: true, allowPositionals: true });
  } catch (err) {
    const msg = err instanceof Error ? err.message.split("\n")[0] : String(err);
    throw new UsageError(`${msg} (see 'shipmate ${command} --help')`);
  }
}

/** A flag that must be a positive integer; undefined when absent. */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = Number(value);
  if (!Number.isInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** A duration flag (`30s`, `5m`, `1h30m`) in milliseconds; `dflt` when absent. */
export function durationMs(value: string | undefined, flag: string, dflt: number): number {
  if (value === undefined) return dflt;
  try {
    return parseDuration(value);
  } catch {
    throw new UsageError(`${flag} must be a duration such as 30s or 5m, got "${value}"`);
  }
}
