/**
 * Kustomization `spec.postBuild`, the I/O part: reads the ConfigMaps and
 * Secrets of `substituteFrom` from the Kustomization's own namespace and
 * substitutes (./substitute.ts). Secret-derived values are returned so the
 * caller can keep them out of every message (Flux masks them in apply
 * errors, which the API server may echo).
 */
import { ConfigError, registerSecret } from "../../errors.ts";
import { apiError, type KubeClient } from "../../kube/client.ts";
import type { KubeObject } from "../../kube/schema.ts";
import {
  mergeVariables,
  PostBuild,
  PostBuildError,
  substituteObjects,
  type VariableSource,
} from "./substitute.ts";

export { PostBuild, PostBuildError } from "./substitute.ts";

export interface PostBuildResult {
  objects: KubeObject[];
  /** Values read from Secrets: never to be printed. */
  sensitive: string[];
}

function parsePostBuild(raw: unknown): PostBuild {
  const parsed = PostBuild.safeParse(raw);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(
      `invalid spec.postBuild${issue?.path.length ? `.${issue.path.join(".")}` : ""}: ${issue?.message}`,
    );
  }
  return parsed.data;
}

/** The `substituteFrom` sources in order; a missing optional one defines nothing. */
async function loadSources(
  client: KubeClient,
  namespace: string,
  postBuild: PostBuild,
): Promise<{ sources: VariableSource[]; sensitive: string[] }> {
  const sources: VariableSource[] = [];
  const sensitive: string[] = [];
  for (const ref of postBuild.substituteFrom ?? []) {
    const plural = ref.kind === "ConfigMap" ? "configmaps" : "secrets";
    const what = `${ref.kind}/${namespace}/${ref.name}`;
    const res = await client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(ref.name)}`,
    });
    if (res.code === 404) {
      if (ref.optional) continue;
      throw new PostBuildError(
        `substitute from '${what}': not found (set optional: true to tolerate its absence)`,
      );
    }
    if (res.code !== 200) throw apiError(`substitute from '${what}'`, res.code, res.body);
    const body = res.body as { data?: Record<string, string> | null };
    const data: Record<string, string> = {};
    for (const [k, v] of Object.entries(body.data ?? {})) {
      if (ref.kind === "Secret") {
        const value = Buffer.from(v, "base64").toString("utf8");
        data[k] = value;
        sensitive.push(value);
        // Flux masks these in apply errors, which the API server may echo; here no message carries them.
        registerSecret(value.replaceAll("\n", ""));
      } else data[k] = v;
    }
    sources.push({ kind: ref.kind, name: ref.name, data });
  }
  return { sources, sensitive };
}

/** Applies `spec.postBuild` to the built objects; objects come back unchanged when it is absent. */
export async function runPostBuild(
  client: KubeClient,
  namespace: string,
  rawPostBuild: unknown,
  objects: KubeObject[],
  opts: { strict?: boolean } = {},
): Promise<PostBuildResult> {
  if (rawPostBuild === undefined || rawPostBuild === null) return { objects, sensitive: [] };
  const postBuild = parsePostBuild(rawPostBuild);
  const { sources, sensitive } = await loadSources(client, namespace, postBuild);
  const vars = mergeVariables(sources, postBuild.substitute);
  return {
    objects: substituteObjects(objects, vars, {
      always: postBuild.substituteStrategy === "Always",
      strict: opts.strict ?? true,
    }),
    sensitive,
  };
}
