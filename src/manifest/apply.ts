/**
 * The pure rewrite engine: file contents in, new contents and a structured
 * account of every change out. No I/O. Edits are spliced into the original
 * text at the byte ranges the YAML CST reports, so everything outside the
 * changed scalars stays byte-for-byte what it was.
 */
import { posix } from "node:path";
import { mayContainMarker, parseMarker } from "./marker.ts";
import { refParts, sameRepository } from "./ref.ts";
import { renderScalar } from "./render.ts";
import {
  get,
  lineOf,
  lineStarts,
  type MapNode,
  parseFile,
  type ScalarNode,
  str,
  type YNode,
} from "./tree.ts";
import type {
  Change,
  FileUpdate,
  ImageSelection,
  ObjectId,
  PolicyClaim,
  Problem,
  ProblemKind,
  SetterPart,
  UpdateInput,
  UpdateResult,
} from "./types.ts";

export interface SourceFile {
  /** Repository-relative, `/`-separated. */
  path: string;
  content: string;
}

interface Edit {
  start: number;
  end: number;
  text: string;
}
/** A change before line numbers are known (offsets are into the text being scanned). */
type PendingChange = Omit<Change, "line"> & { offset: number };
type PendingProblem = Omit<Problem, "file" | "line"> & { offset?: number | undefined };

interface Scan {
  edits: Edit[];
  changes: PendingChange[];
  problems: PendingProblem[];
}

interface Claim {
  policy: PolicyClaim;
  selection: ImageSelection;
}

const KUSTOMIZATION_FILES = new Set(["kustomization.yaml", "kustomization.yml", "Kustomization"]);
const PATCH_KEYS = ["patches", "patchesStrategicMerge", "patchesJson6902"];

/** The value a setter writes for a selection; undefined when the selection has no such part. */
export function setterValue(sel: ImageSelection, part: SetterPart): string | undefined {
  switch (part) {
    case "image":
      // Flux's LatestRef.String(): name:tag, with @digest when the policy reflects digests.
      return `${sel.image}${sel.tag ? `:${sel.tag}` : ""}${sel.digest ? `@${sel.digest}` : ""}`;
    case "tag":
      return sel.tag;
    case "name":
      return sel.image;
    case "digest":
      return sel.digest;
  }
}

function setterName(policy: string, part: SetterPart): string {
  return part === "image" ? policy : `${policy}:${part}`;
}

class FileScanner {
  readonly scan: Scan = { edits: [], changes: [], problems: [] };
  private readonly src: string;
  private readonly input: UpdateInput;
  private readonly known: ReadonlySet<string>;
  private readonly deferred: ReadonlySet<string>;

  constructor(src: string, input: UpdateInput, known: ReadonlySet<string>) {
    this.src = src;
    this.input = input;
    this.known = known;
    this.deferred = new Set(input.deferred);
  }

  private problem(
    offset: number | undefined,
    kind: ProblemKind,
    severity: Problem["severity"],
    message: string,
    policy?: string,
  ) {
    this.scan.problems.push({ offset, kind, severity, message, ...(policy !== undefined ? { policy } : {}) });
  }

  /** Records an edit of `node` to `value`; false (with a problem) when the scalar cannot hold it in place. */
  private edit(node: ScalarNode, value: string, c: Omit<PendingChange, "offset" | "old" | "new">): boolean {
    if (node.value === value) return true;
    const text = renderScalar(value, node.style, node.inFlow);
    if (text === undefined) {
      // A block scalar's text starts on the line after its header, where the marker is.
      this.problem(
        node.start - 1,
        "unsupported-scalar",
        "error",
        `setter ${c.setter}: a block scalar cannot be rewritten in place; write the reference on one line`,
        c.policy,
      );
      return false;
    }
    this.scan.edits.push({ start: node.start, end: node.end, text });
    this.scan.changes.push({ ...c, old: node.value, new: value, offset: node.start });
    return true;
  }

  /** Every scalar value under `node` (map values and sequence items, not keys). */
  scalars(node: YNode | undefined, out: ScalarNode[] = []): ScalarNode[] {
    if (!node) return out;
    if (node.kind === "scalar") out.push(node);
    else if (node.kind === "map") for (const e of node.entries) this.scalars(e.value, out);
    else if (node.kind === "seq") for (const i of node.items) this.scalars(i, out);
    return out;
  }

