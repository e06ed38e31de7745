/**
 * The HTTP layer under the registry client: one place that counts every
 * request, enforces the per-registry concurrency limit and request budget,
 * retries network errors and 5xx with exponential backoff and full jitter,
 * honours 429 Retry-After within a bound, follows redirects without leaking
 * credentials to other hosts, bounds response sizes and time, and turns any
 * unusable answer into one RegistryError line.
 */
import { AsyncLocalStorage } from "node:async_hooks";
import { setTimeout as sleep } from "node:timers/promises";
import type { z } from "zod";
import { RegistryError, RegistryTooLargeError, redact } from "../errors.ts";
import { isLoopback } from "./reference.ts";
import { ErrorBody } from "./schemas.ts";

export type RequestKind = "tags" | "manifest" | "blob" | "token";

/** The tally of the work in progress (`countRequests`), carried across awaits. */
const tally = new AsyncLocalStorage<{ requests: number }>();

/**
 * Runs `work` and counts the HTTP requests it sends (retries, redirects and
 * token requests included), apart from any other work running at the same
 * time on the same client: what one repository's part of a scan cost.
 */
export async function countRequests<T>(work: () => Promise<T>): Promise<{ value: T; requests: number }> {
  const counter = { requests: 0 };
  const value = await tally.run(counter, work);
  return { value, requests: counter.requests };
}

export interface RetryOptions {
  /** Attempts in total (first try included). Default 4. */
  attempts?: number;
  /** First backoff ceiling; doubles per retry. Default 250 ms. */
  baseDelayMs?: number;
  /** Backoff ceiling. Default 8 s. */
  maxDelayMs?: number;
  /** A 429 asking to wait longer than this fails instead of stalling the scan. Default 60 s. */
  maxRetryAfterMs?: number;
}

export interface TransportOptions {
  /** Requests in flight per registry. Default 8. */
  concurrency?: number;
  /** Requests per registry per client (retries, redirects and token requests included). Default 10,000. */
  maxRequestsPerRegistry?: number;
  retry?: RetryOptions;
  /** Per request: until the headers, and between two body chunks when streaming. Default 30 s. */
  timeoutMs?: number;
  userAgent?: string;
  /** `HOST[:PORT]` reached over plain HTTP although not loopback (`--insecure-registry`, Flux `spec.insecure`). */
  insecureRegistries?: Iterable<string>;
}

export interface RequestStats {
  /** HTTP requests sent, retries, redirects and token requests included. */
  total: number;
  byRegistry: Record<string, number>;
  byKind: Record<RequestKind, number>;
  retries: number;
  /** Answers served from the persistent or in-memory cache instead of a request. */
  cacheHits: number;
}

export interface HttpRequest {
  /** The registry the request is for (accounting, limits, messages), even when sent to a token realm. */
  registry: string;
  url: URL;
  method?: "GET" | "HEAD" | "POST" | "PUT";
  headers?: Record<string, string>;
  /** Sent as is on every attempt (a retry resends it whole). */
  body?: string | Buffer;
  kind: RequestKind;
  /** What is being fetched, for messages: `tag list of team/app`. */
  what: string;
}

class Semaphore {
  private active = 0;
  private readonly waiting: (() => void)[] = [];
  private readonly limit: number;
  constructor(limit: number) {
    this.limit = limit;
  }
  async acquire(): Promise<() => void> {
    if (this.active >= this.limit) await new Promise<void>((r) => this.waiting.push(r));
    this.active++;
    let released = false;
    return () => {
      if (released) return;
      released = true;
      this.active--;
      this.waiting.shift()?.();
    };
  }
}

const REDIRECTS = new Set([301, 302, 303, 307, 308]);
const MAX_REDIRECTS = 5;

/** A deadline that streaming readers push forward on every chunk. */
export class IdleTimeout {
  readonly controller = new AbortController();
  private readonly ms: number;
  private timer: NodeJS.Timeout | undefined;
  constructor(ms: number) {
    this.ms = ms;
    this.resume();
  }
  touch(): void {
    this.timer?.refresh();
  }
  /** Stops the clock while the consumer, not the registry, is the one taking time. */
  pause(): void {
    clearTimeout(this.timer);
    this.timer = undefined;
  }
  resume(): void {
    this.pause();
    this.timer = setTimeout(() => this.controller.abort(new IdleTimeoutError(this.ms)), this.ms);
    // A deadline for I/O that keeps the process alive by itself: the clock alone never should.
    this.timer.unref();
  }
  clear(): void {
    this.pause();
  }
}

