/**
 * `npm run bench -- helm [releases]`: the agent's HelmRelease reconciler on
 * the real helm (v4, scripts/provision/60-helm.sh) beside a `helm upgrade
 * --install` loop over the same releases, on one real kube-apiserver, with
 * charts from an HTTP chart repository on 127.0.0.1 (`helm repo index`).
 *
 * Flux's own helm-controller is the peer the issue names; of its Go module
 * the proxy here serves only v1.4.0 (403 for the others tried), and it is not
 * built yet (bench/RESULTS.md); the helm loop is what a CI job or a person
 * does without a controller.
 *
 * Figures: wall time of the first install of N releases and of a forced
 * no-op pass, helm actions run, write requests (apiserver_request_total,
 * dry runs excluded), and the peak RSS of this process for the agent.
 */
import { execFile, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { request } from "node:https";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { FleetRepo, makeAgent } from "../test/agent/helpers.ts";
import { configMapChart, helmBinary, startChartServer } from "../test/infra/charts.ts";
import { findBinary, type KubeCluster, startKube } from "../test/infra/kube.ts";

const N = Number(process.argv[2] ?? 50);

function apiserverWrites(kube: KubeCluster): Promise<number> {
  return new Promise((resolve, reject) => {
    const req = request(
      `${kube.server}/metrics`,
      { ca: kube.caPem, headers: { authorization: `Bearer ${kube.adminToken}` } },
      (res) => {
        let text = "";
        res.on("data", (d) => (text += d));
        res.on("end", () => {
          let n = 0;
          for (const line of text.split("\n")) {
            if (!line.startsWith("apiserver_request_total{") || !/dry_run=""/.test(line)) continue;
            if (!/verb="(APPLY|PATCH|POST|PUT|DELETE|DELETECOLLECTION|CREATE|UPDATE)"/.test(line)) continue;
            n += Number(line.split(" ").pop());
          }
          resolve(n);
        });
      },
    );
    req.on("error", reject);
    req.end();
  });
}

const peakRssMb = () =>
  Math.round(Number(/VmHWM:\s+(\d+) kB/.exec(readFileSync("/proc/self/status", "utf8"))?.[1] ?? 0) / 1024);

async function main() {
  const kube = await startKube({ name: "bench-helm" });
  const charts = await startChartServer();
  const fleet = FleetRepo.create();
  const home = mkdtempSync(join(tmpdir(), "shipmate-bench-helm-home-"));
  try {
    const repo = charts.repository("bench");
    repo.publish(configMapChart("demo", "1.0.0"));
    const ns = (name: string) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } });
    const releases = Array.from({ length: N }, (_, i) => ({
      apiVersion: "helm.toolkit.fluxcd.io/v2",
      kind: "HelmRelease",
      metadata: { name: `demo-${i}`, namespace: "bench-agent" },
      spec: {
        interval: "10m",
        chart: {
          spec: { chart: "demo", version: "1.x", sourceRef: { kind: "HelmRepository", name: "bench" } },
        },
        values: { greeting: `hello ${i}` },
      },
    }));
    fleet.commit({
      "clusters/test/helm.yaml": [
        ns("bench-agent"),
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "HelmRepository",
          metadata: { name: "bench", namespace: "bench-agent" },
          spec: { interval: "10m", url: repo.url },
        },
        ...releases,
      ],
    });
    const agent = makeAgent(kube, fleet, { name: "bench" });

    let w0 = await apiserverWrites(kube);
    let t = performance.now();
    const first = await agent.once();
    const agentInstallS = (performance.now() - t) / 1000;
    const agentInstallWrites = (await apiserverWrites(kube)) - w0;
    const installed = first.helmReleases.filter((r) => r.ready).length;
    if (installed !== N) throw new Error(`agent installed ${installed} of ${N} releases`);
    const actionsAfterInstall = agent.helm.total;

    const noop: number[] = [];
    const noopWrites: number[] = [];
    for (let i = 0; i < 3; i++) {
      w0 = await apiserverWrites(kube);
      t = performance.now();
      await agent.pass(new AbortController().signal, true);
      noop.push((performance.now() - t) / 1000);
      noopWrites.push((await apiserverWrites(kube)) - w0);
    }
    const noopActions = agent.helm.total - actionsAfterInstall;
    const agentRss = peakRssMb();
    agent.close();

    // The peer: helm upgrade --install, one release at a time, the same chart and values.
    execFileSync("kubectl", ["--kubeconfig", kube.kubeconfig, "create", "namespace", "bench-loop"]);
    const env = {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: home,
      HELM_CACHE_HOME: join(home, "cache"),
      HELM_CONFIG_HOME: join(home, "config"),
      HELM_DATA_HOME: join(home, "data"),
      KUBECONFIG: kube.kubeconfig,
    };
    // Asynchronous: the chart repository is served by this very process.
    const run = promisify(execFile);
    const helm = (args: string[]) => run(helmBinary(), args, { env });
    await helm(["repo", "add", "bench", repo.url]);
    const valuesFile = (i: number) => {
      const f = join(home, `values-${i}.json`);
      writeFileSync(f, JSON.stringify({ greeting: `hello ${i}` }));
      return f;
    };
    const loop = async () => {
      for (let i = 0; i < N; i++)
        await helm([
          "upgrade",
          "--install",
          `demo-${i}`,
          "bench/demo",
          "--version",
          "1.x",
          "-n",
          "bench-loop",
          "-f",
          valuesFile(i),
        ]);
    };
    w0 = await apiserverWrites(kube);
    t = performance.now();
    await loop();
    const loopInstallS = (performance.now() - t) / 1000;
    const loopInstallWrites = (await apiserverWrites(kube)) - w0;
    w0 = await apiserverWrites(kube);
    t = performance.now();
    await loop();
    const loopAgainS = (performance.now() - t) / 1000;
    const loopAgainWrites = (await apiserverWrites(kube)) - w0;

    const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)] ?? 0;
    const apiserver = execFileSync(findBinary("kube-apiserver"), ["--version"], { encoding: "utf8" }).trim();
    const helmVersion = execFileSync(helmBinary(), ["version", "--short"], { encoding: "utf8" }).trim();
    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}, ${apiserver}, helm ${helmVersion}`,
    );
    console.log(`releases: ${N} of a one-ConfigMap chart from an HTTP chart repository\n`);
    console.log(
      "| | first install | its writes | again, nothing changed | its writes | helm actions again | peak RSS |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    console.log(
      `| shipmate agent (in-process pass) | ${agentInstallS.toFixed(2)} s | ${agentInstallWrites} | ${median(noop).toFixed(2)} s (median of 3: ${noop.map((s) => s.toFixed(2)).join(", ")}) | ${median(noopWrites)} | ${noopActions} | ${agentRss} MB |`,
    );
    console.log(
      `| helm upgrade --install loop | ${loopInstallS.toFixed(2)} s | ${loopInstallWrites} | ${loopAgainS.toFixed(2)} s | ${loopAgainWrites} | ${N} | - |`,
    );
  } finally {
    fleet.remove();
    rmSync(home, { recursive: true, force: true });
    await charts.stop();
    await kube.stop();
  }
}

await main();
