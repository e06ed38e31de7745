/**
 * Which Flux kinds something in shipmate acts on. A Flux object nothing
 * acts on would be applied and then sit there: dependants wait on a Ready
 * condition nobody writes, and the user believes Flux semantics hold. So a
 * Kustomization that would apply one is Stalled with reason
 * `UnsupportedKind`, naming it, before anything is written (fail closed).
 */
import { HELM_GROUP } from "./helm/spec.ts";
import { SOURCE_HANDLERS } from "./sources/index.ts";

/** Flux's API groups all end in this; objects of other groups are the user's own. */
const FLUX_GROUP_SUFFIX = ".fluxcd.io";

export const ARTIFACT_GENERATOR_GROUP = "source.extensions.fluxcd.io";

/**
 * `group/Kind` of every Flux kind with a reconciler in the agent. A
 * reconciler for a new kind adds its line here (source kinds come from
 * ./sources/index.ts).
 */
export const AGENT_RECONCILED_KINDS: ReadonlySet<string> = new Set([
  "kustomize.toolkit.fluxcd.io/Kustomization",
  `${ARTIFACT_GENERATOR_GROUP}/ArtifactGenerator`,
  `${HELM_GROUP}/HelmRelease`,
  // Served by the agent's notifications (./notifications.ts): read on each event, no status in v1beta3.
  "notification.toolkit.fluxcd.io/Alert",
  "notification.toolkit.fluxcd.io/Provider",
  // Served on the agent's HTTP server (./receiver/) under --receivers or --image-automation.
  "notification.toolkit.fluxcd.io/Receiver",
  ...[...SOURCE_HANDLERS.values()].map((h) => `${h.apiVersion.split("/")[0]}/${h.kind}`),
]);

/**
 * Flux's image automation kinds are read from git by shipmate's own image
 * automation (scan, update, the Action, the App, `serve`), and served in the
 * cluster by the agent under --image-automation (./images/); applying them is
 * harmless either way and keeps the repository valid for Flux.
 */
const READ_FROM_GIT = new Set([
  "image.toolkit.fluxcd.io/ImageRepository",
  "image.toolkit.fluxcd.io/ImagePolicy",
  "image.toolkit.fluxcd.io/ImageUpdateAutomation",
]);

export function isFluxGroup(group: string): boolean {
  return group.endsWith(FLUX_GROUP_SUFFIX);
}

/** Whether an object of this group and kind is a Flux kind nothing in shipmate acts on. */
export function unsupportedFluxKind(group: string, kind: string): boolean {
  const key = `${group}/${kind}`;
  return isFluxGroup(group) && !AGENT_RECONCILED_KINDS.has(key) && !READ_FROM_GIT.has(key);
}

/** The kinds the agent reconciles, for messages ("reconciled: Kustomization, GitRepository…"). */
export function reconciledKindNames(): string {
  return [...AGENT_RECONCILED_KINDS].map((k) => k.slice(k.indexOf("/") + 1)).join(", ");
}
