/**
 * Fail closed, by construction. Each Flux kind the agent reads has a table
 * of every spec field of Flux's served API versions, each either honoured
 * (with Flux's meaning, tested) or refused with the reason. `refusedFields`
 * walks an object's spec against its table: a field that is refused, or
 * that the table does not know at all (a field a newer Flux added, a field
 * our own CRD let through), comes back by its path, and the object is then
 * Stalled with reason `UnsupportedField` naming each one. Nothing is ever
 * silently ignored: that would apply a tenant's objects with the agent's
 * rights, or a spoke's objects on the hub.
 *
 * test/agent/fields.crd.test.ts holds every table (./tables.ts) against
 * Flux's own CRD schemas (./coverage.ts): a CRD field missing from a table,
 * or a table entry no CRD has, fails the test.
 */

/** Why a field is refused; `accepts` lists values that mean what the agent does anyway (Flux's defaults). */
export interface Refused {
  refused: string;
  accepts?: readonly unknown[];
}

/**
 * "honoured": the field and, unless the table names children of it, its
 * whole subtree (maps such as `values` or `commonMetadata.labels`).
 */
export type Support = "honoured" | Refused;

/** Spec field paths, dotted from `spec` (array items are walked through: `dependsOn.name`). */
export type FieldTable = Readonly<Record<string, Support>>;

/** Go's zero values: Flux's API types omit them, so they mean the same as an absent field. */
function isZero(v: unknown): boolean {
  if (v === null || v === undefined || v === false || v === "" || v === 0) return true;
  if (Array.isArray(v)) return v.length === 0;
  if (typeof v === "object") return Object.keys(v as object).length === 0;
  return false;
}

/** Whether the table names children of `path` (then only those are honoured). */
export function hasChildren(table: FieldTable, path: string): boolean {
  const prefix = `${path}.`;
  return Object.keys(table).some((k) => k.startsWith(prefix));
}

/**
 * The spec fields the agent does not honour, as `spec.a.b` paths in the
 * order they appear; empty when every field present is honoured.
 */
export function refusedFields(spec: Record<string, unknown> | undefined, table: FieldTable): string[] {
  const out: string[] = [];
  const walk = (value: unknown, path: string): void => {
    if (Array.isArray(value)) {
      for (const item of value) walk(item, path);
      return;
    }
    if (value === null || typeof value !== "object") return;
    for (const [key, child] of Object.entries(value as Record<string, unknown>)) {
      const p = path ? `${path}.${key}` : key;
      const rule = table[p];
      if (rule === "honoured") {
        if (hasChildren(table, p)) walk(child, p);
        continue;
      }
      if (isZero(child)) continue;
      if (rule?.accepts?.some((a) => a === child)) continue;
      if (!out.includes(`spec.${p}`)) out.push(`spec.${p}`);
    }
  };
  walk(spec ?? {}, "");
  return out;
}

/** The one-line message of an UnsupportedField condition. */
export function unsupportedMessage(kind: string, fields: readonly string[], table: FieldTable): string {
  const parts = fields.map((f) => {
    const rule = table[f.slice("spec.".length)];
    const why = rule && rule !== "honoured" ? rule.refused : "not a field this agent knows";
    return `${f} (${why})`;
  });
  return `${kind} field${fields.length === 1 ? "" : "s"} not supported by the shipmate agent, refused rather than ignored: ${parts.join("; ")}`;
}
