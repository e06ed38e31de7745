/**
 * Image references as text in manifests: split into the parts a setter
 * writes, keeping each part exactly as written; compared the way Docker
 * normalises them (`nginx` is `docker.io/library/nginx`).
 */
import { parseReference, repositoryName } from "../registry/reference.ts";

export interface RefParts {
  /** Everything before the tag and digest, as written. */
  name: string;
  tag?: string;
  digest?: string;
}

const LOOKS_LIKE_REF = /^[a-z0-9][a-z0-9._\-/:[\]]*(?:@[a-z0-9]+:[a-f0-9]+)?$/i;

/** Splits `name[:tag][@digest]` textually; undefined for text that cannot be an image reference. */
export function refParts(value: string): RefParts | undefined {
  if (value.length > 512 || !LOOKS_LIKE_REF.test(value)) return undefined;
  let rest = value;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
  }
  let tag: string | undefined;
  const colon = rest.lastIndexOf(":");
  // A colon before the last slash is a registry port, not a tag.
  if (colon > rest.lastIndexOf("/")) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
  }
  if (rest === "") return undefined;
  const parts: RefParts = { name: rest };
  if (tag !== undefined) parts.tag = tag;
  if (digest !== undefined) parts.digest = digest;
  return parts;
}

const normalised = new Map<string, string | null>();

/** The fully qualified repository (`docker.io/library/nginx`) of a name without tag, or undefined if invalid. */
export function canonicalRepository(name: string): string | undefined {
  let hit = normalised.get(name);
  if (hit === undefined) {
    try {
      const ref = parseReference(name);
      hit = ref.tag === undefined && ref.digest === undefined ? repositoryName(ref) : null;
    } catch {
      hit = null;
    }
    if (normalised.size > 10_000) normalised.clear();
    normalised.set(name, hit);
  }
  return hit ?? undefined;
}

export function sameRepository(a: string, b: string): boolean {
  if (a === b) return true;
  const ca = canonicalRepository(a);
  return ca !== undefined && ca === canonicalRepository(b);
}
