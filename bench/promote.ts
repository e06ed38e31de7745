/**
 * Promotion planning over a monorepo: N apps in two environments (staging,
 * production), each app an overlay kustomization.yaml (kustomize `images:`
 * with a Flux marker) plus a Deployment pinning a sidecar by tag and digest.
 * Every app is one version behind in production, so every app is promoted.
 * Pure planning only (the files are in memory): what `shipmate promote`
 * spends between reading the tree and writing it.
 *
 *   node bench/promote.ts [apps=500] [runs=15]
 */
import { cpus, totalmem } from "node:os";
import { type EnvTree, planPromotion } from "../src/promote/plan.ts";

const apps = Number(process.argv[2] ?? 500);
const runs = Number(process.argv[3] ?? 15);

const overlay = (app: string, tag: string) => `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
resources:
  - ../../base/${app}
images:
  - name: registry.example.test/acme/${app}
    newTag: "${tag}" # {"$imagepolicy": "flux-system:${app}:tag"}
replicas:
  - name: ${app}
    count: 2
`;

const deployment = (app: string, proxy: string) => `apiVersion: apps/v1
kind: Deployment
metadata:
  name: ${app}
  labels:
    app.kubernetes.io/name: ${app}
spec:
  template:
    spec:
      containers:
        - name: ${app}
          image: registry.example.test/acme/${app}
          resources:
            requests: { cpu: 50m, memory: 64Mi }
        - name: proxy
          image: ${proxy}
`;

const digest = (n: number) => `sha256:${n.toString(16).padStart(64, "0")}`;

function env(name: string, minor: number): EnvTree {
  const files: EnvTree["files"][number][] = [];
  for (let i = 0; i < apps; i++) {
    const app = `app-${String(i).padStart(4, "0")}`;
    files.push({ path: `apps/${name}/${app}/kustomization.yaml`, content: overlay(app, `1.${minor}.${i}`) });
    files.push({
      path: `apps/${name}/${app}/deployment.yaml`,
      content: deployment(app, `docker.io/envoyproxy/envoy:v1.${minor}.0@${digest(minor * 1000 + i)}`),
    });
  }
  return { name, path: `apps/${name}`, files };
}

const staging = env("staging", 5);
const production = env("production", 4);
const bytes = [...staging.files, ...production.files].reduce((n, f) => n + f.content.length, 0);

// Warm-up: the first run pays for JIT and module initialisation.
let plan = planPromotion(staging, production);
const times: number[] = [];
for (let r = 0; r < runs; r++) {
  const t = performance.now();
  plan = planPromotion(staging, production);
  times.push(performance.now() - t);
}
times.sort((a, b) => a - b);
const median = times[Math.floor(times.length / 2)] ?? 0;
const cpu = cpus()[0]?.model ?? "unknown CPU";

console.log(
  `machine: ${cpus().length} × ${cpu}, ${Math.round(totalmem() / 2 ** 30)} GiB, Node ${process.versions.node}`,
);
console.log(
  `monorepo: ${apps} apps × 2 environments = ${staging.files.length + production.files.length} files, ${(bytes / 1024).toFixed(0)} KiB`,
);
console.log(
  `plan: ${plan.changes.length} image changes in ${plan.files.length} files, ${plan.problems.length} problems`,
);
console.log(
  `planPromotion: median ${median.toFixed(1)} ms, min ${times[0]?.toFixed(1)} ms, max ${times.at(-1)?.toFixed(1)} ms over ${runs} runs (target < 1000 ms)`,
);
if (plan.changes.length !== apps * 2) {
  console.error(`expected ${apps * 2} changes, got ${plan.changes.length}`);
  process.exitCode = 1;
}
