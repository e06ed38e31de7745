/**
 * Object schemas, from three places:
 * - the bundle scripts/gen-schemas.ts generates (Kubernetes OpenAPI v3 and
 *   the Flux CRDs it was made from, plus Flagger's published CRDs by
 *   scripts/gen-flagger-schemas.ts), committed;
 * - CustomResourceDefinitions found in the validated tree: they teach their
 *   kinds, and for their group and kind they are the truth (a
 *   gotk-components.yaml serves exactly its Flux version);
 * - Flux's CRDs provisioned in $SHIPMATE_CACHE/flux-crds (./crds.ts), for
 *   Flux kinds the bundle lacks (notification, source.extensions…).
 * Unknown fields are rejected as the API server's strict field validation
 * does. Only the groups an API server serves by itself are "known": an
 * unknown kind there is a mistake. Any other kind without a schema is not
 * checked and is a warning (a chart or controller may install its CRD).
 * Validators compile on first use of a kind.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import { crdSchema, type Json, OBJECT_META } from "./compact.ts";
import type { CustomResourceDefinition } from "./crds.ts";
import bundle from "./schemas.json" with { type: "json" };

const kinds: Record<string, string> = bundle.kinds;

export type SchemaVerdict =
  | { status: "ok" }
  /** A kind whose group is known (built in, or a CRD we have) but whose version/kind is not served: a real mistake. */
  | { status: "unknown-kind"; message: string }
  /** Build-time configuration (kustomize's own files), kubectl's List: never sent as such. */
  | { status: "unchecked" }
  /** A custom resource no schema we have defines: not checked, worth a warning. */
  | { status: "no-schema"; message: string }
  | { status: "invalid"; issues: SchemaIssue[] };

export interface SchemaIssue {
  /** Where in the object (keys and indexes), for finding the line. */
  path: (string | number)[];
  message: string;
}

/** Build-time configuration kinds (kustomize's own files), never sent to a cluster. */
const CONFIG_GROUPS = new Set(["kustomize.config.k8s.io", "config.kubernetes.io"]);

const groupOf = (apiVersion: string) => (apiVersion.includes("/") ? apiVersion.split("/")[0]! : "");
const isFluxGroup = (group: string) => group.endsWith(".fluxcd.io");
/** Groups of CRDs the bundle carries (Flux's, and Flagger's `flagger.app`): never built in. */
const isBundledCrdGroup = (group: string) => isFluxGroup(group) || group === "flagger.app";

/** The bundle's non-CRD groups: the `.k8s.io` groups of k8s.io/kubernetes (GA and beta). */
const BUNDLED_BUILTIN = new Set(
  Object.keys(kinds)
    .map((k) => groupOf(k.slice(0, k.lastIndexOf("/"))))
    .filter((g) => !isBundledCrdGroup(g)),
);

/**
 * The groups an API server serves by itself. A CRD's group must contain a
 * dot, so a group without one (core, apps, batch, extensions…) is built in;
 * a dotted group is built in only when Kubernetes itself serves it (not
 * gateway.networking.k8s.io, which is a CRD).
 */
const isBuiltinGroup = (group: string) => !group.includes(".") || BUNDLED_BUILTIN.has(group);

/** The apiVersions under which a built-in kind of this name is served, in any group. */
function servedAs(kind: string): string[] {
  return Object.keys(kinds)
    .filter((k) => k.endsWith(`/${kind}`) && isBuiltinGroup(groupOf(k.slice(0, -kind.length - 1))))
    .map((k) => k.slice(0, -kind.length - 1));
}

/** The served versions of one CRD, by version name, with their raw schemas. */
type CrdKind = Map<string, Json>;

function crdKinds(crds: readonly CustomResourceDefinition[]): Map<string, CrdKind> {
  const out = new Map<string, CrdKind>();
  for (const crd of crds) {
    const key = `${crd.spec.group}/${crd.spec.names.kind}`;
    if (out.has(key)) continue;
    const versions: CrdKind = new Map();
    for (const v of crd.spec.versions)
      if (v.served) versions.set(v.name, (v.schema?.openAPIV3Schema ?? { type: "object" }) as Json);
    out.set(key, versions);
  }
  return out;
}

export interface SchemaSources {
  /** CRDs defined in the validated tree. */
  tree?: readonly CustomResourceDefinition[];
  /** Flux's own CRDs (scripts/provision/70-flux-crds.sh), for Flux kinds the bundle lacks. */
  flux?: readonly CustomResourceDefinition[];
}

function pointerPath(pointer: string): (string | number)[] {
  return pointer
    .split("/")
    .slice(1)
    .map((p) => p.replace(/~1/g, "/").replace(/~0/g, "~"))
    .map((p) => (/^\d+$/.test(p) ? Number(p) : p));
}

/** JSON pointer of ajv (`/spec/containers/0/image`) as a person writes it (`spec.containers[0].image`). */
function fieldPath(pointer: string): string {
  return pointerPath(pointer).reduce<string>(
    (acc, p) => (typeof p === "number" ? `${acc}[${p}]` : acc ? `${acc}.${p}` : p),
    "",
  );
}

function describe(e: ErrorObject): string {
  const at = fieldPath(e.instancePath);
  const where = at ? `${at}: ` : "";
  switch (e.keyword) {
    case "additionalProperties":
      return `${at ? `${at}: ` : ""}unknown field "${(e.params as { additionalProperty: string }).additionalProperty}"`;
    case "required":
      return `${where}missing required field "${(e.params as { missingProperty: string }).missingProperty}"`;
    case "enum":
      return `${where}must be one of ${(e.params as { allowedValues: unknown[] }).allowedValues.map((v) => JSON.stringify(v)).join(", ")}`;
    default:
      return `${where}${e.message ?? e.keyword}`;
  }
}

