/**
 * Helm charts in an OCI registry, through the agent, on real parts: charts
 * packaged and pushed by the real `helm push` to Debian's docker-registry
 * (anonymous, and behind token auth), the real kube-apiserver, the real
 * helm installing them. An OCI HelmRepository is a data container (empty
 * status, as source-controller keeps it); the HelmChart lists the tags,
 * picks the version and pulls the chart layer; a HelmRelease's chartRef
 * reads a chart from an OCIRepository or an ExternalArtifact.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, describe, expect, it, vi } from "vitest";
import { parseAllDocuments } from "yaml";
import { init } from "../../src/scaffold/scaffold.ts";
import { type ApiJson, getObject, namespace } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { type ChartSource, configMapChart, helm, helmBinary, writeChart } from "../infra/charts.ts";
import { type CountingProxy, countingProxy } from "../infra/proxy.ts";
import { startRegistry, type TestRegistry } from "../infra/registry.ts";

const run = promisify(execFile);
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let open: TestRegistry;
let locked: TestRegistry;
const reader = { username: "reader", password: "reader-secret-7f3a" };
const proxies: CountingProxy[] = [];
const never = new AbortController().signal;
const home = mkdtempSync(join(tmpdir(), "shipmate-oci-helm-"));

const k = kubeSuite({
  name: "helm-oci",
  alongside: async () => {
    [open, locked] = await Promise.all([
      startRegistry(),
      startRegistry({
        auth: "token",
        users: [{ ...reader, access: [{ repository: "charts/*", actions: ["pull"] }] }],
      }),
    ]);
  },
});
afterAll(async () => {
  for (const p of proxies) await p.close();
  await open?.stop();
  await locked?.stop();
  rmSync(home, { recursive: true, force: true });
});

/**
 * `helm package` then `helm push` to `oci://<host>/<path>`, as a chart
 * publisher does. The push runs asynchronously: the token server answering
 * helm lives in this process.
 */
async function pushChart(reg: TestRegistry, path: string, chart: ChartSource): Promise<void> {
  const src = join(home, "src", `${chart.name}-${chart.version}`);
  mkdirSync(src, { recursive: true });
  const dir = writeChart(src, chart);
  const out = join(home, "out");
  mkdirSync(out, { recursive: true });
  helm(["package", dir, "--destination", out], { home });
  const auth =
    reg.auth === "none" ? [] : ["--username", reg.admin.username, "--password", reg.admin.password];
  await run(
    helmBinary(),
    [
      "push",
      join(out, `${chart.name}-${chart.version}.tgz`),
      `oci://${reg.host}/${path}`,
      "--plain-http",
      ...auth,
    ],
    {
      env: {
        PATH: process.env.PATH ?? "/usr/bin:/bin",
        HOME: home,
        HELM_CACHE_HOME: join(home, "cache"),
        HELM_CONFIG_HOME: join(home, "config"),
        HELM_DATA_HOME: join(home, "data"),
      },
    },
  );
}

const ociHelmRepository = (ns: string, name: string, url: string, extra: Record<string, unknown> = {}) => ({
  apiVersion: "source.toolkit.fluxcd.io/v1",
  kind: "HelmRepository",
  metadata: { name, namespace: ns },
  spec: { type: "oci", interval: "10m", url, insecure: true, ...extra },
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
const secret = (ns: string, name: string, stringData: Record<string, string>, type = "Opaque") => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: ns },
  type,
  stringData,
});

const hr = (ns: string, name: string) =>
  getObject(k.client, `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns}/helmreleases/${name}`);
const source = (ns: string, plural: string, name: string) =>
  getObject(k.client, `/apis/source.toolkit.fluxcd.io/v1/namespaces/${ns}/${plural}/${name}`);
const cond = (obj: ApiJson | undefined, type: string) =>
  (obj?.status?.conditions ?? []).find((c: { type: string }) => c.type === type);
const cm = (ns: string, name: string) => getObject(k.client, `/api/v1/namespaces/${ns}/configmaps/${name}`);

