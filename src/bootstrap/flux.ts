/**
 * GitRepository and Kustomization objects as `flux create source git` and
 * `flux create kustomization` make them: built from checked flags (pure),
 * printed as YAML for git (`--export`) or written straight to the cluster
 * (src/kube/control.ts `applyFluxObject`), and a source URL checked with
 * `git ls-remote` before anything points at it.
 */
import { execFile } from "node:child_process";
import { posix } from "node:path";
import { stringify } from "yaml";
import { type GitRef, pickSemverTag } from "../agent/git-source.ts";
import { DNS1123_LABEL } from "../config/fleet.ts";
import { GitError, redact, UsageError } from "../errors.ts";
import type { KubeObject } from "../kube/schema.ts";
import { Duration, KUSTOMIZATION_API_VERSION, SOURCE_API_VERSION } from "../kube/schema.ts";

/** Kubernetes object names (DNS-1123 subdomain, RFC 1123), as both kinds require. */
const OBJECT_NAME = /^[a-z0-9]([-a-z0-9]*[a-z0-9])?(\.[a-z0-9]([-a-z0-9]*[a-z0-9])?)*$/;

export function checkObjectName(what: string, name: string): string {
  if (!OBJECT_NAME.test(name) || name.length > 253)
    throw new UsageError(
      `${what} "${name}" is not a valid object name (lowercase letters, digits, '-' and '.')`,
    );
  return name;
}

export function checkNamespace(ns: string): string {
  if (!DNS1123_LABEL.test(ns) || ns.length > 63)
    throw new UsageError(`namespace "${ns}" is not a DNS-1123 label`);
  return ns;
}

export function checkInterval(flag: string, value: string): string {
  if (!Duration.safeParse(value).success)
    throw new UsageError(`${flag} must be a duration such as 30s, 1m or 1h, got "${value}"`);
  return value;
}

/** Git URLs the agent can fetch: http(s), ssh (both spellings), git and file. */
export function checkGitUrl(url: string): string {
  if (/^(https?|ssh|git|file):\/\/\S+$/i.test(url) || /^[^@\s/]+@[^:\s/]+:\S+$/.test(url)) return url;
  throw new UsageError(`--url "${redact(url)}" is not a git URL (https://, ssh://, git@host:path, file://)`);
}

