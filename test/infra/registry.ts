/**
 * A real OCI registry for tests: Debian's `docker-registry` (CNCF Distribution
 * 2.8, provisioned by scripts/provision/10-registry.sh) on 127.0.0.1 with a
 * random port and filesystem storage in a temp dir, in three auth modes:
 * none, htpasswd (bcrypt) and bearer tokens from a token server of ours
 * (RS256 JWT with an `x5c` header, per the Distribution token spec).
 *
 * The registry runs under a small bash watchdog that kills it and removes
 * its directory when stop() asks, when this process exits, or when this
 * process dies without saying goodbye (checked every half second).
 *
 * Seeding pushes images over the registry API itself (monolithic blob
 * uploads, cross-repository mounts, manifests and indexes, many tags per
 * manifest) with bounded concurrency, fast enough to seed 200 × 300 tags.
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { createHash, createPrivateKey, randomBytes, randomUUID, sign } from "node:crypto";
import { accessSync, constants, mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer, type IncomingMessage, type Server } from "node:http";
import type { AddressInfo } from "node:net";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import bcrypt from "bcryptjs";
import { stringify } from "yaml";
import { freePort } from "./net.ts";

export type AuthMode = "none" | "htpasswd" | "token";

export interface RegistryUser {
  username: string;
  password: string;
  /** Token mode only: what the user may do; default pull on every repository. `*` in a name matches anything. */
  access?: { repository: string; actions: string[] }[];
  /** Token mode only: an OAuth2 refresh token (Docker's `identitytoken`) that stands for this user. */
  identityToken?: string;
}

export interface StartRegistryOptions {
  auth?: AuthMode;
  users?: RegistryUser[];
  /** Token mode: `expires_in` of issued tokens, seconds. Default 300. */
  tokenExpiresIn?: number;
  /** Token mode: which field carries the token in replies. Default "token". */
  tokenField?: "token" | "access_token" | "both";
  /** Token mode: let requests without credentials get (empty-access) tokens, like Docker Hub. Default true. */
  anonymousTokens?: boolean;
  /** Passed through as the registry's `notifications` section (e.g. `{ endpoints: [{ name, url, ... }] }`). */
  notifications?: Record<string, unknown>;
}

export interface TokenRequestRecord {
  user: string | undefined;
  scopes: string[];
}

export interface TestRegistry {
  auth: AuthMode;
  /** `127.0.0.1:<port>`: the registry part of image references. */
  host: string;
  /** `http://127.0.0.1:<port>`. */
  url: string;
  /** The admin user (push and pull everywhere) the seeding helpers use. */
  admin: RegistryUser;
  users: RegistryUser[];
  /** Token mode: every request the token server answered (for counting reuse). */
  tokenRequests: TokenRequestRecord[];
  /** Token mode: the token server's base URL. */
  tokenServerUrl: string | undefined;
  /** The registry's filesystem storage root (`storage.filesystem.rootdirectory`). */
  storageDir: string;
  /** Headers that authorise `actions` on `repositories` for the admin (seeding, raw checks). */
  authHeaders(repositories: string[], actions?: string[]): Record<string, string>;
  /** Registry process output so far, for failure messages. */
  log(): string;
  stop(): Promise<void>;
}

const SERVICE = "shipmate-test-registry";
const ISSUER = "shipmate-test-issuer";

function registryBinary(): string {
  try {
    return execFileSync("bash", ["-c", "command -v docker-registry"], { encoding: "utf8" }).trim();
  } catch {
    throw new Error(
      "docker-registry is not installed: run scripts/provision/10-registry.sh (or scripts/test.sh, which runs it)",
    );
  }
}

async function listen(server: Server): Promise<number> {
  await new Promise<void>((resolve, reject) => {
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => resolve());
  });
  return (server.address() as AddressInfo).port;
}

const b64url = (data: Buffer | string) => Buffer.from(data).toString("base64url");

interface TokenKey {
  keyPem: string;
  certPem: string;
  certDer: string;
}

