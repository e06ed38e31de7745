import { checkNamespace } from "../../bootstrap/flux.ts";
import { UsageError } from "../../errors.ts";
import { KubeClient, loadKubeConfig } from "../../kube/client.ts";
import {
  type FluxKind,
  formatKustomizationRows,
  formatObjectRows,
  kustomizationRowOfObject,
  objectRowOf,
  setSuspended,
  waitHandled,
} from "../../kube/control.ts";
import { durationMs, parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { IMAGE_NAMESPACE, IMAGE_TYPES } from "../image.ts";
import { type CliIO, writeLine } from "../io.ts";

const KINDS = new Set(["kustomization", "kustomizations", "ks"]);
const HELM_KINDS = new Set(["helmrelease", "helmreleases", "hr"]);
const RECEIVER_KINDS = new Set(["receiver", "receivers", "rcv"]);
/** `suspend|resume source TYPE NAME`, as flux names the source types. */
const SOURCES: Record<string, FluxKind> = {
  git: "GitRepository",
  oci: "OCIRepository",
  bucket: "Bucket",
  helm: "HelmRepository",
  chart: "HelmChart",
};

/** The kind and name `suspend|resume` is given, or undefined for a usage error. */
function targetOf(positionals: string[]): { kind: FluxKind; name: string; namespace?: string } | undefined {
  const [kind, ...rest] = positionals;
  if ((kind === "source" || kind === "image") && rest.length === 2 && rest[1]) {
    const table = kind === "source" ? SOURCES : IMAGE_TYPES;
    const typed = Object.hasOwn(table, rest[0] ?? "") ? table[rest[0] ?? ""] : undefined;
    return (
      typed && { kind: typed, name: rest[1], ...(kind === "image" ? { namespace: IMAGE_NAMESPACE } : {}) }
    );
  }
  if (!kind || rest.length !== 1 || !rest[0]) return undefined;
  if (KINDS.has(kind)) return { kind: "Kustomization", name: rest[0] };
  if (HELM_KINDS.has(kind)) return { kind: "HelmRelease", name: rest[0] };
  if (RECEIVER_KINDS.has(kind)) return { kind: "Receiver", name: rest[0] };
  return undefined;
}

/** `shipmate suspend|resume KIND NAME`, as `flux suspend|resume` behave, for every kind the control table serves. */
export function toggleCommand(verb: "suspend" | "resume"): Command {
  const usage =
    verb === "suspend"
      ? "shipmate suspend kustomization|helmrelease|receiver NAME [-n NAMESPACE] [--kubeconfig FILE]\n       shipmate suspend source git|oci|bucket|helm|chart NAME [-n NAMESPACE] [--kubeconfig FILE]\n       shipmate suspend image repository|policy|update NAME [-n flux-system] [--kubeconfig FILE]"
      : "shipmate resume kustomization|helmrelease|receiver NAME [-n NAMESPACE] [--no-wait] [--timeout 5m] [--kubeconfig FILE]\n       shipmate resume source git|oci|bucket|helm|chart NAME [-n NAMESPACE] [--no-wait] [--timeout 5m] [--kubeconfig FILE]\n       shipmate resume image repository|policy|update NAME [-n flux-system] [--no-wait] [--timeout 5m] [--kubeconfig FILE]";
  return {
    summary:
      verb === "suspend"
        ? "Stop the agent from reconciling a Kustomization, HelmRelease, source, image object or Receiver (manual changes stay until resumed)."
        : "Let the agent reconcile a suspended Kustomization, HelmRelease, source, image object or Receiver again, and wait for the result.",
    usage,
    async run(argv: string[], io: CliIO): Promise<number> {
      const { values, positionals } = parseFlags(verb, argv, {
        namespace: { type: "string", short: "n" },
        kubeconfig: { type: "string" },
        "no-wait": { type: "boolean" },
        timeout: { type: "string" },
      });
      const picked = targetOf(positionals);
      if (!picked) throw new UsageError(`usage: ${usage}`);
      const { kind: target, name } = picked;
      const namespace = checkNamespace(values.namespace ?? picked.namespace ?? "shipmate-system");
      if (verb === "suspend" && (values["no-wait"] || values.timeout)) {
        throw new UsageError(`--no-wait and --timeout belong to resume`);
      }
      const timeoutMs = durationMs(values.timeout || undefined, "--timeout", 300_000);
      const client = new KubeClient(loadKubeConfig(values.kubeconfig), { retryForMs: 5_000 });
      try {
        const at = await setSuspended(client, target, namespace, name, verb === "suspend");
        writeLine(
          io.stdout,
          `${verb === "suspend" ? "suspended" : "resumed"} ${target} ${namespace}/${name}`,
        );
        // An ImagePolicy has no reconcile request of its own to answer: it follows its repository.
        if (verb === "suspend" || values["no-wait"] || target === "ImagePolicy") return 0;
        const handled = await waitHandled(client, target, namespace, name, at, timeoutMs);
        const lines =
          target === "Kustomization"
            ? formatKustomizationRows([kustomizationRowOfObject(handled)])
            : formatObjectRows([objectRowOf(target, handled)]);
        for (const line of lines) writeLine(io.stdout, line);
        return objectRowOf(target, handled).ready === "True" ? 0 : 1;
      } finally {
        client.close();
      }
    },
  };
}

export const command: Command = toggleCommand("suspend");
