/**
 * GitRepository `spec.verify`: the fetched commit and/or the tag it came
 * through are checked with git's own `verify-commit`/`verify-tag`, against
 * only the public keys of the verification Secret: PGP keys are imported into
 * a keyring made for this one check (a temporary GNUPGHOME, removed after),
 * SSH keys (`*.sshpub`) become an allowed-signers file. It runs on the fetched
 * objects before anything is checked out, so an unsigned or wrongly signed
 * revision never reaches a render. Failures carry source-controller's reasons
 * (InvalidCommitSignature, InvalidTagSignature, InvalidGitObject,
 * InvalidVerificationMode, VerificationError) and the SourceVerified condition
 * it writes.
 */
import { execFile } from "node:child_process";
import { mkdtempSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { FetchedRef } from "../git-source.ts";
import { SourceError, type StatusCondition } from "./handler.ts";

export const SOURCE_VERIFIED = "SourceVerified";

export type VerifyMode = "HEAD" | "head" | "Tag" | "TagAndHEAD";

/** Which objects a mode verifies (source-controller: `head` is `HEAD`). */
export function verifyTargets(mode: VerifyMode): { tag: boolean; head: boolean } {
  return { tag: mode === "Tag" || mode === "TagAndHEAD", head: mode !== "Tag" };
}

/** The mode as source-controller records it in `status.sourceVerificationMode`. */
export function normalMode(mode: VerifyMode): Exclude<VerifyMode, "head"> {
  return mode === "head" ? "HEAD" : mode;
}

/** The Secret's keys by kind: `*.sshpub` are SSH public keys, everything else PGP key rings (Flux's rule). */
export function splitKeys(data: Record<string, string>): { pgp: string[]; ssh: string[] } {
  const pgp: string[] = [];
  const ssh: string[] = [];
  for (const [k, v] of Object.entries(data).sort(([a], [b]) => a.localeCompare(b))) {
    const text = Buffer.from(v, "base64").toString("utf8");
    (k.endsWith(".sshpub") ? ssh : pgp).push(text);
  }
  return { pgp, ssh };
}

/**
 * The key that made a good signature, from `git verify-* --raw` output:
 * PGP as source-controller prints it (the primary key's 16-hex ID),
 * SSH as its SHA256 fingerprint.
 */
export function signerOf(output: string): string | undefined {
  const valid = /\[GNUPG:\] VALIDSIG (?:\S+ ){9}([0-9A-F]{40})/.exec(output);
  if (valid?.[1]) return valid[1].slice(-16);
  const good = /\[GNUPG:\] GOODSIG ([0-9A-F]{16})/.exec(output);
  if (good?.[1]) return good[1];
  const ssh = /Good "git" signature .* key (SHA256:[A-Za-z0-9+/=]+)/.exec(output);
  return ssh?.[1];
}

interface Run {
  code: number;
  out: string;
}

function run(cmd: string, args: string[], cwd: string, env: NodeJS.ProcessEnv, input?: string): Promise<Run> {
  return new Promise((resolve) => {
    const child = execFile(
      cmd,
      args,
      { cwd, env, timeout: 60_000, maxBuffer: 8 * 1024 * 1024 },
      (err, stdout, stderr) => {
        const code = err ? (typeof err.code === "number" ? err.code : -1) : 0;
        resolve({ code, out: `${stdout}\n${stderr}` });
      },
    );
    if (input !== undefined) child.stdin?.end(input);
  });
}

const condition = (status: "True" | "False", reason: string, message: string): StatusCondition => ({
  type: SOURCE_VERIFIED,
  status,
  reason,
  message,
});

function failed(reason: string, message: string, stalled = false): SourceError {
  return new SourceError(reason, message, { stalled, conditions: [condition("False", reason, message)] });
}

/**
 * Verifies what `mode` asks of a fetched revision with the Secret's keys;
 * returns the SourceVerified condition to record, or throws a SourceError
 * carrying it (Ready=False, nothing checked out).
 */
export async function verifyFetched(
  fetched: FetchedRef,
  mode: VerifyMode,
  keyData: Record<string, string>,
): Promise<StatusCondition> {
  const want = verifyTargets(mode);
  if (want.tag && !fetched.tagRef)
    throw failed(
      "InvalidVerificationMode",
      "cannot verify tag object's signature if a tag reference is not specified",
      true,
    );
  const keys = splitKeys(keyData);
  if (keys.pgp.length === 0 && keys.ssh.length === 0)
    throw failed("VerificationError", "public keys secret error: the Secret holds no keys");
  const home = mkdtempSync(join(tmpdir(), "shipmate-gpg-"));
  const env: NodeJS.ProcessEnv = { ...process.env, GNUPGHOME: home, GIT_TERMINAL_PROMPT: "0", LC_ALL: "C" };
  try {
    for (const ring of keys.pgp) {
      const imported = await run("gpg", ["--batch", "--quiet", "--no-tty", "--import"], home, env, ring);
      if (imported.code === -1 || /ENOENT/.test(imported.out))
        throw failed("VerificationError", "gpg is not installed: PGP signatures cannot be verified");
      if (imported.code !== 0)
        throw failed(
          "VerificationError",
          "public keys secret error: a PGP key ring in the Secret could not be read",
        );
    }
    const signers = join(home, "allowed_signers");
    writeFileSync(
      signers,
      keys.ssh
        .flatMap((k) => k.split("\n"))
        .map((l) => l.trim())
        .filter((l) => l && !l.startsWith("#"))
        .map((l) => `* ${l}\n`)
        .join(""),
    );
    const git = (args: string[]) =>
      run(
        "git",
        ["-c", "gpg.program=gpg", "-c", `gpg.ssh.allowedSignersFile=${signers}`, ...args],
        fetched.dir,
        // The repository named outright: the agent's is a git folder with no work tree of its own.
        { ...env, GIT_DIR: fetched.dir },
      );
    const lines: string[] = [];
    if (want.tag && fetched.tagRef) {
      const name = fetched.tagName ?? fetched.tagRef;
      const type = (await git(["cat-file", "-t", fetched.tagRef])).out.trim().split("\n")[0];
      const object = type === "tag" ? (await git(["cat-file", "tag", fetched.tagRef])).out : "";
      const id = (await git(["rev-parse", fetched.tagRef])).out.trim().split("\n")[0];
      const tag = `${name}@sha1:${id}`;
      if (!/-----BEGIN (PGP|SSH) SIGNATURE-----/.test(object))
        throw failed("InvalidGitObject", `cannot verify signature of tag '${tag}' since it is not signed`);
      const res = await git(["verify-tag", "--raw", fetched.tagRef]);
      const key = res.code === 0 ? signerOf(res.out) : undefined;
      if (!key)
        throw failed(
          "InvalidTagSignature",
          `signature verification of tag '${tag}' failed: unable to verify the tag with any of the given keys`,
        );
      lines.push(`tag '${tag}' with key '${key}'`);
    }
    if (want.head) {
      const object = (await git(["cat-file", "commit", fetched.commit])).out;
      if (!/^gpgsig /m.test(object))
        throw failed(
          "InvalidCommitSignature",
          `signature verification of commit '${fetched.commit}' failed: the commit is not signed`,
        );
      const res = await git(["verify-commit", "--raw", fetched.commit]);
      const key = res.code === 0 ? signerOf(res.out) : undefined;
      if (!key)
        throw failed(
          "InvalidCommitSignature",
          `signature verification of commit '${fetched.commit}' failed: unable to verify the commit with any of the given keys`,
        );
      lines.push(`commit '${fetched.commit}' with key '${key}'`);
    }
    return condition("True", "Succeeded", `verified signature of\n\t- ${lines.join("\n\t- ")}`);
  } finally {
    // gpg may have started an agent for this home: stop it before the home goes.
    await run("gpgconf", ["--kill", "all"], home, env);
    rmSync(home, { recursive: true, force: true });
  }
}
