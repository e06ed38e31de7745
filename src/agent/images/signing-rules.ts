/**
 * The pure rules of `spec.git.commit.signingKey` as Flux's
 * image-automation-controller documents them: which Secret entries a key
 * type reads (`gpg`: `git.asc` + `passphrase`; `ssh`: `identity` +
 * `password`), which SSH private keys are accepted (OpenSSH format only;
 * ed25519, ECDSA P-256/384/521, RSA of 2048 bits or more), read from the
 * key's unencrypted public part without ever decrypting it, and the git
 * settings a commit is signed with. Tested with tables
 * (test/agent/images-signing-rules.test.ts); the I/O is ./signing.ts.
 */

export type SigningKeyType = "gpg" | "ssh";

/** The Secret entries of each key type: the key, and its passphrase when it has one. */
export const SIGNING_KEY_ENTRIES: Record<SigningKeyType, { key: string; passphrase: string; what: string }> =
  {
    gpg: { key: "git.asc", passphrase: "passphrase", what: "an ASCII-armored OpenPGP key" },
    ssh: { key: "identity", passphrase: "password", what: "an OpenSSH private key" },
  };

/** How git signs: the key format and the key (a fingerprint in a keyring, or a key file). */
export function signingGitConfig(type: SigningKeyType, key: string): [string, string][] {
  if (type === "gpg")
    return [
      ["gpg.format", "openpgp"],
      ["user.signingkey", key],
    ];
  // git hands the key file to `ssh-keygen -Y sign -n git -f KEY` (gpg.ssh.program's default, left alone:
  // simple-git refuses any gpg.*program setting it is handed).
  return [
    ["gpg.format", "ssh"],
    ["user.signingkey", key],
  ];
}

export type SshKeyInspection =
  | { ok: true; algorithm: string; bits?: number; encrypted: boolean }
  | { ok: false; problem: string };

const OPENSSH_BEGIN = "-----BEGIN OPENSSH PRIVATE KEY-----";
const OPENSSH_END = "-----END OPENSSH PRIVATE KEY-----";
const MAGIC = "openssh-key-v1\0";
const ACCEPTED = [
  "ssh-ed25519",
  "ecdsa-sha2-nistp256",
  "ecdsa-sha2-nistp384",
  "ecdsa-sha2-nistp521",
  "ssh-rsa",
];

/**
 * What an `identity` entry holds, from the OpenSSH key container's public
 * part (PROTOCOL.key: magic, cipher, kdf, kdf options, key count, public
 * keys, then the private section, encrypted when the cipher is not
 * "none"). Any other format, more than one key, an unsupported algorithm
 * or a short RSA key is a problem naming what to do.
 */
export function inspectSshKey(text: string): SshKeyInspection {
  const trimmed = text.trim();
  if (!trimmed.startsWith(OPENSSH_BEGIN)) {
    const pem = /^-----BEGIN ([A-Z0-9 ]+)-----/.exec(trimmed)?.[1];
    return {
      ok: false,
      problem: pem
        ? `it is a PEM "${pem}", not an OpenSSH private key (convert it with ssh-keygen -p -f FILE)`
        : "it is not an OpenSSH private key (-----BEGIN OPENSSH PRIVATE KEY-----)",
    };
  }
  const end = trimmed.indexOf(OPENSSH_END);
  if (end < 0) return { ok: false, problem: "the OpenSSH private key has no END line" };
  const body = trimmed.slice(OPENSSH_BEGIN.length, end).replace(/\s+/g, "");
  if (!/^[A-Za-z0-9+/]*={0,2}$/.test(body))
    return { ok: false, problem: "the OpenSSH private key is not base64" };
  const blob = Buffer.from(body, "base64");
  const reader = new Reader(blob);
  try {
    if (blob.subarray(0, MAGIC.length).toString("latin1") !== MAGIC) throw new Error("bad magic");
    reader.skip(MAGIC.length);
    const cipher = reader.string().toString("latin1");
    const kdf = reader.string().toString("latin1");
    reader.string(); // kdf options
    const count = reader.uint32();
    if (count !== 1) return { ok: false, problem: `the key file holds ${count} keys, not one` };
    const pub = new Reader(reader.string());
    reader.string(); // the private section: only its length is checked here
    const algorithm = pub.string().toString("latin1");
    const encrypted = cipher !== "none";
    if (encrypted && kdf !== "bcrypt")
      return { ok: false, problem: `its key derivation "${kdf}" is not bcrypt` };
    if (!ACCEPTED.includes(algorithm))
      return {
        ok: false,
        problem: `its algorithm ${algorithm} is not supported for signing (ssh-ed25519, ecdsa-sha2-nistp256/384/521, ssh-rsa of 2048 bits or more)`,
      };
    if (algorithm === "ssh-rsa") {
      pub.string(); // e
      const bits = mpintBits(pub.string());
      if (bits < 2048)
        return { ok: false, problem: `its RSA key has ${bits} bits; signing keys need 2048 bits or more` };
      return { ok: true, algorithm, bits, encrypted };
    }
    return { ok: true, algorithm, encrypted };
  } catch {
    return { ok: false, problem: "the OpenSSH private key is truncated or corrupt" };
  }
}

/** The bit length of an SSH mpint (big-endian two's complement, a leading zero byte for positive numbers). */
function mpintBits(bytes: Buffer): number {
  let i = 0;
  while (i < bytes.length && bytes[i] === 0) i++;
  if (i === bytes.length) return 0;
  return (bytes.length - i - 1) * 8 + (32 - Math.clz32(bytes[i] ?? 0));
}

/** The SSH wire encoding's uint32 and length-prefixed strings; reading past the end throws. */
class Reader {
  private at = 0;
  private readonly buf: Buffer;
  constructor(buf: Buffer) {
    this.buf = buf;
  }
  skip(n: number): void {
    if (this.at + n > this.buf.length) throw new Error("short");
    this.at += n;
  }
  uint32(): number {
    if (this.at + 4 > this.buf.length) throw new Error("short");
    const v = this.buf.readUInt32BE(this.at);
    this.at += 4;
    return v;
  }
  string(): Buffer {
    const n = this.uint32();
    if (this.at + n > this.buf.length) throw new Error("short");
    const s = this.buf.subarray(this.at, this.at + n);
    this.at += n;
    return s;
  }
}
