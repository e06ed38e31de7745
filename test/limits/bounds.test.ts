/**
 * Bounds on the inputs that src/config/limits.ts did not reach first:
 * pull-secret and Docker config files (src/registry/credentials.ts), folders
 * of CRDs (src/validate/crds.ts) and the scaffold's templates and output
 * (src/scaffold/render.ts). Each row is a hostile input and the one line it
 * is refused with; the rows under the bound show the same code still reads.
 */
import { cpSync, mkdirSync, writeFileSync } from "node:fs";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { MAX_SECRET_FILE_BYTES } from "../../src/config/limits.ts";
import { ConfigError, ShipmateError } from "../../src/errors.ts";
import { dockerConfigFileCredentials, loadPullSecret } from "../../src/registry/credentials.ts";
import { buildModel, normalize } from "../../src/scaffold/model.ts";
import { renderFleet, TEMPLATES_DIR, Templates } from "../../src/scaffold/render.ts";
import { readCrdDir } from "../../src/validate/crds.ts";
import { tempDir } from "../infra/git.ts";

const dockerconfig = (user: string) =>
  JSON.stringify({ auths: { "registry.example": { username: user, password: "pw-of-the-bounds-test" } } });

const secretYaml = (name: string, user: string) => `apiVersion: v1
kind: Secret
metadata:
  name: ${name}
type: kubernetes.io/dockerconfigjson
stringData:
  .dockerconfigjson: '${dockerconfig(user)}'
`;

const BOMB = `apiVersion: v1
kind: Secret
metadata:
  name: bomb
a: &a ["x","x","x","x","x","x","x","x","x"]
b: &b [*a,*a,*a,*a,*a,*a,*a,*a,*a]
c: &c [*b,*b,*b,*b,*b,*b,*b,*b,*b]
d: &d [*c,*c,*c,*c,*c,*c,*c,*c,*c]
e: &e [*d,*d,*d,*d,*d,*d,*d,*d,*d]
f: &f [*e,*e,*e,*e,*e,*e,*e,*e,*e]
`;

describe("pull-secret and Docker config files", () => {
  const dir = tempDir("shipmate-bounds-");
  const cases: { name: string; text: string; error?: RegExp; user?: string }[] = [
    { name: "a Secret under the bound is read", text: secretYaml("pull", "alice"), user: "alice" },
    {
      name: "a file over 1 MiB is refused unread",
      text: `${secretYaml("pull", "alice")}# ${"x".repeat(MAX_SECRET_FILE_BYTES)}\n`,
      error: /^\S+big\.yaml: pull secret: file is \d+ bytes, over the 1048576-byte bound; skipped$/,
    },
    {
      name: "an alias bomb is refused at its line",
      text: BOMB,
      error: /^\S+bomb\.yaml:6: YAML aliases expand to more than 1000 nodes/,
    },
    {
      name: "more documents than the bound are refused before the parse",
      text: "---\n{}\n".repeat(10_001),
      error: /^\S+many\.yaml:20001: file holds more than 10000 YAML documents, the bound; skipped$/,
    },
  ];
  const files: Record<string, string> = {
    "a Secret under the bound is read": "ok.yaml",
    "a file over 1 MiB is refused unread": "big.yaml",
    "an alias bomb is refused at its line": "bomb.yaml",
    "more documents than the bound are refused before the parse": "many.yaml",
  };
  for (const c of cases) {
    it(`pull secret: ${c.name}`, async () => {
      const file = join(dir, files[c.name] as string);
      writeFileSync(file, c.text);
      if (c.error) {
        const err = await loadPullSecret(file).catch((e: unknown) => e);
        expect(err).toBeInstanceOf(ConfigError);
        const message = (err as Error).message;
        expect(message).toMatch(c.error);
        expect(message).not.toContain("\n");
        expect(message).not.toContain("pw-of-the-bounds-test");
      } else {
        const provider = await loadPullSecret(file);
        expect((await provider.get("registry.example"))?.username).toBe(c.user);
      }
    });
  }

  it("Docker config: a config.json over the bound is one line naming it; one under it is read", async () => {
    const big = join(dir, "big-config.json");
    writeFileSync(big, `${dockerconfig("bob").slice(0, -1)}, "pad": "${"y".repeat(MAX_SECRET_FILE_BYTES)}"}`);
    const err = await dockerConfigFileCredentials(big)
      .get("registry.example")
      .catch((e: unknown) => e);
    expect(err).toBeInstanceOf(ConfigError);
    expect((err as Error).message).toMatch(
      /big-config\.json: Docker config: file is \d+ bytes, over the 1048576-byte bound; skipped$/,
    );
    const ok = join(dir, "config.json");
    writeFileSync(ok, dockerconfig("bob"));
    expect((await dockerConfigFileCredentials(ok).get("registry.example"))?.username).toBe("bob");
    // A missing file still means no credentials, not an error.
    expect(
      await dockerConfigFileCredentials(join(dir, "absent.json")).get("registry.example"),
    ).toBeUndefined();
  });
});

