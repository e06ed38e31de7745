/**
 * The dashboard without a browser: who may act (tables over headers), the
 * committed bundle matching its sources, and the page mounted under
 * /dashboard in `shipmate serve`'s server beside the webhook endpoint.
 */
import { readFileSync, rmSync } from "node:fs";
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { BUNDLE, bundle } from "../../scripts/build-dashboard.ts";
import {
  type AuthConfig,
  authenticate,
  csrfToken,
  refuseAction,
  SESSION_COOKIE,
  sessionValue,
} from "../../src/dashboard/auth.ts";
import { type MountedDashboard, mountDashboard } from "../../src/dashboard/index.ts";
import { startWebhookService, type WebhookService } from "../../src/webhooks/service.ts";
import { runCli } from "../helpers/cli.ts";
import { seedBare, tempDir } from "../infra/git.ts";

const key = Buffer.alloc(32, 7);
const TOKEN = "a-dashboard-token-of-some-length";
const cfg = (over: Partial<AuthConfig> = {}): AuthConfig => ({
  tokenGroups: [],
  trustProxyHeaders: false,
  key,
  ...over,
});

describe("authentication", () => {
  const cases: {
    name: string;
    cfg: AuthConfig;
    headers: Record<string, string>;
    want: string;
  }[] = [
    { name: "no token, no proxy: anonymous and read-only", cfg: cfg(), headers: {}, want: "ok:-" },
    {
      name: "proxy headers are ignored unless trusted",
      cfg: cfg(),
      headers: { "x-forwarded-user": "alice" },
      want: "ok:-",
    },
    { name: "a token is required when set", cfg: cfg({ token: TOKEN }), headers: {}, want: "401" },
    {
      name: "a wrong bearer token is refused",
      cfg: cfg({ token: TOKEN }),
      headers: { authorization: "Bearer nope" },
      want: "401",
    },
    {
      name: "the bearer token's holder has --token-groups",
      cfg: cfg({ token: TOKEN, tokenGroups: ["ops"] }),
      headers: { authorization: `Bearer ${TOKEN}` },
      want: "ok:token[ops]",
    },
    {
      name: "the login cookie stands for the token",
      cfg: cfg({ token: TOKEN }),
      headers: { cookie: `x=1; ${SESSION_COOKIE}=${sessionValue(cfg({ token: TOKEN }))}` },
      want: "ok:token[]",
    },
    {
      name: "a trusted proxy names user and groups",
      cfg: cfg({ trustProxyHeaders: true }),
      headers: { "x-forwarded-user": "alice", "x-forwarded-groups": "dev, ops" },
      want: "ok:alice[dev,ops]",
    },
    {
      name: "behind a trusted proxy a request without a user did not come through it",
      cfg: cfg({ trustProxyHeaders: true }),
      headers: {},
      want: "401",
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const r = authenticate(c.headers, c.cfg);
      expect(
        r.ok
          ? `ok:${r.identity ? `${r.identity.user}[${r.identity.groups.join(",")}]` : "-"}`
          : String(r.status),
      ).toBe(c.want);
    });
});