/** Exactly one of --branch, --tag, --semver, as flux create source git asks. */
export function gitRefFromFlags(flags: { branch?: string; tag?: string; semver?: string }): GitRef {
  const given = (["branch", "tag", "semver"] as const).filter((k) => flags[k] !== undefined);
  if (given.length !== 1)
    throw new UsageError(
      given.length
        ? `give only one of --${given.join(", --")}`
        : "give the ref to follow: --branch, --tag or --semver",
    );
  const key = given[0] as "branch" | "tag" | "semver";
  const value = flags[key] ?? "";
  if (!value.trim()) throw new UsageError(`--${key} is empty`);
  if (key === "semver") {
    try {
      pickSemverTag([], value);
    } catch (err) {
      throw new UsageError(`--semver "${value}": ${(err as Error).message}`);
    }
    return { semver: value };
  }
  if (/[\s~^:?*[\\]|\.\.|^-|\/$/.test(value))
    throw new UsageError(`--${key} "${value}" is not a valid git ref name`);
  return key === "branch" ? { branch: value } : { tag: value };
}

/**
 * A Kustomization path as Flux writes it (`./kustomize`), relative to the
 * source's root; one that escapes the repository is refused.
 */
export function checkKsPath(path: string): string {
  const raw = path.trim();
  if (!raw || posix.isAbsolute(raw) || raw.includes("\\"))
    throw new UsageError(`--path "${path}" must be a folder relative to the source's root, e.g. ./kustomize`);
  const norm = posix.normalize(raw).replace(/\/+$/, "");
  if (norm === ".." || norm.startsWith("../"))
    throw new UsageError(`--path "${path}" escapes the repository`);
  return norm === "." ? "./" : `./${norm.replace(/^\.\//, "")}`;
}

/** `--source [GitRepository/]NAME[.NAMESPACE]`, flux's spelling. */
export function parseSourceFlag(value: string): { kind: "GitRepository"; name: string; namespace?: string } {
  const slash = value.indexOf("/");
  const kind = slash < 0 ? "GitRepository" : value.slice(0, slash);
  if (kind !== "GitRepository")
    throw new UsageError(
      `--source kind ${kind} is not supported (the shipmate agent reads GitRepository sources)`,
    );
  const rest = slash < 0 ? value : value.slice(slash + 1);
  const parts = rest.split(".");
  const [name = "", namespace] = parts.length === 2 ? parts : [rest];
  checkObjectName("--source", name);
  if (namespace !== undefined) checkNamespace(namespace);
  return namespace ? { kind, name, namespace } : { kind, name };
}

/** `--depends-on [NAMESPACE/]NAME`. */
export function parseDependsOn(value: string): { name: string; namespace?: string } {
  const [a = "", b] = value.split("/");
  if (b === undefined) return { name: checkObjectName("--depends-on", a) };
  return { namespace: checkNamespace(a), name: checkObjectName("--depends-on", b) };
}

export interface SourceSpecInput {
  name: string;
  namespace: string;
  url: string;
  ref: GitRef;
  interval: string;
  secretRef?: string;
}

export function gitRepositoryObject(i: SourceSpecInput): KubeObject {
  return {
    apiVersion: SOURCE_API_VERSION,
    kind: "GitRepository",
    metadata: { name: i.name, namespace: i.namespace },
    spec: {
      interval: i.interval,
      ref: i.ref,
      ...(i.secretRef ? { secretRef: { name: i.secretRef } } : {}),
      url: i.url,
    },
  };
}

export interface KustomizationSpecInput {
  name: string;
  namespace: string;
  source: { kind: "GitRepository"; name: string; namespace?: string };
  path: string;
  prune: boolean;
  interval: string;
  retryInterval?: string;
  targetNamespace?: string;
  dependsOn: { name: string; namespace?: string }[];
  wait?: boolean;
  timeout?: string;
}

export function kustomizationObject(i: KustomizationSpecInput): KubeObject {
  return {
    apiVersion: KUSTOMIZATION_API_VERSION,
    kind: "Kustomization",
    metadata: { name: i.name, namespace: i.namespace },
    spec: {
      ...(i.dependsOn.length ? { dependsOn: i.dependsOn } : {}),
      interval: i.interval,
      ...(i.retryInterval ? { retryInterval: i.retryInterval } : {}),
      path: i.path,
      prune: i.prune,
      sourceRef: i.source,
      ...(i.targetNamespace ? { targetNamespace: i.targetNamespace } : {}),
      ...(i.timeout ? { timeout: i.timeout } : {}),
      ...(i.wait ? { wait: true } : {}),
    },
  };
}

/** The YAML `--export` prints: one document with a leading `---`, ready to commit. */
export function exportYaml(obj: KubeObject): string {
  return `---\n${stringify(obj, { lineWidth: 0 })}`;
}

function lsRemote(url: string, args: string[], timeoutMs: number): Promise<string> {
  return new Promise((resolve, reject) => {
    execFile(
      "git",
      ["ls-remote", ...args, "--", url],
      { timeout: timeoutMs, env: { ...process.env, GIT_TERMINAL_PROMPT: "0", GIT_ASKPASS: "" } },
      (err, stdout, stderr) => {
        if (!err) return resolve(stdout);
        const lines = `${stderr}\n${err.message}`
          .split("\n")
          .map((l) => l.trim())
          .filter((l) => l && !l.startsWith("Command failed"));
        const line = lines.find((l) => l.startsWith("fatal:")) ?? lines[0] ?? "failed";
        reject(new GitError(`source URL ${redact(url)} does not resolve: ${redact(line)}`));
      },
    );
  });
}

/**
 * Checks that the URL answers and the ref exists there, as the agent would
 * need it; returns the commit (and the tag a semver range picks).
 */
export async function verifyGitSource(
  url: string,
  ref: GitRef,
  timeoutMs = 30_000,
): Promise<{ commit: string; name: string }> {
  const parse = (out: string) =>
    out
      .split("\n")
      .map((l) => l.split("\t"))
      .filter((p): p is [string, string] => p.length === 2);
  if ("branch" in ref) {
    const line = parse(await lsRemote(url, ["--heads"], timeoutMs)).find(
      (p) => p[1] === `refs/heads/${ref.branch}`,
    );
    if (!line) throw new GitError(`source URL ${redact(url)} has no branch "${ref.branch}"`);
    return { commit: line[0], name: ref.branch };
  }
  const tags = parse(await lsRemote(url, ["--tags"], timeoutMs));
  // An annotated tag lists its commit under `<tag>^{}`.
  const commitOf = (tag: string) =>
    (tags.find((p) => p[1] === `refs/tags/${tag}^{}`) ?? tags.find((p) => p[1] === `refs/tags/${tag}`))?.[0];
  const names = tags.map((p) => p[1].replace(/^refs\/tags\//, "")).filter((t) => !t.endsWith("^{}"));
  const tag = "tag" in ref ? ref.tag : pickSemverTag(names, ref.semver);
  const commit = tag ? commitOf(tag) : undefined;
  if (!tag || !commit)
    throw new GitError(
      "tag" in ref
        ? `source URL ${redact(url)} has no tag "${ref.tag}"`
        : `no tag of ${redact(url)} matches semver range "${ref.semver}"`,
    );
  return { commit, name: tag };
}
