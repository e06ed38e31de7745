/**
 * One GitHub App under test: the fake GitHub (forge operations over a real
 * git repository, plus the App's operations), a Probot instance
 * authenticating to it with a real RSA key, and the App server
 * (src/app/server.ts) on 127.0.0.1 receiving signed deliveries.
 */
import { generateKeyPairSync, randomUUID } from "node:crypto";
import { join } from "node:path";
import { pino } from "pino";
import { Probot, ProbotOctokit } from "probot";
import type { AppOptions, AppSettings } from "../../src/app/index.ts";
import { type AppServer, startAppServer } from "../../src/app/server.ts";
import { hmacSignature } from "../../src/webhooks/auth.ts";
import type { GitHttpServer } from "../infra/git.ts";
import { type OpenApiFake, startFakeGitHub } from "../infra/openapi-forge.ts";
import { AppFakeState, appHandlers, type FakeRepo } from "./fake.ts";
import { GitBackedGitHubState } from "./github.ts";

export const OWNER = "acme";
export const INSTALLATION = 7;

const { privateKey } = generateKeyPairSync("rsa", {
  modulusLength: 2048,
  privateKeyEncoding: { type: "pkcs1", format: "pem" },
  publicKeyEncoding: { type: "spki", format: "pem" },
});

export interface LogLine {
  level: number;
  msg: string;
  [k: string]: unknown;
}

export interface Harness {
  app: AppServer;
  fake: OpenApiFake;
  gh: GitBackedGitHubState;
  st: AppFakeState;
  /** The forge repository (`acme/<name>`) the pull request operations work on. */
  repo: FakeRepo & { fullName: string; bare: string };
  logs: LogLine[];
  secret: string;
  /** POST a delivery as GitHub does; `signature: false` sends none, a string sends that one. */
  deliver(
    event: string,
    payload: unknown,
    opts?: { signature?: false | string; body?: string },
  ): Promise<{ status: number; body: string }>;
  /** Delivers and waits for the work it started. */
  deliverAndWait(event: string, payload: unknown): Promise<{ status: number; body: string }>;
  close(): Promise<void>;
}

export interface HarnessOptions {
  git: GitHttpServer;
  /** Repository name under acme/ and its files (the forge repository of this harness). */
  name: string;
  files: Record<string, string>;
  /** More repositories in the installation (no pull request operations on them). */
  more?: { name: string; files: Record<string, string> }[];
  settings?: Partial<AppSettings>;
  options?: Partial<AppOptions>;
  permissions?: Record<string, string>;
}

export async function startHarness(h: HarnessOptions): Promise<Harness> {
  const cloneUrl = h.git.createRepo(h.name, h.files);
  const bare = join(h.git.root, `${h.name}.git`);
  const gh = new GitBackedGitHubState(OWNER, h.name, bare);
  const st = new AppFakeState(4242, "shipmate");
  const repos: FakeRepo[] = [{ owner: OWNER, name: h.name, cloneUrl }];
  for (const m of h.more ?? [])
    repos.push({ owner: OWNER, name: m.name, cloneUrl: h.git.createRepo(m.name, m.files) });
  st.installations.set(INSTALLATION, repos);
  st.tokens.set(INSTALLATION, h.git.password);
  for (const r of repos)
    st.permissions.set(`${OWNER}/${r.name}`, new Map(Object.entries(h.permissions ?? {})));
  const fake = await startFakeGitHub(gh, appHandlers(st));

  const logs: LogLine[] = [];
  const log = pino(
    { level: "debug" },
    { write: (line: string) => void logs.push(JSON.parse(line) as LogLine) },
  );
  const secret = `whsec-${randomUUID()}`;
  const probot = new Probot({
    appId: st.appId,
    privateKey,
    secret,
    baseUrl: `${fake.url}/api/v3`,
    log,
    // No retries or throttling waits against the fake: a wrong request must fail at once.
    Octokit: ProbotOctokit.defaults({ retry: { enabled: false }, throttle: { enabled: false } }),
  });
  const settings: AppSettings = {
    scheduleMs: 0,
    dashboard: true,
    checks: true,
    insecureRegistries: [],
    env: {
      PATH: process.env.PATH,
      HOME: process.env.HOME,
      XDG_CACHE_HOME: join(bare, "..", `${h.name}-cache`),
    },
    ...h.settings,
  };
  const app = await startAppServer(probot, { settings, ...h.options }, { host: "127.0.0.1", port: 0 });

  const deliver: Harness["deliver"] = async (event, payload, opts = {}) => {
    const body = opts.body ?? JSON.stringify(payload);
    const headers: Record<string, string> = {
      "content-type": "application/json",
      "x-github-event": event,
      "x-github-delivery": randomUUID(),
      "user-agent": "GitHub-Hookshot/test",
    };
    if (opts.signature !== false)
      headers["x-hub-signature-256"] = opts.signature ?? hmacSignature(secret, body);
    const res = await fetch(`${app.url}/api/github/webhooks`, { method: "POST", headers, body });
    return { status: res.status, body: await res.text() };
  };
  return {
    app,
    fake,
    gh,
    st,
    repo: { owner: OWNER, name: h.name, cloneUrl, fullName: `${OWNER}/${h.name}`, bare },
    logs,
    secret,
    deliver,
    async deliverAndWait(event, payload) {
      const res = await deliver(event, payload);
      await app.service.idle();
      return res;
    },
    async close() {
      await app.close();
      await fake.close();
    },
  };
}
