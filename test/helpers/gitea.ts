/**
 * Fleet repositories on the test Gitea (test/infra/gitea.ts): a repository
 * created and seeded on `main` in one call, the way the front-end tests need
 * one, instead of the create-clone-push-remove steps each file wrote out.
 */
import { TestClone } from "../forge/helpers.ts";
import type { GiteaRepo, GiteaServer } from "../infra/gitea.ts";

/** Commits `files` on `branch` (from `main`) of an existing repository; returns the new head SHA. */
export async function pushFiles(
  repo: GiteaRepo,
  files: Record<string, string>,
  branch = "main",
): Promise<string> {
  const clone = await TestClone.clone(repo.authedCloneUrl);
  try {
    return await clone.pushBranch(branch, files);
  } finally {
    await clone.remove();
  }
}

/** A new repository `name` on `gitea` whose `main` holds `files`; `head` is that commit. */
export async function giteaFleet(
  gitea: GiteaServer,
  name: string,
  files: Record<string, string>,
): Promise<GiteaRepo & { head: string }> {
  const repo = await gitea.createRepo(name);
  return { ...repo, head: await pushFiles(repo, files) };
}
