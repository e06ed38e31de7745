/**
 * The dashboard over HTTP (node:http, no framework: a dozen routes under one
 * prefix do not need one). Every response carries a strict CSP (scripts and
 * styles from this origin only, nothing inline) and the usual security
 * headers; pages are server-rendered and then kept live by the bundled client
 * over server-sent events. Actions are POSTs that need an authorised user and
 * the page's CSRF token; request bodies are capped; app names in URLs are
 * checked before anything reads them. The handler is mounted by `shipmate
 * dashboard`, `shipmate serve` and the App's server alike.
 */
import { createHash, randomBytes } from "node:crypto";
import { readFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server, type ServerResponse } from "node:http";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";
import { gzipSync } from "node:zlib";
import { DNS1123_LABEL } from "../config/fleet.ts";
import { describeError } from "../errors.ts";
import {
  type AuthConfig,
  type AuthResult,
  authenticate,
  csrfToken,
  mayAct,
  refuseAction,
  SESSION_COOKIE,
  sessionValue,
} from "./auth.ts";
import { EVENTS_SHOWN, matchesFilter, objectKey } from "./format.ts";
import { documentHtml, escapeHtml } from "./html.ts";
import type { Dashboard } from "./service.ts";
import type { FleetView } from "./types.ts";
import { PAGE_SIZE, type PageProps, type Route } from "./view.ts";

export const DEFAULT_BASE = "/dashboard";
/** Action bodies are a few fields; anything near this is not one. */
export const MAX_BODY_BYTES = 64 * 1024;

const ASSET_DIR = join(dirname(fileURLToPath(import.meta.url)), "assets");

export const SECURITY_HEADERS: Record<string, string> = {
  "content-security-policy":
    "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self' data:; connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'",
  "x-content-type-options": "nosniff",
  "x-frame-options": "DENY",
  "referrer-policy": "no-referrer",
  "cross-origin-opener-policy": "same-origin",
  "cross-origin-resource-policy": "same-origin",
  "permissions-policy": "camera=(), microphone=(), geolocation=()",
};

interface Asset {
  type: string;
  body: Buffer;
  gzip: Buffer;
}

function loadAssets(): { assets: Map<string, Asset>; version: string } {
  const assets = new Map<string, Asset>();
  const hash = createHash("sha256");
  for (const [name, type] of [
    ["dashboard.js", "text/javascript; charset=utf-8"],
    ["dashboard.css", "text/css; charset=utf-8"],
  ] as const) {
    const body = readFileSync(join(ASSET_DIR, name));
    hash.update(body);
    assets.set(name, { type, body, gzip: gzipSync(body) });
  }
  return { assets, version: hash.digest("hex").slice(0, 12) };
}

/** App names as folders are written: no slash, no dot-dot, nothing a path could escape with. */
const APP_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,252}$/;

export interface DashboardHandlerOptions {
  dashboard: Dashboard;
  /** URL prefix (default /dashboard). */
  base?: string;
  token?: string;
  tokenGroups?: string[];
  trustProxyHeaders?: boolean;
}

class HttpError extends Error {
  readonly status: number;
  constructor(status: number, message: string) {
    super(message);
    this.status = status;
  }
}

function send(
  req: IncomingMessage,
  res: ServerResponse,
  status: number,
  type: string,
  body: string | Buffer,
  extra: Record<string, string> = {},
): void {
  const raw = typeof body === "string" ? Buffer.from(body) : body;
  const gzip = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? "")) && raw.length > 1024;
  const out = gzip ? gzipSync(raw) : raw;
  res.writeHead(status, {
    ...SECURITY_HEADERS,
    "content-type": type,
    "cache-control": "no-store",
    vary: "accept-encoding, authorization, cookie",
    ...(gzip ? { "content-encoding": "gzip" } : {}),
    "content-length": String(out.length),
    ...extra,
  });
  res.end(req.method === "HEAD" ? undefined : out);
}

