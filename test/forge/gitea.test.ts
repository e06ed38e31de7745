import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { ForgePermissionError } from "../../src/forge/errors.ts";
import { createGiteaForge } from "../../src/forge/gitea/index.ts";
import { waitFor } from "../helpers/wait.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";
import { forgeContract, requestSpec as spec } from "./contract.ts";
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

const openPulls = async (branch: string) =>
  (await gitea.api<ApiPull[]>("GET", `/repos/${repo.fullName}/pulls?state=open&limit=50`)).filter(
    (p) => p.head.ref === branch,
  );

forgeContract("gitea provider against a real Gitea", () => ({
  label: "Gitea",
  repo: repo.fullName,
  requests: "pull requests",
  forge: () => forge(),
  rejectedToken: (tokenSource) =>
    createGiteaForge({
      url: gitea.url,
      repo: repo.fullName,
      token: "0000000000000000000000000000000000000000",
      tokenSource,
    }),
  missingRepo: () => ({
    forge: createGiteaForge({ url: gitea.url, repo: "nobody/nothing", token: gitea.token }),
    repo: "nobody/nothing",
  }),
  push: (branch, content) => clone.pushBranch(branch, { [`${branch.replaceAll("/", "-")}.yaml`]: content }),
  open: async (branch) =>
    (await openPulls(branch)).map((p) => ({
      number: p.number,
      body: p.body,
      labels: p.labels.map((l) => l.name),
    })),
  request: async (number) => {
    const p = await gitea.api<ApiPull>("GET", `/repos/${repo.fullName}/pulls/${number}`);
    const comments = await gitea.api<{ body: string }[]>(
      "GET",
      `/repos/${repo.fullName}/issues/${number}/comments`,
    );
    return {
      state: p.merged ? ("merged" as const) : p.state === "open" ? ("open" as const) : ("closed" as const),
      comments: comments.map((c) => c.body),
    };
  },
  branchExists: async (branch) =>
    gitea.api("GET", `/repos/${repo.fullName}/branches/${branch}`).then(
      () => true,
      (err: Error) => {
        if (/404/.test(err.message)) return false;
        throw err;
      },
    ),
  closeAsPerson: async (number) => {
    await gitea.api("PATCH", `/repos/${repo.fullName}/pulls/${number}`, { state: "closed" });
    return undefined;
  },
  setStatus: async (sha, context, state) => {
    await gitea.api("POST", `/repos/${repo.fullName}/statuses/${sha}`, { state, context });
  },
}));

describe("gitea provider: what only Gitea does", () => {
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
      const res = await f.ensurePullRequest(spec("shipmate/auto", "3.0.0", { autoMerge: true }));
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
});

describe("gitea provider: bad input becomes one line that says what to fix", () => {
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
    const err = await f.ensurePullRequest(spec("shipmate/ro", "4.0.0")).catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ForgePermissionError);
    expect((err as ForgePermissionError).missing).toBe("write:repository");
    expect((err as Error).message).not.toContain(sha1);
  });
});
