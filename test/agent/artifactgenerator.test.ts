/**
 * Flux 2.7's layout (the one fluxcd/flux2-kustomize-helm-example uses): an
 * ArtifactGenerator in the cluster root splits the fleet repository into
 * ExternalArtifacts, and the infrastructure and apps Kustomizations render
 * from those. A fixture fleet of our own in that layout, synced by the
 * agent's `--once` against a real kube-apiserver.
 */
import { beforeAll, describe, expect, it, vi } from "vitest";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type ApiJson, configMap, FleetRepo, getObject, namespace } from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

let repo: FleetRepo;

const k = kubeSuite({ name: "artgen" });
beforeAll(() => {
  repo = k.fleet();
});

const ks = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "kustomize.toolkit.fluxcd.io/v1",
  kind: "Kustomization",
  metadata: { name, namespace: "flux-system" },
  spec: { interval: "1h", retryInterval: "2m", timeout: "5m", prune: true, ...spec },
});

function fixture(url: string): Record<string, string | object[]> {
  return {
    "clusters/test/flux-system/gotk-sync.yaml": [
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "GitRepository",
        metadata: { name: "flux-system", namespace: "flux-system" },
        spec: { interval: "1m", ref: { branch: "main" }, url },
      },
      ks("flux-system", {
        interval: "10m",
        path: "./clusters/test",
        sourceRef: { kind: "GitRepository", name: "flux-system" },
      }),
    ],
    "clusters/test/flux-system/kustomization.yaml":
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - gotk-sync.yaml\n",
    "clusters/test/artifacts.yaml": [
      {
        apiVersion: "source.extensions.fluxcd.io/v1beta1",
        kind: "ArtifactGenerator",
        metadata: { name: "flux-system", namespace: "flux-system" },
        spec: {
          sources: [{ alias: "fleet", kind: "GitRepository", name: "flux-system" }],
          artifacts: [
            {
              name: "infrastructure",
              originRevision: "@fleet",
              copy: [{ from: "@fleet/infrastructure/**", to: "@artifact/", exclude: ["*.md"] }],
            },
            {
              name: "apps",
              originRevision: "@fleet",
              copy: [
                { from: "@fleet/apps/base/**", to: "@artifact/base/" },
                { from: "@fleet/apps/test/**", to: "@artifact/test/" },
              ],
            },
          ],
        },
      },
    ],
    "clusters/test/infrastructure.yaml": [
      ks("infra-controllers", {
        sourceRef: { kind: "ExternalArtifact", name: "infrastructure" },
        path: "./controllers",
        wait: true,
      }),
      ks("infra-configs", {
        dependsOn: [{ name: "infra-controllers" }],
        sourceRef: { kind: "ExternalArtifact", name: "infrastructure" },
        path: "./configs",
        patches: [
          {
            patch: "- op: replace\n  path: /data/tier\n  value: test\n",
            target: { kind: "ConfigMap", name: "issuer" },
          },
        ],
      }),
    ],
    "clusters/test/apps.yaml": [
      ks("apps", {
        dependsOn: [{ name: "infra-configs" }],
        sourceRef: { kind: "ExternalArtifact", name: "apps" },
        path: "./test",
        wait: true,
      }),
    ],
    "infrastructure/controllers/controllers.yaml": [
      namespace("ag-infra"),
      configMap("controller-settings", "ag-infra", { replicas: "2" }),
    ],
    "infrastructure/controllers/NOTES.md": "not a manifest; excluded from the artifact\n",
    "infrastructure/configs/issuer.yaml": [configMap("issuer", "ag-infra", { tier: "production" })],
    // Left out of the GitRepository's artifact, so out of the ExternalArtifact built from it too.
    "infrastructure/configs/.sourceignore": "# drafts are not applied\ndraft-*.yaml\n",
    "infrastructure/configs/draft-issuer.yaml": [configMap("draft", "ag-infra", { tier: "draft" })],
    ".sourceignore": "# only the manifest directories\n/*\n!/apps/\n!/clusters/\n!/infrastructure/\n",
    "scripts/validate.yaml": "this: [is not, a manifest\n",
    "apps/base/demo/kustomization.yaml":
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - namespace.yaml\n  - settings.yaml\n",
    "apps/base/demo/namespace.yaml": [namespace("ag-demo")],
    "apps/base/demo/settings.yaml": [configMap("demo", "ag-demo", { color: "blue" })],
    "apps/test/kustomization.yaml":
      "apiVersion: kustomize.config.k8s.io/v1beta1\nkind: Kustomization\nresources:\n  - ../base/demo\npatches:\n  - path: settings.yaml\n",
    "apps/test/settings.yaml": [configMap("demo", "ag-demo", { color: "green" })],
  };
}

