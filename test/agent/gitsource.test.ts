/**
 * GitRepository fields past branch/tag/semver, against real git remotes
 * (file:// and `git http-backend` with basic auth) and real gpg: `ref.name`,
 * `ref.commit`, `sparseCheckout`, `recurseSubmodules`, `verify` and
 * `include`, each with source-controller's documented semantics (revision
 * format, precedence, failure reasons). The handler's fetcher is driven
 * directly; the manager's part (status, watching includes) is in
 * gitfields.kube.test.ts.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, readFileSync, rmSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { gitRefOf, gitRepositoryHandler } from "../../src/agent/sources/git.ts";
import { type FetchContext, type Resolution, SourceError } from "../../src/agent/sources/handler.ts";
import { composeArtifact, composedDigest, listTree, secureJoin } from "../../src/agent/sources/include.ts";
import { signerOf, splitKeys, verifyTargets } from "../../src/agent/sources/verify.ts";
import type { GitRepositorySpec } from "../../src/kube/schema.ts";
import {
  type GitHttpServer,
  git,
  gitAsync,
  seedBare,
  startGitHttpServer,
  tempDir,
  writeFiles,
} from "../infra/git.ts";
import { type GpgSigner, gpgSigner } from "../infra/gpg.ts";
import { silent } from "./helpers.ts";

vi.setConfig({ testTimeout: 60_000 });

const b64 = (s: string) => Buffer.from(s).toString("base64");

function ctx(
  secrets: Record<string, Record<string, string>> = {},
  resolve?: FetchContext["resolve"],
): FetchContext {
  return {
    namespace: "apps",
    name: "repo",
    object: { apiVersion: "source.toolkit.fluxcd.io/v1", kind: "GitRepository", metadata: {} },
    previous: undefined,
    log: silent,
    secret: async (n) => {
      const s = secrets[n];
      if (!s) throw new Error(`secret apps/${n} not found`);
      return s;
    },
    resolve: resolve ?? (async () => ({ ok: false, reason: "NotFound", message: "none", stalled: false })),
    lookup: (ref) =>
      resolve ? { apiVersion: "v1", kind: ref.kind, metadata: { name: ref.name } } : undefined,
  };
}

const spec = (over: Record<string, unknown>): GitRepositorySpec =>
  parsed({ url: "file:///nowhere", ...over });

function parsed(over: Record<string, unknown>): GitRepositorySpec {
  const p = gitRepositoryHandler.parse({ interval: "1m", ...over });
  if ("invalid" in p) throw new Error(p.invalid);
  return p.spec;
}

/** A work tree pushing to a bare remote, commits returned by SHA. */
class Remote {
  readonly root = tempDir("shipmate-gitsrc-");
  readonly bare = join(this.root, "remote.git");
  readonly work = join(this.root, "work");
  readonly url = `file://${this.bare}`;
  constructor(files: Record<string, string>, env: NodeJS.ProcessEnv = {}) {
    seedBare(this.bare, files);
    git(this.root, ["clone", "--quiet", this.bare, this.work], env);
  }
  commit(files: Record<string, string>, args: string[] = [], env: NodeJS.ProcessEnv = {}): string {
    writeFiles(this.work, files);
    git(this.work, ["add", "--all"], env);
    git(this.work, ["commit", "--quiet", ...args, "-m", "change"], env);
    git(this.work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"], env);
    return git(this.work, ["rev-parse", "HEAD"]).trim();
  }
  head(ref = "HEAD"): string {
    return git(this.bare, ["rev-parse", ref]).trim();
  }
}

const fetcher = () => gitRepositoryHandler.open(tempDir("shipmate-gitsrc-wd-"));
/** What a render would see: every path of the artifact but git's own. */
const files = (dir: string) =>
  listTree(dir)
    .filter((p) => !p.split("/").some((part) => part === ".git" || part === ".gitmodules"))
    .sort();

describe("ref: source-controller's precedence (commit, name, semver, tag, branch)", () => {
  it.each<[string, Record<string, string>, unknown]>([
    ["no ref: master", {}, { branch: "master" }],
    ["tag over branch", { branch: "main", tag: "v1" }, { tag: "v1" }],
    ["semver over tag", { tag: "v1", semver: ">=1" }, { semver: ">=1" }],
    ["name over semver", { semver: ">=1", name: "refs/pull/1/head" }, { name: "refs/pull/1/head" }],
    ["commit over everything, alone", { name: "refs/heads/x", commit: "abc" }, { commit: "abc" }],
    ["commit keeps its branch", { branch: "main", commit: "abc" }, { commit: "abc", branch: "main" }],
  ])("%s", (_rule, ref, expected) => {
    expect(gitRefOf(spec({ ref }))).toEqual(expected);
  });
});

describe("ref.name and ref.commit against a file:// remote", () => {
  let remote: Remote;
  let first: string;
  let second: string;
  beforeAll(() => {
    remote = new Remote({ "deploy/cm.yaml": "v: 1\n" });
    first = remote.head();
    second = remote.commit({ "deploy/cm.yaml": "v: 2\n" });
    git(remote.bare, ["update-ref", "refs/pull/1/head", first]);
    git(remote.bare, ["tag", "-a", "-m", "release", "v1.0.0", first]);
  });
  afterAll(() => rmSync(remote.root, { recursive: true, force: true }));

  it.each<[string, () => string, () => string, string]>([
    ["a branch by its full name", () => "refs/heads/main", () => second, "v: 2\n"],
    ["a pull request head", () => "refs/pull/1/head", () => first, "v: 1\n"],
    ["an annotated tag", () => "refs/tags/v1.0.0", () => first, "v: 1\n"],
  ])("name: %s, revision `<full ref>@sha1:<commit>`", async (_what, name, commit, content) => {
    const f = fetcher();
    const a = await f.fetch(parsed({ url: remote.url, ref: { name: name() } }), ctx());
    expect(a.revision).toBe(`${name()}@sha1:${commit()}`);
    expect(readFileSync(join(a.dir, "deploy/cm.yaml"), "utf8")).toBe(content);
  });

  it("commit alone: `sha1:<commit>`, found on any branch", async () => {
    const a = await fetcher().fetch(parsed({ url: remote.url, ref: { commit: first } }), ctx());
    expect(a.revision).toBe(`sha1:${first}`);
    expect(readFileSync(join(a.dir, "deploy/cm.yaml"), "utf8")).toBe("v: 1\n");
  });

  it("commit with a branch: `<branch>@sha1:<commit>`, and the commit must be in that branch", async () => {
    git(remote.work, ["checkout", "--quiet", "-b", "other", first]);
    writeFiles(remote.work, { "x.yaml": "x: 1\n" });
    git(remote.work, ["add", "--all"]);
    git(remote.work, ["commit", "--quiet", "-m", "other"]);
    const elsewhere = git(remote.work, ["rev-parse", "HEAD"]).trim();
    git(remote.work, ["push", "--quiet", "origin", "HEAD:refs/heads/other"]);
    git(remote.work, ["checkout", "--quiet", "main"]);

    const f = fetcher();
    const a = await f.fetch(parsed({ url: remote.url, ref: { branch: "main", commit: first } }), ctx());
    expect(a.revision).toBe(`main@sha1:${first}`);
    await expect(
      fetcher().fetch(parsed({ url: remote.url, ref: { branch: "main", commit: elsewhere } }), ctx()),
    ).rejects.toThrow(`commit ${elsewhere} not found in branch main`);
    // Alone, a commit on any branch will do, and only while a branch holds it.
    const anywhere = fetcher();
    const pinned = parsed({ url: remote.url, ref: { commit: elsewhere } });
    expect((await anywhere.fetch(pinned, ctx())).revision).toBe(`sha1:${elsewhere}`);
    git(remote.bare, ["update-ref", "-d", "refs/heads/other"]);
    await expect(anywhere.fetch(pinned, ctx())).rejects.toThrow(
      `commit ${elsewhere} not found in any branch`,
    );
    // A short SHA is not a commit source-controller can check out either.
    await expect(
      fetcher().fetch(parsed({ url: remote.url, ref: { commit: first.slice(0, 7) } }), ctx()),
    ).rejects.toThrow("is not a full commit SHA");
  });
});

describe("sparseCheckout", () => {
  let remote: Remote;
  beforeAll(() => {
    remote = new Remote({
      "README.md": "root file\n",
      "root.yaml": "a: 1\n",
      "charts/app/Chart.yaml": "name: app\n",
      "kustomize/base/cm.yaml": "b: 1\n",
      "other/cm.yaml": "c: 1\n",
    });
  });
  afterAll(() => rmSync(remote.root, { recursive: true, force: true }));

  it("the docs' example: only `charts` and `kustomize` are in the artifact (no root files either)", async () => {
    const f = fetcher();
    const a = await f.fetch(
      parsed({ url: remote.url, ref: { branch: "main" }, sparseCheckout: ["charts", "./kustomize"] }),
      ctx(),
    );
    expect(files(a.dir)).toEqual([
      "charts",
      "charts/app",
      "charts/app/Chart.yaml",
      "kustomize",
      "kustomize/base",
      "kustomize/base/cm.yaml",
    ]);
    // The same commit again restores a render's edit and stays sparse.
    writeFiles(a.dir, { "kustomize/base/cm.yaml": "edited\n" });
    const again = await f.fetch(
      parsed({ url: remote.url, ref: { branch: "main" }, sparseCheckout: ["charts", "./kustomize"] }),
      ctx(),
    );
    expect(readFileSync(join(again.dir, "kustomize/base/cm.yaml"), "utf8")).toBe("b: 1\n");
    expect(files(again.dir)).not.toContain("root.yaml");
    // Back to a full checkout when the field goes.
    const b = await f.fetch(parsed({ url: remote.url, ref: { branch: "main" } }), ctx());
    expect(files(b.dir)).toContain("other/cm.yaml");
    expect(files(b.dir)).toContain("root.yaml");
  });

  it("a directory the commit does not have fails the fetch, naming it", async () => {
    await expect(
      fetcher().fetch(parsed({ url: remote.url, ref: { branch: "main" }, sparseCheckout: ["nope"] }), ctx()),
    ).rejects.toThrow("sparse checkout dir 'nope' does not exist in repository");
  });
});

describe("recurseSubmodules over git http-backend with basic auth", () => {
  let server: GitHttpServer;
  beforeAll(async () => {
    server = await startGitHttpServer();
  });
  afterAll(async () => {
    await server.close();
  });

  it("checks submodules out, recursively, with the GitRepository's credentials", async () => {
    const leafUrl = server.createRepo("leaf", { "leaf.yaml": "leaf: 1\n" });
    const libUrl = server.createRepo("lib", { "lib.yaml": "lib: 1\n" });
    const appUrl = server.createRepo("app", { "app.yaml": "app: 1\n" });
    const cred = {
      GIT_CONFIG_COUNT: "2",
      GIT_CONFIG_KEY_0: "http.extraHeader",
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${b64(`${server.user}:${server.password}`)}`,
      GIT_CONFIG_KEY_1: "protocol.file.allow",
      GIT_CONFIG_VALUE_1: "always",
    };
    // lib gets leaf as a submodule; app gets lib: two levels, every URL without credentials.
    for (const [repo, sub, url] of [
      ["lib", "vendor/leaf", leafUrl],
      ["app", "vendor/lib", libUrl],
    ] as const) {
      const w = tempDir();
      git(w, ["clone", "--quiet", join(server.root, `${repo}.git`), "."]);
      // Against this process's own HTTP server: never a synchronous git.
      await gitAsync(w, ["submodule", "--quiet", "add", url, sub], cred);
      git(w, ["commit", "--quiet", "-m", "submodule"]);
      git(w, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
      rmSync(w, { recursive: true, force: true });
    }
    const secrets = { auth: { username: b64(server.user), password: b64(server.password) } };
    const withSubs = parsed({
      url: appUrl,
      ref: { branch: "main" },
      secretRef: { name: "auth" },
      recurseSubmodules: true,
    });
    const a = await fetcher().fetch(withSubs, ctx(secrets));
    expect(readFileSync(join(a.dir, "vendor/lib/lib.yaml"), "utf8")).toBe("lib: 1\n");
    expect(readFileSync(join(a.dir, "vendor/lib/vendor/leaf/leaf.yaml"), "utf8")).toBe("leaf: 1\n");
    // Without the field, the submodule folders stay empty (Flux's default).
    const b = await fetcher().fetch({ ...withSubs, recurseSubmodules: false }, ctx(secrets));
    expect(existsSync(join(b.dir, "vendor/lib/lib.yaml"))).toBe(false);
    // And the credentials were needed: no request reached a repository unauthenticated and got through.
    expect(server.requests.some((r) => r.path.startsWith("/leaf.git") && r.authorized)).toBe(true);
  });

  it("submodules are written in the tree swapped in: a render's edits undone, a failed update leaves the previous tree", async () => {
    const libUrl = server.createRepo("lib3", { "lib.yaml": "lib: 3\n" });
    const appUrl = server.createRepo("app3", { "app.yaml": "app: 3\n" });
    const goneUrl = server.createRepo("gone3", { "gone.yaml": "gone\n" });
    const cred = {
      GIT_CONFIG_COUNT: "1",
      GIT_CONFIG_KEY_0: "http.extraHeader",
      GIT_CONFIG_VALUE_0: `Authorization: Basic ${b64(`${server.user}:${server.password}`)}`,
    };
    const w = tempDir();
    git(w, ["clone", "--quiet", join(server.root, "app3.git"), "."]);
    await gitAsync(w, ["submodule", "--quiet", "add", libUrl, "vendor/lib"], cred);
    git(w, ["commit", "--quiet", "-m", "submodule"]);
    git(w, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    const secrets = { auth: { username: b64(server.user), password: b64(server.password) } };
    const withSubs = parsed({
      url: appUrl,
      ref: { branch: "main" },
      secretRef: { name: "auth" },
      recurseSubmodules: true,
    });
    const wd = tempDir("shipmate-gitsrc-wd-");
    const f = gitRepositoryHandler.open(wd);
    const a = await f.fetch(withSubs, ctx(secrets));
    // A render edits a submodule's file and writes one beside it; the same commit again undoes both.
    writeFiles(a.dir, {
      "vendor/lib/lib.yaml": "edited\n",
      "vendor/lib/kustomization.yaml": "resources: []\n",
    });
    const again = await f.fetch(withSubs, ctx(secrets));
    expect(again.revision).toBe(a.revision);
    expect(readFileSync(join(again.dir, "vendor/lib/lib.yaml"), "utf8")).toBe("lib: 3\n");
    expect(existsSync(join(again.dir, "vendor/lib/kustomization.yaml"))).toBe(false);
    // A new commit whose submodule cannot be fetched: the fetch fails, the previous tree stays whole.
    await gitAsync(w, ["submodule", "--quiet", "add", goneUrl, "vendor/gone"], cred);
    writeFiles(w, { "app.yaml": "app: 4\n" });
    git(w, ["add", "--all"]);
    git(w, ["commit", "--quiet", "-m", "a submodule that goes"]);
    git(w, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
    rmSync(join(server.root, "gone3.git"), { recursive: true, force: true });
    await expect(f.fetch(withSubs, ctx(secrets))).rejects.toThrow("git submodule update");
    expect(readFileSync(join(a.dir, "app.yaml"), "utf8")).toBe("app: 3\n");
    expect(readFileSync(join(a.dir, "vendor/lib/lib.yaml"), "utf8")).toBe("lib: 3\n");
    expect(existsSync(join(a.dir, "vendor/gone"))).toBe(false);
    // No temporary tree or index left beside it, and git in the submodule still finds its own tree.
    expect(readdirSync(wd).sort()).toEqual(["source", "source.git"]);
    expect(readdirSync(join(wd, "source.git")).filter((n) => n.startsWith("index."))).toEqual([]);
    expect(git(join(a.dir, "vendor/lib"), ["status", "--porcelain"]).trim()).toBe("");
    rmSync(w, { recursive: true, force: true });
  });

  it("never sends the credentials to a submodule on another host", async () => {
    const elsewhere = await startGitHttpServer({ user: server.user, password: server.password });
    try {
      const foreignUrl = elsewhere.createRepo("foreign", { "f.yaml": "f: 1\n" });
      const appUrl = server.createRepo("app2", { "app.yaml": "app: 1\n" });
      const w = tempDir();
      git(w, ["clone", "--quiet", join(server.root, "app2.git"), "."]);
      await gitAsync(w, ["submodule", "--quiet", "add", foreignUrl, "vendor/foreign"], {
        GIT_CONFIG_COUNT: "1",
        GIT_CONFIG_KEY_0: "http.extraHeader",
        GIT_CONFIG_VALUE_0: `Authorization: Basic ${b64(`${server.user}:${server.password}`)}`,
      });
      git(w, ["commit", "--quiet", "-m", "submodule"]);
      git(w, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
      rmSync(w, { recursive: true, force: true });
      elsewhere.requests.length = 0;
      const secrets = { auth: { username: b64(server.user), password: b64(server.password) } };
      await expect(
        fetcher().fetch(
          parsed({
            url: appUrl,
            ref: { branch: "main" },
            secretRef: { name: "auth" },
            recurseSubmodules: true,
          }),
          ctx(secrets),
        ),
      ).rejects.toThrow("git submodule update");
      expect(elsewhere.requests.length).toBeGreaterThan(0);
      expect(elsewhere.requests.some((r) => r.authorized)).toBe(false);
    } finally {
      await elsewhere.close();
    }
  });
});

describe("verify: PGP (gpg) and SSH signatures checked against the Secret's keys only", () => {
  let signer: GpgSigner;
  let stranger: GpgSigner;
  let remote: Remote;
  beforeAll(() => {
    signer = gpgSigner("Signer", "signer@example.test");
    stranger = gpgSigner("Other", "other@example.test");
    remote = new Remote({ "deploy/cm.yaml": "v: 1\n" });
  });
  afterAll(() => {
    signer.remove();
    stranger.remove();
    rmSync(remote.root, { recursive: true, force: true });
  });
  const signEnv = () => signer.env;

  const keys = () => ({ pgp: { "author1.asc": b64(signer.publicKey) } });
  const verifySpec = (mode: string, ref: Record<string, string> = { branch: "main" }) =>
    parsed({ url: remote.url, ref, verify: { mode, secretRef: { name: "pgp" } } });

  it("HEAD: a signed commit passes with SourceVerified=True naming commit and key", async () => {
    const signed = remote.commit(
      { "deploy/cm.yaml": "v: signed\n" },
      ["-S", "--gpg-sign=signer@example.test"],
      signEnv(),
    );
    const a = await fetcher().fetch(verifySpec("HEAD"), ctx(keys()));
    expect(a.revision).toBe(`main@sha1:${signed}`);
    const keyId = signer.keyId;
    expect(a.conditions).toEqual([
      {
        type: "SourceVerified",
        status: "True",
        reason: "Succeeded",
        message: `verified signature of\n\t- commit '${signed}' with key '${keyId}'`,
      },
    ]);
    expect(a.status?.sourceVerificationMode).toBe("HEAD");
  });

  it("fails closed: unsigned, or signed by a key not in the Secret, is never checked out", async () => {
    const f = fetcher();
    const good = remote.commit(
      { "deploy/cm.yaml": "v: good\n" },
      ["-S", "--gpg-sign=signer@example.test"],
      signEnv(),
    );
    const a = await f.fetch(verifySpec("head"), ctx(keys()));
    expect(a.revision).toBe(`main@sha1:${good}`);

    const unsigned = remote.commit({ "deploy/cm.yaml": "v: unsigned\n" });
    const err = await f.fetch(verifySpec("head"), ctx(keys())).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(SourceError);
    expect((err as SourceError).reason).toBe("InvalidCommitSignature");
    expect((err as SourceError).message).toBe(
      `signature verification of commit '${unsigned}' failed: the commit is not signed`,
    );
    expect((err as SourceError).conditions[0]).toMatchObject({ type: "SourceVerified", status: "False" });
    // The working copy still holds the last verified revision.
    expect(readFileSync(join(a.dir, "deploy/cm.yaml"), "utf8")).toBe("v: good\n");

    const forged = remote.commit(
      { "deploy/cm.yaml": "v: forged\n" },
      ["-S", "--gpg-sign=other@example.test"],
      stranger.env,
    );
    await expect(f.fetch(verifySpec("HEAD"), ctx(keys()))).rejects.toThrow(
      `signature verification of commit '${forged}' failed: unable to verify the commit with any of the given keys`,
    );
    expect(readFileSync(join(a.dir, "deploy/cm.yaml"), "utf8")).toBe("v: good\n");
    // The same commit passes once the Secret trusts that key too.
    const both = { pgp: { "author1.asc": b64(signer.publicKey), "author2.asc": b64(stranger.publicKey) } };
    expect((await f.fetch(verifySpec("HEAD"), ctx(both))).revision).toBe(`main@sha1:${forged}`);
    // A missing Secret is VerificationError.
    await expect(f.fetch(verifySpec("HEAD"), ctx({}))).rejects.toMatchObject({ reason: "VerificationError" });
  });

  it("Tag and TagAndHEAD verify the tag object (and its commit); a branch cannot be verified as a tag", async () => {
    const c = remote.commit(
      { "deploy/cm.yaml": "v: tagged\n" },
      ["-S", "--gpg-sign=signer@example.test"],
      signEnv(),
    );
    git(remote.work, ["tag", "-s", "-u", "signer@example.test", "-m", "v2", "v2.0.0"], signEnv());
    git(remote.work, ["tag", "-a", "-m", "plain", "v2.0.1"]);
    git(remote.work, ["push", "--quiet", "origin", "v2.0.0", "v2.0.1"]);
    const tagId = git(remote.bare, ["rev-parse", "refs/tags/v2.0.0"]).trim();

    const t = await fetcher().fetch(verifySpec("Tag", { tag: "v2.0.0" }), ctx(keys()));
    expect(t.conditions?.[0]?.message).toMatch(
      new RegExp(`^verified signature of\\n\\t- tag 'v2.0.0@sha1:${tagId}' with key '[0-9A-F]{16}'$`),
    );
    const th = await fetcher().fetch(verifySpec("TagAndHEAD", { semver: "2.0.0" }), ctx(keys()));
    expect(th.conditions?.[0]?.message).toContain(`\n\t- commit '${c}' with key '`);
    const byName = await fetcher().fetch(verifySpec("Tag", { name: "refs/tags/v2.0.0" }), ctx(keys()));
    expect(byName.revision).toBe(`refs/tags/v2.0.0@sha1:${c}`);

    await expect(fetcher().fetch(verifySpec("Tag", { tag: "v2.0.1" }), ctx(keys()))).rejects.toMatchObject({
      reason: "InvalidGitObject",
    });
    await expect(fetcher().fetch(verifySpec("Tag"), ctx(keys()))).rejects.toMatchObject({
      reason: "InvalidVerificationMode",
      stalled: true,
    });
  });

  it("SSH signatures: `.sshpub` keys verify an SSH-signed commit, reported by SHA256 fingerprint", async () => {
    const dir = tempDir("shipmate-ssh-sign-");
    const key = join(dir, "signing_key");
    execFileSync("ssh-keygen", ["-q", "-t", "ed25519", "-N", "", "-C", "bot", "-f", key]);
    const pub = readFileSync(`${key}.pub`, "utf8");
    const fingerprint = execFileSync("ssh-keygen", ["-l", "-f", `${key}.pub`], { encoding: "utf8" }).split(
      " ",
    )[1];
    // git's SSH signing, configured through the environment for this commit only.
    const c = remote.commit({ "deploy/cm.yaml": "v: ssh\n" }, ["-S"], {
      GIT_CONFIG_COUNT: "2",
      GIT_CONFIG_KEY_0: "gpg.format",
      GIT_CONFIG_VALUE_0: "ssh",
      GIT_CONFIG_KEY_1: "user.signingkey",
      GIT_CONFIG_VALUE_1: `${key}.pub`,
    });
    const a = await fetcher().fetch(verifySpec("HEAD"), ctx({ pgp: { "bot.sshpub": b64(pub) } }));
    expect(a.conditions?.[0]?.message).toBe(
      `verified signature of\n\t- commit '${c}' with key '${fingerprint}'`,
    );
    // The PGP key alone does not vouch for it.
    await expect(fetcher().fetch(verifySpec("HEAD"), ctx(keys()))).rejects.toMatchObject({
      reason: "InvalidCommitSignature",
    });
    rmSync(dir, { recursive: true, force: true });
  });

  it.each<[string, string, { tag: boolean; head: boolean }]>([
    ["HEAD", "HEAD", { tag: false, head: true }],
    ["head (legacy spelling)", "head", { tag: false, head: true }],
    ["Tag", "Tag", { tag: true, head: false }],
    ["TagAndHEAD", "TagAndHEAD", { tag: true, head: true }],
  ])("mode %s verifies what it says", (_m, mode, expected) => {
    expect(verifyTargets(mode as "HEAD")).toEqual(expected);
  });

  it("keys: `.sshpub` are SSH keys, anything else a PGP key ring; signer IDs as Flux prints them", () => {
    expect(splitKeys({ "a.asc": b64("A"), "b.sshpub": b64("B"), legacy: b64("C") })).toEqual({
      pgp: ["A", "C"],
      ssh: ["B"],
    });
    expect(
      signerOf(
        "[GNUPG:] VALIDSIG 0123456789ABCDEF0123456789ABCDEF01234567 2026-01-01 1 0 4 0 22 10 00 89ABCDEF0123456789ABCDEF0123456789ABCDEF",
      ),
    ).toBe("0123456789ABCDEF");
    expect(signerOf('Good "git" signature for * with ED25519 key SHA256:abc+/=')).toBe("SHA256:abc+/=");
    expect(signerOf("[GNUPG:] ERRSIG 0123456789ABCDEF 22 10 00 1 9")).toBeUndefined();
  });
});

describe("include", () => {
  it("secure paths: `..` cannot climb out of the artifact", () => {
    expect(secureJoin("/a/b", "../../etc")).toBe("/a/b/etc");
    expect(secureJoin("/a/b", "./x/y")).toBe("/a/b/x/y");
  });

  it("the docs' example: fromPath deploy/kubernetes to toPath base/app; the digest follows the included repo", async () => {
    const lib = new Remote({ "deploy/kubernetes/cm.yaml": "lib: 1\n", "README.md": "lib\n" });
    const app = new Remote({ "base/kustomization.yaml": "resources: []\n" });
    const libFetcher = fetcher();
    const resolve = async (): Promise<Resolution> => ({
      ok: true,
      artifact: await libFetcher.fetch(parsed({ url: lib.url, ref: { branch: "main" } }), ctx()),
    });
    const appSpec = parsed({
      url: app.url,
      ref: { branch: "main" },
      include: [
        { repository: { name: "other-repository" }, fromPath: "deploy/kubernetes", toPath: "base/app" },
      ],
    });
    const f = fetcher();
    const a = await f.fetch(appSpec, ctx({}, resolve));
    expect(files(a.dir)).toEqual(["base", "base/app", "base/app/cm.yaml", "base/kustomization.yaml"]);
    expect(a.revision).toBe(`main@sha1:${app.head()}`);
    const firstDigest = a.digest;

    lib.commit({ "deploy/kubernetes/cm.yaml": "lib: 2\n" });
    const b = await f.fetch(appSpec, ctx({}, resolve));
    // Same revision of the including repository, a new artifact.
    expect(b.revision).toBe(a.revision);
    expect(b.digest).not.toBe(firstDigest);
    expect(readFileSync(join(b.dir, "base/app/cm.yaml"), "utf8")).toBe("lib: 2\n");

    // Default toPath is the repository's name; no fromPath copies it all (its .git stays out).
    const c = await fetcher().fetch(
      parsed({ url: app.url, ref: { branch: "main" }, include: [{ repository: { name: "lib" } }] }),
      ctx({}, resolve),
    );
    expect(files(c.dir)).toContain("lib/deploy/kubernetes/cm.yaml");
    expect(files(c.dir)).not.toContain("lib/.git");

    // A render's files go on clean(); the included ones stay.
    writeFiles(c.dir, { "lib/generated.yaml": "x\n" });
    await f.clean();
    const cf = fetcher();
    const d = await cf.fetch(appSpec, ctx({}, resolve));
    writeFiles(d.dir, { "base/kustomization.generated.yaml": "x\n" });
    await cf.clean();
    expect(files(d.dir)).toEqual(["base", "base/app", "base/app/cm.yaml", "base/kustomization.yaml"]);

    // An include without an artifact: IncludeUnavailable, nothing built.
    const none = async (): Promise<Resolution> => ({
      ok: false,
      reason: "x",
      message: "not ready",
      stalled: false,
    });
    await expect(fetcher().fetch(appSpec, ctx({}, none))).rejects.toMatchObject({
      reason: "NoArtifact",
      conditions: [{ type: "IncludeUnavailable", status: "True", reason: "NoArtifact" }],
    });
    for (const r of [lib, app]) rmSync(r.root, { recursive: true, force: true });
  });

  it("composeArtifact: a toPath the tree already fills is a CopyFailure, as Flux's rename would be", () => {
    const checkout = tempDir();
    writeFiles(checkout, { "base/x.yaml": "x\n" });
    const inc = tempDir();
    writeFiles(inc, { "y.yaml": "y\n" });
    const out = join(tempDir(), "artifact");
    expect(() =>
      composeArtifact(checkout, out, [{ name: "lib", from: "", to: "base", dir: inc, revision: "r" }]),
    ).toThrow("failed to copy 'lib' include from ./ to base: base already exists in the artifact");
    expect(composedDigest("sha256:a", [])).toBe("sha256:a");
    expect(
      composedDigest("sha256:a", [{ name: "l", from: "", to: "l", dir: inc, revision: "r", digest: "d1" }]),
    ).not.toBe(
      composedDigest("sha256:a", [{ name: "l", from: "", to: "l", dir: inc, revision: "r", digest: "d2" }]),
    );
  });
});