  *maps(node: YNode | undefined): Generator<MapNode> {
    if (!node) return;
    if (node.kind === "map") {
      yield node;
      for (const e of node.entries) yield* this.maps(e.value);
    } else if (node.kind === "seq") for (const i of node.items) yield* this.maps(i);
  }

  markers(root: YNode | undefined, object: ObjectId): void {
    for (const node of this.scalars(root)) {
      if (node.comment === undefined || !mayContainMarker(node.comment)) continue;
      const m = parseMarker(node.comment);
      if (m.kind === "none") continue;
      if (m.kind === "invalid") {
        this.problem(node.start, "invalid-marker", "error", m.message);
        continue;
      }
      const sel = this.input.selections.get(m.policy);
      if (!sel) {
        if (this.deferred.has(m.policy)) continue;
        if (this.known.has(m.policy))
          this.problem(
            node.start,
            "no-selection",
            "warning",
            `policy ${m.policy} has no selection; marker left alone`,
            m.policy,
          );
        else
          this.problem(
            node.start,
            "unknown-policy",
            "warning",
            `unknown policy ${m.policy}; marker left alone`,
            m.policy,
          );
        continue;
      }
      const value = setterValue(sel, m.part);
      if (value === undefined) {
        this.problem(
          node.start,
          m.part === "digest" ? "digest-not-tracked" : "no-selection",
          "warning",
          m.part === "digest"
            ? `policy ${m.policy} does not track digests; marker ${m.setter} left alone`
            : `the selection for ${m.policy} has no tag; marker ${m.setter} left alone`,
          m.policy,
        );
        continue;
      }
      this.edit(node, value, { setter: m.setter, policy: m.policy, part: m.part, via: "marker", object });
    }
  }

  /** References a native policy claims through `paths`, in files without (or besides) markers. */
  claimed(root: YNode | undefined, object: ObjectId, claims: readonly Claim[], kustomization: boolean): void {
    const marked = (n: ScalarNode) => n.comment !== undefined && parseMarker(n.comment).kind !== "none";
    const change = (claim: Claim, node: ScalarNode, part: SetterPart, value: string) =>
      this.edit(node, value, {
        setter: setterName(claim.policy.id, part),
        policy: claim.policy.id,
        part,
        via: "paths",
        object,
      });
    const pinnedWithoutDigest = (claim: Claim, node: ScalarNode) =>
      this.problem(
        node.start,
        "digest-not-tracked",
        "warning",
        `policy ${claim.policy.id} does not track digests; digest-pinned reference left alone`,
        claim.policy.id,
      );

    for (const claim of claims) {
      const { selection: sel } = claim;
      if (sel.tag === undefined) continue;
      const tag = sel.tag;
      const matches = (name: string) =>
        sameRepository(name, claim.policy.image) || sameRepository(name, sel.image);

      // Whole references: `repo:tag`, `repo@digest`, `repo:tag@digest`, the form kept as written.
      for (const node of this.scalars(root)) {
        if (node.style === "block" || marked(node)) continue;
        const parts = refParts(node.value);
        if (!parts || (parts.tag === undefined && parts.digest === undefined) || !matches(parts.name))
          continue;
        if (parts.digest !== undefined && !sel.digest) {
          pinnedWithoutDigest(claim, node);
          continue;
        }
        const value = `${parts.name}${parts.tag !== undefined || !parts.digest ? `:${tag}` : ""}${parts.digest !== undefined ? `@${sel.digest}` : ""}`;
        change(claim, node, "image", value);
      }

      // kustomize `images:` (and Flux Kustomization `spec.images`): newTag / digest of the matching entry.
      const images = kustomization ? get(root, "images") : get(get(root, "spec"), "images");
      const imageEntries =
        object.apiVersion?.startsWith("kustomize.toolkit.fluxcd.io/") || kustomization ? images : undefined;
      if (imageEntries?.kind === "seq") {
        for (const entry of imageEntries.items) {
          const name = str(get(entry, "newName")) ?? str(get(entry, "name"));
          if (name === undefined || !matches(name)) continue;
          this.tagAndDigest(entry, "newTag", claim, change, pinnedWithoutDigest, marked);
        }
      }

      // Helm values: `{registry?, repository, tag, digest?}` or `{image: <repo>, tag}` side by side.
      for (const map of this.maps(root)) {
        const repo = str(get(map, "repository")) ?? str(get(map, "image"));
        if (repo === undefined || refParts(repo)?.tag !== undefined) continue;
        const registry = str(get(map, "registry"));
        const name = registry && get(map, "repository") ? `${registry}/${repo}` : repo;
        if (!matches(name)) continue;
        this.tagAndDigest(map, "tag", claim, change, pinnedWithoutDigest, marked);
      }
    }
  }

