/**
 * Writing the cluster folder into the fleet repository: a shallow clone,
 * the agent's files written (only those that differ), one commit, a push
 * guarded by a lease so a concurrent push is never overwritten (the whole
 * edit is redone on top of it instead). An empty repository and a branch
 * that does not exist yet both work: the first commit creates the branch.
 */
import { existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { GitError } from "../errors.ts";
import type { GitCredentials } from "../git/auth.ts";
import { type Identity, Workspace } from "../git/workspace.ts";
import { AGENT_DIR, withAgentResource, withSecretPatches } from "./layout.ts";

export interface CommitInput {
  cloneUrl: string;
  branch: string;
  credentials: GitCredentials;
  env: NodeJS.ProcessEnv;
  /** `clusters/<env>` */
  clusterPath: string;
  /** The agent folder's files, by name. */
  agentFiles: Map<string, string>;
  author: Identity;
  message: string;
  /**
   * The files to write and remove, given the checkout at the branch tip
   * (redone on top of a concurrent push); by default the agent folder.
   */
  plan?(dir: string): { write: Map<string, string>; remove: string[] };
  /** Called with the checkout once the branch is written and pushed (to render from it), before it is removed. */
  inspect?(dir: string, result: CommitResult): Promise<void>;
}

export interface CommitResult {
  /** The branch tip after bootstrap: the new commit, or the existing tip when nothing changed. */
  commit: string;
  /** Repository-relative paths written by this run. */
  changed: string[];
  pushed: boolean;
  /** How many times the push lost a race and the edit was redone. */
  attempts: number;
}

const MAX_ATTEMPTS = 4;

/** The repository-relative files bootstrap wants, given what the checkout holds now. */
export function plannedFiles(
  dir: string,
  clusterPath: string,
  agentFiles: Map<string, string>,
): Map<string, string> {
  const out = new Map<string, string>();
  const read = (rel: string) => {
    const full = join(dir, rel);
    return existsSync(full) ? readFileSync(full, "utf8") : undefined;
  };
  for (const [name, content] of agentFiles) {
    const rel = `${clusterPath}/${AGENT_DIR}/${name}`;
    // A kustomization someone extended (components, patches) keeps what they added.
    const existing = name === "kustomization.yaml" ? read(rel) : undefined;
    out.set(rel, existing === undefined ? content : withSecretPatches(existing, rel));
  }
  const clusterKs = `${clusterPath}/kustomization.yaml`;
  const current = read(clusterKs);
  if (current !== undefined) {
    const next = withAgentResource(current, clusterKs);
    if (next !== undefined) out.set(clusterKs, next);
  }
  return out;
}

/**
 * Reads the branch tip without changing anything: `look` gets a checkout of
 * it (an empty one when the branch does not exist yet); for plans and dry runs.
 */
export async function readBranch<T>(
  input: Pick<CommitInput, "cloneUrl" | "branch" | "credentials" | "env">,
  look: (dir: string, tip: string | undefined) => T,
): Promise<T> {
  const ws = await Workspace.clone(input.cloneUrl, undefined, {
    env: input.env,
    credentials: input.credentials,
  });
  try {
    const tip = await ws.fetch(input.branch);
    if (tip) await ws.resetTo(tip, input.branch);
    return look(ws.dir, tip);
  } finally {
    ws.dispose();
  }
}

export async function commitClusterFolder(input: CommitInput): Promise<CommitResult> {
  const ws = await Workspace.clone(input.cloneUrl, undefined, {
    env: input.env,
    credentials: input.credentials,
  });
  try {
    for (let attempt = 1; ; attempt++) {
      const tip = await ws.fetch(input.branch);
      const head = await ws.head();
      // On an existing branch work from its tip; a new branch starts from the default branch (or from nothing).
      if (tip) await ws.resetTo(tip, input.branch);
      else if (head) await ws.resetTo(head, input.branch);
      const changed: string[] = [];
      const planned = input.plan
        ? input.plan(ws.dir)
        : { write: plannedFiles(ws.dir, input.clusterPath, input.agentFiles), remove: [] };
      for (const [rel, content] of planned.write) {
        const full = join(ws.dir, rel);
        if (existsSync(full) && readFileSync(full, "utf8") === content) continue;
        mkdirSync(dirname(full), { recursive: true });
        writeFileSync(full, content);
        changed.push(rel);
      }
      for (const rel of planned.remove) {
        const full = join(ws.dir, rel);
        if (!existsSync(full)) continue;
        rmSync(full);
        changed.push(rel);
      }
      if (!changed.length && tip) {
        const result = { commit: tip, changed, pushed: false, attempts: attempt };
        await input.inspect?.(ws.dir, result);
        return result;
      }
      const commit = changed.length
        ? await ws.commit(input.message, changed, {
            author: input.author,
            committer: input.author,
            sign: false,
          })
        : (head as string);
      const outcome = await ws.push(commit, input.branch, tip ?? null);
      if (outcome.ok) {
        const result = { commit, changed, pushed: true, attempts: attempt };
        await input.inspect?.(ws.dir, result);
        return result;
      }
      if (attempt >= MAX_ATTEMPTS)
        throw new GitError(
          `push to ${input.branch}: the branch kept moving (${attempt} attempts): ${outcome.message}`,
        );
    }
  } finally {
    ws.dispose();
  }
}
