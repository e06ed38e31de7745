/**
 * The pacing of notifications, pure (the clock is passed in): the 5-minute
 * dedupe Flux's notification-controller applies (the same event seen again
 * within the window is dropped), a per-provider token bucket (a burst of
 * changes cannot flood a channel or trip a chat service's own limit), and
 * the retry schedule of a failed delivery (exponential, capped).
 */

export const DEDUPE_WINDOW_MS = 5 * 60_000;

/** Remembers keys for a window; `seen` answers and records in one step. */
export class Deduper {
  private readonly until = new Map<string, number>();
  private readonly windowMs: number;
  private readonly now: () => number;
  constructor(windowMs: number = DEDUPE_WINDOW_MS, now: () => number = Date.now) {
    this.windowMs = windowMs;
    this.now = now;
  }

  /** True when `key` was recorded less than the window ago (a duplicate); otherwise records it. */
  seen(key: string): boolean {
    const t = this.now();
    if (this.until.size > 1000) for (const [k, u] of this.until) if (u <= t) this.until.delete(k);
    const u = this.until.get(key);
    if (u !== undefined && u > t) return true;
    this.until.set(key, t + this.windowMs);
    return false;
  }
}

export interface RateOptions {
  /** Deliveries allowed at once. */
  burst: number;
  /** Sustained deliveries per minute once the burst is spent. */
  perMinute: number;
}

export const DEFAULT_RATE: RateOptions = { burst: 10, perMinute: 30 };

/** Token bucket per key; `reserve` takes a token now or books the next one and says how long to wait. */
export class RateLimiter {
  private readonly buckets = new Map<string, { tokens: number; at: number }>();
  private readonly opts: RateOptions;
  private readonly now: () => number;
  constructor(opts: RateOptions = DEFAULT_RATE, now: () => number = Date.now) {
    this.opts = opts;
    this.now = now;
  }

  /** 0 when a delivery may go now; otherwise the milliseconds until its booked slot. */
  reserve(key: string): number {
    const t = this.now();
    const perMs = this.opts.perMinute / 60_000;
    const b = this.buckets.get(key) ?? { tokens: this.opts.burst, at: t };
    b.tokens = Math.min(this.opts.burst, b.tokens + (t - b.at) * perMs);
    b.at = t;
    b.tokens -= 1;
    this.buckets.set(key, b);
    return b.tokens >= 0 ? 0 : Math.ceil(-b.tokens / perMs);
  }
}

export interface RetryOptions {
  /** Attempts in all, the first included. */
  attempts: number;
  baseMs: number;
  maxMs: number;
}

export const DEFAULT_RETRY: RetryOptions = { attempts: 5, baseMs: 2_000, maxMs: 60_000 };

/** The wait before attempt `next` (2, 3…): base, 2×base, 4×base… never above max. */
export function backoffMs(next: number, opts: RetryOptions): number {
  return Math.min(opts.maxMs, opts.baseMs * 2 ** Math.max(0, next - 2));
}
