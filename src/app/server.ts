/**
 * The App as its own server: Probot as middleware behind shipmate's
 * ingress (size limit, signature first), the registry webhook endpoint
 * and /healthz, listening on HOST:PORT. Probot reads APP_ID, PRIVATE_KEY
 * (or PRIVATE_KEY_PATH), WEBHOOK_SECRET and GHE_HOST from the environment.
 *
 *   node src/app/server.ts        (deploy/app runs this)
 */
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
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
  /** Another front end on the same port (the fleet dashboard under /dashboard): true when it answered. */
  mount?: (req: IncomingMessage, res: ServerResponse) => boolean,
): Promise<AppServer> {
  const { appFn, service } = createShipmateApp(opts);
  const middleware = await createNodeMiddleware(appFn, {
    probot,
    ...(opts.webhookPath ? { webhooksPath: opts.webhookPath } : {}),
  });
  const server = createServer((req, res) => {
    if (mount?.(req, res)) return;
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
  // SHIPMATE_DASHBOARD_REPO serves the fleet dashboard under /dashboard on the same port (docs/dashboard.md).
  const dashboard = env.SHIPMATE_DASHBOARD_REPO
    ? await (await import("../dashboard/index.ts")).mountDashboard(
        {
          repo: env.SHIPMATE_DASHBOARD_REPO,
          env,
          cluster: env.SHIPMATE_DASHBOARD_CLUSTER === "true",
          ...(env.SHIPMATE_DASHBOARD_KUBECONFIG ? { kubeconfig: env.SHIPMATE_DASHBOARD_KUBECONFIG } : {}),
        },
        {
          ...(env.SHIPMATE_DASHBOARD_TOKEN ? { token: env.SHIPMATE_DASHBOARD_TOKEN } : {}),
          trustProxyHeaders: env.SHIPMATE_DASHBOARD_TRUST_PROXY_HEADERS === "true",
        },
      )
    : undefined;
  const app = await startAppServer(
    probot,
    appOptionsFromEnv(env),
    { host: env.HOST ?? "127.0.0.1", port: Number(env.PORT ?? 3000) },
    dashboard ? (req, res) => dashboard.handler.handle(req, res) : undefined,
  );
  probot.log.info({ url: app.url }, "shipmate App listening");
  await new Promise<void>((done) => {
    process.once("SIGTERM", () => done());
    process.once("SIGINT", () => done());
  });
  probot.log.info("stopping: finishing queued work");
  dashboard?.handler.close();
  await app.close();
  await dashboard?.close();
}

if (import.meta.main) {
  main().catch((err: unknown) => {
    console.error(`shipmate app: ${describeError(err)}`);
    process.exitCode = 1;
  });
}
