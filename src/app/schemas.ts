/**
 * What the App reads from GitHub, webhook payloads and REST answers alike,
 * parsed through these schemas (only the fields used; GitHub adds fields
 * freely). Each names the part of GitHub's documentation it follows.
 */
import { z } from "zod";

// A repository object as webhooks and `GET /installation/repositories` carry it (REST "Repositories").
export const Repository = z.object({
  name: z.string(),
  full_name: z.string(),
  owner: z.object({ login: z.string() }),
  clone_url: z.string(),
  default_branch: z.string(),
  archived: z.boolean().optional(),
});
export type Repository = z.infer<typeof Repository>;

const Installation = z.object({ id: z.number() });
const Sender = z.object({ login: z.string(), type: z.string() });

// Webhook `push` (webhook-events-and-payloads#push).
export const PushEvent = z.object({
  ref: z.string(),
  repository: Repository,
  installation: Installation,
  sender: Sender,
  commits: z
    .array(
      z.object({
        added: z.array(z.string()).optional(),
        modified: z.array(z.string()).optional(),
        removed: z.array(z.string()).optional(),
      }),
    )
    .default([]),
});

// Webhook `pull_request` (webhook-events-and-payloads#pull_request).
export const PullRequestEvent = z.object({
  action: z.string(),
  number: z.number(),
  pull_request: z.object({
    merged: z.boolean().nullish(),
    head: z.object({
      ref: z.string(),
      sha: z.string(),
      repo: z.object({ clone_url: z.string(), full_name: z.string() }).nullable(),
    }),
    base: z.object({ ref: z.string() }),
  }),
  repository: Repository,
  installation: Installation,
  sender: Sender,
});

// Webhook `issue_comment` (webhook-events-and-payloads#issue_comment).
export const IssueCommentEvent = z.object({
  action: z.string(),
  issue: z.object({ number: z.number() }),
  comment: z.object({ body: z.string(), user: Sender }),
  repository: Repository,
  installation: Installation,
  sender: Sender,
});

// Webhooks `registry_package` / `package` (webhook-events-and-payloads#registry_package).
export const PackageEvent = z.object({ installation: Installation });

// Webhooks `installation` / `installation_repositories` (webhook-events-and-payloads#installation).
export const InstallationEvent = z.object({ installation: Installation });

// REST "List repositories accessible to the app installation".
export const InstallationRepositories = z.object({
  total_count: z.number(),
  repositories: z.array(Repository),
});

// REST "List installations for the authenticated app".
export const Installations = z.array(Installation);

// REST "Get the authenticated app".
export const App = z.object({ slug: z.string().optional() }).nullable();

// REST "Get repository permissions for a user".
export const CollaboratorPermission = z.object({ permission: z.string() });

// REST "List repository issues" (pull requests are issues with `pull_request` set).
export const Issues = z.array(
  z.object({
    number: z.number(),
    body: z.string().nullish(),
    pull_request: z.unknown().optional(),
  }),
);

// REST "Create an issue" / "Update an issue".
export const Issue = z.object({ number: z.number(), html_url: z.string() });

// REST "List pull requests files".
export const PullFiles = z.array(
  z.object({ filename: z.string(), previous_filename: z.string().optional() }),
);

// REST "Create a check run".
export const CheckRun = z.object({ id: z.number() });

// REST "Create an installation access token for an app" (auth({ type: "installation" }) returns it as `token`).
export const InstallationToken = z.object({ token: z.string() });
