import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { makeMeta, parseMeta } from "../../src/forge/body.ts";
import { ForgeAuthError, ForgeNotFoundError, ForgePermissionError } from "../../src/forge/errors.ts";
import { createGiteaForge } from "../../src/forge/gitea/index.ts";
import type { ImageChange, PullRequestSpec } from "../../src/forge/types.ts";
import { waitFor } from "../helpers/wait.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";
import { TestClone } from "./helpers.ts";

let gitea: GiteaServer;
let repo: GiteaRepo;
let clone: TestClone;

interface ApiPull {
  number: number;
  state: string;
  merged: boolean;
  body: string;
  head: { ref: string; sha: string };
  labels: { name: string }[];
}

beforeAll(async () => {
  gitea = await startGitea();
  repo = await gitea.createRepo("fleet");
  clone = await TestClone.clone(repo.authedCloneUrl);
});

afterAll(async () => {
  await clone?.remove();
  await gitea?.stop();
});

const forge = () => createGiteaForge({ url: gitea.url, repo: repo.fullName, token: gitea.token });

const change = (to: string): ImageChange => ({
  image: "127.0.0.1:5000/team/app",
  from: "1.0.0",
  to,
  policy: "flux-system:app",
  files: ["clusters/production/app.yaml"],
});

const spec = (
  branch: string,
  changes: ImageChange[],
  extra: Partial<PullRequestSpec> = {},
): PullRequestSpec => ({
  branch,
  base: "main",
  title: `Update images (${branch})`,
  meta: makeMeta(changes),
  ...extra,
});

const openPulls = async (branch: string) =>
  (await gitea.api<ApiPull[]>("GET", `/repos/${repo.fullName}/pulls?state=open&limit=50`)).filter(
    (p) => p.head.ref === branch,
  );

describe("gitea provider against a real Gitea", () => {
  it("opens one request for a bot branch, with the table and the hidden block", async () => {
    await clone.pushBranch("shipmate/open", { "clusters/production/app.yaml": "image: app:1.1.0\n" });
    const res = await forge().ensurePullRequest(
      spec("shipmate/open", [change("1.1.0")], { labels: ["shipmate", "production"] }),
    );
    expect(res.action).toBe("opened");
    const [pr, ...others] = await openPulls("shipmate/open");
    expect(others).toEqual([]);
    expect(pr?.body).toContain("| `127.0.0.1:5000/team/app` | `1.0.0` | `1.1.0` | `flux-system:app` |");
    expect(parseMeta(pr?.body)?.changes).toEqual([change("1.1.0")]);
    expect(pr?.labels.map((l) => l.name).sort()).toEqual(["production", "shipmate"]);
  });

  it("a run with nothing new sends one request (the listing) and changes nothing", async () => {
    const f = forge();
    const known = await f.listOpenPullRequests("shipmate/");
    const res = await f.ensurePullRequest(
      spec("shipmate/open", [change("1.1.0")], { labels: ["shipmate", "production"] }),
      known,
    );
    expect(res.action).toBe("unchanged");
    expect(f.requestCount).toBe(1);
  });

  it("a newer change set updates the open request instead of opening another", async () => {
    await clone.pushBranch("shipmate/open", { "clusters/production/app.yaml": "image: app:1.2.0\n" });
    const res = await forge().ensurePullRequest(spec("shipmate/open", [change("1.2.0")]));
    expect(res.action).toBe("updated");
    const pulls = await openPulls("shipmate/open");
    expect(pulls).toHaveLength(1);
    expect(parseMeta(pulls[0]?.body)?.changes[0]?.to).toBe("1.2.0");
  });

  it("dedupe: a stale listing that missed the open request adopts it on the 409", async () => {
    const res = await forge().ensurePullRequest(spec("shipmate/open", [change("1.3.0")]), []);
    expect(res.action).toBe("updated");
    expect(await openPulls("shipmate/open")).toHaveLength(1);
  });

  it("close-when-obsolete: comments, closes and deletes the bot branch", async () => {
    await clone.pushBranch("shipmate/stale", { "stale.yaml": "image: app:9\n" });
    const f = forge();
    await f.ensurePullRequest(spec("shipmate/stale", [change("9.0.0")]));
    const [pr] = await openPulls("shipmate/stale");
    expect(await f.closeStale("shipmate/stale", "Nothing left to update: closing.")).toBe(true);
    const after = await gitea.api<ApiPull>("GET", `/repos/${repo.fullName}/pulls/${pr?.number}`);
    expect(after.state).toBe("closed");
    const comments = await gitea.api<{ body: string }[]>(
      "GET",
      `/repos/${repo.fullName}/issues/${pr?.number}/comments`,
    );
    expect(comments.map((c) => c.body)).toContain("Nothing left to update: closing.");
    await expect(gitea.api("GET", `/repos/${repo.fullName}/branches/shipmate/stale`)).rejects.toThrow(/404/);
    expect(await f.closeStale("shipmate/stale", "again")).toBe(false);
  });

  it("closed by a person: the same proposal is not reopened; a different one is", async () => {
    await clone.pushBranch("shipmate/declined", { "declined.yaml": "image: app:2\n" });
    const first = await forge().ensurePullRequest(spec("shipmate/declined", [change("2.0.0")]));
    await gitea.api("PATCH", `/repos/${repo.fullName}/pulls/${first.pullRequest.number}`, {
      state: "closed",
    });
    const again = await forge().ensurePullRequest(spec("shipmate/declined", [change("2.0.0")]));
    expect(again.action).toBe("declined");
    expect(await openPulls("shipmate/declined")).toHaveLength(0);
    const newer = await forge().ensurePullRequest(spec("shipmate/declined", [change("2.1.0")]));
    expect(newer.action).toBe("opened");
    expect(newer.pullRequest.number).not.toBe(first.pullRequest.number);
  });

  it("auto-merge: scheduled while the required check is pending, merged by Gitea once it passes", async () => {
    const r = await gitea.createRepo("automerge");
    const c = await TestClone.clone(r.authedCloneUrl);
    try {
      await gitea.api("POST", `/repos/${r.fullName}/branch_protections`, {
        rule_name: "main",
        enable_status_check: true,
        status_check_contexts: ["ci"],
      });
      const sha = await c.pushBranch("shipmate/auto", { "app.yaml": "image: app:3\n" });
      await gitea.api("POST", `/repos/${r.fullName}/statuses/${sha}`, { state: "pending", context: "ci" });
      const f = createGiteaForge({ url: gitea.url, repo: r.fullName, token: gitea.token });
      const res = await f.ensurePullRequest(spec("shipmate/auto", [change("3.0.0")], { autoMerge: true }));
      expect(res.autoMerge).toBe("enabled");
      expect((await f.commitChecks(sha)).state).toBe("pending");
      const number = res.pullRequest.number;
      expect((await gitea.api<ApiPull>("GET", `/repos/${r.fullName}/pulls/${number}`)).merged).toBe(false);
      await gitea.api("POST", `/repos/${r.fullName}/statuses/${sha}`, { state: "success", context: "ci" });
      expect((await f.commitChecks(sha)).state).toBe("success");
      const merged = await waitFor(
        async () => (await gitea.api<ApiPull>("GET", `/repos/${r.fullName}/pulls/${number}`)).merged,
        { ms: 30_000, every: 250, what: "Gitea to merge the request once its checks passed" },
      );
      expect(merged).toBe(true);
    } finally {
      await c.remove();
    }
  });

  it("commit checks: none, then failure wins over success", async () => {
    const sha = await clone.pushBranch("checks", { "checks.txt": "x\n" });
    const f = forge();
    expect(await f.commitChecks(sha)).toEqual({ sha, state: "none", checks: [] });
    await gitea.api("POST", `/repos/${repo.fullName}/statuses/${sha}`, {
      state: "success",
      context: "build",
    });
    await gitea.api("POST", `/repos/${repo.fullName}/statuses/${sha}`, { state: "failure", context: "e2e" });
    const checks = await f.commitChecks(sha);
    expect(checks.state).toBe("failure");
    expect(checks.checks.map((c) => `${c.name}=${c.state}`).sort()).toEqual(["build=success", "e2e=failure"]);
  });
});