let signingKey: TokenKey | undefined;
/** One self-signed RSA key/cert per test process, made with the openssl CLI. */
function tokenKey(): TokenKey {
  if (signingKey) return signingKey;
  const dir = mkdtempSync(join(tmpdir(), "shipmate-tokenkey-"));
  try {
    execFileSync(
      "openssl",
      [
        "req",
        "-x509",
        "-newkey",
        "rsa:2048",
        "-nodes",
        "-keyout",
        join(dir, "key.pem"),
        "-out",
        join(dir, "cert.pem"),
        "-days",
        "2",
        "-subj",
        "/CN=shipmate-test-token-signer",
      ],
      { stdio: "ignore" },
    );
    const certPem = readFileSync(join(dir, "cert.pem"), "utf8");
    const certDer = certPem.replace(/-----[^-]+-----/g, "").replace(/\s+/g, "");
    signingKey = { keyPem: readFileSync(join(dir, "key.pem"), "utf8"), certPem, certDer };
    return signingKey;
  } finally {
    rmSync(dir, { recursive: true, force: true });
  }
}

type Access = { type: string; name: string; actions: string[] }[];

/** A Distribution token (docs/spec/auth/jwt.md): RS256, x5c chain, `aud` a plain string as 2.8 wants it. */
function mintToken(sub: string, access: Access, expiresIn: number): string {
  const key = tokenKey();
  const now = Math.floor(Date.now() / 1000);
  const header = { typ: "JWT", alg: "RS256", x5c: [key.certDer] };
  const claims = {
    iss: ISSUER,
    sub,
    aud: SERVICE,
    exp: now + expiresIn,
    nbf: now - 10,
    iat: now,
    jti: randomUUID(),
    access,
  };
  const input = `${b64url(JSON.stringify(header))}.${b64url(JSON.stringify(claims))}`;
  const signature = sign("RSA-SHA256", Buffer.from(input), createPrivateKey(key.keyPem));
  return `${input}.${b64url(signature)}`;
}

function globMatch(pattern: string, name: string): boolean {
  const re = new RegExp(
    `^${pattern
      .split("*")
      .map((p) => p.replace(/[.+?^${}()|[\]\\]/g, "\\$&"))
      .join(".*")}$`,
  );
  return re.test(name);
}

/** scope = `repository:<name>:<actions>`; several may arrive as repeated params or space-separated. */
function parseScopes(values: string[]): { type: string; name: string; actions: string[] }[] {
  const out: { type: string; name: string; actions: string[] }[] = [];
  for (const v of values.flatMap((s) => s.split(" ")).filter(Boolean)) {
    const first = v.indexOf(":");
    const last = v.lastIndexOf(":");
    if (first === -1 || last === first) continue;
    out.push({
      type: v.slice(0, first),
      name: v.slice(first + 1, last),
      actions: v.slice(last + 1).split(","),
    });
  }
  return out;
}

function basicUser(req: IncomingMessage): { username: string; password: string } | undefined {
  const h = req.headers.authorization;
  if (!h?.startsWith("Basic ")) return undefined;
  const decoded = Buffer.from(h.slice(6), "base64").toString("utf8");
  const i = decoded.indexOf(":");
  return i === -1 ? undefined : { username: decoded.slice(0, i), password: decoded.slice(i + 1) };
}

