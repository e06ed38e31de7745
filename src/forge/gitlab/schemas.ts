/**
 * GitLab REST responses we read, parsed so a GitLab that answers differently
 * fails loudly instead of silently. Field names follow GitLab's REST
 * documentation (doc/api/*.md), as github/ and gitea/ follow their specs.
 */
import { z } from "zod";

// GitLab REST: MergeRequestBasic / MergeRequest entities (doc/api/merge_requests.md)
const User = z.object({ id: z.number(), username: z.string() }).loose();
export const MergeRequest = z
  .object({
    iid: z.number(),
    title: z.string(),
    description: z.string().nullable(),
    state: z.enum(["opened", "closed", "locked", "merged"]),
    source_branch: z.string(),
    target_branch: z.string(),
    web_url: z.string(),
    sha: z.string().nullable().optional(),
    labels: z.array(z.string()),
    merge_when_pipeline_succeeds: z.boolean().optional(),
    merged_by: User.nullable().optional(),
    closed_by: User.nullable().optional(),
  })
  .loose();
export type MergeRequest = z.infer<typeof MergeRequest>;
export const MergeRequests = z.array(MergeRequest);
// doc/api/commits.md, "List the statuses of a commit"
export const CommitStatuses = z.array(
  z.object({ name: z.string(), status: z.string(), target_url: z.string().nullable().optional() }).loose(),
);
// doc/api/users.md, "List users" (username filter)
export const Users = z.array(User);
