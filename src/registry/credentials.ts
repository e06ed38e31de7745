/**
 * Where registry credentials come from: the environment, Docker's config file
 * (inline `auths`, `credHelpers`, `credsStore`), and Kubernetes
 * `dockerconfigjson` Secret files. Every secret loaded is registered with
 * `registerSecret` so no message can carry it.
 */
import { spawn } from "node:child_process";
import { readFile, stat } from "node:fs/promises";
import { homedir } from "node:os";
import { join } from "node:path";
import type { z } from "zod";
import {
  documentValue,
  formatRefusal,
  MAX_SECRET_FILE_BYTES,
  parseDocumentsBounded,
  sizeRefusal,
} from "../config/limits.ts";
import { ConfigError, registerSecret } from "../errors.ts";
import { credentialKeys, DOCKER_HUB, DOCKER_HUB_CREDENTIAL_KEY } from "./reference.ts";
import {
  type AuthEntry,
  CredentialHelperReply,
  DockerConfig,
  KubernetesSecret,
  LegacyDockerCfg,
} from "./schemas.ts";

export interface Credential {
  username?: string;
  password?: string;
  /** OAuth2 refresh token (`identitytoken`, or a helper reply with Username `<token>`), exchanged at the token realm. */
  identityToken?: string;
  /** A bearer token sent to the registry as is (`registrytoken`). */
  registryToken?: string;
  /** Where it came from, for messages: never the secret itself. */
  source: string;
}

export interface CredentialProvider {
  /** Credentials for a normalised registry (`docker.io`, `ghcr.io`, `127.0.0.1:5000`), or undefined for anonymous. */
  get(registry: string): Promise<Credential | undefined>;
}

function remember(c: Credential): Credential {
  registerSecret(c.password);
  registerSecret(c.identityToken);
  registerSecret(c.registryToken);
  return c;
}

/** `SHIPMATE_REGISTRY_<HOST>_USERNAME`: the registry uppercased, every other character than A-Z0-9 as `_`. */
export function envKey(registry: string): string {
  return `SHIPMATE_REGISTRY_${registry.toUpperCase().replace(/[^A-Z0-9]/g, "_")}`;
}

/**
 * `SHIPMATE_REGISTRY_<HOST>_USERNAME` + `_PASSWORD` (e.g. `SHIPMATE_REGISTRY_GHCR_IO_PASSWORD`,
 * `SHIPMATE_REGISTRY_127_0_0_1_5000_USERNAME`). Docker Hub is `DOCKER_IO`.
 */
export function envCredentials(env: NodeJS.ProcessEnv): CredentialProvider {
  return {
    async get(registry) {
      const key = envKey(registry);
      const username = env[`${key}_USERNAME`];
      const password = env[`${key}_PASSWORD`];
      if (!username && !password) return undefined;
      if (!username || !password)
        throw new ConfigError(`${key}_USERNAME and ${key}_PASSWORD must be set together`);
      return remember({ username, password, source: `environment ${key}_*` });
    },
  };
}

