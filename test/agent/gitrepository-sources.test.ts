/**
 * The agent pulling GitRepository sources other than the fleet repository
 * (an application's own repository with its kustomize folder), against a
 * real kube-apiserver and real git remotes: branch, tag and semver refs,
 * status on the GitRepository objects, basic-auth Secrets, and the bad
 * cases (a missing source, a URL that does not resolve).
 */
import { execFileSync } from "node:child_process";
import { afterAll, describe, expect, it } from "vitest";
import { kubeSuite } from "../helpers/kube.ts";
import { type GitHttpServer, startGitHttpServer } from "../infra/git.ts";
import {
  type ApiJson,
  configMap,
  type FleetRepo,
  getObject,
  ksStatus,
  kustomization,
  namespace,
  patchObject,
} from "./helpers.ts";

let http: GitHttpServer;
const k = kubeSuite({
  name: "sources",
  alongside: async () => {
    http = await startGitHttpServer({ user: "reader", password: "app-repo-password-42" });
  },
});
afterAll(async () => {
  await http?.close();
});

const never = new AbortController().signal;

function tag(r: FleetRepo, name: string): void {
  execFileSync("git", ["tag", name], { cwd: r.work });
  execFileSync("git", ["push", "-q", r.bare, `refs/tags/${name}`], { cwd: r.work });
}

const gitRepository = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "GitRepository",
  metadata: { name, namespace: "shipmate-system" },
  spec: { interval: "1m", ...spec },
});
const cm = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;
const gitRepoPath = (name: string) =>
  `/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/gitrepositories/${name}`;

async function sourceStatus(
  name: string,
): Promise<{ obj: ApiJson | undefined; ready: ApiJson | undefined; stalled: ApiJson | undefined }> {
  const obj = await getObject(k.client, gitRepoPath(name));
  const conditions: { type: string }[] = obj?.status?.conditions ?? [];
  return {
    obj,
    ready: conditions.find((c) => c.type === "Ready"),
    stalled: conditions.find((c) => c.type === "Stalled"),
  };
}

/** An application repository with its own kustomize folder, like podinfo's. */
function appRepo(ns: string, data: Record<string, string>): { app: FleetRepo; commit: string } {
  const app = k.fleet();
  const commit = app.commit({
    "kustomize/kustomization.yaml": "resources:\n  - config.yaml\n",
    "kustomize/config.yaml": [configMap("settings", ns, data)],
    "README.md": "an app\n",
  });
  return { app, commit };
}

