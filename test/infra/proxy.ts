/**
 * A pass-through HTTP proxy that records every request (`METHOD /path`) on
 * its way to a real server on loopback: tests count what a client sent
 * (registry manifests, S3 listings) without touching the server. Headers,
 * Host included, go through unchanged, so signed requests still verify.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import type { AddressInfo } from "node:net";

export interface CountingProxy {
  /** `127.0.0.1:<port>`: use it where the server's host:port would go. */
  host: string;
  /** Requests seen, oldest first: `HEAD /v2/app/manifests/v1` (query strings dropped). */
  log: string[];
  close(): Promise<void>;
}

export async function countingProxy(target: string): Promise<CountingProxy> {
  const port = Number(target.split(":").pop());
  const log: string[] = [];
  const server: Server = createServer((req, res) => {
    log.push(`${req.method} ${req.url?.split("?")[0]}`);
    const up = httpRequest(
      { host: "127.0.0.1", port, method: req.method, path: req.url, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.destroy());
    req.pipe(up);
  });
  await new Promise<void>((r) => server.listen(0, "127.0.0.1", () => r()));
  return {
    host: `127.0.0.1:${(server.address() as AddressInfo).port}`,
    log,
    close: () =>
      new Promise<void>((r) => {
        server.closeAllConnections();
        server.close(() => r());
      }),
  };
}
