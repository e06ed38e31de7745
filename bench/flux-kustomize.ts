/**
 * `npm run bench -- flux-kustomize [objects]`: shipmate's agent beside Flux's
 * own kustomize-controller + source-controller (v1.9.6, built from their Go
 * modules by bench/peers/flux/build.sh and run outside the cluster with a
 * kubeconfig), on one real kube-apiserver, reconciling the same N-object
 * Kustomization (default 1,000) from the same git remote over smart HTTP.
 *
 * Both run as long-lived controllers and are driven the same way: the
 * initial sync is timed from the moment the objects exist until the
 * Kustomization is Ready at the commit; a no-op reconcile is a
 * `reconcile.fluxcd.io/requestedAt` request (what `flux reconcile` and
 * `shipmate reconcile` write) timed until `status.lastHandledReconcileAt`
 * echoes it. Write requests come from the API server's own
 * apiserver_request_total (dry runs and the API server's own lease heartbeats
 * excluded), minus the request itself; BENCH_TRACE_WRITES=1 prints them by
 * verb and resource. Flux's Kustomization and GitRepository are suspended
 * before the agent starts, as the agent would otherwise take them over too.
 * CPU time and peak RSS come from /proc of each controller process.
 *
 * Both Kustomizations (and Flux's GitRepository) run at a 30 s interval, so
 * after the requested no-ops an idle window of three intervals shows what a
 * pass nobody asked for costs: its writes (no request, so no
 * `lastHandledReconcileAt` echo is owed).
 */
import { type ChildProcess, execFileSync } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { startGitHttpServer } from "../test/infra/git.ts";
import { findBinary, freePort, type KubeCluster, startKube } from "../test/infra/kube.ts";
import {
  api,
  FLUX_VERSION,
  median,
  moduleDir,
  sleep,
  startFluxControllers,
  startProcess,
  total,
  traceWrites,
  usage,
  waitFor,
  writesBy,
} from "./_flux.ts";
import { cacheRoot } from "./_lib.ts";
import { benchObjects } from "./_objects.ts";

const N = Number(process.argv[2] ?? 1000);
const INTERVAL = "30s";
const IDLE_INTERVALS = 3;
const CLI = join(import.meta.dirname, "../src/cli/index.ts");

const yamlOf = (objs: object[]) => objs.map((o) => stringify(o)).join("---\n");

async function ksStatus(kube: KubeCluster, ns: string, name: string) {
  const res = await api(
    kube,
    "GET",
    `/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/${ns}/kustomizations/${name}`,
  );
  if (res.code !== 200) return undefined;
  // biome-ignore lint/suspicious/noExplicitAny: status read field by field
  return JSON.parse(res.body).status as any;
}

interface Figures {
  initialS: number;
  initialWrites: number;
  noopS: number[];
  noopWrites: number[];
  /** Writes during IDLE_INTERVALS intervals with no request at all. */
  idleWrites: number;
  cpuS: number;
  peakMb: number;
}

/** Initial sync and three no-op reconciles of Kustomization ns/name, driven by requestedAt annotations. */
async function measure(
  kube: KubeCluster,
  ns: string,
  name: string,
  start: () => Promise<void>,
  pids: () => number[],
): Promise<Figures> {
  const w0By = await writesBy(kube);
  const w0 = total(w0By);
  const t0 = performance.now();
  await start();
  await waitFor(`${ns}/${name} ready`, async () => {
    const s = await ksStatus(kube, ns, name);
    return s?.conditions?.some(
      (c: { type: string; status: string }) => c.type === "Ready" && c.status === "True",
    );
  });
  const initialS = (performance.now() - t0) / 1000;
  // Let status writes and events of the initial sync settle before the no-op runs.
  await sleep(3000);
  const initialBy = await writesBy(kube);
  traceWrites(`${ns}/${name} initial`, w0By, initialBy);
  const initialWrites = total(initialBy) - w0;
  const noopS: number[] = [];
  const noopWrites: number[] = [];
  for (let i = 0; i < 3; i++) {
    const at = new Date().toISOString() + i;
    const beforeBy = await writesBy(kube);
    const before = total(beforeBy);
    const t = performance.now();
    await api(
      kube,
      "PATCH",
      `/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/${ns}/kustomizations/${name}`,
      { metadata: { annotations: { "reconcile.fluxcd.io/requestedAt": at } } },
      "application/merge-patch+json",
    );
    await waitFor(`${ns}/${name} to handle ${at}`, async () => {
      const s = await ksStatus(kube, ns, name);
      return s?.lastHandledReconcileAt === at;
    });
    noopS.push((performance.now() - t) / 1000);
    await sleep(2000);
    // The request itself is one write.
    const afterBy = await writesBy(kube);
    traceWrites(`${ns}/${name} no-op ${i + 1}`, beforeBy, afterBy);
    noopWrites.push(total(afterBy) - before - 1);
  }
  const idleBefore = await writesBy(kube);
  await sleep(IDLE_INTERVALS * 30_000 + 5000);
  const idleAfter = await writesBy(kube);
  traceWrites(`${ns}/${name} idle ${IDLE_INTERVALS} intervals`, idleBefore, idleAfter);
  const idleWrites = total(idleAfter) - total(idleBefore);
  let cpuS = 0;
  let peakMb = 0;
  for (const pid of pids()) {
    const u = usage(pid);
    cpuS += u.cpuS;
    peakMb += u.peakMb;
  }
  return { initialS, initialWrites, noopS, noopWrites, idleWrites, cpuS, peakMb };
}

