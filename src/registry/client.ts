/**
 * The OCI registry client: tag lists, digests and build times over the
 * distribution API, authenticated reactively, counted, bounded and cached.
 * See docs/registry.md for the request-cost model.
 */
import { createHash } from "node:crypto";
import { once } from "node:events";
import { createWriteStream } from "node:fs";
import { rm } from "node:fs/promises";
import { JSONParser } from "@streamparser/json";
import { RegistryError, RegistryTooLargeError, redact } from "../errors.ts";
import { Authenticator, type Authorization, pullScope, pushScope } from "./auth.ts";
import { defaultCacheDir, RegistryCache, type RepoCache } from "./cache.ts";
import {
  type CredentialProvider,
  cachedCredentials,
  chainCredentials,
  dockerConfigFileCredentials,
  dockerConfigPath,
  envCredentials,
} from "./credentials.ts";
import {
  describeFailure,
  type HttpRequest,
  type IdleTimeout,
  isHtml,
  networkReason,
  parseJsonBody,
  type RequestStats,
  readLimited,
  Transport,
  type TransportOptions,
} from "./http.ts";
import {
  DEFAULT_PLATFORM,
  describePlatforms,
  formatPlatform,
  type PlatformSpec,
  parsePlatform,
  platformKey,
  selectPlatform,
} from "./platform.ts";
import { apiHost, type ImageReference, isValidTag, parseReference } from "./reference.ts";
import {
  ImageConfig,
  ImageIndex,
  ImageManifest,
  isIndexMediaType,
  MANIFEST_ACCEPT,
  TagListEntry,
} from "./schemas.ts";

export interface RegistryClientOptions extends TransportOptions {
  /** Where credentials come from; default: `SHIPMATE_REGISTRY_*` variables, then Docker's config file. */
  credentials?: CredentialProvider;
  /** Persistent cache directory; default `$XDG_CACHE_HOME/shipmate/registry` (or `~/.cache/...`); false: memory only. */
  cacheDir?: string | false;
  /** Platform chosen inside image indexes, `os/arch[/variant]`; default `linux/amd64`. */
  platform?: string;
  /** `n` sent with tag list requests; default none (the registry's own page size, usually everything at once). */
  pageSize?: number;
  /** Most tags per chunk yielded by `tagPages`. Default 1000. */
  chunkSize?: number;
  limits?: {
    /** Manifests and indexes; the distribution spec lets registries refuse more than 4 MiB. Default 4 MiB. */
    manifestBytes?: number;
    /** Image config blobs. Default 8 MiB. */
    configBytes?: number;
    /** One tag list response (streamed, never held whole). Default 256 MiB. */
    tagPageBytes?: number;
  };
  /** Pagination that yields nothing new this many pages in a row is a loop. Default 3. */
  maxStalePages?: number;
  env?: NodeJS.ProcessEnv;
  /** Clock for token lifetimes and cache ages. */
  now?: () => number;
}

/** What a listing cost and found; returned by the `tagPages` generator when done. */
export interface TagListSummary {
  /** Valid tags yielded (duplicates across pages included). */
  count: number;
  /** Entries that are not valid OCI tags, skipped. */
  skipped: number;
  /** Responses read (one per page). */
  pages: number;
}

export interface TagList {
  /** Valid tags in the order the registry listed them, without duplicates. */
  tags: string[];
  skipped: number;
  pages: number;
}

export interface DigestOptions {
  /** `os/arch[/variant]` to pick inside an index; false: do not look inside (HEAD only). Default: the client's platform. */
  platform?: string | false;
  /**
   * Reuse a tag → digest answer checked at most this long ago instead of
   * asking the registry (0 requests). Default: always ask (tags move).
   * `Infinity` trusts tags never to move once seen.
   */
  maxAgeMs?: number;
}

export interface ResolvedDigest {
  /** What the tag points to (the index digest for a multi-arch image): what Flux writes. */
  digest: string;
  /** Manifest media type when known (not known for a cached or `@digest` reference without a fetch). */
  mediaType: string | undefined;
  /** The chosen platform's manifest inside an index, or the digest itself for a single-platform image. */
  platformDigest: string | undefined;
  /** The platform the platformDigest was chosen for, when an index was looked into. */
  platform: string | undefined;
  /** True when no request was needed. */
  fromCache: boolean;
}

export interface BuildTime {
  /** Image config `created` (or the `org.opencontainers.image.created` annotation); undefined when the image has none. */
  created: Date | undefined;
  digest: string;
  platformDigest: string | undefined;
  fromCache: boolean;
}

