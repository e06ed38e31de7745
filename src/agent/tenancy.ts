/**
 * Multi-tenancy and remote clusters, the rules without the I/O: whom a
 * Kustomization's requests impersonate, which references the lockdown flags
 * refuse, which kubeconfigs from a Secret are acceptable, and whether a
 * kustomization would pull from the network. Each rule follows Flux's
 * kustomize-controller (`--default-service-account`, `--no-cross-namespace-refs`,
 * `--no-remote-bases`, `spec.serviceAccountName`, `spec.kubeConfig.secretRef`).
 * ./targets.ts turns them into clients.
 */
import { existsSync, readFileSync, statSync } from "node:fs";
import { isAbsolute, join, relative, resolve } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { parse } from "yaml";
import { z } from "zod";
import { ConfigError, registerSecret } from "../errors.ts";

/** The Kubernetes user name of a service account (what the API server authenticates its tokens as). */
export function serviceAccountUser(namespace: string, name: string): string {
  return `system:serviceaccount:${namespace}:${name}`;
}

export interface Impersonation {
  namespace: string;
  name: string;
  /** Where the name came from, for messages. */
  from: "spec.serviceAccountName" | "--default-service-account";
}

/**
 * The service account a Kustomization is reconciled as: its own
 * `serviceAccountName`, else the agent's `--default-service-account`, in the
 * Kustomization's namespace (Flux's rule; with `kubeConfig` the same name and
 * namespace on the remote cluster). The agent's root Kustomization gets no
 * default: it is the agent's own sync, what Flux's multi-tenancy setup runs
 * as the controller's service account.
 */
export function impersonationOf(
  spec: { serviceAccountName?: unknown } | undefined,
  namespace: string,
  opts: { defaultServiceAccount?: string; root?: boolean },
): Impersonation | undefined {
  const own = typeof spec?.serviceAccountName === "string" ? spec.serviceAccountName : "";
  if (own) return { namespace, name: own, from: "spec.serviceAccountName" };
  if (opts.defaultServiceAccount && !opts.root)
    return { namespace, name: opts.defaultServiceAccount, from: "--default-service-account" };
  return undefined;
}

interface RefSpec {
  sourceRef?: { kind?: unknown; name?: unknown; namespace?: unknown };
  dependsOn?: { name?: unknown; namespace?: unknown }[];
}

/**
 * With `--no-cross-namespace-refs`, why a Kustomization is refused: the
 * first reference (sourceRef, then dependsOn) into another namespace. The
 * flag's documented meaning is that references between custom resources
 * stay within one namespace; a dependsOn is such a reference too.
 */
export function crossNamespaceRef(spec: unknown, namespace: string): string | undefined {
  const s = (spec ?? {}) as RefSpec;
  const ref = s.sourceRef;
  if (ref && typeof ref.namespace === "string" && ref.namespace && ref.namespace !== namespace) {
    return `can't access '${String(ref.kind)}/${ref.namespace}/${String(ref.name)}', cross-namespace references have been blocked (--no-cross-namespace-refs)`;
  }
  for (const dep of Array.isArray(s.dependsOn) ? s.dependsOn : []) {
    if (typeof dep?.namespace === "string" && dep.namespace && dep.namespace !== namespace) {
      return `can't depend on '${dep.namespace}/${String(dep.name)}', cross-namespace references have been blocked (--no-cross-namespace-refs)`;
    }
  }
  return undefined;
}

/**
 * The kubeconfig in a Secret's data (base64 values), by Flux's rule: the
 * `key` given in `secretRef.key`, else `value`, else `value.yaml`.
 */
export function kubeConfigText(
  data: Record<string, string> | null | undefined,
  key: string | undefined,
  secret: string,
): string {
  const pick = (k: string) => {
    const v = data?.[k];
    return v === undefined ? undefined : Buffer.from(v, "base64").toString("utf8");
  };
  if (key) {
    const text = pick(key);
    if (text === undefined)
      throw new ConfigError(
        `KubeConfig secret '${secret}' does not contain a '${key}' key with a kubeconfig`,
      );
    return text;
  }
  const text = pick("value") ?? pick("value.yaml");
  if (text === undefined)
    throw new ConfigError(
      `KubeConfig secret '${secret}' does not contain a 'value' (or 'value.yaml') key with a kubeconfig`,
    );
  return text;
}

