import { loadFleetIfAny } from "../../config/fleet.ts";
import { ClusterError, UsageError } from "../../errors.ts";
import { KubeClient, loadKubeConfig } from "../../kube/client.ts";
import {
  type FluxKind,
  formatObjectRows,
  formatKustomizationRows as formatRows,
  healthReport,
  type KustomizationRow,
  listKustomizations,
  listObjectRows,
  watchKustomizations,
} from "../../kube/control.ts";
import { canariesByEnvironment } from "../../promote/canary.ts";
import { formatTable } from "../../table.ts";
import { parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { type CliIO, writeLine } from "../io.ts";

const USAGE = `shipmate get kustomizations [NAME] [-n NAMESPACE | -A] [--watch] [--json] [--kubeconfig FILE]
       shipmate get sources git|oci|bucket|helm|chart [NAME] [-n NAMESPACE | -A] [--json] [--kubeconfig FILE]
       shipmate get helmreleases|receivers [NAME] [-n NAMESPACE | -A] [--json] [--kubeconfig FILE]
       shipmate get images repository|policy|update|all [NAME] [-n NAMESPACE | -A] [--json] [--kubeconfig FILE]
       shipmate get canaries [NAME] [-n NAMESPACE] [--repo DIR] [--json] [--kubeconfig FILE]`;
const IMAGE_KINDS: Record<string, FluxKind[]> = {
  repository: ["ImageRepository"],
  policy: ["ImagePolicy"],
  update: ["ImageUpdateAutomation"],
  all: ["ImageRepository", "ImagePolicy", "ImageUpdateAutomation"],
};
/** The kinds `get` shows by a name of their own (not under sources or images). */
const OBJECT_KINDS: Record<string, FluxKind> = {
  helmreleases: "HelmRelease",
  helmrelease: "HelmRelease",
  hr: "HelmRelease",
  receivers: "Receiver",
  receiver: "Receiver",
  rcv: "Receiver",
};
const SOURCE_KINDS: Record<string, FluxKind> = {
  git: "GitRepository",
  oci: "OCIRepository",
  bucket: "Bucket",
  helm: "HelmRepository",
  chart: "HelmChart",
};
const KINDS = new Set(["kustomizations", "kustomization", "ks"]);

/**
 * `get sources git|oci|bucket|helm|chart`, `get helmreleases`, `get receivers` and `get images
 * repository|policy|update|all`, as `flux get` shows them: one table per kind
 * (headed by the kind when there are several).
 */
async function getObjects(
  kinds: FluxKind[],
  args: { name?: string; namespace?: string; json: boolean; kubeconfig?: string },
  io: CliIO,
): Promise<number> {
  const client = new KubeClient(loadKubeConfig(args.kubeconfig));
  try {
    let found = 0;
    const all: Record<string, unknown> = {};
    for (const kind of kinds) {
      let listed: Awaited<ReturnType<typeof listObjectRows>>;
      try {
        listed = await listObjectRows(client, kind, args.namespace);
      } catch (err) {
        // `images all` in a cluster with the reflector's CRDs but not the automation's: the others still show.
        if (!(kinds.length > 1 && err instanceof ClusterError)) throw err;
        writeLine(io.stderr, err.message);
        continue;
      }
      const rows = listed.filter((r) => !args.name || r.name === args.name);
      found += rows.length;
      if (args.json) all[kind] = rows;
      else if (rows.length) {
        if (kinds.length > 1) writeLine(io.stdout, `${kind}:`);
        for (const line of formatObjectRows(rows)) writeLine(io.stdout, line);
      } else writeLine(io.stderr, `no ${kind} objects found${args.namespace ? ` in ${args.namespace}` : ""}`);
    }
    if (args.json)
      writeLine(io.stdout, JSON.stringify(kinds.length > 1 ? all : all[kinds[0] as string], null, 2));
    return args.name && !found ? 1 : 0;
  } finally {
    client.close();
  }
}

/**
 * `get canaries`: Flagger's Canaries in every environment of the fleet the
 * kubeconfig reaches (a context per environment), else in the current context.
 */
async function getCanaries(
  args: { name?: string; namespace?: string; json: boolean; kubeconfig?: string; repo: string },
  io: CliIO,
): Promise<number> {
  const fleet = await loadFleetIfAny(args.repo);
  const envs = await canariesByEnvironment(args.kubeconfig, fleet?.spec.environments ?? [], args.namespace);
  const shown = envs.map((e) => ({
    ...e,
    ...(e.canaries ? { canaries: e.canaries.filter((c) => !args.name || c.name === args.name) } : {}),
  }));
  if (args.json) writeLine(io.stdout, JSON.stringify(shown, null, 2));
  else {
    const rows = shown.flatMap((e) =>
      e.error
        ? [[e.environment, "-", "-", "Unreachable", "-", "-", "-", e.error]]
        : (e.canaries ?? []).map((c) => [
            e.environment,
            c.namespace,
            c.name,
            c.phase ?? "-",
            String(c.canaryWeight ?? 0),
            `${c.failedChecks ?? 0}${c.threshold !== undefined ? `/${c.threshold}` : ""}`,
            c.lastTransitionTime ?? "-",
            c.targetMissing ? `targetRef: Deployment ${c.targetMissing} does not exist` : (c.message ?? ""),
          ]),
    );
    if (rows.length)
      writeLine(
        io.stdout,
        formatTable(
          ["ENVIRONMENT", "NAMESPACE", "NAME", "PHASE", "WEIGHT", "FAILED", "LAST TRANSITION", "MESSAGE"],
          rows,
        ),
      );
    else writeLine(io.stderr, "no Canaries found");
  }
  const found = shown.some((e) => (e.canaries ?? []).length > 0);
  return shown.some((e) => e.error) || (args.name && !found) ? 1 : 0;
}

export const command: Command = {
  summary: "Show the agent's Kustomizations: readiness, applied revision, object count, message.",
  usage: USAGE,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("get", argv, {
      namespace: { type: "string", short: "n" },
      "all-namespaces": { type: "boolean", short: "A" },
      watch: { type: "boolean", short: "w" },
      json: { type: "boolean" },
      kubeconfig: { type: "string" },
      repo: { type: "string" },
    });
    if (positionals[0] === "canaries" || positionals[0] === "canary") {
      const [, canaryName, more] = positionals;
      if (more || values.watch)
        throw new UsageError(`get canaries takes one NAME, without --watch (usage: ${USAGE})`);
      return await getCanaries(
        {
          ...(canaryName ? { name: canaryName } : {}),
          ...(values.namespace ? { namespace: values.namespace } : {}),
          json: values.json === true,
          ...(values.kubeconfig ? { kubeconfig: values.kubeconfig } : {}),
          repo: values.repo ?? io.cwd,
        },
        io,
      );
    }
    if (positionals[0] === "sources" || positionals[0] === "source") {
      const [, type, sourceName, more] = positionals;
      const sourceKind = type ? SOURCE_KINDS[type] : undefined;
      if (!sourceKind || more || values.watch)
        throw new UsageError(
          `only "git", "oci", "bucket", "helm" and "chart" sources, without --watch (usage: ${USAGE})`,
        );
      const ns = values["all-namespaces"] ? undefined : (values.namespace ?? "shipmate-system");
      return await getObjects(
        [sourceKind],
        { name: sourceName, namespace: ns, json: values.json === true, kubeconfig: values.kubeconfig },
        io,
      );
    }
    if (positionals[0] === "images" || positionals[0] === "image") {
      const [, type, imageName, more] = positionals;
      const kinds = type ? IMAGE_KINDS[type] : undefined;
      if (!kinds || more || values.watch)
        throw new UsageError(
          `get images repository|policy|update|all [NAME], without --watch (usage: ${USAGE})`,
        );
      const ns = values["all-namespaces"] ? undefined : (values.namespace ?? "flux-system");
      return await getObjects(
        kinds,
        { name: imageName, namespace: ns, json: values.json === true, kubeconfig: values.kubeconfig },
        io,
      );
    }
    const [kind, name, extra] = positionals;
    const objectKind = kind ? OBJECT_KINDS[kind] : undefined;
    if (objectKind) {
      if (extra || values.watch)
        throw new UsageError(`get ${kind} takes one NAME, without --watch (usage: ${USAGE})`);
      const ns = values["all-namespaces"] ? undefined : (values.namespace ?? "shipmate-system");
      return await getObjects(
        [objectKind],
        { name, namespace: ns, json: values.json === true, kubeconfig: values.kubeconfig },
        io,
      );
    }
    if (!kind || !KINDS.has(kind)) {
      throw new UsageError(
        `what to get? supported: kustomizations, helmreleases, receivers, sources git|oci|bucket|helm|chart, images repository|policy|update|all, canaries (usage: ${USAGE})`,
      );
    }
    if (extra) throw new UsageError(`unexpected argument "${extra}"`);
    const namespace = values["all-namespaces"] ? undefined : (values.namespace ?? "shipmate-system");
    const client = new KubeClient(loadKubeConfig(values.kubeconfig));
    const pick = (rows: KustomizationRow[]) => (name ? rows.filter((r) => r.name === name) : rows);
    try {
      if (values.json && !values.watch) {
        const report = await healthReport(client, namespace);
        const rows = pick(report.kustomizations);
        writeLine(io.stdout, JSON.stringify(name ? { ...report, kustomizations: rows } : report, null, 2));
        return name && !rows.length ? 1 : 0;
      }
      const rows = pick(await listKustomizations(client, namespace));
      if (name && !rows.length) {
        writeLine(io.stderr, `shipmate get: Kustomization ${namespace ?? "*"}/${name} not found`);
        return 1;
      }
      if (!values.watch) {
        if (!rows.length)
          writeLine(io.stderr, `no Kustomizations found${namespace ? ` in ${namespace}` : ""}`);
        else for (const line of formatRows(rows)) writeLine(io.stdout, line);
        return 0;
      }
      for (const line of formatRows(rows)) writeLine(io.stdout, line);
      const stop = new AbortController();
      const onSignal = () => stop.abort();
      process.once("SIGINT", onSignal);
      process.once("SIGTERM", onSignal);
      const last = new Map(rows.map((r) => [`${r.namespace}/${r.name}`, JSON.stringify(r)]));
      try {
        await watchKustomizations(
          client,
          namespace,
          (row, type) => {
            if (name && row.name !== name) return;
            const key = `${row.namespace}/${row.name}`;
            const text = JSON.stringify(row);
            if (type !== "DELETED" && last.get(key) === text) return;
            last.set(key, text);
            if (values.json) writeLine(io.stdout, JSON.stringify({ type, ...row }));
            else
              writeLine(
                io.stdout,
                `${formatRows([row], false)[0]}${type === "DELETED" ? "  (deleted)" : ""}`,
              );
          },
          stop.signal,
        );
      } finally {
        process.off("SIGINT", onSignal);
        process.off("SIGTERM", onSignal);
      }
      return 0;
    } finally {
      client.close();
    }
  },
};
