import { execFileSync } from "node:child_process";
import { mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { UsageError } from "../../src/errors.ts";
import {
  forgeFromFlags,
  forgeOptions,
  kindFromHost,
  parseForgeKind,
  repoFromRemote,
} from "../../src/forge/index.ts";
import { requestOptions } from "../../src/forge/propose.ts";
import { splitByMode } from "../../src/run/update.ts";

describe("forge selection from flags, remote and environment", () => {
  it.each([
    [
      "https://github.com/acme/fleet.git",
      { host: "github.com", base: "https://github.com", repo: "acme/fleet" },
    ],
    ["git@github.com:acme/fleet.git", { host: "github.com", base: "https://github.com", repo: "acme/fleet" }],
    [
      "https://gitlab.example.com/platform/deploy/fleet",
      { host: "gitlab.example.com", base: "https://gitlab.example.com", repo: "platform/deploy/fleet" },
    ],
    [
      "http://127.0.0.1:3000/me/fleet.git",
      { host: "127.0.0.1:3000", base: "http://127.0.0.1:3000", repo: "me/fleet" },
    ],
    [
      "ssh://git@codeberg.org/me/fleet.git",
      { host: "codeberg.org", base: "https://codeberg.org", repo: "me/fleet" },
    ],
  ])("remote %s", (remote, want) => {
    expect(repoFromRemote(remote)).toEqual(want);
  });

  it.each([
    ["github.com", "github"],
    ["gitlab.com", "gitlab"],
    ["codeberg.org", "gitea"],
    ["git.internal", undefined],
  ])("host %s → %s", (host, kind) => {
    expect(kindFromHost(host)).toBe(kind);
  });

  it("forgejo is an alias of gitea; anything else is a usage error naming the choices", () => {
    expect(parseForgeKind("Forgejo")).toBe("gitea");
    expect(() => parseForgeKind("bitbucket")).toThrow(
      new UsageError('--forge must be one of github, gitlab, gitea (or forgejo), got "bitbucket"'),
    );
  });

  it("a self-hosted remote gives repository and base URL; the token comes from the first variable set", () => {
    expect(
      forgeOptions(
        { forge: "gitea", remote: "https://git.internal/team/fleet.git" },
        { GITEA_TOKEN: "tok-123" },
      ),
    ).toEqual({
      kind: "gitea",
      repo: "team/fleet",
      url: "https://git.internal",
      token: "tok-123",
      tokenSource: "$GITEA_TOKEN",
    });
  });

  it("github.com needs no flags and no URL", () => {
    expect(forgeOptions({ remote: "git@github.com:acme/fleet.git" }, { GH_TOKEN: "t0k3n" })).toEqual({
      kind: "github",
      repo: "acme/fleet",
      token: "t0k3n",
      tokenSource: "$GH_TOKEN",
    });
  });

  it.each([
    [
      { remote: "https://git.internal/a/b" },
      {},
      "cannot tell which forge hosts the repository: pass --forge github|gitlab|gitea",
    ],
    [
      { forge: "gitlab" },
      { GITLAB_TOKEN: "x" },
      "cannot tell the repository on the forge: pass --forge-repo owner/name",
    ],
    [
      { forge: "github", forgeRepo: "a/b" },
      {},
      "no github token: set $SHIPMATE_FORGE_TOKEN or $GITHUB_TOKEN or $GH_TOKEN",
    ],
    [{ forge: "github", forgeRepo: "a/b", tokenEnv: "BOT_TOKEN" }, {}, "no github token: set $BOT_TOKEN"],
  ] as const)("missing pieces are usage errors: %j", (flags, env, message) => {
    expect(() => forgeOptions(flags, env)).toThrow(new UsageError(message));
  });

  it("a local checkout: the forge and repository come from its origin remote", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shipmate-forge-origin-"));
    try {
      execFileSync("git", ["init", "-q", dir]);
      execFileSync("git", ["remote", "add", "origin", "git@gitlab.com:platform/deploy/fleet.git"], {
        cwd: dir,
      });
      const forge = await forgeFromFlags({}, dir, { GITLAB_TOKEN: "glpat-x" });
      expect({ kind: forge.kind, repo: forge.repo, base: forge.baseUrl }).toEqual({
        kind: "gitlab",
        repo: "platform/deploy/fleet",
        base: "https://gitlab.com",
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  });
});

describe("splitByMode", () => {
  const sel = (tag: string) => ({ image: "ghcr.io/a/b", tag });
  const input = {
    selections: new Map([
      ["flux-system:staging-web", sel("1")],
      ["flux-system:prod-web", sel("2")],
      ["flux-system:other", sel("3")],
    ]),
    policies: [{ id: "flux-system:staging-web", image: "ghcr.io/a/b" }],
  };
  it.each([
    ["push" as const, ["flux-system:staging-web", "flux-system:other"], ["flux-system:prod-web"]],
    ["pull-request" as const, ["flux-system:staging-web"], ["flux-system:prod-web", "flux-system:other"]],
  ])(
    "policies without a mode follow the fallback (%s); every policy stays known to both halves",
    (fallback, push, pr) => {
      const modes: Record<string, "push" | "pull-request"> = {
        "flux-system:staging-web": "push",
        "flux-system:prod-web": "pull-request",
      };
      const split = splitByMode(input, (id) => modes[id] ?? fallback);
      expect([...split.push.selections.keys()]).toEqual(push);
      expect([...split["pull-request"].selections.keys()]).toEqual(pr);
      expect(split.push.policies).toBe(input.policies);
    },
  );
});

describe("request options: the command's own plus the environments' shipmate.yaml settings", () => {
  it.each([
    ["nothing anywhere", {}, [], {}],
    [
      "flags alone",
      { labels: ["a"], reviewers: ["r"], autoMerge: true },
      [],
      { labels: ["a"], reviewers: ["r"], autoMerge: true },
    ],
    [
      "an environment's labels join the flag's, once each",
      { labels: ["a"] },
      [{ labels: ["a", "b"] }],
      { labels: ["a", "b"] },
    ],
    [
      "reviewers of two environments",
      {},
      [{ reviewers: ["x"] }, { reviewers: ["y"] }],
      { reviewers: ["x", "y"] },
    ],
    [
      "auto-merge when every environment asks",
      {},
      [{ autoMerge: true }, { autoMerge: true }],
      { autoMerge: true },
    ],
    ["no auto-merge when one environment does not", {}, [{ autoMerge: true }, undefined], {}],
    [
      "the flag asks for auto-merge whatever the environments say",
      { autoMerge: true },
      [{ autoMerge: false }],
      { autoMerge: true },
    ],
  ] as const)("%s", (_, own, settings, expected) => {
    expect(requestOptions(own as never, settings as never)).toEqual(expected);
  });
});