describe("Kustomizations reading another GitRepository", () => {
  it("renders from the app repository's branch; both objects report the app's revision", async () => {
    const { app, commit } = appRepo("s-branch", { v: "1" });
    const fleet = k.fleet();
    fleet.commit({
      "clusters/test/ns.yaml": [namespace("s-branch")],
      "clusters/test/app.yaml": [
        gitRepository("s-branch-app", { url: app.url, ref: { branch: "main" } }),
        kustomization("s-branch-app", {
          path: "./kustomize",
          sourceRef: { kind: "GitRepository", name: "s-branch-app" },
        }),
      ],
    });
    const agent = k.agent(fleet, "s-branch");
    const first = await agent.once();
    expect(first.reconciled.map((k) => [k.name, k.ready, k.revision])).toEqual([
      ["s-branch", true, first.revision],
      ["s-branch-app", true, `main@sha1:${commit}`],
    ]);
    expect((await getObject(k.client, cm("s-branch", "settings")))?.data).toEqual({ v: "1" });
    const src = await sourceStatus("s-branch-app");
    expect(src.ready).toMatchObject({ status: "True", reason: "Succeeded" });
    expect(src.obj?.status.artifact.revision).toBe(`main@sha1:${commit}`);
    expect(src.ready?.message).toBe(`stored artifact for revision 'main@sha1:${commit}'`);

    // A change in the app repository reaches the cluster when the source is asked to reconcile,
    // and a manifest that left the app repository is pruned.
    const next = app.commit({
      "kustomize/kustomization.yaml": "resources:\n  - other.yaml\n",
      "kustomize/config.yaml": null,
      "kustomize/other.yaml": [configMap("other", "s-branch", { v: "2" })],
    });
    await patchObject(k.client, gitRepoPath("s-branch-app"), {
      metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": "first" } },
    });
    await agent.pass(never);
    const after = await sourceStatus("s-branch-app");
    expect(after.obj?.status.artifact.revision).toBe(`main@sha1:${next}`);
    expect(after.obj?.status.lastHandledReconcileAt).toBe("first");
    expect((await ksStatus(k.client, "s-branch-app")).ks?.status.lastAppliedRevision).toBe(
      `main@sha1:${next}`,
    );
    expect(await getObject(k.client, cm("s-branch", "settings"))).toBeUndefined();
    expect((await getObject(k.client, cm("s-branch", "other")))?.data).toEqual({ v: "2" });

    // A steady source costs no write.
    const writes = k.client.counts.writes;
    const steady = await agent.pass(never);
    expect(steady.writes).toBe(0);
    expect(k.client.counts.writes).toBe(writes);
  }, 60_000);

  it.each([
    ["a tag", { tag: "v1.0.0" }, "v1.0.0"],
    ["the newest tag in a semver range", { semver: ">=1.0.0 <2.0.0" }, "v1.2.0"],
    ["a semver range Flux users write with x", { semver: "2.0.x" }, "v2.0.1"],
  ])(
    "checks out %s",
    async (_what, ref, expected) => {
      const app = k.fleet();
      const commits: Record<string, string> = {};
      for (const t of ["v1.0.0", "v1.2.0", "v2.0.1", "v3.0.0-rc.1"]) {
        commits[t] = app.commit({ "kustomize/config.yaml": [configMap("version", "s-tags", { tag: t })] });
        tag(app, t);
      }
      app.commit({ "kustomize/config.yaml": [configMap("version", "s-tags", { tag: "main" })] });
      const fleet = k.fleet();
      const root = `s-ref${Object.keys(ref)[0]}${expected.replaceAll(".", "")}`;
      fleet.commit({
        "clusters/test/ns.yaml": [namespace("s-tags")],
        "clusters/test/app.yaml": [
          gitRepository(`${root}-app`, { url: app.url, ref }),
          kustomization(`${root}-app`, {
            path: "./kustomize",
            sourceRef: { kind: "GitRepository", name: `${root}-app` },
            nameSuffix: `-${root}`,
          }),
        ],
      });
      const result = await k.agent(fleet, root).once();
      expect(result.reconciled.every((k) => k.ready)).toBe(true);
      const src = await sourceStatus(`${root}-app`);
      expect(src.obj?.status.artifact.revision).toBe(`${expected}@sha1:${commits[expected]}`);
      expect((await getObject(k.client, cm("s-tags", `version-${root}`)))?.data).toEqual({ tag: expected });
    },
    60_000,
  );

  it("reads a private repository with a Flux basic-auth Secret; the password is never reported", async () => {
    const url = http.createRepo("private-app", {
      "kustomize/config.yaml": `apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: private\n  namespace: s-auth\ndata:\n  v: "1"\n`,
    });
    const secret = (password: string) => ({
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "s-auth-git", namespace: "shipmate-system" },
      stringData: { username: "reader", password },
    });
    const fleet = k.fleet();
    fleet.commit({
      "clusters/test/ns.yaml": [namespace("s-auth")],
      "clusters/test/app.yaml": [
        gitRepository("s-auth-app", { url, ref: { branch: "main" }, secretRef: { name: "s-auth-git" } }),
        kustomization("s-auth-app", {
          path: "./kustomize",
          sourceRef: { kind: "GitRepository", name: "s-auth-app" },
        }),
      ],
    });
    // Wrong password first: the fetch fails, the Kustomization waits for its source.
    await k.client.raw({
      method: "POST",
      path: "/api/v1/namespaces/shipmate-system/secrets",
      body: secret("nope-wrong"),
    });
    const agent = k.agent(fleet, "s-auth");
    const failed = await agent.once();
    expect(failed.reconciled.find((k) => k.name === "s-auth-app")).toMatchObject({
      ready: false,
      reason: "ArtifactFailed",
    });
    const bad = await sourceStatus("s-auth-app");
    expect(bad.ready).toMatchObject({ status: "False", reason: "GitOperationFailed" });
    expect(bad.ready?.message).not.toContain("nope-wrong");
    expect(await getObject(k.client, cm("s-auth", "private"))).toBeUndefined();

    await k.client.raw({
      method: "PUT",
      path: "/api/v1/namespaces/shipmate-system/secrets/s-auth-git",
      body: secret(http.password),
    });
    const ok = await agent.pass(never, true);
    expect(ok.reconciled.find((k) => k.name === "s-auth-app")?.ready).toBe(true);
    expect((await getObject(k.client, cm("s-auth", "private")))?.data).toEqual({ v: "1" });
    expect(JSON.stringify((await sourceStatus("s-auth-app")).obj)).not.toContain(http.password);
  }, 60_000);
});

describe("dependsOn across sources", () => {
  it("an app Kustomization waits for an infrastructure one read from the fleet, then runs at its own revision", async () => {
    const { app, commit } = appRepo("s-dep", { v: "app" });
    const fleet = k.fleet();
    fleet.commit({
      "clusters/test/ks.yaml": [
        kustomization("s-dep-infra", { path: "./infra" }),
        gitRepository("s-dep-app", { url: app.url, ref: { branch: "main" } }),
        kustomization("s-dep-app", {
          path: "./kustomize",
          sourceRef: { kind: "GitRepository", name: "s-dep-app" },
          dependsOn: [{ name: "s-dep-infra" }],
        }),
      ],
      "infra/ns.yaml": [namespace("s-dep")],
    });
    const result = await k.agent(fleet, "s-dep").once();
    expect(result.reconciled.map((k) => [k.name, k.ready, k.revision])).toEqual([
      ["s-dep", true, result.revision],
      ["s-dep-infra", true, result.revision],
      ["s-dep-app", true, `main@sha1:${commit}`],
    ]);
    expect((await getObject(k.client, cm("s-dep", "settings")))?.data).toEqual({ v: "app" });
  }, 60_000);
});

