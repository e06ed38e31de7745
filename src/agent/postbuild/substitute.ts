/**
 * Kustomization `spec.postBuild`, the pure part: which variables win, and
 * substituting them into each object as Flux's kustomize-controller does:
 * the object is written out as YAML, `${…}` expanded in that text, and the
 * text read back, so quoting decides types (`replicas: ${n}` becomes a
 * number, `"${quote}${n}${quote}"` with `quote: '"'` stays a string). YAML
 * 1.1 on both sides, as Go's yaml reader: `on`, `yes`, `y` are booleans.
 */
import { parse, stringify } from "yaml";
import { z } from "zod";
import { ClusterError } from "../../errors.ts";
import { describeRef } from "../../kube/objects.ts";
import { KubeObject } from "../../kube/schema.ts";
import { envsubst, SubstitutionError } from "./envsubst.ts";

/** kustomize.toolkit.fluxcd.io/v1 PostBuild (api/v1/kustomization_types.go). */
export const PostBuild = z.strictObject({
  substitute: z.record(z.string(), z.string()).optional(),
  substituteFrom: z
    .array(
      z.strictObject({
        kind: z.enum(["ConfigMap", "Secret"]),
        name: z.string().min(1),
        optional: z.boolean().optional(),
      }),
    )
    .optional(),
  substituteStrategy: z.enum(["WithVariables", "Always"]).optional(),
});
export type PostBuild = z.infer<typeof PostBuild>;

export const SUBSTITUTE_ANNOTATION = "kustomize.toolkit.fluxcd.io/substitute";

/** The variable names Flux accepts (POSIX classes, ASCII): others fail the build. */
const VAR_NAME = /^[_A-Za-z][_A-Za-z0-9]*$/;
const VAR_NAME_FLUX = "^[_[:alpha:]][_[:alpha:][:digit:]]*$";

/**
 * Bounds (not in Flux) that keep one bad variable from turning into a
 * multi-megabyte object per reference: a value over 512 KiB is refused, and
 * so is an object whose substituted YAML passes 3 MiB (the API server's own
 * request limit).
 */
export const MAX_VALUE_BYTES = 512 * 1024;
export const MAX_OBJECT_BYTES = 3 * 1024 * 1024;

/** Retried on the next interval, as Flux does: a ConfigMap or variable may be added meanwhile. */
export class PostBuildError extends ClusterError {
  override name = "PostBuildError";
}

/** One source of variables in `substituteFrom` order; `data` already decoded to text. */
export interface VariableSource {
  kind: "ConfigMap" | "Secret";
  name: string;
  data: Record<string, string>;
}

/**
 * Flux's precedence: `substituteFrom` in list order, a later source
 * overriding an earlier one, then the inline `substitute` over all of them.
 * Newlines are dropped from every value, as Flux does.
 */
export function mergeVariables(
  sources: readonly VariableSource[],
  inline: Record<string, string> | undefined,
): Map<string, string> {
  const vars = new Map<string, string>();
  for (const s of sources) for (const [k, v] of Object.entries(s.data)) vars.set(k, v.replaceAll("\n", ""));
  for (const [k, v] of Object.entries(inline ?? {})) vars.set(k, v.replaceAll("\n", ""));
  for (const [k, v] of vars) {
    if (!VAR_NAME.test(k))
      throw new PostBuildError(`'${k}' var name is invalid, must match '${VAR_NAME_FLUX}'`);
    const size = Buffer.byteLength(v);
    if (size > MAX_VALUE_BYTES)
      throw new PostBuildError(`variable '${k}' is ${size} bytes, over the ${MAX_VALUE_BYTES}-byte limit`);
  }
  return vars;
}

export function substitutionDisabled(obj: KubeObject): boolean {
  return (
    obj.metadata.labels?.[SUBSTITUTE_ANNOTATION] === "disabled" ||
    obj.metadata.annotations?.[SUBSTITUTE_ANNOTATION] === "disabled"
  );
}

export interface SubstituteOptions {
  /** `substituteStrategy: Always`: expand even with no variable defined (defaults still apply). */
  always: boolean;
  /** Unset variables without a default fail (kustomize-controller's StrictPostBuildSubstitutions, on by default). */
  strict: boolean;
}

/**
 * Substitutes into every object that does not opt out. With no variable
 * defined and the `WithVariables` strategy, nothing is touched (Flux skips
 * the step entirely then).
 */
export function substituteObjects(
  objects: readonly KubeObject[],
  vars: ReadonlyMap<string, string>,
  opts: SubstituteOptions,
): KubeObject[] {
  if (vars.size === 0 && !opts.always) return [...objects];
  return objects.map((obj) => {
    if (substitutionDisabled(obj)) return obj;
    const where = describeRef({
      kind: obj.kind,
      namespace: obj.metadata.namespace ?? "",
      name: obj.metadata.name ?? "",
    });
    const text = stringify(obj, { version: "1.1", lineWidth: 0 });
    let out: string;
    try {
      out = envsubst(text, (name) => vars.get(name), { strict: opts.strict });
    } catch (err) {
      if (err instanceof SubstitutionError)
        throw new PostBuildError(`post build failed for ${where}: ${err.message}`);
      throw err;
    }
    if (Buffer.byteLength(out) > MAX_OBJECT_BYTES)
      throw new PostBuildError(
        `post build failed for ${where}: the substituted object is over ${MAX_OBJECT_BYTES} bytes`,
      );
    let value: unknown;
    try {
      value = parse(out, { version: "1.1", maxAliasCount: 100 });
    } catch (err) {
      // The YAML parser quotes the offending text, which may hold a substituted secret.
      throw new PostBuildError(
        `post build failed for ${where}: the substituted text is not valid YAML (${(err as { code?: string }).code ?? "parse error"})`,
      );
    }
    const parsed = KubeObject.safeParse(value);
    if (!parsed.success || !parsed.data.metadata.name)
      throw new PostBuildError(
        `post build failed for ${where}: the substituted text is not a Kubernetes object with apiVersion, kind and metadata.name`,
      );
    return parsed.data;
  });
}
