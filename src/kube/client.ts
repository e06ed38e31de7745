/**
 * The line to the API server, shared by the agent, bootstrap and the control
 * commands: authentication and TLS come from
 * @kubernetes/client-node's KubeConfig (kubeconfig files, in-cluster service
 * account, exec plugins); requests go over one keep-alive HTTPS agent so a
 * thousand applies reuse a handful of connections. Every request is counted by
 * verb, which is how the agent reports the writes it made.
 */
import { Agent as HttpAgent, request as httpRequest } from "node:http";
import { Agent as HttpsAgent, request as httpsRequest, type RequestOptions } from "node:https";
import { KubeConfig } from "@kubernetes/client-node";
import type { z } from "zod";
import { ClusterError } from "../errors.ts";
import { Status } from "./schema.ts";

export interface RequestSpec {
  method: "GET" | "POST" | "PUT" | "PATCH" | "DELETE";
  path: string;
  query?: Record<string, string | undefined>;
  body?: unknown;
  contentType?: string;
  accept?: string;
  /** Dry-run requests are validated by the server and never persisted: counted apart from writes. */
  dryRun?: boolean;
}

export interface RequestCounts {
  reads: number;
  writes: number;
  dryRuns: number;
  byVerb: Record<string, number>;
}

/** A failure answered by the API server, with its Status reason and code. */
export class ApiError extends ClusterError {
  override name = "ApiError";
  readonly code: number;
  readonly reason: string;
  readonly status: Status | undefined;
  constructor(what: string, code: number, status: Status | undefined) {
    super(`${what}: ${status?.message ?? `HTTP ${code}`}${status?.reason ? ` (${status.reason})` : ""}`);
    this.code = code;
    this.reason = status?.reason ?? "";
    this.status = status;
  }
}

/** Loads the kubeconfig: an explicit file, else in-cluster when in a pod, else $KUBECONFIG/~/.kube/config. */
export function loadKubeConfig(file?: string): KubeConfig {
  const kc = new KubeConfig();
  try {
    if (file) kc.loadFromFile(file);
    else if (process.env.KUBERNETES_SERVICE_HOST && !process.env.KUBECONFIG) kc.loadFromCluster();
    else kc.loadFromDefault();
  } catch (err) {
    throw new ClusterError(`kubeconfig ${file ?? "(default)"}: ${(err as Error).message}`);
  }
  if (!kc.getCurrentCluster())
    throw new ClusterError(`kubeconfig ${file ?? "(default)"}: no current cluster`);
  return kc;
}

const RETRYABLE_CODES = new Set([
  "ECONNREFUSED",
  "ECONNRESET",
  "EPIPE",
  "ETIMEDOUT",
  "EHOSTUNREACH",
  "ENOTCONN",
  "EAI_AGAIN",
]);

export interface ClientOptions {
  /** Parallel connections to the API server. */
  maxSockets?: number;
  /** How long transport failures (API server restarting) are retried before a request fails. */
  retryForMs?: number;
  requestTimeoutMs?: number;
  /** Request counts shared with other clients (a remote cluster's requests count in the agent's figures). */
  counts?: RequestCounts;
}

/**
 * Who requests are sent as (Kubernetes user impersonation). For a service
 * account only the user is sent, as client-go does for Flux: the API server
 * then adds the account's groups (`system:serviceaccounts`,
 * `system:serviceaccounts:<namespace>`) itself, and the impersonator needs
 * `impersonate` on `serviceaccounts` only, not on `groups`.
 */
export interface Identity {
  user: string;
}

/** What a client and the clients derived from it with `as()` share: one connection pool. */
interface Connection {
  agent: HttpAgent | undefined;
  lastContact: number;
  /**
   * Set when a request gave up on an API server that did not answer (or
   * answered only 503/504, as it does while etcd is down): until `until`,
   * every request fails at once with the same cause instead of each waiting
   * out its own timeout, so a pass over hundreds of objects ends in seconds
   * with one clear reason. Any real answer clears it.
   */
  outage?: { reason: string; until: number };
}

export class KubeClient {
  readonly kc: KubeConfig;
  readonly server: URL;
  readonly counts: RequestCounts;
  /** The identity requests impersonate; undefined: the kubeconfig's own. */
  readonly identity: Identity | undefined;
  private conn: Connection = { agent: undefined, lastContact: 0 };
  private readonly opts: Required<Omit<ClientOptions, "counts">>;

