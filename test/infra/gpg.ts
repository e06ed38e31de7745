/**
 * A throwaway PGP signing identity for tests: a fresh GNUPGHOME with one
 * passphrase-less ed25519 key, its armored public key (what a Flux
 * verification Secret holds) and the environment git signs with.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, rmSync } from "node:fs";
import { join } from "node:path";
import { tempDir } from "./git.ts";

export interface GpgSigner {
  /** `GNUPGHOME` for git commands that sign (`commit -S`, `tag -s`). */
  env: { GNUPGHOME: string };
  email: string;
  /** ASCII-armored public key. */
  publicKey: string;
  /** The primary key's 16-hex ID, as source-controller reports it. */
  keyId: string;
  remove(): void;
}

export function gpgSigner(name: string, email: string): GpgSigner {
  const root = tempDir("shipmate-gpg-");
  const home = join(root, "home");
  mkdirSync(home, { mode: 0o700 });
  const env = { ...process.env, GNUPGHOME: home };
  execFileSync(
    "gpg",
    [
      "--batch",
      "--quiet",
      "--passphrase",
      "",
      "--quick-gen-key",
      `${name} <${email}>`,
      "ed25519",
      "sign",
      "never",
    ],
    { env, stdio: "ignore" },
  );
  const quiet = {
    env,
    encoding: "utf8" as const,
    stdio: ["ignore", "pipe", "ignore"] as ("ignore" | "pipe")[],
  };
  const publicKey = execFileSync("gpg", ["--armor", "--export", email], quiet);
  const keyId =
    execFileSync("gpg", ["--with-colons", "--list-keys", email], quiet)
      .split("\n")
      .find((l) => l.startsWith("pub:"))
      ?.split(":")[4] ?? "";
  return {
    env: { GNUPGHOME: home },
    email,
    publicKey,
    keyId,
    remove() {
      execFileSync("gpgconf", ["--kill", "all"], { env, stdio: "ignore" });
      rmSync(root, { recursive: true, force: true });
    },
  };
}
