/**
 * Forge requests per run when there is nothing to change, for each forge:
 * GitHub and GitLab against the OpenAPI-validated fakes (counted on the
 * server), Gitea for real (built by scripts/provision/50-gitea.sh, counted by
 * the provider). Two situations per forge: the open request already proposes
 * exactly this (must stay as it is), and nothing to propose with nothing open.
 * Then a whole `shipmate promote` run against Gitea with nothing to promote.
 *
 *   node bench/promote-requests.ts
 */
import { spawn } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { createServer, request } from "node:http";
import { cpus, tmpdir } from "node:os";
import { join } from "node:path";
import { createGiteaForge } from "../src/forge/gitea/index.ts";
import { createGitHubForge } from "../src/forge/github/index.ts";
import { createGitLabForge } from "../src/forge/gitlab/index.ts";
import { propose } from "../src/forge/propose.ts";
import type { Forge, ImageChange } from "../src/forge/types.ts";
import { runPromotion } from "../src/promote/index.ts";
import { TestClone } from "../test/forge/helpers.ts";
import { startGitea } from "../test/infra/gitea.ts";
import { GitHubState, GitLabState, startFakeGitHub, startFakeGitLab } from "../test/infra/openapi-forge.ts";
import { installedRenovate } from "./_lib.ts";

const changes: ImageChange[] = [
  {
    image: "ghcr.io/acme/web",
    from: "1.3.0",
    to: "1.4.0",
    policy: "web (staging → production)",
    files: ["apps/production/web/kustomization.yaml"],
  },
];
const promotion = { from: "staging", to: "production", revision: "0".repeat(40) };
const rows: string[] = [];

async function measure(name: string, make: () => Forge, served?: () => number): Promise<void> {
  const branch = "shipmate/promote-production";
  const opts = { branch, base: "main", title: "Promote staging to production", changes, promotion };
  await propose({ forge: make(), ...opts });
  const steady = make();
  const before = served?.() ?? 0;
  const outcome = await propose({ forge: steady, ...opts });
  const upToDate = `${steady.requestCount}${served ? ` (server saw ${served() - before})` : ""}`;
  // Close it, then a run with nothing to propose and nothing open.
  await propose({ forge: make(), ...opts, changes: [] });
  const idle = make();
  const before2 = served?.() ?? 0;
  await propose({ forge: idle, ...opts, changes: [] });
  const nothing = `${idle.requestCount}${served ? ` (server saw ${served() - before2})` : ""}`;
  rows.push(`| ${name} | ${outcome.action}: ${upToDate} | ${nothing} |`);
}

const gh = new GitHubState("acme", "fleet");
gh.branches.set("shipmate/promote-production", "a".repeat(40));
const ghFake = await startFakeGitHub(gh);
await measure(
  "GitHub (fake, @octokit/openapi-validated)",
  () => createGitHubForge({ repo: "acme/fleet", token: "t", url: ghFake.url }),
  () => ghFake.requests.length,
);
if (ghFake.violations.length) throw new Error(`GitHub fake violations: ${ghFake.violations.join("; ")}`);
await ghFake.close();

const gl = new GitLabState("acme/fleet");
gl.branches.set("shipmate/promote-production", "b".repeat(40));
const glFake = await startFakeGitLab(gl);
await measure(
  "GitLab (fake, OpenAPI-validated)",
  () => createGitLabForge({ repo: "acme/fleet", token: "t", url: glFake.url }),
  () => glFake.requests.length,
);
if (glFake.violations.length) throw new Error(`GitLab fake violations: ${glFake.violations.join("; ")}`);
await glFake.close();

