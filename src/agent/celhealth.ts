/**
 * Kustomization `spec.healthCheckExprs`: health of custom resources from
 * CEL expressions, with kustomize-controller's semantics (fluxcd/pkg
 * runtime/cel):
 *
 *  - an entry matches by the group of its `apiVersion` (the version is
 *    ignored) and its `kind`; an entry without `kind` covers the whole
 *    group, and one naming the kind wins over it; two entries for the same
 *    group and kind are a configuration error;
 *  - a stale object (`status.observedGeneration` ≠ `metadata.generation`,
 *    both integers) is InProgress before any expression runs;
 *  - then `inProgress`, `failed`, `current`, in that order: the first that
 *    is true decides; none true is InProgress;
 *  - the object's top-level fields are the expression's variables
 *    (`status`, `spec`, `metadata`…), JSON integers as CEL `int`;
 *  - an expression that does not compile stalls the Kustomization
 *    (InvalidCELExpression) before anything is applied; one that fails to
 *    evaluate (a field not there yet) leaves the object InProgress with the
 *    reason, so the wait times out naming it, as Flux documents.
 *
 * The CEL engine is @bufbuild/cel: maintained by Buf, tested against the
 * CEL specification's conformance suite, pure ECMAScript (no native
 * build), which matters for an agent image built from npm alone. It has the
 * standard macros (`has`, `all`, `exists`, `filter`, `map`) and the strings
 * extension; Flux's cel-go also enables optional types (`a.?b`), which this
 * engine does not parse: such an expression is refused as not compiling.
 */
import { type CelValue, celEnv, isCelError, parse, plan } from "@bufbuild/cel";
import { strings } from "@bufbuild/cel/ext";
import { z } from "zod";
import { ConfigError } from "../errors.ts";
import type { Health } from "./health.ts";

/** kustomize.toolkit.fluxcd.io/v1 CustomHealthCheck (fluxcd/pkg/apis/kustomize). */
export const HealthCheckExpr = z.strictObject({
  apiVersion: z.string().min(1),
  kind: z.string().optional(),
  current: z.string().min(1),
  inProgress: z.string().optional(),
  failed: z.string().optional(),
});
export type HealthCheckExpr = z.infer<typeof HealthCheckExpr>;

export class CelExpressionError extends ConfigError {
  override name = "CelExpressionError";
}

type Program = ReturnType<typeof plan>;
interface Evaluator {
  inProgress?: Program;
  failed?: Program;
  current: Program;
}

const env = celEnv({ funcs: strings });

function compile(expr: string, what: string): Program {
  try {
    return plan(env, parse(expr));
  } catch (err) {
    const first = (err as Error).message.split("\n")[0] ?? "";
    throw new CelExpressionError(`${what}: ${first}`);
  }
}

/** The group of an apiVersion ("" for the core group's "v1"). */
function groupOf(apiVersion: string): string {
  return apiVersion.includes("/") ? (apiVersion.split("/")[0] as string) : "";
}

/** JSON as CEL values: objects as maps, integers as `int`, as the Kubernetes unstructured form gives cel-go. */
function toCel(v: unknown): unknown {
  if (Array.isArray(v)) return v.map(toCel);
  if (v && typeof v === "object")
    return new Map(Object.entries(v as Record<string, unknown>).map(([k, x]) => [k, toCel(x)]));
  if (typeof v === "number" && Number.isInteger(v)) return BigInt(v);
  return v;
}

export class CelHealth {
  private readonly byKind = new Map<string, Evaluator>();

