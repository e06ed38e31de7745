/**
 * The registry webhook endpoint, a plain Node request handler so it mounts
 * the same way in `shipmate serve` and inside the GitHub App's server:
 * bounded body (413), authenticated (401, nothing done), parsed (400 for
 * malformed JSON), then handed over as image pushes and answered at once
 * (202); the scan runs after the answer, so a slow registry never makes
 * the sender time out and retry.
 */
import type { IncomingMessage, ServerResponse } from "node:http";
import type { Logger } from "pino";
import { type AuthVerdict, authenticate, type WebhookAuth } from "./auth.ts";
import { type ImagePush, parseWebhook, type WebhookSource } from "./events.ts";

export const DEFAULT_WEBHOOK_PATH = "/hooks/registry";
export const DEFAULT_MAX_BODY_BYTES = 1024 * 1024;

const SOURCES: readonly WebhookSource[] = ["distribution", "dockerhub", "ghcr", "harbor"];

export interface ReceiverOptions {
  /** Where deliveries are posted; `<path>/<source>` names the sender explicitly. */
  path?: string;
  auth: WebhookAuth;
  maxBodyBytes?: number;
  log: Logger;
  /** Called with the pushes of an accepted delivery; schedules work, must not throw. */
  onPushes: (pushes: ImagePush[], source: WebhookSource) => void;
}

export type Handler = (req: IncomingMessage, res: ServerResponse) => Promise<boolean>;

export type BodyResult = { ok: true; body: Buffer } | { ok: false; tooLarge: true };

/**
 * Reads the body, giving up past `max` bytes while it streams. A declared
 * length over the limit is refused before reading; a chunked body is
 * refused the moment it crosses the limit, so the caller answers 413 then.
 * What follows is drained and discarded (the client reads the answer more
 * reliably when its upload is not cut), up to a hard cap past which the
 * connection is closed.
 */
export async function readBody(req: IncomingMessage, max: number): Promise<BodyResult> {
  const declared = Number(req.headers["content-length"]);
  const hardCap = Math.max(max * 8, 16 * 1024 * 1024);
  const chunks: Buffer[] = [];
  let size = 0;
  let over = Number.isFinite(declared) && declared > max;
  return new Promise((resolve, reject) => {
    let settled = false;
    const settle = (r: BodyResult) => {
      if (settled) return;
      settled = true;
      resolve(r);
    };
    const tooLarge = () => settle({ ok: false, tooLarge: true });
    if (over) tooLarge();
    req.on("data", (c: Buffer) => {
      size += c.length;
      if (!over && size > max) {
        over = true;
        chunks.length = 0;
        tooLarge();
      }
      if (!over) chunks.push(c);
      else if (size > hardCap) req.destroy();
    });
    req.on("end", () =>
      settle(over ? { ok: false, tooLarge: true } : { ok: true, body: Buffer.concat(chunks) }),
    );
    req.on("error", (err) => {
      if (settled) return;
      settled = true;
      reject(err);
    });
    // A client that goes away mid-body ends the read instead of leaving it pending for ever.
    req.on("close", () => {
      if (over) tooLarge();
      else if (!settled) {
        settled = true;
        reject(new Error("the client closed the connection before the body ended"));
      }
    });
  });
}

export function sendJson(res: ServerResponse, status: number, body: unknown, close = false): void {
  if (res.headersSent) return;
  res.writeHead(status, {
    "content-type": "application/json; charset=utf-8",
    ...(close ? { connection: "close" } : {}),
  });
  res.end(`${JSON.stringify(body)}\n`);
}

export function lowerHeaders(req: IncomingMessage): Record<string, string | undefined> {
  const out: Record<string, string | undefined> = {};
  for (const [k, v] of Object.entries(req.headers))
    out[k.toLowerCase()] = Array.isArray(v) ? v.join(", ") : v;
  return out;
}

export function registryWebhookHandler(opts: ReceiverOptions): Handler {
  const base = (opts.path ?? DEFAULT_WEBHOOK_PATH).replace(/\/+$/, "");
  const max = opts.maxBodyBytes ?? DEFAULT_MAX_BODY_BYTES;
  return async (req, res) => {
    const url = new URL(req.url ?? "/", "http://receiver.invalid");
    const path = url.pathname.replace(/\/+$/, "");
    let forced: WebhookSource | undefined;
    if (path !== base) {
      const rest = path.startsWith(`${base}/`) ? path.slice(base.length + 1) : undefined;
      if (!rest || !(SOURCES as readonly string[]).includes(rest)) return false;
      forced = rest as WebhookSource;
    }
    const log = opts.log.child({ endpoint: base, ...(forced ? { source: forced } : {}) });
    if (req.method !== "POST") {
      sendJson(res, 405, { error: "POST a registry webhook here" });
      return true;
    }
    const read = await readBody(req, max).catch(() => undefined);
    if (!read) {
      sendJson(res, 400, { error: "the request body could not be read" });
      return true;
    }
    if (!read.ok) {
      log.warn({ status: 413, limit: max }, "registry webhook refused: body over the size limit");
      sendJson(res, 413, { error: `the body is larger than ${max} bytes` }, true);
      return true;
    }
    const headers = lowerHeaders(req);
    const verdict: AuthVerdict = authenticate(opts.auth, headers, url.searchParams, read.body);
    if (!verdict.ok) {
      log.warn(
        { status: 401, remote: req.socket.remoteAddress },
        `registry webhook refused: ${verdict.message}`,
      );
      sendJson(res, 401, { error: "unauthorized" });
      return true;
    }
    let body: unknown;
    try {
      body = JSON.parse(read.body.toString("utf8"));
    } catch {
      log.warn({ status: 400 }, "registry webhook refused: the body is not JSON");
      sendJson(res, 400, { error: "the body is not JSON" });
      return true;
    }
    const registry = url.searchParams.get("registry") ?? undefined;
    const parsed = parseWebhook({ headers, body, ...(registry ? { registry } : {}) }, forced);
    if (!parsed.ok) {
      if (parsed.reason === "invalid") {
        log.warn({ status: 400 }, `registry webhook refused: ${parsed.message}`);
        sendJson(res, 400, { error: parsed.message });
      } else {
        log.info({ status: 202 }, `registry webhook ignored: ${parsed.message}`);
        sendJson(res, 202, { accepted: 0, ignored: true, reason: parsed.message });
      }
      return true;
    }
    log.info(
      {
        source: parsed.source,
        auth: verdict.method,
        pushes: parsed.pushes.map((p) => `${p.image}${p.tag ? `:${p.tag}` : ""}`),
        ignored: parsed.ignored,
      },
      parsed.pushes.length ? "registry webhook accepted" : "registry webhook carried no tag push",
    );
    if (parsed.pushes.length) opts.onPushes(parsed.pushes, parsed.source);
    sendJson(res, 202, { accepted: parsed.pushes.length, ignored: parsed.ignored });
    return true;
  };
}
