/**
 * The dashboard's world, shared by its browser test and by
 * scripts/dashboard-screenshots.ts: a real kube-apiserver with the agent
 * running in-process, a fleet repository on a real Gitea (the agent syncs it,
 * promotions open their requests there), the dashboard mounted on a server of
 * its own behind an "authenticating proxy" (trusted X-Forwarded-* headers),
 * and a second server on the same data guarded by a bearer token. Headless
 * Debian chromium drives it.
 */
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { type Browser, chromium } from "playwright-core";
import { Agent } from "../../src/agent/agent.ts";
import { createDashboardHandler, type MountedDashboard, mountDashboard } from "../../src/dashboard/index.ts";
import { type DashboardServer, startDashboardServer } from "../../src/dashboard/server.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { adminClient, ksStatus, kustomization, silent, waitFor } from "../agent/helpers.ts";
import { pushFiles } from "../helpers/gitea.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";

export const CHROMIUM = "/usr/bin/chromium";
export const TOKEN = "dashboard-test-token-0123456789";
export const IMAGE = "127.0.0.1:5000/acme/web";

export const FLEET = `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: acme
spec:
  environments:
    - name: staging
      path: apps/staging
    - name: production
      path: apps/production
      mode: pull-request
      promoteFrom: staging
  dashboard:
    actionGroups: [ops]
`;

const yaml = (docs: object[]) => docs.map((d) => JSON.stringify(d)).join("\n---\n");

export const overlay = (
  ns: string,
  tag: string,
  extra: string[] = [],
) => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: ${ns}
resources:
  - ../../base/web
  - ns.yaml
${extra.map((r) => `  - ${r}\n`).join("")}images:
  - name: ${IMAGE}
    newTag: "${tag}"
`;

const deployment = {
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name: "web" },
  spec: {
    replicas: 1,
    selector: { matchLabels: { app: "web" } },
    template: {
      metadata: { labels: { app: "web" } },
      spec: { containers: [{ name: "web", image: `${IMAGE}:0.0.0` }] },
    },
  },
};

/** The scaffold manifest `shipmate init --team` writes: who owns which app (the matrix's team filter). */
export const SCAFFOLD = `${JSON.stringify(
  {
    apiVersion: "shipmate.dev/v1alpha1",
    kind: "ScaffoldManifest",
    generator: "shipmate test",
    repository: ".",
    fleetRoot: ".",
    spec: {
      layout: "monorepo",
      name: "acme",
      envs: ["staging", "production"],
      teams: ["batch", "storefront"],
      apps: [
        { name: "jobs", team: "batch", image: IMAGE },
        { name: "web", team: "storefront", image: IMAGE },
      ],
      gitUrl: "https://git.invalid/acme/fleet.git",
      branch: "main",
      registry: "127.0.0.1:5000/acme",
      appSource: "kustomize",
      version: "0.0.0",
    },
    files: {},
  },
  null,
  2,
)}\n`;

export function seedFiles(): Record<string, string> {
  return {
    "shipmate.yaml": FLEET,
    ".shipmate/scaffold.json": SCAFFOLD,
    "apps/base/web/kustomization.yaml": "resources:\n  - deployment.yaml\n",
    "apps/base/web/deployment.yaml": yaml([deployment]),
    "apps/staging/web/kustomization.yaml": overlay("dash-staging", "1.0.0"),
    "apps/staging/web/ns.yaml": yaml([
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "dash-staging" } },
    ]),
    "apps/production/web/kustomization.yaml": overlay("dash-prod", "0.9.0"),
    "apps/production/web/ns.yaml": yaml([
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "dash-prod" } },
    ]),
    // An app whose build fails: its resource is missing.
    "apps/staging/jobs/kustomization.yaml": overlay("dash-staging", "2.0.0", ["missing.yaml"]),
    "apps/staging/jobs/ns.yaml": yaml([
      { apiVersion: "v1", kind: "Namespace", metadata: { name: "dash-staging" } },
    ]),
    "clusters/test/apps.yaml": yaml([
      kustomization("t-dash-staging", { path: "./apps/staging/web", interval: "1m" }),
      kustomization("t-dash-production", { path: "./apps/production/web", interval: "1m" }),
      kustomization("t-dash-jobs", { path: "./apps/staging/jobs", interval: "1m" }),
    ]),
  };
}

export interface DashboardWorld {
  kube: KubeCluster;
  client: KubeClient;
  gitea: GiteaServer;
  repo: GiteaRepo;
  agent: Agent;
  mounted: MountedDashboard;
  /** Behind the "proxy": requests say who they are with X-Forwarded-User/Groups. */
  proxied: DashboardServer;
  /** The same data behind a bearer token. */
  guarded: DashboardServer;
  browser: Browser;
  push(files: Record<string, string>): Promise<string>;
  close(): Promise<void>;
}

export async function startWorld(): Promise<DashboardWorld> {
  const work = mkdtempSync(join(tmpdir(), "shipmate-dashboard-test-"));
  const [kube, gitea] = await Promise.all([startKube({ name: "dashboard" }), startGitea()]);
  const client = adminClient(kube);
  const repo = await gitea.createRepo("fleet");
  await pushFiles(repo, seedFiles());
  const cloneUrl = repo.authedCloneUrl.replace(/\/\/[^@]+@/, "//");
  const agent = new Agent(
    kube.kubeConfig(),
    {
      repo: cloneUrl,
      branch: "main",
      path: "clusters/test",
      intervalMs: 1_000,
      name: "t-dash",
      namespace: "shipmate-system",
      workdir: join(work, "agent"),
      pollMs: 200,
      healthPollMs: 200,
    },
    silent,
  );
  const stop = new AbortController();
  const running = agent.run(stop.signal, false).catch(() => undefined);
  // The agent installs the CRDs and applies the fleet first, so the dashboard's watches find every kind.
  await waitFor(
    async () => ((await ksStatus(client, "t-dash-staging")).ready?.status === "True" ? true : undefined),
    90_000,
  );
  const mounted = await mountDashboard({
    repo: repo.authedCloneUrl,
    env: { ...process.env, GITEA_TOKEN: gitea.token },
    kubeconfig: kube.kubeconfig,
    forge: { forge: "gitea", forgeUrl: gitea.url, forgeRepo: repo.fullName },
    syncIntervalMs: 500,
  });
  const listen = { host: "127.0.0.1", port: 0 };
  const proxied = await startDashboardServer(
    createDashboardHandler({ dashboard: mounted.dashboard, trustProxyHeaders: true }),
    listen,
  );
  const guarded = await startDashboardServer(
    createDashboardHandler({ dashboard: mounted.dashboard, token: TOKEN, tokenGroups: ["viewers"] }),
    listen,
  );
  const browser = await chromium.launch({
    executablePath: CHROMIUM,
    args: [
      "--headless",
      "--no-sandbox",
      "--disable-gpu",
      "--disable-quic",
      "--no-first-run",
      "--disable-background-networking",
      "--disable-component-update",
      "--disable-sync",
    ],
  });
  return {
    kube,
    client,
    gitea,
    repo,
    agent,
    mounted,
    proxied,
    guarded,
    browser,
    push: (files) => pushFiles(repo, files),
    async close() {
      await browser.close().catch(() => undefined);
      await proxied.close();
      await guarded.close();
      await mounted.close();
      stop.abort();
      await running;
      agent.close();
      client.close();
      await gitea.stop();
      await kube.stop();
      rmSync(work, { recursive: true, force: true });
    },
  };
}
