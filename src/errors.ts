/**
 * Typed errors. Each failure kind carries what the user needs to fix it and
 * renders as one line; the CLI prints `message` and exits with `exitCode`,
 * never a stack trace for a user mistake.
 */
export abstract class ShipmateError extends Error {
  /** 1: the job failed (registry, git, forge); 2: usage or configuration. */
  abstract readonly exitCode: 1 | 2;
}

/** Wrong flags or arguments on the command line. */
export class UsageError extends ShipmateError {
  readonly exitCode = 2;
  override name = "UsageError";
}

/** A policy, repository configuration or manifest that cannot be used as written. */
export class ConfigError extends ShipmateError {
  readonly exitCode = 2;
  override name = "ConfigError";
  readonly file: string | undefined;
  readonly line: number | undefined;
  /** The cause alone, without the file and line `message` starts with. */
  readonly text: string;
  constructor(message: string, where: { file?: string; line?: number } = {}) {
    super(where.file ? `${where.file}${where.line ? `:${where.line}` : ""}: ${message}` : message);
    this.file = where.file;
    this.line = where.line;
    this.text = message;
  }
}

/** A registry that answered wrongly, refused us or could not be reached. */
export class RegistryError extends ShipmateError {
  readonly exitCode = 1;
  override name = "RegistryError";
  readonly registry: string;
  readonly status: number | undefined;
  constructor(registry: string, message: string, status?: number, options?: { cause?: unknown }) {
    super(`registry ${registry}: ${message}`, options);
    this.registry = registry;
    this.status = status;
  }
}

/** An artifact (a Flux OCI artifact's tarball, a directory to archive) that cannot be used as it is. */
export class ArtifactError extends ShipmateError {
  readonly exitCode = 1;
  override name = "ArtifactError";
}

/** An artifact's `created` time that is not RFC 3339: a caller's mistake. */
export class ArtifactCreatedError extends ArtifactError {
  override name = "ArtifactCreatedError";
}

/** A registry answer or blob over the size the caller allowed (the registry, not the network, is at fault). */
export class RegistryTooLargeError extends RegistryError {
  override name = "RegistryTooLargeError";
}

/** Git failed: clone, fetch, commit or push. */
export class GitError extends ShipmateError {
  readonly exitCode = 1;
  override name = "GitError";
}

/** A forge (GitHub, GitLab, Gitea) refused or failed a request. */
export class ForgeError extends ShipmateError {
  readonly exitCode = 1;
  override name = "ForgeError";
  readonly status: number | undefined;
  constructor(message: string, status?: number) {
    super(message);
    this.status = status;
  }
}

/** Kubernetes API or reconcile failures in the agent and cluster commands. */
export class ClusterError extends ShipmateError {
  readonly exitCode = 1;
  override name = "ClusterError";
}

/**
 * Replace anything that looks like a credential in a string meant for a
 * person: userinfo in URLs, bearer/basic header values, and any secret the
 * process registered with `registerSecret`.
 *
 * A registered secret of at least SAFE_SECRET_LENGTH characters is replaced
 * wherever it occurs; a shorter one only as a whole token (not inside a
 * longer word), so a secret "short" never turns "shorter" into "***er",
 * which would both garble the message and give the secret away.
 */
export const SAFE_SECRET_LENGTH = 12;
const secrets = new Map<string, RegExp | undefined>();
export function registerSecret(value: string | undefined): void {
  if (!value || value.length < 4 || secrets.has(value)) return;
  const escaped = value.replace(/[.*+?^${}()|[\]\\]/g, "\\$&");
  secrets.set(
    value,
    value.length >= SAFE_SECRET_LENGTH
      ? undefined
      : new RegExp(`(?<![\\p{L}\\p{N}_])${escaped}(?![\\p{L}\\p{N}_])`, "gu"),
  );
}
export function redact(text: string): string {
  let out = text
    .replace(/(\b[a-z][a-z0-9+.-]*:\/\/)[^/\s@]+@/gi, "$1***@")
    .replace(/\b(Bearer|Basic)\s+[A-Za-z0-9._~+/=-]+/g, "$1 ***");
  for (const [s, whole] of secrets) out = whole ? out.replace(whole, "***") : out.split(s).join("***");
  return out;
}

/** One line for a person: the typed message, or a short form of an unexpected error. */
export function describeError(err: unknown): string {
  if (err instanceof ShipmateError) return redact(err.message);
  if (err instanceof Error) return redact(`${err.name}: ${err.message}`);
  return redact(String(err));
}

/** An image reference (`nginx:1.27`, `ghcr.io/org/app@sha256:…`) that Docker would reject too. */
export class ImageReferenceError extends ConfigError {
  override name = "ImageReferenceError";
  readonly reference: string;
  constructor(reference: string, message: string, where: { file?: string; line?: number } = {}) {
    super(`invalid image reference "${reference}": ${message}`, where);
    this.reference = reference;
  }
}
