/**
 * HelmRelease post-renderers (kustomize patches and images, commonMetadata),
 * drift detection (enabled, warn, ignore rules) and Helm tests (enable,
 * filters, a failing test remediated by rollback), through the agent on
 * real parts: a static chart repository on 127.0.0.1, the real
 * kube-apiserver, the real helm and kustomize. No kubelet runs: test-hook
 * pods are run by the stand-in in ./testpods.ts (their command as a local
 * process, the phase written back as the kubelet would).
 */
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { type ApiJson, getObject, namespace } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type ChartServer, configMapChart, helm, startChartServer } from "../infra/charts.ts";
import { runTestPods, type TestPodRunner } from "./testpods.ts";

vi.setConfig({ testTimeout: 180_000, hookTimeout: 120_000 });

const k = kubeSuite({
  name: "helm-features",
  alongside: async () => {
    charts = await startChartServer();
  },
});
beforeAll(() => {
  pods = runTestPods(k.client);
});
afterAll(async () => {
  pods?.stop();
  await charts?.stop();
});

let charts: ChartServer;
let pods: TestPodRunner;
const never = new AbortController().signal;

const helmRepository = (ns: string, url: string) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "HelmRepository",
  metadata: { name: "charts", namespace: ns },
  spec: { interval: "10m", url },
});
const helmRelease = (ns: string, name: string, chart: string, spec: Record<string, unknown>) => ({
  apiVersion: "helm.toolkit.fluxcd.io/v2",
  kind: "HelmRelease",
  metadata: { name, namespace: ns },
  spec: {
    interval: "10m",
    chart: { spec: { chart, sourceRef: { kind: "HelmRepository", name: "charts" } } },
    ...spec,
  },
});

const hr = (ns: string, name: string) =>
  getObject(k.client, `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns}/helmreleases/${name}`);
