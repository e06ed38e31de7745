/**
 * End to end on a scaffolded Helm fleet (`shipmate init --layout
 * repo-per-app --app-source helm`), on real parts only: the app's chart
 * packaged and pushed with the real `helm push` to a real registry on
 * 127.0.0.1, the fleet in git, the agent on the real kube-apiserver with
 * the real helm, `shipmate update` moving the chart version.
 *   1. The agent installs the staging release from the scaffold's OCI
 *      HelmRepository (v1).
 *   2. A new chart version is pushed; a policy on the chart's OCI repository
 *      selects it; `shipmate update` writes it into `chart.spec.version`; the
 *      agent upgrades (helm history shows v2).
 *   3. A values change that violates the chart's values.schema.json: the
 *      upgrade fails, Ready=False with Helm's reason, retried as
 *      `upgrade.remediation.retries` says, then RetriesExceeded; v2 stays
 *      deployed.
 * What the test edits in the scaffold's output, as a team adopting it would:
 * the chart gets a values.schema.json; staging pins `chart.spec.version`
 * with an `$imagepolicy` marker and a policy for it (the scaffold follows a
 * range); the release does not wait for pods (no kubelet here) and retries
 * a failed upgrade once; the apps Kustomization's health-check timeout is 5s.
 */
import { execFile } from "node:child_process";
import { mkdirSync, mkdtempSync, readdirSync, readFileSync, rmSync, statSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join, relative } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { parse, parseAllDocuments, stringify } from "yaml";
import type { Agent } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { init } from "../../src/scaffold/scaffold.ts";
import { type ApiJson, adminClient, FleetRepo, getObject, makeAgent } from "../agent/helpers.ts";
import { runCli } from "../helpers/cli.ts";
import { helm, helmBinary } from "../infra/charts.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";
import { startRegistry, type TestRegistry } from "../infra/registry.ts";

const run = promisify(execFile);
vi.setConfig({ testTimeout: 240_000, hookTimeout: 120_000 });

let kube: KubeCluster;
let client: KubeClient;
let reg: TestRegistry;
let agent: Agent | undefined;
let fleet: FleetRepo | undefined;
const home = mkdtempSync(join(tmpdir(), "shipmate-helm-e2e-"));
const never = new AbortController().signal;

beforeAll(async () => {
  [kube, reg] = await Promise.all([startKube({ name: "helm-e2e" }), startRegistry()]);
  client = adminClient(kube);
});
afterAll(async () => {
  agent?.close();
  client?.close();
  fleet?.remove();
  await reg?.stop();
  await kube?.stop();
  rmSync(home, { recursive: true, force: true });
});

const SCHEMA = {
  $schema: "https://json-schema.org/draft-07/schema#",
  type: "object",
  properties: { replicas: { type: "integer", minimum: 1 } },
};

/** Packages the app's chart at `version` and pushes it as its CI would. */
async function publish(chartDir: string, version: string): Promise<void> {
  const chartFile = join(chartDir, "Chart.yaml");
  writeFileSync(chartFile, stringify({ ...parse(readFileSync(chartFile, "utf8")), version }));
  const out = join(home, "pkg");
  helm(["package", chartDir, "--destination", out], { home });
  await run(
    helmBinary(),
    ["push", join(out, `hello-${version}.tgz`), `oci://${reg.host}/acme/charts`, "--plain-http"],
    {
      env: { PATH: process.env.PATH ?? "/usr/bin:/bin", HOME: home },
    },
  );
}

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

const hrPath = "/apis/helm.toolkit.fluxcd.io/v2/namespaces/shipmate-system/helmreleases/hello";
const ready = async () =>
  ((await getObject(client, hrPath))?.status?.conditions ?? []).find((c: ApiJson) => c.type === "Ready");
const history = () =>
  (
    JSON.parse(
      helm(["history", "hello", "-n", "shipmate-system", "-o", "json", "--kubeconfig", kube.kubeconfig], {
        home,
      }),
    ) as { revision: number; status: string; chart: string }[]
  ).map((h) => [h.revision, h.status, h.chart]);

