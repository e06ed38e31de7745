/**
 * `npm run bench -- helm [releases]`: the agent's HelmRelease reconciler on
 * the real helm (v4, scripts/provision/60-helm.sh) beside a `helm upgrade
 * --install` loop over the same releases, on one real kube-apiserver, with
 * charts from an HTTP chart repository on 127.0.0.1 (`helm repo index`).
 *
 * Flux's own helm-controller is the peer the issue names: v1.4.0 (the only
 * release the module proxy here serves) with source-controller v1.9.6, both
 * built from their Go modules by bench/peers/flux/build.sh and run outside the
 * cluster with a kubeconfig, under Flux's own CRDs, on the same API server and
 * chart repository. Without those binaries (or with BENCH_SKIP_PEERS=1) that
 * row is left out. The helm loop is what a CI job or a person does without a
 * controller.
 *
 * Figures: wall time of the first install of N releases and of a no-op
 * (the agent: a forced pass; helm-controller: a `requestedAt` request on every
 * release, timed until each echoes it), helm actions run, write requests
 * (apiserver_request_total, dry runs, the API server's own lease heartbeats and
 * the requests themselves excluded), and peak RSS.
 */
import { type ChildProcess, execFile, execFileSync } from "node:child_process";
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { stringify } from "yaml";
import { FleetRepo, makeAgent } from "../test/agent/helpers.ts";
import { configMapChart, helmBinary, startChartServer } from "../test/infra/charts.ts";
import { findBinary, type KubeCluster, startKube } from "../test/infra/kube.ts";
import {
  api,
  FLUX_VERSION,
  median,
  moduleDir,
  sleep,
  startFluxControllers,
  total,
  usage,
  waitFor,
  writesBy,
} from "./_flux.ts";
import { cacheRoot } from "./_lib.ts";

const N = Number(process.argv[2] ?? 50);

const apiserverWrites = async (kube: KubeCluster) => total(await writesBy(kube));
const HELM_CONTROLLER_VERSION = "v1.4.0";

interface PeerFigures {
  installS: number;
  installWrites: number;
  noopS: number[];
  noopWrites: number[];
  cpuS: number;
  peakMb: number;
}

/** The HelmReleases of a namespace, as `flux get helmreleases` reads them. */
async function releasesOf(kube: KubeCluster, ns: string) {
  const res = await api(kube, "GET", `/apis/helm.toolkit.fluxcd.io/v2/namespaces/${ns}/helmreleases`);
  if (res.code !== 200) throw new Error(`list HelmReleases in ${ns}: HTTP ${res.code}`);
  // biome-ignore lint/suspicious/noExplicitAny: status read field by field
  return (JSON.parse(res.body).items ?? []) as any[];
}

const isReady = (o: { status?: { conditions?: { type: string; status: string }[] } }) =>
  o.status?.conditions?.some((c) => c.type === "Ready" && c.status === "True") ?? false;

const kubectlOf =
  (kube: KubeCluster) =>
  (...a: string[]): string =>
    execFileSync("kubectl", ["--kubeconfig", kube.kubeconfig, ...a], { encoding: "utf8" });

const FLUX_BINARIES = [
  join(cacheRoot, "bin", "flux-source-controller"),
  join(cacheRoot, "bin", "flux-helm-controller"),
] as const;

/** Flux's own CRDs for the source and Helm kinds: both runs read the same objects under them. */
function installFluxCrds(kube: KubeCluster): void {
  const kubectl = kubectlOf(kube);
  kubectl(
    "apply",
    "--server-side",
    "-f",
    join(moduleDir("github.com/fluxcd/source-controller"), "config/crd/bases"),
  );
  kubectl(
    "apply",
    "--server-side",
    "-f",
    join(moduleDir("github.com/fluxcd/helm-controller", HELM_CONTROLLER_VERSION), "config/crd/bases"),
  );
  kubectl("wait", "--for=condition=Established", "crd/helmreleases.helm.toolkit.fluxcd.io");
}

/**
 * Flux's source-controller + helm-controller on the same releases in
 * namespace bench-flux, on an API server of their own.
 */