describe("gitea provider: bad input becomes one line that says what to fix", () => {
  it("an expired or revoked token is named as such", async () => {
    const f = createGiteaForge({
      url: gitea.url,
      repo: repo.fullName,
      token: "0000000000000000000000000000000000000000",
      tokenSource: "$GITEA_TOKEN",
    });
    const err = await f.listOpenPullRequests("shipmate/").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeAuthError);
    expect((err as Error).message).toMatch(/token was rejected.*\$GITEA_TOKEN/);
  });

  it("a token without the write scope names the scope it lacks", async () => {
    const res = await fetch(`${gitea.url}/api/v1/users/${gitea.admin.username}/tokens`, {
      method: "POST",
      headers: {
        authorization: `Basic ${Buffer.from(`${gitea.admin.username}:${gitea.admin.password}`).toString("base64")}`,
        "content-type": "application/json",
      },
      body: JSON.stringify({ name: "read-only", scopes: ["read:repository", "read:issue"] }),
    });
    const { sha1 } = (await res.json()) as { sha1: string };
    await clone.pushBranch("shipmate/ro", { "ro.yaml": "x: 1\n" });
    const f = createGiteaForge({ url: gitea.url, repo: repo.fullName, token: sha1 });
    const err = await f.ensurePullRequest(spec("shipmate/ro", [change("4.0.0")])).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgePermissionError);
    expect((err as ForgePermissionError).missing).toBe("write:repository");
    expect((err as Error).message).not.toContain(sha1);
  });

  it("a repository that does not exist is a 404 naming it", async () => {
    const f = createGiteaForge({ url: gitea.url, repo: "nobody/nothing", token: gitea.token });
    const err = await f.listOpenPullRequests("shipmate/").catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgeNotFoundError);
    expect((err as Error).message).toMatch(/^Gitea nobody\/nothing: not found/);
  });
});