class IdleTimeoutError extends Error {
  constructor(ms: number) {
    super(`no answer within ${ms < 1000 ? `${ms}ms` : `${Math.round(ms / 1000)}s`}`);
    this.name = "TimeoutError";
  }
}

/** Network-level failures at all (as opposed to an answer we did not like). */
function isTransient(err: unknown): boolean {
  if (!(err instanceof Error) || err instanceof RegistryError) return false;
  return err.name === "TypeError" || err.name === "TimeoutError" || err.name === "AbortError";
}

/**
 * Errors no retry can mend: a name that does not resolve, a certificate the
 * client does not trust (or TLS spoken to a plain port), and a registry that
 * let the whole timeout pass without answering; one more attempt would only
 * wait as long again.
 */
const PERMANENT_CODES =
  /^(ENOTFOUND|EAI_NONAME|EAI_FAIL|CERT_|ERR_TLS_|ERR_SSL_|DEPTH_ZERO_|SELF_SIGNED_|UNABLE_TO_(VERIFY|GET)_|HOSTNAME_MISMATCH)/;

export function isRetryable(err: unknown): boolean {
  if (!isTransient(err)) return false;
  const e = err as Error;
  const cause = (e as { cause?: unknown }).cause;
  if (e.name === "TimeoutError" || cause instanceof IdleTimeoutError) return false;
  const code = cause instanceof Error ? (cause as NodeJS.ErrnoException).code : undefined;
  return !(code && PERMANENT_CODES.test(code));
}

/** What went wrong on the wire, in a few words (`ECONNRESET`, `no answer within 30s`). */
export function networkReason(err: unknown): string {
  if (!(err instanceof Error)) return String(err);
  const cause = (err as { cause?: unknown }).cause;
  if (cause instanceof Error) return (cause as NodeJS.ErrnoException).code ?? cause.message;
  if (err.name === "AbortError" && cause) return String(cause);
  return err.message;
}

/** Retry-After: delta-seconds or an HTTP-date (RFC 9110 §10.2.3). */
export function parseRetryAfter(value: string | null, now = Date.now()): number | undefined {
  if (!value) return undefined;
  if (/^\d+$/.test(value.trim())) return Number(value.trim()) * 1000;
  const at = Date.parse(value);
  return Number.isNaN(at) ? undefined : Math.max(0, at - now);
}

export class Transport {
  private readonly limit: number;
  private readonly budget: number;
  private readonly retry: Required<RetryOptions>;
  readonly timeoutMs: number;
  private readonly userAgent: string;
  private readonly insecure: Set<string>;
  private readonly semaphores = new Map<string, Semaphore>();
  private readonly counted: RequestStats = {
    total: 0,
    byRegistry: {},
    byKind: { tags: 0, manifest: 0, blob: 0, token: 0 },
    retries: 0,
    cacheHits: 0,
  };

  constructor(opts: TransportOptions = {}) {
    this.limit = opts.concurrency ?? 8;
    this.budget = opts.maxRequestsPerRegistry ?? 10_000;
    this.retry = {
      attempts: opts.retry?.attempts ?? 4,
      baseDelayMs: opts.retry?.baseDelayMs ?? 250,
      maxDelayMs: opts.retry?.maxDelayMs ?? 8_000,
      maxRetryAfterMs: opts.retry?.maxRetryAfterMs ?? 60_000,
    };
    this.timeoutMs = opts.timeoutMs ?? 30_000;
    this.userAgent = opts.userAgent ?? "shipmate";
    this.insecure = new Set([...(opts.insecureRegistries ?? [])].map((r) => r.toLowerCase()));
  }

  stats(): RequestStats {
    return structuredClone(this.counted);
  }

  cacheHit(): void {
    this.counted.cacheHits++;
  }

  /** Plain HTTP for loopback and registries declared insecure; HTTPS for everything else. */
  isPlainHttpAllowed(host: string): boolean {
    const h = host.toLowerCase();
    return isLoopback(h) || this.insecure.has(h) || this.insecure.has(h.replace(/:\d+$/, ""));
  }

  baseUrl(apiHost: string): string {
    return `${this.isPlainHttpAllowed(apiHost) ? "http" : "https"}://${apiHost}`;
  }