async function fluxPeer(
  kube: KubeCluster,
  objects: (ns: string) => object[],
  work: string,
): Promise<PeerFigures> {
  const [source, helmController] = FLUX_BINARIES;
  const kubectl = kubectlOf(kube);
  kubectl("create", "namespace", "flux-system");
  const children: ChildProcess[] = [];
  try {
    const w0 = await apiserverWrites(kube);
    const t0 = performance.now();
    children.push(...(await startFluxControllers(kube, work, source, { "helm-controller": helmController })));
    const file = join(work, "flux-objects.yaml");
    writeFileSync(
      file,
      objects("bench-flux")
        .map((o) => stringify(o))
        .join("---\n"),
    );
    kubectl("apply", "--server-side", "--field-manager=bench", "-f", file);
    await waitFor(
      "helm-controller to install every release",
      async () => (await releasesOf(kube, "bench-flux")).filter(isReady).length === N,
      600_000,
    );
    const installS = (performance.now() - t0) / 1000;
    await sleep(3000);
    const installWrites = (await apiserverWrites(kube)) - w0;
    const noopS: number[] = [];
    const noopWrites: number[] = [];
    for (let i = 0; i < 3; i++) {
      const at = new Date().toISOString() + i;
      const before = await apiserverWrites(kube);
      const t = performance.now();
      await Promise.all(
        Array.from({ length: N }, (_, r) =>
          api(
            kube,
            "PATCH",
            `/apis/helm.toolkit.fluxcd.io/v2/namespaces/bench-flux/helmreleases/demo-${r}`,
            { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": at } } },
            "application/merge-patch+json",
          ),
        ),
      );
      await waitFor(`helm-controller to handle ${at}`, async () =>
        (await releasesOf(kube, "bench-flux")).every((o) => o.status?.lastHandledReconcileAt === at),
      );
      noopS.push((performance.now() - t) / 1000);
      await sleep(2000);
      noopWrites.push((await apiserverWrites(kube)) - before - N);
    }
    let cpuS = 0;
    let peakMb = 0;
    for (const c of children) {
      const u = usage(c.pid ?? 0);
      cpuS += u.cpuS;
      peakMb += u.peakMb;
    }
    return { installS, installWrites, noopS, noopWrites, cpuS, peakMb };
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await sleep(1000);
  }
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
    const objects = (ns: string) => [
      { apiVersion: "v1", kind: "Namespace", metadata: { name: ns } },
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "HelmRepository",
        metadata: { name: "bench", namespace: ns },
        spec: { interval: "10m", url: repo.url },
      },
      ...Array.from({ length: N }, (_, i) => ({
        apiVersion: "helm.toolkit.fluxcd.io/v2",
        kind: "HelmRelease",
        metadata: { name: `demo-${i}`, namespace: ns },
        spec: {
          interval: "10m",
          chart: {
            spec: { chart: "demo", version: "1.x", sourceRef: { kind: "HelmRepository", name: "bench" } },
          },
          values: { greeting: `hello ${i}` },
        },
      })),
    ];
    const withFlux = !process.env.BENCH_SKIP_PEERS && FLUX_BINARIES.every((b) => existsSync(b));
    if (!withFlux && !process.env.BENCH_SKIP_PEERS)
      console.log("Flux's controllers are not built (bash bench/peers/flux/build.sh): their row is left out");
    if (withFlux) installFluxCrds(kube);
    fleet.commit({ "clusters/test/helm.yaml": objects("bench-agent") });
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
    // The agent's Node process plus its shipmate-helm serve process (Helm's SDK), peak each.
    const worker = agent.helm.workerPid;
    const workerMb = worker ? usage(worker).peakMb : 0;
    const agentRss = peakRssMb() + workerMb;
    agent.close();
    let flux: PeerFigures | undefined;
    if (withFlux) {
      // A fresh API server of its own: whoever runs second on a shared one is measured
      // against the first one's objects, events and release Secrets (either order skews it).
      const own = await startKube({ name: "bench-helm-flux" });
      try {
        installFluxCrds(own);
        flux = await fluxPeer(own, objects, home);
      } finally {
        await own.stop();
      }
    }

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

    const apiserver = execFileSync(findBinary("kube-apiserver"), ["--version"], { encoding: "utf8" }).trim();
    const helmVersion = execFileSync(helmBinary(), ["version", "--short"], { encoding: "utf8" }).trim();
    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}, ${apiserver}, helm ${helmVersion}`,
    );
    console.log(`releases: ${N} of a one-ConfigMap chart from an HTTP chart repository\n`);
    if (flux)
      console.log(
        `first install: shipmate/helm-controller = ${(agentInstallS / flux.installS).toFixed(2)}× (target ≤ 1.0×); no-op: ${(median(noop) / median(flux.noopS)).toFixed(2)}× (target ≤ 0.5×), writes ${median(noopWrites)} vs ${median(flux.noopWrites)}\n`,
      );
    console.log(
      "| | first install | its writes | again, nothing changed | its writes | helm actions again | peak RSS |",
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- |");
    console.log(
      `| shipmate agent (in-process pass) | ${agentInstallS.toFixed(2)} s | ${agentInstallWrites} | ${median(noop).toFixed(2)} s (median of 3: ${noop.map((s) => s.toFixed(2)).join(", ")}) | ${median(noopWrites)} | ${noopActions} | ${agentRss} MB${workerMb ? ` (shipmate-helm ${workerMb} MB)` : ""} |`,
    );
    if (flux)
      console.log(
        `| Flux helm-controller ${HELM_CONTROLLER_VERSION} + source-controller ${FLUX_VERSION} | ${flux.installS.toFixed(2)} s | ${flux.installWrites} | ${median(flux.noopS).toFixed(2)} s (median of 3: ${flux.noopS.map((x) => x.toFixed(2)).join(", ")}) | ${median(flux.noopWrites)} | - | ${flux.peakMb} MB (CPU ${flux.cpuS.toFixed(1)} s) |`,
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
