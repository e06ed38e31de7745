/**
 * Kustomization `spec.decryption` (provider `sops`): SOPS-encrypted objects
 * in the build output are decrypted in memory before apply, as Flux's
 * kustomize-controller does, with the real `sops` binary (built from
 * github.com/getsops/sops/v3 by scripts/provision/70-sops.sh): the format is
 * sops's own, with its MAC checks, so only sops itself reads it.
 *
 *  - keys: the age identities in the `*.agekey` entries of the Secret named
 *    by `decryption.secretRef`, passed to sops in `SOPS_AGE_KEY` (never a
 *    file), and the PGP keys in its `*.asc` entries, imported by the real
 *    `gpg` into a keyring of this decryption alone (a private 0700 folder,
 *    its gpg-agent stopped and the folder removed when the decryption ends,
 *    as kustomize-controller keeps its keyring); sops runs with no
 *    environment but PATH (and that keyring), so no key or config of the
 *    agent's own leaks in;
 *  - objects: every object whose top-level `sops` holds a `mac` (whole
 *    encrypted manifests), and Secret `data` entries that are themselves
 *    SOPS files (kustomize `secretGenerator` `files:`), output in the format
 *    of the entry's extension; `kustomize.toolkit.fluxcd.io/decrypt:
 *    disabled` skips an object;
 *  - plaintext goes to sops on stdin and comes back on stdout, never on
 *    disk; every decrypted value is registered with `registerSecret`, so no
 *    message the agent prints (status, events, logs) can carry it.
 */