const cond = (obj: ApiJson | undefined, type: string) =>
  (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
const get = (path: string) => getObject(k.client, path);
async function events(ns: string, reason: string): Promise<string[]> {
  const list = await get(`/api/v1/namespaces/${ns}/events`);
  return (list?.items ?? []).filter((e: ApiJson) => e.reason === reason).map((e: ApiJson) => e.message);
}
/** An edit as `kubectl edit` makes it: an Update by another manager. */
async function edit(path: string, body: object): Promise<void> {
  const res = await k.client.raw({
    method: "PATCH",
    path,
    body,
    contentType: "application/merge-patch+json",
    query: { fieldManager: "kubectl-edit" },
  });
  expect(res.code).toBe(200);
}
function history(ns: string, release: string): { revision: number; status: string; description: string }[] {
  const out = helm(["history", release, "-n", ns, "-o", "json", "--kubeconfig", k.kube.kubeconfig], {
    home: join(tmpdir(), "shipmate-test-helm-home"),
  });
  return JSON.parse(out);
}

describe("HelmRelease postRenderers", () => {
  it("patches and retags the rendered objects, adds commonMetadata, and upgrades once when they change", async () => {
    const ns = "hf-post";
    const { repo, agent } = k.setup(ns);
    const chartRepo = charts.repository("post");
    chartRepo.publish(
      configMapChart("web", "1.0.0", {
        templates: {
          ...configMapChart("web", "1.0.0").templates,
          "deployment.yaml": `apiVersion: apps/v1
kind: Deployment
metadata:
  name: {{ .Release.Name }}
spec:
  selector: { matchLabels: { app: web } }
  template:
    metadata: { labels: { app: web } }
    spec:
      containers: [{ name: web, image: "registry.example/web:1.0" }]
`,
        },
      }),
    );
    const release = (patchValue: string) =>
      helmRelease(ns, "web", "web", {
        install: { disableWait: true },
        upgrade: { disableWait: true },
        commonMetadata: { labels: { team: "blue" }, annotations: { owner: "blue@example" } },
        postRenderers: [
          {
            kustomize: {
              patches: [
                {
                  target: { kind: "ConfigMap" },
                  patch: `- op: add\n  path: /data/patched\n  value: "${patchValue}"\n`,
                },
              ],
              images: [{ name: "registry.example/web", newTag: "2.0" }],
            },
          },
        ],
      });
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, chartRepo.url)],
      "clusters/test/release.yaml": [release("one")],
    });
    await agent.once();
    let obj = await hr(ns, "web");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect(obj?.status.observedPostRenderersDigest).toMatch(/^sha256:[0-9a-f]{64}$/);
    const config = await get(`/api/v1/namespaces/${ns}/configmaps/web-config`);
    expect(config?.data.patched).toBe("one");
    expect(config?.metadata.labels).toMatchObject({ team: "blue", chart: "web-1.0.0" });
    expect(config?.metadata.annotations).toMatchObject({ owner: "blue@example" });
    const deploy = await get(`/apis/apps/v1/namespaces/${ns}/deployments/web`);
    expect(deploy?.spec.template.spec.containers[0].image).toBe("registry.example/web:2.0");
    // commonMetadata leaves selectors alone (a Deployment's selector is immutable).
    expect(deploy?.spec.selector.matchLabels).toEqual({ app: "web" });

    // Nothing changed: no Helm action.
    const before = { ...agent.helm.actions };
    await agent.pass(never, true);
    expect(agent.helm.actions).toEqual(before);

    // A post-renderer change alone is an upgrade, as helm-controller does it.
    repo.commit({ "clusters/test/release.yaml": [release("two")] });
    await agent.once();
    expect(agent.helm.actions.upgrade).toBe(before.upgrade + 1);
    obj = await hr(ns, "web");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "UpgradeSucceeded" });
    expect((await get(`/api/v1/namespaces/${ns}/configmaps/web-config`))?.data.patched).toBe("two");
  });

  it("a patch kustomize cannot apply fails the release with the post-renderer's one line, nothing installed", async () => {
    const ns = "hf-post-bad";
    const { repo, agent } = k.setup(ns);
    const chartRepo = charts.repository("postbad");
    chartRepo.publish(configMapChart("web", "1.0.0"));
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, chartRepo.url)],
      "clusters/test/release.yaml": [
        helmRelease(ns, "web", "web", {
          postRenderers: [
            {
              kustomize: {
                patches: [
                  { patch: "- op: replace\n  path: /nope/x\n  value: 1\n", target: { kind: "ConfigMap" } },
                ],
              },
            },
          ],
        }),
      ],
    });
    await agent.once();
    const ready = cond(await hr(ns, "web"), "Ready");
    expect(ready).toMatchObject({ status: "False", reason: "InstallFailed" });
    expect(ready.message).toMatch(/post-renderer 0 \(kustomize\): .*nope/);
    expect(ready.message).not.toContain("\n");
    expect(await get(`/api/v1/namespaces/${ns}/configmaps/web-config`)).toBeUndefined();
  });
});

