/**
 * A webhook receiver for notification tests: a real HTTP server on
 * 127.0.0.1 that records every request (path, headers, raw body) and
 * answers with the statuses it is told, in order (then 200). With
 * `hang`, it never answers (a dead provider).
 */
import { createServer, type IncomingHttpHeaders, type Server } from "node:http";
import { freePort } from "../infra/net.ts";

export interface Received {
  method: string;
  path: string;
  headers: IncomingHttpHeaders;
  body: string;
  json: unknown;
}

export interface Receiver {
  url: string;
  requests: Received[];
  /** Statuses for the next answers, in order. */
  answers: number[];
  hang: boolean;
  /** Resolves once `n` requests arrived. */
  waitFor(n: number, ms?: number): Promise<Received[]>;
  close(): Promise<void>;
}

export async function startReceiver(): Promise<Receiver> {
  const port = await freePort();
  const waiters: { n: number; resolve: () => void }[] = [];
  const r: Receiver = {
    url: `http://127.0.0.1:${port}`,
    requests: [],
    answers: [],
    hang: false,
    async waitFor(n, ms = 10_000) {
      if (r.requests.length < n) {
        let timer: NodeJS.Timeout | undefined;
        await Promise.race([
          new Promise<void>((resolve) => waiters.push({ n, resolve })),
          new Promise<never>((_, reject) => {
            timer = setTimeout(
              () => reject(new Error(`receiver: ${r.requests.length} of ${n} requests after ${ms} ms`)),
              ms,
            );
          }),
        ]);
        clearTimeout(timer);
      }
      return r.requests;
    },
    close: async () => undefined,
  };
  const server: Server = createServer((req, res) => {
    const chunks: Buffer[] = [];
    req.on("data", (c: Buffer) => chunks.push(c));
    req.on("end", () => {
      const body = Buffer.concat(chunks).toString("utf8");
      let json: unknown;
      try {
        json = JSON.parse(body);
      } catch {
        json = undefined;
      }
      r.requests.push({ method: req.method ?? "", path: req.url ?? "", headers: req.headers, body, json });
      for (const w of waiters.filter((w) => r.requests.length >= w.n)) {
        waiters.splice(waiters.indexOf(w), 1);
        w.resolve();
      }
      if (r.hang) return;
      res.statusCode = r.answers.shift() ?? 200;
      res.setHeader("content-type", "text/plain");
      res.end(res.statusCode === 200 ? "ok" : "no");
    });
  });
  await new Promise<void>((resolve) => server.listen(port, "127.0.0.1", resolve));
  r.close = () =>
    new Promise<void>((resolve) => {
      server.closeAllConnections();
      server.close(() => resolve());
    });
  return r;
}
