/**
 * `shipmate promote` end to end: a fleet repository on a real Gitea, real git
 * clones and pushes, real commit statuses for the checks gate, real pull
 * requests.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMeta } from "../../src/forge/body.ts";
import type { PromoteResult } from "../../src/promote/index.ts";
import { TestClone } from "../forge/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { giteaFleet } from "../helpers/gitea.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";

let gitea: GiteaServer;
let repo: GiteaRepo;
let clone: TestClone;

interface ApiPull {
  number: number;
  state: string;
  merged: boolean;
  labels: { name: string }[];
  body: string;
  title: string;
  head: { ref: string; sha: string };
}

const FLEET = `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: acme
spec:
  layout: monorepo
  environments:
    - name: dev
      path: apps/dev
    - name: staging
      path: apps/staging
      mode: push
      promoteFrom: dev
    - name: production
      path: apps/production
      mode: pull-request
      promoteFrom: staging
      gates:
        checks: true
      pullRequest:
        labels: [production]
`;

const overlay = (app: string, image: string, tag: string) => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base/${app}
images:
  - name: ${image}
    newTag: "${tag}" # {"$imagepolicy": "flux-system:${app}:tag"}
`;

const web = "127.0.0.1:5000/acme/web";
const api = "127.0.0.1:5000/acme/api";

async function seed(files: Record<string, string>): Promise<string> {
  await clone.git("fetch", "-q", "origin");
  await clone.git("checkout", "-q", "-B", "main", "origin/main");
  const { writeFile, mkdir } = await import("node:fs/promises");
  const { dirname, join } = await import("node:path");
  for (const [p, c] of Object.entries(files)) {
    await mkdir(dirname(join(clone.dir, p)), { recursive: true });
    await writeFile(join(clone.dir, p), c);
  }
  await clone.git("add", "-A");
  await clone.git("commit", "-q", "-m", `seed ${Object.keys(files).join(", ")}`);
  await clone.git("push", "-q", "origin", "HEAD:refs/heads/main");
  return clone.git("rev-parse", "HEAD");
}

const green = (sha: string) =>
  gitea.api("POST", `/repos/${repo.fullName}/statuses/${sha}`, { state: "success", context: "ci" });

async function promote(...extra: string[]): Promise<{ code: number; result: PromoteResult; stderr: string }> {
  const r = await runCli(
    [
      "promote",
      "--from",
      "staging",
      "--to",
      "production",
      "--repo",
      repo.authedCloneUrl,
      "--forge",
      "gitea",
      "--json",
      ...extra,
    ],
    { env: { GITEA_TOKEN: gitea.token } },
  );
  let result: PromoteResult;
  try {
    result = JSON.parse(r.stdout) as PromoteResult;
  } catch {
    throw new Error(`promote printed no JSON (exit ${r.code}): ${r.stderr}${r.stdout}`);
  }
  return { code: r.code, result, stderr: r.stderr };
}

const openPromotions = async () =>
  (await gitea.api<ApiPull[]>("GET", `/repos/${repo.fullName}/pulls?state=open&limit=50`)).filter((p) =>
    p.head.ref.startsWith("shipmate/promote-"),
  );

async function fileOnBranch(branch: string, path: string): Promise<string> {
  await clone.git("fetch", "-q", "origin");
  return clone.git("show", `origin/${branch}:${path}`);
}

beforeAll(async () => {
  gitea = await startGitea();
  repo = await gitea.createRepo("fleet");
  clone = await TestClone.clone(repo.authedCloneUrl);
  await seed({
    "shipmate.yaml": FLEET,
    "apps/dev/web/kustomization.yaml": overlay("web", web, "1.5.0"),
    "apps/staging/web/kustomization.yaml": overlay("web", web, "1.4.0"),
    "apps/staging/api/kustomization.yaml": overlay("api", api, "2.1.0"),
    "apps/production/web/kustomization.yaml": overlay("web", web, "1.3.0"),
    "apps/production/api/kustomization.yaml": overlay("api", api, "2.0.0"),
  });
});

afterAll(async () => {
  await clone?.remove();
  await gitea?.stop();
});

describe("shipmate promote against a real Gitea", () => {
  it("dry run: lists the promotion, touches nothing", async () => {
    const { code, result } = await promote("--dry-run");
    expect(code).toBe(0);
    expect(result.status).toBe("dry-run");
    expect(result.changes.map((c) => `${c.app} ${c.from}→${c.to}`)).toEqual([
      "api 2.0.0→2.1.0",
      "web 1.3.0→1.4.0",
    ]);
    expect(await openPromotions()).toEqual([]);
  });

  it("checks gate: no status on the staging commit yet → waits, opens nothing", async () => {
    const { code, result } = await promote();
    expect(code).toBe(0);
    expect(result.status).toBe("waiting");
    expect(result.gates).toEqual([
      {
        gate: "checks",
        state: "waiting",
        message: `no check has reported on ${result.revision.slice(0, 12)} yet`,
      },
    ]);
    expect(await openPromotions()).toEqual([]);
  });

  it("green checks → one pull request carrying staging's exact pins, with the source revision", async () => {
    const head = await clone.git("rev-parse", "origin/main");
    await green(head);
    const { code, result } = await promote("--label", "promotion");
    expect(code).toBe(0);
    expect(result.status).toBe("proposed");
    expect(result.requests).toMatchObject([{ branch: "shipmate/promote-production", outcome: "opened" }]);
    const [pr, ...more] = await openPromotions();
    expect(more).toEqual([]);
    // --label's and shipmate.yaml's (production's pullRequest.labels).
    expect(pr?.labels.map((l) => l.name).sort()).toEqual(["production", "promotion"]);
    expect(parseMeta(pr?.body)?.promotion).toEqual({
      from: "staging",
      to: "production",
      revision: head,
      apps: ["api", "web"],
    });
    expect(await fileOnBranch("shipmate/promote-production", "apps/production/web/kustomization.yaml")).toBe(
      overlay("web", web, "1.4.0").trimEnd(),
    );
  });

  it("the same state again: nothing pushed, the request is unchanged", async () => {
    const { result } = await promote("--label", "promotion");
    expect(result.requests).toMatchObject([{ outcome: "unchanged" }]);
    expect(result.forgeRequests).toBe(2); // the listing and the checks gate
  });

  it("a newer staging state updates the open request instead of opening another", async () => {
    const head = await seed({ "apps/staging/web/kustomization.yaml": overlay("web", web, "1.4.1") });
    await green(head);
    const before = await openPromotions();
    const { result } = await promote();
    expect(result.requests).toMatchObject([{ outcome: "updated", number: before[0]?.number }]);
    const after = await openPromotions();
    expect(after).toHaveLength(1);
    expect(parseMeta(after[0]?.body)?.promotion?.revision).toBe(head);
    expect(
      await fileOnBranch("shipmate/promote-production", "apps/production/web/kustomization.yaml"),
    ).toContain('newTag: "1.4.1"');
  });

  it("after the request is merged there is nothing to promote", async () => {
    const [pr] = await openPromotions();
    await gitea.mergePull(repo.fullName, pr?.number ?? 0);
    const { result } = await promote();
    expect(result.status).toBe("nothing-to-promote");
    expect(await openPromotions()).toEqual([]);
  });

  it("per app: one request per app; the one whose app caught up is closed and its branch deleted", async () => {
    const head = await seed({
      "apps/staging/web/kustomization.yaml": overlay("web", web, "1.6.0"),
      "apps/staging/api/kustomization.yaml": overlay("api", api, "2.2.0"),
    });
    await green(head);
    const first = await promote("--per-app");
    expect(first.result.requests.map((r) => `${r.branch} ${r.outcome}`).sort()).toEqual([
      "shipmate/promote-production-api opened",
      "shipmate/promote-production-web opened",
    ]);
    // Production catches up on api by hand: its request no longer proposes anything.
    const fixed = await seed({ "apps/production/api/kustomization.yaml": overlay("api", api, "2.2.0") });
    await green(fixed);
    const second = await promote("--per-app");
    // web's request is updated only to name the new source revision; its branch content is the same.
    expect(second.result.requests.map((r) => `${r.branch} ${r.outcome}`).sort()).toEqual([
      "shipmate/promote-production-api closed",
      "shipmate/promote-production-web updated",
    ]);
    expect((await openPromotions()).map((p) => p.head.ref)).toEqual(["shipmate/promote-production-web"]);
    await expect(
      gitea.api("GET", `/repos/${repo.fullName}/branches/shipmate/promote-production-api`),
    ).rejects.toThrow(/404/);
  });

  it("--app limits the promotion to that app", async () => {
    const { result } = await promote("--dry-run", "--app", "web");
    expect(result.changes.map((c) => c.app)).toEqual(["web"]);
  });

  it("push mode (dev → staging): the promotion is a commit on main", async () => {
    const r = await runCli(
      ["promote", "--from", "dev", "--to", "staging", "--repo", repo.authedCloneUrl, "--json"],
      {
        env: {},
      },
    );
    const result = JSON.parse(r.stdout) as PromoteResult;
    expect(r.code).toBe(0);
    expect(result.status).toBe("pushed");
    expect(await fileOnBranch("main", "apps/staging/web/kustomization.yaml")).toBe(
      overlay("web", web, "1.5.0").trimEnd(),
    );
    expect(result.skipped).toEqual([]);
  });
});

describe("shipmate promote: bad input", () => {
  it("an environment shipmate.yaml does not declare is a usage/config error naming the file", async () => {
    const r = await runCli(["promote", "--from", "qa", "--to", "production", "--repo", repo.authedCloneUrl], {
      env: { GITEA_TOKEN: gitea.token },
    });
    expect(r.code).toBe(2);
    expect(r.stderr.trim()).toBe(
      'shipmate promote: shipmate.yaml: environment "qa" is not declared (environments: dev, staging, production)',
    );
  });

  it("promoting against promoteFrom is refused", async () => {
    const r = await runCli(
      ["promote", "--from", "dev", "--to", "production", "--repo", repo.authedCloneUrl],
      {
        env: { GITEA_TOKEN: gitea.token },
      },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("production promotes from staging (promoteFrom), not from dev");
  });

  it("a target overlay that lacks the image: reported as skipped, nothing written for it", async () => {
    await seed({
      "apps/staging/worker/kustomization.yaml": overlay("worker", "127.0.0.1:5000/acme/worker", "1.0.0"),
    });
    const { result } = await promote("--dry-run", "--app", "worker");
    expect(result.changes).toEqual([]);
    expect(result.skipped).toEqual([
      { app: "worker", image: "127.0.0.1:5000/acme/worker", reason: 'production has no app "worker"' },
    ]);
  });

  it("a pull-request target without a forge token says which variable to set", async () => {
    const r = await runCli(
      [
        "promote",
        "--from",
        "staging",
        "--to",
        "production",
        "--repo",
        repo.authedCloneUrl,
        "--forge",
        "gitea",
      ],
      { env: { GITEA_TOKEN: "", SHIPMATE_FORGE_TOKEN: "", FORGEJO_TOKEN: "" } },
    );
    expect(r.code).toBe(2);
    expect(r.stderr).toContain("no gitea token: set $SHIPMATE_FORGE_TOKEN or $GITEA_TOKEN or $FORGEJO_TOKEN");
  });

  it("soak gate on a full checkout: waits while staging's versions are younger than the soak", async () => {
    const r = await runCli(
      [
        "promote",
        "--from",
        "staging",
        "--to",
        "production",
        "--repo",
        clone.dir,
        "--forge",
        "gitea",
        "--soak",
        "24h",
        "--json",
      ],
      { env: { GITEA_TOKEN: gitea.token } },
    );
    const result = JSON.parse(r.stdout) as PromoteResult;
    expect(result.status).toBe("waiting");
    expect(result.gates.find((g) => g.gate === "soak")?.message).toMatch(
      /^staging has run these versions for \d+m; soak needs 24h/,
    );
  });
});

describe("shipmate promote: a repository per environment", () => {
  it("reads staging's repository, checks its commit there, opens the request in production's", async () => {
    const stagingRepo = await giteaFleet(gitea, "rpe-staging", {
      "apps/web/kustomization.yaml": overlay("web", web, "3.1.0"),
    });
    const productionRepo = await giteaFleet(gitea, "rpe-production", {
      "apps/web/kustomization.yaml": overlay("web", web, "3.0.0"),
    });
    const plainUrl = (r: GiteaRepo) => `${gitea.url}/${r.fullName}.git`;
    const fleetRepo = await giteaFleet(gitea, "rpe-fleet", {
      "shipmate.yaml": `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: acme
spec:
  layout: repo-per-env
  environments:
    - name: staging
      path: apps
      repository: { url: "${plainUrl(stagingRepo)}", branch: main }
    - name: production
      path: apps
      mode: pull-request
      promoteFrom: staging
      repository: { url: "${plainUrl(productionRepo)}", branch: main }
      gates: { checks: true }
`,
    });
    const stagingHead = stagingRepo.head;
    await gitea.api("POST", `/repos/${stagingRepo.fullName}/statuses/${stagingHead}`, {
      state: "success",
      context: "ci",
    });

    const r = await runCli(
      [
        "promote",
        "--from",
        "staging",
        "--to",
        "production",
        "--repo",
        fleetRepo.authedCloneUrl,
        "--forge",
        "gitea",
        "--json",
      ],
      {
        env: {
          GITEA_TOKEN: gitea.token,
          SHIPMATE_GIT_TOKEN: gitea.token,
          SHIPMATE_GIT_USERNAME: gitea.admin.username,
        },
      },
    );
    const result = JSON.parse(r.stdout) as PromoteResult;
    expect(r.code).toBe(0);
    expect(result.revision).toBe(stagingHead);
    expect(result.gates.map((g) => g.state)).toEqual(["passed"]);
    expect(result.requests).toMatchObject([{ branch: "shipmate/promote-production", outcome: "opened" }]);
    const pulls = await gitea.api<ApiPull[]>("GET", `/repos/${productionRepo.fullName}/pulls?state=open`);
    expect(pulls.map((p) => p.head.ref)).toEqual(["shipmate/promote-production"]);
  });
});

describe("shipmate promote: a protected target branch", () => {
  it("push mode into a branch that refuses pushes fails with one line naming the branch", async () => {
    const r = await giteaFleet(gitea, "guarded", {
      "shipmate.yaml": FLEET,
      "apps/dev/web/kustomization.yaml": overlay("web", web, "9.1.0"),
      "apps/staging/web/kustomization.yaml": overlay("web", web, "9.0.0"),
    });
    await gitea.api("POST", `/repos/${r.fullName}/branch_protections`, {
      rule_name: "main",
      enable_push: false,
    });
    const out = await runCli(["promote", "--from", "dev", "--to", "staging", "--repo", r.authedCloneUrl]);
    expect(out.code).toBe(1);
    expect(out.stderr.trim().split("\n")).toHaveLength(1);
    // The git layer words the refusal (src/git); the promotion fails before anything is half-written.
    expect(out.stderr).toMatch(/^shipmate promote: push to main: /);
    // Gitea's own reason, not git's bare "remote: error:".
    expect(out.stderr).toMatch(/protected branch main/i);
    expect(out.stderr).not.toContain(gitea.token);
  });
});