const crd = (plural: string) => `apiVersion: apiextensions.k8s.io/v1
kind: CustomResourceDefinition
metadata:
  name: ${plural}.example.com
spec:
  group: example.com
  names: {kind: K${plural}, plural: ${plural}}
  scope: Namespaced
  versions:
    - name: v1
      served: true
      storage: true
      schema: {openAPIV3Schema: {type: object}}
`;

describe("folders of CRDs", () => {
  const cases: {
    name: string;
    files: Record<string, string>;
    bounds?: { maxFileBytes?: number; maxDocuments?: number; maxCrds?: number };
    read: number;
    refused: RegExp[];
  }[] = [
    {
      name: "CRDs under every bound are read",
      files: { "a.yaml": crd("as"), "b.yaml": crd("bs") },
      read: 2,
      refused: [],
    },
    {
      name: "a file over the size bound is skipped unread; the next is read",
      files: { "a.yaml": `${crd("as")}# ${"x".repeat(4096)}\n`, "b.yaml": crd("bs") },
      bounds: { maxFileBytes: 4096 },
      read: 1,
      refused: [/a\.yaml: file is \d+ bytes, over the 4096-byte bound; skipped$/],
    },
    {
      name: "a file with more documents than the bound is skipped",
      files: { "a.yaml": [crd("as"), crd("bs"), crd("cs")].join("---\n"), "b.yaml": crd("ds") },
      bounds: { maxDocuments: 2 },
      read: 1,
      refused: [/a\.yaml:\d+: file holds more than 2 YAML documents, the bound; skipped$/],
    },
    {
      name: "an alias bomb skips its document only",
      files: { "a.yaml": `${BOMB}---\n${crd("as")}` },
      read: 1,
      refused: [/a\.yaml:6: YAML aliases expand to more than 1000 nodes/],
    },
    {
      name: "past the count bound the rest of the folder is not read",
      files: { "a.yaml": `${crd("as")}---\n${crd("bs")}`, "b.yaml": crd("cs"), "c.yaml": crd("ds") },
      bounds: { maxCrds: 2 },
      read: 2,
      refused: [/b\.yaml: more than 2 CRDs in \S+, the bound; the rest are not read$/],
    },
  ];
  for (const c of cases) {
    it(`crds: ${c.name}`, () => {
      const dir = tempDir("shipmate-crds-");
      for (const [name, text] of Object.entries(c.files)) writeFileSync(join(dir, name), text);
      const refusals: string[] = [];
      const crds = readCrdDir(
        dir,
        () => true,
        (r) => refusals.push(`${r.file}${r.line ? `:${r.line}` : ""}: ${r.message}`),
        c.bounds,
      );
      expect(crds).toHaveLength(c.read);
      expect(refusals).toHaveLength(c.refused.length);
      for (const [i, re] of c.refused.entries()) expect(refusals[i]).toMatch(re);
    });
  }
});

describe("scaffold templates and output", () => {
  const model = (apps: number, envs = 2) =>
    buildModel(
      normalize({
        layout: "monorepo",
        envs: Array.from({ length: envs }, (_, i) => `env${i}`),
        apps: Array.from({ length: apps }, (_, i) => `app${i}`),
        version: "0.0.0-test",
      }),
    );
  const cases: {
    name: string;
    bounds?: { maxBytes?: number; maxFiles?: number };
    /** Rewrites a copy of templates/ before rendering. */
    edit?: (root: string) => void;
    error?: { type: typeof ShipmateError; message: RegExp };
  }[] = [
    { name: "a fleet under the bounds renders" },
    {
      name: "a plan naming more files than the bound is refused before any is rendered",
      bounds: { maxFiles: 10 },
      error: {
        type: ShipmateError,
        message: /^the fleet would render more than 10 files, the bound of one scaffold/,
      },
    },
    {
      name: "a rendered file over the size bound is refused naming the file",
      // Above every template's size, below the agent's CRDs the scaffold copies into one file.
      bounds: { maxBytes: 8000 },
      error: {
        type: ShipmateError,
        message: /^\S+\.yaml would be \d+ bytes, over the 8000-byte bound of one file/,
      },
    },
    {
      name: "a template over the size bound is refused unread, naming it",
      edit: (root) => {
        writeFileSync(join(root, "partials", "huge.hbs"), "x".repeat(70_000));
      },
      bounds: { maxBytes: 65_536 },
      error: {
        type: ShipmateError,
        message: /^template partials\/huge\.hbs is 70000 bytes, over the 65536-byte bound$/,
      },
    },
  ];
  for (const c of cases) {
    it(`render: ${c.name}`, () => {
      let root = TEMPLATES_DIR;
      if (c.edit) {
        root = join(tempDir("shipmate-templates-"), "templates");
        mkdirSync(root);
        cpSync(TEMPLATES_DIR, root, { recursive: true });
        c.edit(root);
      }
      const render = () => renderFleet(model(3), new Templates(root, c.bounds));
      if (!c.error) {
        expect(render().length).toBeGreaterThan(10);
        return;
      }
      let err: unknown;
      try {
        render();
      } catch (e) {
        err = e;
      }
      expect(err).toBeInstanceOf(c.error.type);
      expect((err as Error).message).toMatch(c.error.message);
      expect((err as Error).message).not.toContain("\n");
    });
  }
});
