/**
 * Reading and steering Flux objects through the Kubernetes API, the way the
 * flux CLI does, for every kind the agent answers: one table says where
 * each kind is served and how `flux get` shows it; one path lists, creates
 * or updates (`create`), asks for a reconcile (`reconcile.fluxcd.io/requestedAt`),
 * suspends and resumes (`spec.suspend`) and waits until the agent handled
 * the request (`status.lastHandledReconcileAt`). The CLI's `get`, `create`,
 * `reconcile`, `suspend` and `resume`, bootstrap, the dashboard and the
 * promotion gate's health report all read and write through here.
 */
import { Watch } from "@kubernetes/client-node";
import { ClusterError } from "../errors.ts";
import { formatTable } from "../table.ts";
import { apiError, type KubeClient } from "./client.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "./objects.ts";
import {
  type Condition,
  KUSTOMIZATION_API_VERSION,
  KubeList,
  KubeObject,
  KustomizationObject,
  SOURCE_API_VERSION,
} from "./schema.ts";

/** The field manager of every write made on a person's behalf (CLI, dashboard, bootstrap). */
export const CLI_FIELD_MANAGER = "shipmate-cli";

/** A Flux object as listed: the fields the rows read, the rest left as it is. */
export interface FluxObject {
  metadata: { name?: string; namespace?: string; annotations?: Record<string, string> };
  spec?: Record<string, unknown>;
  status?: {
    conditions?: Condition[];
    lastHandledReconcileAt?: string;
    artifact?: { revision?: string } | null;
    [field: string]: unknown;
  };
}

interface KindInfo {
  apiVersion: string;
  plural: string;
  /** What makes the cluster serve the kind, for the line a missing CRD gives. */
  install: string;
  /** The REVISION column (default: the artifact's revision). */
  revision?: (o: FluxObject) => string;
  /** The URL field of the row (default: `spec.url`). */
  url?: (o: FluxObject) => string;
  /** The message of an object that is usable without a Ready condition of its own (shown Ready). */
  staticWhen?: (o: FluxObject) => string | undefined;
}

const AGENT = "install the agent (shipmate bootstrap) or apply deploy/agent/crds.yaml";
const IMAGES = "start the agent with --image-automation or apply deploy/agent/crds.yaml";
const HELM_API_VERSION = "helm.toolkit.fluxcd.io/v2";
const IMAGE_API_VERSION = "image.toolkit.fluxcd.io/v1";

const str = (v: unknown): string => (typeof v === "string" ? v : "");
const st = (o: FluxObject) => (o.status ?? {}) as Record<string, unknown> & FluxObject["status"];

/**
 * Every Flux kind the agent reconciles or a Receiver may name, where it is
 * served (test/agent/control-rules.test.ts checks this against the agent's
 * own constants) and what differs in how it is shown.
 */
