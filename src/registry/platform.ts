/**
 * Platform selection inside an image index, following containerd's
 * normalisation (platforms.Normalize): architecture aliases, and the default
 * variants (`arm64` is `arm64/v8`, `arm` is `arm/v7`, `amd64` is `amd64/v1`).
 */
import { ConfigError } from "../errors.ts";
import type { Descriptor } from "./schemas.ts";

export interface PlatformSpec {
  os: string;
  architecture: string;
  variant?: string;
}

export const DEFAULT_PLATFORM = "linux/amd64";

const ARCH_ALIASES: Record<string, [string, string?]> = {
  x86_64: ["amd64"],
  "x86-64": ["amd64"],
  aarch64: ["arm64"],
  armhf: ["arm", "v7"],
  armel: ["arm", "v6"],
  i386: ["386"],
};
const DEFAULT_VARIANT: Record<string, string> = { arm64: "v8", arm: "v7", amd64: "v1" };

function normalise(p: PlatformSpec): Required<PlatformSpec> {
  const os = p.os.toLowerCase();
  const alias = ARCH_ALIASES[p.architecture.toLowerCase()];
  const architecture = alias?.[0] ?? p.architecture.toLowerCase();
  const variant = (p.variant ?? alias?.[1] ?? DEFAULT_VARIANT[architecture] ?? "").toLowerCase();
  return { os, architecture, variant };
}

/** `os/arch[/variant]`, e.g. `linux/amd64`, `linux/arm64/v8`, `linux/arm/v6`. */
export function parsePlatform(text: string): PlatformSpec {
  const parts = text.split("/");
  if (parts.length < 2 || parts.length > 3 || parts.some((p) => !/^[A-Za-z0-9_.-]+$/.test(p)))
    throw new ConfigError(`invalid platform "${text}": expected os/arch[/variant], e.g. linux/amd64`);
  const [os = "", architecture = "", variant] = parts;
  return variant ? { os, architecture, variant } : { os, architecture };
}

export function formatPlatform(p: PlatformSpec): string {
  return [p.os, p.architecture, p.variant].filter(Boolean).join("/");
}

/** A stable cache key: `linux/arm64` and `linux/arm64/v8` are one platform. */
export function platformKey(p: PlatformSpec): string {
  const n = normalise(p);
  return `${n.os}/${n.architecture}/${n.variant}`;
}

/**
 * The manifest an index offers for `wanted`: an exact (normalised) match,
 * else — when no variant was asked for — the first of that os/arch.
 * Attestation manifests (`unknown/unknown`) never match.
 */
export function selectPlatform(manifests: Descriptor[], wanted: PlatformSpec): Descriptor | undefined {
  const want = normalise(wanted);
  const candidates = manifests.filter((m) => {
    if (!m.platform || m.annotations?.["vnd.docker.reference.type"]) return false;
    const have = normalise(m.platform);
    return have.os === want.os && have.architecture === want.architecture;
  });
  const exact = candidates.find((m) => m.platform && normalise(m.platform).variant === want.variant);
  if (exact || wanted.variant) return exact;
  return candidates[0];
}

export function describePlatforms(manifests: Descriptor[]): string {
  const names = manifests
    .filter((m) => m.platform && m.platform.os !== "unknown")
    .map((m) => formatPlatform(m.platform!));
  return names.length ? names.join(", ") : "none";
}
