/**
 * The pure rules of bootstrap, create and the agent's source handling, as
 * tables: cluster paths, the cluster folder's files (the same as `shipmate
 * init` writes), kustomization edits, refs and their precedence, when a
 * source is due, credentials from a Secret, and the flags of `create`.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { pickSemverTag } from "../../src/agent/git-source.ts";
import { gitRefOf, sourceDue, urlWithSecret } from "../../src/agent/source-objects.ts";
import {
  checkGitUrl,
  checkKsPath,
  exportYaml,
  gitRefFromFlags,
  gitRepositoryObject,
  kustomizationObject,
  parseDependsOn,
  parseSourceFlag,
} from "../../src/bootstrap/flux.ts";
import {
  agentFiles,
  checkClusterPath,
  withAgentResource,
  withSecretPatches,
} from "../../src/bootstrap/layout.ts";
import { init } from "../../src/scaffold/scaffold.ts";
import { tempDirs } from "../scaffold/helpers.ts";

const tmp = tempDirs();

describe("--path", () => {
  it.each([
    ["clusters/staging", "clusters/staging", "staging"],
    ["./clusters/prod-eu/", "clusters/prod-eu", "prod-eu"],
    ["clusters//dev", "clusters/dev", "dev"],
  ])("path: %s is the cluster folder %s of environment %s", (input, path, env) => {
    expect(checkClusterPath(input)).toEqual({ path, env });
  });

  it.each([
    ["..", /escapes the repository/],
    ["../fleet/clusters/x", /escapes the repository/],
    ["clusters/../../x", /escapes the repository/],
    ["/clusters/x", /must be relative/],
    ["C:\\clusters\\x", /must be relative/],
    ["", /is empty/],
    ["clusters", /must be clusters\/<env>/],
    ["clusters/a/b", /must be clusters\/<env>/],
    ["infra/staging", /must be clusters\/<env>/],
    ["clusters/base", /reserved/],
    ["clusters/UPPER", /DNS-1123/],
  ])("path: %s is refused", (input, message) => {
    expect(() => checkClusterPath(input)).toThrow(message);
  });
});

describe("the cluster folder", () => {
  it("bootstrap writes the agent manifests shipmate init writes, plus the git-Secret patches", async () => {
    const out = await tmp();
    const url = "http://127.0.0.1:3000/me/fleet.git";
    await init({ layout: "monorepo", out, envs: ["staging"], gitUrl: url, noGit: true, version: "1.2.3" });
    const files = agentFiles({ env: "staging", repoUrl: url, branch: "main", version: "1.2.3" });
    const initFile = (name: string) =>
      readFileSync(join(out, "clusters/staging/shipmate-system", name), "utf8");
    for (const name of ["namespace.yaml", "crds.yaml", "rbac.yaml", "sync.yaml"])
      expect([name, files.get(name)]).toEqual([name, initFile(name)]);
    expect(files.get("kustomization.yaml")).toBe(withSecretPatches(initFile("kustomization.yaml")));
    // init writes the agent's image policy and marks the image with it; bootstrap writes no policy, so no marker.
    const marker = ' # {"$imagepolicy": "shipmate-system:shipmate-agent-staging"}';
    expect(initFile("deployment.yaml")).toContain(`image: ghcr.io/shipmate-dev/shipmate:1.2.3${marker}\n`);
    const deployment = files.get("deployment.yaml") ?? "";
    expect(deployment).not.toContain('{"$imagepolicy"');
    expect(deployment.replace(/\n\s+# For self-updates.*\n.*\n/, "\n")).toBe(
      initFile("deployment.yaml").replace(marker, ""),
    );
  });

  it("the patches hand the token to the agent and name the Secret on the fleet's GitRepository", () => {
    const text = withSecretPatches("resources:\n  - deployment.yaml\n");
    expect(text).toContain("value: --token-env=GIT_TOKEN");
    expect(text).toContain("name: shipmate-git\n                key: password");
    expect(text).toMatch(/path: \/spec\/secretRef\n\s+value:\n\s+name: shipmate-git/);
  });

  it.each([
    [
      "a kustomization someone extended keeps its own patches",
      "resources: [a.yaml]\npatches:\n  - path: mine.yaml\n",
      3,
    ],
    ["both patches already there: unchanged", "", 2],
  ])("patches: %s", (_rule, start, count) => {
    const base = start || withSecretPatches("resources: [a.yaml]\n");
    const once = withSecretPatches(base);
    const twice = withSecretPatches(once);
    expect(twice).toBe(once);
    expect((once.match(/^ {2}- /gm) ?? []).length).toBe(count);
    if (start) expect(once).toContain("path: mine.yaml");
  });

  it.each([
    [
      "appended, comments kept",
      "# mine\nresources:\n  - apps.yaml # apps\n",
      "# mine\nresources:\n  - apps.yaml # apps\n  - shipmate-system\n",
    ],
    [
      "added when there is no list",
      "kind: Kustomization\n",
      "kind: Kustomization\nresources:\n  - shipmate-system\n",
    ],
    ["already listed", "resources:\n  - ./shipmate-system/\n", undefined],
  ])("cluster kustomization: %s", (_rule, text, expected) => {
    expect(withAgentResource(text, "k.yaml")).toBe(expected);
  });

  it("a cluster kustomization that is not a mapping is a one-line error naming the file", () => {
    expect(() => withAgentResource("- a\n- b\n", "clusters/x/kustomization.yaml")).toThrow(
      "clusters/x/kustomization.yaml: not a kustomization (expected a mapping)",
    );
  });
});

describe("git refs", () => {
  it.each([
    ["semver wins over tag and branch", { semver: "1.x", tag: "v1.0.0", branch: "dev" }, { semver: "1.x" }],
    ["tag wins over branch", { tag: "v1.0.0", branch: "dev" }, { tag: "v1.0.0" }],
    ["branch", { branch: "dev" }, { branch: "dev" }],
    ["no ref means master, as in Flux", undefined, { branch: "master" }],
  ])("precedence: %s", (_rule, ref, expected) => {
    expect(gitRefOf({ url: "x", interval: "1m", ...(ref ? { ref } : {}) })).toEqual(expected);
  });

  it.each([
    ["the highest matching version", ["v1.0.0", "v1.2.0", "v2.0.0"], ">=1.0.0 <2.0.0", "v1.2.0"],
    ["tags read leniently (no v, missing patch)", ["1.0", "1.1", "nope"], "1.x", "1.1"],
    ["prereleases only when the range has one", ["1.0.0", "1.1.0-rc.1"], ">=1.0.0", "1.0.0"],
    ["nothing matches", ["v1.0.0"], ">=5", undefined],
  ])("semver: %s", (_rule, tags, range, expected) => {
    expect(pickSemverTag(tags, range)).toBe(expected);
  });
});

describe("when a source is fetched", () => {
  const base = {
    now: 100_000,
    lastFetch: 90_000,
    failed: false,
    intervalMs: 60_000,
    retryMs: 30_000,
    generation: 1,
    observedGeneration: 1,
    requestedAt: undefined as string | undefined,
    handledAt: undefined as string | undefined,
    suspended: false,
    force: false,
  };
  it.each([
    ["never fetched", { lastFetch: undefined }, "first fetch since start"],
    ["fetched within its interval", {}, undefined],
    ["interval elapsed", { now: 150_000 }, "interval elapsed"],
    ["spec changed", { generation: 2 }, "spec changed"],
    ["a reconcile request", { requestedAt: "t1", handledAt: "t0" }, "reconcile requested"],
    ["a request already handled", { requestedAt: "t1", handledAt: "t1" }, undefined],
    ["a failure is retried sooner", { failed: true, now: 121_000 }, "retry after failure"],
    ["suspended: left alone", { suspended: true, now: 999_000, generation: 9 }, undefined],
    [
      "suspended but never fetched: once",
      { suspended: true, lastFetch: undefined },
      "first fetch since start",
    ],
    ["forced (--once)", { force: true }, "forced"],
  ])("due: %s", (_rule, over, expected) => {
    expect(sourceDue({ ...base, ...over })).toBe(expected);
  });
});

describe("credentials from a Flux git Secret", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  it.each([
    [
      "username and password",
      { username: b64("bot"), password: b64("s3cret") },
      "https://bot:s3cret@git.example.com/a.git",
    ],
    ["password alone: user git", { password: b64("s3cret") }, "https://git:s3cret@git.example.com/a.git"],
  ])("basic auth: %s", (_rule, data, expected) => {
    expect(urlWithSecret("https://git.example.com/a.git", data, "s")).toBe(expected);
  });

  it.each([
    [
      "an SSH key Secret",
      "https://git.example.com/a.git",
      { identity: b64("key") },
      /has identity; the shipmate agent reads "username" and "password"/,
    ],
    [
      "an ssh URL",
      "ssh://git@git.example.com/a.git",
      { password: b64("x") },
      /basic auth needs an http\(s\) URL/,
    ],
  ])("refused: %s", (_rule, url, data, message) => {
    expect(() => urlWithSecret(url, data, "s")).toThrow(message);
  });
});

describe("create flags", () => {
  it.each([
    [{ branch: "main" }, { branch: "main" }],
    [{ tag: "v1.0.0" }, { tag: "v1.0.0" }],
    [{ semver: ">=6.0.0" }, { semver: ">=6.0.0" }],
  ])("ref %o", (flags, expected) => {
    expect(gitRefFromFlags(flags)).toEqual(expected);
  });

  it.each([
    [{}, /give the ref to follow/],
    [{ branch: "a", tag: "b" }, /give only one of --branch, --tag/],
    [{ semver: "not a range!" }, /--semver "not a range!"/],
    [{ branch: "../x" }, /not a valid git ref name/],
  ])("ref %o is refused", (flags, message) => {
    expect(() => gitRefFromFlags(flags)).toThrow(message);
  });

  it.each([
    ["./kustomize", "./kustomize"],
    ["kustomize/", "./kustomize"],
    [".", "./"],
    ["deploy/../kustomize", "./kustomize"],
  ])("path %s becomes %s", (input, expected) => {
    expect(checkKsPath(input)).toBe(expected);
  });

  it.each(["../other", "./a/../../b", "/abs"])("path %s is refused", (input) => {
    expect(() => checkKsPath(input)).toThrow(/escapes the repository|relative to the source's root/);
  });

  it.each([
    ["podinfo", { kind: "GitRepository", name: "podinfo" }],
    ["GitRepository/podinfo", { kind: "GitRepository", name: "podinfo" }],
    ["GitRepository/podinfo.apps", { kind: "GitRepository", name: "podinfo", namespace: "apps" }],
  ])("--source %s", (input, expected) => {
    expect(parseSourceFlag(input)).toEqual(expected);
  });

  it("--source of another kind is refused", () => {
    expect(() => parseSourceFlag("OCIRepository/podinfo")).toThrow(/kind OCIRepository is not supported/);
  });

  it.each([
    ["infra", { name: "infra" }],
    ["flux-system/infra", { namespace: "flux-system", name: "infra" }],
  ])("--depends-on %s", (input, expected) => {
    expect(parseDependsOn(input)).toEqual(expected);
  });

  it.each(["https://h/x.git", "ssh://git@h/x.git", "git@github.com:o/x.git", "file:///tmp/x"])(
    "url %s is a git URL",
    (url) => {
      expect(checkGitUrl(url)).toBe(url);
    },
  );

  it("a URL carrying a password is refused without echoing it", () => {
    expect(() => checkGitUrl("ftp://me:hunter22@h/x")).toThrow(
      /^--url "ftp:\/\/\*\*\*@h\/x" is not a git URL/,
    );
  });

  it("export prints what flux create prints: one document, ready to commit", () => {
    const source = gitRepositoryObject({
      name: "podinfo",
      namespace: "shipmate-system",
      url: "https://github.com/stefanprodan/podinfo",
      ref: { branch: "master" },
      interval: "1m",
    });
    expect(exportYaml(source)).toBe(`---
apiVersion: source.toolkit.fluxcd.io/v1
kind: GitRepository
metadata:
  name: podinfo
  namespace: shipmate-system
spec:
  interval: 1m
  ref:
    branch: master
  url: https://github.com/stefanprodan/podinfo
`);
    const ks = kustomizationObject({
      name: "podinfo",
      namespace: "shipmate-system",
      source: { kind: "GitRepository", name: "podinfo" },
      path: "./kustomize",
      prune: true,
      interval: "30m",
      targetNamespace: "default",
      dependsOn: [{ name: "infra" }],
      wait: true,
      timeout: "3m",
    });
    expect(exportYaml(ks)).toBe(`---
apiVersion: kustomize.toolkit.fluxcd.io/v1
kind: Kustomization
metadata:
  name: podinfo
  namespace: shipmate-system
spec:
  dependsOn:
    - name: infra
  interval: 30m
  path: ./kustomize
  prune: true
  sourceRef:
    kind: GitRepository
    name: podinfo
  targetNamespace: default
  timeout: 3m
  wait: true
`);
  });
});
