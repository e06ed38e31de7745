import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.ts";
import { buildModel, normalize, repoNameOf, repositories, siblingUrl } from "../../src/scaffold/model.ts";

const base = { layout: "monorepo", version: "0.1.0" };

describe("scaffold input: one clear error per bad input", () => {
  it.each([
    [
      "unknown layout",
      { layout: "mono" },
      'unknown layout "mono" (layouts: monorepo, repo-per-env, repo-per-team, repo-per-app)',
    ],
    [
      "environment not a DNS-1123 label",
      { envs: ["Prod"] },
      'environment name "Prod" is not a DNS-1123 label',
    ],
    ["environment with a slash", { envs: ["a/b"] }, 'environment name "a/b" may not contain "/" or ".."'],
    ["environment with dot-dot", { envs: [".."] }, 'environment name ".." may not contain "/" or ".."'],
    ["environment listed twice", { envs: ["staging", "staging"] }, 'environment "staging" is given twice'],
    ["environment named like the base folder", { envs: ["base"] }, 'environment name "base" is reserved'],
    ["app with a slash", { apps: ["team/app"] }, 'app name "team/app" may not contain "/" or ".."'],
    ["app too long", { apps: ["a".repeat(64)] }, "is not a DNS-1123 label"],
    ["app named like a system namespace", { apps: ["kube-system"] }, 'app name "kube-system" is reserved'],
    [
      "app name YAML reads as a number",
      { apps: ["1e3"] },
      'app name "1e3" reads as a number or boolean in YAML',
    ],
    [
      "environment name YAML reads as a boolean",
      { envs: ["no"] },
      'environment name "no" reads as a number or boolean in YAML',
    ],
    ["app listed twice", { apps: ["web", "web"] }, 'app "web" is given twice'],
    ["team not a DNS-1123 label", { teams: ["Team_A"] }, 'team name "Team_A" is not a DNS-1123 label'],
    ["team listed twice", { teams: ["a", "a"] }, 'team "a" is given twice'],
    [
      "app owned by an unknown team",
      { apps: ["web@ghost"] },
      'app "web" belongs to team "ghost", which is not given with --team',
    ],
    ["app and team share a name", { teams: ["web"], apps: ["web@web"] }, '"web" is both an app and a team'],
    [
      "helm app source outside repo-per-app",
      { appSource: "helm" },
      "--app-source helm is only for the repo-per-app layout",
    ],
    ["unknown app source", { layout: "repo-per-app", appSource: "jsonnet" }, 'unknown app source "jsonnet"'],
    [
      "fleet name from an unusable URL",
      { gitUrl: "https://host/Org/My_Fleet.git" },
      'fleet name "My_Fleet" (from --git-url) is not a DNS-1123 label',
    ],
    ["branch with dot-dot", { branch: "a..b" }, 'branch "a..b" is not a valid git branch name'],
    [
      "app repository named like the config repository",
      { layout: "repo-per-app", apps: ["fleet"] },
      'repository folder "fleet" is given twice',
    ],
  ])("%s", (_rule, input, message) => {
    const run = () => normalize({ ...base, ...input });
    expect(run).toThrow(UsageError);
    expect(run).toThrow(message);
  });
});

describe("scaffold defaults", () => {
  it("staging and production, one example app, no team", () => {
    const spec = normalize(base);
    expect(spec.envs).toEqual(["staging", "production"]);
    expect(spec.apps).toEqual([{ name: "hello", image: "ghcr.io/example/hello" }]);
    expect(spec.teams).toEqual([]);
  });
  it("repo-per-team gets one team when none is given, and owns the apps", () => {
    const spec = normalize({ ...base, layout: "repo-per-team" });
    expect(spec.teams).toEqual(["team-a"]);
    expect(spec.apps[0]?.team).toBe("team-a");
  });
  it("apps and teams are sorted, environments keep promotion order", () => {
    const spec = normalize({
      ...base,
      envs: ["dev", "prod", "qa"],
      apps: ["zeta", "alpha"],
      teams: ["t2", "t1"],
    });
    expect(spec.envs).toEqual(["dev", "prod", "qa"]);
    expect(spec.apps.map((a) => a.name)).toEqual(["alpha", "zeta"]);
    expect(spec.teams).toEqual(["t1", "t2"]);
  });
  it("the first environment is pushed, each later one promoted from the one before by pull request", () => {
    const model = buildModel(normalize({ ...base, envs: ["dev", "qa", "prod"] }));
    expect(model.envs.map((e) => [e.name, e.mode, e.promoteFrom])).toEqual([
      ["dev", "push", false],
      ["qa", "pull-request", "dev"],
      ["prod", "pull-request", "qa"],
    ]);
  });
});

describe("repository names and URLs", () => {
  it.each([
    ["https://github.com/acme/fleet.git", "fleet"],
    ["https://github.com/acme/fleet", "fleet"],
    ["git@github.com:acme/fleet.git", "fleet"],
    ["ssh://git@host:2222/acme/fleet.git/", "fleet"],
  ])("repoNameOf(%s) = %s", (url, name) => expect(repoNameOf(url)).toBe(name));

  it.each([
    ["https://github.com/acme/fleet.git", "fleet-staging", "https://github.com/acme/fleet-staging.git"],
    ["git@github.com:acme/fleet.git", "web", "git@github.com:acme/web.git"],
    ["https://gitea.local/acme/fleet", "web", "https://gitea.local/acme/web"],
  ])("siblingUrl(%s, %s) keeps host and owner", (url, name, want) =>
    expect(siblingUrl(url, name)).toBe(want),
  );

  it.each([
    ["monorepo", ["."]],
    ["repo-per-env", ["fleet-staging", "fleet-production"]],
    ["repo-per-team", ["fleet", "fleet-payments"]],
    ["repo-per-app", ["fleet", "hello"]],
  ])("%s writes one folder per repository", (layout, dirs) => {
    const spec = normalize({ ...base, layout, teams: ["payments"] });
    expect(repositories(spec).map((r) => r.dir)).toEqual(dirs);
  });
});
