/** Go `time.ParseDuration` syntax (`72h`, `1h30m`, `1.5h`, `300ms`), as Flux users write durations. */

const UNIT_MS: Record<string, number> = {
  ns: 1e-6,
  us: 1e-3,
  µs: 1e-3,
  μs: 1e-3,
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
};

const TERM = /([0-9]*(?:\.[0-9]*)?)(ns|us|µs|μs|ms|s|m|h)/y;

/** Milliseconds, or `undefined` when `text` is not a Go duration. A sign is accepted as Go does. */
export function parseGoDuration(text: string): number | undefined {
  let s = text;
  let sign = 1;
  if (s[0] === "-" || s[0] === "+") {
    sign = s[0] === "-" ? -1 : 1;
    s = s.slice(1);
  }
  if (s === "0") return 0;
  if (s === "") return undefined;
  let total = 0;
  TERM.lastIndex = 0;
  while (TERM.lastIndex < s.length) {
    const m = TERM.exec(s);
    if (!m) return undefined;
    const number = m[1]!;
    // Go wants a digit on at least one side of the dot.
    if (!/[0-9]/.test(number)) return undefined;
    total += Number(number) * UNIT_MS[m[2]!]!;
  }
  return sign * total;
}

/** The longest delay a Node timer holds (2^31-1 ms, about 24.8 days); beyond it Node fires after 1 ms. */
export const MAX_TIMER_MS = 2 ** 31 - 1;

/** A delay a timer can hold: negative or non-finite becomes 0 or the cap, never 1 ms by overflow. */
export function timerMs(ms: number): number {
  if (Number.isNaN(ms) || ms < 0) return 0;
  return Math.min(ms, MAX_TIMER_MS);
}

/** Flux CRDs' interval pattern (ImageRepository, ImagePolicy, ImageUpdateAutomation `spec.interval`). */
export const FLUX_INTERVAL = /^([0-9]+(\.[0-9]+)?(ms|s|m|h))+$/;
