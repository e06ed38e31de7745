/**
 * The GitHub webhook endpoint in front of Probot's event dispatch: bounded
 * body (413), signature checked before anything else (401, nothing done),
 * unknown events acknowledged and logged, known ones dispatched to the
 * handlers, which only queue work. Mounted through Probot's `addHandler`,
 * it answers before Probot's own middleware when the App runs as
 * middleware (createNodeMiddleware, src/app/server.ts).
 */
import type { EmitterWebhookEvent } from "@octokit/webhooks";
import type { Logger } from "pino";
import type { Probot } from "probot";
import { ZodError } from "zod";
import { type Handler, lowerHeaders, readBody, sendJson } from "../webhooks/receiver.ts";

export const DEFAULT_GITHUB_WEBHOOK_PATH = "/api/github/webhooks";
/** GitHub caps payloads at 25 MB; fleet events are far smaller. */
export const DEFAULT_GITHUB_MAX_BODY_BYTES = 5 * 1024 * 1024;

export interface IngressOptions {
  path: string;
  maxBodyBytes: number;
  /** Event names (`push`) and event.action names (`pull_request.closed`) that have handlers. */
  handled: ReadonlySet<string>;
  log: Logger;
}

export function githubWebhookHandler(app: Probot, opts: IngressOptions): Handler {
  return async (req, res) => {
    const path = new URL(req.url ?? "/", "http://app.invalid").pathname.replace(/\/+$/, "");
    if (path !== opts.path.replace(/\/+$/, "")) return false;
    if (req.method !== "POST") {
      sendJson(res, 405, { error: "POST GitHub webhook deliveries here" });
      return true;
    }
    const headers = lowerHeaders(req);
    const name = headers["x-github-event"];
    const id = headers["x-github-delivery"] ?? "";
    const read = await readBody(req, opts.maxBodyBytes).catch(() => undefined);
    if (!read) {
      sendJson(res, 400, { error: "the request body could not be read" });
      return true;
    }
    if (!read.ok) {
      opts.log.warn(
        { event: name, delivery: id, limit: opts.maxBodyBytes },
        "delivery refused: body over the size limit",
      );
      sendJson(res, 413, { error: `the body is larger than ${opts.maxBodyBytes} bytes` }, true);
      return true;
    }
    const raw = read.body.toString("utf8");
    const signature = headers["x-hub-signature-256"];
    if (!signature || !(await app.webhooks.verify(raw, signature).catch(() => false))) {
      opts.log.warn(
        { event: name, delivery: id, remote: req.socket.remoteAddress },
        signature ? "delivery refused: the signature does not match" : "delivery refused: unsigned",
      );
      sendJson(res, 401, { error: "unauthorized" });
      return true;
    }
    if (!name) {
      sendJson(res, 400, { error: "missing X-GitHub-Event" });
      return true;
    }
    let payload: unknown;
    try {
      payload = JSON.parse(raw);
    } catch {
      sendJson(res, 400, { error: "the body is not JSON" });
      return true;
    }
    const action = (payload as { action?: unknown } | null)?.action;
    const full = typeof action === "string" ? `${name}.${action}` : name;
    if (!opts.handled.has(name) && !opts.handled.has(full)) {
      opts.log.info(
        { event: full, delivery: id },
        name === "ping" ? "ping" : "event ignored: shipmate does not act on it",
      );
      sendJson(res, name === "ping" ? 200 : 202, { ignored: name !== "ping" });
      return true;
    }
    try {
      await app.webhooks.receive({ id, name, payload } as EmitterWebhookEvent);
    } catch (err) {
      // Handlers only queue work; a failure here is a payload the handlers could not read.
      opts.log.warn({ event: full, delivery: id, err: payloadProblem(err) }, "delivery not understood");
      sendJson(res, 400, { error: "the payload could not be read" });
      return true;
    }
    sendJson(res, 202, { accepted: full });
    return true;
  };
}

/** One line for a payload the handlers could not read (first handler error; zod issues as path: message). */
function payloadProblem(err: unknown): string {
  const first = err instanceof AggregateError ? err.errors[0] : err;
  if (first instanceof ZodError)
    return first.issues
      .slice(0, 5)
      .map((i) => `${i.path.join(".") || "(payload)"}: ${i.message}`)
      .join("; ");
  return first instanceof Error ? first.message : String(first);
}