export const FLUX_KINDS = {
  Kustomization: {
    apiVersion: KUSTOMIZATION_API_VERSION,
    plural: "kustomizations",
    install: AGENT,
    revision: (o) => str(st(o).lastAppliedRevision),
  },
  GitRepository: { apiVersion: SOURCE_API_VERSION, plural: "gitrepositories", install: AGENT },
  OCIRepository: { apiVersion: SOURCE_API_VERSION, plural: "ocirepositories", install: AGENT },
  Bucket: {
    apiVersion: SOURCE_API_VERSION,
    plural: "buckets",
    install: AGENT,
    url: (o) => str(o.spec?.endpoint),
  },
  HelmRepository: {
    apiVersion: SOURCE_API_VERSION,
    plural: "helmrepositories",
    install: AGENT,
    // An OCI HelmRepository is static, with an empty status (as source-controller keeps it): usable once it exists.
    staticWhen: (o) =>
      o.spec?.type === "oci" ? "static object: the HelmCharts that use it pull its charts" : undefined,
  },
  HelmChart: { apiVersion: SOURCE_API_VERSION, plural: "helmcharts", install: AGENT },
  ExternalArtifact: { apiVersion: SOURCE_API_VERSION, plural: "externalartifacts", install: AGENT },
  ArtifactGenerator: {
    apiVersion: "source.extensions.fluxcd.io/v1beta1",
    plural: "artifactgenerators",
    install: AGENT,
  },
  HelmRelease: {
    apiVersion: HELM_API_VERSION,
    plural: "helmreleases",
    install: AGENT,
    // The chart version of its latest release, as `flux get hr` shows.
    revision: (o) => str((st(o).history as { chartVersion?: unknown }[] | undefined)?.[0]?.chartVersion),
  },
  ImageRepository: {
    apiVersion: IMAGE_API_VERSION,
    plural: "imagerepositories",
    install: IMAGES,
    // The last scan time, as Flux's LAST SCAN.
    revision: (o) => str((st(o).lastScanResult as { scanTime?: unknown } | undefined)?.scanTime),
    url: (o) => str(st(o).canonicalImageName) || str(o.spec?.image),
  },
  ImagePolicy: {
    apiVersion: IMAGE_API_VERSION,
    plural: "imagepolicies",
    install: IMAGES,
    // The image it selected.
    revision: (o) => {
      const latest = st(o).latestRef as { name?: string; tag?: string; digest?: string } | undefined;
      return latest?.tag ? `${latest.name}:${latest.tag}${latest.digest ? `@${latest.digest}` : ""}` : "";
    },
    url: (o) => str((st(o).latestRef as { name?: unknown } | undefined)?.name),
  },
  ImageUpdateAutomation: {
    apiVersion: IMAGE_API_VERSION,
    plural: "imageupdateautomations",
    install: IMAGES,
    // Its last run, as Flux's LAST RUN.
    revision: (o) => str(st(o).lastAutomationRunTime),
    url: (o) => str(st(o).lastPushCommit),
  },
  Receiver: {
    apiVersion: "notification.toolkit.fluxcd.io/v1",
    plural: "receivers",
    install: "start the agent with --receivers or apply deploy/agent/crds.yaml",
    revision: () => "",
    url: (o) => str(st(o).webhookPath),
  },
} satisfies Record<string, KindInfo>;

export type FluxKind = keyof typeof FLUX_KINDS;

export function isFluxKind(kind: string): kind is FluxKind {
  return Object.hasOwn(FLUX_KINDS, kind);
}

/** The API path of a kind's collection (all namespaces without `namespace`), or of one object. */
export function objectPath(kind: FluxKind, namespace?: string, name?: string): string {
  const k: KindInfo = FLUX_KINDS[kind];
  const ns = namespace ? `namespaces/${encodeURIComponent(namespace)}/` : "";
  return `/apis/${k.apiVersion}/${ns}${k.plural}${name ? `/${encodeURIComponent(name)}` : ""}`;
}

const whatOf = (kind: FluxKind, namespace: string, name: string) => `${kind} ${namespace}/${name}`;

function readyOf(o: { status?: { conditions?: Condition[] } | null }): Condition | undefined {
  return o.status?.conditions?.find((c) => c.type === "Ready");
}

/** One object as `flux get` shows it; `--json` prints these fields. */
export interface ObjectRow {
  namespace: string;
  name: string;
  url: string;
  revision: string;
  suspended: boolean;
  ready: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  lastHandledReconcileAt: string;
}

export function objectRowOf(kind: FluxKind, obj: FluxObject): ObjectRow {
  const k: KindInfo = FLUX_KINDS[kind];
  const ready = readyOf(obj);
  const staticMessage = ready ? undefined : k.staticWhen?.(obj);
  return {
    namespace: obj.metadata.namespace ?? "",
    name: obj.metadata.name ?? "",
    url: k.url ? k.url(obj) : str(obj.spec?.url),
    revision: k.revision ? k.revision(obj) : (obj.status?.artifact?.revision ?? ""),
    suspended: obj.spec?.suspend === true,
    ready: ready?.status ?? (staticMessage ? "True" : "Unknown"),
    reason: ready?.reason ?? "",
    message: ready?.message ?? staticMessage ?? "waiting to be reconciled",
    lastHandledReconcileAt: obj.status?.lastHandledReconcileAt ?? "",
  };
}

