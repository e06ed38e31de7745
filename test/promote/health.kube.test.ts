/**
 * The health gate reads the source environment's agent status from a real
 * kube-apiserver: Flux-style Kustomization objects (deploy/agent/crds.yaml)
 * whose Ready condition and lastAppliedRevision the agent writes. The fleet
 * repository is a local clone of a bare repository (real git push).
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { KubeClient } from "../../src/kube/client.ts";
import type { PromoteResult } from "../../src/promote/index.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor } from "../helpers/wait.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";

let kube: KubeCluster;
let work: string;
let checkout: string;
let head: string;
const KS = "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations";

const git = (cwd: string, ...args: string[]) => execFileSync("git", args, { cwd, encoding: "utf8" }).trim();

const FLEET = `apiVersion: shipmate.dev/v1alpha1
kind: Fleet
metadata:
  name: acme
spec:
  environments:
    - name: staging
      path: apps/staging
    - name: production
      path: apps/production
      promoteFrom: staging
      gates:
        health: true
`;

const deploy = (tag: string) =>
  `apiVersion: apps/v1\nkind: Deployment\nmetadata:\n  name: web\nspec:\n  template:\n    spec:\n      containers:\n        - name: web\n          image: ghcr.io/acme/web:${tag}\n`;

async function kustomization(name: string, ready: "True" | "False", revision: string, message = "Applied") {
  const body = {
    apiVersion: "kustomize.toolkit.fluxcd.io/v1",
    kind: "Kustomization",
    metadata: { name, namespace: "flux-system" },
    spec: {
      interval: "1m",
      path: "./apps/staging",
      prune: true,
      sourceRef: { kind: "GitRepository", name: "fleet" },
    },
  };
  const status = {
    conditions: [
      {
        type: "Ready",
        status: ready,
        reason: ready === "True" ? "ReconciliationSucceeded" : "HealthCheckFailed",
        message,
        lastTransitionTime: new Date().toISOString(),
      },
    ],
    lastAppliedRevision: revision,
  };
  // Created once (a 409 later is fine); the status goes through its subresource, as the agent writes it.
  const client = new KubeClient(kube.kubeConfig());
  try {
    await client.raw({ method: "POST", path: KS, body });
    const res = await client.raw({
      method: "PATCH",
      path: `${KS}/${name}/status`,
      body: { status },
      contentType: "application/merge-patch+json",
    });
    if (res.code !== 200) throw new Error(`status patch ${name}: ${res.code} ${JSON.stringify(res.body)}`);
  } finally {
    client.close();
  }
}

beforeAll(async () => {
  kube = await startKube({ name: "promote-health" });
  // Raw JSON: client-node's typed serializer would drop `x-kubernetes-preserve-unknown-fields` from the CRDs.
  const client = new KubeClient(kube.kubeConfig());
  const post = async (path: string, body: unknown) => {
    const res = await client.raw({ method: "POST", path, body });
    if (res.code !== 201) throw new Error(`POST ${path}: ${res.code} ${JSON.stringify(res.body)}`);
  };
  try {
    for (const doc of parseAllDocuments(
      readFileSync(new URL("../../deploy/agent/crds.yaml", import.meta.url), "utf8"),
    )) {
      const obj = doc.toJS();
      if (obj) await post("/apis/apiextensions.k8s.io/v1/customresourcedefinitions", obj);
    }
    await post("/api/v1/namespaces", {
      apiVersion: "v1",
      kind: "Namespace",
      metadata: { name: "flux-system" },
    });
    // Wait until the CRD serves.
    await waitFor(async () => (await client.raw({ method: "GET", path: KS })).code === 200, {
      ms: 30_000,
      every: 200,
      what: "the Kustomization CRD to be served",
    });
  } finally {
    client.close();
  }
  work = mkdtempSync(join(tmpdir(), "shipmate-promote-health-"));
  const bare = join(work, "fleet.git");
  checkout = join(work, "fleet");
  execFileSync("git", ["init", "-q", "--bare", "-b", "main", bare]);
  execFileSync("git", ["clone", "-q", bare, checkout]);
  git(checkout, "config", "user.name", "t");
  git(checkout, "config", "user.email", "t@example.test");
  git(checkout, "checkout", "-q", "-b", "main");
  const files: Record<string, string> = {
    "shipmate.yaml": FLEET,
    "apps/staging/web/deploy.yaml": deploy("2.0.0"),
    "apps/production/web/deploy.yaml": deploy("1.0.0"),
  };
  for (const [p, c] of Object.entries(files)) {
    mkdirSync(dirname(join(checkout, p)), { recursive: true });
    writeFileSync(join(checkout, p), c);
  }
  git(checkout, "add", "-A");
  git(checkout, "commit", "-q", "-m", "seed");
  git(checkout, "push", "-q", "origin", "main");
  head = git(checkout, "rev-parse", "HEAD");
}, 180_000);

afterAll(async () => {
  await kube?.stop();
  if (work) rmSync(work, { recursive: true, force: true });
});

async function promote(): Promise<{ code: number; result: PromoteResult }> {
  const r = await runCli(
    [
      "promote",
      "--from",
      "staging",
      "--to",
      "production",
      "--repo",
      checkout,
      "--kubeconfig",
      kube.kubeconfig,
      "--json",
    ],
    { env: { KUBECONFIG: "" } },
  );
  try {
    return { code: r.code, result: JSON.parse(r.stdout) as PromoteResult };
  } catch {
    throw new Error(`no JSON (exit ${r.code}): ${r.stderr}`);
  }
}

describe("health gate against a real kube-apiserver", () => {
  it("staging not Ready: blocked, names the Kustomization, nothing pushed", async () => {
    await kustomization("apps", "False", `main@sha1:${head}`, "Deployment/web: 0/2 replicas available");
    const { code, result } = await promote();
    expect(code).toBe(1);
    expect(result.status).toBe("blocked");
    expect(result.gates[0]?.message).toBe(
      "staging is not healthy: flux-system/apps (Deployment/web: 0/2 replicas available)",
    );
    expect(git(checkout, "ls-remote", "origin", "main").split("\t")[0]).toBe(head);
  });

  it("Ready but at an older revision: waits", async () => {
    await kustomization("apps", "True", `main@sha1:${"0".repeat(40)}`);
    const { code, result } = await promote();
    expect(code).toBe(0);
    expect(result.status).toBe("waiting");
    expect(result.gates[0]?.message).toMatch(/^staging has not applied [0-9a-f]{12} yet/);
  });

  it("Ready at the source revision: the promotion is pushed", async () => {
    await kustomization("apps", "True", `main@sha1:${head}`);
    const { code, result } = await promote();
    expect(code).toBe(0);
    expect(result.gates).toEqual([
      { gate: "health", state: "passed", message: `staging healthy at ${head.slice(0, 12)}` },
    ]);
    expect(result.status).toBe("pushed");
    git(checkout, "fetch", "-q", "origin");
    expect(git(checkout, "show", "origin/main:apps/production/web/deploy.yaml")).toBe(
      deploy("2.0.0").trimEnd(),
    );
  });
});
