/**
 * The Flux quick start, done with shipmate, on this machine alone: a real
 * Gitea (the forge), a real kube-apiserver with etcd (the cluster) and a real
 * OCI registry, all on 127.0.0.1 with random ports. Every step prints what a
 * person would type and what it shows, with a line on what just happened;
 * docs/quickstart-walkthrough.md tells the same story at length.
 *
 *   node scripts/quickstart-full.ts [--keep]
 *
 * Needs the binaries scripts/provision/{10-registry,30-kustomize,40-kube,50-gitea}.sh
 * build (scripts/test.sh runs them all). With --keep the servers stay up
 * until Ctrl-C, so you can run shipmate against them yourself.
 *
 * The test cluster has no kubelet, so no pod runs: the agent's Deployment is
 * played by test/e2e/kubelet.ts, which starts the container's own args as a
 * local process with its Secret and its ServiceAccount's token.
 */
import { spawn } from "node:child_process";
import { mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { parse, stringify } from "yaml";
import { KubeClient } from "../src/kube/client.ts";
import { APP, Checkout, podinfoFiles, podinfoPolicies } from "../test/e2e/fixtures.ts";
import { type PodProcess, runDeployment } from "../test/e2e/kubelet.ts";
import { type GiteaServer, startGitea } from "../test/infra/gitea.ts";
import { type KubeCluster, startKube } from "../test/infra/kube.ts";
import { seedTags, startRegistry, type TestRegistry } from "../test/infra/registry.ts";

const root = new URL("..", import.meta.url).pathname;
// The provisioned binaries (kustomize for bootstrap and the agent, the servers) live here.
const cache = process.env.SHIPMATE_CACHE ?? join(homedir(), ".cache", "shipmate");
process.env.PATH = `${join(cache, "bin")}${delimiter}${process.env.PATH ?? ""}`;
const keep = process.argv.includes("--keep");
const bold = (t: string) => (process.stdout.isTTY ? `\x1b[1m${t}\x1b[0m` : t);
const dim = (t: string) => (process.stdout.isTTY ? `\x1b[2m${t}\x1b[0m` : t);
let stepNo = 0;
function step(title: string, why: string): void {
  console.log(`\n${bold(`== ${++stepNo}. ${title}`)}`);
  console.log(dim(why));
}
const note = (t: string) => console.log(dim(`   ${t}`));

let gitea: GiteaServer | undefined;
let kube: KubeCluster | undefined;
let reg: TestRegistry | undefined;
let pod: PodProcess | undefined;
let client: KubeClient | undefined;
const checkouts: Checkout[] = [];
const work = mkdtempSync(join(tmpdir(), "shipmate-quickstart-"));

/** Runs `shipmate ...` as a separate process, printing the command and its output; fails the demo on a non-zero exit. */
function shipmate(args: string[], opts: { allowFail?: boolean } = {}): Promise<string> {
  console.log(`$ shipmate ${args.join(" ")}`);
  // A demo that hangs teaches nothing: waits are bounded well below the CLI's 5-minute default.
  if (args[0] === "reconcile" || args[0] === "resume") args = [...args, "--timeout=90s"];
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, [join(root, "src/cli/index.ts"), ...args], {
      cwd: work,
      env: {
        ...process.env,
        KUBECONFIG: kube?.kubeconfig,
        GITEA_TOKEN: gitea?.token,
        SHIPMATE_FORGE_TOKEN: "",
      },
      stdio: ["ignore", "pipe", "pipe"],
    });
    let out = "";
    const show = (d: Buffer) => {
      out += d;
      process.stdout.write(d.toString().replace(/^(?=.)/gm, "  "));
    };
    child.stdout.on("data", show);
    child.stderr.on("data", show);
    child.on("exit", (code) => {
      if (code === 0 || opts.allowFail) resolve(out);
      else reject(new Error(`shipmate ${args[0]} exited ${code}`));
    });
  });
}

async function image(): Promise<string> {
  const res = await client?.raw({
    method: "GET",
    path: `/apis/apps/v1/namespaces/default/deployments/${APP}`,
  });
  const body = res?.body as
    | { spec?: { template: { spec: { containers: { image: string }[] } } } }
    | undefined;
  return res?.code === 200 ? (body?.spec?.template.spec.containers[0]?.image ?? "?") : "(none)";
}
async function hpaMin(): Promise<string> {
  const res = await client?.raw({
    method: "GET",
    path: `/apis/autoscaling/v2/namespaces/default/horizontalpodautoscalers/${APP}`,
  });
  return res?.code === 200
    ? String((res.body as { spec: { minReplicas: number } }).spec.minReplicas)
    : "(none)";
}
function kubectlEditImage(to: string) {
  console.log(`$ kubectl -n default set image deployment/${APP} podinfod=${to}   ${dim("(a hand edit)")}`);
  return client?.raw({
    method: "PATCH",
    path: `/apis/apps/v1/namespaces/default/deployments/${APP}`,
    query: { fieldManager: "kubectl-edit" },
    contentType: "application/strategic-merge-patch+json",
    body: { spec: { template: { spec: { containers: [{ name: "podinfod", image: to }] } } } },
  });
}

