/**
 * Image references, normalised exactly as Docker does (distribution/reference
 * `ParseNormalizedNamed`), so a reference means to shipmate what it means to
 * `docker pull`, Flux and Kubernetes.
 */
import { ImageReferenceError } from "../errors.ts";

/** The registry Docker assumes when a reference names none. */
export const DOCKER_HUB = "docker.io";
/** Where Docker Hub's registry API actually answers. */
const DOCKER_HUB_API = "registry-1.docker.io";
/** The key `docker login` writes Docker Hub credentials under. */
export const DOCKER_HUB_CREDENTIAL_KEY = "https://index.docker.io/v1/";

const NAME_TOTAL_LENGTH_MAX = 255;

// Grammar of github.com/distribution/reference (regexp.go), translated to JS; `\w` means the same in both.
const alphaNumeric = "[a-z0-9]+";
const separator = "(?:[._]|__|[-]+)";
const pathComponent = `${alphaNumeric}(?:${separator}${alphaNumeric})*`;
const domainComponent = "(?:[a-zA-Z0-9]|[a-zA-Z0-9][a-zA-Z0-9-]*[a-zA-Z0-9])";
const ipv6 = "\\[(?:[a-fA-F0-9:]+)\\]";
const host = `(?:${domainComponent}(?:\\.${domainComponent})*|${ipv6})`;
const DOMAIN_RE = new RegExp(`^${host}(?::[0-9]+)?$`);
const PATH_RE = new RegExp(`^${pathComponent}(?:/${pathComponent})*$`);
/** OCI distribution spec, "Pulling manifests": a tag is `[a-zA-Z0-9_][a-zA-Z0-9._-]{0,127}`. */
export const TAG_RE = /^[\w][\w.-]{0,127}$/;
const DIGEST_RE = /^[A-Za-z][A-Za-z0-9]*(?:[-_+.][A-Za-z][A-Za-z0-9]*)*:[0-9a-fA-F]{32,}$/;
const IDENTIFIER_RE = /^[a-f0-9]{64}$/;
/** go-digest's registered algorithms and the length of their lowercase hex encoding. */
const DIGEST_HEX_LENGTH: Record<string, number> = { sha256: 64, sha384: 96, sha512: 128 };

export interface ImageReference {
  /** Registry as written in references and credential stores, normalised: `docker.io`, `ghcr.io`, `127.0.0.1:5000`. */
  registry: string;
  /** Repository path inside the registry: `library/nginx`, `team/app`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** Whether `tag` is a valid OCI tag (tags that are not are skipped when listing). */
export function isValidTag(tag: string): boolean {
  return TAG_RE.test(tag);
}

/** Checks a digest the way go-digest does: a known algorithm and lowercase hex of its exact length. */
export function validateDigest(digest: string): string | undefined {
  if (!DIGEST_RE.test(digest)) return "digest must look like sha256:<64 hex characters>";
  const [algorithm = "", hex = ""] = digest.split(":");
  const expected = DIGEST_HEX_LENGTH[algorithm];
  if (expected === undefined) return `unsupported digest algorithm "${algorithm}"`;
  if (hex.length !== expected || !/^[a-f0-9]+$/.test(hex))
    return `a ${algorithm} digest has ${expected} lowercase hex characters`;
  return undefined;
}

/** distribution/reference splitDockerDomain: the first component is a registry only if it looks like a host. */
function splitDomain(name: string): [string, string] {
  const slash = name.indexOf("/");
  let domain: string;
  let remainder: string;
  const first = slash === -1 ? "" : name.slice(0, slash);
  if (slash === -1 || (!/[.:]/.test(first) && first !== "localhost" && first.toLowerCase() === first)) {
    domain = DOCKER_HUB;
    remainder = name;
  } else {
    domain = first;
    remainder = name.slice(slash + 1);
  }
  if (domain === "index.docker.io") domain = DOCKER_HUB;
  if (domain === DOCKER_HUB && !remainder.includes("/")) remainder = `library/${remainder}`;
  return [domain, remainder];
}

/**
 * Parses and normalises a reference: `nginx` → docker.io/library/nginx,
 * `localhost:5000/a/b:1.0@sha256:…`. Throws ImageReferenceError with Docker's reason.
 */
export function parseReference(input: string): ImageReference {
  const fail = (why: string): never => {
    throw new ImageReferenceError(input, why);
  };
  if (input === "") fail("it is empty");
  if (input !== input.trim()) fail("it has leading or trailing whitespace");
  if (IDENTIFIER_RE.test(input)) fail("a 64-character hex string is an image ID, not a repository name");

  let rest = input;
  let digest: string | undefined;
  const at = rest.indexOf("@");
  if (at !== -1) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    const why = validateDigest(digest);
    if (why) fail(why);
  }
  const [registry, remainder] = splitDomain(rest);
  let path = remainder;
  let tag: string | undefined;
  const colon = remainder.lastIndexOf(":");
  if (colon !== -1) {
    path = remainder.slice(0, colon);
    tag = remainder.slice(colon + 1);
    if (!TAG_RE.test(tag)) fail(`tag "${tag}" is not [A-Za-z0-9_][A-Za-z0-9_.-]{0,127}`);
  }
  if (!DOMAIN_RE.test(registry)) fail(`"${registry}" is not a valid registry host[:port]`);
  if (path === "") fail("the repository name is empty");
  if (path.toLowerCase() !== path) fail(`repository name "${path}" must be lowercase`);
  if (!PATH_RE.test(path))
    fail(
      `repository name "${path}" must be lowercase letters and digits separated by "/", ".", "_", "__" or "-"`,
    );
  if (registry.length + 1 + path.length > NAME_TOTAL_LENGTH_MAX)
    fail(`the name must not be longer than ${NAME_TOTAL_LENGTH_MAX} characters`);