describe("OCI HelmRepository", () => {
  it("installs the newest matching chart pushed by helm push (a `+` version under its `_` tag), keeps the repository's status empty, and upgrades when a newer chart is pushed", async () => {
    const ns = "oci-open";
    await pushChart(open, "charts", configMapChart("greeter", "1.0.0"));
    await pushChart(open, "charts", configMapChart("greeter", "1.1.0+build.7"));
    await pushChart(open, "charts", configMapChart("greeter", "2.0.0"));
    await pushChart(open, "charts", configMapChart("greeter", "1.2.0-rc.1"));
    const { repo, agent } = k.setup(ns);
    // Every request the agent sends the registry, counted on the way.
    const proxy = await countingProxy(open.host);
    proxies.push(proxy);
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [ociHelmRepository(ns, "charts", `oci://${proxy.host}/charts`)],
      "clusters/test/release.yaml": [
        helmRelease(ns, "greeter", { chart: chartSpec("greeter", "charts", "1.x") }),
      ],
    });
    await agent.once();
    let obj = await hr(ns, "greeter");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect(obj?.status).toMatchObject({ lastAttemptedRevision: "1.1.0+build.7" });
    expect((await cm(ns, "greeter-config"))?.data.version).toBe("1.1.0+build.7");
    const chart = await source(ns, "helmcharts", `${ns}-greeter`);
    expect(chart?.status.artifact).toMatchObject({ revision: "1.1.0+build.7" });
    // A data container, as source-controller keeps it: no artifact, no conditions.
    const repoObj = await source(ns, "helmrepositories", "charts");
    expect(repoObj?.status ?? {}).toEqual({});
    const reconcile = await runCli([
      "reconcile",
      "source",
      "helm",
      "charts",
      "-n",
      ns,
      "--timeout",
      "5s",
      "--kubeconfig",
      k.kube.kubeconfig,
    ]);
    expect(reconcile.code).not.toBe(0);
    expect(reconcile.stderr).toContain(`HelmRepository ${ns}/charts has type oci: it is a static object`);
    const listed = await runCli(["get", "sources", "helm", "-n", ns, "--kubeconfig", k.kube.kubeconfig]);
    expect(listed.stdout).toMatch(/charts\s+-\s+False\s+True\s+static object/);

    // The pull: one manifest GET by digest, one blob GET (the chart layer).
    expect(proxy.log.filter((l) => l.startsWith("GET /v2/charts/greeter/manifests/sha256:"))).toHaveLength(1);
    expect(proxy.log.filter((l) => l.startsWith("GET /v2/charts/greeter/blobs/"))).toHaveLength(1);

    // Steady: nothing changed upstream, nothing runs and nothing is written;
    // the registry is asked for the tags and the picked tag's digest, nothing else.
    const before = { ...agent.helm.actions };
    const seen = proxy.log.length;
    const summary = await agent.pass(never, true);
    expect(agent.helm.actions).toEqual(before);
    expect(summary.writes).toBe(0);
    expect(proxy.log.slice(seen)).toEqual([
      "GET /v2/charts/greeter/tags/list",
      "HEAD /v2/charts/greeter/manifests/1.1.0_build.7",
    ]);

    await pushChart(open, "charts", configMapChart("greeter", "1.3.0"));
    await agent.pass(never, true);
    obj = await hr(ns, "greeter");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "UpgradeSucceeded" });
    expect((await cm(ns, "greeter-config"))?.data.version).toBe("1.3.0");
  });

  it("pulls from a token-auth registry with a dockerconfigjson Secret or a username/password Secret, and fails closed with one line without them", async () => {
    const ns = "oci-locked";
    await pushChart(locked, "charts", configMapChart("locked", "0.1.0"));
    const { repo, agent } = k.setup(ns);
    const dockerConfig = JSON.stringify({
      auths: {
        [locked.host]: {
          auth: Buffer.from(`${reader.username}:${reader.password}`).toString("base64"),
        },
      },
    });
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/secrets.yaml": [
        secret(ns, "docker", { ".dockerconfigjson": dockerConfig }, "kubernetes.io/dockerconfigjson"),
        secret(ns, "basic", reader),
      ],
      "clusters/test/repo.yaml": [
        ociHelmRepository(ns, "docker", `oci://${locked.host}/charts`, { secretRef: { name: "docker" } }),
        ociHelmRepository(ns, "basic", `oci://${locked.host}/charts`, { secretRef: { name: "basic" } }),
        ociHelmRepository(ns, "anonymous", `oci://${locked.host}/charts`),
      ],
      "clusters/test/release.yaml": [
        helmRelease(ns, "with-docker", { chart: chartSpec("locked", "docker") }),
        helmRelease(ns, "with-basic", { chart: chartSpec("locked", "basic") }),
        helmRelease(ns, "anonymous", { chart: chartSpec("locked", "anonymous") }),
      ],
    });
    await agent.once();
    for (const name of ["with-docker", "with-basic"]) {
      const obj = await hr(ns, name);
      expect(cond(obj, "Ready"), name).toMatchObject({ status: "True", reason: "InstallSucceeded" });
      expect((await cm(ns, `${name}-config`))?.data.version).toBe("0.1.0");
    }
    const chart = await source(ns, "helmcharts", `${ns}-anonymous`);
    expect(cond(chart, "Ready")).toMatchObject({ status: "False" });
    expect(cond(chart, "Ready").message).not.toContain("\n");
    expect(cond(await hr(ns, "anonymous"), "Ready")).toMatchObject({ status: "False" });
    expect(JSON.stringify(await source(ns, "helmcharts", `${ns}-with-basic`))).not.toContain(reader.password);
  });

  it("refuses what it does not honour on an OCI HelmRepository, and reports a version nothing matches", async () => {
    const ns = "oci-bad";
    await pushChart(open, "bad", configMapChart("tiny", "1.0.0"));
    const { repo, agent } = k.setup(ns);
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/repo.yaml": [
        ociHelmRepository(ns, "aws", `oci://${open.host}/bad`, { provider: "aws" }),
        ociHelmRepository(ns, "ok", `oci://${open.host}/bad`),
      ],
      "clusters/test/release.yaml": [
        helmRelease(ns, "refused", { chart: chartSpec("tiny", "aws") }),
        helmRelease(ns, "nomatch", { chart: chartSpec("tiny", "ok", "9.x") }),
      ],
    });
    await agent.once();
    const aws = await source(ns, "helmrepositories", "aws");
    expect(cond(aws, "Stalled")).toMatchObject({ status: "True", reason: "UnsupportedField" });
    expect(cond(aws, "Stalled").message).toContain("provider");
    expect(cond(await hr(ns, "refused"), "Ready")).toMatchObject({ status: "False" });
    const nomatch = await source(ns, "helmcharts", `${ns}-nomatch`);
    expect(cond(nomatch, "Ready")).toMatchObject({ status: "False", reason: "ChartPullFailed" });
    expect(cond(nomatch, "Ready").message).toContain('no version of chart "tiny" matches "9.x"');

    // The refused field removed: the repository's status is emptied again, and its chart installs.
    repo.commit({
      "clusters/test/repo.yaml": [
        ociHelmRepository(ns, "aws", `oci://${open.host}/bad`),
        ociHelmRepository(ns, "ok", `oci://${open.host}/bad`),
      ],
    });
    await agent.pass(never, true);
    expect((await source(ns, "helmrepositories", "aws"))?.status ?? {}).toEqual({});
    expect(cond(await hr(ns, "refused"), "Ready")).toMatchObject({ status: "True" });
  });
});