  constructor(kc: KubeConfig, opts: ClientOptions = {}, identity?: Identity) {
    this.kc = kc;
    const cluster = kc.getCurrentCluster();
    if (!cluster) throw new ClusterError("kubeconfig has no current cluster");
    this.server = new URL(cluster.server);
    const { counts, ...rest } = opts;
    this.counts = counts ?? { reads: 0, writes: 0, dryRuns: 0, byVerb: {} };
    this.opts = { maxSockets: 16, retryForMs: 60_000, requestTimeoutMs: 60_000, ...rest };
    this.identity = identity;
  }

  /**
   * A client sending the same requests as `identity`: same API server,
   * credentials, connection pool and request counts. The credentials' owner
   * needs the `impersonate` verb on that identity.
   */
  as(identity: Identity): KubeClient {
    const other = new KubeClient(this.kc, { ...this.opts, counts: this.counts }, identity);
    other.conn = this.conn;
    return other;
  }

  /** When the last request got any answer from the API server (for /readyz). */
  get lastContact(): number {
    return this.conn.lastContact;
  }

  /** The namespace of the current context (or the pod's), "default" when none is set. */
  defaultNamespace(): string {
    const ctx = this.kc.getContextObject(this.kc.getCurrentContext());
    return ctx?.namespace ?? "default";
  }

  private async options(): Promise<RequestOptions> {
    const opts: RequestOptions = {};
    // client-node fills in CA, client certificate and the (possibly refreshed) bearer token.
    await this.kc.applyToHTTPSOptions(opts);
    if (!this.conn.agent) {
      const agentOpts = { keepAlive: true, maxSockets: this.opts.maxSockets };
      this.conn.agent =
        this.server.protocol === "https:"
          ? new HttpsAgent({
              ...agentOpts,
              ca: opts.ca,
              cert: opts.cert,
              key: opts.key,
              ...(opts.rejectUnauthorized === false ? { rejectUnauthorized: false } : {}),
              ...(opts.servername ? { servername: opts.servername } : {}),
            })
          : new HttpAgent(agentOpts);
    }
    return { headers: opts.headers ?? {}, auth: opts.auth, agent: this.conn.agent };
  }

  /** Closes idle connections so a one-shot process can exit (for every client sharing them). */
  close(): void {
    this.conn.agent?.destroy();
    this.conn.agent = undefined;
  }

  private count(spec: RequestSpec): void {
    const verb =
      spec.method === "PATCH" && spec.contentType?.startsWith("application/apply-patch")
        ? "APPLY"
        : spec.method;
    const key = spec.dryRun ? `${verb}(dry-run)` : verb;
    this.counts.byVerb[key] = (this.counts.byVerb[key] ?? 0) + 1;
    if (spec.method === "GET") this.counts.reads++;
    else if (spec.dryRun) this.counts.dryRuns++;
    else this.counts.writes++;
  }

  /** The kubeconfig's headers, the answer type wanted, and this client's identity. */
  private headers(base: RequestOptions, accept: string): Record<string, string> {
    const headers: Record<string, string> = { ...(base.headers as Record<string, string>), accept };
    if (this.identity) {
      // Replaces any impersonation the kubeconfig itself asks for: the API server takes one identity.
      for (const k of Object.keys(headers)) if (/^impersonate-/i.test(k)) delete headers[k];
      headers["impersonate-user"] = this.identity.user;
    }
    return headers;
  }

