/**
 * `shipmate create source helm` and `shipmate create helmrelease`, with the
 * flags `flux create source helm` / `flux create helmrelease` have: the
 * HelmRepository (HTTP or, for an `oci://` URL, OCI) and the HelmRelease
 * whose `chart.spec` the agent turns into a HelmChart. `--export` prints the
 * Flux YAML to commit; otherwise the object is applied and the agent's first
 * reconcile waited for. Object building and flag checks are pure
 * (`helmRepositoryObject`, `helmReleaseObject`); bad input is one line
 * naming the flag or file.
 */
import { readFileSync, statSync } from "node:fs";
import { mergeValues, type Values } from "../../agent/helm/rules.ts";
import { HELM_API_VERSION } from "../../agent/helm/spec.ts";
import {
  checkInterval,
  checkNamespace,
  checkObjectName,
  exportYaml,
  parseDependsOn,
} from "../../bootstrap/flux.ts";
import { documentValue, parseDocumentsBounded } from "../../config/limits.ts";
import { ConfigError, redact, UsageError } from "../../errors.ts";
import { KubeClient, loadKubeConfig } from "../../kube/client.ts";
import { applyFluxObject, formatObjectRows, objectRowOf, waitHandled } from "../../kube/control.ts";
import { SOURCE_API_VERSION } from "../../kube/schema.ts";
import { durationMs } from "../args.ts";
import { type CliIO, writeLine } from "../io.ts";

export const HELM_SOURCE_USAGE = `shipmate create source helm NAME --url URL [--interval 1m] [--secret-ref NAME]
       [--pass-credentials] [--oci-provider generic] [-n shipmate-system] [--export]
       [--kubeconfig FILE] [--timeout 2m] [--no-wait]`;
export const HELM_RELEASE_USAGE = `shipmate create helmrelease NAME --source (HelmRepository|GitRepository)/NAME[.NAMESPACE]
       --chart NAME|PATH [--chart-version RANGE] [--values FILE]... [--values-from (ConfigMap|Secret)/NAME]...
       [--release-name N] [--target-namespace NS] [--create-target-namespace] [--storage-namespace NS]
       [--service-account SA] [--depends-on [NS/]NAME]... [--crds Skip|Create|CreateReplace]
       [--reconcile-strategy ChartVersion|Revision] [--chart-interval D] [--interval 1m]
       [-n shipmate-system] [--export] [--kubeconfig FILE] [--timeout 5m] [--no-wait]`;

export const HELM_FLAGS = {
  "pass-credentials": { type: "boolean" },
  "oci-provider": { type: "string" },
  chart: { type: "string" },
  "chart-version": { type: "string" },
  values: { type: "string", multiple: true },
  "values-from": { type: "string", multiple: true },
  "release-name": { type: "string" },
  "create-target-namespace": { type: "boolean" },
  "storage-namespace": { type: "string" },
  "service-account": { type: "string" },
  crds: { type: "string" },
  "reconcile-strategy": { type: "string" },
  "chart-interval": { type: "string" },
} as const;

/** The flags both commands read (a subset of `create`'s). */
export interface HelmCreateFlags {
  namespace?: string;
  export?: boolean;
  kubeconfig?: string;
  timeout?: string;
  "no-wait"?: boolean;
  interval?: string;
  url?: string;
  "secret-ref"?: string;
  source?: string;
  "target-namespace"?: string;
  "depends-on"?: string[];
  "pass-credentials"?: boolean;
  "oci-provider"?: string;
  chart?: string;
  "chart-version"?: string;
  values?: string[];
  "values-from"?: string[];
  "release-name"?: string;
  "create-target-namespace"?: boolean;
  "storage-namespace"?: string;
  "service-account"?: string;
  crds?: string;
  "reconcile-strategy"?: string;
  "chart-interval"?: string;
}

type Obj = {
  apiVersion: string;
  kind: "HelmRepository" | "HelmRelease";
  metadata: { name: string; namespace: string };
  spec: Values;
};

const SOURCE_ONLY = ["url", "secret-ref", "pass-credentials", "oci-provider"] as const;
const RELEASE_ONLY = [
  "source",
  "chart",
  "chart-version",
  "values",
  "values-from",
  "release-name",
  "target-namespace",
  "create-target-namespace",
  "storage-namespace",
  "service-account",
  "depends-on",
  "crds",
  "reconcile-strategy",
  "chart-interval",
] as const;

function refuse(values: HelmCreateFlags, flags: readonly (keyof HelmCreateFlags)[], what: string): void {
  const given = flags.filter((f) => values[f] !== undefined);
  if (given.length)
    throw new UsageError(`--${given.join(", --")} ${given.length > 1 ? "do" : "does"} not apply to ${what}`);
}

