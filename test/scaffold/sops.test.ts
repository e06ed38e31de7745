/**
 * `shipmate init --sops-age-recipient`: a `.sops.yaml` in every repository
 * and a decryption block in every cluster Kustomization, in every layout;
 * the result validates, and a Secret then committed in plain text is
 * reported by `validate`.
 */
import { readFile, writeFile } from "node:fs/promises";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { parseAllDocuments } from "yaml";
import { add, init } from "../../src/scaffold/scaffold.ts";
import { validateTree } from "../../src/validate/validate.ts";
import { runCli } from "../helpers/cli.ts";
import { listFiles, tempDirs } from "./helpers.ts";

const tmp = tempDirs();
// What age-keygen prints as a public key (bech32: age1 and 58 characters).
const RECIPIENT = "age1ql3z7hjy54pw3hyww5ayyfg7zqgvc7w3j2elw8zmrj2kg5sfn9aqmcac8p";

/** Every Flux Kustomization in a tree, with its file. */
async function fluxKustomizations(dir: string) {
  const out: { file: string; spec: Record<string, unknown> }[] = [];
  for (const f of await listFiles(dir)) {
    if (!/\.ya?ml$/.test(f)) continue;
    for (const d of parseAllDocuments(await readFile(join(dir, f), "utf8"))) {
      const o = d.toJS() as { apiVersion?: string; kind?: string; spec?: Record<string, unknown> } | null;
      if (o?.apiVersion === "kustomize.toolkit.fluxcd.io/v1" && o.kind === "Kustomization")
        out.push({ file: f, spec: o.spec ?? {} });
    }
  }
  return out;
}

describe("init --sops-age-recipient", () => {
  const layouts: [string, { teams?: string[]; apps?: string[] }][] = [
    ["monorepo", {}],
    ["repo-per-env", {}],
    ["repo-per-team", { teams: ["payments"], apps: ["web@payments"] }],
    ["repo-per-app", {}],
  ];
  it.each(layouts)(
    "%s: .sops.yaml per repository, decryption in every cluster Kustomization, valid",
    async (layout, extra) => {
      const out = join(await tmp(), "fleet");
      const result = await init({ layout, out, noGit: true, sopsAgeRecipient: RECIPIENT, ...extra });
      for (const repo of result.repos) {
        const rules = await readFile(join(repo.path, ".sops.yaml"), "utf8");
        expect(rules).toContain(`age: ${RECIPIENT}`);
        expect(rules).toContain("encrypted_regex: ^(data|stringData)$");
      }
      const ks = await fluxKustomizations(out);
      expect(ks.length).toBeGreaterThan(0);
      for (const k of ks)
        expect({ file: k.file, decryption: k.spec.decryption }).toEqual({
          file: k.file,
          decryption: { provider: "sops", secretRef: { name: "sops-age" } },
        });
      expect((await validateTree(out)).problems).toEqual([]);
    },
  );

  it("without it, nothing changes: no .sops.yaml, no decryption", async () => {
    const out = join(await tmp(), "fleet");
    await init({ layout: "monorepo", out, noGit: true });
    expect((await listFiles(out)).filter((f) => f.endsWith(".sops.yaml"))).toEqual([]);
    for (const k of await fluxKustomizations(out)) expect(k.spec.decryption).toBeUndefined();
  });

  it("validate then reports a Secret committed in plain text", async () => {
    const out = join(await tmp(), "fleet");
    await init({ layout: "monorepo", out, noGit: true, sopsAgeRecipient: RECIPIENT });
    await writeFile(
      join(out, "db-secret.yaml"),
      "apiVersion: v1\nkind: Secret\nmetadata:\n  name: db\n  namespace: apps\nstringData:\n  password: hunter2\n",
    );
    const problems = (await validateTree(out)).problems.map((p) => `${p.file}:${p.line}: ${p.message}`);
    expect(problems).toEqual([
      "db-secret.yaml:1: Secret db is not encrypted, but .sops.yaml creation rule 0 (path_regex .*\\.ya?ml$) covers this file: encrypt it with sops --encrypt --in-place",
    ]);
  });

  it("add env keeps it: the new cluster's Kustomizations decrypt too", async () => {
    const out = join(await tmp(), "fleet");
    await init({ layout: "monorepo", out, noGit: true, sopsAgeRecipient: RECIPIENT });
    await add("env", "qa", { repo: out });
    const qa = (await fluxKustomizations(out)).filter((k) => k.file.startsWith("clusters/qa/"));
    expect(qa.length).toBeGreaterThan(0);
    for (const k of qa)
      expect(k.spec.decryption).toEqual({ provider: "sops", secretRef: { name: "sops-age" } });
  });

  it("a value that is not an age public key is one usage error, nothing written", async () => {
    const parent = await tmp();
    const r = await runCli([
      "init",
      "--layout",
      "monorepo",
      "--out",
      join(parent, "fleet"),
      "--sops-age-recipient",
      "AGE-SECRET-KEY-1QQQ",
    ]);
    expect(r.code).toBe(2);
    expect(r.stderr.trim().split("\n")).toHaveLength(1);
    expect(r.stderr).toContain("was given an age private key");
    expect(r.stderr).not.toContain("AGE-SECRET-KEY-1QQQ");
  });
});
