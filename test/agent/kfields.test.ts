// biome-ignore-all lint/suspicious/noTemplateCurlyInString: Flux substitution variables are written ${name}
/**
 * Kustomization fields through the agent, against a real kube-apiserver,
 * the real kustomize and the real sops: postBuild and decryption (objects
 * land as Flux would write them; a failure is Ready=False naming the
 * object, with nothing of that Kustomization applied and no secret value in
 * any status, event or log line), healthCheckExprs, deletionPolicy and
 * ignoreMissingComponents.
 */
import { execFileSync } from "node:child_process";
import { mkdtempSync, readdirSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { Writable } from "node:stream";
import { pino } from "pino";
import { afterAll, describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { findBinary } from "../infra/kube.ts";
import {
  configMap,
  deployment,
  type FleetRepo,
  getObject,
  ksStatus,
  kustomization,
  namespace,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

const k = kubeSuite({ name: "kfields", namespaces: ["shipmate-system"] });

/** An agent whose every log line is kept, to search for secrets. */
function loggedAgent(repo: FleetRepo, name: string): { agent: Agent; logs: string[] } {
  const logs: string[] = [];
  const sink = new Writable({
    write(chunk, _enc, done) {
      logs.push(String(chunk));
      done();
    },
  });
  const agent = k.agent(repo, name, {}, pino({ level: "debug" }, sink));
  return { agent, logs };
}

async function create(path: string, body: unknown): Promise<void> {
  const res = await k.client.raw({ method: "POST", path, body });
  if (res.code !== 201) throw new Error(`POST ${path}: ${res.code} ${JSON.stringify(res.body)}`);
}
const secret = (name: string, data: Record<string, string>) => ({
  apiVersion: "v1",
  kind: "Secret",
  metadata: { name, namespace: "shipmate-system" },
  data: Object.fromEntries(Object.entries(data).map(([k, v]) => [k, Buffer.from(v).toString("base64")])),
});
const cmPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/configmaps/${name}`;
const secretPath = (ns: string, name: string) => `/api/v1/namespaces/${ns}/secrets/${name}`;

/** Everything the agent wrote for people: statuses, events, logs. */
async function allOutput(logs: string[]): Promise<string> {
  const ks = await k.client.raw({
    method: "GET",
    path: "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shipmate-system/kustomizations",
  });
  const events = await k.client.raw({ method: "GET", path: "/api/v1/events" });
  return JSON.stringify(ks.body) + JSON.stringify(events.body) + logs.join("");
}

describe("postBuild: variable substitution", () => {
  it("substitutes from substitute and substituteFrom with Flux's precedence, types and opt-outs", async () => {
    await create("/api/v1/namespaces/shipmate-system/configmaps", {
      ...configMap("t-pb-cm", "shipmate-system", { region: "eu-central-1", over: "from-cm", shadowed: "cm" }),
    });
    await create(
      "/api/v1/namespaces/shipmate-system/secrets",
      secret("t-pb-secret", { token: "tok-3141592653", over: "from-secret" }),
    );
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-pb"),
        kustomization("t-pb-apps", {
          path: "./apps",
          postBuild: {
            substitute: { cluster_env: "prod", replicas: "2", shadowed: "inline" },
            substituteFrom: [
              { kind: "ConfigMap", name: "t-pb-cm" },
              { kind: "Secret", name: "t-pb-secret" },
              { kind: "ConfigMap", name: "t-pb-absent", optional: true },
            ],
          },
        }),
      ],
      "apps/cm.yaml": [
        configMap("vars", "t-pb", {
          env: "${cluster_env}",
          region: "${region}",
          token: "${token}",
          over: "${over}",
          shadowed: "${shadowed}",
          dflt: "${nope:=fallback}",
          escaped: "$${kept}",
          script: "echo $HOME",
        }),
      ],
      "apps/deploy.yaml": [deployment("web", "t-pb", "nginx:1.27", 1)].map((d) => ({
        ...d,
        spec: { ...d.spec, replicas: "${replicas}" },
      })),
      "apps/skip.yaml": [
        {
          ...configMap("skip", "t-pb", { raw: "${never_defined}" }),
          metadata: {
            name: "skip",
            namespace: "t-pb",
            annotations: { "kustomize.toolkit.fluxcd.io/substitute": "disabled" },
          },
        },
      ],
    });
    const agent = k.agent(repo, "t-pb");
    const res = await agent.once();
    const apps = res.reconciled.find((k) => k.name === "t-pb-apps");
    expect(apps?.message).toMatch(/^Applied revision/);
    expect(apps?.ready).toBe(true);
    expect((await getObject(k.client, cmPath("t-pb", "vars")))?.data).toEqual({
      env: "prod",
      region: "eu-central-1",
      token: "tok-3141592653",
      over: "from-secret",
      shadowed: "inline",
      dflt: "fallback",
      escaped: "${kept}",
      script: "echo $HOME",
    });
    expect((await getObject(k.client, cmPath("t-pb", "skip")))?.data).toEqual({ raw: "${never_defined}" });
    expect((await getObject(k.client, "/apis/apps/v1/namespaces/t-pb/deployments/web"))?.spec.replicas).toBe(
      2,
    );
  });

  it("strict mode: an undefined variable, a missing ConfigMap or a 1 MB value is Ready=False naming it; nothing applied", async () => {
    await create(
      "/api/v1/namespaces/shipmate-system/secrets",
      secret("t-pbx-secret", { password: "hunter2-very-secret" }),
    );
    await create("/api/v1/namespaces/shipmate-system/configmaps", {
      ...configMap("t-pbx-big", "shipmate-system", { big: "b".repeat(1000 * 1000) }),
    });
    const repo = k.fleet();
    const common = { substituteFrom: [{ kind: "Secret", name: "t-pbx-secret" }] };
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-pbx"),
        kustomization("t-pbx-undef", { path: "./undef", postBuild: common }),
        kustomization("t-pbx-nocm", {
          path: "./plain",
          postBuild: { substituteFrom: [{ kind: "ConfigMap", name: "t-pbx-nope" }] },
        }),
        kustomization("t-pbx-big", {
          path: "./plain",
          postBuild: { substituteFrom: [{ kind: "ConfigMap", name: "t-pbx-big" }] },
        }),
      ],
      "undef/a.yaml": [configMap("first", "t-pbx", { p: "${password}" })],
      "undef/b.yaml": [configMap("second", "t-pbx", { u: "${not_defined_anywhere}" })],
      "plain/c.yaml": [configMap("third", "t-pbx", { v: "x" })],
    });
    const { agent, logs } = loggedAgent(repo, "t-pbx");
    const res = await agent.once();
    const by = Object.fromEntries(res.reconciled.map((k) => [k.name, k]));
    expect(by["t-pbx-undef"]).toMatchObject({ ready: false, reason: "BuildFailed" });
    expect(by["t-pbx-undef"]?.message).toBe(
      'post build failed for ConfigMap/t-pbx/second: variable not set (strict mode): "not_defined_anywhere"',
    );
    expect(by["t-pbx-nocm"]?.message).toBe(
      "substitute from 'ConfigMap/shipmate-system/t-pbx-nope': not found (set optional: true to tolerate its absence)",
    );
    expect(by["t-pbx-big"]?.message).toBe("variable 'big' is 1000000 bytes, over the 524288-byte limit");
    // Nothing of a failed build is applied, not even the objects that substituted fine.
    expect(await getObject(k.client, cmPath("t-pbx", "first"))).toBeUndefined();
    expect(await getObject(k.client, cmPath("t-pbx", "third"))).toBeUndefined();
    expect((await ksStatus(k.client, "t-pbx-undef")).ready?.status).toBe("False");
    const out = await allOutput(logs);
    expect(out).toContain("not_defined_anywhere");
    expect(out).not.toContain("hunter2-very-secret");
    expect(out).not.toContain("b".repeat(1000));
  });
});

describe("decryption: SOPS with age keys", () => {
  const newKey = () => {
    const out = execFileSync(findBinary("age-keygen"), [], {
      encoding: "utf8",
      stdio: ["ignore", "pipe", "ignore"],
    });
    const identity = out.split("\n").find((l) => l.startsWith("AGE-SECRET-KEY-")) as string;
    const recipient = (out.match(/public key: (age1[0-9a-z]+)/) as RegExpMatchArray)[1] as string;
    return { identity, recipient };
  };
  /** Encrypts as a user would (`sops --encrypt --age …`), plaintext on stdin only. */
  const encrypt = (plain: string, recipient: string, type: "yaml" | "json", regex?: string) =>
    execFileSync(
      findBinary("sops"),
      [
        "encrypt",
        "--filename-override",
        `secret.${type}`,
        "--age",
        recipient,
        ...(regex ? ["--encrypted-regex", regex] : []),
        "--input-type",
        type,
        "--output-type",
        type,
      ],
      {
        input: plain,
        encoding: "utf8",
        cwd: "/",
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent" },
      },
    );

  /** A PGP key pair made by the real gpg in a keyring of its own (removed after the file). */
  const homes: string[] = [];
  afterAll(() => {
    for (const home of homes) {
      execFileSync("gpgconf", ["--homedir", home, "--kill", "gpg-agent"], { stdio: "ignore" });
      rmSync(home, { recursive: true, force: true });
    }
  });
  const newPgpKey = (name: string) => {
    const home = mkdtempSync(join(tmpdir(), "shipmate-test-gpg-"));
    homes.push(home);
    const gpg = (...args: string[]) =>
      execFileSync("gpg", ["--batch", "--homedir", home, ...args], {
        encoding: "utf8",
        stdio: ["ignore", "pipe", "ignore"],
      });
    gpg(
      "--passphrase",
      "",
      "--quick-gen-key",
      `${name} <${name}@example.com>`,
      "future-default",
      "default",
      "never",
    );
    const fingerprint = (
      gpg("--list-keys", "--with-colons")
        .split("\n")
        .find((l) => l.startsWith("fpr:")) ?? ""
    ).split(":")[9] as string;
    return { home, fingerprint, armored: gpg("--armor", "--export-secret-keys", fingerprint) };
  };

  it("decrypts with PGP keys (*.asc) through gpg, as Flux does; the keyring does not outlive the decryption", async () => {
    const key = newPgpKey("fleet");
    const password = "pgp-protected-password-77";
    const encrypted = execFileSync(
      findBinary("sops"),
      [
        "encrypt",
        "--filename-override",
        "secret.yaml",
        "--pgp",
        key.fingerprint,
        "--encrypted-regex",
        "^(data|stringData)$",
        "--input-type",
        "yaml",
        "--output-type",
        "yaml",
      ],
      {
        input: `apiVersion: v1\nkind: Secret\nmetadata:\n  name: pgp-db\n  namespace: t-pgp\nstringData:\n  password: ${password}\ntype: Opaque\n`,
        encoding: "utf8",
        cwd: "/",
        env: { PATH: process.env.PATH ?? "", HOME: "/nonexistent", GNUPGHOME: key.home },
      },
    );
    expect(encrypted).not.toContain(password);
    await create(
      "/api/v1/namespaces/shipmate-system/secrets",
      secret("t-pgp-keys", { "fleet.asc": key.armored }),
    );
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-pgp"),
        kustomization("t-pgp-apps", {
          path: "./apps",
          decryption: { provider: "sops", secretRef: { name: "t-pgp-keys" } },
        }),
      ],
      "apps/db.enc.yaml": encrypted,
    });
    const before = new Set(readdirSync(tmpdir()).filter((n) => n.startsWith("shipmate-gnupg-")));
    const { agent, logs } = loggedAgent(repo, "t-pgp");
    const res = await agent.once();
    const ks = res.reconciled.find((k) => k.name === "t-pgp-apps");
    expect([ks?.ready, ks?.message]).toEqual([true, expect.stringMatching(/^Applied revision/)]);
    const db = await getObject(k.client, secretPath("t-pgp", "pgp-db"));
    expect(Buffer.from(db?.data.password, "base64").toString()).toBe(password);
    expect(readdirSync(tmpdir()).filter((n) => n.startsWith("shipmate-gnupg-") && !before.has(n))).toEqual(
      [],
    );
    const out = await allOutput(logs);
    expect(out).not.toContain(password);
    for (const line of key.armored.split("\n").filter((l) => l.length > 40)) expect(out).not.toContain(line);
  });

  it("decrypts whole Secrets and secretGenerator files in memory; a foreign key is Ready=False, nothing applied, no plaintext anywhere", async () => {
    const key = newKey();
    const stranger = newKey();
    const password = "correct-horse-battery-staple-42";
    const apiKey = "api-key-0123456789abcdef";
    const strangerSecret = "only-the-stranger-can-read-this";
    // Fields in kubectl's order (sorted, as `kubectl create secret … -o yaml` writes them): kustomize
    // sorts them too, and sops's MAC covers the order, under Flux as here.
    const secretYaml = `apiVersion: v1
kind: Secret
metadata:
  name: db
  namespace: t-sops
stringData:
  password: ${password}
type: Opaque
`;
    const encrypted = encrypt(secretYaml, key.recipient, "yaml", "^(data|stringData)$");
    expect(encrypted).not.toContain(password);
    const generated = encrypt(
      `apiKey: ${apiKey}\nendpoint: https://api.example.com\n`,
      key.recipient,
      "yaml",
    );
    const foreign = encrypt(
      secretYaml.replace("name: db", "name: other").replace(password, strangerSecret),
      stranger.recipient,
      "yaml",
      "^(data|stringData)$",
    );
    await create(
      "/api/v1/namespaces/shipmate-system/secrets",
      secret("t-sops-age", {
        "age.agekey": `# created by a test\n${key.identity}\n`,
        // A PGP key of someone else: imported, a recipient of nothing here.
        "old.asc": newPgpKey("former").armored,
      }),
    );
    const decryption = { provider: "sops", secretRef: { name: "t-sops-age" } };
    const repo = k.fleet();
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-sops"),
        kustomization("t-sops-apps", { path: "./apps", decryption }),
        kustomization("t-sops-gen", { path: "./gen", decryption }),
        kustomization("t-sops-bad", { path: "./bad", decryption }),
      ],
      "apps/db.enc.yaml": encrypted,
      "gen/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1beta1
kind: Kustomization
namespace: t-sops
generatorOptions:
  disableNameSuffixHash: true
secretGenerator:
  - name: generated
    files:
      - config.yaml=config.enc.yaml
`,
      "gen/config.enc.yaml": generated,
      "bad/other.enc.yaml": foreign,
      "bad/plain.yaml": [configMap("bad-neighbour", "t-sops", { v: "1" })],
    });
    const { agent, logs } = loggedAgent(repo, "t-sops");
    const res = await agent.once();
    const by = Object.fromEntries(res.reconciled.map((k) => [k.name, k]));
    expect(by["t-sops-apps"]?.message).toMatch(/^Applied revision/);
    expect(by["t-sops-apps"]?.ready).toBe(true);
    const db = await getObject(k.client, secretPath("t-sops", "db"));
    expect(Buffer.from(db?.data.password, "base64").toString()).toBe(password);
    expect(db?.sops).toBeUndefined();
    expect(by["t-sops-gen"]?.ready).toBe(true);
    const gen = await getObject(k.client, secretPath("t-sops", "generated"));
    expect(Buffer.from(gen?.data["config.yaml"], "base64").toString()).toBe(
      `apiKey: ${apiKey}\nendpoint: https://api.example.com\n`,
    );

    expect(by["t-sops-bad"]).toMatchObject({ ready: false, reason: "BuildFailed" });
    expect(by["t-sops-bad"]?.message).toBe(
      "decryption failed for Secret/t-sops/other: none of the age or PGP keys in the decryption Secret is a recipient of it",
    );
    expect(await getObject(k.client, secretPath("t-sops", "other"))).toBeUndefined();
    expect(await getObject(k.client, cmPath("t-sops", "bad-neighbour"))).toBeUndefined();

    const out = await allOutput(logs);
    for (const plain of [password, apiKey, strangerSecret, key.identity, stranger.identity])
      expect(out).not.toContain(plain);
  });
});