/** A HelmRepository as `flux create source helm` writes it; an `oci://` URL makes it `type: oci`. */
export function helmRepositoryObject(name: string, f: HelmCreateFlags): Obj {
  refuse(f, RELEASE_ONLY, "create source helm");
  if (!f.url) throw new UsageError("--url is required (shipmate create source helm NAME --url URL …)");
  let url: URL;
  try {
    url = new URL(f.url);
  } catch {
    throw new UsageError(`--url "${redact(f.url)}" is not a URL (https://, http:// or oci://)`);
  }
  const oci = url.protocol === "oci:";
  if (!oci && url.protocol !== "https:" && url.protocol !== "http:")
    throw new UsageError(`--url "${redact(f.url)}" must be https://, http:// or oci://`);
  if (url.username || url.password)
    throw new UsageError("--url must not carry credentials: put them in a Secret and pass --secret-ref");
  if (f["oci-provider"] !== undefined) {
    if (!oci) throw new UsageError("--oci-provider applies to an oci:// URL only");
    if (f["oci-provider"] !== "generic")
      throw new UsageError(
        `--oci-provider ${f["oci-provider"]} is not supported (the agent pulls with generic credentials only)`,
      );
  }
  const spec: Values = { interval: checkInterval("--interval", f.interval ?? "1m") };
  if (f["pass-credentials"]) spec.passCredentials = true;
  if (oci) {
    spec.provider = f["oci-provider"] ?? "generic";
    spec.type = "oci";
  }
  if (f["secret-ref"]) spec.secretRef = { name: checkObjectName("--secret-ref", f["secret-ref"]) };
  spec.url = f.url;
  return {
    apiVersion: SOURCE_API_VERSION,
    kind: "HelmRepository",
    metadata: {
      name: checkObjectName("source name", name),
      namespace: checkNamespace(f.namespace ?? "shipmate-system"),
    },
    spec,
  };
}

/** `--source Kind/NAME[.NAMESPACE]`: HelmRepository or GitRepository (the kinds a HelmChart reads here). */
export function parseChartSource(value: string): { kind: string; name: string; namespace?: string } {
  const slash = value.indexOf("/");
  if (slash < 0)
    throw new UsageError(`--source "${value}" must be Kind/NAME (HelmRepository/NAME or GitRepository/NAME)`);
  const kind = value.slice(0, slash);
  if (kind !== "HelmRepository" && kind !== "GitRepository")
    throw new UsageError(`--source kind ${kind} is not supported (HelmRepository or GitRepository)`);
  const parts = value.slice(slash + 1).split(".");
  const [name = "", namespace] = parts.length === 2 ? parts : [value.slice(slash + 1)];
  checkObjectName("--source", name);
  if (namespace !== undefined) checkNamespace(namespace);
  return namespace ? { kind, name, namespace } : { kind, name };
}

const MAX_VALUES_BYTES = 4 * 1024 * 1024;

/** One `--values` file: a YAML map, bounded; the error names the file. */
export function readValuesFile(file: string): Values {
  let text: string;
  try {
    if (statSync(file).size > MAX_VALUES_BYTES)
      throw new ConfigError(`--values ${file}: larger than ${MAX_VALUES_BYTES / 1024 / 1024} MiB`);
    text = readFileSync(file, "utf8");
  } catch (err) {
    if (err instanceof ConfigError) throw err;
    throw new ConfigError(
      `--values ${file}: ${(err as NodeJS.ErrnoException).code === "ENOENT" ? "no such file" : (err as Error).message}`,
    );
  }
  const { docs, counter, refusal } = parseDocumentsBounded(text, file, { maxDocuments: 1 });
  if (refusal) throw new ConfigError(`--values ${file}: ${refusal.message}`);
  const doc = docs[0];
  if (!doc) return {};
  if (doc.errors.length)
    throw new ConfigError(`--values ${file}: not valid YAML: ${doc.errors[0]?.message.split("\n")[0]}`);
  const got = documentValue(doc, { file, text, counter });
  if (got.refusal) throw new ConfigError(`--values ${file}: ${got.refusal.message}`);
  if (got.value === null || got.value === undefined) return {};
  if (typeof got.value !== "object" || Array.isArray(got.value))
    throw new ConfigError(`--values ${file}: not a YAML map of values`);
  return got.value as Values;
}

