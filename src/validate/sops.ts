/**
 * `shipmate validate`'s SOPS check: a Secret committed in plain text where a
 * `.sops.yaml` creation rule says files are encrypted is a leaked secret.
 * sops's own lookup: the nearest `.sops.yaml` from the file's folder up
 * (here: up to the validated folder), its first creation rule whose
 * `path_regex` matches the file's path relative to that folder (a rule
 * without one matches everything); the file is SOPS-managed when that rule
 * names keys.
 */
import { existsSync, readFileSync } from "node:fs";
import { dirname, join, relative, sep } from "node:path";
import { parse } from "yaml";

export interface SopsRule {
  /** Position in creation_rules, for the message. */
  index: number;
  pathRegex?: RegExp;
  pathRegexText?: string;
  /** Whether the rule names any key (age, pgp, KMS, Vault, key groups). */
  encrypts: boolean;
}

export interface SopsConfig {
  file: string;
  rules: SopsRule[];
}

const KEY_FIELDS = [
  "age",
  "pgp",
  "kms",
  "gcp_kms",
  "azure_keyvault",
  "hc_vault_transit_uri",
  "hckms",
  "key_groups",
];

/** Parses one `.sops.yaml`; throws with a one-line reason when it cannot be used. */
export function parseSopsConfig(file: string, text: string): SopsConfig {
  const doc = parse(text) as { creation_rules?: unknown } | null;
  const rules: SopsRule[] = [];
  const list = Array.isArray(doc?.creation_rules) ? doc.creation_rules : [];
  list.forEach((raw, index) => {
    const r = (raw ?? {}) as Record<string, unknown>;
    const encrypts = KEY_FIELDS.some((k) => {
      const v = r[k];
      return Array.isArray(v) ? v.length > 0 : typeof v === "string" ? v.trim() !== "" : Boolean(v);
    });
    if (typeof r.path_regex === "string" && r.path_regex !== "") {
      let re: RegExp;
      try {
        re = new RegExp(r.path_regex, "u");
      } catch {
        throw new Error(`creation_rules[${index}].path_regex is not a valid regular expression`);
      }
      rules.push({ index, pathRegex: re, pathRegexText: r.path_regex, encrypts });
    } else rules.push({ index, encrypts });
  });
  return { file, rules };
}

/** The rule sops would use for `file`, and its config; undefined when no `.sops.yaml` applies. */
export function sopsRuleFor(
  root: string,
  file: string,
  configs: Map<string, SopsConfig | undefined>,
): { config: SopsConfig; rule: SopsRule } | undefined {
  let dir = dirname(file);
  for (;;) {
    if (!configs.has(dir)) {
      const candidate = join(dir, ".sops.yaml");
      configs.set(
        dir,
        existsSync(candidate) ? parseSopsConfig(candidate, readFileSync(candidate, "utf8")) : undefined,
      );
    }
    const config = configs.get(dir);
    if (config) {
      const rel = relative(dir, file).split(sep).join("/");
      const rule = config.rules.find((r) => !r.pathRegex || r.pathRegex.test(rel));
      return rule ? { config, rule } : undefined;
    }
    if (dir === root || dirname(dir) === dir || !`${dir}${sep}`.startsWith(`${root}${sep}`)) return undefined;
    dir = dirname(dir);
  }
}

/** A Kubernetes Secret sops has not encrypted (no top-level `sops` block). */
export function isPlainSecret(object: { apiVersion?: unknown; kind?: unknown; sops?: unknown }): boolean {
  return object.apiVersion === "v1" && object.kind === "Secret" && object.sops === undefined;
}

/** The object without the top-level `sops` block of an encrypted manifest (one with a `mac`). */
export function withoutSopsMetadata<T extends Record<string, unknown>>(object: T): T {
  const sops = object.sops as { mac?: unknown } | undefined;
  if (!sops || typeof sops !== "object" || !sops.mac) return object;
  const { sops: _drop, ...rest } = object;
  return rest as T;
}