/** client-go's kubeconfig format (k8s.io/client-go/tools/clientcmd/api/v1/types.go), the fields checked. */
const KubeConfigFile = z.looseObject({
  clusters: z
    .array(z.looseObject({ name: z.string(), cluster: z.record(z.string(), z.unknown()).nullish() }))
    .nullish(),
  users: z
    .array(z.looseObject({ name: z.string(), user: z.record(z.string(), z.unknown()).nullish() }))
    .nullish(),
  contexts: z
    .array(
      z.looseObject({
        name: z.string(),
        context: z.looseObject({ cluster: z.string().optional(), user: z.string().optional() }).nullish(),
      }),
    )
    .nullish(),
  "current-context": z.string().nullish(),
});

/**
 * What a kubeconfig from a Secret may not use, and why: it must be
 * self-contained. Files are the agent's own (its service account token
 * among them), commands would run in the agent's pod; Flux rejects files and
 * ignores exec and insecure TLS unless its `--insecure-kubeconfig-*` flags
 * allow them. Impersonation in the file is refused rather than ignored:
 * `spec.serviceAccountName` says whom to act as.
 */
const CLUSTER_REFUSED: Record<string, string> = {
  "certificate-authority":
    "references a certificate-authority file, only certificate-authority-data is supported",
  "insecure-skip-tls-verify": "disables TLS verification, which is not allowed for remote clusters",
  "proxy-url": "uses a proxy-url, which the agent does not support",
};
const USER_REFUSED: Record<string, string> = {
  tokenFile: "references a tokenFile, only an inline token is supported",
  "token-file": "references a token file, only an inline token is supported",
  "client-certificate": "references a client-certificate file, only client-certificate-data is supported",
  "client-key": "references a client-key file, only client-key-data is supported",
  exec: "uses an exec credential plugin, which the agent does not run (the kubeconfig must be self-contained)",
  "auth-provider":
    "uses an auth-provider plugin, which the agent does not run (the kubeconfig must be self-contained)",
  as: "impersonates a user; set spec.serviceAccountName instead",
  "as-uid": "impersonates a user; set spec.serviceAccountName instead",
  "as-groups": "impersonates groups; set spec.serviceAccountName instead",
  "as-user-extra": "impersonates a user; set spec.serviceAccountName instead",
};

function isSet(v: unknown): boolean {
  return !(v === undefined || v === null || v === false || v === "" || (Array.isArray(v) && !v.length));
}

/**
 * A remote cluster's kubeconfig, checked before anything reads it (a
 * kubeconfig loader would already open a token file): every cluster and
 * user entry must be self-contained, the current context must name both.
 * Credentials found are registered so no message ever prints them.
 */
