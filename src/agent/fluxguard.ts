/**
 * The agent and Flux's controllers never run side by side: both would apply,
 * prune and write status for the same Kustomization objects, each undoing
 * the other. The rule (docs/moving-from-flux.md, "The refusal rule"):
 *
 * - a Flux controller is a Deployment named `kustomize-controller`,
 *   `helm-controller` or `source-controller` that carries the label
 *   `app.kubernetes.io/part-of: flux` or lives in the `flux-system` namespace;
 * - it is live when it is not scaled to 0 (`spec.replicas` absent counts as
 *   1, the API's default) or still has ready replicas (`status.readyReplicas
 *   > 0`: its pods have not stopped yet).
 *
 * A Deployment scaled to 0 whose pods are gone is no controller at all, so
 * the agent may start beside it (that is the moment `shipmate bootstrap
 * --from-flux` creates: Flux scaled down, its Deployments pruned by the
 * agent's first pass).
 */
import { ClusterError } from "../errors.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { KubeList } from "../kube/schema.ts";

export const FLUX_CONTROLLER_NAMES: readonly string[] = [
  "kustomize-controller",
  "helm-controller",
  "source-controller",
];
export const FLUX_NAMESPACE = "flux-system";
const PART_OF = "app.kubernetes.io/part-of";

export interface DeploymentState {
  namespace: string;
  name: string;
  labels: Record<string, string>;
  /** spec.replicas as stored; undefined when absent (the API defaults it to 1). */
  replicas: number | undefined;
  /** status.readyReplicas; undefined when absent (0). */
  readyReplicas: number | undefined;
}

export function isFluxController(d: DeploymentState): boolean {
  return (
    FLUX_CONTROLLER_NAMES.includes(d.name) && (d.labels[PART_OF] === "flux" || d.namespace === FLUX_NAMESPACE)
  );
}

export function isLive(d: DeploymentState): boolean {
  return (d.replicas ?? 1) > 0 || (d.readyReplicas ?? 0) > 0;
}

/** `Deployment flux-system/kustomize-controller (replicas 1, ready 1)` */
export function describeController(d: DeploymentState): string {
  return `Deployment ${d.namespace}/${d.name} (replicas ${d.replicas ?? 1}, ready ${d.readyReplicas ?? 0})`;
}

/** The one-line refusal, or undefined when no Flux controller is live. */
export function refusal(deployments: DeploymentState[]): string | undefined {
  const live = deployments.filter((d) => isFluxController(d) && isLive(d));
  if (!live.length) return undefined;
  const namespaces = [...new Set(live.map((d) => d.namespace))];
  const scale = namespaces
    .map(
      (ns) =>
        `kubectl -n ${ns} scale deployment ${live
          .filter((d) => d.namespace === ns)
          .map((d) => d.name)
          .join(" ")} --replicas=0`,
    )
    .join(" && ");
  return `Flux controllers are running in this cluster: ${live.map(describeController).join(", ")}; the agent does not run beside them (both would apply and prune the same objects). Move this cluster over with 'shipmate bootstrap --from-flux', or scale them down (${scale}) and wait until they have no ready replicas`;
}

export class FluxRunningError extends ClusterError {
  override name = "FluxRunningError";
}

/** Every Deployment named like one of Flux's controllers, in any namespace. */
export async function listFluxControllers(client: KubeClient): Promise<DeploymentState[]> {
  const out: DeploymentState[] = [];
  for (const name of FLUX_CONTROLLER_NAMES) {
    const res = await client.raw({
      method: "GET",
      path: "/apis/apps/v1/deployments",
      query: { fieldSelector: `metadata.name=${name}` },
    });
    if (res.code !== 200)
      throw apiError(
        `list Deployments named ${name} (to check that Flux is not running)`,
        res.code,
        res.body,
      );
    for (const item of KubeList.parse(res.body).items ?? []) {
      const d = item as {
        metadata: { namespace?: string; name?: string; labels?: Record<string, string> };
        spec?: { replicas?: number };
        status?: { readyReplicas?: number };
      };
      const state: DeploymentState = {
        namespace: d.metadata.namespace ?? "",
        name: d.metadata.name ?? "",
        labels: d.metadata.labels ?? {},
        replicas: d.spec?.replicas,
        readyReplicas: d.status?.readyReplicas,
      };
      if (isFluxController(state)) out.push(state);
    }
  }
  return out;
}

/** Fails when Flux's controllers are live in the cluster the client talks to. */
export async function refuseBesideFlux(client: KubeClient): Promise<void> {
  const why = refusal(await listFluxControllers(client));
  if (why) throw new FluxRunningError(why);
}
