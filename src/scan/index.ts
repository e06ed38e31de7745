/**
 * The scan: for each policy, the newest image its rules allow. Policies that
 * watch the same repository share one tag listing, streamed page by page into
 * every policy's selector, so memory stays bounded and a steady-state rescan
 * costs one request per repository (see docs/registry.md for the cost model).
 */
import type { Policy } from "../config/types.ts";
import { describeError, RegistryError } from "../errors.ts";
import {
  type CompiledSelectionPolicy,
  compileSelectionPolicy,
  createSelector,
  type Selection,
  selectLatest,
  type TagCandidate,
} from "../policy/index.ts";
import {
  type CredentialProvider,
  countRequests,
  type ImageReference,
  parseReference,
  RegistryClient,
  repositoryName,
} from "../registry/index.ts";
import type { PolicyResult, ScanReport } from "./types.ts";

export type { PolicyResult, ScanReport } from "./types.ts";

export interface ScanOptions {
  /** A client to reuse (its cache, credentials and counters); otherwise one is made from the options below. */
  client?: RegistryClient;
  cacheDir?: string | false;
  insecureRegistries?: string[];
  /** Where registry credentials come from (default: `SHIPMATE_REGISTRY_*` variables, then Docker's config). */
  credentials?: CredentialProvider;
  /** Resolve the selected tag's digest for every policy, not only those that reflect digests. */
  digests?: boolean;
  /** `os/arch[/variant]` inside image indexes (default linux/amd64; a policy's own platform wins). */
  platform?: string;
  /** Repositories scanned at once (the client also limits requests per registry). */
  concurrency?: number;
  /** Only the policies with these ids (`namespace:name`). */
  only?: string[];
  now?: () => number;
  env?: NodeJS.ProcessEnv;
}

/** Policies sharing an image repository, listed once. */
interface RepoGroup {
  ref: ImageReference;
  policies: { policy: Policy; compiled: CompiledSelectionPolicy; index: number }[];
}

/** How many build times to fetch at once while looking for the newest acceptable tag. */
const ENRICH_BATCH = 8;

function groupByRepository(policies: Policy[]): RepoGroup[] {
  const groups = new Map<string, RepoGroup>();
  policies.forEach((policy, index) => {
    const ref = parseReference(policy.image);
    const key = repositoryName(ref);
    let group = groups.get(key);
    if (!group) {
      group = { ref: { registry: ref.registry, repository: ref.repository }, policies: [] };
      groups.set(key, group);
    }
    group.policies.push({ policy, compiled: compileSelectionPolicy(policy.selection), index });
  });
  return [...groups.values()];
}

async function forEachLimited<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) await work(items[next++] as T);
  });
  await Promise.all(runners);
}

export async function scanPolicies(policies: Policy[], opts: ScanOptions = {}): Promise<ScanReport> {
  const selected = opts.only ? policies.filter((p) => opts.only!.includes(p.id)) : policies;
  const insecure = [
    ...(opts.insecureRegistries ?? []),
    ...selected.filter((p) => p.insecure).map((p) => parseReference(p.image).registry),
  ];
  const client =
    opts.client ??
    new RegistryClient({
      cacheDir: opts.cacheDir,
      insecureRegistries: insecure,
      ...(opts.platform ? { platform: opts.platform } : {}),
      ...(opts.credentials ? { credentials: opts.credentials } : {}),
      ...(opts.env ? { env: opts.env } : {}),
    });
  const now = opts.now ?? Date.now;
  const groups = groupByRepository(selected);
  client.plan(groups.map((g) => g.ref));

  const results: PolicyResult[] = new Array(selected.length);
  const byRepository: Record<string, number> = {};
  await forEachLimited(groups, opts.concurrency ?? 16, async (group) => {
    const { requests } = await countRequests(async () => {
      try {
        const selections = await scanGroup(client, group, now);
        for (const [i, member] of group.policies.entries()) {
          results[member.index] = await finish(client, group.ref, member.policy, selections[i]!, opts);
        }
      } catch (err) {
        for (const member of group.policies) results[member.index] = failure(member.policy, err);
      }
    });
    byRepository[repositoryName(group.ref)] = requests;
  });
  if (!opts.client) await client.close();
  const stats = client.stats();
  return { results, requests: { total: stats.total, byRegistry: stats.byRegistry, byRepository } };
}

function failure(policy: Policy, err: unknown): PolicyResult {
  if (err instanceof RegistryError || !(err instanceof Error))
    return { policy, ok: false, reason: "registry-error", message: describeError(err) };
  throw err;
}