const CREATED_ANNOTATION = "org.opencontainers.image.created";

type ReferenceInput = ImageReference | string;

class Unauthorized {
  readonly challenge: string | null;
  readonly failure: string;
  constructor(challenge: string | null, failure: string) {
    this.challenge = challenge;
    this.failure = failure;
  }
}

/** A manifest as `manifest()` returns it: exactly one of `manifest` and `index`. */
export type PulledManifest = { digest: string; mediaType: string | undefined } & (
  | { index: ImageIndex; manifest?: undefined }
  | { manifest: ImageManifest; index?: undefined }
);

interface FetchedManifest {
  body: Buffer;
  mediaType: string | undefined;
  digest: string;
}

function toRef(input: ReferenceInput): ImageReference {
  return typeof input === "string" ? parseReference(input) : input;
}

function sha256(body: Buffer): string {
  return `sha256:${createHash("sha256").update(body).digest("hex")}`;
}

/** RFC 8288 Link header: the target of the first `rel="next"`. */
export function nextLink(header: string | null): string | undefined {
  if (!header) return undefined;
  for (const m of header.matchAll(/<([^>]*)>((?:\s*;\s*[^;,]*)*)/g)) {
    const rel = /;\s*rel\s*=\s*"?([^";,]*)"?/i.exec(m[2] ?? "")?.[1];
    if (rel?.toLowerCase().split(/\s+/).includes("next")) return m[1];
  }
  return undefined;
}

function contentType(res: Response): string | undefined {
  return res.headers.get("content-type")?.split(";")[0]?.trim() || undefined;
}

export class RegistryClient {
  private readonly transport: Transport;
  private readonly auth: Authenticator;
  private readonly cache: RegistryCache;
  private readonly platform: PlatformSpec;
  private readonly pageSize: number | undefined;
  private readonly chunkSize: number;
  private readonly manifestLimit: number;
  private readonly configLimit: number;
  private readonly tagPageLimit: number;
  private readonly maxStalePages: number;
  private readonly now: () => number;

  constructor(opts: RegistryClientOptions = {}) {
    const env = opts.env ?? process.env;
    this.now = opts.now ?? Date.now;
    this.transport = new Transport(opts);
    this.cache = new RegistryCache(
      opts.cacheDir === false ? undefined : (opts.cacheDir ?? defaultCacheDir(env)),
    );
    const credentials =
      opts.credentials ??
      chainCredentials(envCredentials(env), dockerConfigFileCredentials(dockerConfigPath(env), { env }));
    this.auth = new Authenticator(this.transport, cachedCredentials(credentials), this.cache, this.now);
    this.platform = parsePlatform(opts.platform ?? DEFAULT_PLATFORM);
    this.pageSize = opts.pageSize;
    this.chunkSize = opts.chunkSize ?? 1000;
    this.manifestLimit = opts.limits?.manifestBytes ?? 4 * 1024 * 1024;
    this.configLimit = opts.limits?.configBytes ?? 8 * 1024 * 1024;
    this.tagPageLimit = opts.limits?.tagPageBytes ?? 256 * 1024 * 1024;
    this.maxStalePages = opts.maxStalePages ?? 3;
  }

  /** Requests made so far, in total, per registry and per kind; cache hits. */
  stats(): RequestStats {
    return this.transport.stats();
  }

  /**
   * Announces the repositories a scan is about to visit, so a Bearer registry
   * hands out one token for many repositories instead of one each.
   */
  plan(refs: Iterable<ReferenceInput>): void {
    for (const input of refs) {
      const ref = toRef(input);
      this.auth.plan(ref.registry, [ref.repository]);
    }
  }

  /** Waits until every cache update is on disk. Call once at the end of a scan. */
  async close(): Promise<void> {
    await this.cache.flush();
  }

  private url(registry: string, path: string): URL {
    return new URL(`${this.transport.baseUrl(apiHost(registry))}/v2/${path}`);
  }

  /**
   * Sends through the auth state machine: proactive credentials from memory,
   * one answer to a 401 challenge, and a single clear error after that.
   */
  private async authorized<T>(
    registry: string,
    repository: string,
    send: (headers: Record<string, string>) => Promise<T | Unauthorized>,
    scope = pullScope(repository),
  ): Promise<T> {
    const release = await this.auth.gate(registry);
    try {
      let auth: Authorization | undefined = await this.auth.proactive(registry, scope);
      for (let round = 0; ; round++) {
        const out = await send(auth ? { Authorization: auth.header } : {});
        if (!(out instanceof Unauthorized)) return out;
        if (round >= 2)
          throw new RegistryError(registry, `${out.failure} — authentication keeps failing`, 401);
        this.auth.forget(registry, auth, scope);
        auth = await this.auth.reactive(registry, scope, out.challenge, auth, out.failure);
      }
    } finally {
      release?.();
    }
  }