const gitea = await startGitea();
try {
  const repo = await gitea.createRepo("fleet");
  const clone = await TestClone.clone(repo.authedCloneUrl);
  await clone.pushBranch("shipmate/promote-production", {
    "apps/production/web/kustomization.yaml": "x: 1\n",
  });
  await measure("Gitea 1.26 (real)", () =>
    createGiteaForge({ url: gitea.url, repo: repo.fullName, token: gitea.token }),
  );

  // A whole promotion with nothing to promote: production already runs staging's versions.
  const overlay = (tag: string) =>
    `apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nimages:\n  - name: ghcr.io/acme/web\n    newTag: "${tag}"\n`;
  await clone.pushBranch("main", {
    "shipmate.yaml":
      "apiVersion: shipmate.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: acme\nspec:\n  environments:\n    - name: staging\n      path: apps/staging\n    - name: production\n      path: apps/production\n      mode: pull-request\n      promoteFrom: staging\n      gates:\n        checks: true\n",
    "apps/staging/web/kustomization.yaml": overlay("1.4.0"),
    "apps/production/web/kustomization.yaml": overlay("1.4.0"),
  });
  const forge = createGiteaForge({ url: gitea.url, repo: repo.fullName, token: gitea.token });
  const started = performance.now();
  const r = await runPromotion({
    repo: repo.authedCloneUrl,
    from: "staging",
    to: "production",
    dryRun: false,
    env: process.env,
    forgeClient: forge,
  });
  const ms = performance.now() - started;
  await clone.remove();
  const peer = await renovateOnGitea(gitea.url, gitea.token, (await gitea.createRepo("quiet")).fullName);
  console.log(`machine: ${cpus().length} × ${cpus()[0]?.model ?? "?"}, Node ${process.versions.node}`);
  console.log("\n| forge | open request already right | nothing to propose, nothing open |");
  console.log("| --- | --- | --- |");
  for (const row of rows) console.log(row);
  console.log(
    `\nshipmate promote, nothing to promote (Gitea, clone + plan + list): ${r.status}, ${r.forgeRequests} forge request(s), ${(ms / 1000).toFixed(2)} s`,
  );
  console.log(peer);
} finally {
  await gitea.stop();
}

/**
 * The peer: Renovate (gitea platform) on a repository with nothing to update,
 * its requests counted by a proxy in front of Gitea (API and git smart-HTTP
 * apart: Renovate clones through the endpoint's host).
 */
async function renovateOnGitea(giteaUrl: string, token: string, repo: string): Promise<string> {
  const bin = installedRenovate();
  if (!bin)
    return "Renovate: not installed (npm run bench -- scan installs it into $SHIPMATE_CACHE/renovate)";
  const target = new URL(giteaUrl);
  let count = 0;
  let git = 0;
  const paths = new Map<string, number>();
  const proxy = createServer((req, res) => {
    if ((req.url ?? "").startsWith("/api/")) count++;
    else git++;
    const key = `${req.method} ${(req.url ?? "").split("?")[0]?.replace(/\/\d+(?=\/|$)/g, "/N")}`;
    paths.set(key, (paths.get(key) ?? 0) + 1);
    const up = request(
      { host: target.hostname, port: target.port, path: req.url, method: req.method, headers: req.headers },
      (r) => {
        res.writeHead(r.statusCode ?? 502, r.headers);
        r.pipe(res);
      },
    );
    up.on("error", () => res.writeHead(502).end());
    req.pipe(up);
  });
  await new Promise<void>((r) => proxy.listen(0, "127.0.0.1", r));
  const addr = proxy.address();
  const port = typeof addr === "object" && addr ? addr.port : 0;
  const base = mkdtempSync(join(tmpdir(), "shipmate-bench-renovate-"));
  const env = {
    ...process.env,
    RENOVATE_PLATFORM: "gitea",
    RENOVATE_ENDPOINT: `http://127.0.0.1:${port}/api/v1/`,
    RENOVATE_TOKEN: token,
    RENOVATE_REPOSITORIES: JSON.stringify([repo]),
    RENOVATE_ONBOARDING: "false",
    RENOVATE_REQUIRE_CONFIG: "optional",
    RENOVATE_DEPENDENCY_DASHBOARD: "false",
    RENOVATE_BASE_DIR: base,
    RENOVATE_GIT_AUTHOR: "Renovate Bot <bot@example.test>",
    LOG_LEVEL: "warn" as const,
  };
  const runs: string[] = [];
  for (const label of ["first run", "second run"]) {
    count = 0;
    git = 0;
    paths.clear();
    const t = performance.now();
    // Asynchronously: the counting proxy runs in this process.
    const r = await new Promise<{ status: number | null; out: string }>((resolve) => {
      const child = spawn(bin, [], { env, stdio: ["ignore", "pipe", "pipe"], timeout: 180_000 });
      let out = "";
      child.stdout.on("data", (d) => {
        out += d;
      });
      child.stderr.on("data", (d) => {
        out += d;
      });
      child.on("close", (status) => resolve({ status, out }));
    });
    runs.push(
      `Renovate 44 (gitea platform), repository with nothing to update, ${label}: ${count} API requests (+ ${git} git HTTP requests), ${((performance.now() - t) / 1000).toFixed(1)} s${r.status === 0 ? "" : ` (exit ${r.status}: ${r.out.trim().split("\n").slice(-2).join(" ")})`}`,
    );
  }
  const top = [...paths]
    .filter(([k]) => k.includes(" /api/"))
    .sort((a, b) => b[1] - a[1])
    .map(([k, n]) => `${k} ×${n}`);
  proxy.close();
  rmSync(base, { recursive: true, force: true });
  return `${runs.join("\n")}\n  (second run, API requests by endpoint: ${top.join(", ")})`;
}
