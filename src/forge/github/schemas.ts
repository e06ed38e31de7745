/**
 * The parts of GitHub REST/GraphQL responses the provider reads. Octokit
 * types responses at compile time only; these check them at run time.
 * Names follow GitHub's OpenAPI description (components/schemas/…).
 */
import { z } from "zod";

// components/schemas/pull-request-simple (list) and pull-request (create/update)
export const PullRequest = z
  .object({
    number: z.number(),
    node_id: z.string(),
    html_url: z.string(),
    state: z.enum(["open", "closed"]),
    title: z.string(),
    body: z.string().nullable(),
    merged_at: z.string().nullable(),
    labels: z.array(z.object({ name: z.string() }).loose()),
    head: z.object({ ref: z.string(), sha: z.string() }).loose(),
    base: z.object({ ref: z.string() }).loose(),
    auto_merge: z.object({}).loose().nullable().optional(),
    merged_by: z.object({ login: z.string() }).loose().nullable().optional(),
  })
  .loose();
export type PullRequest = z.infer<typeof PullRequest>;
export const PullRequests = z.array(PullRequest);

// components/schemas/combined-commit-status
export const CombinedStatus = z
  .object({
    sha: z.string(),
    statuses: z.array(
      z
        .object({
          context: z.string(),
          state: z.enum(["error", "failure", "pending", "success"]),
          target_url: z.string().nullable(),
        })
        .loose(),
    ),
  })
  .loose();

// GET /repos/{owner}/{repo}/commits/{ref}/check-runs: {total_count, check_runs: check-run[]}
export const CheckRuns = z
  .object({
    total_count: z.number(),
    check_runs: z.array(
      z
        .object({
          name: z.string(),
          status: z.string(),
          conclusion: z.string().nullable(),
          html_url: z.string().nullable(),
        })
        .loose(),
    ),
  })
  .loose();

// components/schemas/basic-error and validation-error (error bodies)
export const ErrorBody = z
  .object({
    message: z.string().optional(),
    errors: z
      .array(
        z.union([
          z.string(),
          z.object({ message: z.string().optional(), code: z.string().optional() }).loose(),
        ]),
      )
      .optional(),
  })
  .loose();

// GraphQL: enablePullRequestAutoMerge payload (schema.graphql, EnablePullRequestAutoMergePayload)
export const EnableAutoMerge = z.object({
  enablePullRequestAutoMerge: z
    .object({
      pullRequest: z
        .object({ autoMergeRequest: z.object({ enabledAt: z.string().nullable() }).nullable() })
        .nullable(),
    })
    .nullable(),
});

// components/schemas/full-repository (GET /repos/{owner}/{repo}) and repository (POST …/repos)
export const Repository = z
  .object({
    clone_url: z.string(),
    default_branch: z.string(),
    private: z.boolean(),
    size: z.number().optional(),
    permissions: z.object({ push: z.boolean() }).loose().optional(),
  })
  .loose();
export type Repository = z.infer<typeof Repository>;

// components/schemas/private-user / public-user (GET /user)
export const User = z.object({ login: z.string() }).loose();