  /** Compiles every entry; throws CelExpressionError naming the entry at fault. */
  constructor(entries: readonly unknown[]) {
    entries.forEach((raw, i) => {
      const parsed = HealthCheckExpr.safeParse(raw);
      if (!parsed.success) {
        const issue = parsed.error.issues[0];
        throw new CelExpressionError(
          `healthCheckExprs[${i}]${issue?.path.length ? `.${issue.path.join(".")}` : ""}: ${issue?.message}`,
        );
      }
      const e = parsed.data;
      const key = `${groupOf(e.apiVersion)}/${e.kind ?? ""}`;
      if (this.byKind.has(key))
        throw new CelExpressionError(
          `duplicate custom health check for ${e.kind ?? "every kind"} of group "${groupOf(e.apiVersion)}" at healthCheckExprs[${i}]`,
        );
      this.byKind.set(key, {
        current: compile(e.current, `healthCheckExprs[${i}].current`),
        ...(e.inProgress ? { inProgress: compile(e.inProgress, `healthCheckExprs[${i}].inProgress`) } : {}),
        ...(e.failed ? { failed: compile(e.failed, `healthCheckExprs[${i}].failed`) } : {}),
      });
    });
  }

  get size(): number {
    return this.byKind.size;
  }

  private evaluatorFor(apiVersion: string, kind: string): Evaluator | undefined {
    const group = groupOf(apiVersion);
    return this.byKind.get(`${group}/${kind}`) ?? this.byKind.get(`${group}/`);
  }

  /** The object's health by its expressions; undefined when no entry covers its kind (kstatus decides then). */
  assess(obj: { apiVersion: string; kind: string } & Record<string, unknown>): Health | undefined {
    const ev = this.evaluatorFor(obj.apiVersion, obj.kind);
    if (!ev) return undefined;
    const meta = (obj.metadata ?? {}) as { generation?: unknown };
    const observed = ((obj.status ?? {}) as { observedGeneration?: unknown }).observedGeneration;
    if (Number.isInteger(observed) && Number.isInteger(meta.generation) && observed !== meta.generation)
      return { status: "InProgress", message: `observed generation ${observed} < ${meta.generation}` };
    const bindings = Object.fromEntries(Object.entries(obj).map(([k, v]) => [k, toCel(v)]));
    const steps: [Program | undefined, Health["status"], string][] = [
      [ev.inProgress, "InProgress", "inProgress expression is true"],
      [ev.failed, "Failed", "failed expression is true"],
      [ev.current, "Current", "current expression is true"],
    ];
    for (const [program, status, message] of steps) {
      if (!program) continue;
      let result: CelValue | Error;
      try {
        result = program(bindings as never);
      } catch (err) {
        result = err as Error;
      }
      if (isCelError(result) || result instanceof Error)
        return {
          status: "InProgress",
          message: `health check expression error: ${(result as Error).message}`,
        };
      if (typeof result !== "boolean")
        return { status: "InProgress", message: "health check expression did not return a boolean" };
      if (result) return { status, message };
    }
    return { status: "InProgress", message: "no health check expression is true yet" };
  }
}

/**
 * `spec.dependsOn[].readyExpr`: whether a dependency is ready by a CEL
 * expression over `self` (the Kustomization being reconciled) and `dep` (the
 * dependency), which replaces the built-in check (Flux's default, without
 * its AdditiveCELDependencyCheck feature gate). An expression that does not
 * compile throws CelExpressionError (terminal: Stalled InvalidCELExpression);
 * one that fails to evaluate or returns false means not ready, with why.
 */
export function dependencyReadyByExpr(
  expr: string,
  self: Record<string, unknown>,
  dep: Record<string, unknown>,
  depKey: string,
): { ready: true } | { ready: false; message: string } {
  let program: Program;
  try {
    program = plan(env, parse(expr));
  } catch (err) {
    const first = (err as Error).message.split("\n")[0] ?? "";
    throw new CelExpressionError(`failed to evaluate dependency ${depKey}: readyExpr: ${first}`);
  }
  let result: CelValue | Error;
  try {
    result = program({ self: toCel(self), dep: toCel(dep) } as never);
  } catch (err) {
    result = err as Error;
  }
  if (isCelError(result) || result instanceof Error)
    return { ready: false, message: `dependency '${depKey}' readyExpr failed: ${(result as Error).message}` };
  if (typeof result !== "boolean")
    throw new CelExpressionError(
      `failed to evaluate dependency ${depKey}: readyExpr does not return a boolean`,
    );
  return result
    ? { ready: true }
    : { ready: false, message: `dependency '${depKey}' is not ready according to readyExpr eval` };
}