const json = (req: IncomingMessage, res: ServerResponse, status: number, value: unknown) =>
  send(req, res, status, "application/json; charset=utf-8", `${JSON.stringify(value)}\n`);

async function readBody(req: IncomingMessage): Promise<Record<string, string>> {
  const declared = Number(req.headers["content-length"] ?? "0");
  if (declared > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of req) {
    size += (chunk as Buffer).length;
    if (size > MAX_BODY_BYTES) throw new HttpError(413, `request body over ${MAX_BODY_BYTES} bytes`);
    chunks.push(chunk as Buffer);
  }
  const text = Buffer.concat(chunks).toString("utf8");
  const type = String(req.headers["content-type"] ?? "")
    .split(";")[0]
    ?.trim();
  if (type === "application/json") {
    let parsed: unknown;
    try {
      parsed = JSON.parse(text || "{}");
    } catch {
      throw new HttpError(400, "the body is not JSON");
    }
    if (!parsed || typeof parsed !== "object" || Array.isArray(parsed))
      throw new HttpError(400, "the body must be a JSON object");
    const out: Record<string, string> = {};
    for (const [k, v] of Object.entries(parsed)) {
      if (typeof v !== "string") throw new HttpError(400, `field ${k.slice(0, 40)} must be a string`);
      out[k] = v;
    }
    return out;
  }
  if (type === "application/x-www-form-urlencoded") return Object.fromEntries(new URLSearchParams(text));
  throw new HttpError(415, "send application/x-www-form-urlencoded or application/json");
}

/** The route of a path below the prefix; undefined: not a page. Throws 400 on a malformed app name. */
export function routeOf(path: string, query: URLSearchParams): Route | undefined {
  if (path === "/" || path === "")
    return {
      page: "matrix",
      q: (query.get("q") ?? "").slice(0, 200),
      team: (query.get("team") ?? "").slice(0, 63),
      pageNo: Number(query.get("page")) || 1,
    };
  if (path === "/promotions") return { page: "promotions" };
  if (path === "/cluster") {
    const object = (query.get("object") ?? "").slice(0, 600);
    return { page: "cluster", ...(object ? { object } : {}) };
  }
  if (path === "/policies") return { page: "policies" };
  const m = /^\/apps\/([^/]*)$/.exec(path);
  if (m) {
    let app: string;
    try {
      app = decodeURIComponent(m[1] ?? "");
    } catch {
      throw new HttpError(400, "the app name is not valid URL encoding");
    }
    if (!APP_NAME.test(app) || app.includes("..")) throw new HttpError(400, "not an app name");
    return { page: "app", app };
  }
  return undefined;
}

/**
 * What one page needs of the view: the browser gets the rows of its matrix
 * page (500 apps would otherwise ride along on every page and every update),
 * the one app of an app page, and no rows where none is shown.
 */
export function pageView(view: FleetView, route: Route): { view: FleetView; route: Route } {
  if (route.page === "matrix") {
    const rows = view.rows.filter((r) => matchesFilter(r, route.q, route.team));
    const pages = Math.max(1, Math.ceil(rows.length / PAGE_SIZE));
    const pageNo = Math.min(Math.max(1, route.pageNo), pages);
    return {
      view: {
        ...view,
        rows: rows.slice((pageNo - 1) * PAGE_SIZE, pageNo * PAGE_SIZE),
        promotions: [],
        policies: [],
      },
      route: { ...route, pageNo, matched: rows.length },
    };
  }
  if (route.page === "app")
    return { view: { ...view, rows: view.rows.filter((r) => r.app === route.app), promotions: [] }, route };
  return {
    view: {
      ...view,
      rows: [],
      ...(route.page === "promotions" ? {} : { promotions: [] }),
      ...(route.page === "policies" ? {} : { policies: [] }),
      ...(!view.cluster
        ? {}
        : route.page === "cluster"
          ? {
              cluster: {
                ...view.cluster,
                events: view.cluster.events
                  .filter((e) => !route.object || objectKey(e) === route.object)
                  .slice(0, EVENTS_SHOWN),
              },
            }
          : { cluster: { ...view.cluster, rows: [], events: [] } }),
    },
    route,
  };
}

