/**
 * The App as its own server: Probot as middleware behind shipmate's
 * ingress (size limit, signature first), the registry webhook endpoint
 * and /healthz, listening on HOST:PORT. Probot reads APP_ID, PRIVATE_KEY
 * (or PRIVATE_KEY_PATH), WEBHOOK_SECRET and GHE_HOST from the environment.
 *
 *   node src/app/server.ts        (deploy/app runs this)
 */
import { createServer, type Server } from "node:http";
import { createNodeMiddleware, createProbot, type Probot } from "probot";
import { describeError } from "../errors.ts";
import { type AppOptions, appOptionsFromEnv, createShipmateApp, type ShipmateService } from "./index.ts";

export interface AppServer {
  server: Server;
  url: string;
  service: ShipmateService;
  close(): Promise<void>;
}

export async function startAppServer(
  probot: Probot,
  opts: AppOptions,
  listen: { host: string; port: number },
): Promise<AppServer> {
  const { appFn, service } = createShipmateApp(opts);
  const middleware = await createNodeMiddleware(appFn, {
    probot,
    ...(opts.webhookPath ? { webhooksPath: opts.webhookPath } : {}),
  });
  const server = createServer((req, res) => {
    void middleware(req, res, () => {
      res.writeHead(404, { "content-type": "application/json" });
      res.end('{"error":"not found"}\n');
    });
  });
  server.requestTimeout = 30_000;
  server.headersTimeout = 10_000;
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(listen.port, listen.host, () => resolve());
  });
  const addr = server.address();
  const port = typeof addr === "object" && addr ? addr.port : listen.port;
  return {
    server,
    url: `http://${listen.host.includes(":") ? `[${listen.host}]` : listen.host}:${port}`,
    service,
    async close() {
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeIdleConnections();
      });
      await service.close();
    },
  };
}

async function main(): Promise<void> {
  const env = process.env;
  // createProbot defaults to warn; a server says when it listens and what it does.
  const probot = createProbot({ env: { LOG_LEVEL: "info", ...env } });
  const app = await startAppServer(probot, appOptionsFromEnv(env), {
    host: env.HOST ?? "127.0.0.1",
    port: Number(env.PORT ?? 3000),
  });
  probot.log.info({ url: app.url }, "shipmate App listening");
  await new Promise<void>((done) => {
    process.once("SIGTERM", () => done());
    process.once("SIGINT", () => done());
  });
  probot.log.info("stopping: finishing queued work");
  await app.close();
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(`shipmate app: ${describeError(err)}`);
    process.exitCode = 1;
  });
}
