/**
 * Flux's CRD policies for a HelmRelease (`install.crds`, `upgrade.crds`):
 * `Create` creates the chart's CustomResourceDefinitions that do not exist
 * yet, `CreateReplace` also brings existing ones to the chart's version.
 * Helm itself only creates missing CRDs on install and never touches them
 * on upgrade, so, as helm-controller does, the agent applies them before
 * the Helm action (which then skips them) and waits until each is
 * Established. The CRDs come from `helm show crds` (dependencies included);
 * they are applied with the release's own client.
 */
import { parseAllDocuments } from "yaml";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { FIELD_MANAGER } from "../../kube/objects.ts";

export type CrdPolicy = "Skip" | "Create" | "CreateReplace";

const CRD_PATH = "/apis/apiextensions.k8s.io/v1/customresourcedefinitions";

interface Crd {
  apiVersion: string;
  kind: string;
  metadata: { name: string };
}

/** The CRDs of `helm show crds` output; anything else in it is refused by name. */
export function parseCrds(text: string): Crd[] {
  const out: Crd[] = [];
  for (const doc of parseAllDocuments(text)) {
    if (doc.errors.length)
      throw new Error(`chart CRDs are not valid YAML: ${doc.errors[0]?.message.split("\n")[0]}`);
    const v = doc.toJS() as Crd | null;
    if (!v) continue;
    if (
      v.kind !== "CustomResourceDefinition" ||
      v.apiVersion !== "apiextensions.k8s.io/v1" ||
      !v.metadata?.name
    )
      throw new Error(
        `the chart's crds/ holds ${v.kind ?? "a document"} ${v.metadata?.name ?? ""}, not an apiextensions.k8s.io/v1 CustomResourceDefinition`.replace(
          /\s+,/,
          ",",
        ),
      );
    out.push(v);
  }
  return out;
}

/** Applies the CRDs by `policy`; returns the names written. Waits for each to be Established. */
export async function applyCrds(
  client: KubeClient,
  crds: readonly Crd[],
  policy: Exclude<CrdPolicy, "Skip">,
  timeoutMs: number,
): Promise<string[]> {
  const written: string[] = [];
  for (const crd of crds) {
    const path = `${CRD_PATH}/${encodeURIComponent(crd.metadata.name)}`;
    if (policy === "Create") {
      const live = await client.raw({ method: "GET", path });
      if (live.code === 200) continue;
      if (live.code !== 404) throw apiError(`read CRD ${crd.metadata.name}`, live.code, live.body);
    }
    const res = await client.raw({
      method: "PATCH",
      path,
      query: { fieldManager: FIELD_MANAGER, force: "true" },
      body: crd,
      contentType: "application/apply-patch+yaml",
    });
    if (res.code !== 200 && res.code !== 201)
      throw apiError(`apply CRD ${crd.metadata.name}`, res.code, res.body);
    written.push(crd.metadata.name);
  }
  const deadline = Date.now() + timeoutMs;
  for (const name of written) {
    for (;;) {
      const res = await client.raw({ method: "GET", path: `${CRD_PATH}/${encodeURIComponent(name)}` });
      const conds = (res.body as { status?: { conditions?: { type: string; status: string }[] } })?.status
        ?.conditions;
      if (conds?.some((c) => c.type === "Established" && c.status === "True")) break;
      if (Date.now() > deadline) throw new Error(`CRD ${name} was not established in time`);
      await new Promise((r) => setTimeout(r, 100));
    }
  }
  return written;
}
