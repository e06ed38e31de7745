/**
 * Webhook payloads as GitHub sends them: a minimal instance of the event's
 * schema in GitHub's published description (`x-webhooks` in
 * @octokit/openapi), with the fields a test cares about filled in (each
 * object a test names is itself completed from its own schema), and the
 * result validated against that schema, so a test can never feed the App a
 * delivery GitHub would not send.
 */
import { loadGitHubSpec, type OpenApiSpec } from "../infra/openapi-forge.ts";

type Obj = Record<string, unknown>;
const isObject = (v: unknown): v is Obj => typeof v === "object" && v !== null && !Array.isArray(v);

/** Properties a value of `schema` may have, through $ref, allOf and the object branch of anyOf/oneOf. */
function properties(spec: OpenApiSpec, schema: unknown, depth = 0): Obj {
  const s = spec.resolve<Obj>(schema);
  if (!s || depth > 20) return {};
  const out: Obj = { ...((s.properties as Obj | undefined) ?? {}) };
  for (const key of ["allOf", "anyOf", "oneOf"])
    for (const part of (s[key] as unknown[] | undefined) ?? [])
      Object.assign(out, properties(spec, part, depth + 1));
  return out;
}

/** The item schema of an array schema, through $ref and anyOf/oneOf/allOf. */
function items(spec: OpenApiSpec, schema: unknown, depth = 0): unknown {
  const s = spec.resolve<Obj>(schema);
  if (!s || depth > 20) return undefined;
  if (s.items) return s.items;
  for (const key of ["allOf", "anyOf", "oneOf"])
    for (const part of (s[key] as unknown[] | undefined) ?? []) {
      const found = items(spec, part, depth + 1);
      if (found) return found;
    }
  return undefined;
}

/** A sample of `schema` with `over` laid on top, completing every object `over` introduces. */
function fill(spec: OpenApiSpec, schema: unknown, over: unknown): unknown {
  if (Array.isArray(over)) return over.map((v) => fill(spec, items(spec, schema) ?? {}, v));
  if (!isObject(over)) return over;
  const base = spec.sample(schema);
  const props = properties(spec, schema);
  const out: Obj = isObject(base) ? { ...base } : {};
  for (const [k, v] of Object.entries(over)) if (v !== undefined) out[k] = fill(spec, props[k] ?? {}, v);
  return out;
}

/** `name` is the description's key: `push`, `pull-request-closed`, `issue-comment-created`, … */
export function githubWebhookPayload(name: string, over: Obj): Obj {
  const spec = loadGitHubSpec();
  const pointer = `/x-webhooks/${name}/post/requestBody/content/application~1json/schema`;
  const schema = spec.at(pointer);
  if (!schema) throw new Error(`no webhook ${name} in GitHub's description`);
  const payload = fill(spec, schema, over) as Obj;
  const problems = spec.check(pointer, payload);
  if (problems.length)
    throw new Error(`test payload for ${name} violates GitHub's schema: ${problems.join("; ")}`);
  return payload;
}

/** A user object as webhooks carry it (`sender`, `owner`, `user`). */
export function webhookUser(login: string, id: number, type: "User" | "Bot" = "User"): Obj {
  return {
    login,
    id,
    node_id: `U_${id}`,
    type,
    site_admin: false,
    html_url: `https://github.example.test/${encodeURIComponent(login)}`,
  };
}
