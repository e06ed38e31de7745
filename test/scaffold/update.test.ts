/**
 * Scaffolded policies and markers drive the real update engine: `shipmate
 * update` against a real registry (Distribution on 127.0.0.1) moves the first
 * environment to the newest allowed version and leaves later ones to promotion.
 */
import { execFile } from "node:child_process";
import { readFile, rm } from "node:fs/promises";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { init } from "../../src/scaffold/scaffold.ts";
import { runCli } from "../helpers/cli.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";
import { tempDirs } from "./helpers.ts";

const git = promisify(execFile);
const tmp = tempDirs();
let reg: TestRegistry;

beforeAll(async () => {
  reg = await startRegistry({ auth: "none" });
  await seedTags(reg, "example/web", ["1.0.0", "1.2.0", "1.10.1", "2.0.0-rc.1"]);
}, 120_000);
afterAll(async () => {
  await reg?.stop();
});

/** The agent's own image lives on ghcr.io, which tests cannot reach: its policy is set aside. */
async function withoutAgentPolicies(repo: string, envs: string[]) {
  for (const env of envs) await rm(join(repo, "policies", env, "shipmate-agent.yaml"));
}

describe("scaffolded policies drive shipmate update", () => {
  it("monorepo: staging's overlay moves to the newest allowed version and is committed; production waits", async () => {
    const out = join(await tmp(), "fleet");
    await init({ layout: "monorepo", out, apps: ["web"], registry: `${reg.host}/example` });
    await withoutAgentPolicies(out, ["staging", "production"]);
    const r = await runCli([
      "update",
      "--repo",
      out,
      "--policies",
      join(out, "policies/staging"),
      "--commit",
      "--no-cache",
    ]);
    expect(r.code).toBe(0);
    expect(r.stdout).toContain("apps/staging/web/kustomization.yaml");
    expect(r.stdout).toContain("shipmate-system:web-staging:tag 1.0.0 -> 1.10.1");
    const staging = await readFile(join(out, "apps/staging/web/kustomization.yaml"), "utf8");
    expect(staging).toContain('newTag: "1.10.1" # {"$imagepolicy": "shipmate-system:web-staging:tag"}');
    const production = await readFile(join(out, "apps/production/web/kustomization.yaml"), "utf8");
    expect(production).toContain('newTag: "1.0.0"');
    const log = await git("git", ["log", "--format=%s"], { cwd: out });
    // The commit message is the one the scaffolded ImageUpdateAutomation asks for.
    expect(log.stdout.trim().split("\n")[0]).toBe("shipmate: update images in staging");
  });

  it("repo-per-app with a Helm chart: the staging values file gets the new tag", async () => {
    const out = join(await tmp(), "out");
    await init({
      layout: "repo-per-app",
      appSource: "helm",
      out,
      apps: ["web"],
      registry: `${reg.host}/example`,
    });
    const app = join(out, "web");
    const r = await runCli([
      "update",
      "--repo",
      app,
      "--policies",
      join(app, "policies/staging"),
      "--no-cache",
    ]);
    expect(r.code).toBe(0);
    const values = await readFile(join(app, "chart/values-staging.yaml"), "utf8");
    expect(values).toContain('tag: "1.10.1" # {"$imagepolicy": "shipmate-system:web-staging:tag"}');
    expect(values).toContain(
      `repository: ${reg.host}/example/web # {"$imagepolicy": "shipmate-system:web-staging:name"}`,
    );
  });
});