  /** One request; transport failures are retried with backoff for up to retryForMs. */
  async raw(spec: RequestSpec): Promise<{ code: number; body: unknown }> {
    const outage = this.conn.outage;
    if (outage && Date.now() < outage.until)
      throw new ClusterError(
        `${spec.method} ${spec.path}: API server ${this.server.host} unreachable (${outage.reason}); not retried for ${Math.ceil((outage.until - Date.now()) / 1000)}s`,
      );
    const started = Date.now();
    let delay = 100;
    // How long requests fail at once after one gave up (../../docs/reliability.md).
    const coolDown = Math.max(250, Math.min(this.opts.retryForMs, 5000));
    for (;;) {
      try {
        const res = await this.once(spec);
        // A restarting or overloaded API server answers 429/503 ("try again later"): the same as unreachable.
        if (
          (res.code === 429 || res.code === 503 || res.code === 504) &&
          Date.now() - started <= this.opts.retryForMs
        ) {
          await new Promise((r) => setTimeout(r, delay));
          delay = Math.min(delay * 2, 2000);
          continue;
        }
        if (res.code === 503 || res.code === 504) {
          const message = (res.body as { message?: unknown } | undefined)?.message;
          this.conn.outage = {
            reason: `${res.code}${typeof message === "string" ? `: ${message.split("\n")[0]}` : ""}`,
            until: Date.now() + coolDown,
          };
        } else this.conn.outage = undefined;
        return res;
      } catch (err) {
        const code = (err as NodeJS.ErrnoException).code ?? "";
        if (!RETRYABLE_CODES.has(code) && !(err as Error).message.includes("socket hang up")) throw err;
        if (Date.now() - started > this.opts.retryForMs) {
          const reason = code || (err as Error).message;
          this.conn.outage = { reason, until: Date.now() + coolDown };
          throw new ClusterError(
            `${spec.method} ${spec.path}: API server ${this.server.host} unreachable (${reason})`,
          );
        }
        await new Promise((r) => setTimeout(r, delay));
        delay = Math.min(delay * 2, 2000);
      }
    }
  }

  private async once(spec: RequestSpec): Promise<{ code: number; body: unknown }> {
    const base = await this.options();
    // A server behind a path prefix (Rancher's https://host/k8s/clusters/ID, other API proxies) keeps it.
    const url = new URL(`${this.server.pathname.replace(/\/+$/, "")}${spec.path}`, this.server);
    for (const [k, v] of Object.entries(spec.query ?? {})) if (v !== undefined) url.searchParams.set(k, v);
    if (spec.dryRun) url.searchParams.set("dryRun", "All");
    const payload = spec.body === undefined ? undefined : Buffer.from(JSON.stringify(spec.body));
    const headers: Record<string, string | string[] | number | undefined> = this.headers(
      base,
      spec.accept ?? "application/json",
    );
    if (payload) {
      headers["content-type"] = spec.contentType ?? "application/json";
      headers["content-length"] = payload.length;
    }
    this.count(spec);
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    return await new Promise((resolve, reject) => {
      const req = send(
        url,
        {
          method: spec.method,
          headers,
          agent: base.agent,
          auth: base.auth,
          timeout: this.opts.requestTimeoutMs,
        },
        (res) => {
          const chunks: Buffer[] = [];
          res.on("data", (c: Buffer) => chunks.push(c));
          res.on("error", reject);
          res.on("end", () => {
            this.conn.lastContact = Date.now();
            const text = Buffer.concat(chunks).toString("utf8");
            let body: unknown = text;
            if ((res.headers["content-type"] ?? "").includes("json") && text) {
              try {
                body = JSON.parse(text);
              } catch {
                body = text;
              }
            }
            resolve({ code: res.statusCode ?? 0, body });
          });
        },
      );
      req.on("timeout", () =>
        req.destroy(Object.assign(new Error("request timed out"), { code: "ETIMEDOUT" })),
      );
      req.on("error", reject);
      req.end(payload);
    });
  }

  /** A collection's items (metadata only, unless `full`) and its resourceVersion, to start a watch from. */
  async listForWatch(path: string, full = false): Promise<{ resourceVersion: string; items: unknown[] }> {
    const res = await this.raw({
      method: "GET",
      path,
      accept: full ? "application/json" : PARTIAL_METADATA_LIST_ACCEPT,
    });
    if (res.code !== 200) throw apiError(`list ${path}`, res.code, res.body);
    const body = res.body as { metadata?: { resourceVersion?: string }; items?: unknown[] };
    return { resourceVersion: body.metadata?.resourceVersion ?? "", items: body.items ?? [] };
  }