  /** A buffered request: the body is read within `limit` while the registry slot is held. */
  private async fetchBuffered(
    registry: string,
    repository: string,
    req: Omit<HttpRequest, "registry" | "headers"> & {
      accept: string;
      contentType?: string;
      scope?: string;
    },
    limit: number,
  ): Promise<{ res: Response; body: Buffer } | { res: Response; body?: undefined; failure: string }> {
    const ctx = { registry, what: req.what };
    const extra: Record<string, string> = req.contentType ? { "Content-Type": req.contentType } : {};
    return this.authorized(
      registry,
      repository,
      (auth) =>
        this.transport.request(
          { ...req, registry, headers: { ...auth, ...extra, Accept: req.accept } },
          async (res) => {
            if (res.status === 401)
              return new Unauthorized(res.headers.get("www-authenticate"), await describeFailure(res, ctx));
            if (!res.ok) return { res, failure: await describeFailure(res, ctx) };
            if (req.method === "HEAD") return { res, body: Buffer.alloc(0) };
            return { res, body: await readLimited(res, limit, ctx) };
          },
        ),
      req.scope,
    );
  }

  /**
   * Opens a streamed response through the auth state machine; any answer
   * but 2xx is one RegistryError (`notFound` appended to a 404's line).
   */
  private openAuthorized(
    registry: string,
    repository: string,
    req: { url: URL; accept: string; kind: "tags" | "blob"; what: string; notFound?: string },
  ): Promise<{ res: Response; timer: IdleTimeout }> {
    return this.authorized(registry, repository, async (auth) => {
      const opened = await this.transport.open({
        registry,
        url: req.url,
        headers: { ...auth, Accept: req.accept },
        kind: req.kind,
        what: req.what,
      });
      if (opened.res.status === 401 || !opened.res.ok) {
        const failure = await describeFailure(opened.res, { what: req.what });
        opened.timer.clear();
        if (opened.res.status === 401)
          return new Unauthorized(opened.res.headers.get("www-authenticate"), failure);
        throw new RegistryError(
          registry,
          opened.res.status === 404 && req.notFound ? `${failure} — ${req.notFound}` : failure,
          opened.res.status,
        );
      }
      return opened;
    });
  }

  // ---------------------------------------------------------------- tags

