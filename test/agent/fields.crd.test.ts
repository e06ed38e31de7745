/**
 * Fail closed, held against Flux itself: for every kind the agent reads
 * (src/agent/fields/tables.ts), every spec field of every served version of
 * Flux's CRD is honoured or refused by the kind's table, and every table
 * entry is a field Flux has. The CRDs are Flux's own, provisioned from its Go
 * modules by scripts/provision/70-flux-crds.sh (never committed); a newer
 * Flux adding a field makes this test fail until the field is decided.
 */
import { existsSync, readFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import {
  type CrdDocument,
  fieldCoverage,
  type SchemaNode,
  servedSpecFields,
} from "../../src/agent/fields/coverage.ts";
import { hasChildren } from "../../src/agent/fields/support.ts";
import { FIELD_TABLES, type KindFields } from "../../src/agent/fields/tables.ts";
import { SOURCE_HANDLERS } from "../../src/agent/sources/index.ts";
import { type CustomResourceDefinition, fluxCrdDir, readCrdDir } from "../../src/validate/crds.ts";

const dir = fluxCrdDir();
const crds = readCrdDir(dir);
const missing = `Flux's CRDs are not in ${dir}: run scripts/provision/70-flux-crds.sh`;

function crdOf(t: KindFields): CustomResourceDefinition {
  const crd = crds.find((c) => c.spec.group === t.group && c.spec.names.kind === t.kind);
  if (!crd) throw new Error(`no CRD for ${t.kind}.${t.group} in ${dir}: ${missing}`);
  return crd;
}

const coverageOf = (t: KindFields, crd: CrdDocument) => fieldCoverage(t.fields, servedSpecFields(crd).keys());

/** The served versions' spec schemas of a deep copy of the CRD. */
function specsOf(crd: CustomResourceDefinition): { copy: CustomResourceDefinition; specs: SchemaNode[] } {
  const copy = structuredClone(crd);
  const specs = copy.spec.versions
    .filter((v) => v.served)
    .map((v) => (v.schema!.openAPIV3Schema as SchemaNode).properties!.spec!);
  return { copy, specs };
}

/** The schema node of a dotted spec path, array items walked through. */
function nodeAt(spec: SchemaNode, path: string): SchemaNode | undefined {
  let node: SchemaNode | undefined = spec;
  for (const key of path.split(".")) {
    while (node?.items) node = node.items;
    node = node?.properties?.[key];
  }
  while (node?.items) node = node.items;
  return node;
}

describe("every Flux field of every served version is honoured or refused", () => {
  it("the CRD test data is provisioned, with its versions recorded", () => {
    expect(existsSync(join(dir, "versions")), missing).toBe(true);
    expect(readFileSync(join(dir, "versions"), "utf8")).toMatch(/^KUSTOMIZE_CONTROLLER=v\d/m);
  });

  it.each(FIELD_TABLES.map((t) => [`${t.kind}.${t.group}`, t] as const))(
    "%s: the table decides every CRD field and names no field Flux lacks",
    (_name, t) => {
      const crd = crdOf(t);
      expect(crd.spec.versions.some((v) => v.served)).toBe(true);
      expect(coverageOf(t, crd)).toEqual({ uncovered: [], unknown: [] });
    },
  );

  it.each(FIELD_TABLES.map((t) => [t.kind, t] as const))(
    "%s: a field a newer Flux adds (injected into a copy of the CRD) fails the check",
    (_kind, t) => {
      const { copy, specs } = specsOf(crdOf(t));
      for (const spec of specs)
        spec.properties = { ...spec.properties, shipmateFutureField: { properties: {} } };
      // Below an honoured parent that lists its children, too: the new child is not covered by the parent.
      const parent = Object.keys(t.fields).find(
        (p) => t.fields[p] === "honoured" && hasChildren(t.fields, p),
      );
      if (parent)
        for (const spec of specs) {
          const node = nodeAt(spec, parent);
          if (node?.properties) node.properties = { ...node.properties, futureChild: {} };
        }
      const { uncovered } = coverageOf(t, copy);
      expect(uncovered).toContain("shipmateFutureField");
      if (parent) expect(uncovered).toContain(`${parent}.futureChild`);
    },
  );

  it.each(FIELD_TABLES.map((t) => [t.kind, t] as const))(
    "%s: a field Flux removes (deleted from a copy of the CRD) fails the check",
    (_kind, t) => {
      const { copy, specs } = specsOf(crdOf(t));
      const removed = Object.keys(t.fields).find((p) => !p.includes("."))!;
      for (const spec of specs) delete spec.properties?.[removed];
      expect(coverageOf(t, copy).unknown).toContain(removed);
    },
  );

  it("every source kind the agent fetches has its line, with the table its handler enforces", () => {
    for (const [kind, handler] of SOURCE_HANDLERS) {
      const line = FIELD_TABLES.find((t) => t.kind === kind);
      expect(line, `${kind} has no line in src/agent/fields/tables.ts`).toBeDefined();
      expect(line!.fields).toBe(handler.fields);
      expect(handler.apiVersion.startsWith(`${line!.group}/`)).toBe(true);
    }
  });
});
