/**
 * `Notifier.send(event, targets)`: hands an event to providers without ever
 * making the caller wait. The call only queues; deliveries run on timers:
 * an event already sent to a target within 5 minutes is dropped (./limits.ts),
 * each target is paced by its token bucket, and a delivery that fails in a
 * way that may pass (no answer, 5xx, 429) is retried with exponential
 * backoff, then given up with one log line. Configuration errors and 4xx
 * answers are not retried. A slow or dead provider therefore costs a
 * reconcile nothing: at most `maxPending` deliveries wait, the oldest beyond
 * that are dropped (and said so). Log lines never carry an address or a
 * token (`redact` removes any secret registered with src/errors.ts).
 */
import { redact } from "../errors.ts";
import { DeliveryError } from "./errors.ts";
import { eventKey, type NotifyEvent } from "./event.ts";
import {
  backoffMs,
  DEDUPE_WINDOW_MS,
  DEFAULT_RATE,
  DEFAULT_RETRY,
  Deduper,
  RateLimiter,
  type RateOptions,
  type RetryOptions,
} from "./limits.ts";
import type { NotificationProvider } from "./providers/types.ts";

export interface NotifyTarget {
  /** Stable and secret-free: the dedupe and rate-limit key, and the name in log lines (`Provider apps/slack`). */
  id: string;
  /** Rate-limit bucket, when several targets share one provider (the agent: one per Alert, bucket per Provider); default `id`. */
  rateKey?: string;
  provider: NotificationProvider;
  timeoutMs?: number;
  /** Told once a delivery is given up (the agent records a Warning event on the Alert). */
  onGiveUp?: (message: string) => void;
}

export interface NotifierLog {
  warn(obj: object, msg: string): void;
  debug?(obj: object, msg: string): void;
}

export interface NotifierOptions {
  log?: NotifierLog;
  dedupeMs?: number;
  rate?: RateOptions;
  retry?: RetryOptions;
  maxPending?: number;
  now?: () => number;
}

export interface NotifierStats {
  sent: number;
  deduplicated: number;
  retried: number;
  failed: number;
  dropped: number;
}

const DEFAULT_TIMEOUT_MS = 15_000;

interface Job {
  target: NotifyTarget;
  event: NotifyEvent;
  attempt: number;
  timer?: NodeJS.Timeout;
}

export class Notifier {
  readonly stats: NotifierStats = { sent: 0, deduplicated: 0, retried: 0, failed: 0, dropped: 0 };
  private readonly dedupe: Deduper;
  private readonly limiter: RateLimiter;
  private readonly retry: RetryOptions;
  private readonly maxPending: number;
  private readonly log: NotifierLog | undefined;
  private readonly jobs = new Set<Job>();
  private idleWaiters: (() => void)[] = [];
  private closed = false;

  constructor(opts: NotifierOptions = {}) {
    const now = opts.now ?? Date.now;
    this.dedupe = new Deduper(opts.dedupeMs ?? DEDUPE_WINDOW_MS, now);
    this.limiter = new RateLimiter(opts.rate ?? DEFAULT_RATE, now);
    this.retry = opts.retry ?? DEFAULT_RETRY;
    this.maxPending = opts.maxPending ?? 500;
    this.log = opts.log;
  }

  /** Queues the event for each target and returns at once. */
  send(event: NotifyEvent, targets: readonly NotifyTarget[]): void {
    if (this.closed) return;
    const key = eventKey(event);
    for (const target of targets) {
      if (this.dedupe.seen(`${target.id}\u0000${key}`)) {
        this.stats.deduplicated++;
        continue;
      }
      if (this.jobs.size >= this.maxPending) this.dropOldest();
      const job: Job = { target, event, attempt: 1 };
      this.jobs.add(job);
      this.schedule(job, this.limiter.reserve(target.rateKey ?? target.id));
    }
  }

  /** Resolves once nothing is queued or waiting for a retry (tests; the CLI before it exits, with a bound). */
  idle(): Promise<void> {
    if (this.jobs.size === 0) return Promise.resolve();
    return new Promise((resolve) => this.idleWaiters.push(resolve));
  }

  /** Waits for the queue to empty, at most `ms`; what is still pending then is dropped. */
  async drain(ms: number): Promise<void> {
    let timer: NodeJS.Timeout | undefined;
    await Promise.race([this.idle(), new Promise<void>((r) => (timer = setTimeout(r, ms)))]);
    clearTimeout(timer);
    this.close();
  }

  /** Stops every timer; pending deliveries are dropped. */
  close(): void {
    this.closed = true;
    for (const job of this.jobs) clearTimeout(job.timer);
    this.stats.dropped += this.jobs.size;
    this.jobs.clear();
    this.settle();
  }

  private dropOldest(): void {
    const oldest = this.jobs.values().next().value;
    if (!oldest) return;
    clearTimeout(oldest.timer);
    this.jobs.delete(oldest);
    this.stats.dropped++;
    this.log?.warn({ target: oldest.target.id }, "notification queue full: oldest notification dropped");
  }

  private schedule(job: Job, delayMs: number): void {
    job.timer = setTimeout(() => void this.deliver(job), delayMs);
  }

  private async deliver(job: Job): Promise<void> {
    if (!this.jobs.has(job)) return;
    const { target, event } = job;
    try {
      await target.provider.post(event, AbortSignal.timeout(target.timeoutMs ?? DEFAULT_TIMEOUT_MS));
      this.stats.sent++;
      this.finish(job);
      this.log?.debug?.({ target: target.id, reason: event.reason }, "notification sent");
    } catch (err) {
      if (!this.jobs.has(job)) return;
      const retryable = err instanceof DeliveryError ? err.retryable : false;
      const message = redact(err instanceof Error ? err.message : String(err));
      if (retryable && job.attempt < this.retry.attempts) {
        job.attempt++;
        this.stats.retried++;
        this.log?.debug?.(
          { target: target.id, attempt: job.attempt },
          `notification failed, retrying: ${message}`,
        );
        this.schedule(job, backoffMs(job.attempt, this.retry));
        return;
      }
      this.stats.failed++;
      this.finish(job);
      const line = `notification not delivered after ${job.attempt} attempt(s): ${message}`;
      this.log?.warn({ target: target.id, reason: event.reason }, line);
      target.onGiveUp?.(line);
    }
  }

  private finish(job: Job): void {
    this.jobs.delete(job);
    this.settle();
  }

  private settle(): void {
    if (this.jobs.size) return;
    const waiters = this.idleWaiters;
    this.idleWaiters = [];
    for (const w of waiters) w();
  }
}
