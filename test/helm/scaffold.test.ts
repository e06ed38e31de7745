/**
 * End to end from `shipmate init --layout repo-per-app --app-source helm`:
 * the fleet repository it writes is synced by the agent on the real
 * kube-apiserver with the real helm, and the app's chart (the `chart/`
 * folder of the app repository it writes, packaged and indexed with helm)
 * is installed in the app's namespace, its release records in the agent's
 * namespace (the scaffold's HelmRelease lives there with a targetNamespace,
 * so this is the storage-apart case). One edit is made to the scaffold's
 * output, and only one: its HelmRepository is `type: oci`, which this
 * agent does not fetch yet, so the test serves the same chart from an
 * HTTP chart repository (`type: default`) instead.
 */
import { mkdtempSync, readdirSync, readFileSync, rmSync, statSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import { type ApiJson, getObject, ksStatus, patchObject, waitFor } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type ChartServer, type ChartSource, startChartServer } from "../infra/charts.ts";

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let charts: ChartServer;
let out: string;

const k = kubeSuite({
  name: "helm-scaffold",
  alongside: async () => {
    charts = await startChartServer();
  },
});
beforeAll(() => {
  out = mkdtempSync(join(tmpdir(), "shipmate-init-helm-"));
});
afterAll(async () => {
  if (out) rmSync(out, { recursive: true, force: true });
  await charts?.stop();
});

/** Every file under `dir`, by path relative to it. */
function filesOf(dir: string): Record<string, string> {
  const files: Record<string, string> = {};
  const walk = (d: string) => {
    for (const name of readdirSync(d)) {
      const full = join(d, name);
      if (statSync(full).isDirectory()) walk(full);
      else files[relative(dir, full)] = readFileSync(full, "utf8");
    }
  };
  walk(dir);
  return files;
}

/** The app repository's chart/ folder as the chart server publishes it (helm package + helm repo index). */
function chartOf(files: Record<string, string>, version: string): ChartSource {
  const meta = parse(files["chart/Chart.yaml"] ?? "") as { name: string; appVersion?: string };
  const templates: Record<string, string> = {};
  const rest: Record<string, string> = {};
  for (const [path, text] of Object.entries(files)) {
    if (path.startsWith("chart/templates/")) templates[path.slice("chart/templates/".length)] = text;
    else if (/^chart\/values-[^/]+\.yaml$/.test(path)) rest[path.slice("chart/".length)] = text;
  }
  return {
    name: meta.name,
    version,
    ...(meta.appVersion ? { appVersion: meta.appVersion } : {}),
    values: parse(files["chart/values.yaml"] ?? "") as Record<string, unknown>,
    templates,
    files: rest,
  };
}

/**
 * The Deployment controller's part, once the release creates the Deployment:
 * its status as a finished rollout, conditions included (helm --wait reads
 * them through kstatus: Available, and Progressing with NewReplicaSetAvailable).
 */
async function rollOut(path: string): Promise<void> {
  const d = await waitFor(() => getObject(k.client, path));
  const now = new Date().toISOString();
  const condition = (type: string, reason: string) => ({
    type,
    status: "True",
    reason,
    message: reason,
    lastUpdateTime: now,
    lastTransitionTime: now,
  });
  await patchObject(
    k.client,
    `${path}/status`,
    {
      status: {
        observedGeneration: d.metadata.generation,
        replicas: 1,
        updatedReplicas: 1,
        readyReplicas: 1,
        availableReplicas: 1,
        conditions: [
          condition("Available", "MinimumReplicasAvailable"),
          condition("Progressing", "NewReplicaSetAvailable"),
        ],
      },
    },
    { fieldManager: "kube-controller-manager" },
  );
}