export interface DashboardHandler {
  /** Handles requests under the prefix; false for any other path (the caller answers them). */
  handle(req: IncomingMessage, res: ServerResponse): boolean;
  close(): void;
}

export function createDashboardHandler(opts: DashboardHandlerOptions): DashboardHandler {
  const base = (opts.base ?? DEFAULT_BASE).replace(/\/+$/, "");
  const data = opts.dashboard;
  const cfg: AuthConfig = {
    ...(opts.token ? { token: opts.token } : {}),
    tokenGroups: opts.tokenGroups ?? [],
    trustProxyHeaders: opts.trustProxyHeaders ?? false,
    key: randomBytes(32),
  };
  const { assets, version: assetVersion } = loadAssets();
  const streams = new Set<ServerResponse>();
  const unsubscribe = data.subscribe((version) => {
    for (const s of streams) s.write(`event: changed\ndata: ${version}\n\n`);
  });
  const heartbeat = setInterval(() => {
    for (const s of streams) s.write(": keep-alive\n\n");
  }, 15_000);

  const actionGroups = () => data.current.fleet?.spec.dashboard?.actionGroups;

  async function props(asked: Route, auth: AuthResult & { ok: true }): Promise<PageProps> {
    const st = data.current;
    const { view, route } = st.view ? pageView(st.view, asked) : { view: undefined, route: asked };
    const identity = auth.identity;
    const canAct = mayAct(identity, actionGroups());
    return {
      base,
      route,
      ...(view ? { view } : {}),
      ...(st.fleetError ? { fleetError: st.fleetError } : {}),
      ...(st.syncedAt ? { syncedAt: st.syncedAt } : {}),
      ...(identity ? { user: identity.user } : {}),
      canAct,
      ...(canAct && identity ? { csrf: csrfToken(cfg, identity) } : {}),
      ...(route.page === "app"
        ? { history: await data.history(route.app), now: new Date().toISOString() }
        : {}),
    };
  }

  const statusOf = (p: PageProps): number =>
    p.route.page === "app" && p.view && !p.view.rows.some((r) => r.app === (p.route as { app: string }).app)
      ? 404
      : 200;

  async function action(
    req: IncomingMessage,
    res: ServerResponse,
    name: string,
    auth: AuthResult,
  ): Promise<void> {
    // Who is asking is known before the body is read: an anonymous caller is turned away without it.
    if (!auth.ok || !auth.identity) {
      req.resume();
      return json(req, res, 401, {
        error: auth.ok
          ? "actions need a signed-in user (bearer token or authenticating proxy)"
          : auth.message,
      });
    }
    const body = await readBody(req);
    const refused = refuseAction(
      auth,
      cfg,
      actionGroups(),
      String(req.headers["x-csrf-token"] ?? body._csrf ?? "") || undefined,
      {
        ...(req.headers.origin ? { header: String(req.headers.origin) } : {}),
        ...(req.headers.host ? { host: String(req.headers.host) } : {}),
      },
    );
    if (refused) return json(req, res, refused.status, { error: refused.message });
    const fleet = data.current.fleet;
    const envs = fleet?.spec.environments.map((e) => e.name) ?? [];
    if (name === "promote") {
      const to = body.to ?? "";
      const from = body.from || undefined;
      if (!envs.includes(to) || (from !== undefined && !envs.includes(from)))
        throw new HttpError(400, `unknown environment (environments: ${envs.join(", ")})`);
      const r = await data.promote(to, from);
      return json(req, res, 200, {
        message:
          r.requests.length > 0
            ? r.requests
                .map(
                  (q) =>
                    `${q.outcome} request ${q.number !== undefined ? `#${q.number} ` : ""}${q.url ?? q.branch}`,
                )
                .join("; ")
            : `${r.status}${r.gates.length ? `: ${r.gates.map((g) => `${g.gate} ${g.state} (${g.message})`).join("; ")}` : ""}`,
        status: r.status,
        requests: r.requests,
        gates: r.gates,
      });
    }
    const kind = body.kind ?? "Kustomization";
    const namespace = body.namespace ?? "";
    const objName = body.name ?? "";
    if (
      !DNS1123_LABEL.test(namespace) ||
      !/^[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/.test(objName) ||
      objName.length > 253
    )
      throw new HttpError(400, "namespace and name must be Kubernetes names");
    if (name === "reconcile") {
      if (kind !== "Kustomization" && kind !== "GitRepository" && kind !== "HelmRelease")
        throw new HttpError(400, "kind must be Kustomization, GitRepository or HelmRelease");
      await data.reconcile(kind, namespace, objName);
      return json(req, res, 200, { message: `reconcile requested for ${kind} ${namespace}/${objName}` });
    }
    if (kind !== "Kustomization" && kind !== "HelmRelease")
      throw new HttpError(400, "only Kustomizations and HelmReleases are suspended and resumed here");
    await data.setSuspended(kind, namespace, objName, name === "suspend");
    return json(req, res, 200, {
      message: `${name === "suspend" ? "suspended" : "resumed"} ${kind} ${namespace}/${objName}`,
    });
  }

  async function route(req: IncomingMessage, res: ServerResponse, url: URL): Promise<void> {
    const path = url.pathname.slice(base.length) || "/";
    if (path === "/healthz") return send(req, res, 200, "text/plain; charset=utf-8", "ok\n");
    const asset = /^\/assets\/(dashboard\.(js|css))$/.exec(path)?.[1];
    if (asset && (req.method === "GET" || req.method === "HEAD")) {
      const a = assets.get(asset)!;
      const gz = /\bgzip\b/.test(String(req.headers["accept-encoding"] ?? ""));
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": a.type,
        "cache-control": "public, max-age=31536000, immutable",
        vary: "accept-encoding",
        ...(gz ? { "content-encoding": "gzip" } : {}),
        "content-length": String((gz ? a.gzip : a.body).length),
      });
      res.end(req.method === "HEAD" ? undefined : gz ? a.gzip : a.body);
      return;
    }
    if (path === "/login") {
      if (req.method === "POST") {
        const body = await readBody(req);
        if (!cfg.token || body.token !== cfg.token)
          return send(req, res, 401, "text/plain; charset=utf-8", "wrong token\n");
        res.writeHead(303, {
          ...SECURITY_HEADERS,
          "set-cookie": `${SESSION_COOKIE}=${sessionValue(cfg)}; Path=${base}; HttpOnly; SameSite=Strict`,
          location: `${base}/`,
        });
        res.end();
        return;
      }
      return send(
        req,
        res,
        200,
        "text/html; charset=utf-8",
        `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in · shipmate</title><link rel="stylesheet" href="${base}/assets/dashboard.css"></head><body><main><h1>shipmate dashboard</h1><form method="post" action="${base}/login"><label for="token">Token</label> <input id="token" name="token" type="password" autocomplete="current-password"> <button type="submit">Sign in</button></form></main></body></html>\n`,
      );
    }
    const auth = authenticate(req.headers, cfg);
    const actionName = /^\/api\/actions\/(promote|reconcile|suspend|resume)$/.exec(path)?.[1];
    if (actionName) {
      if (req.method !== "POST") throw new HttpError(405, "actions are POST requests");
      return action(req, res, actionName, auth);
    }
    if (path.startsWith("/api/actions/")) throw new HttpError(404, "no such action");
    if (!auth.ok) {
      if (
        cfg.token &&
        !cfg.trustProxyHeaders &&
        (req.headers.accept ?? "").includes("text/html") &&
        !path.startsWith("/api/")
      )
        return send(
          req,
          res,
          401,
          "text/html; charset=utf-8",
          `<!doctype html><html lang="en"><head><meta charset="utf-8"><title>Sign in</title></head><body><p><a href="${escapeHtml(base)}/login">Sign in</a></p></body></html>\n`,
          { "www-authenticate": "Bearer" },
        );
      return json(req, res, 401, { error: auth.message });
    }
    if (req.method !== "GET" && req.method !== "HEAD") throw new HttpError(405, "method not allowed");
    if (path === "/events") {
      res.writeHead(200, {
        ...SECURITY_HEADERS,
        "content-type": "text/event-stream; charset=utf-8",
        "cache-control": "no-store",
        connection: "keep-alive",
      });
      res.write(`retry: 1000\nevent: changed\ndata: ${data.current.version}\n\n`);
      streams.add(res);
      req.on("close", () => streams.delete(res));
      return;
    }
    if (path === "/api/state")
      return json(req, res, 200, data.current.view ?? { error: data.current.fleetError ?? "not read yet" });
    if (path === "/api/page") {
      const target = new URL(url.searchParams.get("path") ?? `${base}/`, "http://x");
      const r = routeOf(target.pathname.slice(base.length) || "/", target.searchParams);
      if (!r) throw new HttpError(404, "no such page");
      const p = await props(r, auth);
      return json(req, res, 200, p);
    }
    const r = routeOf(path, url.searchParams);
    if (!r) throw new HttpError(404, "no such page");
    const p = await props(r, auth);
    return send(req, res, statusOf(p), "text/html; charset=utf-8", documentHtml(p, assetVersion));
  }

  return {
    handle(req, res) {
      let url: URL;
      try {
        url = new URL(req.url ?? "/", "http://dashboard.invalid");
      } catch {
        return false;
      }
      if (url.pathname !== base && !url.pathname.startsWith(`${base}/`)) return false;
      // Dot segments (plain or percent-encoded) are resolved by URL parsing: refuse them before they are.
      const raw = (req.url ?? "/").split("?")[0] ?? "";
      if (/(^|\/)(\.|%2e){1,2}(\/|$)/i.test(raw)) {
        json(req, res, 400, { error: "the path has a '.' or '..' segment" });
        return true;
      }
      if (url.pathname === base) {
        res.writeHead(308, { ...SECURITY_HEADERS, location: `${base}/` });
        res.end();
        return true;
      }
      route(req, res, url).catch((err: unknown) => {
        const status = err instanceof HttpError ? err.status : 500;
        const message = err instanceof HttpError ? err.message : describeError(err);
        if (res.headersSent) {
          res.destroy();
          return;
        }
        if (status === 413) res.setHeader("connection", "close");
        json(req, res, status, { error: message });
        if (status === 413) req.resume();
      });
      return true;
    },
    close() {
      unsubscribe();
      clearInterval(heartbeat);
      for (const s of streams) s.end();
      streams.clear();
    },
  };
}

export interface DashboardServer {
  server: Server;
  url: string;
  close(): Promise<void>;
}

/** A server of its own for `shipmate dashboard`; `/` redirects to the prefix. */
export async function startDashboardServer(
  handler: DashboardHandler,
  listen: { host: string; port: number },
  base = DEFAULT_BASE,
): Promise<DashboardServer> {
  const server = createServer((req, res) => {
    if (handler.handle(req, res)) return;
    if (req.url === "/" || req.url === "") {
      res.writeHead(302, { ...SECURITY_HEADERS, location: `${base}/` });
      res.end();
      return;
    }
    json(req, res, 404, { error: "not found" });
  });
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
    async close() {
      handler.close();
      await new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      });
    },
  };
}
