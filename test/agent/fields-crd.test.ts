/**
 * The Kustomization field table against Flux's own CRD schema (kustomize-
 * controller's CRD, kept as test data in src/validate/schemas.json, see its
 * `sources`): every field of the served version is honoured or refused by
 * name, and a field a newer Flux adds fails this test until the table says
 * which.
 */
import { describe, expect, it } from "vitest";
import { KUSTOMIZATION_FIELDS } from "../../src/agent/fields/kustomization.ts";
import type { FieldTable } from "../../src/agent/fields/support.ts";
import schemas from "../../src/validate/schemas.json" with { type: "json" };

interface Prop {
  properties?: Record<string, Prop>;
  items?: Prop;
}

/** Dotted paths of a CRD spec, through arrays, as the field tables name them. */
function crdPaths(spec: Prop, prefix = ""): Map<string, Prop> {
  const out = new Map<string, Prop>();
  const props = spec.properties ?? spec.items?.properties ?? {};
  for (const [k, v] of Object.entries(props)) {
    const p = prefix ? `${prefix}.${k}` : k;
    out.set(p, v);
    for (const [q, w] of crdPaths(v, p)) out.set(q, w);
  }
  return out;
}

/** What the table misses or invents, compared with the CRD. */
function coverage(table: FieldTable, spec: Prop): { missing: string[]; unknown: string[] } {
  const paths = crdPaths(spec);
  const keys = Object.keys(table);
  const hasChildren = (k: string) => keys.some((x) => x.startsWith(`${k}.`));
  const missing = [...paths.keys()].filter((p) => {
    if (table[p]) return false;
    const parent = p.includes(".") ? p.slice(0, p.lastIndexOf(".")) : "";
    // A top-level field must be named; a child must be when its parent lists children.
    return parent === "" || (table[parent] === "honoured" && hasChildren(parent));
  });
  const unknown = keys.filter((k) => !paths.has(k));
  return { missing, unknown };
}

const definitions = schemas.definitions as unknown as Record<string, { properties: { spec: Prop } }>;
const kustomizationSpec = () =>
  structuredClone(definitions["kustomize.toolkit.fluxcd.io.v1.Kustomization"]?.properties.spec as Prop);

describe("the Kustomization field table covers Flux's CRD", () => {
  it("names every field of kustomize.toolkit.fluxcd.io/v1 and none Flux lacks", () => {
    expect(coverage(KUSTOMIZATION_FIELDS, kustomizationSpec())).toEqual({ missing: [], unknown: [] });
  });

  it("a field a newer Flux adds (top level, or under a parent listing its children) fails the check", () => {
    const spec = kustomizationSpec();
    (spec.properties as Record<string, Prop>).shinyNew = { properties: {} };
    const post = spec.properties?.postBuild?.properties as Record<string, Prop>;
    post.substituteFromEverywhere = {};
    expect(coverage(KUSTOMIZATION_FIELDS, spec).missing).toEqual([
      "postBuild.substituteFromEverywhere",
      "shinyNew",
    ]);
  });
});