  /**
   * One watch of a collection from `resourceVersion` (metadata only, unless `full`), calling
   * `onEvent` per event, until the server ends it (timeoutSeconds), the
   * connection drops, or `signal` aborts. Rejects on an ERROR event (410 Gone
   * when the version is too old: list again). Runs on its own connection, so
   * a long watch never holds one of the pool's sockets.
   */
  async watch(
    path: string,
    resourceVersion: string,
    onEvent: (type: string, object: unknown) => void,
    signal: AbortSignal,
    full = false,
  ): Promise<void> {
    const base = await this.options();
    const url = new URL(`${this.server.pathname.replace(/\/+$/, "")}${path}`, this.server);
    url.searchParams.set("watch", "1");
    url.searchParams.set("allowWatchBookmarks", "true");
    url.searchParams.set("timeoutSeconds", String(240 + Math.floor(Math.random() * 120)));
    if (resourceVersion) url.searchParams.set("resourceVersion", resourceVersion);
    const headers = this.headers(base, full ? "application/json" : PARTIAL_METADATA_ACCEPT);
    const pooled = base.agent as HttpsAgent | HttpAgent | undefined;
    const own =
      this.server.protocol === "https:"
        ? new HttpsAgent({ ...((pooled as HttpsAgent | undefined)?.options ?? {}), keepAlive: false })
        : new HttpAgent({ keepAlive: false });
    this.counts.reads++;
    const send = url.protocol === "https:" ? httpsRequest : httpRequest;
    try {
      await new Promise<void>((resolve, reject) => {
        const req = send(url, { method: "GET", headers, agent: own, auth: base.auth, signal }, (res) => {
          if (res.statusCode !== 200) {
            const chunks: Buffer[] = [];
            res.on("data", (c: Buffer) => chunks.push(c));
            res.on("end", () => {
              let body: unknown;
              try {
                body = JSON.parse(Buffer.concat(chunks).toString("utf8"));
              } catch {
                body = undefined;
              }
              reject(apiError(`watch ${path}`, res.statusCode ?? 0, body));
            });
            return;
          }
          this.conn.lastContact = Date.now();
          let pending = "";
          res.setEncoding("utf8");
          res.on("data", (chunk: string) => {
            pending += chunk;
            if (pending.length > 16 * 1024 * 1024) {
              req.destroy(new Error(`watch ${path}: an event over 16 MiB`));
              return;
            }
            for (let nl = pending.indexOf("\n"); nl >= 0; nl = pending.indexOf("\n")) {
              const line = pending.slice(0, nl).trim();
              pending = pending.slice(nl + 1);
              if (!line) continue;
              let event: { type?: string; object?: unknown };
              try {
                event = JSON.parse(line);
              } catch {
                req.destroy(new Error(`watch ${path}: an event that is not JSON`));
                return;
              }
              if (event.type === "ERROR") {
                req.destroy(
                  apiError(`watch ${path}`, (event.object as { code?: number })?.code ?? 0, event.object),
                );
                return;
              }
              if (event.type && event.type !== "BOOKMARK") onEvent(event.type, event.object);
            }
          });
          res.on("error", reject);
          res.on("end", () => resolve());
        });
        req.on("error", reject);
        req.end();
      });
    } finally {
      own.destroy();
    }
  }

  /** A request whose 2xx answer is parsed with `schema`; anything else becomes an ApiError. */
  async call<S extends z.ZodType>(spec: RequestSpec, schema: S, what?: string): Promise<z.infer<S>> {
    const res = await this.raw(spec);
    if (res.code < 200 || res.code > 299)
      throw apiError(what ?? `${spec.method} ${spec.path}`, res.code, res.body);
    const parsed = schema.safeParse(res.body);
    if (!parsed.success) {
      throw new ClusterError(
        `${what ?? `${spec.method} ${spec.path}`}: unexpected answer: ${parsed.error.issues[0]?.message}`,
      );
    }
    return parsed.data;
  }
}

/** Metadata-only answers (PartialObjectMetadata): a watch needs no spec or status. */
const PARTIAL_METADATA_ACCEPT =
  "application/json;as=PartialObjectMetadata;g=meta.k8s.io;v=v1,application/json;q=0.9";
export const PARTIAL_METADATA_LIST_ACCEPT =
  "application/json;as=PartialObjectMetadataList;g=meta.k8s.io;v=v1,application/json;q=0.9";

export function apiError(what: string, code: number, body: unknown): ApiError {
  const status = Status.safeParse(body);
  return new ApiError(what, code, status.success ? status.data : undefined);
}
