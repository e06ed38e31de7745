/**
 * CustomResourceDefinitions read from YAML: the ones a fleet repository
 * carries (they teach `validate` their kinds) and Flux's own, provisioned
 * into $SHIPMATE_CACHE/flux-crds by scripts/provision/70-flux-crds.sh (test
 * data for the agent's field coverage, and schemas `validate` uses when
 * present; never committed).
 */
import { existsSync, readdirSync, readFileSync, statSync } from "node:fs";
import { homedir } from "node:os";
import { join } from "node:path";
import {
  documentValue,
  type LimitRefusal,
  MAX_CRDS,
  MAX_DOCUMENTS,
  MAX_FILE_BYTES,
  parseDocumentsBounded,
  sizeRefusal,
} from "../config/limits.ts";

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

/** Bounds on a folder of CRDs (../config/limits.ts by default; tests pass small ones). */
export interface CrdBounds {
  maxFileBytes: number;
  maxDocuments: number;
  maxCrds: number;
}

const DEFAULT_CRD_BOUNDS: CrdBounds = {
  maxFileBytes: MAX_FILE_BYTES,
  maxDocuments: MAX_DOCUMENTS,
  maxCrds: MAX_CRDS,
};

/**
 * Every CRD in the folder's `*.yaml` files (those `only` accepts: CRD files
 * are named `<group>_<plural>.yaml`, and parsing all of Flux's costs a second
 * and a half); none when the folder does not exist. A file over the size or
 * document bound, or a document whose aliases expand too far, is skipped and
 * reported once through `refused`; past `maxCrds` the rest of the folder is
 * not read (one refusal naming the first file left out).
 */
export function readCrdDir(
  dir: string,
  only: (file: string) => boolean = () => true,
  refused: (r: LimitRefusal) => void = () => {},
  bounds: Partial<CrdBounds> = {},
): CustomResourceDefinition[] {
  const b = { ...DEFAULT_CRD_BOUNDS, ...bounds };
  if (!existsSync(dir)) return [];
  const out: CustomResourceDefinition[] = [];
  for (const file of readdirSync(dir).sort()) {
    if (!/\.ya?ml$/.test(file) || !only(file)) continue;
    const path = join(dir, file);
    if (out.length >= b.maxCrds) {
      refused({
        file: path,
        message: `more than ${b.maxCrds} CRDs in ${dir}, the bound; the rest are not read`,
      });
      break;
    }
    const tooBig = sizeRefusal(path, statSync(path).size, b.maxFileBytes);
    if (tooBig) {
      refused(tooBig);
      continue;
    }
    const text = readFileSync(path, "utf8");
    const { docs, counter, refusal } = parseDocumentsBounded(text, path, {
      maxBytes: b.maxFileBytes,
      maxDocuments: b.maxDocuments,
    });
    if (refusal) refused(refusal);
    for (const doc of docs) {
      const v = documentValue(doc, { file: path, text, counter });
      if (v.refusal) {
        refused(v.refusal);
        continue;
      }
      if (isCrd(v.value) && out.length < b.maxCrds) out.push(v.value);
    }
  }
  return out;
}