  private semaphore(registry: string): Semaphore {
    let s = this.semaphores.get(registry);
    if (!s) {
      s = new Semaphore(this.limit);
      this.semaphores.set(registry, s);
    }
    return s;
  }

  private count(req: HttpRequest): void {
    const used = this.counted.byRegistry[req.registry] ?? 0;
    if (used >= this.budget)
      throw new RegistryError(
        req.registry,
        `request budget of ${this.budget} requests exhausted (at ${req.what})`,
      );
    this.counted.byRegistry[req.registry] = used + 1;
    this.counted.total++;
    const own = tally.getStore();
    if (own) own.requests++;
    this.counted.byKind[req.kind]++;
  }

  /** One exchange, redirects followed by hand so Authorization never travels to another origin. */
  private async exchange(req: HttpRequest, signal: AbortSignal): Promise<Response> {
    let url = req.url;
    let method = req.method ?? "GET";
    let body: string | Buffer | undefined = req.body;
    const headers: Record<string, string> = { "User-Agent": this.userAgent, ...req.headers };
    for (let hop = 0; ; hop++) {
      this.count(req);
      const res = await fetch(url, { method, headers, body, redirect: "manual", signal });
      if (!REDIRECTS.has(res.status)) return res;
      await res.body?.cancel();
      const location = res.headers.get("location");
      if (!location || hop >= MAX_REDIRECTS)
        throw new RegistryError(
          req.registry,
          `${req.what}: ${location ? "too many redirects" : `redirect (HTTP ${res.status}) without Location`}`,
          res.status,
        );
      const next = new URL(location, url);
      if (next.protocol === "http:" && !this.isPlainHttpAllowed(next.host))
        throw new RegistryError(
          req.registry,
          `${req.what}: refusing a redirect to plain HTTP (${next.host})`,
        );
      if (next.protocol !== "http:" && next.protocol !== "https:")
        throw new RegistryError(
          req.registry,
          `${req.what}: redirect to unsupported URL scheme ${next.protocol}`,
        );
      if (next.origin !== url.origin) delete headers.Authorization;
      if (res.status === 303) {
        method = "GET";
        body = undefined;
      }
      url = next;
    }
  }

  /**
   * Sends with retries and hands the final response to `use` while the
   * registry slot is held. `use` sees any status below 500 except 429;
   * persistent 5xx/429 become a RegistryError. Transient failures inside
   * `use` (a body cut short, a timeout) retry the whole exchange.
   */
  async request<T>(req: HttpRequest, use: (res: Response) => Promise<T>): Promise<T> {
    return this.withRetries(req, async (res, timer) => {
      try {
        return await use(res);
      } finally {
        timer.clear();
      }
    });
  }

  /**
   * Like request, but for a body the caller streams at its own pace: the
   * registry slot is released once headers arrive (a paused consumer must
   * not starve other requests), and the returned timer must be touched per
   * chunk and cleared when done.
   */
  async open(req: HttpRequest): Promise<{ res: Response; timer: IdleTimeout }> {
    return this.withRetries(req, async (res, timer) => ({ res, timer }), true);
  }

  private async withRetries<T>(
    req: HttpRequest,
    use: (res: Response, timer: IdleTimeout) => Promise<T>,
    releaseEarly = false,
  ): Promise<T> {
    const { attempts, baseDelayMs, maxDelayMs, maxRetryAfterMs } = this.retry;
    for (let attempt = 1; ; attempt++) {
      const last = attempt >= attempts;
      const release = await this.semaphore(req.registry).acquire();
      const timer = new IdleTimeout(this.timeoutMs);
      let wait: number | undefined;
      try {
        let res: Response;
        try {
          res = await this.exchange(req, timer.controller.signal);
        } catch (err) {
          timer.clear();
          if (!isRetryable(err) || last) throw this.unreachable(req, err);
          wait = backoff(attempt, baseDelayMs, maxDelayMs);
          continue;
        }
        if (res.status === 429) {
          const after = parseRetryAfter(res.headers.get("retry-after"));
          if (last || (after !== undefined && after > maxRetryAfterMs)) {
            const failure = await describeFailure(res, req);
            timer.clear();
            throw new RegistryError(
              req.registry,
              `${failure} — rate limited${after !== undefined ? `, the registry asks to retry after ${Math.ceil(after / 1000)}s` : ""}`,
              429,
            );
          }
          await res.body?.cancel();
          timer.clear();
          wait = after ?? backoff(attempt, baseDelayMs, maxDelayMs);
          continue;
        }
        if (res.status >= 500) {
          if (last) {
            const failure = await describeFailure(res, req);
            timer.clear();
            throw new RegistryError(req.registry, `${failure} (after ${attempts} attempts)`, res.status);
          }
          await res.body?.cancel();
          timer.clear();
          wait = backoff(attempt, baseDelayMs, maxDelayMs);
          continue;
        }
        if (releaseEarly) release();
        try {
          return await use(res, timer);
        } catch (err) {
          timer.clear();
          if (!isRetryable(err) || last) throw this.unreachable(req, err);
          wait = backoff(attempt, baseDelayMs, maxDelayMs);
        }
      } finally {
        release();
        if (wait !== undefined) {
          this.counted.retries++;
          await sleep(wait);
        }
      }
    }
  }

