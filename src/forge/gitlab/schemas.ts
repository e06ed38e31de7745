/**
 * GitLab REST responses we read, parsed so a GitLab that answers differently
 * fails loudly instead of silently. Field names follow GitLab's REST
 * documentation (doc/api/*.md), as github/ and gitea/ follow their specs.
 */
import { z } from "zod";

// GitLab REST: MergeRequestBasic / MergeRequest entities (doc/api/merge_requests.md)
export const User = z.object({ id: z.number(), username: z.string() }).loose();
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

// Error bodies (doc/api/rest/troubleshooting.md): `{"message": "404 Project Not Found"}`, a field → errors
// object for validation failures (`{"message": {"name": ["has already been taken"]}}`), or OAuth's
// `{"error": "insufficient_scope", "error_description": …, "scope": "api"}`.
export const ErrorBody = z
  .object({
    message: z.union([z.string(), z.array(z.string()), z.record(z.string(), z.unknown())]).optional(),
    error: z.string().optional(),
    error_description: z.string().optional(),
    scope: z.string().optional(),
  })
  .loose();

// doc/api/projects.md, "Get a single project" / "Create a project": the access levels of the token's
// user (doc/api/access_requests.md: 30 Developer, 40 Maintainer, 50 Owner) under `permissions`.
const Access = z.object({ access_level: z.number() }).loose().nullish();
export const Project = z
  .object({
    http_url_to_repo: z.string(),
    default_branch: z.string().nullish(),
    empty_repo: z.boolean().optional(),
    visibility: z.string(),
    permissions: z.object({ project_access: Access, group_access: Access }).loose().optional(),
  })
  .loose();
export type Project = z.infer<typeof Project>;

// doc/api/namespaces.md, "Get details on a namespace": `kind` is "user" or "group"
export const Namespace = z.object({ id: z.number(), kind: z.string(), full_path: z.string() }).loose();
