/**
 * Kinds nothing reconciles, and a failing fleet that stays quiet: against a
 * real kube-apiserver, through the CLI's `agent --once --json` as a user
 * (or a cron job) runs it, every run a fresh process state.
 */
import { describe, expect, it, vi } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import {
  type ApiJson,
  configMap,
  type FleetRepo,
  getObject,
  ksStatus,
  kustomization,
  namespace,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

const k = kubeSuite({ name: "quiet" });

/** One `shipmate agent --once --json` run: a new process state each time, as a cron job has. */
async function once(repo: FleetRepo, name: string): Promise<ApiJson> {
  const res = await runCli([
    "agent",
    "--once",
    "--json",
    "--repo",
    repo.url,
    "--path",
    "clusters/test",
    "--name",
    name,
    "--namespace",
    "shipmate-system",
    "--kubeconfig",
    k.kube.kubeconfig,
    "--workdir",
    `${repo.root}/agent-${Math.random().toString(36).slice(2)}`,
    "--no-leader-elect",
  ]);
  if (!res.stdout.trim()) throw new Error(`agent --once printed nothing: ${res.stderr}`);
  return JSON.parse(res.stdout) as ApiJson;
}

async function eventsOf(name: string): Promise<ApiJson[]> {
  const list = await getObject(
    k.client,
    `/api/v1/namespaces/shipmate-system/events?fieldSelector=involvedObject.name%3D${name}`,
  );
  return list?.items ?? [];
}

describe("a Flux kind nothing reconciles is Stalled UnsupportedKind", () => {
  it("names the kind and applies nothing of that Kustomization; other Kustomizations go on", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-kind"),
        kustomization("t-kind-helm", { path: "./apps/helm" }),
        kustomization("t-kind-plain", { path: "./apps/plain" }),
      ],
      "apps/helm/release.yaml": [
        configMap("before-helm", "t-kind", { v: "1" }),
        // A kind of a Flux group that no shipmate reconciler serves (Flux adds kinds over time).
        {
          apiVersion: "future.toolkit.fluxcd.io/v1",
          kind: "Widget",
          metadata: { name: "on-call", namespace: "t-kind" },
          spec: { size: 1 },
        },
      ],
      "apps/plain/cm.yaml": [configMap("plain", "t-kind", { v: "1" })],
    });
    const first = await once(repo, "t-kind");
    const helm = await ksStatus(k.client, "t-kind-helm");
    expect(helm.ready?.status).toBe("False");
    expect(helm.ready?.reason).toBe("UnsupportedKind");
    expect(helm.ready?.message).toContain("Widget (future.toolkit.fluxcd.io/v1) t-kind/on-call");
    expect(helm.ready?.message).not.toContain("is its CRD installed");
    const stalled = helm.ks?.status.conditions.find((c: { type: string }) => c.type === "Stalled");
    expect(stalled).toMatchObject({ status: "True", reason: "UnsupportedKind" });
    // Fail closed: nothing of it was applied, not even the ConfigMap next to the Alert.
    expect(await getObject(k.client, "/api/v1/namespaces/t-kind/configmaps/before-helm")).toBeUndefined();
    expect(await getObject(k.client, "/api/v1/namespaces/t-kind/configmaps/plain")).toBeDefined();
    expect(first.reconciled.find((k: ApiJson) => k.name === "t-kind-plain")?.ready).toBe(true);

    // Stalled: a second run neither retries into a new message nor writes anything.
    const second = await once(repo, "t-kind");
    expect(second.writes).toBe(0);
    expect((await ksStatus(k.client, "t-kind-helm")).ready?.message).toBe(helm.ready?.message);
  });

  it("a Flux kind at a version the cluster does not serve names the served versions", async () => {
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [namespace("t-ver"), kustomization("t-ver-old", { path: "./apps" })],
      "apps/old.yaml": [
        {
          apiVersion: "kustomize.toolkit.fluxcd.io/v1beta2",
          kind: "Kustomization",
          metadata: { name: "legacy", namespace: "t-ver" },
          spec: { interval: "1m", prune: true, sourceRef: { kind: "GitRepository", name: "x" } },
        },
      ],
    });
    await once(repo, "t-ver");
    const s = await ksStatus(k.client, "t-ver-old");
    expect(s.ready?.reason).toBe("UnsupportedKind");
    expect(s.ready?.message).toBe(
      "Kustomization is not served as kustomize.toolkit.fluxcd.io/v1beta2 (served: v1)",
    );
  });
});

describe("quiet when steady, even when failing", () => {
  it("a second run over an unchanged, partly failing fleet writes nothing: no status, no event, no NewArtifact", async () => {
    const apps = k.fleet();
    const appsCommit = apps.commit({ "deploy/cm.yaml": [configMap("from-apps", "t-quiet", { v: "1" })] });
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-quiet"),
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "GitRepository",
          metadata: { name: "apps", namespace: "shipmate-system" },
          spec: { interval: "1m", url: apps.url, ref: { branch: "main" } },
        },
        kustomization("t-quiet-ok", {
          path: "./deploy",
          sourceRef: { kind: "GitRepository", name: "apps" },
        }),
        // Fails on every run: a kustomization.yaml naming a file that is not there.
        kustomization("t-quiet-broken", { path: "./broken" }),
      ],
      "broken/kustomization.yaml":
        "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources: [missing.yaml]\n",
    });
    const first = await once(repo, "t-quiet");
    expect(first.reconciled.find((k: ApiJson) => k.name === "t-quiet-ok")?.ready).toBe(true);
    const broken = first.reconciled.find((k: ApiJson) => k.name === "t-quiet-broken");
    expect(broken?.ready).toBe(false);
    expect(broken?.reason).toBe("BuildFailed");
    const warnings = (await eventsOf("t-quiet-broken")).filter((e) => e.type === "Warning");
    expect(warnings).toHaveLength(1);
    const newArtifact = (await eventsOf("apps")).filter((e) => e.reason === "NewArtifact");
    expect(newArtifact.map((e) => e.message)).toEqual([
      `stored artifact for revision 'main@sha1:${appsCommit}'`,
    ]);

    const second = await once(repo, "t-quiet");
    expect(second.writes).toBe(0);
    expect((await eventsOf("t-quiet-broken")).filter((e) => e.type === "Warning")).toEqual(warnings);
    expect((await eventsOf("apps")).filter((e) => e.reason === "NewArtifact")).toHaveLength(1);

    // A new revision is news again.
    const next = apps.commit({ "deploy/cm.yaml": [configMap("from-apps", "t-quiet", { v: "2" })] });
    const third = await once(repo, "t-quiet");
    expect(third.writes).toBeGreaterThan(0);
    const messages = (await eventsOf("apps")).filter((e) => e.reason === "NewArtifact").map((e) => e.message);
    expect(messages).toContain(`stored artifact for revision 'main@sha1:${next}'`);
    expect(messages).toHaveLength(2);
  });
});
