/**
 * Fixtures for the agent suites: a fleet repository as a bare git repo on
 * disk (served as a file:// remote), an in-process agent against the test
 * API server, and small typed API helpers.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { type Logger, pino } from "pino";
import { expect } from "vitest";
import { parse as parseYaml, stringify } from "yaml";
import { Agent, type AgentOptions } from "../../src/agent/agent.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { REQUESTED_AT_ANNOTATION as REQUESTED_AT } from "../../src/kube/objects.ts";
import { fluxCrdDir } from "../../src/validate/crds.ts";
import { runCli } from "../helpers/cli.ts";
import { waitFor as poll } from "../helpers/wait.ts";
import type { KubeCluster } from "../infra/kube.ts";

/** What the tests read back from the API server: arbitrary JSON, inspected field by field. */
// biome-ignore lint/suspicious/noExplicitAny: assertions walk API objects of every kind
export type ApiJson = Record<string, any>;

function git(cwd: string, ...args: string[]): string {
  return execFileSync("git", args, {
    cwd,
    encoding: "utf8",
    env: {
      ...process.env,
      GIT_AUTHOR_NAME: "test",
      GIT_AUTHOR_EMAIL: "test@example.com",
      GIT_COMMITTER_NAME: "test",
      GIT_COMMITTER_EMAIL: "test@example.com",
    },
  }).trim();
}

export class FleetRepo {
  readonly root: string;
  readonly bare: string;
  readonly work: string;
  readonly url: string;

  private constructor(root: string) {
    this.root = root;
    this.bare = join(root, "fleet.git");
    this.work = join(root, "work");
    this.url = `file://${this.bare}`;
  }

  static create(): FleetRepo {
    const repo = new FleetRepo(mkdtempSync(join(tmpdir(), "shipmate-fleet-")));
    git(repo.root, "init", "-q", "--bare", "-b", "main", repo.bare);
    git(repo.root, "init", "-q", "-b", "main", repo.work);
    return repo;
  }

  /** Writes (string or objects as YAML documents) or deletes (null) files, commits and pushes; returns the commit. */
  commit(files: Record<string, string | object[] | null>, message = "change"): string {
    for (const [path, content] of Object.entries(files)) {
      const full = join(this.work, path);
      if (content === null) {
        rmSync(full, { recursive: true, force: true });
        continue;
      }
      mkdirSync(dirname(full), { recursive: true });
      writeFileSync(
        full,
        typeof content === "string" ? content : content.map((d) => stringify(d)).join("---\n"),
      );
    }
    git(this.work, "add", "-A");
    git(this.work, "commit", "-q", "--allow-empty", "-m", message);
    git(this.work, "push", "-q", this.bare, "HEAD:refs/heads/main");
    return git(this.work, "rev-parse", "HEAD");
  }

  remove(): void {
    rmSync(this.root, { recursive: true, force: true });
  }
}

export const silent = pino({ level: "silent" });

export function makeAgent(
  kube: KubeCluster,
  repo: FleetRepo,
  opts: Partial<AgentOptions> = {},
  log: Logger = silent,
): Agent {
  return new Agent(
    kube.kubeConfig(),
    {
      repo: repo.url,
      branch: "main",
      path: "clusters/test",
      intervalMs: 60_000,
      name: "fleet",
      namespace: "shipmate-system",
      // Inside the fixture's directory, so removing the repo removes the checkout too.
      workdir: mkdtempSync(join(repo.root, "agent-")),
      pollMs: 200,
      healthPollMs: 200,
      ...opts,
    },
    log,
  );
}

export function adminClient(kube: KubeCluster): KubeClient {
  return new KubeClient(kube.kubeConfig());
}

export async function getObject(client: KubeClient, path: string): Promise<ApiJson | undefined> {
  const res = await client.raw({ method: "GET", path });
  if (res.code === 404) return undefined;
  if (res.code !== 200) throw new Error(`GET ${path}: ${res.code} ${JSON.stringify(res.body)}`);
  return res.body as ApiJson;
}

export async function patchObject(
  client: KubeClient,
  path: string,
  body: unknown,
  opts: { type?: "merge" | "apply"; fieldManager?: string; force?: boolean } = {},
): Promise<ApiJson> {
  const res = await client.raw({
    method: "PATCH",
    path,
    body,
    contentType: opts.type === "apply" ? "application/apply-patch+yaml" : "application/merge-patch+json",
    query: { fieldManager: opts.fieldManager ?? "kubectl-edit", force: opts.force ? "true" : undefined },
  });
  if (res.code !== 200 && res.code !== 201)
    throw new Error(`PATCH ${path}: ${res.code} ${JSON.stringify(res.body)}`);
  return res.body as ApiJson;
}