describe("HelmRelease chartRef", () => {
  const ociRepository = (ns: string, name: string, url: string, extra: Record<string, unknown> = {}) => ({
    apiVersion: "source.toolkit.fluxcd.io/v1",
    kind: "OCIRepository",
    metadata: { name, namespace: ns },
    spec: { interval: "10m", url, insecure: true, ...extra },
  });

  it("installs a chart from an OCIRepository (its version marked with the artifact digest, as helm-controller does) and from an ExternalArtifact an ArtifactGenerator composed; a chart re-pushed under the same version is an upgrade", async () => {
    const ns = "oci-ref";
    await pushChart(open, "ref", configMapChart("refchart", "1.0.0"));
    await pushChart(open, "ref", configMapChart("refchart", "1.4.0"));
    const { repo, agent } = k.setup(ns);
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/sources.yaml": [
        ociRepository(ns, "chart", `oci://${open.host}/ref/refchart`, { ref: { semver: "1.x" } }),
        ociRepository(ns, "copied", `oci://${open.host}/ref/refchart`, {
          ref: { tag: "1.0.0" },
          layerSelector: {
            mediaType: "application/vnd.cncf.helm.chart.content.v1.tar+gzip",
            operation: "copy",
          },
        }),
        {
          apiVersion: "source.extensions.fluxcd.io/v1beta1",
          kind: "ArtifactGenerator",
          metadata: { name: "composer", namespace: ns },
          spec: {
            sources: [{ alias: "chart", kind: "OCIRepository", name: "chart" }],
            artifacts: [
              {
                name: "composite",
                copy: [{ from: "@chart/**", to: "@artifact/" }],
              },
            ],
          },
        },
      ],
      "clusters/test/release.yaml": [
        helmRelease(ns, "from-oci", { chartRef: { kind: "OCIRepository", name: "chart" } }),
        helmRelease(ns, "from-copy", { chartRef: { kind: "OCIRepository", name: "copied" } }),
        helmRelease(ns, "from-ea", { chartRef: { kind: "ExternalArtifact", name: "composite" } }),
      ],
    });
    await agent.once();
    await agent.pass(never, true);
    const oci = await source(ns, "ocirepositories", "chart");
    const digest = String(oci?.status.artifact.revision).split("@sha256:")[1] ?? "";
    expect(oci?.status.artifact.revision).toMatch(/^1\.4\.0@sha256:[0-9a-f]{64}$/);
    let obj = await hr(ns, "from-oci");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect(obj?.status.helmChart).toBeUndefined();
    expect(obj?.status.lastAttemptedRevision).toBe(`1.4.0+${digest.slice(0, 12)}`);
    expect((await cm(ns, "from-oci-config"))?.data.version).toBe(`1.4.0+${digest.slice(0, 12)}`);
    expect((await cm(ns, "from-copy-config"))?.data.version).toMatch(/^1\.0\.0\+[0-9a-f]{12}$/);
    const ea = await source(ns, "externalartifacts", "composite");
    const eaDigest = String(ea?.status.artifact.digest).replace("sha256:", "");
    expect(cond(await hr(ns, "from-ea"), "Ready")).toMatchObject({ status: "True" });
    expect((await cm(ns, "from-ea-config"))?.data.version).toBe(`1.4.0+${eaDigest.slice(0, 12)}`);

    // Steady: no Helm action, no write.
    const before = { ...agent.helm.actions };
    const summary = await agent.pass(never, true);
    expect(agent.helm.actions).toEqual(before);
    expect(summary.writes).toBe(0);

    // The same version pushed again with other content: a new digest, so an upgrade.
    await pushChart(
      open,
      "ref",
      configMapChart("refchart", "1.4.0", { values: { greeting: "again", replicas: 1 } }),
    );
    await agent.pass(never, true);
    obj = await hr(ns, "from-oci");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "UpgradeSucceeded" });
    expect((await cm(ns, "from-oci-config"))?.data.greeting).toBe("again");
    expect(obj?.status.lastAttemptedRevision).not.toBe(`1.4.0+${digest.slice(0, 12)}`);
  });

  it("refuses an OCIRepository whose artifact is no chart, and one whose tag names another version than its Chart.yaml", async () => {
    const ns = "oci-ref-bad";
    await pushChart(open, "mislabel", configMapChart("mislabel", "2.0.0"));
    // The 2.0.0 manifest re-tagged 3.0.0 over the registry API: tag and Chart.yaml disagree.
    const manifestRes = await fetch(`${open.url}/v2/mislabel/mislabel/manifests/2.0.0`, {
      headers: { accept: "application/vnd.oci.image.manifest.v1+json" },
    });
    const body = Buffer.from(await manifestRes.arrayBuffer());
    const put = await fetch(`${open.url}/v2/mislabel/mislabel/manifests/3.0.0`, {
      method: "PUT",
      headers: { "content-type": "application/vnd.oci.image.manifest.v1+json" },
      body,
    });
    expect(put.status).toBe(201);
    // A Flux manifests artifact, not a chart.
    const tree = mkdtempSync(join(home, "manifests-"));
    writeFileSync(join(tree, "cm.yaml"), "apiVersion: v1\nkind: ConfigMap\nmetadata: {name: x}\n");
    const pushed = await runCli([
      "push",
      "artifact",
      `oci://${open.host}/notchart/app:1.0.0`,
      "--path",
      tree,
    ]);
    expect(pushed.code, pushed.stderr).toBe(0);
    const { repo, agent } = k.setup(ns);
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/sources.yaml": [
        ociRepository(ns, "mislabel", `oci://${open.host}/mislabel/mislabel`, { ref: { tag: "3.0.0" } }),
        ociRepository(ns, "notchart", `oci://${open.host}/notchart/app`, { ref: { tag: "1.0.0" } }),
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "GitRepository",
          metadata: { name: "manifests", namespace: ns },
          spec: { interval: "10m", url: repo.url, ref: { branch: "main" } },
        },
      ],
      "clusters/test/release.yaml": [
        helmRelease(ns, "mislabel", { chartRef: { kind: "OCIRepository", name: "mislabel" } }),
        helmRelease(ns, "git", { chartRef: { kind: "GitRepository", name: "manifests" } }),
        helmRelease(ns, "notchart", { chartRef: { kind: "OCIRepository", name: "notchart" } }),
      ],
    });
    await agent.once();
    const notchart = cond(await hr(ns, "notchart"), "Ready");
    expect(notchart).toMatchObject({ status: "False", reason: "ArtifactFailed" });
    expect(notchart.message).toMatch(
      /^OCIRepository oci-ref-bad\/notchart at 1\.0\.0@sha256:[0-9a-f]{64} holds no Helm chart/,
    );
    const mis = cond(await hr(ns, "mislabel"), "Ready");
    expect(mis).toMatchObject({ status: "False", reason: "ChartMutateError" });
    expect(mis.message).toBe("artifact revision 3.0.0 does not match chart version 2.0.0");
    const git = cond(await hr(ns, "git"), "Ready");
    expect(git).toMatchObject({ status: "False", reason: "InvalidSpec" });
  });

  it("moving a HelmRelease from chart to chartRef upgrades it from the new source and deletes the HelmChart made for the template", async () => {
    const ns = "oci-move";
    await pushChart(open, "move", configMapChart("mover", "1.0.0"));
    const { repo, agent } = k.setup(ns);
    const sources = [
      ociHelmRepository(ns, "charts", `oci://${open.host}/move`),
      ociRepository(ns, "mover", `oci://${open.host}/move/mover`, { ref: { tag: "1.0.0" } }),
    ];
    repo.commit({
      "clusters/test/ns.yaml": [namespace(ns)],
      "clusters/test/sources.yaml": sources,
      "clusters/test/release.yaml": [helmRelease(ns, "mover", { chart: chartSpec("mover", "charts") })],
    });
    await agent.once();
    expect((await hr(ns, "mover"))?.status.helmChart).toBe(`${ns}/${ns}-mover`);
    expect(await source(ns, "helmcharts", `${ns}-mover`)).toBeDefined();
    repo.commit({
      "clusters/test/release.yaml": [
        helmRelease(ns, "mover", { chartRef: { kind: "OCIRepository", name: "mover" } }),
      ],
    });
    await agent.pass(never, true);
    const obj = await hr(ns, "mover");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "UpgradeSucceeded" });
    expect(obj?.status.helmChart).toBeUndefined();
    expect(obj?.status.lastAttemptedRevision).toMatch(/^1\.0\.0\+[0-9a-f]{12}$/);
    expect(await source(ns, "helmcharts", `${ns}-mover`)).toBeUndefined();
  });
});

