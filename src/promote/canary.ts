/**
 * Flagger Canaries as shipmate reads them: which Canaries a set of apps has
 * in an environment's manifests (pure, from the files in git), and what the
 * cluster says of each (status, its target Deployment, Flagger's last
 * Warning event), for the `canary` gate, rollback requests and
 * `shipmate get canaries`. The kubeconfig context of an environment is
 * chosen here too, as every per-environment cluster read does.
 */
import { parseAllDocuments } from "yaml";
import { z } from "zod";
import type { FleetEnvironment } from "../config/fleet.ts";
import { ClusterError } from "../errors.ts";
import { KubeClient, loadKubeConfig, PARTIAL_METADATA_LIST_ACCEPT } from "../kube/client.ts";
import { CANARY_API_VERSION, CanaryStatusSchema, FLAGGER_GROUP } from "../kube/flagger.ts";
import type { CanaryEvidence } from "./gates.ts";
import type { EnvTree } from "./plan.ts";

const CANARIES = `/apis/${CANARY_API_VERSION}`;

/** A Canary declared in git: where, and what it targets. */
export interface DeclaredCanary {
  app: string;
  file: string;
  namespace: string;
  name: string;
  target?: { kind: string; name: string };
}

function appOf(envPath: string, file: string): string {
  const base = envPath === "." || envPath === "" ? "" : `${envPath}/`;
  const rest = file.startsWith(base) ? file.slice(base.length) : file;
  const slash = rest.indexOf("/");
  return slash === -1 ? "" : rest.slice(0, slash);
}

/**
 * The Canaries under an environment's path, of `apps` (all when absent).
 * A Canary without a namespace takes the one of its folder's other objects,
 * else `default` (as kustomize leaves it to the applier).
 */
export function declaredCanaries(env: EnvTree, apps?: readonly string[]): DeclaredCanary[] {
  const wanted = apps ? new Set(apps) : undefined;
  const out: DeclaredCanary[] = [];
  for (const f of env.files) {
    if (!f.content.includes(FLAGGER_GROUP)) continue;
    const app = appOf(env.path, f.path);
    if (wanted && !wanted.has(app)) continue;
    for (const doc of parseAllDocuments(f.content)) {
      const v = doc.toJSON() as {
        apiVersion?: unknown;
        kind?: unknown;
        metadata?: { name?: unknown; namespace?: unknown };
        spec?: { targetRef?: { kind?: unknown; name?: unknown } };
      } | null;
      if (v?.kind !== "Canary" || typeof v.apiVersion !== "string") continue;
      if (!v.apiVersion.startsWith(`${FLAGGER_GROUP}/`) || typeof v.metadata?.name !== "string") continue;
      const namespace =
        typeof v.metadata.namespace === "string" ? v.metadata.namespace : namespaceNear(env, f.path);
      const t = v.spec?.targetRef;
      out.push({
        app,
        file: f.path,
        namespace,
        name: v.metadata.name,
        ...(typeof t?.name === "string"
          ? { target: { kind: typeof t.kind === "string" ? t.kind : "Deployment", name: t.name } }
          : {}),
      });
    }
  }
  return out;
}

/** The namespace of the other objects in the Canary's folder (kustomization `namespace:` or a manifest's), else default. */
function namespaceNear(env: EnvTree, file: string): string {
  const dir = file.slice(0, file.lastIndexOf("/") + 1);
  for (const f of env.files) {
    if (!f.path.startsWith(dir)) continue;
    const m =
      /^namespace:\s*([a-z0-9-]+)\s*$/m.exec(f.content) ??
      /^\s{2}namespace:\s*([a-z0-9-]+)\s*$/m.exec(f.content);
    if (m?.[1]) return m[1];
  }
  return "default";
}

const CanarySchema = z.looseObject({
  metadata: z.looseObject({ name: z.string(), namespace: z.string().default("default") }),
  spec: z.looseObject({
    targetRef: z.looseObject({ kind: z.string().optional(), name: z.string() }).optional(),
    analysis: z.looseObject({ threshold: z.number().optional() }).optional(),
  }),
  status: CanaryStatusSchema.optional(),
});
type Canary = z.infer<typeof CanarySchema>;
const CanaryListSchema = z.looseObject({ items: z.array(CanarySchema) });
// core/v1 Event, the fields read here.
const EventListSchema = z.looseObject({
  items: z.array(
    z.looseObject({
      type: z.string().optional(),
      message: z.string().optional(),
      lastTimestamp: z.string().nullable().optional(),
      eventTime: z.string().nullable().optional(),
      metadata: z.looseObject({ creationTimestamp: z.string().optional() }),
    }),
  ),
});