export const configMap = (name: string, namespace: string, data: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "ConfigMap",
  metadata: { name, namespace },
  data,
});

/**
 * A Kustomization in a fixture fleet. Fixtures name them `<root>-<part>` (the
 * agent's root being `<root>`), and their sourceRef is the root's
 * GitRepository, as in a scaffolded fleet.
 */
export const kustomization = (name: string, spec: Record<string, unknown>) => ({
  apiVersion: "kustomize.toolkit.fluxcd.io/v1",
  kind: "Kustomization",
  metadata: { name, namespace: "shipmate-system" },
  spec: {
    interval: "1m",
    prune: true,
    sourceRef: { kind: "GitRepository", name: name.split("-").slice(0, 2).join("-") },
    ...spec,
  },
});

export const deployment = (name: string, namespace: string, image = "nginx:1.27", replicas = 1) => ({
  apiVersion: "apps/v1",
  kind: "Deployment",
  metadata: { name, namespace },
  spec: {
    replicas,
    selector: { matchLabels: { app: name } },
    template: { metadata: { labels: { app: name } }, spec: { containers: [{ name: "app", image }] } },
  },
});

export const namespace = (name: string) => ({ apiVersion: "v1", kind: "Namespace", metadata: { name } });

export async function ksStatus(client: KubeClient, name: string, ns = "shipmate-system") {
  const ks = await getObject(
    client,
    `/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/${ns}/kustomizations/${name}`,
  );
  const ready = (ks?.status?.conditions ?? []).find((c: { type: string }) => c.type === "Ready");
  return { ks, ready, inventory: (ks?.status?.inventory?.entries ?? []) as { id: string; v: string }[] };
}

/**
 * Plays kube-controller-manager's ClusterRole aggregation for `admin`, `edit`
 * and `view` (no controller-manager runs in the test cluster, so the
 * aggregated roles have no rules until someone fills them in).
 */
export async function aggregateClusterRoles(client: KubeClient): Promise<void> {
  const base = "/apis/rbac.authorization.k8s.io/v1/clusterroles";
  const rulesOf = async (selector: string): Promise<unknown[]> => {
    const res = await client.raw({ method: "GET", path: base, query: { labelSelector: selector } });
    return ((res.body as ApiJson).items ?? []).flatMap((r: ApiJson) => r.rules ?? []);
  };
  const view = await rulesOf("rbac.authorization.k8s.io/aggregate-to-view=true");
  const edit = [...view, ...(await rulesOf("rbac.authorization.k8s.io/aggregate-to-edit=true"))];
  const admin = [...edit, ...(await rulesOf("rbac.authorization.k8s.io/aggregate-to-admin=true"))];
  for (const [name, rules] of [
    ["view", view],
    ["edit", edit],
    ["admin", admin],
  ] as const)
    await patchObject(
      client,
      `${base}/${name}`,
      { rules },
      { fieldManager: "clusterrole-aggregation-controller" },
    );
}

/** A tenant as Flux's multi-tenancy docs set one up: its namespace, a ServiceAccount, `admin` in that namespace only. */
export const tenant = (ns: string, sa = "reconciler") => [
  namespace(ns),
  { apiVersion: "v1", kind: "ServiceAccount", metadata: { name: sa, namespace: ns } },
  {
    apiVersion: "rbac.authorization.k8s.io/v1",
    kind: "RoleBinding",
    metadata: { name: `${sa}-admin`, namespace: ns },
    roleRef: { apiGroup: "rbac.authorization.k8s.io", kind: "ClusterRole", name: "admin" },
    subjects: [{ kind: "ServiceAccount", name: sa, namespace: ns }],
  },
];

/** Polls `fn` until it returns a value. */
export const waitFor = <T>(fn: () => Promise<T | undefined>, ms = 60_000): Promise<T> =>
  poll(fn, { ms, every: 200 });

/**
 * Plays kube-controller-manager for one Deployment (none runs in the test
 * cluster): once it appears, its status says it rolled out.
 */
export async function rollOutWhenCreated(client: KubeClient, path: string): Promise<ApiJson> {
  const d = await waitFor(() => getObject(client, path));
  await patchObject(
    client,
    `${path}/status`,
    {
      status: {
        observedGeneration: d.metadata.generation,
        replicas: 1,
        updatedReplicas: 1,
        readyReplicas: 1,
        availableReplicas: 1,
      },
    },
    { fieldManager: "kube-controller-manager" },
  );
  return d;
}