/** A HelmRelease as `flux create helmrelease` writes it (`chart.spec` template, values merged in order). */
export function helmReleaseObject(name: string, f: HelmCreateFlags, readValues = readValuesFile): Obj {
  refuse(f, SOURCE_ONLY, "create helmrelease");
  if (!f.source)
    throw new UsageError(
      "--source is required (shipmate create helmrelease NAME --source Kind/NAME --chart CHART …)",
    );
  if (!f.chart)
    throw new UsageError(
      "--chart is required (shipmate create helmrelease NAME --source Kind/NAME --chart CHART …)",
    );
  const source = parseChartSource(f.source);
  const strategy = f["reconcile-strategy"] ?? "ChartVersion";
  if (strategy !== "ChartVersion" && strategy !== "Revision")
    throw new UsageError(`--reconcile-strategy must be ChartVersion or Revision, got "${strategy}"`);
  if (f.crds !== undefined && !["Skip", "Create", "CreateReplace"].includes(f.crds))
    throw new UsageError(`--crds must be Skip, Create or CreateReplace, got "${f.crds}"`);
  const chartSpec: Values = {
    chart: f.chart,
    ...(f["chart-interval"] ? { interval: checkInterval("--chart-interval", f["chart-interval"]) } : {}),
    reconcileStrategy: strategy,
    sourceRef: source,
    ...(f["chart-version"] ? { version: f["chart-version"] } : {}),
  };
  const spec: Values = {
    chart: { spec: chartSpec },
    ...(f["depends-on"]?.length ? { dependsOn: f["depends-on"].map(parseDependsOn) } : {}),
    interval: checkInterval("--interval", f.interval ?? "1m"),
  };
  if (f["create-target-namespace"] || f.crds) {
    spec.install = {
      ...(f.crds ? { crds: f.crds } : {}),
      ...(f["create-target-namespace"] ? { createNamespace: true } : {}),
    };
  }
  if (f["release-name"]) {
    if (
      !/^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/.test(f["release-name"]) ||
      f["release-name"].length > 53
    )
      throw new UsageError(
        `--release-name "${f["release-name"]}" is not a valid Helm release name (at most 53 characters)`,
      );
    spec.releaseName = f["release-name"];
  }
  if (f["service-account"])
    spec.serviceAccountName = checkObjectName("--service-account", f["service-account"]);
  if (f["storage-namespace"]) spec.storageNamespace = checkNamespace(f["storage-namespace"]);
  if (f["target-namespace"]) spec.targetNamespace = checkNamespace(f["target-namespace"]);
  if (f.crds) spec.upgrade = { crds: f.crds };
  let values: Values | undefined;
  for (const file of f.values ?? []) values = mergeValues(values ?? {}, readValues(file));
  if (values && Object.keys(values).length) spec.values = values;
  if (f["values-from"]?.length)
    spec.valuesFrom = f["values-from"].map((v) => {
      const [kind = "", ref = ""] = v.split("/");
      if ((kind !== "ConfigMap" && kind !== "Secret") || !ref)
        throw new UsageError(`--values-from "${v}" must be ConfigMap/NAME or Secret/NAME`);
      return { kind, name: checkObjectName("--values-from", ref) };
    });
  return {
    apiVersion: HELM_API_VERSION,
    kind: "HelmRelease",
    metadata: {
      name: checkObjectName("helmrelease name", name),
      namespace: checkNamespace(f.namespace ?? "shipmate-system"),
    },
    spec,
  };
}

/** Prints it (`--export`) or applies it and waits for the agent's first reconcile. */
export async function exportOrApply(obj: Obj, f: HelmCreateFlags, io: CliIO): Promise<number> {
  if (f.export) {
    io.stdout.write(exportYaml(obj));
    return 0;
  }
  const client = new KubeClient(loadKubeConfig(f.kubeconfig), { retryForMs: 5_000 });
  try {
    const { action, requestedAt } = await applyFluxObject(client, obj);
    const { namespace, name } = obj.metadata;
    writeLine(io.stdout, `${obj.kind} ${namespace}/${name} ${action}`);
    // An OCI HelmRepository is static: nothing reconciles it until a chart is pulled.
    if (f["no-wait"] || (obj.kind === "HelmRepository" && obj.spec.type === "oci")) return 0;
    const handled = await waitHandled(
      client,
      obj.kind,
      namespace,
      name,
      requestedAt,
      durationMs(f.timeout, "--timeout", obj.kind === "HelmRelease" ? 300_000 : 120_000),
    );
    const row = objectRowOf(obj.kind, handled);
    for (const line of formatObjectRows([row])) writeLine(io.stdout, line);
    return row.ready === "True" ? 0 : 1;
  } finally {
    client.close();
  }
}
