/**
 * A pass-through HTTP proxy that records every request (`METHOD /path`) on
 * its way to a real server on loopback: tests count what a client sent
 * (registry manifests, S3 listings) without touching the server. Headers,
 * Host included, go through unchanged, so signed requests still verify.
 * A switchable TCP proxy lets a test take a server down and bring it back.
 */
import { createServer, request as httpRequest, type Server } from "node:http";
import {
  type AddressInfo,
  connect,
  createServer as createNetServer,
  type Server as NetServer,
  type Socket,
} from "node:net";

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

export interface SwitchableProxy {
  /** `127.0.0.1:<port>`, the same port across down() and up(). */
  host: string;
  port: number;
  /** Stops listening and cuts every open connection: clients get ECONNREFUSED, as from a server that died. */
  down(): Promise<void>;
  /** Listens again on the same port. */
  up(): Promise<void>;
  close(): Promise<void>;
}

/**
 * A TCP pass-through to a server on loopback that a test can take down and
 * bring back on the same port (the server behind it keeps its state), so a
 * client meets a remote that is gone and then returns.
 */
export async function switchableProxy(targetPort: number): Promise<SwitchableProxy> {
  const sockets = new Set<Socket>();
  const make = () =>
    createNetServer((client) => {
      const upstream = connect(targetPort, "127.0.0.1");
      for (const s of [client, upstream]) {
        sockets.add(s);
        s.on("close", () => sockets.delete(s));
        s.on("error", () => {
          client.destroy();
          upstream.destroy();
        });
      }
      client.pipe(upstream);
      upstream.pipe(client);
    });
  let server: NetServer | undefined = make();
  await new Promise<void>((r) => server?.listen(0, "127.0.0.1", () => r()));
  const port = (server.address() as AddressInfo).port;
  const down = async () => {
    const s = server;
    server = undefined;
    for (const sock of sockets) sock.destroy();
    if (s) await new Promise<void>((r) => s.close(() => r()));
  };
  return {
    host: `127.0.0.1:${port}`,
    port,
    down,
    async up() {
      if (server) return;
      const s = make();
      await new Promise<void>((resolve, reject) => {
        s.once("error", reject);
        s.listen(port, "127.0.0.1", () => resolve());
      });
      server = s;
    },
    close: down,
  };
}
