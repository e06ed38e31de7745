/** Deliveries the App tests send, each built from and checked against GitHub's webhook schemas. */
import { githubWebhookPayload, webhookUser } from "./payloads.ts";

export interface RepoRef {
  owner: string;
  name: string;
  cloneUrl: string;
}

const INSTALLATION = { id: 7, node_id: "MDIzOkludGVncmF0aW9uSW5zdGFsbGF0aW9uNw==" };

function repository(r: RepoRef) {
  return {
    id: 100,
    name: r.name,
    full_name: `${r.owner}/${r.name}`,
    owner: webhookUser(r.owner, 1),
    clone_url: r.cloneUrl,
    default_branch: "main",
    archived: false,
  };
}

export function registryPackagePublished(repo: RepoRef, image: string, tag: string) {
  const [, namespace, name] = image.split("/");
  return githubWebhookPayload("registry-package-published", {
    action: "published",
    installation: INSTALLATION,
    repository: repository(repo),
    sender: webhookUser("ci-bot", 3),
    registry_package: {
      name,
      namespace,
      package_type: "CONTAINER",
      owner: webhookUser(namespace ?? "team", 4),
      package_version: {
        id: 9,
        name: `sha256:${"c".repeat(64)}`,
        version: `sha256:${"c".repeat(64)}`,
        description: "",
        summary: "",
        html_url: "https://github.example.test/packages/9",
        metadata: [],
        package_files: [],
        installation_command: `docker pull ${image}:${tag}`,
        package_url: `${image}:${tag}`,
        container_metadata: {
          tag: { name: tag, digest: `sha256:${"c".repeat(64)}` },
          labels: {},
          manifest: {},
        },
      },
      registry: {
        about_url: "",
        name: "registry",
        type: "docker",
        url: `https://${image.split("/")[0]}`,
        vendor: "test",
      },
    },
  });
}

export function push(repo: RepoRef, files: string[], opts: { sender?: string; ref?: string } = {}) {
  const sender = opts.sender ?? "alice";
  const email = `${sender.replace(/[[\]]/g, "")}@example.test`;
  const commit = {
    id: "a".repeat(40),
    tree_id: "b".repeat(40),
    distinct: true,
    message: "change policies",
    timestamp: "2026-01-01T00:00:00Z",
    url: "https://github.example.test/commit",
    author: { name: sender, email },
    committer: { name: sender, email },
    added: [],
    removed: [],
    modified: files,
  };
  return githubWebhookPayload("push", {
    ref: opts.ref ?? "refs/heads/main",
    installation: INSTALLATION,
    repository: repository(repo),
    sender: webhookUser(sender, 5, sender.endsWith("[bot]") ? "Bot" : "User"),
    pusher: { name: sender, email },
    commits: [commit],
    head_commit: commit,
  });
}

function pullRequest(
  repo: RepoRef,
  number: number,
  head: string,
  sha: string,
  merged: boolean,
  state: "open" | "closed",
) {
  return {
    number,
    state,
    merged,
    merged_at: merged ? "2026-01-02T00:00:00Z" : null,
    title: "change",
    head: {
      ref: head,
      sha,
      label: `${repo.owner}:${head}`,
      repo: repository(repo),
      user: webhookUser(repo.owner, 1),
    },
    base: {
      ref: "main",
      sha: "0".repeat(40),
      label: `${repo.owner}:main`,
      repo: repository(repo),
      user: webhookUser(repo.owner, 1),
    },
  };
}

export function pullRequestClosed(repo: RepoRef, number: number, head: string, merged: boolean) {
  return githubWebhookPayload("pull-request-closed", {
    action: "closed",
    number,
    installation: INSTALLATION,
    repository: repository(repo),
    sender: webhookUser("alice", 2),
    pull_request: pullRequest(repo, number, head, "d".repeat(40), merged, "closed"),
  });
}

export function pullRequestOpened(repo: RepoRef, number: number, head: string, sha: string) {
  return githubWebhookPayload("pull-request-opened", {
    action: "opened",
    number,
    installation: INSTALLATION,
    repository: repository(repo),
    sender: webhookUser("alice", 2),
    pull_request: pullRequest(repo, number, head, sha, false, "open"),
  });
}

export function issueComment(
  repo: RepoRef,
  number: number,
  body: string,
  login = "alice",
  type: "User" | "Bot" = "User",
) {
  return githubWebhookPayload("issue-comment-created", {
    action: "created",
    installation: INSTALLATION,
    repository: repository(repo),
    sender: webhookUser(login, 6, type),
    issue: { number, title: "dashboard", user: webhookUser("shipmate[bot]", 7, "Bot") },
    comment: { body, user: webhookUser(login, 6, type) },
  });
}

export function installationRepositoriesAdded(repo: RepoRef) {
  return githubWebhookPayload("installation-repositories-added", {
    action: "added",
    installation: INSTALLATION,
    sender: webhookUser("alice", 2),
    repositories_added: [
      { id: 100, node_id: "R_100", name: repo.name, full_name: `${repo.owner}/${repo.name}`, private: true },
    ],
    repositories_removed: [],
    repository_selection: "selected",
  });
}

export function starCreated(repo: RepoRef) {
  return githubWebhookPayload("star-created", {
    action: "created",
    installation: INSTALLATION,
    repository: repository(repo),
    sender: webhookUser("fan", 8),
    starred_at: "2026-01-01T00:00:00Z",
  });
}
