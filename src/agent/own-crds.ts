/**
 * Which of the agent's own CRDs (deploy/agent/crds.yaml) a given agent needs:
 * the Kustomization, source and Helm kinds always; Flux's image kinds only with
 * `--image-automation`; the Receiver kind with `--receivers` or
 * `--image-automation`; Alert and Provider are installed when the agent may
 * install CRDs but never required (notifications are off while their kinds
 * are not served, ./notifications.ts). An agent without those flags neither
 * installs nor requires the kinds it does not serve.
 */

/** What the agent does about one CRD at start. */
export type CrdNeed = "required" | "optional" | "skip";

export interface CrdFeatures {
  imageAutomation: boolean;
  receivers: boolean;
}

const IMAGE_GROUP = "image.toolkit.fluxcd.io";
const NOTIFICATION_GROUP = "notification.toolkit.fluxcd.io";

/** `name` is the CRD's metadata.name (`<plural>.<group>`). */
export function crdNeed(name: string, features: CrdFeatures): CrdNeed {
  const dot = name.indexOf(".");
  const plural = name.slice(0, dot);
  const group = name.slice(dot + 1);
  if (group === IMAGE_GROUP) return features.imageAutomation ? "required" : "skip";
  if (group === NOTIFICATION_GROUP) {
    if (plural === "receivers") return features.receivers || features.imageAutomation ? "required" : "skip";
    return "optional";
  }
  return "required";
}
