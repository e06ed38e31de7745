/**
 * A misbehaving registry on 127.0.0.1: a plain Node HTTP server whose every
 * answer the test writes, for the failures a real registry will not produce
 * on demand (malformed JSON, HTML pages, 401 loops, endless pagination,
 * huge tag lists, 429s and 5xx). It records every request it saw.
 */
import { createServer, type IncomingMessage, type ServerResponse } from "node:http";
import type { AddressInfo } from "node:net";

export interface SeenRequest {
  method: string;
  path: string;
  headers: IncomingMessage["headers"];
}

export interface FakeServer {
  /** `127.0.0.1:<port>`. */
  host: string;
  url: string;
  requests: SeenRequest[];
  close(): Promise<void>;
}

export type FakeHandler = (req: IncomingMessage, res: ServerResponse, url: URL) => void | Promise<void>;

export async function startFake(handler: FakeHandler): Promise<FakeServer> {
  const requests: SeenRequest[] = [];
  const server = createServer((req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    requests.push({ method: req.method ?? "GET", path: url.pathname + url.search, headers: req.headers });
    Promise.resolve(handler(req, res, url)).catch((err: unknown) => {
      if (!res.headersSent) res.writeHead(599);
      res.end(String(err));
    });
  });
  await new Promise<void>((resolve) => server.listen(0, "127.0.0.1", resolve));
  const { port } = server.address() as AddressInfo;
  return {
    host: `127.0.0.1:${port}`,
    url: `http://127.0.0.1:${port}`,
    requests,
    async close() {
      server.closeAllConnections();
      await new Promise((r) => server.close(r));
    },
  };
}

export function json(
  res: ServerResponse,
  status: number,
  body: unknown,
  headers: Record<string, string> = {},
): void {
  res.writeHead(status, { "content-type": "application/json", ...headers });
  res.end(JSON.stringify(body));
}