async function startTokenServer(
  users: RegistryUser[],
  opts: StartRegistryOptions,
  records: TokenRequestRecord[],
): Promise<{ server: Server; url: string }> {
  const expiresIn = opts.tokenExpiresIn ?? 300;
  const server = createServer(async (req, res) => {
    const url = new URL(req.url ?? "/", "http://127.0.0.1");
    const reply = (status: number, body: unknown) => {
      res.writeHead(status, { "content-type": "application/json" });
      res.end(JSON.stringify(body));
    };
    if (url.pathname !== "/token") return reply(404, { errors: [{ code: "NOT_FOUND" }] });
    let user: RegistryUser | undefined;
    let refresh = false;
    if (req.method === "POST") {
      // OAuth2 refresh-token grant (docs/spec/auth/oauth.md): form fields instead of query parameters.
      let body = "";
      for await (const chunk of req) body += chunk;
      const form = new URLSearchParams(body);
      if (form.get("grant_type") !== "refresh_token") return reply(400, { error: "unsupported_grant_type" });
      user = users.find(
        (u) => u.identityToken !== undefined && u.identityToken === form.get("refresh_token"),
      );
      if (!user) return reply(401, { error: "invalid_grant" });
      refresh = true;
      url.searchParams.set("service", form.get("service") ?? "");
      for (const scope of (form.get("scope") ?? "").split(" ").filter(Boolean))
        url.searchParams.append("scope", scope);
    } else if (req.method !== "GET") {
      return reply(405, {});
    } else if (req.headers.authorization) {
      const given = basicUser(req);
      user = users.find((u) => u.username === given?.username && u.password === given?.password);
      if (!user) {
        records.push({ user: given?.username, scopes: url.searchParams.getAll("scope") });
        res.setHeader("www-authenticate", 'Basic realm="shipmate-test-token"');
        return reply(401, { errors: [{ code: "UNAUTHORIZED", message: "invalid username or password" }] });
      }
    } else if (opts.anonymousTokens === false) {
      return reply(401, { errors: [{ code: "UNAUTHORIZED", message: "credentials required" }] });
    }
    if (url.searchParams.get("service") !== SERVICE)
      return reply(400, { errors: [{ code: "DENIED", message: "unknown service" }] });
    const requested = parseScopes(url.searchParams.getAll("scope"));
    records.push({ user: user?.username, scopes: url.searchParams.getAll("scope") });
    const rules = user?.access ?? (user ? [{ repository: "*", actions: ["pull"] }] : []);
    const granted: Access = [];
    for (const r of requested) {
      if (r.type !== "repository") continue;
      const allowed = new Set(
        rules.filter((rule) => globMatch(rule.repository, r.name)).flatMap((rule) => rule.actions),
      );
      const actions = r.actions.filter((a) => allowed.has(a) || allowed.has("*"));
      if (actions.length) granted.push({ type: "repository", name: r.name, actions });
    }
    const token = mintToken(user?.username ?? "", granted, expiresIn);
    const field = refresh ? "access_token" : (opts.tokenField ?? "token");
    const body: Record<string, unknown> = { expires_in: expiresIn, issued_at: new Date().toISOString() };
    if (field !== "access_token") body.token = token;
    if (field !== "token") body.access_token = token;
    reply(200, body);
  });
  const port = await listen(server);
  return { server, url: `http://127.0.0.1:${port}` };
}

/**
 * Registry storage goes to tmpfs when there is one: a registry writes a few
 * small files per tag, and on a busy disk that is most of a seed's time.
 */
function scratchRoot(): string {
  try {
    accessSync("/dev/shm", constants.W_OK);
    return "/dev/shm";
  } catch {
    return tmpdir();
  }
}

/** Registries spawned by this process, killed if it exits without stopping them. */
const running = new Set<ChildProcess>();
process.once("exit", () => {
  for (const child of running) child.kill("SIGTERM");
});

/** Kills the registry and removes its directory when told to, or when the parent process is gone. */
const WATCHDOG = `
dir="$1"; cfg="$2"; parent="$3"; bin="$4"
"$bin" serve "$cfg" & child=$!
cleanup() { kill "$child" 2>/dev/null; wait "$child" 2>/dev/null; rm -rf "$dir"; exit 0; }
trap cleanup TERM INT HUP
while kill -0 "$parent" 2>/dev/null && kill -0 "$child" 2>/dev/null; do sleep 0.5 & wait $!; done
cleanup
`;

