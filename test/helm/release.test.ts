/**
 * HelmRepository → HelmChart → HelmRelease through the agent, on real
 * parts: a static chart repository (helm package + helm repo index) on
 * 127.0.0.1, the real kube-apiserver, the real helm. Every test owns its
 * namespace, fleet repository and agent; HelmReleases are applied from git
 * by the agent's root Kustomization, as in a fleet.
 */
import { execFileSync } from "node:child_process";
import { existsSync, readdirSync, symlinkSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { type ApiJson, configMap, getObject, kustomization, namespace } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type ChartServer, configMapChart, helm, startChartServer, writeChart } from "../infra/charts.ts";

vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

const k = kubeSuite({
  name: "helm",
  alongside: async () => {
    charts = await startChartServer();
  },
});
afterAll(async () => {
  await charts?.stop();
});

let charts: ChartServer;
const never = new AbortController().signal;

const helmRepository = (ns: string, name: string, url: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "HelmRepository",
  metadata: { name, namespace: ns },
  spec: { interval: "10m", url, ...extra },
});
const helmRelease = (ns: string, name: string, spec: Record<string, unknown>) => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name, namespace: ns },
  spec: { interval: "10m", ...spec },
});
const chartSpec = (chart: string, repo: string, version?: string) => ({
  spec: { chart, ...(version ? { version } : {}), sourceRef: { kind: "HelmRepository", name: repo } },
});

