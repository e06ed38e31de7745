/**
 * One fleet context per run, counted: the file reads of a run are observed
 * through a counting wrapper around node:fs (the reads themselves are real),
 * so a second load of shipmate.yaml or of the policies shows up as a number.
 */
import { rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { fleetFiles } from "../helpers/fleet.ts";
import { seedCheckout, tempDir } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

/** `loads`: node:fs/promises readFile (shipmate.yaml's loader); `paths`: every read, both kinds. */
const reads = vi.hoisted(() => ({ paths: [] as string[], loads: [] as string[] }));

vi.mock("node:fs", async (original) => {
  const fs = await original<typeof import("node:fs")>();
  const readFileSync = ((path: Parameters<typeof fs.readFileSync>[0], ...rest: unknown[]) => {
    reads.paths.push(String(path));
    return (fs.readFileSync as (...a: unknown[]) => unknown)(path, ...rest);
  }) as typeof fs.readFileSync;
  return { ...fs, readFileSync, default: { ...fs, readFileSync } };
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

describe("a run reads its fleet context once", () => {
  it("runUpdate: shipmate.yaml loaded once; each policy file read once for the policies, once by the manifest walk", async () => {
    const { runUpdate } = await import("../../src/run/update.ts");
    const { work } = seedCheckout(fleetFiles(image));
    cleanup.push(work);
    reads.paths.length = 0;
    reads.loads.length = 0;
    const result = await runUpdate({
      repo: work,
      policies: { kind: "repo" },
      delivery: { kind: "files" },
      dryRun: true,
      env: { PATH: process.env.PATH, HOME: process.env.HOME },
      scan: { cacheDir: false },
    });
    expect(result.push?.files.map((f) => f.path)).toEqual(["apps/staging/app/deployment.yaml"]);
    // The walk reads every YAML file of the tree once (shipmate.yaml and the policies are YAML files too).
    expect(count("/shipmate.yaml", reads.loads)).toBe(1);
    expect(count("/shipmate.yaml")).toBe(2);
    expect(count("/policies/staging/app.yaml")).toBe(2);
    expect(count("/policies/production/app.yaml")).toBe(2);
  });

  it("the Action's promote: shipmate.yaml read once, from the target lookup to the promotion", async () => {
    const { work } = seedCheckout(fleetFiles(image, { staging: "1.1.0", production: "1.0.0" }));
    cleanup.push(work);
    const files = tempDir("shipmate-action-files-");
    cleanup.push(files);
    const inputs: Record<string, string> = {
      INPUT_COMMAND: "promote",
      INPUT_POLICIES: "policies/production",
      "INPUT_DRY-RUN": "true",
      GITHUB_WORKSPACE: work,
      GITHUB_OUTPUT: join(files, "output"),
      GITHUB_STEP_SUMMARY: join(files, "summary"),
    };
    const { writeFileSync } = await import("node:fs");
    writeFileSync(inputs.GITHUB_OUTPUT as string, "");
    writeFileSync(inputs.GITHUB_STEP_SUMMARY as string, "");
    const saved = { ...process.env };
    const write = vi.spyOn(process.stdout, "write").mockImplementation(() => true);
    Object.assign(process.env, inputs);
    const exitCode = process.exitCode;
    try {
      const { run } = await import("../../src/action/main.ts");
      reads.paths.length = 0;
      await run();
      expect(process.exitCode ?? 0, write.mock.calls.join("")).toBe(0);
    } finally {
      write.mockRestore();
      process.exitCode = exitCode;
      for (const k of Object.keys(inputs)) delete process.env[k];
      Object.assign(process.env, saved);
    }
    expect(count("/shipmate.yaml")).toBe(1);
    const { readFileSync } = await import("node:fs");
    expect(readFileSync(inputs.GITHUB_OUTPUT as string, "utf8")).toContain("1.1.0");
  });
});