describe("HelmRelease driftDetection", () => {
  it("enabled takes drift back (ignore rules respected); warn only reports it", async () => {
    const ns = "hf-drift";
    const { repo, agent } = k.setup(ns);
    const chartRepo = charts.repository("drift");
    chartRepo.publish(configMapChart("app", "1.0.0"));
    const release = (name: string, driftDetection: object) =>
      helmRelease(ns, name, "app", { driftDetection });
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, chartRepo.url)],
      "clusters/test/release.yaml": [
        release("fixed", {
          mode: "enabled",
          ignore: [{ paths: ["/data/replicas"], target: { kind: "ConfigMap" } }],
        }),
        release("watched", { mode: "warn" }),
      ],
    });
    await agent.once();
    expect(cond(await hr(ns, "fixed"), "Ready")).toMatchObject({ status: "True" });
    const fixedCm = `/api/v1/namespaces/${ns}/configmaps/fixed-config`;
    const watchedCm = `/api/v1/namespaces/${ns}/configmaps/watched-config`;

    // In sync: no drift, no event, no write.
    const summary = await agent.pass(never, true);
    expect(summary.writes).toBe(0);
    expect(await events(ns, "DriftCorrected")).toEqual([]);

    await edit(fixedCm, { data: { greeting: "edited", replicas: "9" } });
    await edit(watchedCm, { data: { greeting: "edited" } });
    const helmBefore = { ...agent.helm.actions };
    await agent.pass(never, true);
    expect(agent.helm.actions).toEqual(helmBefore); // corrected by apply, not by a Helm upgrade
    // enabled: greeting restored; replicas is ignored and stays as edited.
    expect((await get(fixedCm))?.data).toMatchObject({ greeting: "hello", replicas: "9" });
    expect(await events(ns, "DriftCorrected")).toEqual([
      `Cluster state of release ${ns}/fixed.v1 has been corrected: ConfigMap/${ns}/fixed-config changed`,
    ]);
    // warn: reported, left as edited.
    expect((await get(watchedCm))?.data.greeting).toBe("edited");
    expect(await events(ns, "DriftDetected")).toEqual([
      `Cluster state of release ${ns}/watched.v1 has drifted from the desired state: ConfigMap/${ns}/watched-config changed`,
    ]);

    // A deleted object is drift too: recreated.
    expect((await k.client.raw({ method: "DELETE", path: fixedCm })).code).toBe(200);
    await agent.pass(never, true);
    expect((await get(fixedCm))?.data.greeting).toBe("hello");
    expect(cond(await hr(ns, "fixed"), "Ready")).toMatchObject({ status: "True" });
  });
});