/** Docker's ConvertToHostname: `https://index.docker.io/v1/` → `index.docker.io`. */
function keyHost(key: string): string {
  return key
    .replace(/^[a-z][a-z0-9+.-]*:\/\//i, "")
    .split("/")[0]!
    .toLowerCase();
}

function fromAuthEntry(entry: z.infer<typeof AuthEntry>, source: string): Credential | undefined {
  if (entry.registrytoken) return remember({ registryToken: entry.registrytoken, source });
  let { username, password } = entry;
  if (entry.auth) {
    const decoded = Buffer.from(entry.auth, "base64").toString("utf8");
    const colon = decoded.indexOf(":");
    if (colon === -1) throw new ConfigError(`${source}: "auth" is not base64 of "user:password"`);
    registerSecret(entry.auth);
    username = decoded.slice(0, colon);
    password = decoded.slice(colon + 1);
  }
  if (entry.identitytoken) return remember({ username, identityToken: entry.identitytoken, source });
  if (username === undefined || password === undefined || (username === "" && password === ""))
    return undefined;
  return remember({ username, password, source });
}

/** Finds the `auths` entry for a registry the way Docker does: exact key first, then by hostname. */
function lookupAuths(auths: Record<string, z.infer<typeof AuthEntry>>, registry: string) {
  const wanted = credentialKeys(registry);
  for (const key of wanted) if (auths[key]) return { key, entry: auths[key] };
  const hosts = new Set(wanted.map(keyHost));
  for (const [key, entry] of Object.entries(auths)) if (hosts.has(keyHost(key))) return { key, entry };
  return undefined;
}

export interface HelperOptions {
  env?: NodeJS.ProcessEnv;
  timeoutMs?: number;
}

/**
 * The docker-credential-helpers protocol: `docker-credential-<name> get` with
 * the server URL on stdin, `{"Username","Secret"}` on stdout. A helper that
 * has nothing for the server exits non-zero saying "credentials not found".
 */
export async function runCredentialHelper(
  name: string,
  serverUrl: string,
  opts: HelperOptions = {},
): Promise<Credential | undefined> {
  const program = `docker-credential-${name}`;
  const source = `credential helper ${program}`;
  const { code, stdout, stderr } = await new Promise<{ code: number | null; stdout: string; stderr: string }>(
    (resolve, reject) => {
      const child = spawn(program, ["get"], {
        env: opts.env ?? process.env,
        stdio: ["pipe", "pipe", "pipe"],
        timeout: opts.timeoutMs ?? 30_000,
      });
      let out = "";
      let err = "";
      child.stdout.setEncoding("utf8").on("data", (d: string) => {
        out += d;
      });
      child.stderr.setEncoding("utf8").on("data", (d: string) => {
        err += d;
      });
      child.on("error", (e: NodeJS.ErrnoException) =>
        reject(
          new ConfigError(
            e.code === "ENOENT" ? `${source} is not on PATH` : `${source} could not run: ${e.message}`,
          ),
        ),
      );
      child.on("close", (c) => resolve({ code: c, stdout: out, stderr: err }));
      child.stdin.on("error", () => {});
      child.stdin.end(serverUrl);
    },
  );
  if (code !== 0) {
    if (/credentials not found/i.test(stdout + stderr)) return undefined;
    // The helper's own output could echo what it was given; keep the message to the first line.
    const why = (stderr || stdout).trim().split("\n")[0]?.slice(0, 200) ?? "";
    throw new ConfigError(`${source} failed for ${serverUrl} (exit ${code})${why ? `: ${why}` : ""}`);
  }
  let reply: z.infer<typeof CredentialHelperReply>;
  try {
    reply = CredentialHelperReply.parse(JSON.parse(stdout));
  } catch {
    throw new ConfigError(`${source} printed something other than {"Username","Secret"} JSON`);
  }
  registerSecret(reply.Secret);
  if (reply.Username === "<token>") return remember({ identityToken: reply.Secret, source });
  return remember({ username: reply.Username, password: reply.Secret, source });
}

/** Docker's server URL convention for helpers: Docker Hub's legacy index URL, the host elsewhere. */
function helperServerUrl(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_CREDENTIAL_KEY : registry;
}

/**
 * Credentials from a parsed Docker config: `credHelpers[host]` first, then an
 * inline `auths` entry, then `credsStore` (Docker's own precedence; an empty
 * `auths` entry is what `docker login` leaves next to a store).
 */
export function dockerConfigCredentials(
  config: DockerConfig,
  where: string,
  opts: HelperOptions & { helpers?: boolean } = {},
): CredentialProvider {
  const helpers = opts.helpers ?? true;
  return {
    async get(registry) {
      if (helpers && config.credHelpers) {
        for (const key of credentialKeys(registry)) {
          const helper = config.credHelpers[key] ?? config.credHelpers[keyHost(key)];
          if (helper) return runCredentialHelper(helper, helperServerUrl(registry), opts);
        }
      }
      const hit = config.auths ? lookupAuths(config.auths, registry) : undefined;
      if (hit) {
        const c = fromAuthEntry(hit.entry, `${where} auths["${hit.key}"]`);
        if (c) return c;
      }
      if (helpers && config.credsStore)
        return runCredentialHelper(config.credsStore, helperServerUrl(registry), opts);
      return undefined;
    },
  };
}

/** `$DOCKER_CONFIG/config.json`, else `~/.docker/config.json`. */
export function dockerConfigPath(env: NodeJS.ProcessEnv): string {
  return join(env.DOCKER_CONFIG || join(env.HOME || homedir(), ".docker"), "config.json");
}

function parseJsonFile<T>(text: string, file: string, schema: z.ZodType<T>, what: string): T {
  let raw: unknown;
  try {
    raw = JSON.parse(text);
  } catch {
    throw new ConfigError(`not valid JSON (${what})`, { file });
  }
  const parsed = schema.safeParse(raw);
  if (!parsed.success)
    throw new ConfigError(`not a ${what}: ${parsed.error.issues[0]?.message ?? "invalid"}`, { file });
  return parsed.data;
}

/**
 * A credentials file's text, refused unread (one line naming it) when it is
 * larger than any Secret can be; `undefined` when it does not exist and
 * `missingOk` says that means no credentials.
 */
async function readCredentialFile(
  file: string,
  what: string,
  missingOk: boolean,
): Promise<string | undefined> {
  try {
    const size = (await stat(file)).size;
    const tooBig = sizeRefusal(file, size, MAX_SECRET_FILE_BYTES);
    if (tooBig) throw new ConfigError(`${what}: ${tooBig.message}`, { file });
    return await readFile(file, "utf8");
  } catch (e) {
    if (e instanceof ConfigError) throw e;
    if (missingOk && (e as NodeJS.ErrnoException).code === "ENOENT") return undefined;
    throw new ConfigError(`cannot read ${what}: ${(e as Error).message}`, { file });
  }
}

/** Reads Docker's config file once, on first use; a missing file means no credentials. */
export function dockerConfigFileCredentials(file: string, opts: HelperOptions = {}): CredentialProvider {
  let provider: Promise<CredentialProvider | undefined> | undefined;
  const load = async () => {
    const text = await readCredentialFile(file, "Docker config", true);
    if (text === undefined) return undefined;
    return dockerConfigCredentials(parseJsonFile(text, file, DockerConfig, "Docker config file"), file, opts);
  };
  return {
    async get(registry) {
      provider ??= load();
      return (await provider)?.get(registry);
    },
  };
}

/**
 * A Kubernetes Secret file (YAML or JSON, possibly several documents) of type
 * `kubernetes.io/dockerconfigjson` (`.dockerconfigjson`, base64 under `data`
 * or plain under `stringData`) or the legacy `kubernetes.io/dockercfg`.
 * Kubernetes never runs credential helpers, so neither do we here.
 */
export async function loadPullSecret(file: string): Promise<CredentialProvider> {
  const text = (await readCredentialFile(file, "pull secret", false)) as string;
  const providers: CredentialProvider[] = [];
  const { docs, counter, refusal } = parseDocumentsBounded(text, file, { maxBytes: MAX_SECRET_FILE_BYTES });
  if (refusal) throw new ConfigError(formatRefusal(refusal));
  for (const [i, doc] of docs.entries()) {
    if (doc.errors.length > 0) throw new ConfigError(`not valid YAML: ${doc.errors[0]?.message}`, { file });
    const value = documentValue(doc, { file, text, counter });
    if (value.refusal) throw new ConfigError(formatRefusal(value.refusal));
    const secret = KubernetesSecret.safeParse(value.value);
    if (!secret.success) continue;
    const name = secret.data.metadata?.name ?? `document ${i + 1}`;
    const pick = (key: string): string | undefined => {
      const plain = secret.data.stringData?.[key];
      if (plain !== undefined) return plain;
      const encoded = secret.data.data?.[key];
      return encoded === undefined ? undefined : Buffer.from(encoded, "base64").toString("utf8");
    };
    const where = `${file} (Secret ${name})`;
    const json = pick(".dockerconfigjson");
    if (json !== undefined) {
      registerSecret(json);
      providers.push(
        dockerConfigCredentials(parseJsonFile(json, where, DockerConfig, "dockerconfigjson"), where, {
          helpers: false,
        }),
      );
      continue;
    }
    const legacy = pick(".dockercfg");
    if (legacy !== undefined) {
      registerSecret(legacy);
      const auths = parseJsonFile(legacy, where, LegacyDockerCfg, "dockercfg");
      providers.push(dockerConfigCredentials({ auths }, where, { helpers: false }));
    }
  }
  if (providers.length === 0)
    throw new ConfigError(
      'no Secret with ".dockerconfigjson" (type kubernetes.io/dockerconfigjson) or ".dockercfg" found',
      { file },
    );
  return chainCredentials(...providers);
}

/** The first provider that has credentials for a registry wins. */
export function chainCredentials(...providers: CredentialProvider[]): CredentialProvider {
  return {
    async get(registry) {
      for (const p of providers) {
        const c = await p.get(registry);
        if (c) return c;
      }
      return undefined;
    },
  };
}

export interface DefaultCredentialOptions {
  env?: NodeJS.ProcessEnv;
  /** Pull secret files (e.g. resolved from Flux `spec.secretRef`); they win over everything else. */
  secretFiles?: string[];
  /** Docker config file; default `$DOCKER_CONFIG/config.json` or `~/.docker/config.json`. */
  dockerConfig?: string;
}

/** Secret files, then `SHIPMATE_REGISTRY_*` variables, then Docker's config: most explicit first. */
export async function defaultCredentials(opts: DefaultCredentialOptions = {}): Promise<CredentialProvider> {
  const env = opts.env ?? process.env;
  const secrets = await Promise.all((opts.secretFiles ?? []).map(loadPullSecret));
  return chainCredentials(
    ...secrets,
    envCredentials(env),
    dockerConfigFileCredentials(opts.dockerConfig ?? dockerConfigPath(env), { env }),
  );
}

/** Memoises lookups per registry: a helper process runs at most once per registry per client. */
export function cachedCredentials(provider: CredentialProvider): CredentialProvider {
  const memo = new Map<string, Promise<Credential | undefined>>();
  return {
    get(registry) {
      let p = memo.get(registry);
      if (!p) {
        p = provider.get(registry);
        memo.set(registry, p);
      }
      return p;
    },
  };
}