/** A kubeconfig context for `env`: its `kubeContext`, else one named like it, else the current one. */
export function clientFor(kubeconfig: string | undefined, env?: FleetEnvironment): KubeClient {
  const kc = loadKubeConfig(kubeconfig);
  const named =
    env?.kubeContext ?? (env && kc.getContexts().some((c) => c.name === env.name) ? env.name : undefined);
  if (named) {
    if (!kc.getContexts().some((c) => c.name === named))
      throw new ClusterError(
        `kubeconfig ${kubeconfig ?? "(default)"}: no context "${named}" (environment ${env?.name})`,
      );
    kc.setCurrentContext(named);
  }
  return new KubeClient(kc, { retryForMs: 5_000 });
}

/**
 * Flagger's word on a Canary: the last Warning that names a metric or a query
 * (values below threshold, query errors) else the last Warning or event, and
 * its recent distinct Warnings.
 */
async function lastWord(client: KubeClient, c: Canary): Promise<{ message?: string; events: string[] }> {
  const res = await client.raw({
    method: "GET",
    path: `/api/v1/namespaces/${c.metadata.namespace}/events`,
    query: {
      fieldSelector: `involvedObject.kind=Canary,involvedObject.name=${c.metadata.name}`,
    },
  });
  if (res.code !== 200) return { events: [] };
  const events = EventListSchema.safeParse(res.body);
  if (!events.success) return { events: [] };
  const when = (e: (typeof events.data.items)[number]) =>
    e.lastTimestamp ?? e.eventTime ?? e.metadata.creationTimestamp ?? "";
  const text = (e: (typeof events.data.items)[number] | undefined) => e?.message?.replace(/\s+/g, " ").trim();
  const sorted = [...events.data.items].sort((a, b) => when(a).localeCompare(when(b)));
  const warnings = sorted.filter((e) => e.type === "Warning");
  const telling = warnings.filter((e) => /^Halt |metric|query|no values/i.test(e.message ?? "")).at(-1);
  const message = text(telling ?? warnings.at(-1) ?? sorted.at(-1));
  const distinct = [...new Set(warnings.map(text).filter((m): m is string => !!m))].slice(-5);
  return { ...(message ? { message } : {}), events: distinct };
}

/** Names of the Deployments of a namespace: one LIST answers every Canary's targetRef there. */
async function deploymentNames(client: KubeClient, namespace: string): Promise<Set<string>> {
  const path = `/apis/apps/v1/namespaces/${namespace}/deployments`;
  const res = await client.raw({ method: "GET", path, accept: PARTIAL_METADATA_LIST_ACCEPT });
  if (res.code !== 200) throw new ClusterError(`GET ${path}: HTTP ${res.code}`);
  const items = (res.body as { items?: { metadata: { name: string } }[] }).items ?? [];
  return new Set(items.map((i) => i.metadata.name));
}

/** One Canary's evidence; `deployments` holds the names of its namespace's Deployments. */
export async function canaryEvidence(
  client: KubeClient,
  c: Canary,
  deployments: ReadonlySet<string>,
): Promise<CanaryEvidence> {
  const ev: CanaryEvidence = { namespace: c.metadata.namespace, name: c.metadata.name };
  const t = c.spec.targetRef;
  if (t && (t.kind ?? "Deployment") === "Deployment" && !deployments.has(t.name))
    ev.targetMissing = `${c.metadata.namespace}/${t.name}`;
  const s = c.status;
  if (s?.phase) ev.phase = s.phase;
  if (s?.failedChecks !== undefined) ev.failedChecks = s.failedChecks;
  if (c.spec.analysis?.threshold !== undefined) ev.threshold = c.spec.analysis.threshold;
  if (s?.canaryWeight !== undefined) ev.canaryWeight = s.canaryWeight;
  if (s?.iterations !== undefined) ev.iterations = s.iterations;
  if (s?.lastTransitionTime) ev.lastTransitionTime = s.lastTransitionTime;
  // Flagger's events say why (metric values, query errors); its condition is the fallback. Finished ones need no events.
  const said =
    s?.phase && s.phase !== "Succeeded" && s.phase !== "Initialized" ? await lastWord(client, c) : undefined;
  const condition = s?.conditions?.find((x) => x.type === "Promoted")?.message;
  const message = said?.message ?? condition;
  if (message) ev.message = message;
  if (said?.events.length) ev.events = said.events;
  return ev;
}