describe("bad sources", () => {
  it("a Kustomization naming a GitRepository that does not exist is ArtifactFailed; the rest still syncs", async () => {
    const fleet = k.fleet();
    fleet.commit({
      "clusters/test/ns.yaml": [namespace("s-missing"), configMap("fine", "s-missing", { ok: "yes" })],
      "clusters/test/app.yaml": [
        kustomization("s-missing-app", {
          path: "./kustomize",
          sourceRef: { kind: "GitRepository", name: "nowhere" },
        }),
      ],
    });
    const result = await k.agent(fleet, "s-missing").once();
    expect(result.reconciled.map((k) => [k.name, k.ready, k.reason, k.message])).toEqual([
      ["s-missing", true, "ReconciliationSucceeded", expect.any(String)],
      ["s-missing-app", false, "ArtifactFailed", "Source 'GitRepository/shipmate-system/nowhere' not found"],
    ]);
    expect(await getObject(k.client, cm("s-missing", "fine"))).toBeDefined();
  }, 60_000);

  it("a source URL that does not resolve: the GitRepository says why, nothing of it is applied", async () => {
    const fleet = k.fleet();
    fleet.commit({
      "clusters/test/ns.yaml": [namespace("s-nourl")],
      "clusters/test/app.yaml": [
        gitRepository("s-nourl-app", {
          url: "http://127.0.0.1:9/nobody/nothing.git",
          ref: { branch: "main" },
        }),
        kustomization("s-nourl-app", {
          path: "./kustomize",
          sourceRef: { kind: "GitRepository", name: "s-nourl-app" },
        }),
      ],
    });
    const result = await k.agent(fleet, "s-nourl").once();
    const ks = result.reconciled.find((k) => k.name === "s-nourl-app");
    expect(ks).toMatchObject({ ready: false, reason: "ArtifactFailed" });
    expect(ks?.message).toMatch(
      /^Source 'GitRepository\/shipmate-system\/s-nourl-app' is not ready: git fetch/,
    );
    const src = await sourceStatus("s-nourl-app");
    expect(src.ready).toMatchObject({ status: "False", reason: "GitOperationFailed" });
    expect(src.ready?.message).toMatch(/127\.0\.0\.1:9/);
  }, 60_000);

  it("a semver range no tag satisfies, and a commit the agent cannot pin, are reported on the source", async () => {
    const { app } = appRepo("s-norange", { v: "1" });
    tag(app, "v1.0.0");
    const fleet = k.fleet();
    fleet.commit({
      "clusters/test/app.yaml": [
        gitRepository("s-norange-a", { url: app.url, ref: { semver: ">=5.0.0" } }),
        gitRepository("s-norange-b", { url: app.url, ref: { commit: "0123456789abcdef" } }),
      ],
    });
    await k.agent(fleet, "s-norange").once();
    expect((await sourceStatus("s-norange-a")).ready).toMatchObject({
      status: "False",
      message: expect.stringMatching(/matches semver range ">=5\.0\.0"/),
    });
    // A commit the agent cannot pin: a short SHA (Flux wants the full one), named in one line.
    expect((await sourceStatus("s-norange-b")).ready).toMatchObject({
      status: "False",
      message: expect.stringMatching(/ref\.commit "0123456789abcdef" is not a full commit SHA/),
    });
  }, 60_000);
});

describe("the fleet's own GitRepository", () => {
  it("a field on it the agent does not honour stops the pass: Stalled on the object, nothing new applied", async () => {
    const fleet = k.fleet();
    fleet.commit({
      "clusters/test/sync.yaml": [gitRepository("s-rootref", { url: fleet.url, ref: { branch: "main" } })],
      "clusters/test/cm.yaml": [configMap("first", "shipmate-system", { v: "1" })],
    });
    const agent = k.agent(fleet, "s-rootref");
    expect((await agent.once()).reconciled[0]?.ready).toBe(true);
    fleet.commit({
      "clusters/test/sync.yaml": [
        gitRepository("s-rootref", {
          url: fleet.url,
          ref: { branch: "main" },
          include: [{ repository: { name: "x" } }],
        }),
      ],
    });
    // The first pass applies the changed object from git (its status then says what is refused) ...
    await agent.once();
    fleet.commit({ "clusters/test/cm2.yaml": [configMap("second", "shipmate-system", { v: "2" })] });
    // ... and from then on nothing is applied while the refused field stands.
    const res = await agent.once();
    expect(res.sourceError).toMatch(/GitRepository\/shipmate-system\/s-rootref: .*spec\.include \(/);
    expect(res.reconciled[0]).toMatchObject({ ready: false, reason: "ArtifactFailed" });
    expect(await getObject(k.client, cm("shipmate-system", "second"))).toBeUndefined();
    const { ready, stalled } = await sourceStatus("s-rootref");
    expect(ready).toMatchObject({ status: "False", reason: "UnsupportedField" });
    expect(stalled).toMatchObject({ status: "True", reason: "UnsupportedField" });
  }, 120_000);
});