describe("scaffolded Helm fleet: update moves the chart version, the agent upgrades, a schema violation is remediated", () => {
  it("v1 installed, v2 by shipmate update, then a values schema violation: UpgradeFailed, retried, RetriesExceeded", async () => {
    const out = join(home, "init");
    await init({
      layout: "repo-per-app",
      appSource: "helm",
      out,
      envs: ["staging", "production"],
      teams: [],
      apps: ["hello"],
      noGit: true,
      registry: `${reg.host}/acme`,
    });
    const chartDir = join(out, "hello", "chart");
    writeFileSync(join(chartDir, "values.schema.json"), JSON.stringify(SCHEMA, null, 2));
    await publish(chartDir, "1.0.0");

    // The staging app file as scaffolded, with the edits the header lists.
    const appFile = "apps/staging/hello.yaml";
    const docs = parseAllDocuments(readFileSync(join(out, "fleet", appFile), "utf8")).map(
      (d) => d.toJS() as ApiJson,
    );
    const repo = docs.find((d) => d.kind === "HelmRepository");
    const release = docs.find((d) => d.kind === "HelmRelease") as ApiJson;
    expect(repo?.spec).toMatchObject({ type: "oci", url: `oci://${reg.host}/acme/charts` });
    release.spec.install = { ...release.spec.install, disableWait: true };
    release.spec.upgrade = { disableWait: true, remediation: { retries: 1 } };
    release.spec.chart.spec.version = "1.0.0";
    const marker = '{"$imagepolicy": "shipmate-system:hello-chart-staging:tag"}';
    const policy = `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: hello-chart-staging, namespace: shipmate-system}
spec: {image: ${reg.host}/acme/charts/hello, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: hello-chart-staging, namespace: shipmate-system}
spec:
  imageRepositoryRef: {name: hello-chart-staging}
  policy: {semver: {range: ">=1.0.0"}}
`;
    // The apps Kustomization waits on the release (wait: true): a short timeout keeps a failing one from holding a pass 5m.
    const fleetFiles = filesOf(join(out, "fleet"));
    const appsKs = "clusters/staging/apps.yaml";
    fleetFiles[appsKs] = (fleetFiles[appsKs] ?? "").replace("timeout: 5m", "timeout: 5s");
    fleet = FleetRepo.create();
    fleet.commit({
      ...fleetFiles,
      [appFile]: [repo, release]
        .map((d) => stringify(d))
        .join("---\n")
        .replace(/version: 1\.0\.0\n/, `version: 1.0.0 # ${marker}\n`),
    });
    agent = makeAgent(kube, fleet, {
      name: "shipmate-system",
      namespace: "shipmate-system",
      path: "clusters/staging",
    });

    // 1. Installed from the OCI HelmRepository.
    await agent.once();
    expect(await ready()).toMatchObject({ status: "True", reason: "InstallSucceeded" });
    expect(history()).toEqual([[1, "deployed", "hello-1.0.0+1"]]);

    // 2. A new chart version, selected by the policy, written by shipmate update.
    await publish(chartDir, "1.1.0");
    // The chart policy alone (the scaffold's agent-image policy would ask ghcr.io, unreachable here).
    const policies = join(home, "policies");
    mkdirSync(policies, { recursive: true });
    writeFileSync(join(policies, "hello-chart.yaml"), policy);
    const upd = await runCli(["update", "--repo", fleet.work, "--policies", policies, "--commit"]);
    expect(upd.code, upd.stderr).toBe(0);
    expect(readFileSync(join(fleet.work, appFile), "utf8")).toContain(`version: 1.1.0 # ${marker}`);
    fleet.commit({}, "push the update");
    await agent.once();
    // The HelmChart's spec moved (generation 2): source-controller versions a chart with valuesFiles `+<generation>`.
    expect(await ready()).toMatchObject({
      status: "True",
      reason: "UpgradeSucceeded",
      message: "Helm upgrade succeeded for release hello/hello.v2 with chart hello@1.1.0+2",
    });
    expect(history()).toEqual([
      [1, "superseded", "hello-1.0.0+1"],
      [2, "deployed", "hello-1.1.0+2"],
    ]);

    // 3. Values the chart's schema refuses: the upgrade fails, is retried once, then retries are exhausted.
    const text = readFileSync(join(fleet.work, appFile), "utf8");
    fleet.commit({ [appFile]: text.replace(/\n {2}chart:\n/, "\n  values:\n    replicas: 0\n  chart:\n") });
    await agent.once();
    let r = await ready();
    expect(r).toMatchObject({ status: "False", reason: "UpgradeFailed" });
    expect(r.message).toMatch(
      /^Helm upgrade failed for release hello\/hello with chart hello@1\.1\.0\+2: .*values don't meet the specifications of the schema/,
    );
    expect(r.message).toContain("replicas");
    // Retried as upgrade.remediation.retries says (1), then no more: RetriesExceeded, Stalled.
    for (let i = 0; i < 4 && (await ready())?.reason !== "RetriesExceeded"; i++)
      await agent.pass(never, true);
    r = await ready();
    expect(r).toMatchObject({
      status: "False",
      reason: "RetriesExceeded",
      message: "Failed to upgrade after 2 attempt(s)",
    });
    expect((await getObject(client, hrPath))?.status.upgradeFailures).toBe(2);
    expect(agent.helm.actions).toMatchObject({ install: 1, upgrade: 3, rollback: 0 });
    const actions = { ...agent.helm.actions };
    await agent.pass(never, true);
    expect(agent.helm.actions).toEqual(actions); // no further attempt until the desired state changes
    // Nothing half-applied: v2 is still what runs.
    expect(history().at(-1)).toEqual([2, "deployed", "hello-1.1.0+2"]);
    const events = (await getObject(client, "/api/v1/namespaces/shipmate-system/events"))?.items ?? [];
    expect(events.filter((e: ApiJson) => e.reason === "UpgradeFailed").length).toBeGreaterThanOrEqual(1);
  });
});