import { spawn, spawnSync } from "node:child_process";
import { chmodSync, existsSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { z } from "zod";
import { ClusterError, registerSecret } from "../errors.ts";
import { apiError, type KubeClient } from "../kube/client.ts";
import { canonicalJson, describeRef } from "../kube/objects.ts";
import { KubeObject } from "../kube/schema.ts";

/** kustomize.toolkit.fluxcd.io/v1 Decryption (api/v1/kustomization_types.go). */
export const Decryption = z.strictObject({
  provider: z.literal("sops"),
  secretRef: z.strictObject({ name: z.string().min(1) }).optional(),
});
export type Decryption = z.infer<typeof Decryption>;

export const DECRYPT_ANNOTATION = "kustomize.toolkit.fluxcd.io/decrypt";

/** Retried on the next interval, as Flux does: the Secret or the key may be fixed meanwhile. */
export class DecryptionError extends ClusterError {
  override name = "DecryptionError";
}

/** `$SHIPMATE_SOPS`, else `sops` on PATH. */
export function findSops(env: NodeJS.ProcessEnv = process.env): string {
  if (env.SHIPMATE_SOPS) return env.SHIPMATE_SOPS;
  for (const dir of (env.PATH ?? "").split(delimiter))
    if (dir && existsSync(join(dir, "sops"))) return join(dir, "sops");
  throw new DecryptionError(
    "sops is not on PATH; the agent decrypts with the real sops (scripts/provision/70-sops.sh)",
  );
}

export interface DecryptionKeys {
  /** age identities, one per line, for SOPS_AGE_KEY. */
  age: string;
  /** Armored PGP keys (`*.asc` entries), imported into a keyring of their own for sops. */
  pgp?: { entry: string; armored: string }[];
  /** The keyring the PGP keys were imported into, while a decryption runs. */
  gnupgHome?: string;
  /** Entry names sops cannot use here (cloud KMS credentials), for the error when nothing decrypts. */
  unused: string[];
}

/** The keys of `decryption.secretRef` (none without one). */
export async function loadDecryptionKeys(
  client: KubeClient,
  namespace: string,
  decryption: Decryption,
): Promise<DecryptionKeys> {
  if (!decryption.secretRef) return { age: "", pgp: [], unused: [] };
  const what = `decryption Secret ${namespace}/${decryption.secretRef.name}`;
  const res = await client.raw({
    method: "GET",
    path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(decryption.secretRef.name)}`,
  });
  if (res.code === 404) throw new DecryptionError(`${what} not found`);
  if (res.code !== 200) throw apiError(what, res.code, res.body);
  const data = (res.body as { data?: Record<string, string> | null }).data ?? {};
  const age: string[] = [];
  const pgp: { entry: string; armored: string }[] = [];
  const unused: string[] = [];
  for (const [k, v] of Object.entries(data)) {
    const text = Buffer.from(v, "base64").toString("utf8");
    registerSecret(text.trim());
    if (k.endsWith(".agekey")) {
      for (const line of text.split("\n")) {
        const t = line.trim();
        if (t.startsWith("AGE-SECRET-KEY-")) {
          registerSecret(t);
          age.push(t);
        }
      }
    } else if (k.endsWith(".asc")) {
      for (const line of text.split("\n")) if (line.trim().length >= 16) registerSecret(line.trim());
      pgp.push({ entry: k, armored: text });
    } else unused.push(k);
  }
  return { age: age.join("\n"), pgp, unused };
}

/** A whole manifest encrypted by sops: a top-level `sops` with a `mac`. */
export function isSopsEncrypted(obj: Record<string, unknown>): boolean {
  const sops = obj.sops;
  return typeof sops === "object" && sops !== null && Boolean((sops as Record<string, unknown>).mac);
}

export function decryptionDisabled(obj: KubeObject): boolean {
  return obj.metadata.annotations?.[DECRYPT_ANNOTATION]?.toLowerCase() === "disabled";
}

type SopsFormat = "json" | "yaml" | "dotenv" | "ini" | "binary";

/** The format of a SOPS file inside a Secret entry, by the marker sops writes; undefined when it is not one. */
export function entryFormat(text: string): SopsFormat | undefined {
  if (text.includes('"mac": "ENC[')) return "json";
  if (text.includes("sops_mac=ENC[")) return "dotenv";
  if (text.includes("[sops]")) return "ini";
  if (text.includes("mac: ENC[")) return "yaml";
  return undefined;
}

/** The output format for a Secret entry, by its key's extension (sops's FormatForPath; .dockerconfigjson is JSON). */
export function formatForKey(key: string): SopsFormat {
  if (key.endsWith(".dockerconfigjson")) return "json";
  if (/\.ya?ml$/.test(key)) return "yaml";
  if (key.endsWith(".json")) return "json";
  if (key.endsWith(".env")) return "dotenv";
  if (key.endsWith(".ini")) return "ini";
  return "binary";
}

/** A SOPS value left encrypted after decryption: a dotenv `secretGenerator` `envs:` source, which kustomize splits before we see it. */
function stillEncrypted(obj: KubeObject): string | undefined {
  if (obj.kind !== "Secret") return undefined;
  const data = (obj as { data?: Record<string, unknown> }).data ?? {};
  for (const [k, v] of Object.entries(data)) {
    if (k === "sops_mac" || k.startsWith("sops_")) return k;
    if (typeof v === "string" && Buffer.from(v, "base64").toString("utf8").startsWith("ENC[AES256_GCM,"))
      return k;
  }
  const stringData = (obj as { stringData?: Record<string, unknown> }).stringData ?? {};
  for (const [k, v] of Object.entries(stringData))
    if (typeof v === "string" && v.startsWith("ENC[AES256_GCM,")) return k;
  return undefined;
}

export interface SopsRunner {
  decrypt(
    input: string,
    inputType: SopsFormat,
    outputType: SopsFormat,
    keys: DecryptionKeys,
  ): Promise<string>;
}

/** Runs the sops binary: input on stdin, plaintext on stdout, the key in its environment only. */
export class SopsCli implements SopsRunner {
  private readonly bin: string;
  private readonly timeoutMs: number;
  constructor(bin: string = findSops(), timeoutMs = 60_000) {
    this.bin = bin;
    this.timeoutMs = timeoutMs;
  }

  decrypt(
    input: string,
    inputType: SopsFormat,
    outputType: SopsFormat,
    keys: DecryptionKeys,
  ): Promise<string> {
    return new Promise((resolve, reject) => {
      const child = spawn(
        this.bin,
        // `decrypt` with no file reads stdin (Node's stdio pipes are sockets, which /dev/stdin cannot open).
        ["decrypt", "--input-type", inputType, "--output-type", outputType],
        {
          env: {
            PATH: process.env.PATH ?? "",
            HOME: "/nonexistent",
            SOPS_AGE_KEY: keys.age,
            ...(keys.gnupgHome ? { GNUPGHOME: keys.gnupgHome } : {}),
          },
          cwd: "/",
          stdio: ["pipe", "pipe", "pipe"],
        },
      );
      const out: Buffer[] = [];
      const err: Buffer[] = [];
      child.stdout.on("data", (d: Buffer) => out.push(d));
      child.stderr.on("data", (d: Buffer) => err.push(d));
      child.on("error", (e) => reject(new DecryptionError(`sops could not run: ${e.message}`)));
      // A file encrypted for a cloud KMS makes sops try the network; never let that hold a reconcile.
      let timedOut = false;
      const timer = setTimeout(() => {
        timedOut = true;
        child.kill("SIGKILL");
      }, this.timeoutMs);
      child.on("close", (code) => {
        clearTimeout(timer);
        if (timedOut)
          reject(new DecryptionError(`sops did not finish within ${Math.round(this.timeoutMs / 1000)}s`));
        else if (code === 0) resolve(Buffer.concat(out).toString("utf8"));
        else reject(new DecryptionError(sopsReason(Buffer.concat(err).toString("utf8"), keys)));
      });
      child.stdin.on("error", () => undefined); // sops may exit before reading everything
      child.stdin.end(input);
    });
  }
}

/**
 * One line from sops's stderr that says why, with nothing of the input in
 * it: sops quotes input it cannot parse ("Input string … does not match"),
 * and that text may be a secret.
 */
export function sopsReason(stderr: string, keys: DecryptionKeys): string {
  const lines = stderr
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  let reason: string;
  if (lines.some((l) => /Failed to get the data key|0 successful groups|no identity matched/i.test(l))) {
    reason =
      keys.age || keys.pgp?.length
        ? "none of the age or PGP keys in the decryption Secret is a recipient of it"
        : "the decryption Secret holds no age or PGP key (*.agekey, *.asc entries)";
    if (keys.unused.length)
      reason += `; entries not used by the shipmate agent: ${keys.unused.join(", ")} (only age and PGP keys are supported)`;
  } else if (lines.some((l) => /MAC mismatch/i.test(l))) {
    reason = "MAC mismatch: the encrypted file was changed after encryption (or by the build)";
  } else if (
    lines.some((l) => /does not match sops' data format|Error unmarshalling|sops metadata not found/i.test(l))
  ) {
    reason = "not a valid SOPS document";
  } else {
    reason = (lines[0] ?? "sops failed").replace(/"[^"]*"/g, '"…"').slice(0, 200);
  }
  return reason;
}

/** A decrypted value: returned to the caller and kept out of every message, line by line too. */
function keep(v: string, into: string[]): void {
  into.push(v);
  registerSecret(v);
  for (const line of v.split("\n")) registerSecret(line.trim());
}

/**
 * Decrypts what needs it; objects that are not encrypted come back as they
 * were. A failure names the object (and the Secret entry), never a value.
 */
export async function decryptObjects(
  objects: readonly KubeObject[],
  keys: DecryptionKeys,
  sops: SopsRunner,
): Promise<{ objects: KubeObject[]; sensitive: string[] }> {
  if (!keys.pgp?.length) return await decryptAll(objects, keys, sops);
  const gnupgHome = importPgpKeys(keys.pgp);
  try {
    return await decryptAll(objects, { ...keys, gnupgHome }, sops);
  } finally {
    forgetKeyring(gnupgHome);
  }
}

/**
 * A keyring of its own for the decryption Secret's PGP keys, imported by
 * the real gpg (kustomize-controller imports them the same way); an entry
 * gpg cannot import fails the decryption, naming the entry, as in Flux.
 */
function importPgpKeys(keys: { entry: string; armored: string }[]): string {
  const home = mkdtempSync(join(tmpdir(), "shipmate-gnupg-"));
  chmodSync(home, 0o700);
  for (const key of keys) {
    const r = spawnSync("gpg", ["--batch", "--no-tty", "--homedir", home, "--import"], {
      input: key.armored,
      env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", GNUPGHOME: home },
      encoding: "utf8",
      timeout: 30_000,
    });
    if (r.status !== 0) {
      forgetKeyring(home);
      throw new DecryptionError(
        r.error
          ? `gpg could not run to import the PGP keys: ${r.error.message}`
          : `the decryption Secret's entry ${key.entry} is not a PGP key gpg can import`,
      );
    }
  }
  return home;
}

