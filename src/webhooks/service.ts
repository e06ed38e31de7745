/**
 * `shipmate serve` as a library: the webhook endpoint, `/healthz`, an
 * optional polling interval for registries that send nothing, and the
 * coalescing queue in front of runUpdate (src/run/update.ts).
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import type { Logger } from "pino";
import { timerMs } from "../config/duration.ts";
import { describeError, UsageError } from "../errors.ts";
import { runUpdate, type UpdateRun, type UpdateRunResult } from "../run/update.ts";
import type { WebhookAuth } from "./auth.ts";
import { shortImage } from "./events.ts";
import { DeliveryJournal, JournaledQueue } from "./journal.ts";
import type { CoalescingQueue, RefreshScope } from "./queue.ts";
import { registryWebhookHandler, sendJson } from "./receiver.ts";

export interface WebhookServiceOptions {
  /** `host:port`; port 0 picks a free one. */
  listen: string;
  path?: string;
  auth: WebhookAuth;
  maxBodyBytes?: number;
  job: Omit<UpdateRun, "scope">;
  /** Also refresh everything on this interval (ms); off when absent. */
  intervalMs?: number;
  log: Logger;
  /**
   * The file accepted deliveries are journaled in until their run ends
   * (./journal.ts); a restarted service replays them. Off when absent.
   */
  journal?: string;
  /** Another front end on the same port (the dashboard under /dashboard): true when it answered. */
  mount?: (req: IncomingMessage, res: ServerResponse) => boolean;
  /** Called after every run (tests, metrics). */
  onResult?: (result: UpdateRunResult | Error, scope: RefreshScope) => void;
}

export interface WebhookService {
  /** `http://host:port` the server is bound to. */
  url: string;
  server: Server;
  queue: CoalescingQueue<RefreshScope>;
  close(): Promise<void>;
}

export function parseListen(listen: string): { host: string; port: number } {
  const i = listen.lastIndexOf(":");
  const host = (i === -1 ? "" : listen.slice(0, i)).replace(/^\[|\]$/g, "") || "127.0.0.1";
  const port = Number(i === -1 ? listen : listen.slice(i + 1));
  if (!Number.isInteger(port) || port < 0 || port > 65535)
    throw new UsageError(`--listen ${listen}: expected HOST:PORT with a port from 0 to 65535`);
  return { host, port };
}

/** One log line per run: what was pushed or proposed, what failed. */
export function logResult(log: Logger, r: UpdateRunResult, scope: RefreshScope): void {
  const what = scope.kind === "all" ? "all policies" : [...scope.images].map(shortImage).join(", ");
  if (r.skipped) {
    log.info({ scope: what }, `nothing to scan: ${r.skipped}`);
    return;
  }
  for (const s of r.scan) if (!s.ok) log.warn({ policy: s.policy.id }, `no selection: ${s.message}`);
  for (const p of r.problems)
    log[p.severity === "error" ? "error" : "warn"](
      { file: p.file, ...(p.line ? { line: p.line } : {}) },
      p.message,
    );
  const fields: Record<string, unknown> = { scope: what, policies: r.policies.length };
  if (r.push) {
    fields.commit = r.push.commit;
    fields.pushed = r.push.pushed;
    fields.files = r.push.files.map((f) => f.path);
  }
  if (r.request) {
    fields.request = r.request.request.action;
    if ("pullRequest" in r.request.request) fields.url = r.request.request.pullRequest.url;
  }
  const changed = (r.push?.files.length ?? 0) + (r.request?.update.files.length ?? 0);
  log.info(fields, changed ? "refreshed: changes delivered" : "refreshed: up to date");
}

export async function startWebhookService(opts: WebhookServiceOptions): Promise<WebhookService> {
  const { log } = opts;
  const deliveries = new JournaledQueue(
    async (scope) => {
      try {
        const result = await runUpdate({ ...opts.job, scope });
        logResult(log, result, scope);
        opts.onResult?.(result, scope);
      } catch (err) {
        log.error({ err: describeError(err) }, `refresh failed: ${describeError(err)}`);
        opts.onResult?.(err instanceof Error ? err : new Error(String(err)), scope);
      }
    },
    opts.journal ? new DeliveryJournal(opts.journal) : undefined,
  );
  const queue = deliveries.queue;
  const hooks = registryWebhookHandler({
    ...(opts.path ? { path: opts.path } : {}),
    auth: opts.auth,
    ...(opts.maxBodyBytes ? { maxBodyBytes: opts.maxBodyBytes } : {}),
    log,
    onPushes: (pushes) => {
      // Journaled before the 202 goes out: a crash after it cannot lose the delivery.
      void deliveries.accept({ kind: "images", images: new Set(pushes.map((p) => p.image)) });
    },
  });
  const server = createServer((req, res) => {
    if (opts.mount?.(req, res)) return;
    const path = (req.url ?? "/").split("?")[0];
    if (path === "/healthz" && (req.method === "GET" || req.method === "HEAD")) {
      sendJson(res, 200, { ok: true, busy: queue.busy });
      return;
    }
    hooks(req, res).then(
      (handled) => {
        if (!handled) sendJson(res, 404, { error: "not found" });
      },
      (err: unknown) => {
        log.error({ err: describeError(err) }, "webhook handler failed");
        sendJson(res, 500, { error: "internal error" });
      },
    );
  });
  // Senders retry on timeouts: bound how long a slow client may hold a connection.
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  const { host, port } = parseListen(opts.listen);
  await new Promise<void>((resolve, reject) => {
    server.once("error", (err: NodeJS.ErrnoException) =>
      reject(
        new UsageError(
          `--listen ${opts.listen}: ${err.code === "EADDRINUSE" ? "address already in use" : err.code === "EADDRNOTAVAIL" ? "no such local address" : err.code === "EACCES" ? "permission denied" : err.message}`,
        ),
      ),
    );
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound = typeof addr === "object" && addr ? addr : { address: host, port };
  const url = `http://${bound.address.includes(":") ? `[${bound.address}]` : bound.address}:${bound.port}`;
  let timer: NodeJS.Timeout | undefined;
  if (opts.intervalMs) {
    timer = setInterval(() => void deliveries.request({ kind: "all" }), timerMs(opts.intervalMs));
    timer.unref();
  }
  try {
    const replayed = deliveries.replay();
    if (replayed)
      log.info(
        { scope: replayed.kind === "all" ? "all policies" : [...replayed.images].map(shortImage).join(", ") },
        "replaying deliveries accepted before a restart",
      );
  } catch (err) {
    log.warn({}, describeError(err));
  }
  return {
    url,
    server,
    queue,
    async close() {
      if (timer) clearInterval(timer);
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await queue.idle();
    },
  };
}
