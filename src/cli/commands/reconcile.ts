import { checkNamespace } from "../../bootstrap/flux.ts";
import { ClusterError, UsageError } from "../../errors.ts";
import { KubeClient, loadKubeConfig } from "../../kube/client.ts";
import {
  type FluxKind,
  formatKustomizationRows,
  formatObjectRows,
  getKustomization,
  getObject,
  gitSourceOf,
  kustomizationRowOfObject,
  objectRowOf,
  requestReconcile,
  waitHandled,
} from "../../kube/control.ts";
import { durationMs, parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { IMAGE_NAMESPACE, IMAGE_RECONCILE_USAGE, IMAGE_TYPES } from "../image.ts";
import { type CliIO, writeLine } from "../io.ts";

const USAGE = `shipmate reconcile kustomization NAME [--with-source] [-n shipmate-system] [--timeout 5m] [--kubeconfig FILE]
       shipmate reconcile source git|oci|bucket|helm|chart NAME [-n shipmate-system] [--timeout 5m] [--kubeconfig FILE]
       shipmate reconcile helmrelease NAME [--with-source] [-n shipmate-system] [--timeout 5m] [--kubeconfig FILE]
       shipmate reconcile receiver NAME [-n shipmate-system] [--timeout 5m] [--kubeconfig FILE]
       shipmate reconcile image repository|update NAME [-n flux-system] [--timeout 5m] [--kubeconfig FILE]

  Asks the agent to act now (reconcile.fluxcd.io/requestedAt) and waits for the result:
  --with-source fetches the Kustomization's GitRepository first.

exit: 0 reconciled and Ready, 1 not Ready (or not handled within --timeout), 2 usage error`;

/** The sources answered with the plain object row (git keeps its own path below, for --with-source). */
const OBJECT_SOURCES: Record<string, FluxKind> = {
  oci: "OCIRepository",
  bucket: "Bucket",
  helm: "HelmRepository",
  chart: "HelmChart",
};

export const command: Command = {
  summary:
    "Ask the agent to reconcile a Kustomization, HelmRelease, source or Receiver now (optionally fetching its source first), and wait.",
  usage: USAGE,
  async run(argv: string[], io: CliIO): Promise<number> {
    const { values, positionals } = parseFlags("reconcile", argv, {
      namespace: { type: "string", short: "n" },
      "with-source": { type: "boolean" },
      timeout: { type: "string" },
      kubeconfig: { type: "string" },
    });
    const [kind, ...rest] = positionals;
    // An ImagePolicy has no reconcile request of its own to answer (it follows its repository).
    if (kind === "image" && !(rest.length === 2 && (rest[0] === "repository" || rest[0] === "update")))
      throw new UsageError(`image repository|update NAME (usage: ${IMAGE_RECONCILE_USAGE})`);
    const helmKind: FluxKind | undefined =
      kind === "image"
        ? IMAGE_TYPES[rest[0] as "repository" | "update"]
        : (kind === "helmrelease" || kind === "hr") && rest.length === 1
          ? "HelmRelease"
          : kind === "receiver" && rest.length === 1
            ? "Receiver"
            : kind === "source" && rest.length === 2
              ? Object.hasOwn(OBJECT_SOURCES, rest[0] ?? "")
                ? OBJECT_SOURCES[rest[0] ?? ""]
                : undefined
              : undefined;
    if (helmKind) {
      const name = rest.at(-1) ?? "";
      if (values["with-source"] && helmKind !== "HelmRelease")
        throw new UsageError("--with-source applies to kustomizations and helmreleases");
      const timeoutMs = durationMs(values.timeout, "--timeout", 300_000);
      const namespace = checkNamespace(
        values.namespace ?? (kind === "image" ? IMAGE_NAMESPACE : "shipmate-system"),
      );
      const client = new KubeClient(loadKubeConfig(values.kubeconfig), { retryForMs: 5_000 });
      try {
        const ask = async (k: FluxKind, ns: string, n: string): Promise<boolean> => {
          if (k === "HelmRepository") {
            // An OCI HelmRepository is static (source-controller never reconciles it): nothing would answer.
            const repo = await getObject(client, k, ns, n);
            if (repo?.spec?.type === "oci")
              throw new ClusterError(
                `HelmRepository ${ns}/${n} has type oci: it is a static object with nothing to fetch; reconcile the HelmChart that uses it (shipmate reconcile source chart NAME)`,
              );
          }
          writeLine(io.stdout, `► annotating ${k} ${ns}/${n}`);
          const at = await requestReconcile(client, k, ns, n);
          const row = objectRowOf(k, await waitHandled(client, k, ns, n, at, timeoutMs));
          for (const line of formatObjectRows([row])) writeLine(io.stdout, line);
          return row.ready === "True";
        };
        // --with-source: the HelmChart the HelmRelease installs from is fetched first (status.helmChart).
        if (values["with-source"]) {
          const hr = await getObject(client, "HelmRelease", namespace, name);
          if (!hr) throw new ClusterError(`HelmRelease ${namespace}/${name} not found`);
          const chart = typeof hr.status?.helmChart === "string" ? hr.status.helmChart : "";
          if (!chart)
            throw new ClusterError(
              `HelmRelease ${namespace}/${name} has no HelmChart yet (status.helmChart)`,
            );
          const [chartNs = namespace, chartName = ""] = chart.split("/");
          if (!(await ask("HelmChart", chartNs, chartName))) return 1;
        }
        return (await ask(helmKind, namespace, name)) ? 0 : 1;
      } finally {
        client.close();
      }
    }
    let target: { kind: "Kustomization" | "GitRepository"; name: string };
    if ((kind === "kustomization" || kind === "ks") && rest.length === 1 && rest[0])
      target = { kind: "Kustomization", name: rest[0] };
    else if (kind === "source" && rest[0] === "git" && rest.length === 2 && rest[1]) {
      if (values["with-source"]) throw new UsageError("--with-source applies to kustomizations");
      target = { kind: "GitRepository", name: rest[1] };
    } else throw new UsageError(`usage: ${USAGE}`);
    const timeoutMs = durationMs(values.timeout, "--timeout", 300_000);
    const namespace = values.namespace ?? "shipmate-system";
    const client = new KubeClient(loadKubeConfig(values.kubeconfig), { retryForMs: 5_000 });
    try {
      const fetchSource = async (ns: string, name: string): Promise<boolean> => {
        writeLine(io.stdout, `► annotating GitRepository ${ns}/${name}`);
        const at = await requestReconcile(client, "GitRepository", ns, name);
        const row = objectRowOf(
          "GitRepository",
          await waitHandled(client, "GitRepository", ns, name, at, timeoutMs),
        );
        for (const line of formatObjectRows([row])) writeLine(io.stdout, line);
        return row.ready === "True";
      };
      if (target.kind === "GitRepository") return (await fetchSource(namespace, target.name)) ? 0 : 1;

      const ks = await getKustomization(client, namespace, target.name);
      if (!ks) throw new ClusterError(`Kustomization ${namespace}/${target.name} not found`);
      if ((ks.spec as { suspend?: unknown } | undefined)?.suspend === true)
        throw new ClusterError(
          `Kustomization ${namespace}/${target.name} is suspended: resume it first (shipmate resume kustomization ${target.name})`,
        );
      if (values["with-source"]) {
        const src = gitSourceOf(ks);
        if (!src)
          throw new ClusterError(`Kustomization ${namespace}/${target.name} names no GitRepository to fetch`);
        if (!(await fetchSource(src.namespace, src.name))) return 1;
      }
      writeLine(io.stdout, `► annotating Kustomization ${namespace}/${target.name}`);
      const at = await requestReconcile(client, "Kustomization", namespace, target.name);
      const row = kustomizationRowOfObject(
        await waitHandled(client, "Kustomization", namespace, target.name, at, timeoutMs),
      );
      for (const line of formatKustomizationRows([row])) writeLine(io.stdout, line);
      return row.ready === "True" ? 0 : 1;
    } finally {
      client.close();
    }
  },
};