const byName = (a: { namespace: string; name: string }, b: { namespace: string; name: string }) =>
  a.namespace.localeCompare(b.namespace) || a.name.localeCompare(b.name);

/** Every object of a kind (in one namespace, or all without one), sorted by namespace and name. */
export async function listObjects(
  client: KubeClient,
  kind: FluxKind,
  namespace?: string,
): Promise<FluxObject[]> {
  const res = await client.raw({ method: "GET", path: objectPath(kind, namespace) });
  if (res.code === 404)
    throw new ClusterError(
      `${kind} objects are not served by this cluster: ${(FLUX_KINDS[kind] as KindInfo).install}`,
    );
  if (res.code !== 200) throw apiError(`list ${kind}`, res.code, res.body);
  return (KubeList.parse(res.body).items ?? []) as FluxObject[];
}

export async function listObjectRows(
  client: KubeClient,
  kind: FluxKind,
  namespace?: string,
): Promise<ObjectRow[]> {
  return (await listObjects(client, kind, namespace)).map((o) => objectRowOf(kind, o)).sort(byName);
}

/** Fixed-width table in the spirit of `flux get sources|helmreleases|images`. */
export function formatObjectRows(rows: ObjectRow[]): string[] {
  const head = ["NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "MESSAGE"];
  const cells = rows.map((r) => [
    r.namespace,
    r.name,
    r.revision || "-",
    r.suspended ? "True" : "False",
    r.ready,
    r.message.replaceAll("\n", " "),
  ]);
  return formatTable(head, cells).split("\n");
}

/** One object, undefined when it does not exist. */
export async function getObject(
  client: KubeClient,
  kind: FluxKind,
  namespace: string,
  name: string,
): Promise<FluxObject | undefined> {
  const res = await client.raw({ method: "GET", path: objectPath(kind, namespace, name) });
  if (res.code === 404) return undefined;
  if (res.code !== 200) throw apiError(whatOf(kind, namespace, name), res.code, res.body);
  return res.body as FluxObject;
}

export async function getKustomization(
  client: KubeClient,
  namespace: string,
  name: string,
): Promise<KustomizationObject | undefined> {
  const obj = await getObject(client, "Kustomization", namespace, name);
  return (
    obj && KustomizationObject.parse({ apiVersion: KUSTOMIZATION_API_VERSION, kind: "Kustomization", ...obj })
  );
}

/**
 * A merge patch made on a person's behalf; a missing object or a refusal
 * is one line naming it. Every kind's reconcile, suspend and resume goes
 * through here.
 */
async function patchObject(
  client: KubeClient,
  kind: FluxKind,
  namespace: string,
  name: string,
  body: unknown,
  verb: string,
  fieldManager = CLI_FIELD_MANAGER,
): Promise<void> {
  const what = whatOf(kind, namespace, name);
  const res = await client.raw({
    method: "PATCH",
    path: objectPath(kind, namespace, name),
    query: { fieldManager },
    body,
    contentType: "application/merge-patch+json",
  });
  if (res.code === 404) throw new ClusterError(`${what} not found`);
  if (res.code < 200 || res.code > 299) throw apiError(`${verb} ${what}`, res.code, res.body);
}

/**
 * Asks the agent to reconcile an object now (`reconcile.fluxcd.io/requestedAt`);
 * returns the value to wait for. The Receiver writes it as the agent
 * (`fieldManager`), everyone else as the CLI.
 */
export async function requestReconcile(
  client: KubeClient,
  kind: FluxKind,
  namespace: string,
  name: string,
  now = new Date(),
  fieldManager = CLI_FIELD_MANAGER,
): Promise<string> {
  const at = now.toISOString();
  const body = { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: at } } };
  await patchObject(client, kind, namespace, name, body, "annotate", fieldManager);
  return at;
}

/**
 * `spec.suspend`: a suspended object is left alone by the agent (manual
 * changes stay) until resumed; resuming also asks for a reconcile, as
 * Flux's CLI does. Returns the request's time to wait for.
 */