describe("healthCheckExprs", () => {
  const crd = {
    apiVersion: "apiextensions.k8s.io/v1",
    kind: "CustomResourceDefinition",
    metadata: { name: "gadgets.example.org" },
    spec: {
      group: "example.org",
      names: { kind: "Gadget", plural: "gadgets", singular: "gadget", listKind: "GadgetList" },
      scope: "Namespaced",
      versions: [
        {
          name: "v1",
          served: true,
          storage: true,
          schema: { openAPIV3Schema: { type: "object", "x-kubernetes-preserve-unknown-fields": true } },
        },
      ],
    },
  };
  const gadgetPath = "/apis/example.org/v1/namespaces/t-cel/gadgets/g";
  const synced = (status: string) =>
    k.client.raw({
      method: "PATCH",
      path: gadgetPath,
      body: { status: { conditions: [{ type: "Synced", status }] } },
      contentType: "application/merge-patch+json",
    });

  it("docs' SealedSecret-style expressions decide a custom resource's health; a broken one stalls before apply", async () => {
    const repo = k.fleet();
    const exprs = [
      {
        apiVersion: "example.org/v1",
        kind: "Gadget",
        failed: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'False')",
        current: "status.conditions.filter(e, e.type == 'Synced').all(e, e.status == 'True')",
      },
    ];
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-cel"),
        crd,
        kustomization("t-cel-apps", { path: "./apps", wait: true, timeout: "2s", healthCheckExprs: exprs }),
        kustomization("t-cel-bad", {
          path: "./bad",
          wait: true,
          healthCheckExprs: [{ apiVersion: "example.org/v1", current: "status.(" }],
        }),
      ],
      "apps/g.yaml": [
        { apiVersion: "example.org/v1", kind: "Gadget", metadata: { name: "g", namespace: "t-cel" } },
      ],
      "bad/cm.yaml": [configMap("never", "t-cel", { v: "1" })],
    });
    const agent = k.agent(repo, "t-cel");
    const first = Object.fromEntries((await agent.once()).reconciled.map((k) => [k.name, k]));
    // No status yet: the expression cannot evaluate, so the wait times out naming why.
    expect(first["t-cel-apps"]).toMatchObject({ ready: false, reason: "HealthCheckFailed" });
    expect(first["t-cel-apps"]?.message).toMatch(
      /^timeout waiting for: Gadget\/t-cel\/g: health check expression error/,
    );
    expect(first["t-cel-bad"]).toMatchObject({ ready: false, reason: "InvalidCELExpression" });
    expect(first["t-cel-bad"]?.message).toMatch(/^healthCheckExprs\[0\]\.current: /);
    expect(
      (await ksStatus(k.client, "t-cel-bad")).ks?.status.conditions.find(
        (c: { type: string }) => c.type === "Stalled",
      )?.status,
    ).toBe("True");
    expect(await getObject(k.client, cmPath("t-cel", "never"))).toBeUndefined();

    await synced("False");
    const second = Object.fromEntries((await agent.once()).reconciled.map((k) => [k.name, k]));
    expect(second["t-cel-apps"]?.message).toBe("Gadget/t-cel/g failed: failed expression is true");

    await synced("True");
    const third = Object.fromEntries((await agent.once()).reconciled.map((k) => [k.name, k]));
    expect(third["t-cel-apps"]?.ready).toBe(true);
  });
});