async function hr(ns: string, name: string): Promise<ApiJson | undefined> {
  return await getObject(k.client, `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns}/helmreleases/${name}`);
}
const cond = (obj: ApiJson | undefined, type: string) =>
  (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
const cm = (ns: string, name: string) => getObject(k.client, `/api/v1/namespaces/${ns}/configmaps/${name}`);

/** `helm history` as the real helm sees the agent's releases. */
function history(ns: string, release: string): { revision: number; status: string; chart: string }[] {
  const out = helm(["history", release, "-n", ns, "-o", "json", "--kubeconfig", k.kube.kubeconfig], {
    home: join(tmpdir(), "shipmate-test-helm-home"),
  });
  return JSON.parse(out);
}

describe("HelmRelease lifecycle", () => {
  it("installs from a chart repository, then a second pass costs no Helm action and no write, then upgrades on a new chart version and uninstalls when pruned", async () => {
    const ns = "h-life";
    const { repo, agent } = k.setup("h-life");
    // This agent's own temporary folders (other test files run helm at the same time).
    const helmTempDirs = () => readdirSync(tmpdir()).filter((f) => f.startsWith(agent.helm.tempPrefix));
    const tempBefore = helmTempDirs();
    const chartRepo = charts.repository("life");
    chartRepo.publish(configMapChart("greeter", "1.0.0"));
    const files = {
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/values.yaml": [
        configMap("greeter-values", ns, { "values.yaml": "greeting: from-configmap\nreplicas: 2\n" }),
      ],
      "clusters/test/repo.yaml": [helmRepository(ns, "charts", chartRepo.url)],
      "clusters/test/release.yaml": [
        helmRelease(ns, "greeter", {
          chart: chartSpec("greeter", "charts", "1.x"),
          valuesFrom: [{ kind: "ConfigMap", name: "greeter-values" }],
          values: { replicas: 3 },
        }),
      ],
    };
    repo.commit(files);
    await agent.once();
    expect(agent.helm.actions).toMatchObject({ install: 1, upgrade: 0 });

    let obj = await hr(ns, "greeter");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect(cond(obj, "Ready").message).toBe(
      `Helm install succeeded for release ${ns}/greeter.v1 with chart greeter@1.0.0`,
    );
    expect(cond(obj, "Released")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect(obj?.status).toMatchObject({
      observedGeneration: obj?.metadata.generation,
      helmChart: `${ns}/${ns}-greeter`,
      storageNamespace: ns,
      lastAttemptedRevision: "1.0.0",
      lastAttemptedReleaseAction: "install",
    });
    expect(obj?.status.lastAttemptedConfigDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(obj?.status.history).toHaveLength(1);
    expect(obj?.status.history[0]).toMatchObject({
      name: "greeter",
      namespace: ns,
      version: 1,
      status: "deployed",
      chartName: "greeter",
      chartVersion: "1.0.0",
      configDigest: obj?.status.lastAttemptedConfigDigest,
    });
    expect(obj?.metadata.finalizers).toContain("finalizers.fluxcd.io");
    // valuesFrom then inline values: replicas from values, greeting from the ConfigMap.
    expect((await cm(ns, "greeter-config"))?.data).toEqual({
      greeting: "from-configmap",
      replicas: "3",
      version: "1.0.0",
    });
    // Helm's own storage: helm sees the release the agent made.
    expect(history(ns, "greeter")).toMatchObject([
      { revision: 1, status: "deployed", chart: "greeter-1.0.0" },
    ]);
    // The HelmChart helm-controller would create, with source-controller's artifact.
    const chart = await getObject(
      k.client,
      `/apis/source.toolkit.fluxcd.io/v1/namespaces/${ns}/helmcharts/${ns}-greeter`,
    );
    expect(chart?.spec).toMatchObject({
      chart: "greeter",
      version: "1.x",
      sourceRef: { kind: "HelmRepository", name: "charts" },
    });
    expect(chart?.status.artifact).toMatchObject({ revision: "1.0.0" });
    const index = await getObject(
      k.client,
      `/apis/source.toolkit.fluxcd.io/v1/namespaces/${ns}/helmrepositories/charts`,
    );
    expect(index?.status.artifact.revision).toMatch(/^sha256:[0-9a-f]{64}$/);
    expect(cond(index, "Ready")).toMatchObject({ status: "True" });

    // The no-op: everything due again (forced), nothing changed: no Helm process, no API write.
    const before = { ...agent.helm.actions };
    const summary = await agent.pass(never, true);
    expect(agent.helm.actions).toEqual(before);
    expect(summary.writes).toBe(0);
    expect(summary.helmReleases).toMatchObject([{ name: "greeter", ready: true, actions: [] }]);

    // A new chart version in the range: one upgrade.
    chartRepo.publish(configMapChart("greeter", "1.1.0"));
    await agent.pass(never, true);
    expect(agent.helm.actions).toMatchObject({ install: 1, upgrade: 1 });
    obj = await hr(ns, "greeter");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "UpgradeSucceeded" });
    expect(obj?.status.history.map((h: ApiJson) => [h.version, h.chartVersion, h.status])).toEqual([
      [2, "1.1.0", "deployed"],
      [1, "1.0.0", "superseded"],
    ]);
    expect((await cm(ns, "greeter-config"))?.data.version).toBe("1.1.0");

    // The CLI shows them as `flux get` does; suspend and resume, the resumed request handled with no Helm action.
    const kcfg = k.kube.kubeconfig;
    const get = await runCli(["get", "helmreleases", "-n", ns, "--kubeconfig", kcfg]);
    expect(get.code).toBe(0);
    expect(get.stdout).toMatch(/h-life\s+greeter\s+1\.1\.0\s+False\s+True\s+Helm upgrade succeeded/);
    const sources = await runCli(["get", "sources", "chart", "-n", ns, "--kubeconfig", kcfg]);
    expect(sources.stdout).toMatch(/h-life-greeter\s+1\.1\.0\s+False\s+True/);
    expect((await runCli(["suspend", "helmrelease", "greeter", "-n", ns, "--kubeconfig", kcfg])).code).toBe(
      0,
    );
    await runCli(["resume", "helmrelease", "greeter", "-n", ns, "--no-wait", "--kubeconfig", kcfg]);
    await agent.pass(never, false);
    expect((await hr(ns, "greeter"))?.status.lastHandledReconcileAt).toBeDefined();
    expect(agent.helm.actions).toMatchObject({ install: 1, upgrade: 1 });

    // Pruned from git: the release is uninstalled, the HelmChart deleted, the object let go.
    repo.commit({ "clusters/test/release.yaml": null });
    await agent.pass(never, true);
    await agent.pass(never, true);
    expect(await hr(ns, "greeter")).toBeUndefined();
    expect(await cm(ns, "greeter-config")).toBeUndefined();
    expect(
      await getObject(
        k.client,
        `/apis/source.toolkit.fluxcd.io/v1/namespaces/${ns}/helmcharts/${ns}-greeter`,
      ),
    ).toBeUndefined();
    expect(agent.helm.actions.uninstall).toBe(1);
    // The kubeconfigs written for helm are gone.
    expect(helmTempDirs().filter((d) => !tempBefore.includes(d))).toEqual([]);
  });

  it("a failed upgrade (an object the API server rejects) is rolled back, with the failure in status; retries spent, it stops", async () => {
    const ns = "h-fail";
    const chartRepo = charts.repository("fail");
    chartRepo.publish(configMapChart("app", "1.0.0"));
    const { repo, agent } = k.setup("h-fail");
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, "charts", chartRepo.url)],
      "clusters/test/release.yaml": [
        helmRelease(ns, "app", {
          chart: chartSpec("app", "charts"),
          upgrade: { remediation: { retries: 1 } },
        }),
      ],
    });
    await agent.once();
    expect(cond(await hr(ns, "app"), "Ready")).toMatchObject({ status: "True" });

    const broken = configMapChart("app", "2.0.0");
    broken.templates["bad.yaml"] =
      "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: Not_A_Valid_Name\ndata: {}\n";
    chartRepo.publish(broken);
    await agent.pass(never, true);
    let obj = await hr(ns, "app");
    expect(cond(obj, "Ready")).toMatchObject({ status: "False", reason: "UpgradeFailed" });
    expect(cond(obj, "Ready").message).toMatch(
      /^Helm upgrade failed for release h-fail\/app with chart app@2\.0\.0: .*Not_A_Valid_Name/,
    );
    expect(cond(obj, "Ready").message).not.toContain("\n");
    expect(cond(obj, "Released")).toMatchObject({ status: "False", reason: "UpgradeFailed" });
    expect(cond(obj, "Remediated")).toMatchObject({ status: "True", reason: "RollbackSucceeded" });
    expect(obj?.status).toMatchObject({ failures: 1, upgradeFailures: 1, lastAttemptedRevision: "2.0.0" });
    expect(obj?.status.history.map((h: ApiJson) => [h.version, h.chartVersion, h.status])).toEqual([
      [3, "1.0.0", "deployed"],
      [2, "2.0.0", "failed"],
      [1, "1.0.0", "superseded"],
    ]);
    expect(history(ns, "app").map((h) => h.status)).toEqual(["superseded", "failed", "deployed"]);
    expect((await cm(ns, "app-config"))?.data.version).toBe("1.0.0");

    // One retry (retries: 1), remediated again (remediateLastFailure defaults to true with retries).
    await agent.pass(never, true);
    obj = await hr(ns, "app");
    expect(obj?.status).toMatchObject({ failures: 2, upgradeFailures: 2 });
    // Retries spent: no more Helm actions until the chart or values change.
    const spent = agent.helm.total;
    await agent.pass(never, true);
    expect(agent.helm.total).toBe(spent);
    obj = await hr(ns, "app");
    expect(cond(obj, "Ready")).toMatchObject({
      status: "False",
      reason: "RetriesExceeded",
      message: "Failed to upgrade after 2 attempt(s)",
    });
    expect(cond(obj, "Stalled")).toMatchObject({ status: "True" });
  });

  it("adopts a release installed by hand with helm: one upgrade (revision 1 → 2), then it stays", async () => {
    const ns = "h-adopt";
    const chartRepo = charts.repository("adopt");
    const source = configMapChart("tool", "1.0.0");
    chartRepo.publish(source);
    const home = join(tmpdir(), "shipmate-test-helm-home");
    const dir = writeChart(join(chartRepo.dir, "..", ".helm-home", "manual"), source);
    helm(["install", "tool", dir, "-n", ns, "--create-namespace", "--kubeconfig", k.kube.kubeconfig], {
      home,
    });
    expect(history(ns, "tool")).toMatchObject([{ revision: 1, status: "deployed" }]);

    const { repo, agent } = k.setup("h-adopt");
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, "charts", chartRepo.url)],
      "clusters/test/release.yaml": [helmRelease(ns, "tool", { chart: chartSpec("tool", "charts") })],
    });
    await agent.once();
    await agent.pass(never, true);
    await agent.pass(never, true);
    expect(agent.helm.actions).toEqual({ install: 0, upgrade: 1, rollback: 0, uninstall: 0, test: 0 });
    expect(history(ns, "tool").map((h) => [h.revision, h.status])).toEqual([
      [1, "superseded"],
      [2, "deployed"],
    ]);
    expect(cond(await hr(ns, "tool"), "Ready")).toMatchObject({ status: "True", reason: "UpgradeSucceeded" });
  });
});