/** Creates `tenant(ns, sa)` directly (server-side apply as an admin), as a platform team would outside git. */
export async function applyTenant(client: KubeClient, ns: string, sa = "reconciler"): Promise<void> {
  const paths: Record<string, string> = {
    Namespace: `/api/v1/namespaces/${ns}`,
    ServiceAccount: `/api/v1/namespaces/${ns}/serviceaccounts/${sa}`,
    RoleBinding: `/apis/rbac.authorization.k8s.io/v1/namespaces/${ns}/rolebindings/${sa}-admin`,
  };
  for (const obj of tenant(ns, sa))
    await patchObject(client, paths[obj.kind] ?? "", obj, { type: "apply", fieldManager: "platform-admin" });
}

/** A bound token of a ServiceAccount (TokenRequest API), to run as it. */
export async function serviceAccountToken(client: KubeClient, ns: string, name: string): Promise<string> {
  const res = await client.raw({
    method: "POST",
    path: `/api/v1/namespaces/${ns}/serviceaccounts/${name}/token`,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  });
  if (res.code !== 201) throw new Error(`token for ${ns}/${name}: ${res.code} ${JSON.stringify(res.body)}`);
  return (res.body as { status: { token: string } }).status.token;
}

/**
 * Installs Flux's own CRDs (scripts/provision/70-flux-crds.sh provisions them,
 * e.g. "image.toolkit.fluxcd.io_imagepolicies.yaml") and waits until each is served.
 */
export async function installFluxCrds(client: KubeClient, files: string[]): Promise<void> {
  for (const file of files) {
    const crd = parseYaml(readFileSync(join(fluxCrdDir(), file), "utf8")) as {
      spec: { group: string; names: { plural: string }; versions: { name: string; served: boolean }[] };
    };
    const res = await client.raw({
      method: "POST",
      path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions",
      body: crd,
    });
    if (res.code !== 201) throw new Error(`CRD ${file}: ${res.code} ${JSON.stringify(res.body)}`);
    const version = crd.spec.versions.find((v) => v.served)?.name;
    const path = `/apis/${crd.spec.group}/${version}/${crd.spec.names.plural}`;
    for (let i = 0; (await client.raw({ method: "GET", path })).code !== 200; i++) {
      if (i > 300) throw new Error(`CRD ${file}: ${path} not served after 30 s`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
}

/**
 * `get`, `reconcile`, `suspend` and `resume` of one object through the CLI,
 * as flux's: each request is answered by `pass` (one agent pass) once the
 * object carries it; the reconcile and the resume end Ready (exit 0).
 */
export async function cliLifecycle(o: {
  client: KubeClient;
  kubeconfig: string;
  /** e.g. ["get", "sources", "bucket"] */
  get: string[];
  /** e.g. ["source", "bucket"] */
  target: string[];
  path: string;
  /** "Bucket shipmate-system/NAME", as the CLI names it. */
  what: string;
  pass: () => Promise<unknown>;
}): Promise<void> {
  const name = o.path.split("/").at(-1) ?? "";
  const ns = ["-n", o.what.split(" ")[1]?.split("/")[0] ?? "", "--kubeconfig", o.kubeconfig];
  const row = new RegExp(`${name}\\s+\\S+\\s+(True|False)\\s+True`);
  const listed = await runCli([...o.get, ...ns]);
  expect(listed.code).toBe(0);
  expect(listed.stdout.match(row)?.[1]).toBe("False");

  const reconciling = runCli(["reconcile", ...o.target, name, ...ns, "--timeout", "60s"]);
  await waitFor(
    async () => (await getObject(o.client, o.path))?.metadata.annotations?.[REQUESTED_AT] || undefined,
  );
  await o.pass();
  const reconciled = await reconciling;
  expect(reconciled.stdout).toContain(`► annotating ${o.what}`);
  expect(reconciled.code).toBe(0);

  expect((await runCli(["suspend", ...o.target, name, ...ns])).code).toBe(0);
  expect((await getObject(o.client, o.path))?.spec.suspend).toBe(true);
  expect((await runCli([...o.get, name, ...ns])).stdout.match(row)?.[1]).toBe("True");

  const resuming = runCli(["resume", ...o.target, name, ...ns, "--timeout", "60s"]);
  await waitFor(async () => ((await getObject(o.client, o.path))?.spec.suspend === false ? true : undefined));
  await o.pass();
  const resumed = await resuming;
  expect(resumed.stdout).toContain(`resumed ${o.what}`);
  expect(resumed.code).toBe(0);
}
