/**
 * The image reflector's pure rules, as Flux's image-reflector-controller
 * states them: the tag sample an ImageRepository's status shows, who may use
 * a repository from another namespace (`accessFrom`), and the messages of
 * the Ready condition. Tested with tables (test/agent/images-rules.test.ts).
 */
import { type ImageReference, parseReference, repositoryName } from "../../registry/index.ts";

/** `lastScanResult.latestTags`: the first ten tags in descending alphabetical order. */
export function latestTags(tags: readonly string[]): string[] {
  return [...tags].sort((a, b) => (a < b ? 1 : a > b ? -1 : 0)).slice(0, 10);
}

/** The repository an ImageRepository's `spec.image` names, and its canonical name (`docker.io/library/nginx`). */
export function imageRepository(image: string): { ref: ImageReference; canonical: string } {
  const ref = parseReference(image);
  if (ref.tag || ref.digest) throw new Error(`spec.image "${image}" must not carry a tag or digest`);
  return { ref: { registry: ref.registry, repository: ref.repository }, canonical: repositoryName(ref) };
}

type Selectors = { namespaceSelectors: { matchLabels?: Record<string, string> }[] } | undefined;

/**
 * Whether a policy in `policyNamespace` may use a repository in
 * `repoNamespace`: the same namespace always; another only when one of the
 * repository's `accessFrom.namespaceSelectors` matches that namespace's
 * labels (an empty `matchLabels` matches every namespace).
 */
export function accessAllowed(
  repoNamespace: string,
  policyNamespace: string,
  accessFrom: Selectors,
  namespaceLabels: Record<string, string>,
): boolean {
  if (repoNamespace === policyNamespace) return true;
  return (accessFrom?.namespaceSelectors ?? []).some((sel) =>
    Object.entries(sel.matchLabels ?? {}).every(([k, v]) => namespaceLabels[k] === v),
  );
}

export const scanMessage = (count: number) => `successful scan: found ${count} tags`;

export function policyMessage(image: string, tag: string, previous: string | undefined): string {
  return previous && previous !== tag
    ? `Latest image tag for '${image}' updated from ${previous} to ${tag}`
    : `Latest image tag for '${image}' resolved to ${tag}`;
}
