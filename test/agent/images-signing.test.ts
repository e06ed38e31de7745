/**
 * The signing key of an ImageUpdateAutomation (src/agent/images/signing-rules.ts
 * and signing.ts), as Flux documents `spec.git.commit.signingKey`: which
 * SSH keys are accepted (read from the key's public part, never
 * decrypted), the git settings of each key type, and the key made ready
 * with the real ssh-keygen — a passphrase-protected key decrypted into a
 * 0600 file of a private folder that is removed afterwards, a bad key
 * refused naming the Secret with no key material in the message.
 */
import { execFileSync } from "node:child_process";
import { mkdirSync, readdirSync, readFileSync, statSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { prepareSigner, SigningKeyError, signingRoot } from "../../src/agent/images/signing.ts";
import { inspectSshKey, signingGitConfig } from "../../src/agent/images/signing-rules.ts";
import { tempDir } from "../infra/git.ts";

const dir = tempDir("shipmate-sshkeys-");
const scratch = tempDir("shipmate-signtmp-");
const savedTmp = process.env.TMPDIR;
const keys: Record<string, string> = {};
const key = (name: string): string => keys[name] ?? "";

/** A fresh key from the real ssh-keygen: `-t type [-b bits] [-m format] -N passphrase`. */
function keygen(name: string, args: string[], passphrase = ""): string {
  execFileSync("ssh-keygen", ["-q", ...args, "-N", passphrase, "-C", name, "-f", join(dir, name)]);
  return readFileSync(join(dir, name), "utf8");
}

/** An OpenSSH key container (PROTOCOL.key) around public blobs of our choosing, for what ssh-keygen will not make here. */
function container(algorithms: string[], cipher = "none"): string {
  const str = (b: Buffer | string) => {
    const buf = Buffer.from(b);
    const n = Buffer.alloc(4);
    n.writeUInt32BE(buf.length);
    return Buffer.concat([n, buf]);
  };
  const count = Buffer.alloc(4);
  count.writeUInt32BE(algorithms.length);
  const blob = Buffer.concat([
    Buffer.from("openssh-key-v1\0", "latin1"),
    str(cipher),
    str(cipher === "none" ? "none" : "bcrypt"),
    str(""),
    count,
    ...algorithms.map((a) => str(Buffer.concat([str(a), str(Buffer.alloc(32, 1))]))),
    str(Buffer.alloc(64, 2)),
  ]);
  const b64 = blob.toString("base64").replace(/.{70}/g, "$&\n");
  return `-----BEGIN OPENSSH PRIVATE KEY-----\n${b64}\n-----END OPENSSH PRIVATE KEY-----\n`;
}

beforeAll(() => {
  keys.ed25519 = keygen("ed25519", ["-t", "ed25519"]);
  keys.p256 = keygen("p256", ["-t", "ecdsa", "-b", "256"]);
  keys.p521 = keygen("p521", ["-t", "ecdsa", "-b", "521"]);
  keys.rsa2048 = keygen("rsa2048", ["-t", "rsa", "-b", "2048"]);
  keys.rsa1024 = keygen("rsa1024", ["-t", "rsa", "-b", "1024"]);
  keys.encrypted = keygen("encrypted", ["-t", "ed25519"], "correct horse battery");
  keys.pem = keygen("pem", ["-t", "rsa", "-b", "2048", "-m", "PEM"]);
  keys.pkcs8 = keygen("pkcs8", ["-t", "ecdsa", "-b", "256", "-m", "PKCS8"]);
  process.env.TMPDIR = scratch;
});

afterAll(() => {
  if (savedTmp === undefined) delete process.env.TMPDIR;
  else process.env.TMPDIR = savedTmp;
  execFileSync("rm", ["-rf", dir, scratch]);
});

describe("which SSH keys sign (Flux: OpenSSH format; ed25519, ECDSA, RSA >= 2048)", () => {
  it.each([
    ["ed25519", () => key("ed25519"), { ok: true, algorithm: "ssh-ed25519", encrypted: false }],
    ["ECDSA P-256", () => key("p256"), { ok: true, algorithm: "ecdsa-sha2-nistp256", encrypted: false }],
    ["ECDSA P-521", () => key("p521"), { ok: true, algorithm: "ecdsa-sha2-nistp521", encrypted: false }],
    ["RSA 2048", () => key("rsa2048"), { ok: true, algorithm: "ssh-rsa", bits: 2048, encrypted: false }],
    [
      "a passphrase-protected key",
      () => key("encrypted"),
      { ok: true, algorithm: "ssh-ed25519", encrypted: true },
    ],
    ["RSA 1024", () => key("rsa1024"), { ok: false, problem: expect.stringContaining("1024 bits") }],
    [
      "PKCS#1 PEM",
      () => key("pem"),
      { ok: false, problem: expect.stringContaining('PEM "RSA PRIVATE KEY"') },
    ],
    ["PKCS#8", () => key("pkcs8"), { ok: false, problem: expect.stringContaining("ssh-keygen -p") }],
    [
      "an OpenPGP key",
      () => "-----BEGIN PGP PRIVATE KEY BLOCK-----\n",
      { ok: false, problem: expect.any(String) },
    ],
    [
      "text",
      () => "not a key",
      { ok: false, problem: expect.stringContaining("not an OpenSSH private key") },
    ],
    [
      "a security key (needs the hardware)",
      () => container(["sk-ssh-ed25519@openssh.com"]),
      { ok: false, problem: expect.stringContaining("sk-ssh-ed25519@openssh.com is not supported") },
    ],
    ["DSA", () => container(["ssh-dss"]), { ok: false, problem: expect.stringContaining("ssh-dss") }],
    [
      "two keys",
      () => container(["ssh-ed25519", "ssh-ed25519"]),
      { ok: false, problem: "the key file holds 2 keys, not one" },
    ],
    [
      "a truncated key",
      () => key("ed25519").split("\n").slice(0, 3).join("\n") + "\n-----END OPENSSH PRIVATE KEY-----",
      { ok: false, problem: "the OpenSSH private key is truncated or corrupt" },
    ],
    [
      "no END line",
      () => key("ed25519").replace("-----END OPENSSH PRIVATE KEY-----", ""),
      { ok: false, problem: "the OpenSSH private key has no END line" },
    ],
  ])("%s", (_name, text, want) => {
    expect(inspectSshKey(text())).toEqual(want);
  });
});

describe("the git settings a commit is signed with", () => {
  it.each([
    [
      "gpg (Flux's default): OpenPGP, the key's fingerprint",
      "gpg",
      "ABCD",
      [
        ["gpg.format", "openpgp"],
        ["user.signingkey", "ABCD"],
      ],
    ],
    [
      "ssh: git's SSH format and the key file (ssh-keygen signs)",
      "ssh",
      "/tmp/x/signing-key",
      [
        ["gpg.format", "ssh"],
        ["user.signingkey", "/tmp/x/signing-key"],
      ],
    ],
  ] as const)("%s", (_name, type, key, want) => {
    expect(signingGitConfig(type, key)).toEqual(want);
  });
});

describe("an SSH key made ready for one run (the real ssh-keygen)", () => {
  const b64 = (s: string) => Buffer.from(s).toString("base64");
  const what = "signing key secret apps/ssh-key";

  it("a passphrase-protected key is decrypted into a 0600 file of a private folder, removed on dispose", async () => {
    const signer = await prepareSigner(
      "ssh",
      { identity: b64(key("encrypted")), password: b64("correct horse battery") },
      what,
    );
    const file = Object.fromEntries(signer.config)["user.signingkey"] ?? "";
    expect(file.startsWith(scratch)).toBe(true);
    expect(statSync(file).mode & 0o777).toBe(0o600);
    expect(statSync(join(file, "..")).mode & 0o777).toBe(0o700);
    // Decrypted (no passphrase left), the same key, and the passphrase file gone.
    expect(inspectSshKey(readFileSync(file, "utf8"))).toMatchObject({ ok: true, encrypted: false });
    expect(execFileSync("ssh-keygen", ["-y", "-f", file], { encoding: "utf8" }).split(" ")[1]).toBe(
      readFileSync(join(dir, "encrypted.pub"), "utf8").split(" ")[1],
    );
    expect(readdirSync(join(file, ".."))).toEqual(["signing-key"]);
    signer.dispose();
    expect(readdirSync(scratch)).toEqual([]);
  });

  it("an unprotected key with a password entry is used as it is (go-git's rule: the password only decrypts)", async () => {
    const signer = await prepareSigner("ssh", { identity: b64(key("p256")), password: b64("unused") }, what);
    const file = Object.fromEntries(signer.config)["user.signingkey"] ?? "";
    expect(readFileSync(file, "utf8").trim()).toBe(key("p256").trim());
    signer.dispose();
    expect(readdirSync(scratch)).toEqual([]);
  });

  it.each([
    ["no identity entry", () => ({}), `${what} has no "identity" entry (an OpenSSH private key)`],
    [
      "a protected key without its password",
      () => ({ identity: b64(key("encrypted")) }),
      `${what}: its identity is passphrase-protected and it has no "password" entry`,
    ],
    [
      "the wrong password",
      () => ({ identity: b64(key("encrypted")), password: b64("wrong horse") }),
      `${what}: its password does not decrypt the identity key`,
    ],
    [
      "a PEM key",
      () => ({ identity: b64(key("pem")) }),
      `${what}: its identity: it is a PEM "RSA PRIVATE KEY", not an OpenSSH private key (convert it with ssh-keygen -p -f FILE)`,
    ],
    [
      "a corrupt private part",
      () => ({ identity: b64(container(["ssh-ed25519"])) }),
      `${what}: its identity is not a private key ssh-keygen can load`,
    ],
  ])("%s is refused naming the Secret, nothing left behind", async (_name, data, message) => {
    const err = await prepareSigner("ssh", data() as Record<string, string>, what).catch((e) => e);
    expect(err).toBeInstanceOf(SigningKeyError);
    expect(err.message).toBe(message);
    expect(err.message).not.toContain("PRIVATE KEY-----");
    expect(readdirSync(scratch)).toEqual([]);
  });
});

describe("signingRoot", () => {
  it("makes the agent's signing folder private and removes keys a stopped run left behind", () => {
    const dir = join(tempDir("signing-root-"), "signing");
    mkdirSync(join(dir, "shipmate-sign-stale"), { recursive: true });
    writeFileSync(join(dir, "shipmate-sign-stale", "key"), "left by a killed run");
    writeFileSync(join(dir, "unrelated"), "kept");
    expect(signingRoot(dir)).toBe(dir);
    expect(readdirSync(dir)).toEqual(["unrelated"]);
    expect(statSync(dir).mode & 0o777).toBe(0o700);
  });
});