  /**
   * Streams a repository's tags in chunks of at most `chunkSize`, following
   * `Link: <…>; rel="next"` pagination without a page cap. Memory stays
   * bounded by the chunk size whatever the list's length: each response is
   * parsed as it arrives and never held whole. Invalid OCI tags are skipped
   * (counted in the summary the generator returns). A Link chain that
   * repeats a URL or stops yielding new tags is an error, not a hang.
   */
  async *tagPages(
    input: ReferenceInput,
    opts: { pageSize?: number } = {},
  ): AsyncGenerator<string[], TagListSummary, undefined> {
    const { registry, repository } = toRef(input);
    const what = `tag list of ${repository}`;
    let url = this.url(registry, `${repository}/tags/list`);
    const n = opts.pageSize ?? this.pageSize;
    if (n !== undefined) url.searchParams.set("n", String(n));
    const visited = new Set<string>();
    const fingerprints = new Set<string>();
    const summary: TagListSummary = { count: 0, skipped: 0, pages: 0 };
    let stale = 0;
    for (;;) {
      visited.add(url.href);
      const pageUrl = url;
      const { res, timer } = await this.openAuthorized(registry, repository, {
        url: pageUrl,
        accept: "application/json",
        kind: "tags",
        what,
        notFound: "no such repository",
      });
      summary.pages++;
      const fingerprint = createHash("sha256");
      let pageEntries = 0;
      const fail = (why: string): never => {
        throw new RegistryError(registry, `${what}: ${why} (HTTP ${res.status})`, res.status);
      };
      try {
        if (isHtml(res)) fail("got an HTML page instead of JSON");
        const pending: string[] = [];
        let problem: string | undefined;
        const parser = new JSONParser({ paths: ["$.tags.*"], keepStack: false });
        parser.onValue = ({ value, key }) => {
          if (typeof key !== "number") {
            problem ??= '"tags" is not an array';
            return;
          }
          const entry = TagListEntry.safeParse(value);
          if (!entry.success) {
            problem ??= `tags[${key}] is not a string`;
            return;
          }
          pageEntries++;
          fingerprint.update(entry.data).update("\n");
          if (!isValidTag(entry.data)) {
            summary.skipped++;
            return;
          }
          pending.push(entry.data);
        };
        parser.onError = () => {
          problem ??= "malformed JSON";
        };
        let bytes = 0;
        let started = false;
        for await (const chunk of res.body ?? []) {
          timer.touch();
          bytes += chunk.byteLength;
          if (bytes > this.tagPageLimit) fail(`response larger than ${this.tagPageLimit} bytes`);
          if (!started) {
            // The root must be an object: a bare array or string would parse but say nothing.
            const text = Buffer.from(chunk)
              .toString("utf8")
              .replace(/^[\s\uFEFF]+/, "");
            if (text.length > 0) {
              started = true;
              if (text[0] !== "{") fail("malformed JSON (expected an object with a tags array)");
            }
          }
          if (!parser.isEnded) parser.write(chunk);
          else if (Buffer.from(chunk).toString("utf8").trim() !== "") problem ??= "malformed JSON";
          if (problem) fail(problem);
          while (pending.length >= this.chunkSize) {
            const out = pending.splice(0, this.chunkSize);
            summary.count += out.length;
            // A consumer may take its time between chunks; that is not the registry being slow.
            timer.pause();
            yield out;
            timer.resume();
          }
        }
        if (!started) fail("empty response");
        if (!parser.isEnded) parser.end();
        if (problem) fail(problem);
        if (pending.length > 0) {
          summary.count += pending.length;
          timer.pause();
          yield pending;
        }
      } catch (err) {
        if (err instanceof RegistryError) throw err;
        throw new RegistryError(
          registry,
          `${what}: the response broke off (${redact(networkReason(err))})`,
          res.status,
          { cause: err },
        );
      } finally {
        timer.clear();
        await res.body?.cancel().catch(() => {});
      }

      const link = nextLink(res.headers.get("link"));
      if (link === undefined) return summary;
      let next: URL;
      try {
        next = new URL(link, url);
      } catch {
        return fail(`unusable Link header "${link}"`);
      }
      if (next.origin !== url.origin) fail(`Link header points to another host (${next.host})`);
      if (visited.has(next.href))
        fail(`pagination loop: the Link header repeats ${next.pathname}${next.search}`);
      const fp = fingerprint.digest("hex");
      stale = pageEntries === 0 || fingerprints.has(fp) ? stale + 1 : 0;
      fingerprints.add(fp);
      if (stale >= this.maxStalePages)
        fail(`pagination does not advance: ${stale} pages in a row without new tags, Link keeps going`);
      url = next;
    }
  }

  /** All valid tags of a repository, collected from `tagPages`. */
  async listTags(input: ReferenceInput, opts: { pageSize?: number } = {}): Promise<TagList> {
    const seen = new Set<string>();
    const pages = this.tagPages(input, opts);
    for (;;) {
      const step = await pages.next();
      if (step.done) return { tags: [...seen], skipped: step.value.skipped, pages: step.value.pages };
      for (const t of step.value) seen.add(t);
    }
  }

  // ---------------------------------------------------------------- manifests

  /** GET a manifest or blob; when addressed by digest, the body must hash to it. */
  private async getContent(
    registry: string,
    repository: string,
    req: {
      path: string;
      reference: string;
      kind: "manifest" | "blob";
      what: string;
      accept: string;
      limit: number;
    },
  ): Promise<{ res: Response; body: Buffer; computed: string }> {
    const got = await this.fetchBuffered(
      registry,
      repository,
      { url: this.url(registry, `${repository}/${req.path}/${req.reference}`), ...req },
      req.limit,
    );
    if (got.body === undefined) {
      const notFound = got.res.status === 404 && req.kind === "manifest" ? " — no such tag or digest" : "";
      throw new RegistryError(registry, `${got.failure}${notFound}`, got.res.status);
    }
    const computed = sha256(got.body);
    if (req.reference.startsWith("sha256:") && computed !== req.reference)
      throw new RegistryError(registry, `${req.what}: content does not match its digest (got ${computed})`);
    return { res: got.res, body: got.body, computed };
  }

