/**
 * The scan use case: the one engine function behind `shipmate scan` and the
 * Action's `scan`. The policies are read once (src/config/policy-set.ts's
 * coverage rule decides which a scan covers), named policies are checked
 * against them, and the registry is asked once per image repository.
 */
import type { LimitRefusal } from "../config/limits.ts";
import { loadRunPolicies, type PolicySet, type PolicySource } from "../config/policy-set.ts";
import { UsageError } from "../errors.ts";
import { type ScanOptions, type ScanReport, scanPolicies } from "../scan/index.ts";

export interface ScanRun {
  /** The checkout (or folder) the policies are read in; refused files are reported relative to it. */
  root: string;
  policies: PolicySource;
  /** Only these policies (`namespace:name`); each must be one the run reads. */
  only?: readonly string[];
  scan?: Omit<ScanOptions, "only" | "env">;
  env: NodeJS.ProcessEnv;
  /** Told of each policy file refused by a bound (the policies beside it are scanned), before anything else. */
  onRefused?: (refusal: LimitRefusal) => void;
}

export interface ScanRunResult {
  policies: PolicySet;
  report: ScanReport;
}

/** A run with nothing to scan, or asked for a policy it does not read: told apart by class. */
export class NothingToScanError extends UsageError {
  override name = "NothingToScanError";
}

/** Where the policies were looked for, as a person names it. */
function where(source: PolicySource): string {
  if (source.kind === "dir") return ` in ${source.dir}`;
  return source.path !== undefined ? ` in ${source.path}` : "";
}

export async function runScan(run: ScanRun): Promise<ScanRunResult> {
  const policies = await loadRunPolicies(run.root, run.policies);
  for (const r of policies.refused) run.onRefused?.(r);
  const unknown = (run.only ?? []).filter((id) => !policies.candidates.some((p) => p.id === id));
  if (unknown.length > 0)
    throw new NothingToScanError(`policy ${unknown[0]}: no such policy${where(run.policies)}`);
  if (policies.candidates.length === 0)
    throw new NothingToScanError(`no image policies found${where(run.policies)}`);
  const report = await scanPolicies(policies.candidates, {
    ...run.scan,
    env: run.env,
    ...(run.only?.length ? { only: [...run.only] } : {}),
  });
  return { policies, report };
}
