/**
 * Registry authentication, reactive as the distribution spec intends: a
 * request goes out, a 401 names the scheme (Basic, or Bearer with
 * realm/service/scope), we answer it once. What each registry asked for is
 * remembered (in the persistent cache: scheme, realm and service only) so
 * later requests, and later runs, authenticate up front without a ping.
 * Bearer tokens are kept in memory until they expire and never written out.
 */
import { RegistryError, registerSecret } from "../errors.ts";
import type { AuthMemory, RegistryCache } from "./cache.ts";
import { parseChallenges } from "./challenge.ts";
import type { Credential, CredentialProvider } from "./credentials.ts";
import { describeFailure, parseJsonBody, readLimited, type Transport } from "./http.ts";
import { TokenReply } from "./schemas.ts";

/** What we put in the Authorization header, and whether it was just obtained (so a 401 means "refused"). */
export interface Authorization {
  header: string;
  /** Obtained for this very request (not reused), so the registry refusing it is final. */
  fresh: boolean;
  scheme: "basic" | "bearer";
  realm?: string;
  service?: string;
  source?: string;
}

interface CachedToken {
  token: string;
  expiresAt: number;
}

/** Distribution token spec: a token lives 60 s unless the reply says otherwise, and never less. */
const MIN_TOKEN_LIFETIME_S = 60;
/** Keep the URL of a batched token request well under common 8 KiB limits. */
const MAX_TOKEN_URL = 6000;
const TOKEN_REPLY_LIMIT = 1024 * 1024;

export function pullScope(repository: string): string {
  return `repository:${repository}:pull`;
}

/** Uploading blobs and manifests: the distribution token spec's `pull,push` scope. */
export function pushScope(repository: string): string {
  return `repository:${repository}:pull,push`;
}

function basic(c: Credential): string {
  const value = Buffer.from(`${c.username ?? ""}:${c.password ?? ""}`).toString("base64");
  registerSecret(value);
  return `Basic ${value}`;
}

export class Authenticator {
  private readonly transport: Transport;
  private readonly credentials: CredentialProvider;
  private readonly cache: RegistryCache;
  private readonly tokens = new Map<string, CachedToken>();
  private readonly inflight = new Map<string, Promise<CachedToken>>();
  /** Repositories a caller announced it will visit, per registry: scopes to ask for together. */
  private readonly planned = new Map<string, Set<string>>();
  private readonly noBatching = new Set<string>();
  /** Registries whose way of authenticating this process has found out (possibly: none needed). */
  private readonly settled = new Set<string>();
  private readonly learning = new Map<string, Promise<void>>();
  private readonly now: () => number;

  constructor(transport: Transport, credentials: CredentialProvider, cache: RegistryCache, now = Date.now) {
    this.transport = transport;
    this.credentials = credentials;
    this.cache = cache;
    this.now = now;
  }

  /** Announce repositories about to be visited so one token request can cover many of them. */
  plan(registry: string, repositories: Iterable<string>): void {
    let set = this.planned.get(registry);
    if (!set) {
      set = new Set();
      this.planned.set(registry, set);
    }
    for (const r of repositories) set.add(r);
  }

  /**
   * Until a registry's scheme is known, lets one request find it out while
   * the others wait, so a scan starting many repositories at once pays one
   * challenge per registry, not one per repository. Returns the release
   * function for the request that goes first.
   */
  async gate(registry: string): Promise<(() => void) | undefined> {
    for (;;) {
      if (this.settled.has(registry) || (await this.cache.authMemory(registry))) return undefined;
      const pending = this.learning.get(registry);
      if (!pending) {
        let release = () => {};
        this.learning.set(registry, new Promise<void>((r) => (release = r)));
        return () => {
          this.settled.add(registry);
          this.learning.delete(registry);
          release();
        };
      }
      await pending;
    }
  }

  /** The header to send before any challenge, from what this registry asked for last time. */
  async proactive(registry: string, scope: string): Promise<Authorization | undefined> {
    const creds = await this.credentials.get(registry);
    if (creds?.registryToken)
      return { header: `Bearer ${creds.registryToken}`, fresh: true, scheme: "bearer", source: creds.source };
    const memory = await this.cache.authMemory(registry);
    if (!memory) return undefined;
    if (memory.scheme === "basic")
      return creds?.username !== undefined
        ? { header: basic(creds), fresh: true, scheme: "basic", source: creds.source }
        : undefined;
    try {
      return await this.bearer(registry, memory, scope, creds, false);
    } catch (err) {
      // A refusal of our credentials is real; anything else may be a stale realm, re-learnt from the next 401.
      if (err instanceof RegistryError && (err.status === 401 || err.status === 403)) throw err;
      return undefined;
    }
  }

