/**
 * The one usage-error path of every command: flags are parsed here, and
 * every mistake becomes one line in the project's wording (`--flag …`),
 * naming the flag and what it accepts, with exit code 2.
 */
import { accessSync, constants, statSync } from "node:fs";
import { type ParseArgsConfig, parseArgs } from "node:util";
import { MAX_TIMER_MS, parseGoDuration } from "../config/duration.ts";
import { UsageError } from "../errors.ts";

type Options = NonNullable<ParseArgsConfig["options"]>;

/**
 * A value for a string flag that starts with "-" (`--max-attempts -5`) is
 * taken as the value unless it is itself a flag of the command, so the
 * mistake is reported by the flag's own check, not as "ambiguous".
 */
function joinDashValues(argv: string[], options: Options): string[] {
  const out: string[] = [];
  const known = new Set<string>();
  for (const [name, o] of Object.entries(options)) {
    known.add(`--${name}`);
    if (o.short) known.add(`-${o.short}`);
  }
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i]!;
    if (arg === "--") {
      out.push(...argv.slice(i));
      break;
    }
    const name = arg.startsWith("--") && !arg.includes("=") ? arg.slice(2) : undefined;
    const next = argv[i + 1];
    if (
      name !== undefined &&
      options[name]?.type === "string" &&
      next?.startsWith("-") &&
      next !== "--" &&
      !known.has(next.split("=")[0]!)
    ) {
      out.push(`${arg}=${next}`);
      i++;
      continue;
    }
    out.push(arg);
  }
  return out;
}

/** parseArgs's error for `argv`, in the project's words. */
function usageText(err: unknown, argv: string[], options: Options): string {
  const code = (err as { code?: string }).code;
  const text = err instanceof Error ? err.message : String(err);
  const flag = /'(-{1,2}[^' ]+)/.exec(text)?.[1];
  if (code === "ERR_PARSE_ARGS_UNKNOWN_OPTION" && flag) {
    const names = Object.keys(options);
    const near = names.find(
      (n) => flag.replace(/^-+/, "").length >= 4 && n.startsWith(flag.replace(/^-+/, "").slice(0, 4)),
    );
    return `unknown flag ${flag}${near ? ` (did you mean --${near}?)` : ""}`;
  }
  if (code === "ERR_PARSE_ARGS_INVALID_OPTION_VALUE" && flag) {
    if (/does not take an argument/.test(text)) return `${flag} is a switch and takes no value`;
    return `${flag} needs a value`;
  }
  const first = text.split("\n")[0] ?? "";
  return first || `cannot read the flags ${argv.join(" ")}`;
}

/** parseArgs with strict checking, turning its exceptions into one-line usage errors. */
export function parseFlags<T extends Options>(command: string, argv: string[], options: T) {
  try {
    return parseArgs({ args: joinDashValues(argv, options), options, strict: true, allowPositionals: true });
  } catch (err) {
    throw new UsageError(`${usageText(err, argv, options)} (see 'shipmate ${command} --help')`);
  }
}

/** A flag that must be a positive integer; undefined when absent. */
export function positiveInt(value: string | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined;
  const n = /^[0-9]+$/.test(value.trim()) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(n) || n < 1)
    throw new UsageError(`${flag} must be a positive integer, got "${value}"`);
  return n;
}

/** Human form of a duration in ms, for messages (`24d20h31m23s`). */
export function formatDuration(ms: number): string {
  const parts: string[] = [];
  let s = Math.floor(ms / 1000);
  for (const [unit, size] of [
    ["d", 86_400],
    ["h", 3600],
    ["m", 60],
    ["s", 1],
  ] as const) {
    const n = Math.floor(s / size);
    if (n > 0) parts.push(`${n}${unit}`);
    s -= n * size;
  }
  return parts.join("") || `${ms}ms`;
}

export interface DurationBounds {
  /** Smallest value accepted, in ms (default 1 ms: a zero or negative duration is refused). */
  min?: number;
  /** Largest value accepted, in ms (default and cap: what a Node timer can hold, about 24.8 days). */
  max?: number;
}

/**
 * A duration flag (`30s`, `5m`, `1h30m`, Go syntax) in milliseconds; `dflt`
 * when absent. Values a timer cannot hold are refused: Node would fire such
 * a timer after 1 ms, turning `--interval=999999999h` into a busy loop.
 */
export function durationMs(
  value: string | undefined,
  flag: string,
  dflt: number,
  bounds: DurationBounds = {},
): number {
  if (value === undefined) return dflt;
  const min = bounds.min ?? 1;
  const max = Math.min(bounds.max ?? MAX_TIMER_MS, MAX_TIMER_MS);
  const ms = parseGoDuration(value.trim());
  const range = `from ${min < 1000 ? `${min}ms` : formatDuration(min)} to ${formatDuration(max)}`;
  if (ms === undefined || !Number.isFinite(ms))
    throw new UsageError(`${flag} must be a duration such as 30s, 5m or 1h30m (${range}), got "${value}"`);
  if (ms < min || ms > max) throw new UsageError(`${flag} must be a duration ${range}, got "${value}"`);
  return ms;
}

/**
 * A directory the command reads (a checkout, a policies folder): it must
 * exist, be a directory and be readable, else one line naming the flag.
 */
export function readableDir(path: string, flag: string): string {
  let isDir = false;
  try {
    isDir = statSync(path).isDirectory();
  } catch {
    throw new UsageError(`${flag} ${path}: no such directory`);
  }
  if (!isDir) throw new UsageError(`${flag} ${path}: not a directory`);
  try {
    accessSync(path, constants.R_OK | constants.X_OK);
  } catch {
    throw new UsageError(`${flag} ${path}: permission denied`);
  }
  return path;
}
