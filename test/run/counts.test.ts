/**
 * One fleet context per run, counted: the file reads and folder listings of
 * a run are observed through a counting wrapper around node:fs (the reads
 * themselves are real), so a second load of shipmate.yaml, a second read of
 * a policy file or a second walk of the tree shows up as a number. Counted
 * for the engine call, the CLI, the Action entry and the App handler.
 */
import { readFileSync, rmSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { fleetFiles } from "../helpers/fleet.ts";
import { seedCheckout, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

/**
 * `loads`: node:fs/promises readFile (shipmate.yaml's loader); `paths`: every read, both kinds;
 * `dirs`: every folder listed (readdirSync, the walk's one way to list a folder).
 */
const reads = vi.hoisted(() => ({ paths: [] as string[], loads: [] as string[], dirs: [] as string[] }));

vi.mock("node:fs", async (original) => {
  const fs = await original<typeof import("node:fs")>();
  const readFileSync = ((path: Parameters<typeof fs.readFileSync>[0], ...rest: unknown[]) => {
    reads.paths.push(String(path));
    return (fs.readFileSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  const readdirSync = ((path: Parameters<typeof fs.readdirSync>[0], ...rest: unknown[]) => {
    reads.dirs.push(String(path));
    return (fs.readdirSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readdirSync;
  return { ...fs, readFileSync, readdirSync, default: { ...fs, readFileSync, readdirSync } };
});
vi.mock("node:fs/promises", async (original) => {
  const fsp = await original<typeof import("node:fs/promises")>();
  const readFile = ((path: Parameters<typeof fsp.readFile>[0], ...rest: unknown[]) => {
    reads.paths.push(String(path));
    reads.loads.push(String(path));
    return (fsp.readFile as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fsp.readFile;
  return { ...fsp, readFile, default: { ...fsp, readFile } };
});

let registry: TestRegistry;
let image: string;
const cleanup: string[] = [];
beforeAll(async () => {
  registry = await startRegistry();
  await seedTags(registry, "team/app", ["1.0.0", "1.1.0"]);
  image = `${registry.host}/team/app`;
});
afterAll(async () => {
  await registry?.stop();
  for (const d of cleanup) rmSync(d, { recursive: true, force: true });
});

const count = (suffix: string, list = reads.paths) => list.filter((p) => p.endsWith(suffix)).length;
const reset = () => {
  reads.paths.length = 0;
  reads.loads.length = 0;
  reads.dirs.length = 0;
};

/**
 * The run's fleet context, counted: shipmate.yaml loaded once and read
 * nowhere else, each policy file read once, the tree walked once (the root
 * and every folder of the fleet listed once).
 */
function expectOneContext(): void {
  expect(count("/shipmate.yaml", reads.loads)).toBe(1);
  expect(count("/shipmate.yaml")).toBe(1);
  expect(count("/policies/staging/app.yaml")).toBe(1);
  expect(count("/policies/production/app.yaml")).toBe(1);
  // The checkout's root: the folder whose `apps` was listed (an App clone is gone by now).
  const roots = reads.dirs.filter((d) => reads.dirs.includes(join(d, "apps")));
  expect(roots).toHaveLength(1);
  for (const folder of [
    "/apps",
    "/apps/staging/app",
    "/apps/production/app",
    "/policies",
    "/policies/staging",
  ])
    expect(count(folder, reads.dirs), folder).toBe(1);
}

describe("a run reads its fleet context once", () => {
  it("runUpdate: shipmate.yaml loaded once; each policy file read once, for the policies and the manifest walk alike; one walk", async () => {
    const { runUpdate } = await import("../../src/run/update.ts");
    const { work } = seedCheckout(fleetFiles(image));
    cleanup.push(work);
    reset();
    const result = await runUpdate({
      repo: work,
      policies: { kind: "repo" },
      delivery: { kind: "files" },
      dryRun: true,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      scan: { cacheDir: false },
    });
    expect(result.push?.files.map((f) => f.path)).toEqual(["apps/staging/app/deployment.yaml"]);
    // The walk reads every YAML file of the tree once: shipmate.yaml and the policies are YAML files too,
    // and their one read serves both the policy load and the manifest update.
    expectOneContext();
  });

  it("the CLI's update: one shipmate.yaml load, one read per policy file, one walk", async () => {
    const { runCli } = await import("../helpers/cli.ts");
    const { work } = seedCheckout(fleetFiles(image));
    cleanup.push(work);
    reset();
    const r = await runCli(["update", "--repo", work, "--dry-run", "--no-cache"]);
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toContain(`${image}:1.1.0`);
    expectOneContext();
  });

  it("the Action's update: one shipmate.yaml load, one read per policy file, one walk", async () => {
    const { work } = seedCheckout(fleetFiles(image));
    cleanup.push(work);
    const output = await runAction(work, { INPUT_COMMAND: "update", "INPUT_DRY-RUN": "true" });
    expect(output).toContain("1.1.0");
    expectOneContext();
  });

  it("the Action's promote: shipmate.yaml read once, from the target lookup to the promotion", async () => {
    const { work } = seedCheckout(fleetFiles(image, { staging: "1.1.0", production: "1.0.0" }));
    cleanup.push(work);
    const output = await runAction(work, {
      INPUT_COMMAND: "promote",
      INPUT_POLICIES: "policies/production",
      "INPUT_DRY-RUN": "true",
    });
    expect(count("/shipmate.yaml")).toBe(1);
    expect(output).toContain("1.1.0");
  });

  it("the App's refresh: one clone, one shipmate.yaml load, one read per policy file, one walk, dashboard included", async () => {
    const { randomBytes } = await import("node:crypto");
    const { startGitHttpServer } = await import("../infra/git.ts");
    const { startHarness } = await import("../app/harness.ts");
    const E = await import("../app/events.ts");
    const token = `ghs_${randomBytes(12).toString("hex")}`;
    const gitServer = await startGitHttpServer({ user: "x-access-token", password: token });
    const h = await startHarness({
      git: gitServer,
      name: "fleet-counted",
      files: fleetFiles(image),
      permissions: { owner: "admin" },
      settings: { insecureRegistries: [registry.host] },
    });
    const { Workspace } = await import("../../src/git/workspace.ts");
    const clones = vi.spyOn(Workspace, "clone");
    try {
      reset();
      const res = await h.deliverAndWait(
        "registry_package",
        E.registryPackagePublished(h.repo, image, "1.1.0"),
      );
      expect(res.status).toBe(202);
      expect(clones.mock.calls.filter(([url]) => url.endsWith("/fleet-counted.git"))).toHaveLength(1);
      const [dashboard] = h.st.issues;
      expect(dashboard?.body).toContain("| `1.1.0` | `1.0.0` | `1.1.0` |");
      expect(h.fake.violations).toEqual([]);
      // The push moved the clone to its own commit: the changed manifest is read again for the dashboard,
      // and nothing else is (the policies, shipmate.yaml and every folder stay as the one walk found them).
      expectOneContext();
    } finally {
      clones.mockRestore();
      await h.close();
      await gitServer.close();
    }
  });
});

/** Runs the Action's entry in-process with these inputs on the checkout `work`; its outputs file. */
async function runAction(work: string, inputs: Record<string, string>): Promise<string> {
  const files = tempDir("shipmate-action-files-");
  cleanup.push(files);
  const env: Record<string, string> = {
    ...inputs,
    GITHUB_WORKSPACE: work,
    GITHUB_OUTPUT: join(files, "output"),
    GITHUB_STEP_SUMMARY: join(files, "summary"),
  };
  writeFileSync(env.GITHUB_OUTPUT as string, "");
  writeFileSync(env.GITHUB_STEP_SUMMARY as string, "");
  const saved = { ...process.env };
  const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
  Object.assign(process.env, env);
  const exitCode = process.exitCode;
  try {
    const { run } = await import("../../src/action/main.ts");
    reset();
    await run();
    expect(process.exitCode ?? 0, write.mock.calls.join("")).toBe(0);
  } finally {
    write.mockRestore();
    process.exitCode = exitCode;
    for (const k of Object.keys(env)) delete process.env[k];
    Object.assign(process.env, saved);
  }
  return readFileSync(env.GITHUB_OUTPUT as string, "utf8");
}
