/**
 * `shipmate update` delivering by pull request, through the CLI, against a real
 * Gitea: everything with --pull-request, or per environment with --push and
 * shipmate.yaml (staging pushed, production proposed).
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { deployment, FLEET_YAML, fluxPolicy } from "../helpers/fleet.ts";
import { giteaFleet } from "../helpers/gitea.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";

const IMAGE = "127.0.0.1:5000/acme/web";
const web = (policy: string, tag: string) => deployment("web", "apps", IMAGE, tag, policy);
const policy = (name: string) => fluxPolicy(name, IMAGE, ">=1.0.0");

let gitea: GiteaServer;
beforeAll(async () => {
  gitea = await startGitea();
});
afterAll(async () => {
  await gitea?.stop();
});

const fleetRepo = (name: string, files: Record<string, string>) => giteaFleet(gitea, name, files);

/** Staging and production, each with the web app at 1.0.0 and its policy, under `fleet` as shipmate.yaml. */
const perEnvironment = (name: string, fleet = FLEET_YAML) =>
  fleetRepo(name, {
    "shipmate.yaml": fleet,
    "policies/staging/web.yaml": policy("web-staging"),
    "policies/production/web.yaml": policy("web-production"),
    "apps/staging/web.yaml": web("web-staging", "1.0.0"),
    "apps/production/web.yaml": web("web-production", "1.0.0"),
  });

const openRequests = async (repo: GiteaRepo) =>
  gitea.api<{ number: number; head: { ref: string }; labels: { name: string }[] }[]>(
    "GET",
    `/repos/${repo.fullName}/pulls?state=open`,
  );

const fileOn = async (repo: GiteaRepo, ref: string, path: string) =>
  (
    await fetch(`${gitea.url}/api/v1/repos/${repo.fullName}/raw/${path}?ref=${ref}`, {
      headers: { Authorization: `token ${gitea.token}` },
    })
  ).text();

function update(repo: GiteaRepo, ...args: string[]) {
  return runCli(
    [
      "update",
      "--repo",
      `${gitea.url}/${repo.fullName}.git`,
      "--branch",
      "main",
      "--forge",
      "gitea",
      "--forge-url",
      gitea.url,
      ...args,
    ],
    {
      env: {
        SHIPMATE_GIT_USERNAME: gitea.admin.username,
        SHIPMATE_GIT_TOKEN: gitea.token,
        GITEA_TOKEN: gitea.token,
      },
    },
  );
}

describe("shipmate update --pull-request", () => {
  it("opens one request, keeps it on a rerun, and closes it when main already has the change", async () => {
    const repo = await fleetRepo("all-requests", { "apps/web.yaml": web("web", "1.0.0") });
    const first = await update(repo, "--pull-request", "--set", `flux-system:web=${IMAGE}:1.1.0`);
    expect(first.stderr).toBe("");
    expect(first.code).toBe(0);
    expect(first.stdout).toMatch(/opened pull request #\d+ http/);
    expect(await fileOn(repo, "main", "apps/web.yaml")).toContain(":1.0.0");
    expect(await fileOn(repo, "shipmate/update-main", "apps/web.yaml")).toContain(":1.1.0");

    const again = await update(repo, "--pull-request", "--set", `flux-system:web=${IMAGE}:1.1.0`);
    expect(again.code).toBe(0);
    expect(again.stdout).toMatch(/unchanged pull request #\d+/);
    expect(await openRequests(repo)).toHaveLength(1);

    const obsolete = await update(repo, "--pull-request", "--set", `flux-system:web=${IMAGE}:1.0.0`);
    expect(obsolete.code).toBe(0);
    expect(obsolete.stdout).toContain("closed the pull request of shipmate/update-main");
    expect(await openRequests(repo)).toHaveLength(0);
  });

  it("--json reports the request", async () => {
    const repo = await fleetRepo("json", { "apps/web.yaml": web("web", "1.0.0") });
    const r = await update(repo, "--pull-request", "--json", "--set", `flux-system:web=${IMAGE}:2.0.0`);
    expect(r.code).toBe(0);
    const out = JSON.parse(r.stdout);
    expect(out.pullRequest).toMatchObject({ action: "opened", number: expect.any(Number) });
    expect(Object.keys(out.files)).toEqual(["apps/web.yaml"]);
  });
});

describe("shipmate update --push with environments in shipmate.yaml", () => {
  it("pushes staging and proposes production", async () => {
    const repo = await perEnvironment("per-environment");
    const r = await update(
      repo,
      "--push",
      "--set",
      `flux-system:web-staging=${IMAGE}:1.2.0`,
      "--set",
      `flux-system:web-production=${IMAGE}:1.1.0`,
    );
    expect(r.stderr).toBe("");
    expect(r.code).toBe(0);
    expect(r.stdout).toMatch(/pushed [0-9a-f]{40} to main/);
    expect(r.stdout).toMatch(/opened pull request #\d+/);
    expect(await fileOn(repo, "main", "apps/staging/web.yaml")).toContain(":1.2.0");
    expect(await fileOn(repo, "main", "apps/production/web.yaml")).toContain(":1.0.0");
    const proposed = await fileOn(repo, "shipmate/update-main", "apps/production/web.yaml");
    expect(proposed).toContain(":1.1.0");
    expect(await openRequests(repo)).toHaveLength(1);
  });

  it("the request carries the labels of production's pullRequest settings besides --label", async () => {
    const fleet = FLEET_YAML.replace(
      "      promoteFrom: staging\n",
      "      promoteFrom: staging\n      pullRequest:\n        labels: [release, production]\n",
    );
    const repo = await perEnvironment("per-environment-labels", fleet);
    const r = await update(
      repo,
      "--push",
      "--label",
      "shipmate",
      "--set",
      `flux-system:web-production=${IMAGE}:1.1.0`,
    );
    expect(r.stderr, "only staging's marker, without a selection, is warned of").toMatch(
      /^warning: apps\/staging\/web.yaml:\d+: policy flux-system:web-staging has no selection/,
    );
    expect(r.code).toBe(0);
    const [pr] = await openRequests(repo);
    expect(pr?.labels.map((l) => l.name).sort()).toEqual(["production", "release", "shipmate"]);
  });

  it("needs a forge it can reach: a missing token is one clear line, exit 2", async () => {
    const repo = await fleetRepo("no-token", {
      "shipmate.yaml": FLEET_YAML,
      "policies/production/web.yaml": policy("web-production"),
      "apps/production/web.yaml": web("web-production", "1.0.0"),
    });
    const r = await runCli(
      [
        "update",
        "--repo",
        `${gitea.url}/${repo.fullName}.git`,
        "--branch",
        "main",
        "--forge",
        "gitea",
        "--forge-url",
        gitea.url,
        "--push",
        "--set",
        `flux-system:web-production=${IMAGE}:1.1.0`,
      ],
      {
        env: {
          SHIPMATE_GIT_USERNAME: gitea.admin.username,
          SHIPMATE_GIT_TOKEN: gitea.token,
          GITEA_TOKEN: "",
        },
      },
    );
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).not.toContain(gitea.token);
  });
});
