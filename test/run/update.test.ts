/**
 * One engine for every front end: the same fleet (staging pushed, production
 * promoted from staging by pull request) updated through `shipmate update`,
 * the bundled Action and runUpdate as the App and `shipmate serve` call it
 * ends with the same tree on main — staging bumped, production left to
 * promotion — and each run clones the fleet once. The App's own handler
 * (a signed push delivery into the App server, the OpenAPI-checked fake
 * GitHub) is the fourth front end, and ends the same. Real registry, real git
 * remote over smart HTTP; no forge is given, so a run that wrongly wanted a
 * pull request into production would fail.
 */
import { randomBytes } from "node:crypto";
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { Workspace } from "../../src/git/workspace.ts";
import { runUpdate } from "../../src/run/update.ts";
import { runAction } from "../action/runner.ts";
import * as E from "../app/events.ts";
import { startHarness } from "../app/harness.ts";
import { runCli } from "../helpers/cli.ts";
import { fleetFiles } from "../helpers/fleet.ts";
import { type GitHttpServer, git, show, startGitHttpServer, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

const TOKEN = randomBytes(12).toString("hex");
let registry: TestRegistry;
let gitServer: GitHttpServer;
let image: string;
const cleanup: string[] = [];

beforeAll(async () => {
  registry = await startRegistry();
  await seedTags(registry, "team/app", ["1.0.0", "1.1.0"]);
  image = `${registry.host}/team/app`;
  gitServer = await startGitHttpServer({ user: "x-access-token", password: TOKEN });
});

afterAll(async () => {
  vi.restoreAllMocks();
  await registry?.stop();
  await gitServer?.close();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const env = () => ({
  PATH: process.env.PATH,
  HOME: process.env.HOME,
  SHIPMATE_GIT_TOKEN: TOKEN,
  XDG_CACHE_HOME: join(tempDir("shipmate-run-cache-"), "cache"),
});

function repo(name: string) {
  const url = gitServer.createRepo(name, fleetFiles(image));
  return { url, bare: join(gitServer.root, `${name}.git`) };
}

/** What main holds for the apps, and the branches: the outcome every front end must agree on. */
function outcome(bare: string) {
  return {
    apps: git(bare, ["rev-parse", "main:apps"]).trim(),
    staging: show(bare, "main", "apps/staging/app/deployment.yaml"),
    production: show(bare, "main", "apps/production/app/deployment.yaml"),
    branches: git(bare, ["for-each-ref", "--format=%(refname)", "refs/heads"]).trim().split("\n"),
  };
}

describe("the same fleet through every front end", () => {
  it("CLI, Action, runUpdate (serve) and the App handler push staging, leave production to promotion, one clone each", async () => {
    const clones = vi.spyOn(Workspace, "clone");

    const cli = repo("via-cli");
    const r = await runCli(["update", "--repo", cli.url, "--push", "--no-cache"], { env: env() });
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(clones).toHaveBeenCalledTimes(1);

    clones.mockClear();
    const app = repo("via-engine");
    let inspected: string | undefined;
    const result = await runUpdate({
      repo: app.url,
      branch: "main",
      policies: { kind: "repo" },
      dryRun: false,
      env: env(),
      scan: { cacheDir: false },
      author: { name: "shipmate[bot]", email: "shipmate[bot]@users.noreply.github.com" },
      // The App's dashboard reads the tree in the same checkout, after the push.
      inspect: async ({ dir }) => {
        inspected = git(dir, ["show", "HEAD:apps/staging/app/deployment.yaml"]);
      },
    });
    expect(clones).toHaveBeenCalledTimes(1);
    expect(result.policies.map((c) => [c.policy.id, c.mode])).toEqual([["flux-system:app-staging", "push"]]);
    expect(result.problems).toEqual([]);
    expect(inspected).toContain(`${image}:1.1.0 #`);

    const action = repo("via-action");
    const parent = tempDir("shipmate-run-workspace-");
    cleanup.push(parent);
    const workspace = join(parent, "repo");
    git(parent, ["clone", "--quiet", action.bare, workspace]);
    git(workspace, ["remote", "set-url", "origin", action.url]);
    const run = await runAction({ command: "update" }, { workspace, token: TOKEN });
    expect(run.code, run.stdout + run.stderr).toBe(0);

    // The App itself: a push to the default branch, handled by the App server on the fake GitHub.
    clones.mockClear();
    const hh = await startHarness({
      git: gitServer,
      name: "via-app",
      files: fleetFiles(image),
      settings: { dashboard: false, checks: false },
    });
    try {
      await hh.deliverAndWait("push", E.push(hh.repo, ["policies/staging/app.yaml"]));
      expect(hh.fake.violations).toEqual([]);
      expect(clones).toHaveBeenCalledTimes(1);
    } finally {
      await hh.close();
    }

    const want = outcome(cli.bare);
    expect(want.staging).toContain(`${image}:1.1.0 #`);
    expect(want.production).toContain(`${image}:1.0.0 #`);
    expect(want.branches).toEqual(["refs/heads/main"]);
    expect(outcome(app.bare)).toEqual(want);
    expect(outcome(action.bare)).toEqual(want);
    expect(outcome(hh.repo.bare)).toEqual(want);
  });
});
