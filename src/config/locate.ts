/** Field paths → line numbers in a parsed YAML document (for errors a person can jump to). */
import { type Document, isMap, isScalar, isSeq, type LineCounter, type Node } from "yaml";

export type FieldPath = readonly PropertyKey[];

/** `spec.items[0].range` style, as people read paths. */
export function formatPath(path: FieldPath): string {
  let out = "";
  for (const key of path) {
    if (typeof key === "number") out += `[${key}]`;
    else out += out ? `.${String(key)}` : String(key);
  }
  return out;
}

/**
 * The line of the deepest node on `path` that exists: the key's line for a
 * mapping entry (a block value starts on the next line, the key is where a
 * person looks), the item's line in a sequence. With `key`, the line of that
 * key inside the map at `path` (unknown fields).
 */
export function lineOf(
  doc: Document,
  counter: LineCounter,
  path: FieldPath,
  key?: string,
): number | undefined {
  let node: unknown = doc.contents;
  let offset = (doc.contents as Node | null)?.range?.[0];
  const steps: PropertyKey[] = key === undefined ? [...path] : [...path, key];
  for (const step of steps) {
    if (isMap(node)) {
      const pair = node.items.find((p) => isScalar(p.key) && String(p.key.value) === String(step));
      if (!pair) break;
      const keyNode = pair.key as Node;
      if (keyNode.range) offset = keyNode.range[0];
      node = pair.value;
    } else if (isSeq(node) && typeof step === "number") {
      const item = node.items[step] as Node | undefined;
      if (!item) break;
      if (item.range) offset = item.range[0];
      node = item;
    } else {
      break;
    }
  }
  return offset === undefined ? undefined : counter.linePos(offset).line;
}
