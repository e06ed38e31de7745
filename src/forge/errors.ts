/**
 * Forge failures as one line that says what to fix. Every provider funnels
 * its HTTP failures through `classifyForgeFailure`, so GitHub, GitLab and Gitea
 * word the same problem the same way.
 */
import { ForgeError, redact } from "../errors.ts";
import type { ForgeProvider } from "./types.ts";

/** 401: the token is missing, expired or revoked. */
export class ForgeAuthError extends ForgeError {
  override name = "ForgeAuthError";
}
/** 403 for lack of a scope or permission; `missing` names it when the forge says. */
export class ForgePermissionError extends ForgeError {
  override name = "ForgePermissionError";
  readonly missing: string | undefined;
  constructor(message: string, status: number, missing?: string) {
    super(message, status);
    this.missing = missing;
  }
}
/** 404 on the repository (or something the token cannot see, which forges also answer with 404). */
export class ForgeNotFoundError extends ForgeError {
  override name = "ForgeNotFoundError";
}
/** Rate limited beyond the wait we allow ourselves; `resetAt` is when the forge will answer again. */
export class ForgeRateLimitError extends ForgeError {
  override name = "ForgeRateLimitError";
  readonly resetAt: Date;
  constructor(message: string, status: number, resetAt: Date) {
    super(message, status);
    this.resetAt = resetAt;
  }
}
/** The target branch's protection refused the operation (merge, push, auto-merge). */
export class BranchProtectionError extends ForgeError {
  override name = "BranchProtectionError";
}
/** The request was merged or closed by someone else between our look and our write. */
export class PullRequestClosedError extends ForgeError {
  override name = "PullRequestClosedError";
}
/** 409/422 "already exists": the caller re-finds the existing request instead of failing. */
export class AlreadyExistsError extends ForgeError {
  override name = "AlreadyExistsError";
}

export interface FailureContext {
  /** The provider (src/forge/<kind>/): its name and how it says what a token lacks. */
  forge: Pick<ForgeProvider, "label" | "lacks">;
  repo: string;
  /** What we were doing, for the message: `open pull request for shipmate/prod`. */
  action: string;
  status: number;
  /** Response headers with lower-case names. */
  headers: Record<string, string | undefined>;
  /** The forge's own message (from the error body), if any. */
  message?: string;
  /** Where to tell the user the token comes from (`$GITHUB_TOKEN`). */
  tokenSource?: string;
  now?: number;
}

/** When the forge will answer again, from its rate-limit headers; undefined when this is no rate limit. */
export function rateLimitReset(ctx: FailureContext): Date | undefined {
  const h = ctx.headers;
  const now = ctx.now ?? Date.now();
  const retryAfter = Number(h["retry-after"]);
  const isLimited =
    ctx.status === 429 ||
    (ctx.status === 403 &&
      (h["x-ratelimit-remaining"] === "0" ||
        Number.isFinite(retryAfter) ||
        /rate limit/i.test(ctx.message ?? "")));
  if (!isLimited) return undefined;
  if (Number.isFinite(retryAfter) && h["retry-after"] !== undefined) return new Date(now + retryAfter * 1000);
  // GitHub: x-ratelimit-reset; GitLab: ratelimit-reset (both epoch seconds).
  const reset = Number(h["x-ratelimit-reset"] ?? h["ratelimit-reset"]);
  if (Number.isFinite(reset) && reset > 0) return new Date(Math.max(now, reset * 1000));
  return new Date(now + 60_000);
}

/** Turn one failed forge call into the typed, one-line error a person can act on. */
export function classifyForgeFailure(ctx: FailureContext): ForgeError {
  const where = `${ctx.forge.label} ${ctx.repo}`;
  const said = ctx.message ? redact(ctx.message.replace(/\s+/g, " ").trim()).slice(0, 200) : "";
  const token = ctx.tokenSource ? ` in ${ctx.tokenSource}` : "";
  const reset = rateLimitReset(ctx);
  if (reset)
    return new ForgeRateLimitError(
      `${where}: rate limit exceeded while trying to ${ctx.action}; it resets at ${reset.toISOString()} — retry after that or use a token with a higher limit`,
      ctx.status,
      reset,
    );
  switch (ctx.status) {
    case 401:
      return new ForgeAuthError(
        `${where}: the token was rejected (expired, revoked or missing) while trying to ${ctx.action}; set a valid token${token}`,
        401,
      );
    case 403: {
      const lacks = ctx.forge.lacks?.(ctx.headers, said);
      if (lacks && "permission" in lacks)
        return new ForgePermissionError(
          `${where}: the token lacks the permission '${lacks.permission}' needed to ${ctx.action}`,
          403,
          lacks.permission,
        );
      if (lacks)
        return new ForgePermissionError(
          `${where}: the token lacks the '${lacks.scope}' scope needed to ${ctx.action}${lacks.has !== undefined ? ` (it has: ${lacks.has || "none"})` : ""}`,
          403,
          lacks.scope,
        );
      if (/protect/i.test(said))
        return new BranchProtectionError(
          `${where}: branch protection refused to ${ctx.action}: ${said}`,
          403,
        );
      return new ForgePermissionError(
        `${where}: permission denied to ${ctx.action}${said ? `: ${said}` : ""} — give the token write access to the repository`,
        403,
      );
    }
    case 404:
      return new ForgeNotFoundError(
        `${where}: not found while trying to ${ctx.action} — check the repository name and that the token can see it`,
        404,
      );
    case 405:
    case 409:
    case 422:
      if (/already exists|already has|pull request already/i.test(said))
        return new AlreadyExistsError(`${where}: ${said}`, ctx.status);
      if (/protect|required status|approv|review|not allowed to merge|status check/i.test(said))
        return new BranchProtectionError(
          `${where}: branch protection refused to ${ctx.action}: ${said}`,
          ctx.status,
        );
      if (/already merged|is closed|not open|has been merged/i.test(said))
        return new PullRequestClosedError(`${where}: cannot ${ctx.action}: ${said}`, ctx.status);
      return new ForgeError(
        `${where}: ${ctx.action} was refused (${ctx.status})${said ? `: ${said}` : ""}`,
        ctx.status,
      );
    default:
      return new ForgeError(
        `${where}: ${ctx.action} failed with HTTP ${ctx.status}${said ? `: ${said}` : ""}`,
        ctx.status,
      );
  }
}

/**
 * Run `call`, waiting out a rate limit when the forge's reset comes within
 * `maxWaitMs` (at most `attempts` tries), otherwise failing with the reset time.
 */
export async function withRateLimitWait<T>(
  call: () => Promise<T>,
  opts: { maxWaitMs: number; attempts?: number; sleep?: (ms: number) => Promise<void> },
): Promise<T> {
  const sleep = opts.sleep ?? ((ms: number) => new Promise<void>((r) => setTimeout(r, ms)));
  const attempts = opts.attempts ?? 3;
  for (let i = 1; ; i++) {
    try {
      return await call();
    } catch (err) {
      if (!(err instanceof ForgeRateLimitError) || i >= attempts) throw err;
      const wait = err.resetAt.getTime() - Date.now();
      if (wait > opts.maxWaitMs) throw err;
      await sleep(Math.max(0, wait) + 250);
    }
  }
}