describe("deletionPolicy: a Kustomization pruned from git", () => {
  it("follows Flux's table: MirrorPrune mirrors prune, Delete deletes, Orphan leaves, WaitForTermination waits", async () => {
    const repo = k.fleet();
    const children = {
      "t-del-mirror": { prune: true },
      "t-del-mirrorfalse": { prune: false },
      "t-del-delete": { prune: false, deletionPolicy: "Delete" },
      "t-del-orphan": { prune: true, deletionPolicy: "Orphan" },
      "t-del-wait": { prune: true, deletionPolicy: "WaitForTermination", timeout: "2s" },
    };
    const files: Record<string, object[] | string | null> = {
      "clusters/test/ns.yaml": [namespace("t-del")],
      "clusters/test/ks.yaml": Object.entries(children).map(([name, spec]) =>
        kustomization(name, { path: `./${name}`, ...spec }),
      ),
    };
    for (const name of Object.keys(children))
      files[`${name}/cm.yaml`] = [configMap(name, "t-del", { v: "1" })];
    // A finalizer nobody removes keeps this one terminating: WaitForTermination waits for it, then gives up.
    files["t-del-wait/cm.yaml"] = [
      {
        ...configMap("t-del-wait", "t-del", { v: "1" }),
        metadata: { name: "t-del-wait", namespace: "t-del", finalizers: ["example.com/hold"] },
      },
    ];
    repo.commit(files);
    const agent = k.agent(repo, "t-del");
    const first = await agent.once();
    expect(first.reconciled.filter((k) => k.name.startsWith("t-del-")).every((k) => k.ready)).toBe(true);

    repo.commit({ "clusters/test/ks.yaml": null });
    const started = Date.now();
    await agent.once();
    const exists = async (name: string) => (await getObject(k.client, cmPath("t-del", name))) !== undefined;
    expect(await exists("t-del-mirror")).toBe(false);
    expect(await exists("t-del-mirrorfalse")).toBe(true);
    expect(await exists("t-del-delete")).toBe(false);
    expect(await exists("t-del-orphan")).toBe(true);
    const waiting = await getObject(k.client, cmPath("t-del", "t-del-wait"));
    expect(waiting?.metadata.deletionTimestamp).toBeDefined();
    expect(Date.now() - started).toBeGreaterThanOrEqual(2000);
    for (const name of Object.keys(children)) expect((await ksStatus(k.client, name)).ks).toBeUndefined();
    await k.client.raw({
      method: "PATCH",
      path: cmPath("t-del", "t-del-wait"),
      body: { metadata: { finalizers: null } },
      contentType: "application/merge-patch+json",
    });
  });
});