/** Lists the repository once (unless every policy follows a single tag) and decides each policy. */
async function scanGroup(client: RegistryClient, group: RepoGroup, now: () => number): Promise<Selection[]> {
  const listing = group.policies.filter((m) => m.compiled.followTag === undefined);
  const selectors = listing.map((m) => createSelector(m.compiled));
  if (listing.length > 0) {
    for await (const page of client.tagPages(group.ref)) for (const s of selectors) s.add(page);
  }
  const out: Selection[] = [];
  for (const member of group.policies) {
    const followTag = member.compiled.followTag;
    if (followTag !== undefined) {
      out.push(await followDigest(client, group.ref, followTag));
      continue;
    }
    const selector = selectors[listing.indexOf(member)]!;
    if (!member.compiled.needsBuildTimes) {
      out.push(selector.result());
      continue;
    }
    const premature = selector.result();
    if (!premature.ok && premature.reason !== "no-build-time") {
      out.push(premature);
      continue;
    }
    out.push(await selectByBuildTime(client, group.ref, member, selector.candidates(), now()));
  }
  return out;
}

/** The digest strategy: one HEAD for the followed tag; a missing tag is "no tags", not a failure of the scan. */
async function followDigest(client: RegistryClient, ref: ImageReference, tag: string): Promise<Selection> {
  try {
    const resolved = await client.resolveDigest({ ...ref, tag }, { platform: false });
    return { ok: true, tag, digest: resolved.digest };
  } catch (err) {
    if (err instanceof RegistryError && err.status === 404)
      return {
        ok: false,
        reason: "tag-not-found",
        message: `tag "${tag}" does not exist in ${ref.repository}`,
      };
    throw err;
  }
}

/**
 * newestBuild needs every candidate's build time; minAge with another strategy
 * only needs them best-first until one is old enough. Tags are treated as
 * immutable here (a tag's digest, once seen, is reused), so a steady-state
 * rescan fetches nothing but the tag list; use the digest strategy for a tag
 * that moves.
 */
async function selectByBuildTime(
  client: RegistryClient,
  ref: ImageReference,
  member: RepoGroup["policies"][number],
  ranked: string[],
  now: number,
): Promise<Selection> {
  const platform = member.policy.platform;
  const enriched: TagCandidate[] = [];
  const enrich = async (tags: string[]) => {
    const times = await Promise.all(
      tags.map((tag) =>
        client.imageCreated(
          { ...ref, tag },
          { maxAgeMs: Number.POSITIVE_INFINITY, ...(platform ? { platform } : {}) },
        ),
      ),
    );
    tags.forEach((tag, i) => {
      const t = times[i]!;
      enriched.push({ tag, digest: t.digest, ...(t.created ? { created: t.created } : {}) });
    });
  };
  if (member.compiled.spec.strategy.kind === "newestBuild") {
    for (let i = 0; i < ranked.length; i += ENRICH_BATCH * 4)
      await enrich(ranked.slice(i, i + ENRICH_BATCH * 4));
    return selectLatest(enriched, member.compiled, now);
  }
  let last: Selection | undefined;
  for (let i = 0; i < ranked.length; i += ENRICH_BATCH) {
    await enrich(ranked.slice(i, i + ENRICH_BATCH));
    last = selectLatest(enriched, member.compiled, now);
    if (last.ok) return last;
  }
  return last ?? selectLatest([], member.compiled, now);
}

/** Adds the digest when the policy reflects digests (Flux digestReflectionPolicy) or the caller asked. */
async function finish(
  client: RegistryClient,
  ref: ImageReference,
  policy: Policy,
  selection: Selection,
  opts: ScanOptions,
): Promise<PolicyResult> {
  const image = repositoryName(ref);
  if (!selection.ok) return { policy, ok: false, reason: selection.reason, message: selection.message };
  let digest = selection.digest;
  const reflect = policy.digestReflection;
  if (opts.digests || reflect !== "Never") {
    // IfNotPresent: a digest once seen for the tag is kept; Always and --digest ask again.
    const maxAgeMs = reflect === "IfNotPresent" && !opts.digests ? Number.POSITIVE_INFINITY : 0;
    const fresh = policy.selection.strategy.kind === "digest";
    if (digest === undefined || (maxAgeMs === 0 && !fresh)) {
      digest = (await client.resolveDigest({ ...ref, tag: selection.tag }, { platform: false, maxAgeMs }))
        .digest;
    }
  }
  return { policy, ok: true, image, tag: selection.tag, ...(digest ? { digest } : {}) };
}
