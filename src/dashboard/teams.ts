/**
 * Which team owns which app, as a fleet records it: `shipmate init --team`
 * writes the teams and each app's owner into the scaffold manifest
 * (`.shipmate/scaffold.json`, src/scaffold/files.ts) of every repository of
 * the fleet — the monorepo, the platform and team repositories of
 * repo-per-team, each environment's repository. A fleet without one has no
 * teams, and the matrix filters by name only.
 */
import { existsSync } from "node:fs";
import { join } from "node:path";
import { describeError } from "../errors.ts";
import { MANIFEST_PATH, readManifest, type ScaffoldManifest } from "../scaffold/files.ts";

/** App → team, for the apps the manifest gives an owner. */
export function ownersOf(spec: Pick<ScaffoldManifest["spec"], "apps" | "teams">): Map<string, string> {
  const out = new Map<string, string>();
  for (const a of spec.apps) if (a.team && spec.teams.includes(a.team)) out.set(a.name, a.team);
  return out;
}

/** The owners recorded in a checkout; a manifest that does not parse is a problem line, not a failure. */
export async function readOwners(dir: string): Promise<{ owners: Map<string, string>; problem?: string }> {
  if (!existsSync(join(dir, MANIFEST_PATH))) return { owners: new Map() };
  try {
    return { owners: ownersOf((await readManifest(dir)).spec) };
  } catch (err) {
    return { owners: new Map(), problem: `teams: ${describeError(err)}` };
  }
}