async function main(): Promise<void> {
  step(
    "a forge, a cluster and a registry on 127.0.0.1",
    "Gitea plays GitHub, kube-apiserver + etcd play the cluster, Distribution plays the image registry.",
  );
  [gitea, kube, reg] = await Promise.all([startGitea(), startKube({ name: "quickstart" }), startRegistry()]);
  client = new KubeClient(kube.kubeConfig());
  const image0 = `${reg.host}/demo/podinfo`;
  await seedTags(reg, "demo/podinfo", ["6.0.0"]);
  console.log(`forge     ${gitea.url}  (user ${gitea.admin.username}, token in $GITEA_TOKEN)`);
  console.log(`cluster   ${kube.server}  (KUBECONFIG=${kube.kubeconfig})`);
  console.log(`registry  ${reg.url}  (${image0}:6.0.0)`);
  const authed = (repo: string) =>
    `http://${gitea?.admin.username}:${gitea?.token}@${new URL(gitea?.url ?? "").host}/${gitea?.admin.username}/${repo}.git`;
  await gitea.createRepo(APP);
  const app = new Checkout(authed(APP));
  checkouts.push(app);
  app.commit(podinfoFiles(`${image0}:6.0.0`), "podinfo's kustomize folder");
  note(
    `${gitea.url}/${gitea.admin.username}/${APP}: the application's own repository, kustomize/ with a Deployment, a Service and an HPA (minReplicas 2)`,
  );

  step(
    "bootstrap",
    "Creates the fleet repository, pushes clusters/staging/shipmate-system (the agent's own manifests), installs the agent, and waits until the agent has applied itself from git.",
  );
  const running = runDeployment(kube, client, {
    namespace: "shipmate-system",
    name: "shipmate-agent",
    extra: [
      "--interval=30s",
      "--poll-interval=500ms",
      ...(process.env.SHIPMATE_DEBUG ? ["--log-level=debug"] : []),
    ],
  });
  await shipmate([
    "bootstrap",
    "--forge=gitea",
    `--forge-url=${gitea.url}`,
    `--owner=${gitea.admin.username}`,
    "--repository=fleet",
    "--personal",
    "--path=clusters/staging",
  ]);
  pod = await running;
  note(`the agent runs with the Deployment's own args: ${pod.args.join(" ")}`);
  const fleet = new Checkout(authed("fleet"));
  checkouts.push(fleet);

  step(
    "add podinfo: a source and a Kustomization, committed to the fleet",
    "create --export prints Flux-compatible YAML; committed under clusters/staging, the agent applies it and starts pulling podinfo's repository.",
  );
  const srcYaml = await shipmate([
    "create",
    "source",
    "git",
    APP,
    `--url=${gitea.url}/${gitea.admin.username}/${APP}.git`,
    "--branch=main",
    "--interval=1m",
    "--export",
  ]);
  let ksYaml = await shipmate([
    "create",
    "kustomization",
    APP,
    `--source=GitRepository/${APP}`,
    "--path=./kustomize",
    "--prune",
    "--interval=1m",
    "--target-namespace=default",
    "--export",
  ]);
  const KS = `clusters/staging/${APP}-kustomization.yaml`;
  console.log(`$ git add clusters/staging && git commit -m "Add podinfo" && git push`);
  fleet.commit(
    { [`clusters/staging/${APP}-source.yaml`]: srcYaml.replace(/^.*resolves:.*\n/m, ""), [KS]: ksYaml },
    "Add podinfo",
  );
  await shipmate(["reconcile", "kustomization", "shipmate-system", "--with-source"]);
  await shipmate(["reconcile", "kustomization", APP, "--with-source"]);
  await shipmate(["get", "kustomizations"]);
  await shipmate(["get", "sources", "git"]);
  note(`podinfo's image in the cluster: ${await image()}; HPA minReplicas: ${await hpaMin()}`);

  step(
    "prune",
    "A manifest deleted from the app repository is deleted from the cluster; so is everything of a Kustomization deleted from the fleet.",
  );
  console.log(`$ git rm kustomize/hpa.yaml && git commit && git push   ${dim("(in podinfo's repository)")}`);
  app.commit(
    { ...podinfoFiles(`${image0}:6.0.0`, { hpa: false }), "kustomize/hpa.yaml": null },
    "drop the HPA",
  );
  await shipmate(["reconcile", "kustomization", APP, "--with-source"]);
  note(`HPA: ${await hpaMin()}`);
  console.log(`$ git rm ${KS} && git commit && git push   ${dim("(in the fleet)")}`);
  fleet.commit({ [KS]: null }, "Remove podinfo");
  await shipmate(["reconcile", "kustomization", "shipmate-system", "--with-source"]);
  note(`podinfo's Deployment: ${await image()}`);
  console.log(dim("   (both put back for the next steps)"));
  app.commit(podinfoFiles(`${image0}:6.0.0`), "restore the HPA");
  fleet.commit({ [KS]: ksYaml }, "Add podinfo again");
  await shipmate(["reconcile", "kustomization", "shipmate-system", "--with-source"]);
  await shipmate(["reconcile", "kustomization", APP, "--with-source"]);

  step("drift", "A hand edit of an object git declares is taken back at the next reconcile.");
  await kubectlEditImage("nginx:hand-edited");
  note(`image now: ${await image()}`);
  await shipmate(["reconcile", "kustomization", APP]);
  note(`image after the reconcile: ${await image()}`);

  step(
    "suspend and resume",
    "Suspended, the agent leaves podinfo alone (a hotfix by hand stays); resumed, git wins again.",
  );
  await shipmate(["suspend", "kustomization", APP]);
  await kubectlEditImage("nginx:hotfix");
  await shipmate(["reconcile", "kustomization", "shipmate-system", "--with-source"]);
  note(`image while suspended, after a full pass: ${await image()}`);
  await shipmate(["resume", "kustomization", APP]);
  note(`image after resume: ${await image()}`);

  step(
    "in-line patches",
    "A patch in the Kustomization (not in podinfo's repository) raises staging's HPA floor to 3.",
  );
  const doc = parse(ksYaml);
  doc.spec.patches = [
    {
      patch: "- op: replace\n  path: /spec/minReplicas\n  value: 3\n",
      target: { kind: "HorizontalPodAutoscaler", name: APP },
    },
  ];
  ksYaml = `---\n${stringify(doc)}`;
  console.log(ksYaml.replace(/^/gm, "  "));
  fleet.commit({ [KS]: ksYaml }, "podinfo: minReplicas 3 in staging");
  await shipmate(["reconcile", "kustomization", "shipmate-system", "--with-source"]);
  await shipmate(["reconcile", "kustomization", APP]);
  note(`HPA minReplicas: ${await hpaMin()}`);

  step(
    "a new image in the registry reaches the cluster",
    "Policies say which tags staging follows; shipmate update writes the newest into git, the agent applies the commit.",
  );
  ksYaml = ksYaml.replace(
    "  prune: true\n",
    `  prune: true\n  images:\n    - name: ${image0}\n      newTag: 6.0.0 # {"$imagepolicy": "shipmate-system:${APP}:tag"}\n`,
  );
  fleet.commit(
    { [KS]: ksYaml, [`policies/staging/${APP}.yaml`]: podinfoPolicies(image0) },
    "automate podinfo",
  );
  console.log(podinfoPolicies(image0).replace(/^/gm, "  "));
  console.log(`$ docker push ${image0}:6.1.0   ${dim("(and 7.0.0, which the 6.x policy ignores)")}`);
  await seedTags(reg, "demo/podinfo", ["6.1.0", "7.0.0"]);
  await shipmate([
    "update",
    `--repo=${gitea.url}/${gitea.admin.username}/fleet.git`,
    "--branch=main",
    "--push",
    "--token-env=GITEA_TOKEN",
  ]);
  await shipmate(["reconcile", "kustomization", "shipmate-system", "--with-source"]);
  await shipmate(["reconcile", "kustomization", APP]);
  note(`podinfo's image in the cluster: ${await image()}`);
  await shipmate(["get", "kustomizations"]);

  console.log(`\n${bold("done")}: registry → git → cluster, on loopback.`);
  if (keep) {
    writeFileSync(
      join(work, "env.sh"),
      `export KUBECONFIG=${kube.kubeconfig}\nexport GITEA_TOKEN=${gitea.token}\n`,
    );
    console.log(
      `Servers stay up; in another shell: source ${join(work, "env.sh")}; then shipmate get kustomizations. Ctrl-C ends.`,
    );
    await new Promise<void>((r) => process.once("SIGINT", () => r()));
  }
}

try {
  await main();
} catch (err) {
  console.error(`\nquickstart failed: ${(err as Error).message}`);
  if (pod) {
    writeFileSync(join(tmpdir(), "shipmate-quickstart-agent.log"), readFileSync(pod.logFile));
    console.error(
      `the agent's last log lines (all of them: ${join(tmpdir(), "shipmate-quickstart-agent.log")}):`,
    );
    console.error(pod.logs.slice(-10).join("\n"));
  }
  process.exitCode = 1;
} finally {
  await pod?.stop();
  client?.close();
  for (const c of checkouts) c.remove();
  await Promise.allSettled([gitea?.stop(), kube?.stop(), reg?.stop()]);
  rmSync(work, { recursive: true, force: true });
}
