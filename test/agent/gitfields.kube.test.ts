/**
 * GitRepository `include`, `sparseCheckout` and `verify` end to end: the
 * agent against a real kube-apiserver syncs Kustomizations from
 * GitRepositories using them, writes source-controller's status (the
 * artifact, `includedArtifacts`, `observedSparseCheckout`, the
 * `SourceVerified` condition), rebuilds an artifact when an included
 * repository changes (as source-controller watches it), and applies nothing
 * from a revision whose signature does not verify.
 */
import { rmSync } from "node:fs";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { git, seedBare, tempDir, writeFiles } from "../infra/git.ts";
import { type GpgSigner, gpgSigner } from "../infra/gpg.ts";
import {
  type ApiJson,
  configMap,
  FleetRepo,
  getObject,
  ksStatus,
  kustomization,
  makeAgent,
  namespace,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

let fleet: FleetRepo;
let signer: GpgSigner;
const roots: string[] = [];

const k = kubeSuite({ name: "gitfields" });
beforeAll(() => {
  fleet = k.fleet();
  signer = gpgSigner("Release Bot", "release@example.test");
});
afterAll(() => {
  signer?.remove();
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
const never = new AbortController().signal;

const yaml = (...docs: object[]) => docs.map((d) => JSON.stringify(d)).join("\n---\n");

/** A bare repository seeded with `files`, and a work tree that pushes to it. */
function remote(files: Record<string, string>) {
  const root = tempDir("shipmate-gitfields-");
  roots.push(root);
  const bare = `${root}/r.git`;
  seedBare(bare, files);
  const work = `${root}/work`;
  git(root, ["clone", "--quiet", bare, work]);
  return {
    url: `file://${bare}`,
    commit(change: Record<string, string>, args: string[] = [], env: NodeJS.ProcessEnv = {}): string {
      writeFiles(work, change);
      git(work, ["add", "--all"]);
      git(work, ["commit", "--quiet", ...args, "-m", "change"], env);
      git(work, ["push", "--quiet", "origin", "HEAD:refs/heads/main"]);
      return git(work, ["rev-parse", "HEAD"]).trim();
    },
    head: () => git(bare, ["rev-parse", "refs/heads/main"]).trim(),
  };
}

const gitRepo = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "GitRepository",
  metadata: { name, namespace: "shipmate-system" },
  spec: { interval: "1h", ref: { branch: "main" }, ...spec },
});

async function source(name: string): Promise<ApiJson> {
  const obj = await getObject(
    k.client,
    `/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/gitrepositories/${name}`,
  );
  if (!obj) throw new Error(`GitRepository ${name} not found`);
  return obj;
}
const cond = (obj: ApiJson, type: string) =>
  (obj.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
const cm = (name: string) => getObject(k.client, `/api/v1/namespaces/t-gf/configmaps/${name}`);

describe("GitRepository include, sparseCheckout and verify, synced by the agent", () => {
  let agent: Agent;

  it("applies only the sparse dirs plus the included tree; an unverified revision applies nothing", async () => {
    const lib = remote({
      "manifests/lib.yaml": yaml(configMap("lib", "t-gf", { v: "1" })),
      "README.md": "lib\n",
    });
    const app = remote({
      "deploy/ns.yaml": yaml(namespace("t-gf")),
      "deploy/app.yaml": yaml(configMap("app", "t-gf", { v: "1" })),
      // Outside the sparse checkout: a render of `./` must not see it.
      "other/other.yaml": yaml(configMap("other", "t-gf", { v: "1" })),
      "root.yaml": yaml(configMap("root", "t-gf", { v: "1" })),
      "signed-only/signed.yaml": yaml(configMap("signed", "t-gf", { v: "1" })),
    });
    fleet.commit({
      "clusters/test/sources.yaml": [
        gitRepo("t-gf-lib", { url: lib.url, interval: "1s" }),
        gitRepo("t-gf-app", {
          url: app.url,
          sparseCheckout: ["deploy"],
          include: [{ repository: { name: "t-gf-lib" }, fromPath: "manifests", toPath: "deploy/lib" }],
        }),
        gitRepo("t-gf-signed", { url: app.url, verify: { mode: "HEAD", secretRef: { name: "t-gf-pgp" } } }),
        // Including each other: refused, never waited for.
        gitRepo("t-gf-loop-a", { url: lib.url, include: [{ repository: { name: "t-gf-loop-b" } }] }),
        gitRepo("t-gf-loop-b", { url: lib.url, include: [{ repository: { name: "t-gf-loop-a" } }] }),
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "t-gf-pgp", namespace: "shipmate-system" },
          stringData: { "release.asc": signer.publicKey },
        },
      ],
      "clusters/test/apps.yaml": [
        kustomization("t-gf-app", { path: "./", sourceRef: { kind: "GitRepository", name: "t-gf-app" } }),
        kustomization("t-gf-signed", {
          path: "./signed-only",
          sourceRef: { kind: "GitRepository", name: "t-gf-signed" },
        }),
      ],
    });
    agent = makeAgent(k.kube, fleet, { name: "t-gf" });
    await agent.once();

    // Sparse: only deploy/ (and what the include put there) was rendered.
    expect((await ksStatus(k.client, "t-gf-app")).ready).toMatchObject({ status: "True" });
    expect((await cm("app"))?.data).toEqual({ v: "1" });
    expect((await cm("lib"))?.data).toEqual({ v: "1" });
    expect(await cm("other")).toBeUndefined();
    expect(await cm("root")).toBeUndefined();

    const a = await source("t-gf-app");
    expect(cond(a, "Ready")).toMatchObject({ status: "True", reason: "Succeeded" });
    expect(a.status.artifact.revision).toBe(`main@sha1:${app.head()}`);
    expect(a.status.observedSparseCheckout).toEqual(["deploy"]);
    expect(a.status.observedInclude).toEqual([
      { repository: { name: "t-gf-lib" }, fromPath: "manifests", toPath: "deploy/lib" },
    ]);
    const l = await source("t-gf-lib");
    expect(a.status.includedArtifacts).toEqual([l.status.artifact]);

    // Verify fails closed: an unsigned HEAD is Ready=False, SourceVerified=False, nothing applied.
    const s = await source("t-gf-signed");
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "InvalidCommitSignature" });
    expect(cond(s, "SourceVerified")).toMatchObject({
      status: "False",
      reason: "InvalidCommitSignature",
      message: `signature verification of commit '${app.head()}' failed: the commit is not signed`,
    });
    expect(s.status.artifact ?? undefined).toBeUndefined();
    expect((await ksStatus(k.client, "t-gf-signed")).ready).toMatchObject({ status: "False" });
    expect(await cm("signed")).toBeUndefined();

    for (const name of ["t-gf-loop-a", "t-gf-loop-b"]) {
      const loop = await source(name);
      expect(cond(loop, "Ready")).toMatchObject({ status: "False", reason: "NoArtifact" });
      expect(cond(loop, "IncludeUnavailable")).toMatchObject({ status: "True", reason: "NoArtifact" });
      expect(cond(loop, "Ready").message).toContain("includes itself");
    }

    // Steady, though partly failing: a second pass writes nothing.
    expect((await agent.pass(never)).writes).toBe(0);

    // The included repository changes: the including artifact is rebuilt at the same revision.
    lib.commit({ "manifests/lib.yaml": yaml(configMap("lib", "t-gf", { v: "2" })) });
    await new Promise((r) => setTimeout(r, 1100));
    await agent.pass(never);
    const a2 = await source("t-gf-app");
    expect(a2.status.artifact.revision).toBe(a.status.artifact.revision);
    expect(a2.status.artifact.digest).not.toBe(a.status.artifact.digest);
    expect(a2.status.includedArtifacts[0].revision).toBe(`main@sha1:${lib.head()}`);

    // A signed commit verifies: SourceVerified=True as Flux words it, and its objects are applied.
    const signed = app.commit(
      { "signed-only/signed.yaml": yaml(configMap("signed", "t-gf", { v: "2" })) },
      ["-S", `--gpg-sign=${signer.email}`],
      signer.env,
    );
    await agent.pass(never, true);
    const s2 = await source("t-gf-signed");
    expect(cond(s2, "Ready")).toMatchObject({ status: "True" });
    expect(cond(s2, "SourceVerified")).toMatchObject({
      status: "True",
      reason: "Succeeded",
      message: `verified signature of\n\t- commit '${signed}' with key '${signer.keyId}'`,
    });
    expect(s2.status.sourceVerificationMode).toBe("HEAD");
    expect((await cm("signed"))?.data).toEqual({ v: "2" });
    // The forced pass re-applied the app from the composed artifact: lib's new content is there.
    expect((await cm("lib"))?.data).toEqual({ v: "2" });
  });

  it("the fleet's own GitRepository: verify is honoured on the agent's --repo fetch, failing closed", async () => {
    const repo = FleetRepo.create();
    roots.push(repo.root);
    repo.commit({
      "clusters/test/cm.yaml": [namespace("t-gfroot"), configMap("fleet", "t-gfroot", { v: "1" })],
    });
    // As bootstrap leaves it: the object exists before the first sync, with its verification Secret.
    const api = "/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/gitrepositories";
    for (const [path, body] of [
      [
        "/api/v1/namespaces/shipmate-system/secrets",
        {
          apiVersion: "v1",
          kind: "Secret",
          metadata: { name: "t-gfroot-pgp", namespace: "shipmate-system" },
          stringData: { "release.asc": signer.publicKey },
        },
      ],
      [
        api,
        {
          ...gitRepo("t-gfroot", {
            url: repo.url,
            verify: { mode: "HEAD", secretRef: { name: "t-gfroot-pgp" } },
          }),
        },
      ],
    ] as const) {
      const res = await k.client.raw({ method: "POST", path, body });
      expect(res.code).toBe(201);
    }
    const rootAgent = makeAgent(k.kube, repo, { name: "t-gfroot" });
    const failed = await rootAgent.pass(never, true);
    expect(failed.sourceError).toContain("signature verification of commit");
    expect(await getObject(k.client, "/api/v1/namespaces/t-gfroot/configmaps/fleet")).toBeUndefined();
    const s = await source("t-gfroot");
    expect(cond(s, "Ready")).toMatchObject({ status: "False", reason: "InvalidCommitSignature" });
    expect(cond(s, "SourceVerified")).toMatchObject({ status: "False", reason: "InvalidCommitSignature" });

    git(
      repo.work,
      ["commit", "--quiet", "--allow-empty", "-S", `--gpg-sign=${signer.email}`, "-m", "signed"],
      {
        ...signer.env,
        GIT_AUTHOR_NAME: "t",
        GIT_AUTHOR_EMAIL: "t@example.test",
      },
    );
    git(repo.work, ["push", "--quiet", repo.bare, "HEAD:refs/heads/main"]);
    const signed = git(repo.work, ["rev-parse", "HEAD"]).trim();
    const ok = await rootAgent.pass(never, true);
    expect(ok.sourceError).toBeUndefined();
    expect((await getObject(k.client, "/api/v1/namespaces/t-gfroot/configmaps/fleet"))?.data).toEqual({
      v: "1",
    });
    const s2 = await source("t-gfroot");
    expect(cond(s2, "Ready")).toMatchObject({ status: "True" });
    expect(cond(s2, "SourceVerified")).toMatchObject({
      status: "True",
      message: `verified signature of\n\t- commit '${signed}' with key '${signer.keyId}'`,
    });
    expect(s2.status.sourceVerificationMode).toBe("HEAD");
    expect(s2.status.artifact.revision).toBe(`main@sha1:${signed}`);
  });
});
