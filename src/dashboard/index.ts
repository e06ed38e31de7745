/**
 * `shipmate dashboard` as a library: the data (./service.ts) and its HTTP
 * handler (./server.ts), started together on a server of their own, or
 * mounted under `/dashboard` by another server (`shipmate serve`, the App).
 */
import {
  createDashboardHandler,
  type DashboardHandler,
  type DashboardHandlerOptions,
  startDashboardServer,
} from "./server.ts";
import { Dashboard, type DashboardOptions } from "./service.ts";

export { createDashboardHandler, DEFAULT_BASE } from "./server.ts";
export { Dashboard, type DashboardOptions } from "./service.ts";

export type DashboardAuth = Omit<DashboardHandlerOptions, "dashboard" | "base">;

export interface MountedDashboard {
  dashboard: Dashboard;
  handler: DashboardHandler;
  close(): Promise<void>;
}

/** The dashboard's data, fetched once, and a handler for `/dashboard` to mount in any node:http server. */
export async function mountDashboard(
  opts: DashboardOptions,
  auth: DashboardAuth = {},
): Promise<MountedDashboard> {
  const dashboard = new Dashboard(opts);
  try {
    await dashboard.start();
  } catch (err) {
    await dashboard.close();
    throw err;
  }
  const handler = createDashboardHandler({ dashboard, ...auth });
  return {
    dashboard,
    handler,
    async close() {
      handler.close();
      await dashboard.close();
    },
  };
}

export async function startDashboard(
  opts: DashboardOptions,
  auth: DashboardAuth,
  listen: { host: string; port: number },
): Promise<MountedDashboard & { url: string }> {
  const mounted = await mountDashboard(opts, auth);
  const server = await startDashboardServer(mounted.handler, listen).catch(async (err: unknown) => {
    await mounted.close();
    throw err;
  });
  return {
    ...mounted,
    url: server.url,
    async close() {
      await server.close();
      await mounted.dashboard.close();
    },
  };
}