/** Stops the keyring's gpg-agent and removes it with the keys. */
function forgetKeyring(home: string): void {
  spawnSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], {
    env: { PATH: process.env.PATH ?? "", GNUPGHOME: home },
    timeout: 10_000,
  });
  rmSync(home, { recursive: true, force: true });
}

async function decryptAll(
  objects: readonly KubeObject[],
  keys: DecryptionKeys,
  sops: SopsRunner,
): Promise<{ objects: KubeObject[]; sensitive: string[] }> {
  const out: KubeObject[] = [];
  const sensitive: string[] = [];
  for (const obj of objects) {
    const where = describeRef({
      kind: obj.kind,
      namespace: obj.metadata.namespace ?? "",
      name: obj.metadata.name ?? "",
    });
    if (decryptionDisabled(obj)) {
      out.push(obj);
      continue;
    }
    let next: KubeObject = obj;
    if (isSopsEncrypted(obj)) {
      let text: string;
      try {
        // Keys sorted, as Flux hands sops the object (Go's JSON of a map): the MAC checks out on that form.
        text = await sops.decrypt(canonicalJson(obj), "json", "json", keys);
      } catch (err) {
        throw new DecryptionError(`decryption failed for ${where}: ${(err as Error).message}`);
      }
      let value: unknown;
      try {
        value = JSON.parse(text);
      } catch {
        throw new DecryptionError(`decryption failed for ${where}: sops returned no JSON`);
      }
      const parsed = KubeObject.safeParse(value);
      if (!parsed.success)
        throw new DecryptionError(
          `decryption failed for ${where}: the decrypted document is not a Kubernetes object`,
        );
      for (const v of secretValues(value)) keep(v, sensitive);
      next = parsed.data;
    } else if (obj.kind === "Secret") {
      const data = (obj as { data?: Record<string, unknown> }).data;
      if (data && typeof data === "object") {
        const replaced: Record<string, unknown> = { ...data };
        let changed = false;
        for (const [key, v] of Object.entries(data)) {
          if (typeof v !== "string") continue;
          const text = Buffer.from(v, "base64").toString("utf8");
          const format = entryFormat(text);
          if (!format) continue;
          let plain: string;
          try {
            plain = await sops.decrypt(text, format, formatForKey(key), keys);
          } catch (err) {
            throw new DecryptionError(
              `decryption failed for ${where} data '${key}': ${(err as Error).message}`,
            );
          }
          keep(plain, sensitive);
          replaced[key] = Buffer.from(plain, "utf8").toString("base64");
          changed = true;
        }
        if (changed) next = { ...obj, data: replaced } as KubeObject;
      }
    }
    const left = stillEncrypted(next);
    if (left)
      throw new DecryptionError(
        `decryption failed for ${where}: entry '${left}' is still SOPS-encrypted (a dotenv file in a secretGenerator envs: list is split by kustomize before decryption; list it under files: instead)`,
      );
    out.push(next);
  }
  return { objects: out, sensitive };
}

/** The values of a decrypted object's `stringData` and `data` (base64 and decoded), and of any other string field. */
function secretValues(v: unknown): string[] {
  const out: string[] = [];
  const walk = (x: unknown, key: string, inData: boolean): void => {
    if (typeof x === "string") {
      if (key === "apiVersion" || key === "kind") return;
      out.push(x);
      if (inData) out.push(Buffer.from(x, "base64").toString("utf8"));
    } else if (Array.isArray(x)) for (const y of x) walk(y, key, inData);
    else if (x && typeof x === "object")
      for (const [k, y] of Object.entries(x)) {
        if (k === "metadata") continue;
        walk(y, k, inData || k === "data" || k === "binaryData");
      }
  };
  const o = v as Record<string, unknown>;
  if (o.kind === "Secret") {
    // Only the payload is secret; `type: Opaque` masked in every message would help nobody.
    walk(o.stringData, "stringData", false);
    walk(o.data, "data", true);
  } else walk(v, "", false);
  return out;
}