export async function startRegistry(opts: StartRegistryOptions = {}): Promise<TestRegistry> {
  const auth = opts.auth ?? "none";
  const bin = registryBinary();
  const admin: RegistryUser = {
    username: "shipmate-admin",
    password: randomBytes(12).toString("hex"),
    access: [{ repository: "*", actions: ["pull", "push", "delete"] }],
  };
  const users = [admin, ...(opts.users ?? [])];
  const tokenRequests: TokenRequestRecord[] = [];
  let tokenServer: { server: Server; url: string } | undefined;
  const dir = mkdtempSync(join(scratchRoot(), "shipmate-registry-"));
  const authSection: Record<string, unknown> = {};
  if (auth === "htpasswd") {
    const file = join(dir, "htpasswd");
    // Cost 4 is bcrypt's minimum: the registry checks one hash per request, and tests make thousands.
    writeFileSync(
      file,
      users.map((u) => `${u.username}:${bcrypt.hashSync(u.password, 4)}`).join("\n") + "\n",
    );
    authSection.htpasswd = { realm: "shipmate-test", path: file };
  } else if (auth === "token") {
    const key = tokenKey();
    writeFileSync(join(dir, "token-root.pem"), key.certPem);
    tokenServer = await startTokenServer(users, opts, tokenRequests);
    authSection.token = {
      realm: `${tokenServer.url}/token`,
      service: SERVICE,
      issuer: ISSUER,
      rootcertbundle: join(dir, "token-root.pem"),
    };
  }

  let lastError = "";
  for (let attempt = 0; attempt < 4; attempt++) {
    const port = await freePort();
    const host = `127.0.0.1:${port}`;
    const config: Record<string, unknown> = {
      version: 0.1,
      log: { level: "warn", accesslog: { disabled: true } },
      storage: {
        filesystem: { rootdirectory: join(dir, "data") },
        delete: { enabled: true },
        maintenance: { uploadpurging: { enabled: false } },
        // Every manifest PUT checks its blobs exist; remember them instead of stat-ing the disk each time.
        cache: { blobdescriptor: "inmemory" },
      },
      http: { addr: host, secret: randomBytes(16).toString("hex") },
    };
    if (Object.keys(authSection).length) config.auth = authSection;
    if (opts.notifications) config.notifications = opts.notifications;
    const cfg = join(dir, "config.yml");
    writeFileSync(cfg, stringify(config));

    const child = spawn("bash", ["-c", WATCHDOG, "watchdog", dir, cfg, String(process.pid), bin], {
      stdio: ["ignore", "pipe", "pipe"],
    });
    running.add(child);
    let output = "";
    const keep = (d: Buffer) => {
      output = (output + d.toString("utf8")).slice(-20_000);
    };
    child.stdout?.on("data", keep);
    child.stderr?.on("data", keep);
    const exited = new Promise<void>((r) => child.once("exit", () => r()));
    let gone = false;
    void exited.then(() => {
      gone = true;
      running.delete(child);
    });

    const url = `http://${host}`;
    const deadline = Date.now() + 20_000;
    let ready = false;
    while (!gone && Date.now() < deadline) {
      try {
        const res = await fetch(`${url}/v2/`);
        await res.body?.cancel();
        if (res.status === 200 || res.status === 401) {
          ready = true;
          break;
        }
      } catch {
        // not listening yet
      }
      await new Promise((r) => setTimeout(r, 50));
    }
    if (!ready) {
      child.kill("SIGTERM");
      await exited;
      lastError = output.trim().split("\n").slice(-5).join("\n");
      if (/address already in use/.test(output)) continue;
      tokenServer?.server.close();
      rmSync(dir, { recursive: true, force: true });
      throw new Error(`docker-registry did not become ready on ${host}:\n${lastError}`);
    }

    const authHeaders = (repositories: string[], actions = ["pull", "push"]): Record<string, string> => {
      if (auth === "htpasswd")
        return {
          Authorization: `Basic ${Buffer.from(`${admin.username}:${admin.password}`).toString("base64")}`,
        };
      if (auth === "token")
        return {
          Authorization: `Bearer ${mintToken(
            admin.username,
            repositories.map((name) => ({ type: "repository", name, actions })),
            300,
          )}`,
        };
      return {};
    };

    return {
      auth,
      host,
      url,
      admin,
      users: opts.users ?? [],
      tokenRequests,
      tokenServerUrl: tokenServer?.url,
      storageDir: join(dir, "data"),
      authHeaders,
      log: () => output,
      async stop() {
        if (!gone) {
          child.kill("SIGTERM");
          await exited;
        }
        if (tokenServer) {
          tokenServer.server.closeAllConnections();
          await new Promise((r) => tokenServer?.server.close(r));
        }
        rmSync(dir, { recursive: true, force: true });
      },
    };
  }
  tokenServer?.server.close();
  rmSync(dir, { recursive: true, force: true });
  throw new Error(`docker-registry could not find a free port:\n${lastError}`);
}

