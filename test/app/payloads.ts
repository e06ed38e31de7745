/**
 * Webhook payloads as GitHub sends them: a minimal instance of the event's
 * schema in GitHub's published description (`x-webhooks` in
 * @octokit/openapi), with the fields a test cares about merged in, and the
 * result validated against that schema, so a test can never feed the App a
 * delivery GitHub would not send.
 */
import { loadGitHubSpec, merge } from "../infra/openapi-forge.ts";

/** `name` is the description's key: `push`, `pull-request-closed`, `issue-comment-created`, … */
export function githubWebhookPayload(name: string, over: Record<string, unknown>): Record<string, unknown> {
  const spec = loadGitHubSpec();
  const pointer = `/x-webhooks/${name}/post/requestBody/content/application~1json/schema`;
  const schema = spec.at(pointer);
  if (!schema) throw new Error(`no webhook ${name} in GitHub's description`);
  const payload = merge(spec.sample(schema), over) as Record<string, unknown>;
  const problems = spec.check(pointer, payload);
  if (problems.length)
    throw new Error(`test payload for ${name} violates GitHub's schema: ${problems.join("; ")}`);
  return payload;
}

/** A user object as webhooks carry it (`sender`, `owner`, `user`). */
export function webhookUser(
  login: string,
  id: number,
  type: "User" | "Bot" = "User",
): Record<string, unknown> {
  return {
    login,
    id,
    node_id: `U_${id}`,
    avatar_url: `https://avatars.example.test/u/${id}`,
    gravatar_id: "",
    url: `https://api.example.test/users/${login}`,
    html_url: `https://github.example.test/${login}`,
    followers_url: `https://api.example.test/users/${login}/followers`,
    following_url: `https://api.example.test/users/${login}/following{/other_user}`,
    gists_url: `https://api.example.test/users/${login}/gists{/gist_id}`,
    starred_url: `https://api.example.test/users/${login}/starred{/owner}{/repo}`,
    subscriptions_url: `https://api.example.test/users/${login}/subscriptions`,
    organizations_url: `https://api.example.test/users/${login}/orgs`,
    repos_url: `https://api.example.test/users/${login}/repos`,
    events_url: `https://api.example.test/users/${login}/events{/privacy}`,
    received_events_url: `https://api.example.test/users/${login}/received_events`,
    type,
    site_admin: false,
  };
}
