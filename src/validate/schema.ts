/**
 * Object schemas for Kubernetes built-in kinds and the Flux kinds, from the
 * bundle scripts/gen-schemas.ts generates (Kubernetes OpenAPI v3 and Flux
 * CRDs, unknown fields rejected as the API server's strict field validation
 * does). Validators compile on first use of a kind.
 */
import { Ajv, type ErrorObject, type ValidateFunction } from "ajv";
import bundle from "./schemas.json" with { type: "json" };

const kinds: Record<string, string> = bundle.kinds;

export type SchemaVerdict =
  | { status: "ok" }
  /** A kind whose group we know but whose version/kind is not served: a real mistake. */
  | { status: "unknown-kind"; message: string }
  /** A custom resource of a group we have no schema for: not checked. */
  | { status: "unchecked" }
  | { status: "invalid"; issues: SchemaIssue[] };

export interface SchemaIssue {
  /** Where in the object (keys and indexes), for finding the line. */
  path: (string | number)[];
  message: string;
}

/** Build-time configuration kinds (kustomize's own files), never sent to a cluster. */
const CONFIG_GROUPS = new Set(["kustomize.config.k8s.io", "config.kubernetes.io"]);

/** Groups whose every served kind is in the bundle (built-in Kubernetes, Flux). */
function isKnownGroup(group: string): boolean {
  if (CONFIG_GROUPS.has(group)) return false;
  return group === "" || !group.includes(".") || group.endsWith(".k8s.io") || group.endsWith(".fluxcd.io");
}

/** The apiVersions under which a kind of this name is served, in any group. */
function servedAs(kind: string): string[] {
  return Object.keys(kinds)
    .filter((k) => k.endsWith(`/${kind}`))
    .map((k) => k.slice(0, -kind.length - 1));
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

  constructor() {
    // Formats are dropped by the generator; the schemas are trusted, so strict mode's schema lint is off.
    this.ajv = new Ajv({ allErrors: true, strict: false, validateSchema: false });
    this.ajv.addSchema({ $id: "k8s", definitions: bundle.definitions });
  }

  /** Every apiVersion/kind the bundle has a schema for. */
  static knownKinds(): string[] {
    return Object.keys(kinds);
  }

  check(object: { apiVersion: string; kind: string } & Record<string, unknown>): SchemaVerdict {
    const { apiVersion, kind } = object;
    const slash = apiVersion.indexOf("/");
    const group = slash < 0 ? "" : apiVersion.slice(0, slash);
    // `kind: List` is kubectl's client-side wrapper, never sent to the server as such.
    if (apiVersion === "v1" && kind === "List") return { status: "unchecked" };
    const definition = kinds[`${apiVersion}/${kind}`];
    if (!definition) {
      if (!isKnownGroup(group)) return { status: "unchecked" };
      const served = servedAs(kind);
      return {
        status: "unknown-kind",
        message: served.length
          ? `${kind} is not served as ${apiVersion} (served: ${served.join(", ")})`
          : `unknown kind ${kind} in ${apiVersion}`,
      };
    }
    let validate = this.compiled.get(definition);
    if (!validate) {
      validate = this.ajv.compile({ $ref: `k8s#/definitions/${definition}` });
      this.compiled.set(definition, validate);
    }
    if (validate(withoutNulls(object))) return { status: "ok" };
    return { status: "invalid", issues: summarize(validate.errors ?? []) };
  }
}