  private tagAndDigest(
    entry: YNode | undefined,
    tagKey: string,
    claim: Claim,
    change: (claim: Claim, node: ScalarNode, part: SetterPart, value: string) => boolean,
    pinnedWithoutDigest: (claim: Claim, node: ScalarNode) => void,
    marked: (n: ScalarNode) => boolean,
  ): void {
    const tag = get(entry, tagKey);
    const digest = get(entry, "digest");
    const tagNode = tag?.kind === "scalar" && !marked(tag) ? tag : undefined;
    const digestNode = digest?.kind === "scalar" && !marked(digest) ? digest : undefined;
    if (digestNode && !claim.selection.digest) {
      // Moving the tag under a pinned digest would change nothing that runs and mislead the reader.
      pinnedWithoutDigest(claim, digestNode);
      return;
    }
    if (tagNode && claim.selection.tag) change(claim, tagNode, "tag", claim.selection.tag);
    if (digestNode && claim.selection.digest) change(claim, digestNode, "digest", claim.selection.digest);
  }

  /** Markers inside inline kustomize patches (literal block scalars holding YAML). */
  inlinePatches(root: YNode | undefined): void {
    for (const key of PATCH_KEYS) {
      const list = get(root, key);
      if (list?.kind !== "seq") continue;
      for (const item of list.items) {
        const patch = item?.kind === "scalar" ? item : get(item, "patch");
        if (patch?.kind !== "scalar" || patch.style !== "block" || !patch.literal) continue;
        const body = this.src.slice(patch.start, patch.end);
        if (!mayContainMarker(body)) continue;
        this.nested(patch.start, body);
      }
    }
  }

  private nested(base: number, body: string): void {
    const lines = body.split("\n");
    const indent = Math.min(
      ...lines.filter((l) => l.trim() !== "").map((l) => l.length - l.trimStart().length),
    );
    // Each nested line maps back to `base + its offset in body + indent`: the patch is the block minus its indentation.
    const srcStarts: number[] = [];
    const text: string[] = [];
    let at = base;
    for (const l of lines) {
      const strip = Math.min(indent, l.length - l.trimStart().length);
      srcStarts.push(at + strip);
      text.push(l.slice(strip));
      at += l.length + 1;
    }
    const inner = text.join("\n");
    const innerStarts = lineStarts(inner);
    const map = (off: number) => {
      const line = lineOf(innerStarts, off) - 1;
      return (srcStarts[line] ?? base) + off - (innerStarts[line] ?? 0);
    };
    const parsed = parseFile(inner);
    if (parsed.error) {
      this.problem(
        map(parsed.error.offset),
        "parse-error",
        "warning",
        `inline patch is not valid YAML (${parsed.error.message}); markers inside left alone`,
      );
      return;
    }
    const sub = new FileScanner(inner, this.input, this.known);
    for (const doc of parsed.documents) sub.markers(doc.root, doc.id);
    for (const e of sub.scan.edits) this.scan.edits.push({ ...e, start: map(e.start), end: map(e.end) });
    for (const c of sub.scan.changes) this.scan.changes.push({ ...c, offset: map(c.offset) });
    for (const p of sub.scan.problems)
      this.scan.problems.push({ ...p, offset: p.offset === undefined ? undefined : map(p.offset) });
  }
}