// ------------------------------------------------------------------ seeding

export const OCI = {
  index: "application/vnd.oci.image.index.v1+json",
  manifest: "application/vnd.oci.image.manifest.v1+json",
  config: "application/vnd.oci.image.config.v1+json",
  layer: "application/vnd.oci.image.layer.v1.tar+gzip",
};
export const DOCKER = {
  index: "application/vnd.docker.distribution.manifest.list.v2+json",
  manifest: "application/vnd.docker.distribution.manifest.v2+json",
  config: "application/vnd.docker.container.image.v1+json",
  layer: "application/vnd.docker.image.rootfs.diff.tar.gzip",
};

export interface SeedImageOptions {
  repository: string;
  /** Tags the image (or index) is pushed under; none: pushed by digest only. */
  tags?: string[];
  format?: "oci" | "docker";
  /** `os/arch[/variant]` list: more than one (or `index: true`) makes an index. Default `linux/amd64`. */
  platforms?: string[];
  index?: boolean;
  /** The config's `created`; null leaves it out. Default: now. */
  created?: Date | string | null;
  /** Annotations of each platform manifest. */
  annotations?: Record<string, string>;
  /** Annotations of the index. */
  indexAnnotations?: Record<string, string>;
  /** Makes the image distinct from any other with the same settings. */
  salt?: string;
  concurrency?: number;
}

export interface SeededImage {
  /** What the tags point to: the index digest, or the manifest digest for a single-platform image. */
  digest: string;
  mediaType: string;
  /** Platform → manifest digest. */
  manifests: Record<string, string>;
  configs: Record<string, string>;
}

const digestOf = (b: Buffer) => `sha256:${createHash("sha256").update(b).digest("hex")}`;

/** Runs `work` over `items` with at most `limit` at once. */
export async function pool<T>(items: T[], limit: number, work: (item: T) => Promise<void>): Promise<void> {
  let next = 0;
  const runners = Array.from({ length: Math.min(limit, items.length) }, async () => {
    while (next < items.length) {
      const item = items[next++] as T;
      await work(item);
    }
  });
  await Promise.all(runners);
}

async function expectStatus(res: Response, ok: number[], what: string): Promise<void> {
  if (ok.includes(res.status)) {
    await res.body?.cancel();
    return;
  }
  throw new Error(`${what}: HTTP ${res.status} ${(await res.text()).slice(0, 300)}`);
}

/** Which repository already holds each blob, per registry, so other repositories mount instead of uploading. */
const blobHomes = new WeakMap<TestRegistry, Map<string, string>>();

