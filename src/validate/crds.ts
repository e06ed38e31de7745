/**
 * CustomResourceDefinitions read from YAML: the ones a fleet repository
 * carries (they teach `validate` their kinds) and Flux's own, provisioned
 * into $SHIPMATE_CACHE/flux-crds by scripts/provision/70-flux-crds.sh (test
 * data for the agent's field coverage, and schemas `validate` uses when
 * present; never committed).
 */
import { existsSync, readdirSync, readFileSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import { parseAllDocuments } from "yaml";

/** The schema node of a CRD version, as JSON. */
export type CrdSchema = Record<string, unknown>;

export interface CrdVersion {
  name: string;
  served: boolean;
  schema?: { openAPIV3Schema?: CrdSchema };
}

export interface CustomResourceDefinition {
  apiVersion: string;
  kind: "CustomResourceDefinition";
  spec: { group: string; names: { kind: string }; versions: CrdVersion[] };
}

export function isCrd(v: unknown): v is CustomResourceDefinition {
  const o = v as CustomResourceDefinition | null;
  return (
    !!o &&
    typeof o === "object" &&
    o.kind === "CustomResourceDefinition" &&
    typeof o.apiVersion === "string" &&
    o.apiVersion.startsWith("apiextensions.k8s.io/") &&
    typeof o.spec?.group === "string" &&
    typeof o.spec?.names?.kind === "string" &&
    Array.isArray(o.spec?.versions)
  );
}

/** Where scripts/provision/70-flux-crds.sh puts Flux's CRDs ($SHIPMATE_FLUX_CRDS overrides). */
export function fluxCrdDir(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SHIPMATE_FLUX_CRDS) return env.SHIPMATE_FLUX_CRDS;
  const cache = env.SHIPMATE_CACHE ?? join(env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shipmate");
  return join(cache, "flux-crds");
}

/**
 * Every CRD in the folder's `*.yaml` files (those `only` accepts: CRD files
 * are named `<group>_<plural>.yaml`, and parsing all of Flux's costs a second
 * and a half); none when the folder does not exist.
 */
export function readCrdDir(
  dir: string,
  only: (file: string) => boolean = () => true,
): CustomResourceDefinition[] {
  if (!existsSync(dir)) return [];
  const out: CustomResourceDefinition[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(file) || !only(file)) continue;
    for (const doc of parseAllDocuments(readFileSync(join(dir, file), "utf8"))) {
      const v = doc.toJS() as unknown;
      if (isCrd(v)) out.push(v);
    }
  }
  return out;
}