/** Whether `pattern` (a glob, or a plain file or directory path) covers `file`. */
export function pathMatches(file: string, pattern: string): boolean {
  const p = pattern.replace(/^\.\//, "").replace(/\/+$/, "");
  if (p === "" || p === ".") return true;
  if (!/[*?[\]{}]/.test(p)) return file === p || file.startsWith(`${p}/`);
  return posix.matchesGlob(file, p);
}

function splice(src: string, edits: Edit[]): string | undefined {
  edits.sort((a, b) => a.start - b.start);
  const out: string[] = [];
  let at = 0;
  for (const e of edits) {
    if (e.start < at) return undefined;
    out.push(src.slice(at, e.start), e.text);
    at = e.end;
  }
  out.push(src.slice(at));
  return out.join("");
}

function dedupe<T extends { start: number; end: number; text: string }>(edits: T[]): T[] {
  const seen = new Map<string, T>();
  for (const e of edits) seen.set(`${e.start}:${e.end}:${e.text}`, e);
  return [...seen.values()];
}

/** Rewrites one file; returns its update (undefined when nothing changed) and its problems. */
export function updateFile(
  file: SourceFile,
  input: UpdateInput,
  known: ReadonlySet<string> = new Set(input.policies.map((p) => p.id)),
): { update?: FileUpdate; problems: Problem[] } {
  const { path, content } = file;
  const claims: Claim[] = [];
  for (const policy of input.policies) {
    const selection = input.selections.get(policy.id);
    if (selection && policy.paths?.some((p) => pathMatches(path, p))) claims.push({ policy, selection });
  }
  const hasMarker = mayContainMarker(content);
  if (!hasMarker && claims.length === 0) return { problems: [] };

  let starts: number[] | undefined;
  const line = (offset: number) => {
    starts ??= lineStarts(content);
    return lineOf(starts, offset);
  };
  const parsed = parseFile(content);
  if (parsed.error) {
    const at = line(parsed.error.offset);
    return {
      problems: [
        {
          file: path,
          line: at,
          kind: "parse-error",
          severity: "error",
          message: `not valid YAML: ${parsed.error.message}`,
        },
      ],
    };
  }
  const scanner = new FileScanner(content, input, known);
  const kustomizationFile = KUSTOMIZATION_FILES.has(posix.basename(path));
  for (const doc of parsed.documents) {
    const kustomization =
      doc.id.apiVersion?.startsWith("kustomize.config.k8s.io/") ||
      (kustomizationFile &&
        (doc.id.kind === undefined || doc.id.kind === "Kustomization") &&
        !doc.id.apiVersion?.startsWith("kustomize.toolkit.fluxcd.io/"));
    if (hasMarker) scanner.markers(doc.root, doc.id);
    if (hasMarker && kustomization) scanner.inlinePatches(doc.root);
    if (claims.length > 0) scanner.claimed(doc.root, doc.id, claims, kustomization === true);
  }
  const { edits, changes, problems } = scanner.scan;
  const outProblems: Problem[] = problems.map((p) => ({
    file: path,
    ...(p.offset !== undefined ? { line: line(p.offset) } : {}),
    kind: p.kind,
    severity: p.severity,
    message: p.message,
    ...(p.policy !== undefined ? { policy: p.policy } : {}),
  }));
  if (edits.length === 0) return { problems: outProblems };
  const unique = dedupe(edits);
  const next = splice(content, unique);
  if (next === undefined) {
    outProblems.push({
      file: path,
      kind: "invalid-marker",
      severity: "error",
      message: "two setters write different values into the same scalar; file left alone",
    });
    return { problems: outProblems };
  }
  const seen = new Set<string>();
  const outChanges: Change[] = [];
  for (const { offset, ...c } of changes) {
    const key = `${offset}:${c.setter}:${c.new}`;
    if (seen.has(key)) continue;
    seen.add(key);
    outChanges.push({ ...c, line: line(offset) });
  }
  outChanges.sort((a, b) => a.line - b.line);
  return { update: { path, changes: outChanges, content: next }, problems: outProblems };
}

/**
 * Runs `fn` with `process.env` swapped for a plain copy. The yaml parser reads
 * process.env.LOG_TOKENS once per token; Node's env object is an exotic
 * C++-backed map, and those reads were a third of the parse time. The copy
 * answers the same; the original is back before anything else can run (`fn`
 * is synchronous).
 */
export function withPlainEnv<T>(fn: () => T): T {
  const env = process.env;
  process.env = { ...env };
  try {
    return fn();
  } finally {
    process.env = env;
  }
}

/** Applies selections to every file; files that do not parse are reported and left alone. */
export function applyUpdates(files: Iterable<SourceFile>, input: UpdateInput): UpdateResult {
  const known = new Set(input.policies.map((p) => p.id));
  const result: UpdateResult = { files: [], problems: [] };
  withPlainEnv(() => {
    for (const f of files) {
      const { update, problems } = updateFile(f, input, known);
      if (update) result.files.push(update);
      result.problems.push(...problems);
    }
  });
  return result;
}