  /**
   * Answers a 401. `sent` is what the refused request carried. Throws when
   * answering again could not help: credentials just presented were refused,
   * none are configured, or the scheme is unknown.
   */
  async reactive(
    registry: string,
    scope: string,
    header: string | null,
    sent: Authorization | undefined,
    refusal: string,
  ): Promise<Authorization> {
    const challenges = parseChallenges(header ?? "");
    const challenge =
      challenges.find((c) => c.scheme === "bearer") ?? challenges.find((c) => c.scheme === "basic");
    const creds = await this.credentials.get(registry);
    const refused = (why: string) => new RegistryError(registry, `${refusal} — ${why}`, 401);
    const noCreds = () =>
      refused(
        `the registry needs credentials and none are configured for ${registry} (Docker config, SHIPMATE_REGISTRY_*_USERNAME/PASSWORD or a pull secret)`,
      );
    if (!challenge) {
      throw refused(
        challenges.length
          ? `unsupported authentication scheme ${challenges.map((c) => c.scheme).join(", ")}`
          : "no WWW-Authenticate challenge to answer",
      );
    }
    if (sent?.fresh && (creds?.registryToken || (sent.scheme === "basic" && challenge.scheme === "basic")))
      throw refused(`credentials from ${sent.source ?? "the configuration"} were refused`);
    if (challenge.scheme === "basic") {
      await this.cache.setAuthMemory(registry, { scheme: "basic" });
      if (creds?.username === undefined) throw noCreds();
      return { header: basic(creds), fresh: true, scheme: "basic", source: creds.source };
    }
    const realm = challenge.params.realm;
    if (!realm) throw refused("Bearer challenge without a realm");
    const memory: AuthMemory = { scheme: "bearer", realm, service: challenge.params.service };
    if (sent?.scheme === "bearer" && sent.fresh && sent.realm === realm && sent.service === memory.service)
      throw refused(
        creds
          ? `the token obtained with credentials from ${creds.source} was refused`
          : "anonymous access refused",
      );
    await this.cache.setAuthMemory(registry, memory);
    // A repository-specific challenge scope wins: the registry knows what it needs.
    return this.bearer(registry, memory, challenge.params.scope || scope, creds, true);
  }

  /** Drops a token the registry refused, so the next request fetches a new one. */
  forget(registry: string, sent: Authorization | undefined, scope: string): void {
    if (sent?.scheme === "bearer") this.tokens.delete(this.key(registry, sent.realm, sent.service, scope));
  }

  private key(
    registry: string,
    realm: string | undefined,
    service: string | undefined,
    scope: string,
  ): string {
    return `${registry}\n${realm}\n${service ?? ""}\n${scope}`;
  }

  private valid(key: string): CachedToken | undefined {
    const t = this.tokens.get(key);
    return t && t.expiresAt > this.now() ? t : undefined;
  }

  private async bearer(
    registry: string,
    memory: Extract<AuthMemory, { scheme: "bearer" }>,
    scope: string,
    creds: Credential | undefined,
    forceFresh: boolean,
  ): Promise<Authorization> {
    const key = this.key(registry, memory.realm, memory.service, scope);
    const base = {
      scheme: "bearer" as const,
      realm: memory.realm,
      service: memory.service,
      source: creds?.source,
    };
    if (!forceFresh) {
      const cached = this.valid(key);
      if (cached) return { ...base, header: `Bearer ${cached.token}`, fresh: false };
      const pending = this.inflight.get(key);
      if (pending) return { ...base, header: `Bearer ${(await pending).token}`, fresh: true };
    }
    const scopes = forceFresh ? [scope] : this.batch(registry, memory, scope);
    const keys = scopes.map((s) => this.key(registry, memory.realm, memory.service, s));
    const fetching = this.fetchToken(registry, memory, scopes, creds).catch(async (err) => {
      // A token server that will not hand out several scopes at once still gets asked one by one.
      if (
        scopes.length > 1 &&
        !(err instanceof RegistryError && (err.status === 401 || err.status === 403))
      ) {
        this.noBatching.add(registry);
        return this.fetchToken(registry, memory, [scope], creds);
      }
      throw err;
    });
    for (const k of keys) this.inflight.set(k, fetching);
    try {
      const token = await fetching;
      for (const k of keys) this.tokens.set(k, token);
      return { ...base, header: `Bearer ${token.token}`, fresh: true };
    } finally {
      for (const k of keys) if (this.inflight.get(k) === fetching) this.inflight.delete(k);
    }
  }

