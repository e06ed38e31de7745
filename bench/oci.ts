/**
 * `npm run bench -- oci [objects]`: the agent syncing N objects (default
 * 1,000, the `agent` benchmark's mix) from an OCIRepository — an artifact
 * pushed by `shipmate push artifact` to Debian's docker-registry, read through
 * a counting proxy — beside the same objects from a GitRepository (the
 * fleet's own), each on an API server of its own, in-process agents.
 *
 * Figures: initial sync, steady-state no-op pass (median of 3 forced passes),
 * registry requests of a no-op pass (target 1: one manifest HEAD), write
 * requests of a no-op pass (target 0).
 */
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { cpus, tmpdir, totalmem } from "node:os";
import { join } from "node:path";
import { stringify } from "yaml";
import { FleetRepo, makeAgent } from "../test/agent/helpers.ts";
import { runCli } from "../test/helpers/cli.ts";
import { startKube } from "../test/infra/kube.ts";
import { countingProxy } from "../test/infra/proxy.ts";
import { startRegistry } from "../test/infra/registry.ts";
import { median } from "./_flux.ts";
import { benchObjects } from "./_objects.ts";

const N = Number(process.argv[2] ?? 1000);
const yamlOf = (objs: object[]) => objs.map((o) => stringify(o)).join("---\n");

interface Figures {
  initialS: number;
  noopS: number[];
  noopWrites: number[];
  noopRegistry: number[];
}

async function measure(fleet: FleetRepo, name: string, registryLog?: string[]): Promise<Figures> {
  const kube = await startKube({ name: `bench-${name}` });
  const agent = makeAgent(kube, fleet, { name, healthPollMs: 200 });
  try {
    let t = performance.now();
    const first = await agent.once();
    const initialS = (performance.now() - t) / 1000;
    const bad = first.reconciled.filter((k) => !k.ready);
    if (bad.length)
      throw new Error(`${name}: not ready: ${bad.map((k) => `${k.name}: ${k.message}`).join("; ")}`);
    const noopS: number[] = [];
    const noopWrites: number[] = [];
    const noopRegistry: number[] = [];
    for (let i = 0; i < 3; i++) {
      if (registryLog) registryLog.length = 0;
      t = performance.now();
      const pass = await agent.pass(new AbortController().signal, true);
      noopS.push((performance.now() - t) / 1000);
      noopWrites.push(pass.writes);
      noopRegistry.push(registryLog?.length ?? 0);
    }
    return { initialS, noopS, noopWrites, noopRegistry };
  } finally {
    agent.close();
    await kube.stop();
  }
}

async function main() {
  const registry = await startRegistry({ auth: "none" });
  const proxy = await countingProxy(registry.host);
  const work = mkdtempSync(join(tmpdir(), "shipmate-bench-oci-"));
  const fleets: FleetRepo[] = [];
  try {
    // The artifact: the objects as one file, pushed as Flux's OCI artifact format.
    const content = join(work, "content");
    mkdirSync(content, { recursive: true });
    writeFileSync(join(content, "objects.yaml"), yamlOf(benchObjects("bench-oci", N)));
    const pushed = await runCli([
      "push",
      "artifact",
      `oci://${registry.host}/bench/fleet:v1`,
      "--path",
      content,
      "--source",
      "https://git.example/fleet.git",
      "--revision",
      "main@sha1:0000000000000000000000000000000000000000",
    ]);
    if (pushed.code !== 0) throw new Error(`push artifact: ${pushed.stderr}`);

    const oci = FleetRepo.create();
    fleets.push(oci);
    oci.commit({
      "clusters/test/oci.yaml": [
        {
          apiVersion: "source.toolkit.fluxcd.io/v1",
          kind: "OCIRepository",
          metadata: { name: "bench-oci", namespace: "shipmate-system" },
          spec: { interval: "10m", url: `oci://${proxy.host}/bench/fleet`, ref: { tag: "v1" } },
        },
        {
          apiVersion: "kustomize.toolkit.fluxcd.io/v1",
          kind: "Kustomization",
          metadata: { name: "bench-oci-apps", namespace: "shipmate-system" },
          spec: {
            interval: "10m",
            path: "./",
            prune: true,
            sourceRef: { kind: "OCIRepository", name: "bench-oci" },
          },
        },
      ],
    });
    const git = FleetRepo.create();
    fleets.push(git);
    git.commit({
      "content/objects.yaml": yamlOf(benchObjects("bench-oci", N)),
      "clusters/test/git.yaml": [
        {
          apiVersion: "kustomize.toolkit.fluxcd.io/v1",
          kind: "Kustomization",
          metadata: { name: "bench-git-apps", namespace: "shipmate-system" },
          spec: {
            interval: "10m",
            path: "./content",
            prune: true,
            sourceRef: { kind: "GitRepository", name: "bench-git" },
          },
        },
      ],
    });

    const fromOci = await measure(oci, "bench-oci", proxy.log);
    const fromGit = await measure(git, "bench-git");

    console.log(
      `machine: ${cpus().length} × ${cpus()[0]?.model ?? "cpu"}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`,
    );
    console.log(`objects: ${N}, one Kustomization; each source on an API server of its own\n`);
    console.log("| source | initial sync | no-op pass (median of 3) | its registry requests | its writes |");
    console.log("| --- | --- | --- | --- | --- |");
    for (const [label, f] of [
      ["OCIRepository (artifact in docker-registry)", fromOci],
      ["GitRepository (the fleet's own, file://)", fromGit],
    ] as const)
      console.log(
        `| ${label} | ${f.initialS.toFixed(2)} s | ${median(f.noopS).toFixed(2)} s (${f.noopS.map((s) => s.toFixed(2)).join(", ")}) | ${label.startsWith("OCI") ? f.noopRegistry.join(", ") : "-"} | ${f.noopWrites.join(", ")} |`,
      );
  } finally {
    for (const f of fleets) f.remove();
    await proxy.close();
    await registry.stop();
    rmSync(work, { recursive: true, force: true });
  }
}

await main();
