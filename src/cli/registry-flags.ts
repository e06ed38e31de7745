import { resolve } from "node:path";
import { UsageError } from "../errors.ts";
import { defaultCredentials } from "../registry/index.ts";
import type { ScanOptions } from "../scan/index.ts";
import type { CliIO } from "./io.ts";

/** The registry flags every scanning command takes (scan, serve). */
export const REGISTRY_FLAGS = {
  "cache-dir": { type: "string" },
  "no-cache": { type: "boolean" },
  "insecure-registry": { type: "string", multiple: true },
  "pull-secret": { type: "string", multiple: true },
  platform: { type: "string" },
} as const;

export interface RegistryFlagValues {
  "cache-dir"?: string | undefined;
  "no-cache"?: boolean | undefined;
  "insecure-registry"?: string[] | undefined;
  "pull-secret"?: string[] | undefined;
  platform?: string | undefined;
}

/** Scan options from those flags: credentials (pull secrets, environment, Docker config), cache, plain HTTP, platform. */
export async function registryScanOptions(
  values: RegistryFlagValues,
  io: CliIO,
): Promise<Pick<ScanOptions, "credentials" | "cacheDir" | "insecureRegistries" | "platform">> {
  if (values["no-cache"] && values["cache-dir"])
    throw new UsageError("--cache-dir and --no-cache exclude each other");
  const secretFiles = (values["pull-secret"] ?? []).map((f) => resolve(io.cwd, f));
  return {
    credentials: await defaultCredentials({ env: io.env, secretFiles }),
    cacheDir: values["no-cache"]
      ? false
      : values["cache-dir"]
        ? resolve(io.cwd, values["cache-dir"])
        : undefined,
    insecureRegistries: values["insecure-registry"] ?? [],
    ...(values.platform ? { platform: values.platform } : {}),
  };
}
