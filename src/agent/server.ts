/**
 * The agent's HTTP endpoints: `/metrics` (Prometheus text format),
 * `/healthz` (the process and its loop are alive), `/readyz` (the API
 * server answered recently), `POST /hooks/sync` (a push webhook: fetch
 * and reconcile now instead of at the next interval) and `POST /hook/<sha256>`
 * (Flux's Receiver paths, answered by ./receiver/receiver.ts), whose body is
 * read up to 10 MB: a larger one is answered 413 at once.
 */
import { createServer, type Server } from "node:http";
import type { AgentMetrics } from "./metrics.ts";

export interface Probes {
  healthy(): { ok: boolean; why: string };
  ready(): { ok: boolean; why: string };
  /** A push webhook: fetch and reconcile now. */
  trigger?(): void;
  /** A Receiver request (`/hook/…`): its status code and one-line answer. */
  hook?(
    path: string,
    req: { headers: Record<string, string | undefined>; body: Buffer },
  ): Promise<{
    code: number;
    message: string;
  }>;
}

/** Flux's Receiver paths; bodies above this are refused (413) without being kept. */
export const HOOK_BODY_LIMIT = 10 * 1024 * 1024;

/** Listens on "host:port" (":8080" means every interface); resolves with the bound address. */
export async function serve(
  listen: string,
  metrics: AgentMetrics,
  probes: Probes,
): Promise<{ server: Server; url: string }> {
  const i = listen.lastIndexOf(":");
  const host = listen.slice(0, i) || undefined;
  const port = Number(listen.slice(i + 1));
  const server = createServer((req, res) => {
    const path = (req.url ?? "/").split("?")[0];
    const answer = (code: number, body: string, type = "text/plain; charset=utf-8") => {
      res.writeHead(code, { "content-type": type });
      res.end(body);
    };
    if (path === "/hooks/sync" && req.method === "POST" && probes.trigger) {
      // The body is not read: any push means "fetch now"; the agent decides what changed.
      req.resume();
      probes.trigger();
      return answer(202, "sync requested\n");
    }
    if (path?.startsWith("/hook/") && probes.hook) {
      if (req.method !== "POST") return answer(405, "method not allowed\n");
      const hook = probes.hook;
      const declared = Number(req.headers["content-length"] ?? "0");
      const tooLarge = () => {
        res.writeHead(413, { "content-type": "text/plain; charset=utf-8", connection: "close" });
        res.end(`request body larger than ${HOOK_BODY_LIMIT} bytes\n`);
        req.resume();
      };
      if (declared > HOOK_BODY_LIMIT) return tooLarge();
      const chunks: Buffer[] = [];
      let size = 0;
      let over = false;
      req.on("data", (chunk: Buffer) => {
        if (over) return;
        size += chunk.length;
        if (size > HOOK_BODY_LIMIT) {
          over = true;
          chunks.length = 0;
          tooLarge();
          return;
        }
        chunks.push(chunk);
      });
      req.on("error", () => undefined);
      req.on("end", () => {
        if (over) return;
        const headers: Record<string, string | undefined> = {};
        for (const [k, v] of Object.entries(req.headers)) headers[k] = Array.isArray(v) ? v.join(",") : v;
        hook(path, { headers, body: Buffer.concat(chunks) }).then(
          (a) => answer(a.code, `${a.message.split("\n")[0]}\n`),
          (err: Error) => answer(500, `${(err.message ?? "failed").split("\n")[0]}\n`),
        );
      });
      return;
    }
    if (path === "/hooks/sync" || (req.method !== "GET" && req.method !== "HEAD")) {
      return answer(405, "method not allowed\n");
    }
    if (path === "/metrics") {
      metrics.registry.metrics().then(
        (text) => answer(200, text, metrics.registry.contentType),
        (err: Error) => answer(500, `${err.message}\n`),
      );
      return;
    }
    if (path === "/healthz" || path === "/readyz") {
      const p = path === "/healthz" ? probes.healthy() : probes.ready();
      return answer(p.ok ? 200 : 503, `${p.ok ? "ok" : "not ok"}: ${p.why}\n`);
    }
    answer(404, "not found\n");
  });
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(port, host, () => resolve());
  });
  const addr = server.address();
  const bound =
    typeof addr === "object" && addr
      ? `${addr.address.includes(":") ? `[${addr.address}]` : addr.address}:${addr.port}`
      : listen;
  return { server, url: `http://${bound}` };
}
