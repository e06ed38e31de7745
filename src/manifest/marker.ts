/**
 * Flux setter markers: a line comment `# {"$imagepolicy": "<ns>:<name>[:tag|:name|:digest]"}`
 * on a scalar, read the way kyaml's fieldmeta reads them (the comment body is
 * JSON; the kyaml long form `{"$ref": "#/definitions/io.k8s.cli.setters.<ns>:<name>"}`
 * means the same).
 */
import type { SetterPart } from "./types.ts";

export const MARKER_KEY = "$imagepolicy";
const REF_PREFIX = "#/definitions/io.k8s.cli.setters.";

/** Cheap screen for whole files: Flux reads only files containing the quoted key. */
export function mayContainMarker(text: string): boolean {
  return text.includes(`"${MARKER_KEY}"`) || text.includes(REF_PREFIX);
}

export type MarkerParse =
  | { kind: "none" }
  | { kind: "marker"; setter: string; policy: string; part: SetterPart }
  | { kind: "invalid"; message: string };

const PARTS: Record<string, SetterPart> = { tag: "tag", name: "name", digest: "digest" };

/** `comment` is the text after `#` (Flux markers are always line comments on the scalar they set). */
export function parseMarker(comment: string): MarkerParse {
  if (!comment.includes(MARKER_KEY) && !comment.includes(REF_PREFIX)) return { kind: "none" };
  const body = comment.trim();
  // kyaml only treats a comment that is one JSON object as field metadata; prose that mentions the key is not a marker.
  if (!body.startsWith("{")) return { kind: "none" };
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch (err) {
    return { kind: "invalid", message: `invalid marker JSON (${(err as Error).message}): ${body}` };
  }
  if (typeof parsed !== "object" || parsed === null || Array.isArray(parsed))
    return { kind: "invalid", message: `marker is not a JSON object: ${body}` };
  const obj = parsed as Record<string, unknown>;
  let setter: string;
  if (MARKER_KEY in obj) {
    const v = obj[MARKER_KEY];
    if (typeof v !== "string")
      return { kind: "invalid", message: `"${MARKER_KEY}" must be a string: ${body}` };
    setter = v;
  } else if (typeof obj.$ref === "string" && obj.$ref.startsWith(REF_PREFIX)) {
    setter = obj.$ref.slice(REF_PREFIX.length);
  } else {
    return { kind: "none" };
  }
  const bits = setter.split(":");
  const [ns, name, suffix] = bits;
  if (!ns || !name || bits.length > 3)
    return { kind: "invalid", message: `marker "${setter}" is not <namespace>:<name>[:tag|:name|:digest]` };
  const policy = `${ns}:${name}`;
  if (suffix === undefined) return { kind: "marker", setter, policy, part: "image" };
  const part = PARTS[suffix];
  if (!part)
    return {
      kind: "invalid",
      message: `marker "${setter}" has unknown suffix ":${suffix}" (known: :tag, :name, :digest)`,
    };
  return { kind: "marker", setter, policy, part };
}