describe("HelmReleases in a fleet", () => {
  it("a Kustomization waiting on a HelmRelease it applies sees it installed in the same pass; dependsOn orders releases; a chart from a GitRepository path takes the commit with reconcileStrategy Revision", async () => {
    const ns = "h-wait";
    const chartRepo = charts.repository("wait");
    chartRepo.publish(configMapChart("base", "1.0.0"));
    const { repo, agent } = k.setup("h-wait");
    const local = configMapChart("local", "0.1.0");
    const commit = repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/infra.yaml": [
        kustomization("h-wait-infra", { path: "./infra", wait: true, timeout: "2m" }),
      ],
      "infra/repo.yaml": [helmRepository(ns, "charts", chartRepo.url)],
      "infra/release.yaml": [helmRelease(ns, "base", { chart: chartSpec("base", "charts") })],
      "clusters/test/apps.yaml": [
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "GitRepository",
          metadata: { name: "apps-src", namespace: ns },
          spec: { interval: "10m", url: repo.url, ref: { branch: "main" } },
        },
        helmRelease(ns, "local", {
          dependsOn: [{ name: "base" }],
          chart: {
            spec: {
              chart: "./charts/local",
              reconcileStrategy: "Revision",
              sourceRef: { kind: "GitRepository", name: "apps-src" },
            },
          },
        }),
      ],
      "charts/local/Chart.yaml": `apiVersion: v2\nname: local\nversion: 0.1.0\n`,
      "charts/local/values.yaml": "greeting: from-git\nreplicas: 1\n",
      "charts/local/templates/configmap.yaml": local.templates["configmap.yaml"] ?? "",
    });
    const summary = await agent.once();
    const infra = summary.reconciled.find((k) => k.name === "h-wait-infra");
    expect(infra).toMatchObject({ ready: true });
    expect(cond(await hr(ns, "base"), "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    const local1 = await hr(ns, "local");
    expect(cond(local1, "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    const revision = `0.1.0+${commit.slice(0, 12)}`;
    expect(local1?.status.history[0]).toMatchObject({ chartName: "local", chartVersion: revision });
    expect((await cm(ns, "local-config"))?.data).toMatchObject({ greeting: "from-git", version: revision });
    // A new commit is a new chart revision: one upgrade.
    const next = repo.commit({ "charts/local/values.yaml": "greeting: changed\nreplicas: 1\n" });
    await agent.pass(never, true);
    expect((await hr(ns, "local"))?.status.history[0].chartVersion).toBe(`0.1.0+${next.slice(0, 12)}`);
    expect((await cm(ns, "local-config"))?.data.greeting).toBe("changed");
    expect(agent.helm.actions).toMatchObject({ install: 2, upgrade: 1 });
  });

  it("a monorepo fleet with its infrastructure as Helm releases: an ingress controller, a cert-manager-like chart whose CRD the configs use, dependsOn between them, apps after infrastructure; a second pass costs no Helm action", async () => {
    const ns = "h-mono-infra";
    const chartRepo = charts.repository("mono");
    chartRepo.publish(configMapChart("ingress", "4.11.0"));
    // Like cert-manager: the chart brings the CRD its users' objects are made of.
    const issuerCrd = `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: issuers.certs.example.com
spec:
  group: certs.example.com
  names: { kind: Issuer, listKind: IssuerList, plural: issuers, singular: issuer }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema:
        openAPIV3Schema:
          type: object
          properties:
            spec:
              type: object
              properties:
                acme: { type: string }
`;
    chartRepo.publish(configMapChart("certs", "1.16.0", { files: { "crds/issuers.yaml": issuerCrd } }));
    chartRepo.publish(configMapChart("web", "1.0.0"));
    const { repo, agent } = k.setup("h-mono");
    // The layout of Flux's kustomize-helm example: controllers, then configs, then apps.
    repo.commit({
      "clusters/test/infrastructure.yaml": [
        kustomization("h-mono-controllers", {
          path: "./infrastructure/controllers",
          wait: true,
          timeout: "2m",
        }),
        kustomization("h-mono-configs", {
          path: "./infrastructure/configs",
          dependsOn: [{ name: "h-mono-controllers" }],
        }),
      ],
      "clusters/test/apps.yaml": [
        kustomization("h-mono-apps", { path: "./apps", dependsOn: [{ name: "h-mono-configs" }], wait: true }),
      ],
      "infrastructure/controllers/namespace.yaml": [namespace(ns)],
      "infrastructure/controllers/repository.yaml": [helmRepository(ns, "charts", chartRepo.url)],
      "infrastructure/controllers/ingress.yaml": [
        helmRelease(ns, "ingress", { chart: chartSpec("ingress", "charts", "4.x") }),
      ],
      "infrastructure/controllers/certs.yaml": [
        helmRelease(ns, "certs", {
          dependsOn: [{ name: "ingress" }],
          chart: chartSpec("certs", "charts", "1.16.x"),
          install: { crds: "Create" },
          values: { greeting: "certs" },
        }),
      ],
      "infrastructure/configs/issuer.yaml": [
        {
          apiVersion: "certs.example.com/v1",
          kind: "Issuer",
          metadata: { name: "letsencrypt", namespace: ns },
          spec: { acme: "https://acme.example.com/directory" },
        },
      ],
      "apps/namespace.yaml": [namespace("h-mono-apps")],
      "apps/repository.yaml": [helmRepository("h-mono-apps", "charts", chartRepo.url)],
      "apps/web.yaml": [helmRelease("h-mono-apps", "web", { chart: chartSpec("web", "charts") })],
    });
    // Each Kustomization waits for those it dependsOn; a pass or two brings the whole chain up.
    let summary = await agent.once();
    for (let i = 0; i < 3 && !summary.reconciled.every((k) => k.ready); i++)
      summary = await agent.pass(never, true);
    for (const name of ["h-mono-controllers", "h-mono-configs", "h-mono-apps"])
      expect(
        summary.reconciled.find((k) => k.name === name),
        name,
      ).toMatchObject({ ready: true });
    for (const [n, release] of [
      [ns, "ingress"],
      [ns, "certs"],
      ["h-mono-apps", "web"],
    ] as const) {
      expect(cond(await hr(n, release), "Ready"), release).toMatchObject({
        status: "True",
        reason: "InstallSucceeded",
      });
      expect(history(n, release).map((h) => h.revision)).toEqual([1]);
    }
    // certs waited for ingress: its release was made after ingress's.
    const madeAt = async (release: string) =>
      Date.parse((await hr(ns, release))?.status.history[0].firstDeployed ?? "");
    expect(await madeAt("certs")).toBeGreaterThanOrEqual(await madeAt("ingress"));
    // The chart's CRD came with it, so the configs' Issuer could be applied.
    expect(
      await getObject(k.client, `/apis/certs.example.com/v1/namespaces/${ns}/issuers/letsencrypt`),
    ).toMatchObject({
      spec: { acme: "https://acme.example.com/directory" },
    });
    expect((await cm("h-mono-apps", "web-config"))?.data.greeting).toBe("hello");
    const actions = { ...agent.helm.actions };
    await agent.pass(never, true);
    expect(agent.helm.actions).toEqual(actions);
  });
});