async function once(): Promise<ApiJson> {
  const res = await runCli([
    "agent",
    "--once",
    "--json",
    "--repo",
    repo.url,
    "--path",
    "clusters/test",
    "--name",
    "flux-system",
    "--namespace",
    "flux-system",
    "--kubeconfig",
    k.kube.kubeconfig,
    "--workdir",
    `${repo.root}/agent-${Math.random().toString(36).slice(2)}`,
    "--no-leader-elect",
  ]);
  if (!res.stdout.trim()) throw new Error(`agent --once printed nothing: ${res.stderr}`);
  return JSON.parse(res.stdout) as ApiJson;
}

const ea = (name: string) =>
  getObject(k.client, `/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/externalartifacts/${name}`);
const ready = (obj: ApiJson | undefined) =>
  (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === "Ready");

describe("ArtifactGenerator and ExternalArtifact, in the Flux 2.7 example's layout", () => {
  it("syncs every object, a second run writes nothing, and only changed inputs change an artifact", async () => {
    const first = repo.commit(fixture(`file://${repo.bare}`));
    const pass1 = await once();
    const names = (pass1.reconciled as ApiJson[]).map((k) => [k.name, k.ready, k.reason]);
    expect(names).toEqual(
      expect.arrayContaining([
        ["flux-system", true, "ReconciliationSucceeded"],
        ["infra-controllers", true, "ReconciliationSucceeded"],
        ["infra-configs", true, "ReconciliationSucceeded"],
        ["apps", true, "ReconciliationSucceeded"],
      ]),
    );

    const gen = await getObject(
      k.client,
      "/apis/source.extensions.fluxcd.io/v1beta1/namespaces/flux-system/artifactgenerators/flux-system",
    );
    expect(ready(gen)).toMatchObject({
      status: "True",
      reason: "Succeeded",
      message: "reconciliation succeeded, generated 2 artifact(s)",
    });
    expect(gen?.status.inventory.map((r: ApiJson) => r.name)).toEqual(["infrastructure", "apps"]);
    const infra = await ea("infrastructure");
    expect(ready(infra)).toMatchObject({ status: "True", reason: "Succeeded" });
    expect(infra?.spec.sourceRef).toEqual({
      apiVersion: "source.extensions.fluxcd.io/v1beta1",
      kind: "ArtifactGenerator",
      name: "flux-system",
      namespace: "flux-system",
    });
    expect(infra?.metadata.labels["source.extensions.fluxcd.io/generator"]).toBe(gen?.metadata.uid);
    const art = infra?.status.artifact;
    expect(art.revision).toBe(`latest@${art.digest}`);
    expect(art.digest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(art.metadata).toEqual({ "org.opencontainers.image.revision": `main@sha1:${first}` });

    // Every object applied, from the artifacts (the test overlay patched the base, the Kustomization patched infra).
    expect(
      (await getObject(k.client, "/api/v1/namespaces/ag-infra/configmaps/controller-settings"))?.data,
    ).toEqual({
      replicas: "2",
    });
    expect((await getObject(k.client, "/api/v1/namespaces/ag-infra/configmaps/issuer"))?.data).toEqual({
      tier: "test",
    });
    expect((await getObject(k.client, "/api/v1/namespaces/ag-demo/configmaps/demo"))?.data).toEqual({
      color: "green",
    });
    expect(await getObject(k.client, "/api/v1/namespaces/ag-infra/configmaps/draft")).toBeUndefined();
    const appsKs = await getObject(
      k.client,
      "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/flux-system/kustomizations/apps",
    );
    expect(appsKs?.status.lastAppliedRevision).toBe((await ea("apps"))?.status.artifact.revision);
    const unsupported = (pass1.reconciled as ApiJson[]).filter((k) =>
      String(k.reason).startsWith("Unsupported"),
    );
    expect(unsupported).toEqual([]);

    // A restarted agent over an unchanged fleet: nothing to write.
    const pass2 = await once();
    expect(pass2.writes).toBe(0);

    // Only apps/ changes: the infrastructure artifact keeps its revision (and its record), apps gets a new one.
    const appsBefore = (await ea("apps"))?.status.artifact;
    repo.commit({ "apps/test/settings.yaml": [configMap("demo", "ag-demo", { color: "red" })] });
    await once();
    expect((await ea("infrastructure"))?.status.artifact).toEqual(art);
    expect((await ea("infrastructure"))?.status.artifact.lastUpdateTime).toBe(art.lastUpdateTime);
    expect((await ea("infrastructure"))?.status.artifact.revision).toBe(art.revision);
    const appsAfter = (await ea("apps"))?.status.artifact;
    expect(appsAfter.revision).not.toBe(appsBefore.revision);
    expect((await getObject(k.client, "/api/v1/namespaces/ag-demo/configmaps/demo"))?.data).toEqual({
      color: "red",
    });

    // An ExternalArtifact deleted behind the generator's back is made again, with the same revision.
    await k.client.raw({
      method: "DELETE",
      path: "/apis/source.toolkit.fluxcd.io/v1/namespaces/flux-system/externalartifacts/infrastructure",
    });
    await once();
    expect((await ea("infrastructure"))?.status.artifact.revision).toBe(art.revision);
  });

  it("GitRepository spec.ignore and .sourceignore leave files out of what a Kustomization renders", async () => {
    const extra = FleetRepo.create();
    try {
      extra.commit({
        "deploy/app.yaml": [configMap("app", "ag-ignore", { v: "1" })],
        "deploy/local.yaml": [configMap("local", "ag-ignore", { v: "1" })],
        "deploy/.sourceignore": "draft-*.yaml\n",
        "deploy/draft-1.yaml": [configMap("draft", "ag-ignore", { v: "1" })],
        "deploy/extra/kept.yaml": [configMap("kept", "ag-ignore", { v: "1" })],
      });
      const fleet = FleetRepo.create();
      try {
        fleet.commit({
          "clusters/test/all.yaml": [
            namespace("ag-ignore"),
            {
              apiVersion: "source.toolkit.fluxcd.io/v1",
              kind: "GitRepository",
              metadata: { name: "extra", namespace: "flux-system" },
              spec: {
                interval: "1m",
                url: extra.url,
                ref: { branch: "main" },
                ignore: "/deploy/local.yaml\n",
              },
            },
            ks("ignore-extra", { path: "./deploy", sourceRef: { kind: "GitRepository", name: "extra" } }),
          ],
        });
        const res = await runCli([
          "agent",
          "--once",
          "--json",
          "--repo",
          fleet.url,
          "--path",
          "clusters/test",
          "--name",
          "ignore-root",
          "--namespace",
          "flux-system",
          "--kubeconfig",
          k.kube.kubeconfig,
          "--workdir",
          `${fleet.root}/agent`,
          "--no-leader-elect",
        ]);
        const pass = JSON.parse(res.stdout) as ApiJson;
        expect(pass.reconciled.find((k: ApiJson) => k.name === "ignore-extra")?.ready).toBe(true);
        const cm = (name: string) => getObject(k.client, `/api/v1/namespaces/ag-ignore/configmaps/${name}`);
        expect(await cm("app")).toBeDefined();
        expect(await cm("kept")).toBeDefined();
        expect(await cm("local")).toBeUndefined();
        expect(await cm("draft")).toBeUndefined();
      } finally {
        fleet.remove();
      }
    } finally {
      extra.remove();
    }
  });
});
