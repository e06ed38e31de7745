/**
 * `update` in pull-request mode (deliverUpdateAsPullRequest): the real
 * update engine and git delivery pushing a bot branch to a real Gitea, then
 * the request opened, kept, and closed once the base has the change.
 */
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseMeta } from "../../src/forge/body.ts";
import { createGiteaForge } from "../../src/forge/gitea/index.ts";
import { deliverUpdateAsPullRequest, imageChangesFromUpdate } from "../../src/run/deliver.ts";
import { inputFromSets, parseSetFlag } from "../../src/update/selections.ts";
import { giteaFleet, pushFiles } from "../helpers/gitea.ts";
import { type GiteaRepo, type GiteaServer, startGitea } from "../infra/gitea.ts";

let gitea: GiteaServer;
let repo: GiteaRepo;

const manifest = (tag: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: web
spec:
  template:
    spec:
      containers:
        - name: web
          image: 127.0.0.1:5000/acme/web:${tag} # {"$imagepolicy": "flux-system:web"}
`;

beforeAll(async () => {
  gitea = await startGitea();
  repo = await giteaFleet(gitea, "fleet", { "clusters/production/web.yaml": manifest("1.0.0") });
});
afterAll(async () => {
  await gitea?.stop();
});

const run = (tag: string) => {
  const forge = createGiteaForge({ url: gitea.url, repo: repo.fullName, token: gitea.token });
  return deliverUpdateAsPullRequest({
    forge,
    job: {
      repo: repo.authedCloneUrl,
      branch: "main",
      input: inputFromSets([parseSetFlag(`flux-system:web=127.0.0.1:5000/acme/web:${tag}`)]),
      env: process.env,
    },
    labels: ["shipmate"],
    imageOf: () => "127.0.0.1:5000/acme/web",
  });
};

const open = async () =>
  (
    await gitea.api<{ number: number; body: string; head: { ref: string } }[]>(
      "GET",
      `/repos/${repo.fullName}/pulls?state=open&limit=50`,
    )
  ).filter((p) => p.head.ref === "shipmate/update-main");

describe("update in pull-request mode against a real Gitea", () => {
  it("opens a request from a rebuilt bot branch, with the table of changes", async () => {
    const r = await run("1.1.0");
    expect(r.update.pushed).toBe(true);
    expect(r.request.action).toBe("opened");
    const [pr] = await open();
    expect(parseMeta(pr?.body)?.changes).toEqual([
      {
        image: "127.0.0.1:5000/acme/web",
        from: "1.0.0",
        to: "1.1.0",
        policy: "flux-system:web",
        files: ["clusters/production/web.yaml"],
      },
    ]);
  });

  it("the same selection again: no push, request unchanged, one forge request", async () => {
    const r = await run("1.1.0");
    expect(r.update.pushed).toBe(false);
    expect(r.request.action).toBe("unchanged");
    expect(r.forgeRequests).toBe(1);
  });

  it("a newer selection force-pushes the branch and updates the same request", async () => {
    const before = await open();
    const r = await run("1.2.0");
    expect(r.update.pushed).toBe(true);
    expect(r.request.action).toBe("updated");
    const after = await open();
    expect(after.map((p) => p.number)).toEqual(before.map((p) => p.number));
  });

  it("once the base has the version (someone merged or pushed it), the request is closed and the branch deleted", async () => {
    await pushFiles(repo, { "clusters/production/web.yaml": manifest("1.2.0") });
    const r = await run("1.2.0");
    expect(r.request).toEqual({ action: "closed", branch: "shipmate/update-main" });
    expect(await open()).toEqual([]);
    await expect(gitea.api("GET", `/repos/${repo.fullName}/branches/shipmate/update-main`)).rejects.toThrow(
      /404/,
    );
  });
});

describe("imageChangesFromUpdate", () => {
  it.each([
    [
      "whole reference with digest",
      [{ part: "image", old: "ghcr.io/a/b:1@sha256:aa", new: "ghcr.io/a/b:2@sha256:bb" }],
      { image: "ghcr.io/a/b", from: "1@sha256:aa", to: "2@sha256:bb" },
    ],
    [
      "tag and digest setters fold into one row",
      [
        { part: "tag", old: "1", new: "2" },
        { part: "digest", old: "sha256:aa", new: "sha256:bb" },
      ],
      { image: "ghcr.io/a/b", from: "1@sha256:aa", to: "2@sha256:bb" },
    ],
  ] as const)("%s", (_, changes, want) => {
    const files = [
      {
        path: "x.yaml",
        changes: changes.map((c, i) => ({
          setter: `ns:p:${c.part}`,
          policy: "ns:p",
          part: c.part,
          via: "marker" as const,
          old: c.old,
          new: c.new,
          line: i + 1,
          object: {},
        })),
      },
    ];
    expect(imageChangesFromUpdate(files, () => "ghcr.io/a/b")).toEqual([
      { ...want, policy: "ns:p", files: ["x.yaml"] },
    ]);
  });
});
