/**
 * Dry runs need nothing: `promote --dry-run` on a fresh local scaffold
 * plans and prints with no forge token, no cluster, and marks the gates it
 * could not evaluate instead of demanding what they would need.
 */
import { readFileSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { git, tempDir } from "../infra/git.ts";

const NO_TOKENS = {
  SHIPMATE_FORGE_TOKEN: undefined,
  GITHUB_TOKEN: undefined,
  GH_TOKEN: undefined,
  GITLAB_TOKEN: undefined,
  GITEA_TOKEN: undefined,
  KUBECONFIG: "/nonexistent/kubeconfig",
};

async function scaffold(): Promise<string> {
  const out = join(tempDir(), "fleet");
  const r = await runCli(["init", "--layout", "monorepo", "--out", out]);
  expect(r.code, r.stderr).toBe(0);
  // Staging runs a newer tag than production: something to promote.
  const file = join(out, "apps/staging/hello/kustomization.yaml");
  writeFileSync(file, readFileSync(file, "utf8").replace('newTag: "1.0.0"', 'newTag: "1.1.0"'));
  git(out, ["commit", "--quiet", "-am", "staging runs 1.1.0"]);
  return out;
}

describe("promote --dry-run", () => {
  it("dry-run: plans with no forge token and no cluster; the gates it cannot evaluate are marked", async () => {
    const repo = await scaffold();
    const r = await runCli(
      ["promote", "--from", "staging", "--to", "production", "--repo", repo, "--dry-run", "--json"],
      { env: NO_TOKENS },
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout) as {
      status: string;
      changes: { to: string }[];
      gates: { gate: string; state: string; message: string }[];
    };
    expect(out.status).toBe("dry-run");
    expect(out.changes.map((c) => c.to)).toEqual(["1.1.0"]);
    expect(out.gates).toEqual([
      { gate: "checks", state: "not-evaluated", message: expect.stringMatching(/^dry run: no forge token/) },
      { gate: "health", state: "not-evaluated", message: "dry run: the cluster is not asked" },
      { gate: "soak", state: expect.stringMatching(/^(passed|waiting)$/), message: expect.any(String) },
    ]);
    // Nothing written: the checkout is as it was.
    expect(git(repo, ["status", "--porcelain"])).toBe("");
  });

  it("dry-run: the human output names each gate and its state", async () => {
    const repo = await scaffold();
    const r = await runCli(
      ["promote", "--from", "staging", "--to", "production", "--repo", repo, "--dry-run"],
      {
        env: NO_TOKENS,
      },
    );
    expect(r.code, r.stderr).toBe(0);
    expect(r.stdout).toMatch(/^gate checks: not-evaluated — dry run: no forge token/m);
    expect(r.stdout).toMatch(/dry run: 1 image\(s\) would be promoted/);
  });
});