describe("a fleet from shipmate init --layout repo-per-app --app-source helm", () => {
  it("installs the app chart the scaffold wrote, packaged and pushed with helm push, through its OCI HelmRepository and HelmRelease (valuesFiles values.yaml + values-staging.yaml)", async () => {
    const ns = "shipmate-system";
    // The fleet repository and each app repository, side by side in `out`.
    const out = mkdtempSync(join(home, "init-"));
    await init({
      layout: "repo-per-app",
      appSource: "helm",
      out,
      envs: ["staging", "production"],
      teams: [],
      apps: ["web"],
      noGit: true,
      registry: `${open.host}/acme`,
    });
    // The app repository's chart, published as its CI would.
    const pkg = join(home, "init-out");
    helm(["package", join(out, "web", "chart"), "--destination", pkg], { home });
    await run(
      helmBinary(),
      ["push", join(pkg, "web-1.0.0.tgz"), `oci://${open.host}/acme/charts`, "--plain-http"],
      {
        env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
      },
    );
    // The staging app source as scaffolded; no kubelet runs here, so the release does not wait for pods.
    const docs = parseAllDocuments(readFileSync(join(out, "fleet", "apps", "staging", "web.yaml"), "utf8"))
      .map((d) => d.toJS() as ApiJson)
      .filter((d) => d?.kind === "HelmRepository" || d?.kind === "HelmRelease");
    expect(docs.map((d) => d.kind)).toEqual(["HelmRepository", "HelmRelease"]);
    const release = docs[1] as ApiJson;
    release.spec.install = { ...release.spec.install, disableWait: true };
    // Until the Helm storage can live apart from the target namespace (refused today, see docs/helm.md).
    release.spec.storageNamespace = release.spec.targetNamespace;
    const { repo, agent } = k.setup("init-helm");
    repo.commit({ "clusters/test/ns.yaml": [namespace(ns)], "clusters/test/web.yaml": docs });
    await agent.once();
    const obj = await hr(ns, "web");
    expect(cond(obj, "Ready")).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    // With valuesFiles, source-controller publishes the chart as <version>+<HelmChart generation>.
    expect(obj?.status.lastAttemptedRevision).toBe("1.0.0+1");
    const deploy = await getObject(k.client, "/apis/apps/v1/namespaces/web/deployments/web");
    expect(deploy?.metadata.labels["app.kubernetes.io/name"]).toBe("web");
    // The image the scaffold wrote into the chart's values files.
    expect(deploy?.spec.template.spec.containers[0].image).toMatch(new RegExp(`^${open.host}/acme/web:`));
  });
});