describe("ignoreMissingComponents", () => {
  it("drops a component missing from the source instead of failing the build", async () => {
    const repo = k.fleet();
    const components = ["../comp/present", "../comp/missing"];
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-comp"),
        kustomization("t-comp-lenient", { path: "./apps", components, ignoreMissingComponents: true }),
        kustomization("t-comp-strict", { path: "./apps2", components }),
      ],
      "apps/cm.yaml": [configMap("lenient", "t-comp", { v: "1" })],
      "apps2/cm.yaml": [configMap("strict", "t-comp", { v: "1" })],
      "comp/present/kustomization.yaml": `apiVersion: kustomize.config.k8s.io/v1alpha1
kind: Component
labels:
  - pairs:
      tier: gold
`,
    });
    const agent = k.agent(repo, "t-comp");
    const by = Object.fromEntries((await agent.once()).reconciled.map((k) => [k.name, k]));
    expect(by["t-comp-lenient"]?.ready).toBe(true);
    expect((await getObject(k.client, cmPath("t-comp", "lenient")))?.metadata.labels.tier).toBe("gold");
    expect(by["t-comp-strict"]).toMatchObject({ ready: false, reason: "BuildFailed" });
    expect(await getObject(k.client, cmPath("t-comp", "strict"))).toBeUndefined();
  });
});

