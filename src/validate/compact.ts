/**
 * Schema compaction shared by scripts/gen-schemas.ts (the committed bundle)
 * and `validate` at run time (CRDs found in a tree or provisioned Flux
 * CRDs): descriptions, defaults and merge metadata are dropped, and
 * strictness is added the way kubeconform's `-strict` does it: an object
 * schema that lists its properties and does not preserve unknown fields
 * rejects unknown fields (the API server does the same with kubectl's default
 * field validation).
 */
export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };
export type Obj = { [k: string]: Json };
export const isObj = (v: Json | undefined): v is Obj => !!v && typeof v === "object" && !Array.isArray(v);

const DROP = new Set([
  "description",
  "default",
  "example",
  "format",
  "x-kubernetes-group-version-kind",
  "x-kubernetes-list-map-keys",
  "x-kubernetes-list-type",
  "x-kubernetes-map-type",
  "x-kubernetes-patch-merge-key",
  "x-kubernetes-patch-strategy",
  "x-kubernetes-unions",
  "x-kubernetes-validations",
  "x-kubernetes-embedded-resource",
]);

/** Keywords whose value is a schema, a list of schemas, or a map from names to schemas. */
const SUBSCHEMA = new Set(["items", "additionalProperties", "not"]);
const SUBSCHEMA_LIST = new Set(["allOf", "anyOf", "oneOf"]);
const SUBSCHEMA_MAP = new Set(["properties", "patternProperties", "definitions"]);

/**
 * One schema node, compacted and made strict; `$ref`s point into
 * `definitions`. Only keywords are dropped: a property that happens to be
 * called `description` or `default` (PriorityClass, JSONSchemaProps) stays.
 */
export function compact(node: Json): Json {
  if (!isObj(node)) return node;
  if (node.format === "int-or-string" || node["x-kubernetes-int-or-string"] === true) {
    return { anyOf: [{ type: "string" }, { type: "integer" }] };
  }
  const out: Obj = {};
  for (const [k, v] of Object.entries(node)) {
    if (DROP.has(k)) continue;
    if (k === "$ref" && typeof v === "string")
      out.$ref = v.replace("#/components/schemas/", "#/definitions/");
    else if (SUBSCHEMA.has(k)) out[k] = compact(v);
    else if (SUBSCHEMA_LIST.has(k) && Array.isArray(v)) out[k] = v.map(compact);
    else if (SUBSCHEMA_MAP.has(k) && isObj(v))
      out[k] = Object.fromEntries(Object.entries(v).map(([name, sub]) => [name, compact(sub)]));
    else out[k] = v;
  }
  const preserve = node["x-kubernetes-preserve-unknown-fields"] === true;
  delete out["x-kubernetes-preserve-unknown-fields"];
  if (isObj(out.properties) && out.additionalProperties === undefined && !preserve) {
    out.additionalProperties = false;
  }
  if (out.nullable === true) {
    delete out.nullable;
    return { anyOf: [out, { type: "null" }] };
  }
  delete out.nullable;
  return out;
}

/** ObjectMeta in the bundle's definitions: CRDs leave metadata a bare object. */
export const OBJECT_META = "io.k8s.apimachinery.pkg.apis.meta.v1.ObjectMeta";

/**
 * A CRD version's openAPIV3Schema, compacted, its metadata checked as the
 * built-in ObjectMeta (`metaRef` points at it from where the schema lives).
 */
export function crdSchema(openAPIV3Schema: Json, metaRef: string): Obj {
  const schema = compact(openAPIV3Schema) as Obj;
  if (isObj(schema.properties)) {
    schema.properties.metadata = { $ref: metaRef };
    // The API server accepts these on every object, listed in the CRD's schema or not.
    schema.properties.apiVersion ??= { type: "string" };
    schema.properties.kind ??= { type: "string" };
  }
  return schema;
}