describe("HelmRelease test", () => {
  const testChart = (version: string) =>
    configMapChart("probe", version, {
      values: { greeting: "hello", replicas: 1, testExit: 0 },
      templates: {
        ...configMapChart("probe", version).templates,
        "test-ok.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test-ok
  annotations: { "helm.sh/hook": test }
spec:
  restartPolicy: Never
  containers:
    - name: t
      image: busybox
      command: ["sh", "-c", "exit {{ .Values.testExit }}"]
`,
        "test-skipped.yaml": `apiVersion: v1
kind: Pod
metadata:
  name: {{ .Release.Name }}-test-skipped
  annotations: { "helm.sh/hook": test }
spec:
  restartPolicy: Never
  containers: [{ name: t, image: busybox, command: ["sh", "-c", "exit 1"] }]
`,
      },
    });

  it("runs the test hooks after install (filters honoured), and a failing test after an upgrade is remediated by rollback", async () => {
    const ns = "hf-test";
    const { repo, agent } = k.setup(ns);
    const chartRepo = charts.repository("tests");
    chartRepo.publish(testChart("1.0.0"));
    const release = (values: object) =>
      helmRelease(ns, "probe", "probe", {
        values,
        test: { enable: true, timeout: "1m", filters: [{ name: "probe-test-skipped", exclude: true }] },
        upgrade: { remediation: { retries: 1 } },
      });
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, chartRepo.url)],
      "clusters/test/release.yaml": [release({})],
    });
    await agent.once();
    let obj = await hr(ns, "probe");
    expect(cond(obj, "TestSuccess")).toMatchObject({ status: "True", reason: "TestSucceeded" });
    expect(cond(obj, "Ready")).toMatchObject({
      status: "True",
      reason: "TestSucceeded",
      message: `Helm test succeeded for release ${ns}/probe.v1 with chart probe@1.0.0: 1 test hook(s) completed successfully`,
    });
    expect(obj?.status.history[0].testHooks).toMatchObject({ "probe-test-ok": { phase: "Succeeded" } });
    expect(pods.ran).toContain(`${ns}/probe-test-ok`);
    expect(pods.ran).not.toContain(`${ns}/probe-test-skipped`);
    expect(agent.helm.actions).toMatchObject({ install: 1, test: 1 });

    // No new release: no test run again.
    await agent.pass(never, true);
    expect(agent.helm.actions.test).toBe(1);

    // Values whose test fails: upgrade succeeds, its test fails, the release is rolled back.
    repo.commit({ "clusters/test/release.yaml": [release({ testExit: 3, greeting: "broken" })] });
    await agent.once();
    obj = await hr(ns, "probe");
    expect(cond(obj, "TestSuccess")).toMatchObject({ status: "False", reason: "TestFailed" });
    expect(cond(obj, "Ready")).toMatchObject({ status: "False", reason: "TestFailed" });
    expect(cond(obj, "Ready").message).toMatch(`Helm test failed for release ${ns}/probe.v2`);
    expect(cond(obj, "Remediated")).toMatchObject({ status: "True", reason: "RollbackSucceeded" });
    expect(obj?.status.upgradeFailures).toBe(1);
    expect(history(ns, "probe").map((h) => [h.revision, h.status])).toEqual([
      [1, "superseded"],
      [2, "superseded"],
      [3, "deployed"],
    ]);
    expect((await get(`/api/v1/namespaces/${ns}/configmaps/probe-config`))?.data.greeting).toBe("hello");
    expect(await events(ns, "TestFailed")).toHaveLength(1);
  });

  it("ignoreFailures keeps the release Ready with TestSuccess=False", async () => {
    const ns = "hf-test-ignore";
    const { repo, agent } = k.setup(ns);
    const chartRepo = charts.repository("tests-ignore");
    chartRepo.publish(testChart("1.0.0"));
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, chartRepo.url)],
      "clusters/test/release.yaml": [
        helmRelease(ns, "probe", "probe", {
          values: { testExit: 1 },
          test: { enable: true, ignoreFailures: true, filters: [{ name: "probe-test-ok" }] },
        }),
      ],
    });
    await agent.once();
    const obj = await hr(ns, "probe");
    expect(cond(obj, "TestSuccess")).toMatchObject({ status: "False", reason: "TestFailed" });
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect(obj?.status.history[0].testHooks).toMatchObject({ "probe-test-ok": { phase: "Failed" } });

    // Per-release series, as helm-controller exposes them.
    const labels = `kind="HelmRelease",name="probe",namespace="${ns}"`;
    const metrics = await agent.metrics.registry.metrics();
    expect(metrics).toContain(`gotk_reconcile_condition{${labels},type="Ready",status="True"} 1`);
    expect(metrics).toContain(`gotk_reconcile_condition{${labels},type="Ready",status="False"} 0`);
    expect(metrics).toContain(`gotk_suspend_status{${labels}} 0`);
    expect(metrics).toMatch(new RegExp(`gotk_reconcile_duration_seconds_count\\{${labels}\\} 1\n`));
    // (Every agent here reconciles every HelmRelease of the shared cluster: counts are at least this release's.)
    expect(metrics).toMatch(/shipmate_agent_helm_actions_total\{action="install"\} [1-9]/);
    expect(metrics).toMatch(/shipmate_agent_helm_actions_total\{action="test"\} [1-9]/);
  });
});

describe("HelmRelease CRD policies and uninstall remediation", () => {
  const crd = (version: string, columns: boolean) => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: widgets.example.com
  annotations: { chart-version: "${version}" }
spec:
  group: example.com
  names: { kind: Widget, plural: widgets, singular: widget }
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema: { openAPIV3Schema: { type: object, x-kubernetes-preserve-unknown-fields: true } }
${columns ? "      additionalPrinterColumns: [{ name: Size, type: string, jsonPath: .spec.size }]\n" : ""}`;

  it("upgrade.crds CreateReplace brings the chart's CRDs up to date; a failed upgrade with strategy uninstall is uninstalled", async () => {
    const ns = "hf-crds";
    const { repo, agent } = k.setup(ns);
    const chartRepo = charts.repository("crds");
    const chart = (version: string, columns: boolean) =>
      configMapChart("widgets", version, {
        values: { greeting: "hello", replicas: 1, cmName: "widgets-extra" },
        templates: {
          ...configMapChart("widgets", version).templates,
          "extra.yaml": "apiVersion: v1\nkind: ConfigMap\nmetadata:\n  name: {{ .Values.cmName }}\n",
        },
        files: { "crds/widgets.yaml": crd(version, columns) },
      });
    chartRepo.publish(chart("1.0.0", false));
    const release = (values: object) =>
      helmRelease(ns, "widgets", "widgets", {
        values,
        install: { crds: "CreateReplace" },
        upgrade: { crds: "CreateReplace", remediation: { retries: 1, strategy: "uninstall" } },
      });
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [helmRepository(ns, chartRepo.url)],
      "clusters/test/release.yaml": [release({})],
    });
    await agent.once();
    const crdPath = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/widgets.example.com";
    expect(cond(await hr(ns, "widgets"), "Ready")).toMatchObject({ status: "True" });
    expect((await get(crdPath))?.metadata.annotations["chart-version"]).toBe("1.0.0");

    chartRepo.publish(chart("1.1.0", true));
    await agent.pass(never, true);
    expect(cond(await hr(ns, "widgets"), "Ready")).toMatchObject({
      status: "True",
      reason: "UpgradeSucceeded",
    });
    const updated = await get(crdPath);
    expect(updated?.metadata.annotations["chart-version"]).toBe("1.1.0");
    expect(updated?.spec.versions[0].additionalPrinterColumns).toEqual([
      { name: "Size", type: "string", jsonPath: ".spec.size" },
    ]);

    // An object the API server refuses: the upgrade is recorded failed, then uninstalled.
    repo.commit({ "clusters/test/release.yaml": [release({ cmName: "Not_A_Name" })] });
    await agent.once();
    const obj = await hr(ns, "widgets");
    expect(cond(obj, "Ready")).toMatchObject({ status: "False", reason: "UpgradeFailed" });
    expect(cond(obj, "Remediated")).toMatchObject({ status: "True", reason: "UninstallSucceeded" });
    expect(await get(`/api/v1/namespaces/${ns}/configmaps/widgets-config`)).toBeUndefined();
    // CRDs stay, as Helm keeps them.
    expect(await get(crdPath)).toBeDefined();
  });
});

describe("create source helm / create helmrelease, applied", () => {
  it("applies both; the agent installs the release", async () => {
    const ns = "hf-create";
    const { repo, agent } = k.setup(ns);
    const chartRepo = charts.repository("create");
    chartRepo.publish(configMapChart("hello", "1.2.0"));
    repo.commit({ "clusters/test/ns.yaml": [namespace(ns)] });
    await agent.once();
    const kc = `--kubeconfig=${k.kube.kubeconfig}`;
    const src = await runCli([
      "create",
      "source",
      "helm",
      "charts",
      `--url=${chartRepo.url}`,
      "-n",
      ns,
      "--no-wait",
      kc,
    ]);
    expect(src.stdout).toBe(`HelmRepository ${ns}/charts created\n`);
    const rel = await runCli([
      "create",
      "hr",
      "hello",
      "--source=HelmRepository/charts",
      "--chart=hello",
      "--chart-version=1.x",
      "-n",
      ns,
      "--no-wait",
      kc,
    ]);
    expect(rel.stdout).toBe(`HelmRelease ${ns}/hello created\n`);
    await agent.pass(never, true);
    expect(cond(await hr(ns, "hello"), "Ready")).toMatchObject({
      status: "True",
      reason: "InstallSucceeded",
    });
    expect((await get(`/api/v1/namespaces/${ns}/configmaps/hello-config`))?.data.version).toBe("1.2.0");
  });
});
