/**
 * The agent honours the git configuration of the environment it runs in:
 * a global config (GIT_CONFIG_GLOBAL) and a system config
 * (GIT_CONFIG_SYSTEM) are read by its fetches, not refused.
 */
import { writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterEach, describe, expect, it } from "vitest";
import { GitSource, operatorGitEnv } from "../../src/agent/git-source.ts";
import { FleetRepo } from "./helpers.ts";

const saved = { ...process.env };
const repos: FleetRepo[] = [];
afterEach(() => {
  for (const k of ["GIT_CONFIG_GLOBAL", "GIT_CONFIG_SYSTEM", "GIT_CONFIG_NOSYSTEM"]) {
    if (saved[k] === undefined) delete process.env[k];
    else process.env[k] = saved[k];
  }
  for (const r of repos.splice(0)) r.remove();
});

describe("the user's git configuration", () => {
  it.each([
    ["GIT_CONFIG_GLOBAL", "global"],
    ["GIT_CONFIG_SYSTEM", "system"],
  ])(
    "%s is read by fetches (a url.insteadOf rewrite in the %s config reaches the repository)",
    async (variable) => {
      const repo = FleetRepo.create();
      repos.push(repo);
      const commit = repo.commit({ "clusters/test/a.yaml": "a: 1\n" });
      const config = join(repo.root, "gitconfig");
      // A host that does not resolve: only the configured rewrite can make this fetch work.
      writeFileSync(config, `[url "${repo.url}"]\n\tinsteadOf = https://git.invalid/fleet.git\n`);
      process.env[variable] = config;
      if (variable === "GIT_CONFIG_SYSTEM") delete process.env.GIT_CONFIG_NOSYSTEM;
      const source = new GitSource({
        url: "https://git.invalid/fleet.git",
        branch: "main",
        workdir: join(repo.root, "agent"),
      });
      const artifact = await source.fetch();
      expect(artifact.revision).toBe(`main@sha1:${commit}`);
    },
  );

  it.each([
    ["a config path", { GIT_CONFIG_GLOBAL: "/x" }, { allowUnsafeConfigPaths: true }],
    ["config from the environment", { GIT_CONFIG_COUNT: "1" }, { allowUnsafeConfigEnvCount: true }],
    ["an ssh command", { GIT_SSH_COMMAND: "ssh -i k" }, { allowUnsafeSshCommand: true }],
    ["nothing git reads", { HOME: "/root", PATH: "/bin" }, {}],
  ])("only what the environment sets is enabled: %s", (_what, env, expected) => {
    expect(operatorGitEnv(env)).toEqual(expected);
  });
});
