/**
 * Gitea API v1 responses we read, parsed so a Gitea (or Forgejo) that answers
 * differently fails loudly instead of silently. Field names follow Gitea's
 * swagger (templates/swagger/v1_json.tmpl, `definitions`).
 */
import { z } from "zod";

// definitions.User (only what we read)
export const User = z.object({ login: z.string() }).loose();

// definitions.Label
export const Label = z.object({ id: z.number(), name: z.string() }).loose();
export const Labels = z.array(Label);

// definitions.PRBranchInfo
const BranchInfo = z.object({ ref: z.string(), sha: z.string().optional() }).loose();

// definitions.PullRequest
export const PullRequest = z
  .object({
    number: z.number(),
    html_url: z.string(),
    title: z.string(),
    body: z.string().nullish(),
    state: z.enum(["open", "closed"]),
    merged: z.boolean().nullish(),
    merged_by: User.nullish(),
    labels: z.array(Label).nullish(),
    head: BranchInfo,
    base: BranchInfo,
  })
  .loose();
export type PullRequest = z.infer<typeof PullRequest>;
export const PullRequests = z.array(PullRequest);

// definitions.CommitStatus: note each status carries `status`, the combined object `state`.
const CommitStatus = z
  .object({ context: z.string(), status: z.string(), target_url: z.string().nullish() })
  .loose();

// definitions.CombinedStatus; `state` is empty when the commit has no status at all.
export const CombinedStatus = z
  .object({ sha: z.string(), state: z.string(), statuses: z.array(CommitStatus).nullish() })
  .loose();

// routers/api/v1: errors come as {"message": "...", "url": "..."} (APIError)
export const ApiError = z.object({ message: z.string().optional() }).loose();

// definitions.Repository with its definitions.Permission (GET /repos/{owner}/{repo}, POST /user/repos, /orgs/{org}/repos)
export const Repository = z
  .object({
    clone_url: z.string(),
    default_branch: z.string(),
    empty: z.boolean().optional(),
    private: z.boolean(),
    permissions: z.object({ push: z.boolean() }).loose().nullish(),
  })
  .loose();
export type Repository = z.infer<typeof Repository>;
