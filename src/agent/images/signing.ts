/**
 * The signing key of an ImageUpdateAutomation run (`spec.git.commit.signingKey`),
 * made ready for git and thrown away after the run. `type: gpg` (Flux's
 * default): the Secret's `git.asc` (and `passphrase`) imported into a
 * keyring of the run alone, a private 0700 folder whose gpg-agent is
 * stopped. `type: ssh`: the Secret's `identity` written 0600 into a private
 * 0700 folder for git's own SSH signing (`gpg.format=ssh`, `ssh-keygen -Y
 * sign` under it); a key protected by the `password` entry is decrypted
 * once into that file by `ssh-keygen -p`, the passphrase handed over
 * through an askpass helper reading a 0600 file (never on a command line),
 * because ssh-keygen cannot be given a passphrase non-interactively while
 * git signs. The folder is removed whatever happens. Errors name the Secret
 * and never carry key material. Which keys are accepted and the git
 * settings: ./signing-rules.ts.
 */

import { execFile, spawnSync } from "node:child_process";
import { chmodSync, mkdirSync, mkdtempSync, readdirSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { promisify } from "node:util";
import { registerSecret } from "../../errors.ts";
import {
  inspectSshKey,
  SIGNING_KEY_ENTRIES,
  type SigningKeyType,
  signingGitConfig,
} from "./signing-rules.ts";

const run = promisify(execFile);

/** A signing key ready for git: settings to add to its configuration, its environment, and the clean-up. */
export interface Signer {
  config: [string, string][];
  env: Record<string, string>;
  dispose(): void;
}

/** A Secret that does not hold a usable signing key: the message names it and says why. */
export class SigningKeyError extends Error {}

/**
 * The folder the agent's signers live in (under its --workdir), made 0700;
 * a signer left there by a process that was stopped mid-run (its key still
 * on disk) is removed first, so no key outlives the run that needed it.
 */
export function signingRoot(dir: string): string {
  mkdirSync(dir, { recursive: true, mode: 0o700 });
  chmodSync(dir, 0o700);
  for (const entry of readdirSync(dir)) {
    if (entry.startsWith("shipmate-sign-")) rmSync(join(dir, entry), { recursive: true, force: true });
  }
  return dir;
}

const decode = (v: string | undefined) => (v ? Buffer.from(v, "base64").toString() : undefined);

/**
 * The key of `secret` (its `data`, base64 as the API returns it) for
 * signing commits of one run; `what` names the Secret in errors.
 */
export async function prepareSigner(
  type: SigningKeyType,
  data: Record<string, string>,
  what: string,
  root: string = tmpdir(),
): Promise<Signer> {
  const entries = SIGNING_KEY_ENTRIES[type];
  const key = decode(data[entries.key]);
  if (!key) throw new SigningKeyError(`${what} has no "${entries.key}" entry (${entries.what})`);
  const passphrase = decode(data[entries.passphrase]);
  if (passphrase) registerSecret(passphrase);
  const home = mkdtempSync(join(root, "shipmate-sign-"));
  chmodSync(home, 0o700);
  const remove = () => rmSync(home, { recursive: true, force: true, maxRetries: 3 });
  try {
    return type === "gpg"
      ? await gpgKeyring(home, key, passphrase, what)
      : await sshKey(home, key, passphrase, what);
  } catch (err) {
    remove();
    throw err;
  }
}

async function gpgKeyring(
  home: string,
  armored: string,
  passphrase: string | undefined,
  what: string,
): Promise<Signer> {
  const env = { PATH: process.env.PATH ?? "", HOME: "/nonexistent", GNUPGHOME: home };
  const dispose = () => {
    // gpg starts an agent for this home: stop it before the home goes.
    spawnSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], { env, stdio: "ignore" });
    rmSync(home, { recursive: true, force: true, maxRetries: 3 });
  };
  try {
    if (passphrase) {
      writeFileSync(join(home, "passphrase"), passphrase, { mode: 0o600 });
      writeFileSync(
        join(home, "gpg.conf"),
        `pinentry-mode loopback\npassphrase-file ${join(home, "passphrase")}\n`,
        {
          mode: 0o600,
        },
      );
    }
    const imported = await runWithInput("gpg", ["--batch", "--no-tty", "--import"], armored, env);
    if (imported.code !== 0)
      throw new SigningKeyError(
        imported.missing
          ? `${what}: gpg is not installed, OpenPGP signing keys cannot be used`
          : `${what}: its git.asc is not an OpenPGP key gpg can import`,
      );
    const listed = await run("gpg", ["--batch", "--with-colons", "--list-secret-keys"], { env }).catch(
      () => ({
        stdout: "",
      }),
    );
    const fpr = /^fpr:+([0-9A-F]{40,64}):/m.exec(listed.stdout)?.[1];
    if (!fpr) throw new SigningKeyError(`${what}: its git.asc holds no secret key`);
    return { config: signingGitConfig("gpg", fpr), env: { GNUPGHOME: home }, dispose };
  } catch (err) {
    spawnSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], { env, stdio: "ignore" });
    throw err;
  }
}