describe("dependsOn[].readyExpr", () => {
  it("replaces the built-in readiness check with the docs' lockstep expression; a broken one stalls", async () => {
    const repo = k.fleet();
    const expr =
      "dep.metadata.labels['app/version'] == self.metadata.labels['app/version'] && dep.status.conditions.filter(e, e.type == 'Ready').all(e, e.status == 'True')";
    const labelled = (name: string, version: string, spec: Record<string, unknown>) => {
      const k = kustomization(name, spec);
      return { ...k, metadata: { ...k.metadata, labels: { "app/version": version } } };
    };
    repo.commit({
      "clusters/test/ks.yaml": [
        namespace("t-rx"),
        labelled("t-rx-backend", "v1.2.3", { path: "./backend" }),
        labelled("t-rx-frontend", "v1.2.3", {
          path: "./frontend",
          dependsOn: [{ name: "t-rx-backend", readyExpr: expr }],
        }),
        labelled("t-rx-old", "v1.2.2", {
          path: "./old",
          dependsOn: [{ name: "t-rx-backend", readyExpr: expr }],
        }),
        labelled("t-rx-bad", "v1.2.3", {
          path: "./old",
          dependsOn: [{ name: "t-rx-backend", readyExpr: "dep.(" }],
        }),
      ],
      "backend/cm.yaml": [configMap("backend", "t-rx", { v: "1" })],
      "frontend/cm.yaml": [configMap("frontend", "t-rx", { v: "1" })],
      "old/cm.yaml": [configMap("old", "t-rx", { v: "1" })],
    });
    const agent = k.agent(repo, "t-rx");
    // The backend is reconciled first in the same pass (dependsOn orders it), so the expression sees it Ready.
    const by = Object.fromEntries((await agent.once()).reconciled.map((k) => [k.name, k]));
    expect(by["t-rx-frontend"]?.ready).toBe(true);
    expect(await getObject(k.client, cmPath("t-rx", "frontend"))).toBeDefined();
    expect(by["t-rx-old"]).toMatchObject({
      ready: false,
      reason: "DependencyNotReady",
      message: "dependency 'shipmate-system/t-rx-backend' is not ready according to readyExpr eval",
    });
    expect(by["t-rx-bad"]).toMatchObject({ ready: false, reason: "InvalidCELExpression" });
    expect(await getObject(k.client, cmPath("t-rx", "old"))).toBeUndefined();
  });
});