export function remoteKubeConfig(text: string, where: string): KubeConfig {
  let doc: unknown;
  try {
    doc = parse(text);
  } catch (err) {
    throw new ConfigError(`invalid KubeConfig in ${where}: ${(err as Error).message.split("\n")[0]}`);
  }
  const parsed = KubeConfigFile.safeParse(doc);
  if (!parsed.success) {
    const issue = parsed.error.issues[0];
    throw new ConfigError(`invalid KubeConfig in ${where}: ${issue?.path.join(".")}: ${issue?.message}`);
  }
  const cfg = parsed.data;
  for (const c of cfg.clusters ?? []) {
    for (const [field, why] of Object.entries(CLUSTER_REFUSED))
      if (isSet(c.cluster?.[field]))
        throw new ConfigError(`KubeConfig in ${where}: cluster '${c.name}' ${why}`);
    // Credentials are only ever sent over TLS (the Kubernetes client refuses plain http without insecure TLS).
    if (typeof c.cluster?.server !== "string" || !/^https:\/\//.test(c.cluster.server))
      throw new ConfigError(`KubeConfig in ${where}: cluster '${c.name}' has no https server address`);
  }
  for (const u of cfg.users ?? []) {
    for (const [field, why] of Object.entries(USER_REFUSED))
      if (isSet(u.user?.[field])) throw new ConfigError(`KubeConfig in ${where}: user '${u.name}' ${why}`);
    for (const field of ["token", "password", "client-key-data"]) {
      const v = u.user?.[field];
      if (typeof v === "string") registerSecret(v);
    }
  }
  const current = cfg["current-context"];
  if (!current) throw new ConfigError(`KubeConfig in ${where}: no current-context`);
  const ctx = (cfg.contexts ?? []).find((c) => c.name === current)?.context;
  if (!ctx) throw new ConfigError(`KubeConfig in ${where}: current-context '${current}' is not defined`);
  if (!(cfg.clusters ?? []).some((c) => c.name === ctx.cluster))
    throw new ConfigError(`KubeConfig in ${where}: context '${current}' names no defined cluster`);
  if (ctx.user && !(cfg.users ?? []).some((u) => u.name === ctx.user))
    throw new ConfigError(`KubeConfig in ${where}: context '${current}' names no defined user`);
  const kc = new KubeConfig();
  try {
    kc.loadFromString(text);
  } catch (err) {
    throw new ConfigError(`invalid KubeConfig in ${where}: ${(err as Error).message}`);
  }
  return kc;
}

const KUSTOMIZATION_FILES = ["kustomization.yaml", "kustomization.yml", "Kustomization"];
/** Entries kustomize loads as a file, a directory or a git repository. */
const TREE_FIELDS = ["resources", "bases", "components"];
/** Entries kustomize loads as files, which may also be http(s) URLs. */
const FILE_FIELDS = [
  "crds",
  "configurations",
  "generators",
  "transformers",
  "validators",
  "patchesStrategicMerge",
];
/** A URL or a git remote (scheme, scp-like `git@host:`, go-getter `git::`): never a local path. */
const REMOTE = /^([a-z][a-z0-9+.-]*:\/\/|git@|git::)/i;

export interface RemoteBase {
  /** The kustomization file, relative to `shownFrom` (the source's root). */
  file: string;
  entry: string;
}

/**
 * What a build of `dir` would fetch from the network, for
 * `--no-remote-bases` (Flux: "all resources must refer to local files
 * included in the source artifact"): every `resources`/`bases`/`components`
 * entry that is not a file or directory on disk, and every URL in a field
 * kustomize loads files from, followed through local kustomizations.
 */
export function remoteBases(dir: string, shownFrom: string = dir): RemoteBase[] {
  const found: RemoteBase[] = [];
  const seen = new Set<string>();
  const visit = (d: string) => {
    const abs = resolve(d);
    if (seen.has(abs)) return;
    seen.add(abs);
    const name = KUSTOMIZATION_FILES.find((f) => existsSync(join(abs, f)));
    if (!name) return;
    const file = join(abs, name);
    const shown = relative(shownFrom, file) || name;
    let doc: Record<string, unknown>;
    try {
      doc = (parse(readFileSync(file, "utf8")) ?? {}) as Record<string, unknown>;
    } catch {
      return; // kustomize reports the file's syntax itself
    }
    const strings = (v: unknown): string[] =>
      Array.isArray(v) ? v.filter((x): x is string => typeof x === "string") : [];
    const paths = (v: unknown): string[] =>
      Array.isArray(v)
        ? v
            .map((x) => (x && typeof x === "object" ? (x as { path?: unknown }).path : undefined))
            .filter((x): x is string => typeof x === "string")
        : [];
    for (const field of TREE_FIELDS) {
      for (const entry of strings(doc[field])) {
        const target = isAbsolute(entry) ? entry : join(abs, entry);
        // Anything not on disk is what kustomize would try to fetch (`github.com/org/repo//path?ref=v1`).
        if (REMOTE.test(entry) || !existsSync(target)) {
          found.push({ file: shown, entry });
          continue;
        }
        if (statSync(target).isDirectory()) visit(target);
      }
    }
    const fileEntries = [
      ...FILE_FIELDS.flatMap((f) => strings(doc[f])),
      ...["patches", "patchesJson6902", "replacements"].flatMap((f) => paths(doc[f])),
      ...[doc.configMapGenerator, doc.secretGenerator].flatMap((g) =>
        Array.isArray(g)
          ? g.flatMap((x) => {
              const gen = (x ?? {}) as { files?: unknown; envs?: unknown; env?: unknown };
              return [
                ...strings(gen.files).map((f) => f.slice(f.indexOf("=") + 1)),
                ...strings(gen.envs),
                ...(typeof gen.env === "string" ? [gen.env] : []),
              ];
            })
          : [],
      ),
    ];
    const openapi = (doc.openapi as { path?: unknown } | undefined)?.path;
    if (typeof openapi === "string") fileEntries.push(openapi);
    for (const entry of fileEntries) if (/^https?:\/\//i.test(entry)) found.push({ file: shown, entry });
  };
  visit(dir);
  return found;
}

/** The one-line BuildFailed message for what `remoteBases` found. */
export function remoteBasesMessage(found: readonly RemoteBase[], where: string): string {
  const first = found
    .slice(0, 3)
    .map((f) => `"${f.entry}" in ${f.file}`)
    .join(", ");
  return `remote bases are not allowed (--no-remote-bases): ${where} refers to ${first}${found.length > 3 ? ` and ${found.length - 3} more` : ""}; every resource must be a file or directory of the source`;
}