  const ref: ImageReference = { registry, repository: path };
  if (tag !== undefined) ref.tag = tag;
  if (digest !== undefined) ref.digest = digest;
  return ref;
}

/** `registry/repository`, fully qualified: `docker.io/library/nginx`. */
export function repositoryName(ref: Pick<ImageReference, "registry" | "repository">): string {
  return `${ref.registry}/${ref.repository}`;
}

/** The full normalised reference: `docker.io/library/nginx:1.27@sha256:…`. */
/** `host[:port]/path` → normalised repository; undefined for something no registry would accept. */
export function normaliseImage(name: string): string | undefined {
  try {
    return repositoryName(parseReference(name));
  } catch {
    return undefined;
  }
}

export function formatReference(ref: ImageReference): string {
  return `${repositoryName(ref)}${ref.tag !== undefined ? `:${ref.tag}` : ""}${ref.digest !== undefined ? `@${ref.digest}` : ""}`;
}

/** Docker's short form (`nginx`, `user/app`, `ghcr.io/org/app`), as people write it in manifests. */
export function familiarName(ref: Pick<ImageReference, "registry" | "repository">): string {
  if (ref.registry !== DOCKER_HUB) return repositoryName(ref);
  return ref.repository.startsWith("library/") && ref.repository.split("/").length === 2
    ? ref.repository.slice("library/".length)
    : ref.repository;
}

/** The host:port the registry API is reached at (Docker Hub's API lives elsewhere than its name). */
export function apiHost(registry: string): string {
  return registry === DOCKER_HUB ? DOCKER_HUB_API : registry;
}

/**
 * The keys a credential for `registry` may be stored under, most specific
 * first: Docker Hub credentials live under `https://index.docker.io/v1/`.
 */
export function credentialKeys(registry: string): string[] {
  if (registry === DOCKER_HUB)
    return [DOCKER_HUB_CREDENTIAL_KEY, "index.docker.io", DOCKER_HUB, DOCKER_HUB_API];
  return [registry];
}

/** The host part without port, brackets kept off IPv6: `127.0.0.1`, `::1`, `ghcr.io`. */
export function hostname(registry: string): string {
  if (registry.startsWith("[")) return registry.slice(1, registry.indexOf("]"));
  const colon = registry.lastIndexOf(":");
  return colon === -1 ? registry : registry.slice(0, colon);
}

/** Loopback registries are reached over plain HTTP, like Docker does. */
export function isLoopback(registry: string): boolean {
  const h = hostname(registry).toLowerCase();
  return h === "localhost" || h === "::1" || /^127\.\d{1,3}\.\d{1,3}\.\d{1,3}$/.test(h);
}