  private async getManifest(
    registry: string,
    repository: string,
    reference: string,
  ): Promise<FetchedManifest> {
    const what = `manifest ${repository}${reference.includes(":") ? "@" : ":"}${reference}`;
    const got = await this.getContent(registry, repository, {
      path: "manifests",
      reference,
      kind: "manifest",
      what,
      accept: MANIFEST_ACCEPT,
      limit: this.manifestLimit,
    });
    const header = got.res.headers.get("docker-content-digest");
    const digest = reference.includes(":")
      ? reference
      : header && /^sha256:[a-f0-9]{64}$/.test(header)
        ? header
        : got.computed;
    return { body: got.body, mediaType: contentType(got.res), digest };
  }

  private manifestFailure(registry: string, status: number, failure: string): RegistryError {
    return new RegistryError(
      registry,
      status === 404 ? `${failure} — no such tag or digest` : failure,
      status,
    );
  }

  /** The tag's current digest: from the cache when young enough, else HEAD (GET when the registry gives no digest header). */
  private async tagDigest(
    registry: string,
    repository: string,
    tag: string,
    repo: RepoCache,
    maxAgeMs: number | undefined,
  ): Promise<{
    digest: string;
    mediaType: string | undefined;
    manifest?: FetchedManifest;
    fromCache: boolean;
  }> {
    const cached = repo.tag(tag);
    if (cached && maxAgeMs !== undefined && this.now() - cached.checkedAt <= maxAgeMs) {
      this.transport.cacheHit();
      return { digest: cached.digest, mediaType: cached.mediaType || undefined, fromCache: true };
    }
    const what = `manifest ${repository}:${tag}`;
    const head = await this.fetchBuffered(
      registry,
      repository,
      {
        url: this.url(registry, `${repository}/manifests/${tag}`),
        method: "HEAD",
        kind: "manifest",
        what,
        accept: MANIFEST_ACCEPT,
      },
      0,
    );
    let digest: string;
    let mediaType: string | undefined;
    let manifest: FetchedManifest | undefined;
    const header = head.res.headers.get("docker-content-digest");
    if (head.body !== undefined && header && /^sha256:[a-f0-9]{64}$/.test(header)) {
      digest = header;
      mediaType = contentType(head.res);
    } else if (head.body === undefined && head.res.status !== 405) {
      throw this.manifestFailure(registry, head.res.status, head.failure);
    } else {
      // No usable digest header (or HEAD not allowed): the digest is the hash of the exact bytes served.
      manifest = await this.getManifest(registry, repository, tag);
      digest = manifest.digest;
      mediaType = manifest.mediaType;
    }
    repo.setTag(tag, { digest, mediaType: mediaType ?? "", checkedAt: this.now() });
    return { digest, mediaType, manifest, fromCache: false };
  }

  private platformOf(opt: string | false | undefined): PlatformSpec | undefined {
    if (opt === false) return undefined;
    return opt === undefined ? this.platform : parsePlatform(opt);
  }

  /** Parses a manifest or index body and tells which one it is. */
  private parseManifest(
    registry: string,
    what: string,
    m: FetchedManifest,
  ): { index: ImageIndex; manifest?: undefined } | { manifest: ImageManifest; index?: undefined } {
    const fake = new Response(null, {
      status: 200,
      headers: { "content-type": m.mediaType ?? "application/json" },
    });
    let raw: unknown;
    try {
      raw = JSON.parse(m.body.toString("utf8"));
    } catch {
      throw new RegistryError(registry, `${what}: malformed JSON`);
    }
    const declared = (raw as { mediaType?: unknown } | null)?.mediaType;
    const type = typeof declared === "string" ? declared : m.mediaType;
    const looksIndex =
      isIndexMediaType(type) ||
      (type === undefined && Array.isArray((raw as { manifests?: unknown }).manifests));
    if (looksIndex) return { index: parseJsonBody(m.body, fake, ImageIndex, { registry, what }) };
    return { manifest: parseJsonBody(m.body, fake, ImageManifest, { registry, what }) };
  }

  private pickPlatform(registry: string, what: string, index: ImageIndex, platform: PlatformSpec): string {
    const chosen = selectPlatform(index.manifests, platform);
    if (!chosen)
      throw new RegistryError(
        registry,
        `${what}: no image for platform ${formatPlatform(platform)} (the index has: ${describePlatforms(index.manifests)})`,
      );
    return chosen.digest;
  }

