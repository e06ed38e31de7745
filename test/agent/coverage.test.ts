import { describe, expect, it } from "vitest";
import {
  type CrdDocument,
  decides,
  fieldCoverage,
  type SchemaNode,
  servedSpecFields,
  specFieldPaths,
} from "../../src/agent/fields/coverage.ts";
import type { FieldTable } from "../../src/agent/fields/support.ts";

const obj = (properties: Record<string, SchemaNode>): SchemaNode => ({ properties });
const leaf: SchemaNode = {};
const root = (spec: SchemaNode): SchemaNode => obj({ apiVersion: leaf, spec, status: obj({ x: leaf }) });

describe("CRD spec field paths", () => {
  it.each<[string, SchemaNode, string[]]>([
    ["only spec counts: status and metadata are not the user's fields", root(obj({ a: leaf })), ["a"]],
    [
      "nested objects give dotted paths, parents first",
      root(obj({ ref: obj({ name: leaf, namespace: leaf }) })),
      ["ref", "ref.name", "ref.namespace"],
    ],
    [
      "array items are walked through",
      root(obj({ dependsOn: { items: obj({ name: leaf, readyExpr: leaf }) } })),
      ["dependsOn", "dependsOn.name", "dependsOn.readyExpr"],
    ],
    [
      "a map or free-form object (no properties) is one leaf",
      root(obj({ values: leaf, labels: { items: leaf } })),
      ["values", "labels"],
    ],
    ["a schema without spec has no fields", obj({ status: leaf }), []],
  ])("%s", (_rule, schema, expected) => {
    expect(specFieldPaths(schema)).toEqual(expected);
  });

  it("served versions are united, each path with the versions that have it; unserved ones are left out", () => {
    const crd: CrdDocument = {
      spec: {
        versions: [
          { name: "v1", served: true, schema: { openAPIV3Schema: root(obj({ a: leaf, b: leaf })) } },
          { name: "v1beta3", served: true, schema: { openAPIV3Schema: root(obj({ a: leaf, c: leaf })) } },
          { name: "v1beta1", served: false, schema: { openAPIV3Schema: root(obj({ gone: leaf })) } },
        ],
      },
    };
    expect(Object.fromEntries(servedSpecFields(crd))).toEqual({
      a: ["v1", "v1beta3"],
      b: ["v1"],
      c: ["v1beta3"],
    });
  });
});

const table: FieldTable = {
  url: "honoured",
  values: "honoured",
  ref: "honoured",
  "ref.branch": "honoured",
  verify: { refused: "not verified" },
  provider: { refused: "generic only", accepts: ["generic"] },
};

describe("a table decides a CRD field as refusedFields would", () => {
  it.each<[string, string, boolean]>([
    ["an exact honoured entry", "url", true],
    ["an exact refused entry (accepting a default or not)", "provider", true],
    ["a refused ancestor refuses its whole subtree", "verify.secretRef.name", true],
    ["an honoured ancestor without children honours its whole subtree", "values.image.tag", true],
    ["an honoured ancestor with children passes the decision down: a listed child", "ref.branch", true],
    ["an honoured ancestor with children passes the decision down: an unlisted child", "ref.commit", false],
    ["a field with no entry on its path", "include", false],
    ["a child whose parent has no entry", "include.repository.name", false],
  ])("%s", (_rule, path, expected) => {
    expect(decides(table, path)).toBe(expected);
  });

  it("coverage reports CRD fields the table does not decide and entries no CRD field has", () => {
    const crd = ["url", "values", "ref", "ref.branch", "ref.commit", "verify", "verify.mode", "include"];
    expect(fieldCoverage(table, crd)).toEqual({
      uncovered: ["ref.commit", "include"],
      unknown: ["provider"],
    });
  });

  it("a complete table over its own fields has nothing to report", () => {
    expect(fieldCoverage(table, [...Object.keys(table), "values.x", "verify.secretRef"])).toEqual({
      uncovered: [],
      unknown: [],
    });
  });
});