  /** The scope asked for plus planned repositories of this registry that have no live token yet. */
  private batch(
    registry: string,
    memory: Extract<AuthMemory, { scheme: "bearer" }>,
    scope: string,
  ): string[] {
    const scopes = [scope];
    const planned = this.planned.get(registry);
    if (!planned || this.noBatching.has(registry) || !scope.endsWith(":pull")) return scopes;
    let length = memory.realm.length + (memory.service?.length ?? 0) + scope.length + 32;
    for (const repo of planned) {
      const s = pullScope(repo);
      const k = this.key(registry, memory.realm, memory.service, s);
      if (s === scope || this.valid(k) || this.inflight.has(k)) continue;
      length += encodeURIComponent(s).length + 7;
      if (length > MAX_TOKEN_URL) break;
      scopes.push(s);
    }
    return scopes;
  }

  /** Distribution token spec: GET realm?service=&scope= (Basic auth with credentials), or the OAuth2 refresh-token POST. */
  private async fetchToken(
    registry: string,
    memory: Extract<AuthMemory, { scheme: "bearer" }>,
    scopes: string[],
    creds: Credential | undefined,
  ): Promise<CachedToken> {
    let url: URL;
    try {
      url = new URL(memory.realm);
    } catch {
      throw new RegistryError(registry, `token realm "${memory.realm}" is not a URL`);
    }
    if (
      url.protocol !== "https:" &&
      !(url.protocol === "http:" && this.transport.isPlainHttpAllowed(url.host))
    )
      throw new RegistryError(
        registry,
        `refusing token realm ${url.origin}: not HTTPS and not loopback or insecure`,
      );
    const what = `token for ${scopes.length === 1 ? scopes[0] : `${scopes.length} scopes`} from ${url.host}`;
    const headers: Record<string, string> = { Accept: "application/json" };
    let method: "GET" | "POST" = "GET";
    let body: string | undefined;
    if (creds?.identityToken) {
      method = "POST";
      const form = new URLSearchParams({
        grant_type: "refresh_token",
        refresh_token: creds.identityToken,
        client_id: "shipmate",
      });
      if (memory.service) form.set("service", memory.service);
      form.set("scope", scopes.join(" "));
      body = form.toString();
      headers["Content-Type"] = "application/x-www-form-urlencoded";
    } else {
      if (memory.service) url.searchParams.set("service", memory.service);
      for (const s of scopes) url.searchParams.append("scope", s);
      if (creds?.username !== undefined) headers.Authorization = basic(creds);
    }
    const ctx = { registry, what };
    const started = this.now();
    const reply = await this.transport.request(
      { registry, url, method, headers, body, kind: "token", what },
      async (res) => {
        if (res.status === 401 || res.status === 403) {
          const failure = await describeFailure(res, ctx);
          throw new RegistryError(
            registry,
            creds
              ? `${failure} — the token server refused the credentials from ${creds.source}`
              : `${failure} — the token server requires credentials and none are configured for ${registry}`,
            res.status,
          );
        }
        if (!res.ok) throw new RegistryError(registry, await describeFailure(res, ctx), res.status);
        return parseJsonBody(await readLimited(res, TOKEN_REPLY_LIMIT, ctx), res, TokenReply, ctx);
      },
    );
    const token = (reply.token ?? reply.access_token)!;
    registerSecret(token);
    if (reply.refresh_token) registerSecret(reply.refresh_token);
    const lifetime = Math.max(reply.expires_in ?? MIN_TOKEN_LIFETIME_S, MIN_TOKEN_LIFETIME_S) * 1000;
    const issued = reply.issued_at ? Date.parse(reply.issued_at) : Number.NaN;
    // Trust issued_at like Docker does, unless a skewed server clock would make the token dead on arrival.
    let start = Number.isNaN(issued) ? started : issued;
    if (start + lifetime < this.now() + 5_000) start = started;
    // Renew a little early so a token never expires between our check and the registry's.
    const margin = Math.min(10_000, lifetime / 10);
    return { token, expiresAt: start + lifetime - margin };
  }
}