/** The Canaries of a namespace (none when Flagger's CRDs are not served) and its Deployments' names. */
async function namespaceCanaries(client: KubeClient, namespace: string | undefined): Promise<Canary[]> {
  const path = namespace ? `${CANARIES}/namespaces/${namespace}/canaries` : `${CANARIES}/canaries`;
  const res = await client.raw({ method: "GET", path });
  if (res.code === 404) return [];
  if (res.code !== 200) throw new ClusterError(`GET ${path}: HTTP ${res.code}`);
  const list = CanaryListSchema.safeParse(res.body);
  if (!list.success) throw new ClusterError(`GET ${path}: unexpected answer`);
  return list.data.items;
}

/**
 * The named Canaries as the cluster has them (missing ones marked), or why
 * they could not be read. Two LISTs per namespace (Canaries, Deployment
 * names), plus the events of each Canary whose rollout has not finished.
 */
export async function readCanaries(
  client: KubeClient,
  declared: readonly DeclaredCanary[],
): Promise<CanaryEvidence[] | { error: string }> {
  const out: CanaryEvidence[] = [];
  try {
    for (const namespace of [...new Set(declared.map((d) => d.namespace))].sort()) {
      const found = new Map((await namespaceCanaries(client, namespace)).map((c) => [c.metadata.name, c]));
      const wanted = declared.filter((d) => d.namespace === namespace);
      const deployments = wanted.some((d) => found.has(d.name))
        ? await deploymentNames(client, namespace)
        : new Set<string>();
      for (const d of wanted) {
        const c = found.get(d.name);
        out.push(
          c ? await canaryEvidence(client, c, deployments) : { namespace, name: d.name, missing: true },
        );
      }
    }
  } catch (err) {
    return { error: (err as Error).message.split("\n")[0] ?? "unreachable" };
  }
  return out;
}

/** Every Canary the client can list (all namespaces, or one), with its evidence. */
export async function listCanaries(client: KubeClient, namespace?: string): Promise<CanaryEvidence[]> {
  const items = await namespaceCanaries(client, namespace);
  const names = new Map<string, Set<string>>();
  const out: CanaryEvidence[] = [];
  for (const c of items) {
    const ns = c.metadata.namespace;
    let deployments = names.get(ns);
    if (!deployments) {
      deployments = await deploymentNames(client, ns);
      names.set(ns, deployments);
    }
    out.push(await canaryEvidence(client, c, deployments));
  }
  return out.sort((a, b) => `${a.namespace}/${a.name}`.localeCompare(`${b.namespace}/${b.name}`));
}

/** The images the Canary's target Deployment runs (what the failed rollout tried), by container. */
export async function targetImages(client: KubeClient, namespace: string, name: string): Promise<string[]> {
  const res = await client.raw({
    method: "GET",
    path: `/apis/apps/v1/namespaces/${namespace}/deployments/${name}`,
  });
  if (res.code !== 200) return [];
  const d = res.body as { spec?: { template?: { spec?: { containers?: { image?: string }[] } } } };
  return (d.spec?.template?.spec?.containers ?? []).map((c) => c.image ?? "").filter(Boolean);
}

export interface EnvironmentCanaries {
  /** The fleet environment, or `(current context)` when none is reached by name. */
  environment: string;
  context: string;
  canaries?: CanaryEvidence[];
  error?: string;
}

/**
 * The Canaries of every environment the kubeconfig reaches (its
 * `kubeContext`, or a context named like it); with no fleet, or none
 * reached, the current context's.
 */
export async function canariesByEnvironment(
  kubeconfig: string | undefined,
  environments: readonly FleetEnvironment[],
  namespace?: string,
): Promise<EnvironmentCanaries[]> {
  const kc = loadKubeConfig(kubeconfig);
  const contexts = new Set(kc.getContexts().map((c) => c.name));
  const reached = environments.filter((e) => contexts.has(e.kubeContext ?? e.name));
  const targets: { environment: string; env?: FleetEnvironment; context: string }[] = reached.length
    ? reached.map((e) => ({ environment: e.name, env: e, context: e.kubeContext ?? e.name }))
    : [{ environment: "(current context)", context: kc.getCurrentContext() }];
  const out: EnvironmentCanaries[] = [];
  for (const t of targets) {
    let client: KubeClient | undefined;
    try {
      client = clientFor(kubeconfig, t.env);
      out.push({
        environment: t.environment,
        context: t.context,
        canaries: await listCanaries(client, namespace),
      });
    } catch (err) {
      out.push({
        environment: t.environment,
        context: t.context,
        error: (err as Error).message.split("\n")[0] ?? "",
      });
    } finally {
      client?.close();
    }
  }
  return out;
}
