import { execFile } from "node:child_process";
import { readdir, readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { describe, expect, it } from "vitest";
import { add, init } from "../../src/scaffold/scaffold.ts";
import { validateTree } from "../../src/validate/validate.ts";
import { runCli } from "../helpers/cli.ts";
import { listFiles, tempDirs } from "./helpers.ts";

const git = promisify(execFile);
const tmp = tempDirs();

async function fleet(layout: string, extra: { teams?: string[]; apps?: string[] } = {}) {
  const out = join(await tmp(), "fleet");
  await init({ layout, out, ...extra });
  return out;
}

describe("shipmate add", () => {
  it("app: base, overlays and policies added, the environment lists updated, the fleet still valid", async () => {
    const out = await fleet("monorepo");
    const r = await runCli(["add", "app", "web", "--repo", out]);
    expect(r.code).toBe(0);
    const lines = r.stdout.trim().split("\n");
    expect(lines).toContain(`added ${join(out, "apps/base/web/deployment.yaml")}`);
    expect(lines).toContain(`added ${join(out, "policies/production/web.yaml")}`);
    expect(lines).toContain(`updated ${join(out, "apps/staging/kustomization.yaml")}`);
    expect(await readFile(join(out, "apps/staging/kustomization.yaml"), "utf8")).toContain("  - web\n");
    expect((await validateTree(out)).problems).toEqual([]);
  });

  it("a file the user changed is skipped, reported and left exactly as the user wrote it", async () => {
    const out = await fleet("monorepo");
    const file = join(out, "apps/production/kustomization.yaml");
    const mine = `${await readFile(file, "utf8")}# reviewed by ops\n`;
    await writeFile(file, mine);
    const r = await runCli(["add", "app", "web", "--repo", out]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`skipped ${file} (changed since shipmate wrote it)`);
    expect(r.stderr).toContain("1 file(s) skipped");
    expect(await readFile(file, "utf8")).toBe(mine);
    // The next add has nothing new for that file... until it does, and it is skipped again.
    const again = await add("team", "payments", { repo: out });
    expect(again.changes.find((c) => c.path === "apps/production/kustomization.yaml")?.action).toBe(
      "skipped",
    );
  });

  it("a file the user changed that shipmate has nothing new for is left alone silently", async () => {
    const out = await fleet("monorepo");
    const file = join(out, "infrastructure/base/controllers/kustomization.yaml");
    await writeFile(
      file,
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: []\n",
    );
    const result = await add("app", "web", { repo: out });
    expect(
      result.changes.find((c) => c.path === "infrastructure/base/controllers/kustomization.yaml")?.action,
    ).toBe("unchanged");
  });

  it("env: appended after the last environment, promoted from it by pull request", async () => {
    const out = await fleet("monorepo");
    const result = await add("env", "dr", { repo: out });
    expect(result.spec.envs).toEqual(["staging", "production", "dr"]);
    const files = await listFiles(out);
    expect(files).toContain("clusters/dr/shipmate-system/deployment.yaml");
    expect(files).toContain("apps/dr/hello/kustomization.yaml");
    const cfg = await readFile(join(out, "shipmate.yaml"), "utf8");
    expect(cfg).toMatch(/- name: dr\n(.*\n)*? {6}promoteFrom: production/);
    expect((await validateTree(out)).problems).toEqual([]);
  });

  it("team (monorepo): a namespace and RBAC, and apps can then be given to it", async () => {
    const out = await fleet("monorepo");
    await add("team", "payments", { repo: out });
    await add("app", "checkout", { repo: out, team: "payments" });
    const deployment = await readFile(join(out, "apps/base/checkout/deployment.yaml"), "utf8");
    expect(deployment).toContain("namespace: payments");
    expect(await listFiles(out)).toContain("infrastructure/base/configs/team-payments.yaml");
    expect((await validateTree(out)).problems).toEqual([]);
  });

  it("team (repo-per-team): onboarded in the platform repository and given a new git repository", async () => {
    const out = await fleet("repo-per-team", { teams: ["payments"] });
    const r = await runCli(["add", "team", "search", "--repo", join(out, "fleet")]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`created repository ${join(out, "fleet-search")}`);
    expect((await readdir(out)).sort()).toEqual(["fleet", "fleet-payments", "fleet-search"]);
    const log = await git("git", ["log", "--format=%s"], { cwd: join(out, "fleet-search") });
    expect(log.stdout.trim()).toBe("Scaffold fleet-search with shipmate 0.1.0");
    expect(await listFiles(join(out, "fleet"))).toContain("teams/staging/search.yaml");
    // Changes to existing repositories are left for the user to review and commit.
    const status = await git("git", ["status", "--porcelain"], { cwd: join(out, "fleet") });
    expect(status.stdout).toContain("teams/");
    expect((await validateTree(out)).problems).toEqual([]);
  });

  it("app from another repository of the fleet (repo-per-app): config repo updated, app repo created", async () => {
    const out = await fleet("repo-per-app");
    const result = await add("app", "web", { repo: join(out, "hello") });
    expect(result.created).toEqual(["web"]);
    expect(await readFile(join(out, "fleet/apps/staging/kustomization.yaml"), "utf8")).toContain(
      "- web.yaml",
    );
    expect((await validateTree(out)).problems).toEqual([]);
  });

  it("env (repo-per-env): a new environment repository; the others' shipmate.yaml learn about it", async () => {
    const out = await fleet("repo-per-env");
    await add("env", "dr", { repo: join(out, "fleet-production") });
    expect((await readdir(out)).sort()).toEqual(["fleet-dr", "fleet-production", "fleet-staging"]);
    expect(await readFile(join(out, "fleet-staging/shipmate.yaml"), "utf8")).toContain("fleet-dr.git");
    expect((await validateTree(out)).problems).toEqual([]);
  });

  it.each([
    ["an existing app", ["app", "hello"], 'app "hello" already exists'],
    ["an existing environment", ["env", "staging"], 'environment "staging" already exists'],
    ["a bad name", ["app", "../x"], 'app name "../x" may not contain "/" or ".."'],
    ["an unknown kind", ["cluster", "x"], "say what to add: app, env, team"],
    ["--team on env", ["env", "qa", "--team", "x"], "--team is only for 'add app'"],
    ["an unknown team", ["app", "web", "--team", "ghost"], 'app "web" belongs to team "ghost"'],
  ])("refuses %s with one line, exit 2, nothing written", async (_rule, args, message) => {
    const out = await fleet("monorepo");
    const before = await listFiles(out);
    const r = await runCli(["add", ...args, "--repo", out]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain(message);
    expect(await listFiles(out)).toEqual(before);
  });

  it("refuses a folder shipmate did not scaffold", async () => {
    const dir = await tmp();
    const r = await runCli(["add", "app", "web", "--repo", dir]);
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("not a repository scaffolded by shipmate (no .shipmate/scaffold.json)");
  });

  it("--dry-run reports and writes nothing", async () => {
    const out = await fleet("monorepo");
    const before = await listFiles(out);
    const r = await runCli(["add", "app", "web", "--repo", out, "--dry-run"]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain(`would be added ${join(out, "apps/base/web/deployment.yaml")}`);
    expect(await listFiles(out)).toEqual(before);
  });
});