describe("actions", () => {
  const proxy = cfg({ trustProxyHeaders: true });
  const alice = { user: "alice", groups: ["ops"] };
  const good = csrfToken(proxy, alice);
  const cases: {
    name: string;
    headers: Record<string, string>;
    groups?: string[];
    csrf?: string;
    origin?: string;
    want: number | undefined;
  }[] = [
    {
      name: "allowed: group named in shipmate.yaml, CSRF token, same origin",
      headers: { "x-forwarded-user": "alice", "x-forwarded-groups": "ops" },
      groups: ["ops"],
      csrf: good,
      origin: "http://h:1",
      want: undefined,
    },
    { name: "no user: 401", headers: {}, groups: ["ops"], csrf: good, want: 401 },
    {
      name: "no action group in shipmate.yaml: read-only, 403",
      headers: { "x-forwarded-user": "alice", "x-forwarded-groups": "ops" },
      csrf: good,
      want: 403,
    },
    {
      name: "not in an action group: 403",
      headers: { "x-forwarded-user": "alice", "x-forwarded-groups": "dev" },
      groups: ["ops"],
      csrf: good,
      want: 403,
    },
    {
      name: "no CSRF token: 403",
      headers: { "x-forwarded-user": "alice", "x-forwarded-groups": "ops" },
      groups: ["ops"],
      want: 403,
    },
    {
      name: "another user's CSRF token: 403",
      headers: { "x-forwarded-user": "bob", "x-forwarded-groups": "ops" },
      groups: ["ops"],
      csrf: good,
      want: 403,
    },
    {
      name: "another origin: 403",
      headers: { "x-forwarded-user": "alice", "x-forwarded-groups": "ops" },
      groups: ["ops"],
      csrf: good,
      origin: "http://evil:1",
      want: 403,
    },
  ];
  for (const c of cases)
    it(c.name, () => {
      const verdict = refuseAction(authenticate(c.headers, proxy), proxy, c.groups, c.csrf, {
        ...(c.origin ? { header: c.origin } : {}),
        host: "h:1",
      });
      expect(verdict?.status).toBe(c.want);
    });
});

describe("the bundle", () => {
  it("src/dashboard/assets/dashboard.js is what scripts/build-dashboard.ts builds from the sources", async () => {
    expect(readFileSync(BUNDLE, "utf8") === (await bundle())).toBe(true);
  });
});

describe("mounted in shipmate serve", () => {
  let dir: string;
  let mounted: MountedDashboard;
  let service: WebhookService;
  beforeAll(async () => {
    dir = tempDir("shipmate-dashboard-mount-");
    seedBare(`${dir}/fleet.git`, {
      "shipmate.yaml":
        "apiVersion: shipmate.dev/v1alpha1\nkind: Fleet\nmetadata: {name: acme}\nspec:\n  environments:\n    - {name: staging, path: apps/staging}\n",
      "apps/staging/web/deploy.yaml":
        "apiVersion: apps/v1\nkind: Deployment\nspec:\n  template:\n    spec:\n      containers:\n        - image: ghcr.io/acme/web:1.2.3\n",
    });
    mounted = await mountDashboard({ repo: `file://${dir}/fleet.git`, env: {} });
    service = await startWebhookService({
      listen: "127.0.0.1:0",
      auth: { allowUnauthenticated: true },
      log: pino({ level: "silent" }),
      job: { repo: `${dir}/none`, policies: { kind: "repo" }, dryRun: true, env: {} },
      mount: (req, res) => mounted.handler.handle(req, res),
    });
  });
  afterAll(async () => {
    mounted?.handler.close();
    await service?.close();
    await mounted?.close();
    rmSync(dir, { recursive: true, force: true });
  });

  it("serves the page under /dashboard and leaves the other paths to the webhook server", async () => {
    const page = await fetch(`${service.url}/dashboard/`);
    expect(page.status).toBe(200);
    expect(page.headers.get("content-security-policy")).toContain("default-src 'none'");
    expect(page.headers.get("x-frame-options")).toBe("DENY");
    expect(await page.text()).toContain("<code>1.2.3</code>");
    expect((await fetch(`${service.url}/healthz`)).status).toBe(200);
    expect((await fetch(`${service.url}/dashboard/assets/dashboard.js`)).headers.get("content-type")).toMatch(
      /^text\/javascript/,
    );
  });

  it("the CLI refuses the dashboard's flags without --dashboard, and a missing --repo", async () => {
    const serve = await runCli(["serve", "--repo", dir, "--kubeconfig", "x", "--allow-unauthenticated"]);
    expect([serve.code, serve.stderr.trim()]).toEqual([
      2,
      "shipmate serve: --kubeconfig and --trust-proxy-headers belong to --dashboard",
    ]);
    const dash = await runCli(["dashboard"]);
    expect([dash.code, dash.stderr.trim()]).toEqual([
      2,
      "shipmate dashboard: --repo is required (a clone URL or a local checkout)",
    ]);
  });
});
