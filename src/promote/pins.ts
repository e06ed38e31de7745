/**
 * Where a manifest pins an image, found on the same light YAML view the
 * update engine edits (src/manifest/tree.ts), so a site found here is a scalar
 * that can be rewritten in place. Pure; no I/O.
 *
 * Three forms, as Flux and Renovate recognise them:
 * - a whole reference under an `image:` key (`ghcr.io/org/app:1.2.3@sha256:…`),
 * - a kustomize `images:` entry (`name`/`newName`, `newTag`, `digest`),
 * - a Helm values map (`repository` [+ `registry`], `tag`, `digest`).
 */
import { posix } from "node:path";
import { canonicalRepository, refParts } from "../manifest/ref.ts";
import { get, type MapNode, parseFile, type ScalarNode, str, type YNode } from "../manifest/tree.ts";

export interface PinSite {
  /** Repository-relative file. */
  file: string;
  /** 1-based line of the first scalar of the site. */
  line: number;
  kind: "reference" | "kustomize" | "helm";
  /** The image as written in this file (no tag, no digest). */
  name: string;
  /** Docker-normalised repository (`docker.io/library/nginx`), the matching key. */
  repository: string;
  tag?: string;
  digest?: string;
  /** The scalars a rewrite touches: the whole reference, or the tag and digest scalars. */
  nodes: { reference?: ScalarNode; tag?: ScalarNode; digest?: ScalarNode };
}

export interface ScanProblem {
  file: string;
  line?: number;
  message: string;
}

const KUSTOMIZATION_NAMES = new Set(["kustomization.yaml", "kustomization.yml", "Kustomization"]);

function lineAt(content: string, offset: number): number {
  let line = 1;
  for (let i = content.indexOf("\n"); i !== -1 && i < offset; i = content.indexOf("\n", i + 1)) line++;
  return line;
}

function* maps(node: YNode | undefined): Generator<MapNode> {
  if (!node) return;
  if (node.kind === "map") {
    yield node;
    for (const e of node.entries) yield* maps(e.value);
  } else if (node.kind === "seq") for (const i of node.items) yield* maps(i);
}

const scalar = (n: YNode | undefined): ScalarNode | undefined =>
  n?.kind === "scalar" && n.style !== "block" ? n : undefined;

/** Every pinned image in one YAML file; files that do not parse are reported, not guessed at. */
export function scanPins(file: string, content: string): { sites: PinSite[]; problems: ScanProblem[] } {
  const sites: PinSite[] = [];
  const parsed = parseFile(content);
  if (parsed.error)
    return {
      sites,
      problems: [
        {
          file,
          line: lineAt(content, parsed.error.offset),
          message: `not valid YAML: ${parsed.error.message}`,
        },
      ],
    };
  const isKustomizationFile = KUSTOMIZATION_NAMES.has(posix.basename(file));
  const add = (site: Omit<PinSite, "file" | "line" | "repository">, first: ScalarNode) => {
    const repository = canonicalRepository(site.name);
    if (!repository) return;
    sites.push({ ...site, file, line: lineAt(content, first.start), repository });
  };
  for (const doc of parsed.documents) {
    const kustomization =
      doc.id.apiVersion?.startsWith("kustomize.config.k8s.io/") ||
      (isKustomizationFile && (doc.id.kind === undefined || doc.id.kind === "Kustomization"));
    const images = kustomization ? get(doc.root, "images") : undefined;
    const claimed = new Set<MapNode>();
    if (images?.kind === "seq") {
      for (const entry of images.items) {
        if (entry?.kind !== "map") continue;
        claimed.add(entry);
        const name = str(get(entry, "newName")) ?? str(get(entry, "name"));
        const tag = scalar(get(entry, "newTag"));
        const digest = scalar(get(entry, "digest"));
        const first = tag ?? digest;
        if (!name || !first) continue;
        add(
          {
            kind: "kustomize",
            name,
            ...(tag ? { tag: tag.value } : {}),
            ...(digest ? { digest: digest.value } : {}),
            nodes: { ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) },
          },
          first,
        );
      }
    }
    for (const map of maps(doc.root)) {
      if (claimed.has(map)) continue;
      const image = scalar(get(map, "image"));
      const parts = image ? refParts(image.value) : undefined;
      if (image && parts && (parts.tag !== undefined || parts.digest !== undefined)) {
        add(
          {
            kind: "reference",
            name: parts.name,
            ...(parts.tag !== undefined ? { tag: parts.tag } : {}),
            ...(parts.digest !== undefined ? { digest: parts.digest } : {}),
            nodes: { reference: image },
          },
          image,
        );
        continue;
      }
      // Helm values: {registry?, repository, tag, digest?} or {image: repo, tag}.
      const repo =
        scalar(get(map, "repository")) ?? (parts && !parts.tag && !parts.digest ? image : undefined);
      const tag = scalar(get(map, "tag"));
      const digest = scalar(get(map, "digest"));
      if (!repo || (!tag && !digest) || refParts(repo.value)?.tag !== undefined) continue;
      const registry = str(get(map, "registry"));
      const name = registry && get(map, "repository") ? `${registry}/${repo.value}` : repo.value;
      add(
        {
          kind: "helm",
          name,
          ...(tag ? { tag: tag.value } : {}),
          ...(digest ? { digest: digest.value } : {}),
          nodes: { ...(tag ? { tag } : {}), ...(digest ? { digest } : {}) },
        },
        tag ?? digest ?? repo,
      );
    }
  }
  return { sites, problems: [] };
}

/** `tag`, `@digest` or `tag@digest`, as a table shows a version. */
export function versionOf(p: { tag?: string; digest?: string }): string {
  return `${p.tag ?? ""}${p.digest ? `@${p.digest}` : ""}`;
}