  /**
   * The digest a tag (or `@digest` reference) points to — the index digest
   * for a multi-arch image, as Flux writes it — and the chosen platform's
   * manifest digest. Costs one HEAD for a tag (none when `maxAgeMs` allows
   * the cached answer), plus one GET per index ever (index → platform
   * manifest is cached forever: both are content-addressed).
   */
  async resolveDigest(input: ReferenceInput, opts: DigestOptions = {}): Promise<ResolvedDigest> {
    const ref = toRef(input);
    const { registry, repository } = ref;
    const repo = await this.cache.repo(registry, repository);
    const platform = this.platformOf(opts.platform);
    let digest: string;
    let mediaType: string | undefined;
    let manifest: FetchedManifest | undefined;
    let fromCache = true;
    if (ref.digest) {
      digest = ref.digest;
    } else {
      const t = await this.tagDigest(registry, repository, ref.tag ?? "latest", repo, opts.maxAgeMs);
      ({ digest, mediaType, manifest } = t);
      fromCache = t.fromCache;
    }
    if (!platform) return { digest, mediaType, platformDigest: undefined, platform: undefined, fromCache };

    const key = `${digest}|${platformKey(platform)}`;
    const known = repo.platform(key);
    if (known) {
      this.transport.cacheHit();
      return { digest, mediaType, platformDigest: known, platform: formatPlatform(platform), fromCache };
    }
    if (mediaType !== undefined && !isIndexMediaType(mediaType))
      return { digest, mediaType, platformDigest: digest, platform: formatPlatform(platform), fromCache };
    manifest ??= await this.getManifest(registry, repository, digest);
    fromCache = false;
    const what = `manifest ${repository}@${digest}`;
    const parsed = this.parseManifest(registry, what, manifest);
    const platformDigest = parsed.index ? this.pickPlatform(registry, what, parsed.index, platform) : digest;
    repo.setPlatform(key, platformDigest);
    // Record what imageCreated would read from this index, so it never fetches the index again.
    const annotated = parsed.index?.annotations?.[CREATED_ANNOTATION];
    if (annotated && !Number.isNaN(Date.parse(annotated))) repo.setCreated(key, annotated);
    return {
      digest,
      mediaType: mediaType ?? parsed.index?.mediaType ?? parsed.manifest?.mediaType ?? manifest.mediaType,
      platformDigest,
      platform: formatPlatform(platform),
      fromCache,
    };
  }

  // ---------------------------------------------------------------- artifacts

  /**
   * A manifest by tag or digest, parsed: an image manifest (what an OCI
   * artifact is) or an index. Addressed by digest, the bytes must hash to
   * it. One GET.
   */
  async manifest(input: ReferenceInput): Promise<PulledManifest> {
    const { registry, repository, tag, digest } = toRef(input);
    const reference = digest ?? tag ?? "latest";
    const fetched = await this.getManifest(registry, repository, reference);
    const what = `manifest ${repository}${reference.includes(":") ? "@" : ":"}${reference}`;
    const parsed = this.parseManifest(registry, what, fetched);
    return { digest: fetched.digest, mediaType: fetched.mediaType, ...parsed };
  }

  /**
   * Streams a blob into `file`, never holding it whole: refused before a
   * byte is written when the descriptor or the registry announces more than
   * `limit` bytes, stopped as soon as more arrive, and checked against its
   * digest. A failure leaves no file behind.
   */
  async downloadBlob(input: ReferenceInput, digest: string, file: string, limit: number): Promise<number> {
    const { registry, repository } = toRef(input);
    const what = `blob ${repository}@${digest}`;
    const url = this.url(registry, `${repository}/blobs/${digest}`);
    const { res, timer } = await this.openAuthorized(registry, repository, {
      url,
      accept: "*/*",
      kind: "blob",
      what,
    });
    const tooLarge = () =>
      new RegistryTooLargeError(registry, `${what}: larger than the ${limit} bytes allowed`, res.status);
    const out = createWriteStream(file, { flags: "w" });
    const hash = createHash("sha256");
    let size = 0;
    try {
      if (Number(res.headers.get("content-length") ?? "0") > limit) throw tooLarge();
      for await (const chunk of res.body ?? []) {
        timer.touch();
        size += chunk.byteLength;
        if (size > limit) throw tooLarge();
        hash.update(chunk);
        if (!out.write(chunk)) await once(out, "drain");
      }
      out.end();
      await once(out, "finish");
      const computed = `sha256:${hash.digest("hex")}`;
      if (computed !== digest)
        throw new RegistryError(registry, `${what}: content does not match its digest (got ${computed})`);
      return size;
    } catch (err) {
      out.destroy();
      await rm(file, { force: true });
      if (err instanceof RegistryError) throw err;
      throw new RegistryError(
        registry,
        `${what}: the response broke off (${redact(networkReason(err))})`,
        res.status,
        { cause: err },
      );
    } finally {
      timer.clear();
      await res.body?.cancel().catch(() => {});
    }
  }