async function pushBlob(reg: TestRegistry, repository: string, blob: Buffer): Promise<string> {
  const digest = digestOf(blob);
  let homes = blobHomes.get(reg);
  if (!homes) {
    homes = new Map();
    blobHomes.set(reg, homes);
  }
  const home = homes.get(digest);
  if (home === repository) return digest;
  if (home) {
    const res = await fetch(
      `${reg.url}/v2/${repository}/blobs/uploads/?mount=${digest}&from=${encodeURIComponent(home)}`,
      { method: "POST", headers: reg.authHeaders([repository, home]) },
    );
    await res.body?.cancel();
    if (res.status === 201) return digest;
  }
  const start = await fetch(`${reg.url}/v2/${repository}/blobs/uploads/`, {
    method: "POST",
    headers: reg.authHeaders([repository]),
  });
  await expectStatus(start, [202], `start upload to ${repository}`);
  const location = new URL(start.headers.get("location") ?? "", reg.url);
  location.searchParams.set("digest", digest);
  const put = await fetch(location, {
    method: "PUT",
    headers: { ...reg.authHeaders([repository]), "Content-Type": "application/octet-stream" },
    body: blob,
  });
  await expectStatus(put, [201], `upload ${digest} to ${repository}`);
  homes.set(digest, repository);
  return digest;
}

async function putManifest(
  reg: TestRegistry,
  repository: string,
  reference: string,
  mediaType: string,
  body: Buffer,
): Promise<void> {
  const res = await fetch(`${reg.url}/v2/${repository}/manifests/${reference}`, {
    method: "PUT",
    headers: { ...reg.authHeaders([repository]), "Content-Type": mediaType },
    body,
  });
  await expectStatus(res, [201], `put manifest ${repository}:${reference}`);
}

/** Pushes one image (or index) and tags it; reuses the shared layer blob everywhere. */
export async function seedImage(reg: TestRegistry, opts: SeedImageOptions): Promise<SeededImage> {
  const types = opts.format === "docker" ? DOCKER : OCI;
  const platforms = opts.platforms ?? ["linux/amd64"];
  const makeIndex = opts.index ?? platforms.length > 1;
  const created =
    opts.created === null
      ? undefined
      : opts.created === undefined
        ? new Date().toISOString()
        : typeof opts.created === "string"
          ? opts.created
          : opts.created.toISOString();
  const layer = Buffer.from("shipmate test layer\n");
  const layerDigest = await pushBlob(reg, opts.repository, layer);
  const manifests: Record<string, string> = {};
  const configs: Record<string, string> = {};
  const descriptors: Record<string, unknown>[] = [];
  for (const platform of platforms) {
    const [os, architecture, variant] = platform.split("/");
    const config = Buffer.from(
      JSON.stringify({
        ...(created !== undefined ? { created } : {}),
        architecture,
        os,
        ...(variant ? { variant } : {}),
        config: { Labels: opts.salt ? { salt: opts.salt } : {} },
        rootfs: { type: "layers", diff_ids: [layerDigest] },
      }),
    );
    const configDigest = await pushBlob(reg, opts.repository, config);
    const manifest = Buffer.from(
      JSON.stringify({
        schemaVersion: 2,
        mediaType: types.manifest,
        config: { mediaType: types.config, digest: configDigest, size: config.length },
        layers: [{ mediaType: types.layer, digest: layerDigest, size: layer.length }],
        ...(opts.annotations ? { annotations: opts.annotations } : {}),
      }),
    );
    const digest = digestOf(manifest);
    manifests[platform] = digest;
    configs[platform] = configDigest;
    if (makeIndex) await putManifest(reg, opts.repository, digest, types.manifest, manifest);
    descriptors.push({
      mediaType: types.manifest,
      digest,
      size: manifest.length,
      platform: { architecture, os, ...(variant ? { variant } : {}) },
    });
    if (!makeIndex) {
      await pool(opts.tags?.length ? opts.tags : [digest], opts.concurrency ?? 16, (tag) =>
        putManifest(reg, opts.repository, tag, types.manifest, manifest),
      );
      return { digest, mediaType: types.manifest, manifests, configs };
    }
  }
  const index = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: types.index,
      manifests: descriptors,
      ...(opts.indexAnnotations ? { annotations: opts.indexAnnotations } : {}),
    }),
  );
  const digest = digestOf(index);
  await pool(opts.tags?.length ? opts.tags : [digest], opts.concurrency ?? 16, (tag) =>
    putManifest(reg, opts.repository, tag, types.index, index),
  );
  return { digest, mediaType: types.index, manifests, configs };
}

