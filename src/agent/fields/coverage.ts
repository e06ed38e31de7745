/**
 * Holds a kind's FieldTable against Flux's own CRD schema: every spec field
 * path of every served version must be decided by the table, and every table
 * entry must be a field some served version has. "Decided" follows
 * `refusedFields` exactly: walking a path from the top, each prefix needs an
 * entry; a refused entry, or an honoured one the table lists no children of,
 * decides its whole subtree; an honoured entry with children passes the
 * decision down. A field a newer Flux adds is therefore reported here before
 * an object carrying it is ever Stalled as "not a field this agent knows".
 * Pure: the caller reads the CRDs.
 */
import { type FieldTable, hasChildren } from "./support.ts";

/** The parts of an OpenAPI v3 schema node (as CRDs carry them) that shape field paths. */
export interface SchemaNode {
  properties?: Record<string, SchemaNode>;
  items?: SchemaNode;
}

/** A CustomResourceDefinition (apiextensions.k8s.io/v1), the fields read here. */
export interface CrdDocument {
  spec: {
    versions: readonly {
      name: string;
      served: boolean;
      /** An OpenAPI v3 schema; only the SchemaNode keywords are read. */
      schema?: { openAPIV3Schema?: object };
    }[];
  };
}

/**
 * Every field path under a version's `spec`, dotted, array items walked
 * through (`dependsOn.name`), parents before children. A map
 * (`additionalProperties`) or free-form object (`values`,
 * `x-kubernetes-preserve-unknown-fields`) lists no properties, so it is one
 * leaf: its keys are the user's data, not fields.
 */
export function specFieldPaths(root: SchemaNode | undefined): string[] {
  const out: string[] = [];
  const walk = (node: SchemaNode | undefined, path: string): void => {
    if (!node) return;
    if (node.items) {
      walk(node.items, path);
      return;
    }
    for (const [key, child] of Object.entries(node.properties ?? {})) {
      const p = path ? `${path}.${key}` : key;
      out.push(p);
      walk(child, p);
    }
  };
  walk(root?.properties?.spec, "");
  return out;
}

/** Each spec field path of the CRD's served versions, with the versions that have it. */
export function servedSpecFields(crd: CrdDocument): Map<string, string[]> {
  const fields = new Map<string, string[]>();
  for (const v of crd.spec.versions) {
    if (!v.served) continue;
    for (const p of specFieldPaths(v.schema?.openAPIV3Schema as SchemaNode | undefined)) {
      const versions = fields.get(p) ?? [];
      versions.push(v.name);
      fields.set(p, versions);
    }
  }
  return fields;
}

export interface Coverage {
  /** CRD fields the table does not decide (the object would be refused as unknown). */
  uncovered: string[];
  /** Table entries no served version has (a typo, or a field Flux removed). */
  unknown: string[];
}

/** Whether the table decides `path`, walking it from the top as `refusedFields` does. */
export function decides(table: FieldTable, path: string): boolean {
  const parts = path.split(".");
  for (let i = 1; i <= parts.length; i++) {
    const prefix = parts.slice(0, i).join(".");
    const rule = table[prefix];
    if (rule === undefined) return false;
    if (rule !== "honoured" || !hasChildren(table, prefix)) return true;
  }
  return true;
}

export function fieldCoverage(table: FieldTable, crdFields: Iterable<string>): Coverage {
  const known = new Set(crdFields);
  return {
    uncovered: [...known].filter((p) => !decides(table, p)),
    unknown: Object.keys(table).filter((p) => !known.has(p)),
  };
}