async function sshKey(
  home: string,
  key: string,
  passphrase: string | undefined,
  what: string,
): Promise<Signer> {
  const seen = inspectSshKey(key);
  if (!seen.ok) throw new SigningKeyError(`${what}: its identity: ${seen.problem}`);
  const file = join(home, "signing-key");
  writeFileSync(file, `${key.trim()}\n`, { mode: 0o600 });
  const env = { PATH: process.env.PATH ?? "", HOME: "/nonexistent" };
  if (seen.encrypted) {
    if (!passphrase)
      throw new SigningKeyError(
        `${what}: its identity is passphrase-protected and it has no "password" entry`,
      );
    const secretFile = join(home, "passphrase");
    const askpass = join(home, "askpass");
    writeFileSync(secretFile, passphrase, { mode: 0o600 });
    writeFileSync(askpass, `#!/bin/sh\nexec cat '${secretFile.replaceAll("'", "'\\''")}'\n`, { mode: 0o700 });
    try {
      await run("ssh-keygen", ["-q", "-p", "-N", "", "-f", file], {
        env: { ...env, SSH_ASKPASS: askpass, SSH_ASKPASS_REQUIRE: "force", DISPLAY: ":0" },
        timeout: 60_000,
      });
    } catch (err) {
      const e = err as NodeJS.ErrnoException & { stderr?: string };
      const said = e.stderr ?? "";
      throw new SigningKeyError(
        e.code === "ENOENT"
          ? `${what}: ssh-keygen is not installed, SSH signing keys cannot be used`
          : /ssh_askpass/.test(said)
            ? `${what}: ssh-keygen could not run its askpass helper in ${tmpdir()} to decrypt the identity key (a noexec folder? set TMPDIR)`
            : /incorrect passphrase|bad passphrase/i.test(said)
              ? `${what}: its password does not decrypt the identity key`
              : `${what}: ssh-keygen could not decrypt the identity key`,
      );
    } finally {
      rmSync(secretFile, { force: true });
      rmSync(askpass, { force: true });
    }
  }
  // The private part is only read now: a key ssh-keygen cannot load fails here, not in the middle of a commit.
  try {
    await run("ssh-keygen", ["-y", "-f", file], { env, timeout: 30_000 });
  } catch (err) {
    throw new SigningKeyError(
      (err as NodeJS.ErrnoException).code === "ENOENT"
        ? `${what}: ssh-keygen is not installed, SSH signing keys cannot be used`
        : `${what}: its identity is not a private key ssh-keygen can load`,
    );
  }
  return {
    config: signingGitConfig("ssh", file),
    env: {},
    dispose: () => rmSync(home, { recursive: true, force: true, maxRetries: 3 }),
  };
}

/** Runs `cmd` with `input` on stdin; `missing` when the program is not installed. */
function runWithInput(
  cmd: string,
  args: string[],
  input: string,
  env: Record<string, string>,
): Promise<{ code: number; missing: boolean }> {
  return new Promise((resolve) => {
    const child = execFile(cmd, args, { env }, (err) =>
      resolve({ code: err ? 1 : 0, missing: (err as NodeJS.ErrnoException | null)?.code === "ENOENT" }),
    );
    child.stdin?.on("error", () => undefined);
    child.stdin?.end(input);
  });
}