  /** Whether the repository holds a blob (HEAD): an upload of what is there is skipped. */
  async hasBlob(input: ReferenceInput, digest: string): Promise<boolean> {
    const { registry, repository } = toRef(input);
    const got = await this.fetchBuffered(
      registry,
      repository,
      {
        url: this.url(registry, `${repository}/blobs/${digest}`),
        method: "HEAD",
        kind: "blob",
        what: `blob ${repository}@${digest}`,
        accept: "*/*",
        scope: pushScope(repository),
      },
      0,
    );
    if (got.body !== undefined) return true;
    if (got.res.status === 404) return false;
    throw new RegistryError(registry, got.failure, got.res.status);
  }

  /**
   * Uploads a blob monolithically (OCI distribution spec, "POST then PUT"):
   * POST opens an upload session, PUT `?digest=` sends the bytes and closes
   * it. The registry checks the digest.
   */
  async uploadBlob(input: ReferenceInput, digest: string, data: Buffer): Promise<void> {
    const { registry, repository } = toRef(input);
    const what = `upload of blob ${repository}@${digest}`;
    const scope = pushScope(repository);
    const start = await this.fetchBuffered(
      registry,
      repository,
      {
        url: this.url(registry, `${repository}/blobs/uploads/`),
        method: "POST",
        kind: "blob",
        what,
        accept: "*/*",
        scope,
      },
      64 * 1024,
    );
    if (start.body === undefined) throw new RegistryError(registry, start.failure, start.res.status);
    const location = start.res.headers.get("location");
    if (start.res.status !== 202 || !location)
      throw new RegistryError(
        registry,
        `${what}: expected 202 with a Location header, got HTTP ${start.res.status}`,
        start.res.status,
      );
    const url = new URL(location, this.url(registry, ""));
    url.searchParams.set("digest", digest);
    const put = await this.fetchBuffered(
      registry,
      repository,
      {
        url,
        method: "PUT",
        body: data,
        kind: "blob",
        what,
        accept: "*/*",
        contentType: "application/octet-stream",
        scope,
      },
      64 * 1024,
    );
    if (put.body === undefined) throw new RegistryError(registry, put.failure, put.res.status);
    if (put.res.status !== 201)
      throw new RegistryError(registry, `${what}: expected 201, got HTTP ${put.res.status}`, put.res.status);
  }

  /** PUTs a manifest under a tag (or its digest); returns the digest of the bytes sent. */
  async putManifest(input: ReferenceInput, body: Buffer, mediaType: string): Promise<string> {
    const { registry, repository, tag, digest } = toRef(input);
    const computed = sha256(body);
    const reference = tag ?? digest ?? computed;
    const what = `manifest ${repository}${reference.includes(":") ? "@" : ":"}${reference}`;
    const put = await this.fetchBuffered(
      registry,
      repository,
      {
        url: this.url(registry, `${repository}/manifests/${reference}`),
        method: "PUT",
        body,
        kind: "manifest",
        what,
        accept: "*/*",
        contentType: mediaType,
        scope: pushScope(repository),
      },
      64 * 1024,
    );
    if (put.body === undefined) throw new RegistryError(registry, put.failure, put.res.status);
    return computed;
  }

  // ---------------------------------------------------------------- build time

