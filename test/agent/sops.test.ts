/** The pure parts of spec.decryption: what is a SOPS document, which format, and messages that carry no secret. */
import { describe, expect, it } from "vitest";
import { entryFormat, formatForKey, isSopsEncrypted, sopsReason } from "../../src/agent/sops.ts";

describe("decryption: recognising SOPS documents (Flux's markers)", () => {
  it.each([
    [
      "JSON (and binary, a JSON envelope)",
      '{"data": "ENC[AES256_GCM,...]", "sops": {"mac": "ENC[AES256_GCM,..."}}',
      "json",
    ],
    ["YAML", "a: ENC[AES256_GCM,data:x]\nsops:\n    mac: ENC[AES256_GCM,data:y]\n", "yaml"],
    ["dotenv", "A=ENC[AES256_GCM,data:x]\nsops_mac=ENC[AES256_GCM,data:y]\n", "dotenv"],
    ["INI", "[section]\na = ENC[x]\n[sops]\nmac = ENC[y]\n", "ini"],
    ["plain text is not one", "password: hunter2\n", undefined],
  ])("%s", (_rule, text, format) => {
    expect(entryFormat(text)).toBe(format);
  });

  it.each([
    ["config.yaml", "yaml"],
    ["config.yml", "yaml"],
    ["settings.json", "json"],
    [".dockerconfigjson", "json"],
    ["app.env", "dotenv"],
    ["app.ini", "ini"],
    ["tls.key", "binary"],
  ])("the output format of entry %s is %s (by extension)", (key, format) => {
    expect(formatForKey(key)).toBe(format);
  });

  it.each([
    ["a sops block with a mac", { sops: { mac: "ENC[...]" } }, true],
    ["a sops block without a mac", { sops: { version: "3" } }, false],
    ["no sops block", { data: {} }, false],
  ])("whole manifest encrypted: %s", (_rule, obj, expected) => {
    expect(isSopsEncrypted(obj)).toBe(expected);
  });
});

describe("decryption: sops's errors as one line without input", () => {
  const keys = { age: "AGE-SECRET-KEY-1X", unused: [] as string[] };
  it.each([
    [
      "no recipient matches",
      "Failed to get the data key required to decrypt the SOPS file.\n\nGroup 0: FAILED\n  age1abc: FAILED\n",
      keys,
      "none of the age or PGP keys in the decryption Secret is a recipient of it",
    ],
    [
      "no key at all, cloud KMS entries named",
      "Failed to get the data key required to decrypt the SOPS file.\n",
      { age: "", unused: ["sops.aws-kms"] },
      "the decryption Secret holds no age or PGP key (*.agekey, *.asc entries); entries not used by the shipmate agent: sops.aws-kms (only age and PGP keys are supported)",
    ],
    [
      "PGP keys only, none a recipient",
      "Failed to get the data key required to decrypt the SOPS file.\n",
      { age: "", pgp: [{ entry: "a.asc", armored: "x" }], unused: [] },
      "none of the age or PGP keys in the decryption Secret is a recipient of it",
    ],
    [
      "a MAC mismatch",
      "MAC mismatch. File has 0A, computed 0B\n",
      keys,
      "MAC mismatch: the encrypted file was changed after encryption (or by the build)",
    ],
    [
      "unparsable input is never quoted",
      'Error unmarshalling input json: Input string "my-plaintext-password" does not match sops\' data format\n',
      keys,
      "not a valid SOPS document",
    ],
    [
      "anything else: quoted parts removed",
      'Error: something "secret-ish" broke\n',
      keys,
      'Error: something "…" broke',
    ],
  ])("%s", (_rule, stderr, k, reason) => {
    expect(sopsReason(stderr, k)).toBe(reason);
  });
});
