/**
 * HelmRelease post-rendering, as helm-controller does it: each
 * `postRenderers[].kustomize` (patches, images) becomes one kustomization
 * applied in turn to the manifests Helm rendered, then `commonMetadata`
 * (labels and annotations on every object, selectors untouched). The steps
 * run inside Helm's install/upgrade (shipmate-helm, the real kustomize), so
 * the release record holds the post-rendered manifest. A change of the
 * steps is a reason to upgrade (Flux's `observedPostRenderersDigest`).
 * Pure.
 */
import { createHash } from "node:crypto";
import { canonicalJson } from "../../kube/objects.ts";
import type { HelmReleaseSpec } from "./spec.ts";

/** The kustomization fields of each post-render step, in order; empty when there is none. */
export function postRenderSteps(spec: Pick<HelmReleaseSpec, "postRenderers" | "commonMetadata">) {
  const steps: Record<string, unknown>[] = [];
  for (const r of spec.postRenderers ?? []) {
    const k = r.kustomize;
    if (!k) continue;
    const step: Record<string, unknown> = {};
    if (k.patches?.length)
      step.patches = k.patches.map((p) =>
        p.target && Object.keys(p.target).length ? { patch: p.patch, target: p.target } : { patch: p.patch },
      );
    if (k.images?.length) step.images = k.images;
    if (Object.keys(step).length) steps.push(step);
  }
  const meta = spec.commonMetadata;
  const common: Record<string, unknown> = {};
  if (meta?.labels && Object.keys(meta.labels).length)
    common.labels = [{ pairs: meta.labels, includeSelectors: false }];
  if (meta?.annotations && Object.keys(meta.annotations).length) common.commonAnnotations = meta.annotations;
  if (Object.keys(common).length) steps.push(common);
  return steps;
}

/** `sha256:<hex>` of the steps, undefined when there are none (nothing to observe). */
export function postRenderersDigest(steps: readonly Record<string, unknown>[]): string | undefined {
  if (!steps.length) return undefined;
  return `sha256:${createHash("sha256").update(canonicalJson(steps)).digest("hex")}`;
}
