import { UsageError } from "../../errors.ts";
import { KubeClient, loadKubeConfig } from "../../kube/client.ts";
import {
  formatKustomizationRows,
  formatObjectRows,
  kustomizationRowOfObject,
  objectRowOf,
  setSuspended,
  waitHandled,
} from "../../kube/control.ts";
import { durationMs, parseFlags } from "../args.ts";
import type { Command } from "../command.ts";
import { toggleImage } from "../image.ts";
import { type CliIO, writeLine } from "../io.ts";

const KINDS = new Set(["kustomization", "kustomizations", "ks"]);
const HELM_KINDS = new Set(["helmrelease", "helmreleases", "hr"]);

/** `shipmate suspend|resume kustomization NAME`, as `flux suspend|resume kustomization` behave. */
export function toggleCommand(verb: "suspend" | "resume"): Command {
  const usage =
    verb === "suspend"
      ? "shipmate suspend kustomization|helmrelease NAME [-n NAMESPACE] [--kubeconfig FILE]\n       shipmate suspend image repository|policy|update NAME [-n flux-system] [--kubeconfig FILE]"
      : "shipmate resume kustomization|helmrelease NAME [-n NAMESPACE] [--no-wait] [--timeout 5m] [--kubeconfig FILE]\n       shipmate resume image repository|policy|update NAME [-n flux-system] [--no-wait] [--timeout 5m] [--kubeconfig FILE]";
  return {
    summary:
      verb === "suspend"
        ? "Stop the agent from reconciling a Kustomization (manual changes stay until resumed)."
        : "Let the agent reconcile a suspended Kustomization again, and wait for the result.",
    usage,
    async run(argv: string[], io: CliIO): Promise<number> {
      if (argv[0] === "image") return await toggleImage(verb, argv.slice(1), io);
      const { values, positionals } = parseFlags(verb, argv, {
        namespace: { type: "string", short: "n" },
        kubeconfig: { type: "string" },
        "no-wait": { type: "boolean" },
        timeout: { type: "string" },
      });
      const [kind, name, extra] = positionals;
      const helm = kind !== undefined && HELM_KINDS.has(kind);
      if (!kind || !(KINDS.has(kind) || helm) || !name || extra) throw new UsageError(`usage: ${usage}`);
      if (verb === "suspend" && (values["no-wait"] || values.timeout)) {
        throw new UsageError(`--no-wait and --timeout belong to resume`);
      }
      const timeoutMs = durationMs(values.timeout || undefined, "--timeout", 300_000);
      const namespace = values.namespace ?? "shipmate-system";
      const client = new KubeClient(loadKubeConfig(values.kubeconfig));
      try {
        const target = helm ? "HelmRelease" : "Kustomization";
        const at = await setSuspended(client, target, namespace, name, verb === "suspend");
        writeLine(
          io.stdout,
          `${verb === "suspend" ? "suspended" : "resumed"} ${target} ${namespace}/${name}`,
        );
        if (verb === "suspend" || values["no-wait"]) return 0;
        const handled = await waitHandled(client, target, namespace, name, at, timeoutMs);
        const lines = helm
          ? formatObjectRows([objectRowOf(target, handled)])
          : formatKustomizationRows([kustomizationRowOfObject(handled)]);
        for (const line of lines) writeLine(io.stdout, line);
        return objectRowOf(target, handled).ready === "True" ? 0 : 1;
      } finally {
        client.close();
      }
    },
  };
}

export const command: Command = toggleCommand("suspend");