describe("bad input: Ready=False with one clear line, nothing installed, no credential", () => {
  const password = "hunter2-chart-password";
  let ns: string;
  let agent: Agent;

  beforeAll(async () => {
    ns = "h-bad";
    const good = charts.repository("bad-good");
    good.publish(configMapChart("app", "1.0.0"));
    const locked = charts.repository("bad-locked", { username: "reader", password });
    locked.publish(configMapChart("app", "1.0.0"));
    const broken = charts.repository("bad-broken");
    broken.write("index.yaml", "apiVersion: v1\nentries: {app: [\n");
    // A chart archive carrying a symbolic link out of the chart, made by GNU tar as an attacker would.
    const evil = charts.repository("bad-evil");
    const src = writeChart(join(evil.dir, ".src"), configMapChart("evil", "1.0.0"));
    symlinkSync("/etc/passwd", join(src, "templates", "passwd.yaml"));
    execFileSync("tar", ["czf", join(evil.dir, "evil-1.0.0.tgz"), "-C", join(evil.dir, ".src"), "evil"]);
    evil.write(
      "index.yaml",
      `apiVersion: v1\nentries:\n  evil:\n    - {name: evil, version: 1.0.0, urls: [${evil.url}/evil-1.0.0.tgz]}\n`,
    );
    const setupResult = k.setup("h-bad");
    agent = setupResult.agent;
    const secret = {
      apiVersion: "v1",
      kind: "Secret",
      metadata: { name: "chart-auth", namespace: ns },
      stringData: { username: "reader", password },
    };
    setupResult.repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/auth.yaml": [secret],
      "clusters/test/repos.yaml": [
        helmRepository(ns, "good", good.url),
        helmRepository(ns, "locked", locked.url),
        helmRepository(ns, "unlocked", locked.url, { secretRef: { name: "chart-auth" } }),
        helmRepository(ns, "broken", broken.url),
        helmRepository(ns, "evil", evil.url),
      ],
      "clusters/test/releases.yaml": [
        helmRelease(ns, "missing-chart", { chart: chartSpec("nope", "good") }),
        helmRelease(ns, "no-version", { chart: chartSpec("app", "good", ">=9.0.0") }),
        helmRelease(ns, "unauthorized", { chart: chartSpec("app", "locked") }),
        helmRelease(ns, "authorized", { chart: chartSpec("app", "unlocked"), releaseName: "authorized" }),
        helmRelease(ns, "not-yaml", { chart: chartSpec("app", "broken") }),
        helmRelease(ns, "symlink", { chart: chartSpec("evil", "evil") }),
        helmRelease(ns, "no-key", {
          chart: chartSpec("app", "good"),
          valuesFrom: [{ kind: "ConfigMap", name: "absent-values" }],
        }),
        helmRelease(ns, "optional-key", {
          chart: chartSpec("app", "good"),
          valuesFrom: [{ kind: "Secret", name: "chart-auth", valuesKey: "values.yaml", optional: true }],
        }),
        helmRelease(ns, "refused", {
          chart: chartSpec("app", "good"),
          rollback: { recreate: true },
        }),
      ],
    });
    await agent.once();
  });

  it.each([
    ["chart not found", "missing-chart", "ArtifactFailed", /chart "nope" not found in the repository index/],
    [
      "a version range that matches nothing",
      "no-version",
      "ArtifactFailed",
      /no version of chart "app" matches ">=9\.0\.0"/,
    ],
    [
      "a repository answering 401",
      "unauthorized",
      "ArtifactFailed",
      /HTTP 401 Unauthorized \(credentials needed\)/,
    ],
    ["an index.yaml that is not YAML", "not-yaml", "ArtifactFailed", /index\.yaml is not valid YAML/],
    [
      "a chart archive with a symbolic link",
      "symlink",
      "ArtifactFailed",
      /archive entry "evil\/templates\/passwd\.yaml" is a symbolic link/,
    ],
    [
      "a valuesFrom object that is missing",
      "no-key",
      "ValuesError",
      /^could not find ConfigMap 'h-bad\/absent-values'$/,
    ],
    [
      "a refused field",
      "refused",
      "UnsupportedField",
      /spec\.rollback\.recreate \(recreating pods on rollback is not implemented\)/,
    ],
  ])("%s", async (_rule, name, reason, message) => {
    const obj = await hr(ns, name);
    const ready = cond(obj, "Ready");
    expect(ready).toMatchObject({ status: "False", reason });
    expect(ready.message).toMatch(message);
    expect(ready.message).not.toContain("\n");
    expect(JSON.stringify(obj)).not.toContain(password);
    expect(await cm(ns, `${name}-config`)).toBeUndefined();
  });

  it("the same repository with its Secret's basic auth serves the chart; an optional missing key is skipped", async () => {
    expect(cond(await hr(ns, "authorized"), "Ready")).toMatchObject({
      status: "True",
      reason: "InstallSucceeded",
    });
    expect(await cm(ns, "authorized-config")).toBeDefined();
    expect(cond(await hr(ns, "optional-key"), "Ready")).toMatchObject({ status: "True" });
    const locked = await getObject(
      k.client,
      `/apis/source.toolkit.fluxcd.io/v1/namespaces/${ns}/helmrepositories/locked`,
    );
    expect(cond(locked, "Ready")).toMatchObject({ status: "False", reason: "AuthenticationFailed" });
    expect(JSON.stringify(locked)).not.toContain(password);
  });

  it("a missing key in an existing object names the key and the object", async () => {
    await k.client.raw({
      method: "POST",
      path: `/api/v1/namespaces/${ns}/configmaps`,
      body: configMap("absent-values", ns, { "other.yaml": "a: 1\n" }),
    });
    await agent.pass(never, true);
    expect(cond(await hr(ns, "no-key"), "Ready").message).toBe(
      "missing key 'values.yaml' in ConfigMap 'h-bad/absent-values'",
    );
    expect(existsSync(k.kube.kubeconfig)).toBe(true);
  });
});