  /**
   * When the image was built: the `org.opencontainers.image.created`
   * annotation of the manifest or index when present (it saves a request),
   * else the image config's `created`. Cached by digest, forever: each image
   * costs at most one manifest (+ platform manifest) and one config fetch,
   * across scans. For a tag, the digest comes from `resolveDigest`'s rules
   * (`maxAgeMs`).
   */
  async imageCreated(
    input: ReferenceInput,
    opts: { platform?: string; maxAgeMs?: number } = {},
  ): Promise<BuildTime> {
    const ref = toRef(input);
    const { registry, repository } = ref;
    const repo = await this.cache.repo(registry, repository);
    const platform = this.platformOf(opts.platform) ?? this.platform;
    let digest: string;
    let manifest: FetchedManifest | undefined;
    let fromCache = true;
    if (ref.digest) digest = ref.digest;
    else {
      const t = await this.tagDigest(registry, repository, ref.tag ?? "latest", repo, opts.maxAgeMs);
      ({ digest, manifest } = t);
      fromCache = t.fromCache;
    }
    const indexKey = `${digest}|${platformKey(platform)}`;
    const hit = (key: string, platformDigest: string | undefined): BuildTime | undefined => {
      const created = repo.created(key);
      if (created === undefined) return undefined;
      this.transport.cacheHit();
      return { created: created === null ? undefined : new Date(created), digest, platformDigest, fromCache };
    };
    const cached = hit(indexKey, repo.platform(indexKey)) ?? hit(digest, digest);
    if (cached) return cached;

    fromCache = false;
    let what = `manifest ${repository}@${digest}`;
    let platformDigest = digest;
    // resolveDigest already looked into this index (and recorded any created annotation): skip to the platform.
    const mapped = repo.platform(indexKey);
    if (mapped && mapped !== digest && !manifest) {
      platformDigest = mapped;
      const known = hit(platformDigest, platformDigest);
      if (known) {
        repo.setCreated(indexKey, repo.created(platformDigest) ?? null);
        return known;
      }
      what = `manifest ${repository}@${platformDigest}`;
      const parsedPlatform = this.parseManifest(
        registry,
        what,
        await this.getManifest(registry, repository, platformDigest),
      );
      if (!parsedPlatform.manifest)
        throw new RegistryError(registry, `${what}: an index inside an index is not an image`);
      const keys = [indexKey, platformDigest];
      const annotated = parsedPlatform.manifest.annotations?.[CREATED_ANNOTATION];
      return this.recordCreated(
        repo,
        keys,
        annotated ?? (await this.configCreated(registry, repository, parsedPlatform.manifest)),
        digest,
        platformDigest,
      );
    }
    manifest ??= await this.getManifest(registry, repository, digest);
    let parsed = this.parseManifest(registry, what, manifest);
    const finish = (created: string | undefined, keys: string[]): BuildTime =>
      this.recordCreated(repo, keys, created, digest, platformDigest);
    if (parsed.index) {
      platformDigest = this.pickPlatform(registry, what, parsed.index, platform);
      repo.setPlatform(indexKey, platformDigest);
      const annotated = parsed.index.annotations?.[CREATED_ANNOTATION];
      if (annotated) return finish(annotated, [indexKey]);
      const known = hit(platformDigest, platformDigest);
      if (known) {
        repo.setCreated(indexKey, repo.created(platformDigest) ?? null);
        return known;
      }
      const platformManifest = await this.getManifest(registry, repository, platformDigest);
      what = `manifest ${repository}@${platformDigest}`;
      parsed = this.parseManifest(registry, what, platformManifest);
      if (!parsed.manifest)
        throw new RegistryError(registry, `${what}: an index inside an index is not an image`);
    }
    const image = parsed.manifest!;
    const keys = platformDigest === digest ? [digest] : [indexKey, platformDigest];
    const annotated = image.annotations?.[CREATED_ANNOTATION];
    if (annotated) return finish(annotated, keys);
    return finish(await this.configCreated(registry, repository, image), keys);
  }

  private recordCreated(
    repo: RepoCache,
    keys: string[],
    created: string | undefined,
    digest: string,
    platformDigest: string,
  ): BuildTime {
    const valid = created !== undefined && !Number.isNaN(Date.parse(created)) ? created : null;
    for (const k of keys) repo.setCreated(k, valid);
    return {
      created: valid === null ? undefined : new Date(valid),
      digest,
      platformDigest,
      fromCache: false,
    };
  }

  /** GET the config blob (redirects followed, without credentials to other hosts) and read `created`. */
  private async configCreated(
    registry: string,
    repository: string,
    image: ImageManifest,
  ): Promise<string | undefined> {
    const { digest, size } = image.config;
    const what = `config blob ${repository}@${digest}`;
    if (size > this.configLimit)
      throw new RegistryError(registry, `${what}: ${size} bytes, more than the ${this.configLimit} allowed`);
    const got = await this.getContent(registry, repository, {
      path: "blobs",
      reference: digest,
      kind: "blob",
      what,
      accept: "application/json, */*",
      limit: this.configLimit,
    });
    const fake = new Response(null, {
      status: got.res.status,
      headers: { "content-type": "application/json" },
    });
    return parseJsonBody(got.body, fake, ImageConfig, { registry, what }).created;
  }
}
