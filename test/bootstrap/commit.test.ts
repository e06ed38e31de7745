/**
 * Writing the cluster folder into a fleet repository on a real Gitea: an
 * empty repository (no commit at all), a repository whose cluster folder
 * already has a kustomization and an extended agent kustomization, a branch
 * that does not exist yet, and a run with nothing to change.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { commitClusterFolder } from "../../src/bootstrap/commit.ts";
import { agentFiles } from "../../src/bootstrap/layout.ts";
import { Checkout } from "../e2e/fixtures.ts";
import { type GiteaServer, startGitea } from "../infra/gitea.ts";

let gitea: GiteaServer;
const dirs: string[] = [];

beforeAll(async () => {
  gitea = await startGitea();
}, 120_000);
afterAll(async () => {
  for (const d of dirs) rmSync(d, { recursive: true, force: true });
  await gitea?.stop();
});

const url = (repo: string) => `${gitea.url}/${gitea.admin.username}/${repo}.git`;
const authed = (repo: string) =>
  `http://${gitea.admin.username}:${gitea.token}@${new URL(gitea.url).host}/${gitea.admin.username}/${repo}.git`;
const files = (repo: string) =>
  agentFiles({ env: "staging", repoUrl: url(repo), branch: "main", version: "1.0.0" });
const input = (repo: string, branch = "main") => ({
  cloneUrl: url(repo),
  branch,
  credentials: { username: "git", password: gitea.token },
  env: process.env,
  clusterPath: "clusters/staging",
  agentFiles: files(repo),
  author: { name: "ops", email: "ops@example.test" },
  message: "shipmate bootstrap",
});
function show(repo: string, ref: string, path: string): string {
  const dir = mkdtempSync(join(tmpdir(), "shipmate-commit-test-"));
  dirs.push(dir);
  execFileSync("git", ["clone", "-q", "--branch", ref, authed(repo), dir], { stdio: "ignore" });
  return execFileSync("git", ["show", `HEAD:${path}`], { cwd: dir, encoding: "utf8" });
}

describe("the cluster folder, committed and pushed", () => {
  it("an empty repository gets a first commit on the branch; a second run changes nothing", async () => {
    await gitea.api("POST", "/user/repos", { name: "empty", auto_init: false, private: true });
    const first = await commitClusterFolder(input("empty"));
    expect(first.pushed).toBe(true);
    expect(first.changed).toHaveLength(6);
    expect(show("empty", "main", "clusters/staging/shipmate-system/deployment.yaml")).toBe(
      files("empty").get("deployment.yaml"),
    );
    const again = await commitClusterFolder(input("empty"));
    expect(again).toEqual({ commit: first.commit, changed: [], pushed: false, attempts: 1 });
  });

  it("an existing cluster kustomization lists the agent folder; an extended agent kustomization keeps its additions", async () => {
    await gitea.createRepo("existing");
    const person = new Checkout(authed("existing"));
    dirs.push(person.dir);
    person.commit(
      {
        "clusters/staging/kustomization.yaml": "# the cluster\nresources:\n  - apps.yaml\n",
        "clusters/staging/apps.yaml": "apiVersion: v1\nkind: Namespace\nmetadata:\n  name: apps\n",
        "clusters/staging/shipmate-system/kustomization.yaml":
          "resources:\n  - deployment.yaml\ncomponents:\n  - ../../../deploy/agent/cluster-admin\n",
      },
      "a fleet someone started",
    );
    const r = await commitClusterFolder(input("existing"));
    expect(r.changed).toContain("clusters/staging/kustomization.yaml");
    expect(show("existing", "main", "clusters/staging/kustomization.yaml")).toBe(
      "# the cluster\nresources:\n  - apps.yaml\n  - shipmate-system\n",
    );
    const agentKs = show("existing", "main", "clusters/staging/shipmate-system/kustomization.yaml");
    expect(agentKs).toContain("components:\n  - ../../../deploy/agent/cluster-admin\n");
    expect(agentKs).toContain("--token-env=GIT_TOKEN");
  });

  it("a branch that does not exist yet starts from the default branch", async () => {
    await gitea.createRepo("branched");
    const r = await commitClusterFolder(input("branched", "fleet/staging"));
    expect(r.pushed).toBe(true);
    expect(show("branched", "fleet/staging", "README.md")).toContain("branched");
    expect(show("branched", "fleet/staging", "clusters/staging/shipmate-system/sync.yaml")).toContain(
      `url: "${url("branched")}"`,
    );
  });
});
