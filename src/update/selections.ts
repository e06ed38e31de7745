/**
 * Where an update's selections come from: explicit `--set` flags (no
 * scanning), or a scan of the policies.
 */
import { UsageError } from "../errors.ts";
import { refParts } from "../manifest/ref.ts";
import type { ImageSelection, PolicyClaim, UpdateInput } from "../manifest/types.ts";
import type { ScanReport } from "../scan/types.ts";

export interface SetFlag {
  policy: string;
  selection: ImageSelection;
}

const POLICY_ID = /^[a-z0-9]([-a-z0-9.]*[a-z0-9])?:[a-z0-9]([-a-z0-9.]*[a-z0-9])?$/;
const DIGEST = /^sha(256|384|512):[a-f0-9]{64,128}$/;

/** Parses `<namespace>:<name>=<image[:tag][@digest]>`. */
export function parseSetFlag(text: string): SetFlag {
  const eq = text.indexOf("=");
  const fail = (why: string): never => {
    throw new UsageError(`--set ${text}: ${why} (expected <namespace>:<name>=<image[:tag][@digest]>)`);
  };
  if (eq === -1) fail("missing '='");
  const policy = text.slice(0, eq);
  const ref = text.slice(eq + 1);
  if (!POLICY_ID.test(policy)) fail(`"${policy}" is not <namespace>:<name>`);
  const parts = refParts(ref);
  if (!parts) fail(`"${ref}" is not an image reference`);
  const { name, tag, digest } = parts as NonNullable<typeof parts>;
  if (tag === undefined && digest === undefined) fail("give a tag, a digest or both");
  if (tag !== undefined && !/^[\w][\w.-]{0,127}$/.test(tag)) fail(`tag "${tag}" is not a valid tag`);
  if (digest !== undefined && !DIGEST.test(digest)) fail(`digest "${digest}" is not sha256:<hex>`);
  const selection: ImageSelection = { image: name };
  if (tag !== undefined) selection.tag = tag;
  if (digest !== undefined) selection.digest = digest;
  return { policy, selection };
}

/** Selections from `--set` flags; a policy given twice is a usage error. */
export function inputFromSets(sets: readonly SetFlag[], policies: readonly PolicyClaim[] = []): UpdateInput {
  const selections = new Map<string, ImageSelection>();
  for (const s of sets) {
    if (selections.has(s.policy)) throw new UsageError(`--set names ${s.policy} twice`);
    selections.set(s.policy, s.selection);
  }
  const known = new Set(policies.map((p) => p.id));
  const claims = [...policies];
  for (const s of sets) if (!known.has(s.policy)) claims.push({ id: s.policy, image: s.selection.image });
  return { selections, policies: claims };
}

/** Selections from a scan: every policy the scan decided; the others are known but left alone. */
export function inputFromScan(report: ScanReport, sets: readonly SetFlag[] = []): UpdateInput {
  const selections = new Map<string, ImageSelection>();
  const policies: PolicyClaim[] = [];
  for (const r of report.results) {
    const claim: PolicyClaim = { id: r.policy.id, image: r.policy.image };
    if (r.policy.paths) claim.paths = r.policy.paths;
    policies.push(claim);
    if (r.ok)
      selections.set(r.policy.id, { image: r.image, tag: r.tag, ...(r.digest ? { digest: r.digest } : {}) });
  }
  // An explicit --set wins over what the scan chose.
  for (const s of sets) selections.set(s.policy, s.selection);
  return { selections, policies };
}