export async function setSuspended(
  client: KubeClient,
  kind: FluxKind,
  namespace: string,
  name: string,
  suspended: boolean,
  now = new Date(),
): Promise<string> {
  const at = now.toISOString();
  const body = suspended
    ? { spec: { suspend: true } }
    : { metadata: { annotations: { [REQUESTED_AT_ANNOTATION]: at } }, spec: { suspend: false } };
  await patchObject(client, kind, namespace, name, body, suspended ? "suspend" : "resume");
  return at;
}

/**
 * Waits until the agent handled the request made at `at`: it wrote
 * `status.lastHandledReconcileAt` = `at` and a settled Ready condition
 * (True or False). Returns the object then.
 */
export async function waitHandled(
  client: KubeClient,
  kind: FluxKind,
  namespace: string,
  name: string,
  at: string,
  timeoutMs: number,
  pollMs = 300,
): Promise<FluxObject> {
  const what = whatOf(kind, namespace, name);
  const deadline = Date.now() + timeoutMs;
  for (;;) {
    const obj = await getObject(client, kind, namespace, name);
    if (!obj) throw new ClusterError(`${what} not found`);
    const ready = readyOf(obj);
    if (obj.status?.lastHandledReconcileAt === at && ready && ready.status !== "Unknown") return obj;
    if (Date.now() > deadline)
      throw new ClusterError(`${what}: not reconciled within ${Math.round(timeoutMs / 1000)}s`);
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export type ApplyAction = "created" | "configured" | "unchanged";

export interface Applied {
  action: ApplyAction;
  /** The `reconcile.fluxcd.io/requestedAt` written with it, to wait for. */
  requestedAt: string;
}

/**
 * `create …` without --export: creates the object, or replaces its spec in
 * place (an Update, as `flux create` does, so the agent can take it over
 * from git later without a server-side apply conflict); either way a
 * reconcile is requested.
 */
export async function applyFluxObject(
  client: KubeClient,
  obj: KubeObject,
  now = new Date(),
): Promise<Applied> {
  const kind = obj.kind;
  if (!isFluxKind(kind)) throw new ClusterError(`${kind} is not a Flux kind shipmate creates`);
  const ns = obj.metadata.namespace ?? "";
  const name = obj.metadata.name ?? "";
  const what = whatOf(kind, ns, name);
  const requestedAt = now.toISOString();
  const requested = { [REQUESTED_AT_ANNOTATION]: requestedAt };
  const res = await client.raw({ method: "GET", path: objectPath(kind, ns, name) });
  if (res.code === 404) {
    const created = await client.raw({
      method: "POST",
      path: objectPath(kind, ns),
      query: { fieldManager: CLI_FIELD_MANAGER },
      body: { ...obj, metadata: { ...obj.metadata, annotations: requested } },
    });
    if (created.code === 404)
      throw new ClusterError(
        `${what}: the cluster does not serve ${kind} objects; ${(FLUX_KINDS[kind] as KindInfo).install}`,
      );
    if (created.code < 200 || created.code > 299)
      throw apiError(`create ${what}`, created.code, created.body);
    return { action: "created", requestedAt };
  }
  if (res.code !== 200) throw apiError(what, res.code, res.body);
  const live = KubeObject.parse(res.body);
  const spec = (obj as { spec?: unknown }).spec;
  const same = canonicalJson((live as { spec?: unknown }).spec) === canonicalJson(spec);
  const body = {
    ...live,
    metadata: { ...live.metadata, annotations: { ...live.metadata.annotations, ...requested } },
    spec,
  };
  const put = await client.raw({
    method: "PUT",
    path: objectPath(kind, ns, name),
    query: { fieldManager: CLI_FIELD_MANAGER },
    body,
  });
  if (put.code < 200 || put.code > 299) throw apiError(`update ${what}`, put.code, put.body);
  return { action: same ? "unchanged" : "configured", requestedAt };
}

/** The source a Kustomization names, with Flux's defaulting (no namespace: the Kustomization's own). */
export function sourceRefOf(ks: {
  metadata: { namespace?: string | undefined };
  spec?: Record<string, unknown> | undefined;
}): { kind: string; namespace: string; name: string } | undefined {
  const ref = (ks.spec as { sourceRef?: { kind?: unknown; name?: unknown; namespace?: unknown } } | undefined)
    ?.sourceRef;
  if (!ref || typeof ref.name !== "string" || typeof ref.kind !== "string") return undefined;
  const namespace =
    typeof ref.namespace === "string" && ref.namespace ? ref.namespace : ks.metadata.namespace;
  return { kind: ref.kind, name: ref.name, namespace: namespace ?? "" };
}

/** The GitRepository a Kustomization reads, or undefined when it names another kind or none. */
export function gitSourceOf(ks: KustomizationObject): { namespace: string; name: string } | undefined {
  const ref = sourceRefOf(ks);
  return ref?.kind === "GitRepository" ? { namespace: ref.namespace, name: ref.name } : undefined;
}

// Kustomizations: their own row (applied revision, object count) and the health report.

export interface KustomizationRow {
  namespace: string;
  name: string;
  /** Ready condition status: True, False or Unknown. */
  ready: "True" | "False" | "Unknown";
  reason: string;
  message: string;
  suspended: boolean;
  lastAppliedRevision: string;
  lastAttemptedRevision: string;
  inventory: number;
  /** When the Ready condition last changed. */
  since: string;
}

export function kustomizationRowOf(ks: KustomizationObject): KustomizationRow {
  const ready = readyOf(ks);
  return {
    namespace: ks.metadata.namespace ?? "",
    name: ks.metadata.name ?? "",
    ready: ready?.status ?? "Unknown",
    reason: ready?.reason ?? "",
    message: ready?.message ?? "waiting to be reconciled",
    suspended: (ks.spec as { suspend?: unknown } | undefined)?.suspend === true,
    lastAppliedRevision: ks.status?.lastAppliedRevision ?? "",
    lastAttemptedRevision: ks.status?.lastAttemptedRevision ?? "",
    inventory: ks.status?.inventory?.entries?.length ?? 0,
    since: ready?.lastTransitionTime ?? "",
  };
}

const parseKs = (o: unknown) =>
  KustomizationObject.safeParse({
    apiVersion: KUSTOMIZATION_API_VERSION,
    kind: "Kustomization",
    ...(o as object),
  });

export async function listKustomizations(
  client: KubeClient,
  namespace?: string,
): Promise<KustomizationRow[]> {
  return (await listObjects(client, "Kustomization", namespace))
    .map(parseKs)
    .filter((p) => p.success)
    .map((p) => kustomizationRowOf(p.data))
    .sort(byName);
}

/** A Kustomization's row once `waitHandled` returned it. */
export function kustomizationRowOfObject(obj: FluxObject): KustomizationRow {
  return kustomizationRowOf(
    KustomizationObject.parse({ apiVersion: KUSTOMIZATION_API_VERSION, kind: "Kustomization", ...obj }),
  );
}

/** Fixed-width table in the spirit of `flux get kustomizations`. */
export function formatKustomizationRows(rows: KustomizationRow[], header = true): string[] {
  const cols = (r: KustomizationRow) => [
    r.namespace,
    r.name,
    r.lastAppliedRevision || "-",
    r.suspended ? "True" : "False",
    r.ready,
    String(r.inventory),
    r.message.replaceAll("\n", " "),
  ];
  const head = ["NAMESPACE", "NAME", "REVISION", "SUSPENDED", "READY", "OBJECTS", "MESSAGE"];
  const table = header ? [head, ...rows.map(cols)] : rows.map(cols);
  const widths = head.map((_, i) =>
    Math.max(...(header ? table : [head, ...table]).map((r) => (r[i] ?? "").length)),
  );
  return table.map((r) =>
    r
      .map((c, i) => (i === r.length - 1 ? c : c.padEnd(widths[i] ?? 0)))
      .join("  ")
      .trimEnd(),
  );
}

/**
 * Streams Kustomization changes (client-node's Watch) until `signal` aborts,
 * calling `onRow` for every added, modified or deleted object.
 */
export async function watchKustomizations(
  client: KubeClient,
  namespace: string | undefined,
  onRow: (row: KustomizationRow, type: string) => void,
  signal: AbortSignal,
): Promise<void> {
  const watch = new Watch(client.kc);
  const path = objectPath("Kustomization", namespace);
  while (!signal.aborted) {
    const ended = new Promise<Error | undefined>((resolve) => {
      watch
        .watch(
          path,
          { allowWatchBookmarks: false },
          (type, obj) => {
            const parsed = parseKs(obj);
            if (parsed.success && (type === "ADDED" || type === "MODIFIED" || type === "DELETED"))
              onRow(kustomizationRowOf(parsed.data), type);
          },
          (err) => resolve(err ?? undefined),
        )
        .then((ctrl) => {
          if (signal.aborted) ctrl.abort();
          else signal.addEventListener("abort", () => ctrl.abort(), { once: true });
        }, resolve);
    });
    const err = await ended;
    if (signal.aborted) return;
    // Watches end on their own (server timeout, API server restart): start again after a pause.
    await new Promise((r) => setTimeout(r, err ? 1000 : 100));
  }
}

/**
 * Waits until the Kustomization is Ready at `revision` (`<branch>@sha1:<commit>`),
 * reporting each change of its Ready condition; on timeout the error carries
 * the last condition, which says what the agent is stuck on.
 */
export async function waitReadyAt(
  client: KubeClient,
  namespace: string,
  name: string,
  revision: string,
  timeoutMs: number,
  onChange: (row: KustomizationRow | undefined) => void,
  pollMs = 1000,
  /** Where the agent's Deployment runs, for the hint on timeout (the root's namespace unless told). */
  agentNamespace = namespace,
): Promise<KustomizationRow> {
  const deadline = Date.now() + timeoutMs;
  let last = "";
  let row: KustomizationRow | undefined;
  for (;;) {
    const ks = await getKustomization(client, namespace, name);
    row = ks ? kustomizationRowOf(ks) : undefined;
    const seen = row ? `${row.ready}/${row.reason}/${row.lastAppliedRevision}/${row.message}` : "missing";
    if (seen !== last) {
      last = seen;
      onChange(row);
    }
    if (row?.ready === "True" && row.lastAppliedRevision === revision) return row;
    if (Date.now() > deadline) {
      const state = row
        ? `Ready=${row.ready}${row.reason ? ` ${row.reason}` : ""}: ${row.message.replaceAll("\n", " ")}`
        : "the object does not exist yet";
      throw new ClusterError(
        `Kustomization ${namespace}/${name} did not apply ${revision} within ${Math.round(timeoutMs / 1000)}s (${state}); is the agent running? kubectl -n ${agentNamespace} get deployment shipmate-agent`,
      );
    }
    await new Promise((r) => setTimeout(r, pollMs));
  }
}

export interface HealthReport {
  /** Every Kustomization Ready, none suspended. */
  healthy: boolean;
  /** The revision every Kustomization applied, when they all agree. */
  revision: string | undefined;
  kustomizations: KustomizationRow[];
  checkedAt: string;
}

/** The health report the promotion gate reads (documented in docs/agent.md). */
export async function healthReport(client: KubeClient, namespace?: string): Promise<HealthReport> {
  const rows = await listKustomizations(client, namespace);
  const revisions = new Set(rows.map((r) => r.lastAppliedRevision));
  return {
    healthy: rows.length > 0 && rows.every((r) => r.ready === "True" && !r.suspended),
    revision: revisions.size === 1 ? [...revisions][0] || undefined : undefined,
    kustomizations: rows,
    checkedAt: new Date().toISOString(),
  };
}

/** Whether the report shows every Kustomization healthy at `commit` (a full or abbreviated SHA). */
export function healthyAt(report: HealthReport, commit: string): boolean {
  const c = commit.toLowerCase();
  return (
    report.healthy &&
    report.kustomizations.every((r) => {
      const sha = r.lastAppliedRevision.split(":").pop() ?? "";
      return c.length >= 7 && sha.startsWith(c);
    })
  );
}