describe("shipmate init --layout repo-per-app --app-source helm, synced by the agent", () => {
  it("installs the app's chart into its namespace in staging, records in the agent's namespace, then upgrades to a new chart version", async () => {
    const init = await runCli([
      "init",
      ...["--layout", "repo-per-app", "--app-source", "helm", "--out", out, "--no-git"],
    ]);
    expect(init.code).toBe(0);
    const fleetFiles = filesOf(join(out, "fleet"));
    const appFiles = filesOf(join(out, "hello"));

    // What the scaffold writes for the app in staging: a HelmRepository and a HelmRelease in the agent's namespace.
    const appDocs = parseAllDocuments(fleetFiles["apps/staging/hello.yaml"] ?? "").map(
      (d) => d.toJS() as ApiJson,
    );
    const helmRepo = appDocs.find((d) => d.kind === "HelmRepository");
    const release = appDocs.find((d) => d.kind === "HelmRelease");
    expect(helmRepo?.spec).toMatchObject({ type: "oci" });
    expect(release?.metadata).toEqual({ name: "hello", namespace: "shipmate-system" });
    expect(release?.spec).toMatchObject({ targetNamespace: "hello", releaseName: "hello" });
    expect(release?.spec.storageNamespace).toBeUndefined();

    // The app repository and the chart, published as its workflow would (here to an HTTP chart repository).
    const appRepo = k.fleet();
    appRepo.commit(appFiles);
    const chartRepo = charts.repository("hello");
    chartRepo.publish(chartOf(appFiles, "1.0.0"));

    const fleet = k.fleet();
    const docs = appDocs.map((d) => {
      if (d.kind === "HelmRepository") return { ...d, spec: { interval: "10m", url: chartRepo.url } };
      if (d.kind === "GitRepository") return { ...d, spec: { ...d.spec, url: appRepo.url } };
      return d;
    });
    fleet.commit({ ...fleetFiles, "apps/staging/hello.yaml": docs.map((d) => stringify(d)).join("---\n") });

    const agent = k.agent(fleet, "shipmate-system", {
      namespace: "shipmate-system",
      path: "clusters/staging",
    });
    const deployment = "/apis/apps/v1/namespaces/hello/deployments/hello";
    // No controller-manager here: the Deployment is rolled out by hand once the release creates it.
    const running = agent.once();
    await rollOut(deployment);
    const summary = await running;

    const hr = await getObject(
      k.client,
      "/apis/helm.toolkit.fluxcd.io/v2/namespaces/shipmate-system/helmreleases/hello",
    );
    const ready = (hr?.status?.conditions ?? []).find((c: ApiJson) => c.type === "Ready");
    expect(ready).toMatchObject({
      status: "True",
      reason: "InstallSucceeded",
      // With valuesFiles, source-controller versions the chart `<version>+<HelmChart generation>`.
      message: "Helm install succeeded for release hello/hello.v1 with chart hello@1.0.0+1",
    });
    expect(summary.helmReleases.find((r) => r.name === "hello")).toMatchObject({ ready: true });
    // values.yaml, then values-staging.yaml (the HelmChart's valuesFiles): staging runs one replica.
    const d = await getObject(k.client, deployment);
    expect(d?.spec.replicas).toBe(1);
    expect(d?.spec.template.spec.containers[0].image).toMatch(/:/);
    expect(await getObject(k.client, "/api/v1/namespaces/hello/services/hello")).toBeDefined();
    // Records in the HelmRelease's namespace (storageNamespace's default), objects in targetNamespace.
    const secrets = async (ns: string) =>
      (
        (
          await k.client.raw({
            method: "GET",
            path: `/api/v1/namespaces/${ns}/secrets`,
            query: { labelSelector: "owner=helm,name=hello" },
          })
        ).body as ApiJson
      ).items.map((s: ApiJson) => s.metadata.name);
    expect(await secrets("shipmate-system")).toEqual(["sh.helm.release.v1.hello.v1"]);
    expect(await secrets("hello")).toEqual([]);
    // The apps Kustomization waited on the release (wait: true) and is Ready.
    const apps = (await ksStatus(k.client, "apps", "shipmate-system")).ks;
    expect((apps?.status.conditions ?? []).find((c: ApiJson) => c.type === "Ready")).toMatchObject({
      status: "True",
    });

    // A new chart version in staging's range: upgraded.
    chartRepo.publish(chartOf(appFiles, "1.1.0"));
    // (The apps Kustomization waits on the release, so it may be the one that runs the upgrade.)
    await agent.pass(new AbortController().signal, true);
    const after = await getObject(
      k.client,
      "/apis/helm.toolkit.fluxcd.io/v2/namespaces/shipmate-system/helmreleases/hello",
    );
    expect((after?.status.conditions ?? []).find((c: ApiJson) => c.type === "Ready")).toMatchObject({
      status: "True",
      reason: "UpgradeSucceeded",
      message: "Helm upgrade succeeded for release hello/hello.v2 with chart hello@1.1.0+1",
    });
    expect(await secrets("shipmate-system")).toHaveLength(2);
  });
});