/** A long-lived controller; the tail of its output is kept in `log` for a failed run. */
async function main() {
  const fluxKustomize = join(cacheRoot, "bin", "flux-kustomize-controller");
  const fluxSource = join(cacheRoot, "bin", "flux-source-controller");
  for (const b of [fluxKustomize, fluxSource]) {
    try {
      readFileSync(b);
    } catch {
      throw new Error(`${b} is missing: run bash bench/peers/flux/build.sh first`);
    }
  }
  const kube = await startKube({ name: "bench-flux" });
  const git = await startGitHttpServer({ user: "x-access-token", password: "bench-token" });
  const work = mkdtempSync(join(tmpdir(), "shipmate-bench-flux-"));
  const children: ChildProcess[] = [];
  try {
    const url = git.createRepo("fleet", {
      "flux/objects.yaml": yamlOf(benchObjects("bench-flux", N)),
      "shipmate/objects.yaml": yamlOf(benchObjects("bench-shipmate", N)),
    });
    const kubectl = (...a: string[]) =>
      execFileSync("kubectl", ["--kubeconfig", kube.kubeconfig, ...a], { encoding: "utf8" });
    // Flux's own CRDs (fuller than shipmate's): both agents then read the same objects.
    // Every CRD of both controllers: each watches all of its kinds and stops without their CRDs.
    for (const mod of ["github.com/fluxcd/kustomize-controller", "github.com/fluxcd/source-controller"]) {
      kubectl("apply", "--server-side", "-f", join(moduleDir(mod), "config/crd/bases"));
    }
    kubectl("wait", "--for=condition=Established", "crd/kustomizations.kustomize.toolkit.fluxcd.io");
    kubectl("create", "namespace", "flux-system");
    kubectl(
      "-n",
      "flux-system",
      "create",
      "secret",
      "generic",
      "fleet-auth",
      "--from-literal=username=x-access-token",
      "--from-literal=password=bench-token",
    );

    // Flux: source-controller serves artifacts on loopback, kustomize-controller fetches them.
    const fluxStart = async () => {
      children.push(
        ...(await startFluxControllers(kube, work, fluxSource, { "kustomize-controller": fluxKustomize })),
      );
    };
    const fluxObjects = yamlOf([
      {
        apiVersion: "source.toolkit.fluxcd.io/v1",
        kind: "GitRepository",
        metadata: { name: "fleet", namespace: "flux-system" },
        spec: { interval: INTERVAL, url, ref: { branch: "main" }, secretRef: { name: "fleet-auth" } },
      },
      {
        apiVersion: "kustomize.toolkit.fluxcd.io/v1",
        kind: "Kustomization",
        metadata: { name: "bench", namespace: "flux-system" },
        spec: {
          interval: INTERVAL,
          path: "./flux",
          prune: true,
          sourceRef: { kind: "GitRepository", name: "fleet" },
        },
      },
    ]);
    // BENCH_ONLY=shipmate leaves Flux out (to iterate on the agent alone; no ratios then).
    const withFlux = process.env.BENCH_ONLY !== "shipmate";
    const flux = !withFlux
      ? undefined
      : await measure(
          kube,
          "flux-system",
          "bench",
          async () => {
            const file = join(work, "flux-objects.yaml");
            writeFileSync(file, fluxObjects);
            await fluxStart();
            kubectl("apply", "--server-side", "--field-manager=bench", "-f", file);
          },
          () => children.map((c) => c.pid ?? 0),
        );
    for (const c of children.splice(0)) c.kill("SIGTERM");
    await sleep(1000);
    // The agent reconciles every Kustomization it finds, Flux's too (it takes
    // Flux's objects over, ./src/kube/ownership.ts): suspend Flux's so the
    // agent's figures are its own Kustomization's alone.
    for (const kind of flux ? ["kustomization/bench", "gitrepository/fleet"] : []) {
      kubectl("-n", "flux-system", "patch", kind, "--type=merge", "-p", '{"spec":{"suspend":true}}');
    }

    // shipmate: the agent as a long-lived controller on the same remote.
    let agent: ChildProcess | undefined;
    const shipmate = await measure(
      kube,
      "shipmate-system",
      "bench",
      async () => {
        agent = startProcess(
          process.execPath,
          [
            CLI,
            "agent",
            "--repo",
            url,
            "--token-env",
            "BENCH_TOKEN",
            "--path",
            "shipmate",
            "--name",
            "bench",
            "--interval",
            INTERVAL,
            "--no-leader-elect",
            "--kubeconfig",
            kube.kubeconfig,
            "--workdir",
            join(work, "agent"),
            "--listen",
            `127.0.0.1:${await freePort()}`,
            "--log-level",
            process.env.BENCH_AGENT_LOG ?? "error",
          ],
          { BENCH_TOKEN: "bench-token", NODE_OPTIONS: process.env.BENCH_AGENT_NODE_OPTIONS ?? "" },
          join(work, "agent.log"),
        );
        children.push(agent);
      },
      () => (agent?.pid ? [agent.pid] : []),
    );

    const apiserverVersion = execFileSync(findBinary("kube-apiserver"), ["--version"], {
      encoding: "utf8",
    }).trim();
    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}, ${apiserverVersion}, Flux kustomize-controller + source-controller ${FLUX_VERSION}`,
    );
    console.log(`objects: ${N} per Kustomization, one git remote over smart HTTP (git http-backend)\n`);
    console.log(
      `| | initial sync | its writes | no-op reconcile (median of 3) | no-op writes | writes in ${IDLE_INTERVALS} idle ${INTERVAL} intervals | CPU | peak RSS |`,
    );
    console.log("| --- | --- | --- | --- | --- | --- | --- | --- |");
    const row = (name: string, f: Figures) =>
      console.log(
        `| ${name} | ${f.initialS.toFixed(2)} s | ${f.initialWrites} | ${median(f.noopS).toFixed(2)} s (${f.noopS.map((s) => s.toFixed(2)).join(", ")}) | ${median(f.noopWrites)} | ${f.idleWrites} | ${f.cpuS.toFixed(1)} s | ${f.peakMb} MB |`,
      );
    if (flux) row("Flux kustomize-controller + source-controller", flux);
    row("shipmate agent", shipmate);
    console.log("");
    if (flux)
      console.log(
        `initial: shipmate/Flux = ${(shipmate.initialS / flux.initialS).toFixed(2)}×; no-op: shipmate/Flux = ${(median(shipmate.noopS) / median(flux.noopS)).toFixed(2)}× (target ≤ 0.5×), shipmate no-op writes ${median(shipmate.noopWrites)} (the requestedAt echo), in ${IDLE_INTERVALS} idle intervals ${shipmate.idleWrites} (target 0)`,
      );
  } catch (err) {
    for (const log of ["source-controller.log", "kustomize-controller.log", "agent.log"]) {
      try {
        console.error(`== ${log}\n${readFileSync(join(work, log), "utf8").slice(-3000)}`);
      } catch {}
    }
    throw err;
  } finally {
    for (const c of children) c.kill("SIGTERM");
    await git.close();
    await kube.stop();
    if (process.env.BENCH_KEEP) console.log(`kept ${work}`);
    else rmSync(work, { recursive: true, force: true });
  }
}

await main();