  private unreachable(req: HttpRequest, err: unknown): unknown {
    if (!isTransient(err)) return err;
    return new RegistryError(
      req.registry,
      `${req.what}: cannot reach ${req.url.origin} (${redact(networkReason(err))})`,
      undefined,
      { cause: err },
    );
  }
}

function backoff(attempt: number, base: number, max: number): number {
  return Math.random() * Math.min(max, base * 2 ** (attempt - 1));
}

/** Reads at most `limit` bytes, failing (not truncating) when the answer is larger. */
export async function readLimited(
  res: Response,
  limit: number,
  ctx: { registry: string; what: string },
): Promise<Buffer> {
  const declared = Number(res.headers.get("content-length") ?? "");
  const tooLarge = () =>
    new RegistryTooLargeError(ctx.registry, `${ctx.what}: response larger than ${limit} bytes`, res.status);
  if (declared > limit) {
    await res.body?.cancel();
    throw tooLarge();
  }
  if (!res.body) return Buffer.alloc(0);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of res.body) {
    size += chunk.byteLength;
    if (size > limit) {
      await res.body.cancel().catch(() => {});
      throw tooLarge();
    }
    chunks.push(Buffer.from(chunk));
  }
  return Buffer.concat(chunks);
}

export function isHtml(res: Response): boolean {
  return /text\/html/i.test(res.headers.get("content-type") ?? "");
}

/** A JSON body through its schema; an HTML page, broken JSON or a wrong shape is one clear line. */
export function parseJsonBody<T>(
  body: Buffer,
  res: Response,
  schema: z.ZodType<T>,
  ctx: { registry: string; what: string },
): T {
  if (isHtml(res))
    throw new RegistryError(
      ctx.registry,
      `${ctx.what}: got an HTML page instead of JSON (HTTP ${res.status})`,
      res.status,
    );
  let raw: unknown;
  try {
    raw = JSON.parse(body.toString("utf8"));
  } catch {
    throw new RegistryError(ctx.registry, `${ctx.what}: malformed JSON (HTTP ${res.status})`, res.status);
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    const where = issue?.path.length ? ` at ${issue.path.join(".")}` : "";
    throw new RegistryError(
      ctx.registry,
      `${ctx.what}: unexpected JSON${where}: ${issue?.message ?? "invalid"} (HTTP ${res.status})`,
      res.status,
    );
  }
  return parsed.data;
}

/** `<what>: HTTP 404 MANIFEST_UNKNOWN: manifest unknown` from an error response, body read within bounds. */
export async function describeFailure(res: Response, ctx: { what: string }): Promise<string> {
  let detail = "";
  try {
    const body = await readLimited(res, 16 * 1024, { registry: "", what: ctx.what });
    if (isHtml(res)) detail = "an HTML error page";
    else {
      const text = body.toString("utf8");
      const parsed = (() => {
        try {
          return ErrorBody.safeParse(JSON.parse(text));
        } catch {
          return undefined;
        }
      })();
      const first = parsed?.success ? parsed.data.errors[0] : undefined;
      if (first) detail = [first.code, first.message].filter(Boolean).join(": ");
      else detail = text.trim().split("\n")[0] ?? "";
    }
  } catch {
    // The status is what matters; a body we cannot read adds nothing.
  }
  detail = redact(detail.replace(/\s+/g, " ")).slice(0, 160);
  return `${ctx.what}: HTTP ${res.status}${detail ? ` (${detail})` : ""}`;
}