/** The same image under many tags: one manifest, one PUT per tag. */
export function seedTags(
  reg: TestRegistry,
  repository: string,
  tags: string[],
  opts: Omit<SeedImageOptions, "repository" | "tags"> = {},
): Promise<SeededImage> {
  return seedImage(reg, { ...opts, repository, tags });
}

/**
 * Many repositories with many tags each (the scan benchmark's fleet):
 * `repos` repositories named `<prefix>-<i>`, each with tags `1.0.0` … and one
 * image (built `created`, default now) behind all of them.
 *
 * `via: "api"` (default) pushes over the registry API. `via: "storage"`
 * writes Distribution's filesystem layout directly (blobs, layer links,
 * manifest revisions, tag links), which the running registry then serves as
 * if pushed: for benchmarks whose subject is reading, where pushing 60,000
 * tags would cost minutes of registry CPU.
 */
export async function seedFleet(
  reg: TestRegistry,
  opts: {
    repos: number;
    tags: number;
    prefix?: string;
    concurrency?: number;
    via?: "api" | "storage";
    created?: Date;
  },
): Promise<string[]> {
  const names = Array.from({ length: opts.repos }, (_, i) => `${opts.prefix ?? "fleet/app"}-${i}`);
  const tags = Array.from({ length: opts.tags }, (_, i) => `1.${Math.floor(i / 10)}.${i % 10}`);
  if (opts.via === "storage") {
    const created = opts.created ?? new Date();
    for (const repository of names) writeImageToStorage(reg.storageDir, repository, tags, created);
    return names;
  }
  const concurrency = opts.concurrency ?? 16;
  // Repositories in parallel, each tagging with a share of the concurrency.
  await pool(names, Math.max(1, Math.floor(concurrency / 4)), async (repository) => {
    await seedTags(reg, repository, tags, { concurrency: 4, created: opts.created });
  });
  return names;
}

/** Distribution 2.x storage layout (registry/storage/paths.go) for one single-platform OCI image under `tags`. */
function writeImageToStorage(root: string, repository: string, tags: string[], created: Date): void {
  const v2 = join(root, "docker", "registry", "v2");
  // Synchronous on purpose: for hundreds of thousands of tiny files it beats the thread pool by far.
  const put = (path: string, content: string | Buffer) => {
    mkdirSync(dirname(path), { recursive: true });
    writeFileSync(path, content);
  };
  const blob = (content: Buffer) => {
    const digest = digestOf(content);
    const hex = digest.slice("sha256:".length);
    put(join(v2, "blobs", "sha256", hex.slice(0, 2), hex, "data"), content);
    return { digest, hex };
  };
  const repo = join(v2, "repositories", repository);
  const layer = Buffer.from("shipmate test layer\n");
  const layerBlob = blob(layer);
  const config = Buffer.from(
    JSON.stringify({
      created: created.toISOString(),
      architecture: "amd64",
      os: "linux",
      config: { Labels: { repository } },
      rootfs: { type: "layers", diff_ids: [layerBlob.digest] },
    }),
  );
  const configBlob = blob(config);
  const manifest = Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: OCI.manifest,
      config: { mediaType: OCI.config, digest: configBlob.digest, size: config.length },
      layers: [{ mediaType: OCI.layer, digest: layerBlob.digest, size: layer.length }],
    }),
  );
  const m = blob(manifest);
  for (const b of [layerBlob, configBlob]) put(join(repo, "_layers", "sha256", b.hex, "link"), b.digest);
  put(join(repo, "_manifests", "revisions", "sha256", m.hex, "link"), m.digest);
  for (const tag of tags) {
    const t = join(repo, "_manifests", "tags", tag);
    put(join(t, "current", "link"), m.digest);
    put(join(t, "index", "sha256", m.hex, "link"), m.digest);
  }
}