/**
 * The errors a person should read: the deepest ones, without the umbrella
 * "must match a schema in anyOf" and without repeats.
 */
function summarize(errors: ErrorObject[]): SchemaIssue[] {
  const concrete = errors.filter((e) => e.keyword !== "anyOf" && e.keyword !== "oneOf" && e.keyword !== "if");
  // An int-or-string field that is neither reports both branches; one line says it.
  const byPath = new Map<string, ErrorObject[]>();
  for (const e of concrete) byPath.set(e.instancePath, [...(byPath.get(e.instancePath) ?? []), e]);
  const out = new Map<string, SchemaIssue>();
  const push = (e: ErrorObject, message: string) => {
    const path = pointerPath(e.instancePath);
    if (e.keyword === "additionalProperties")
      path.push((e.params as { additionalProperty: string }).additionalProperty);
    if (!out.has(message)) out.set(message, { path, message });
  };
  for (const [path, errs] of byPath) {
    const types = errs.filter((e) => e.keyword === "type").map((e) => (e.params as { type: string }).type);
    if (types.length > 1) push(errs[0]!, `${fieldPath(path) || "object"}: must be ${types.join(" or ")}`);
    for (const e of errs) if (e.keyword !== "type" || types.length === 1) push(e, describe(e));
  }
  return [...out.values()];
}

/** Drops nulls: the API server treats `field: null` (an empty YAML value) as unset. */
function withoutNulls(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(withoutNulls);
  if (v && typeof v === "object") {
    const out: Record<string, unknown> = {};
    for (const [k, x] of Object.entries(v)) if (x !== null) out[k] = withoutNulls(x);
    return out;
  }
  return v;
}

export class SchemaChecker {
  private readonly ajv: Ajv;
  private readonly compiled = new Map<string, ValidateFunction>();
  private readonly tree: Map<string, CrdKind>;
  private readonly flux: Map<string, CrdKind>;

  constructor(sources: SchemaSources = {}) {
    // Formats are dropped by the generator; the schemas are trusted, so strict mode's schema lint is off.
    this.ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
    this.ajv.addSchema({ $id: "k8s", definitions: bundle.definitions });
    this.tree = crdKinds(sources.tree ?? []);
    this.flux = crdKinds(sources.flux ?? []);
  }

  /** Every apiVersion/kind the bundle has a schema for. */
  static knownKinds(): string[] {
    return Object.keys(kinds);
  }

  check(object: { apiVersion: string; kind: string } & Record<string, unknown>): SchemaVerdict {
    const { apiVersion, kind } = object;
    const group = groupOf(apiVersion);
    const version = apiVersion.slice(apiVersion.indexOf("/") + 1);
    // `kind: List` is kubectl's client-side wrapper, never sent to the server as such.
    if (apiVersion === "v1" && kind === "List") return { status: "unchecked" };
    if (CONFIG_GROUPS.has(group)) return { status: "unchecked" };
    const notServed = (served: string[]): SchemaVerdict => ({
      status: "unknown-kind",
      message: `${kind} is not served as ${apiVersion} (served: ${served.join(", ")})`,
    });

    // A CRD in the tree is what the cluster will serve for its kind.
    const fromTree = this.tree.get(`${group}/${kind}`);
    if (fromTree) {
      const schema = fromTree.get(version);
      if (schema === undefined) return notServed([...fromTree.keys()].map((v) => `${group}/${v}`));
      return this.validate(`tree:${apiVersion}/${kind}`, object, () =>
        crdSchema(schema, `k8s#/definitions/${OBJECT_META}`),
      );
    }
    const definition = kinds[`${apiVersion}/${kind}`];
    if (definition)
      return this.validate(definition, object, () => ({ $ref: `k8s#/definitions/${definition}` }));
    const fromFlux = this.flux.get(`${group}/${kind}`);
    const fluxSchema = fromFlux?.get(version);
    if (fluxSchema !== undefined)
      return this.validate(`flux:${apiVersion}/${kind}`, object, () =>
        crdSchema(fluxSchema, `k8s#/definitions/${OBJECT_META}`),
      );

    if (isBuiltinGroup(group)) {
      const served = servedAs(kind);
      return served.length
        ? notServed(served)
        : { status: "unknown-kind", message: `unknown kind ${kind} in ${apiVersion}` };
    }
    // A Flux kind we know at other versions: Flux does not serve this one.
    const fluxServed = new Set([
      ...Object.keys(kinds)
        .filter((k) => k.startsWith(`${group}/`) && k.endsWith(`/${kind}`))
        .map((k) => k.slice(0, -kind.length - 1)),
      ...[...(fromFlux?.keys() ?? [])].map((v) => `${group}/${v}`),
    ]);
    if (isBundledCrdGroup(group) && fluxServed.size) return notServed([...fluxServed].sort());
    return {
      status: "no-schema",
      message: isFluxGroup(group)
        ? `no schema for ${kind} ${apiVersion} (neither a CRD in this tree nor Flux's CRDs define it), so it is not checked`
        : `no CRD in this tree defines ${kind} ${apiVersion}, so it is not checked (a chart or controller may install it)`,
    };
  }

  private validate(key: string, object: Record<string, unknown>, schema: () => object): SchemaVerdict {
    let validate = this.compiled.get(key);
    if (!validate) {
      validate = this.ajv.compile(schema());
      this.compiled.set(key, validate);
    }
    if (validate(withoutNulls(object))) return { status: "ok" };
    return { status: "invalid", issues: summarize(validate.errors ?? []) };
  }
}
