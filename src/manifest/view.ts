/**
 * The engine's read-only view of a YAML file: maps, sequences and scalars,
 * each scalar with its byte range, style and line comment; and the object a
 * document describes. Both readers build it: the full parse (tree.ts) and
 * the fast reader (fast.ts), which therefore import this, not each other.
 */
import type { ScalarStyle } from "./render.ts";
import type { ObjectId } from "./types.ts";

export interface ScalarNode {
  kind: "scalar";
  value: string;
  style: ScalarStyle;
  /** [start, end) of the scalar's own text (quotes included) in the source. */
  start: number;
  end: number;
  inFlow: boolean;
  /** Text after `#` when a comment follows the scalar on the same line (the header line for block scalars). */
  comment?: string;
  /** Block scalars only: whether it is literal (`|`), whose source lines are its value lines. */
  literal?: boolean;
}
export interface MapNode {
  kind: "map";
  entries: { key: string | undefined; value: YNode | undefined }[];
}
export interface SeqNode {
  kind: "seq";
  items: (YNode | undefined)[];
}
/** Aliases and anything else the update engine never edits. */
export interface OtherNode {
  kind: "other";
}
export type YNode = ScalarNode | MapNode | SeqNode | OtherNode;

export interface YDocument {
  root: YNode | undefined;
  id: ObjectId;
}

export interface ParsedFile {
  documents: YDocument[];
  /** The first syntax error, with its offset, when the file is not valid YAML. */
  error?: { offset: number; message: string };
}

export function get(node: YNode | undefined, key: string): YNode | undefined {
  if (node?.kind !== "map") return undefined;
  for (const e of node.entries) if (e.key === key) return e.value;
  return undefined;
}

export function str(node: YNode | undefined): string | undefined {
  return node?.kind === "scalar" ? node.value : undefined;
}

/** The Kubernetes object a document's root describes (fields it lacks stay unset). */
export function identify(root: YNode | undefined): ObjectId {
  const id: ObjectId = {};
  const apiVersion = str(get(root, "apiVersion"));
  const kind = str(get(root, "kind"));
  const meta = get(root, "metadata");
  const namespace = str(get(meta, "namespace"));
  const name = str(get(meta, "name"));
  if (apiVersion !== undefined) id.apiVersion = apiVersion;
  if (kind !== undefined) id.kind = kind;
  if (namespace !== undefined) id.namespace = namespace;
  if (name !== undefined) id.name = name;
  return id;
}
