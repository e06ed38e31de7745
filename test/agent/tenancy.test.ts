/**
 * The multi-tenancy and remote-cluster rules on their own (src/agent/tenancy.ts),
 * named after Flux's kustomize-controller behaviour they pin. The real API
 * servers are in tenancy.kube.test.ts and remote.kube.test.ts.
 */
import { mkdirSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { createServer } from "node:https";
import { tmpdir } from "node:os";
import { dirname, join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { stringify } from "yaml";
import {
  crossNamespaceRef,
  impersonationOf,
  kubeConfigText,
  remoteBases,
  remoteBasesMessage,
  remoteKubeConfig,
  serviceAccountUser,
} from "../../src/agent/tenancy.ts";
import { redact } from "../../src/errors.ts";
import { KubeClient } from "../../src/kube/client.ts";
import { makeCertificates } from "../infra/kube.ts";

describe("impersonation: whom a Kustomization is reconciled as", () => {
  it.each([
    ["no serviceAccountName and no default: the agent's own rights", {}, {}, undefined],
    [
      "serviceAccountName: that account in the Kustomization's namespace",
      { serviceAccountName: "reconciler" },
      {},
      { namespace: "team-a", name: "reconciler", from: "spec.serviceAccountName" },
    ],
    [
      "--default-service-account fills in for a Kustomization without one",
      {},
      { defaultServiceAccount: "default" },
      { namespace: "team-a", name: "default", from: "--default-service-account" },
    ],
    [
      "serviceAccountName wins over --default-service-account",
      { serviceAccountName: "reconciler" },
      { defaultServiceAccount: "default" },
      { namespace: "team-a", name: "reconciler", from: "spec.serviceAccountName" },
    ],
    [
      "the agent's root gets no default (Flux's multi-tenancy runs flux-system as the controller)",
      {},
      { defaultServiceAccount: "default", root: true },
      undefined,
    ],
    [
      "the root still honours its own serviceAccountName",
      { serviceAccountName: "platform" },
      { defaultServiceAccount: "default", root: true },
      { namespace: "team-a", name: "platform", from: "spec.serviceAccountName" },
    ],
    ["an empty serviceAccountName is Go's zero value: none", { serviceAccountName: "" }, {}, undefined],
  ])("%s", (_rule, spec, opts, expected) => {
    expect(impersonationOf(spec, "team-a", opts)).toEqual(expected);
  });

  it("the user name is the API server's name for the service account", () => {
    expect(serviceAccountUser("team-a", "reconciler")).toBe("system:serviceaccount:team-a:reconciler");
  });
});

describe("--no-cross-namespace-refs", () => {
  it.each([
    [
      "a sourceRef without namespace stays in its own",
      { sourceRef: { kind: "GitRepository", name: "a" } },
      undefined,
    ],
    [
      "a sourceRef naming its own namespace is allowed",
      { sourceRef: { kind: "GitRepository", name: "a", namespace: "team-a" } },
      undefined,
    ],
    [
      "a sourceRef into another namespace is refused, naming it",
      { sourceRef: { kind: "GitRepository", name: "flux-system", namespace: "flux-system" } },
      "can't access 'GitRepository/flux-system/flux-system', cross-namespace references have been blocked (--no-cross-namespace-refs)",
    ],
    [
      "a dependsOn into another namespace is refused, naming it",
      { dependsOn: [{ name: "infra" }, { name: "rbac", namespace: "platform" }] },
      "can't depend on 'platform/rbac', cross-namespace references have been blocked (--no-cross-namespace-refs)",
    ],
    [
      "a dependsOn in its own namespace is allowed",
      { dependsOn: [{ name: "rbac", namespace: "team-a" }] },
      undefined,
    ],
  ])("%s", (_rule, spec, expected) => {
    expect(crossNamespaceRef(spec, "team-a")).toBe(expected);
  });
});

const b64 = (s: string) => Buffer.from(s).toString("base64");

describe("kubeConfig.secretRef: which key holds the kubeconfig (Flux's rule)", () => {
  it.each([
    ["value", { value: b64("A"), "value.yaml": b64("B") }, undefined, "A"],
    ["value.yaml when there is no value", { "value.yaml": b64("B") }, undefined, "B"],
    ["the key given, and only that one", { value: b64("A"), config: b64("C") }, "config", "C"],
  ])("%s", (_rule, data, key, expected) => {
    expect(kubeConfigText(data, key, "hub/spoke")).toBe(expected);
  });

  it.each([
    [
      "a given key that is missing fails, without falling back to value",
      { value: b64("A") },
      "config",
      "KubeConfig secret 'hub/spoke' does not contain a 'config' key with a kubeconfig",
    ],
    [
      "neither value nor value.yaml",
      { other: b64("A") },
      undefined,
      "KubeConfig secret 'hub/spoke' does not contain a 'value' (or 'value.yaml') key with a kubeconfig",
    ],
  ])("%s", (_rule, data, key, message) => {
    expect(() => kubeConfigText(data, key, "hub/spoke")).toThrow(message);
  });
});

function kubeconfig(cluster: Record<string, unknown>, user: Record<string, unknown>, current = "spoke") {
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "spoke", cluster: { server: "https://127.0.0.1:6443", ...cluster } }],
    users: [{ name: "admin", user }],
    contexts: [{ name: "spoke", context: { cluster: "spoke", user: "admin" } }],
    "current-context": current,
  });
}

describe("a remote kubeconfig must be self-contained", () => {
  it("an inline token and CA are accepted; the current context's cluster is the target", () => {
    const kc = remoteKubeConfig(
      kubeconfig({ "certificate-authority-data": b64("PEM") }, { token: "s3cr3t-token-value" }),
      "Secret 'hub/spoke'",
    );
    expect(kc.getCurrentCluster()?.server).toBe("https://127.0.0.1:6443");
    // Credentials read from a kubeconfig are never printed.
    expect(redact("token s3cr3t-token-value")).toBe("token ***");
  });

  it.each([
    [
      "certificate-authority file",
      { "certificate-authority": "/etc/ca.crt" },
      {},
      "cluster 'spoke' references a certificate-authority file",
    ],
    [
      "insecure TLS",
      { "insecure-skip-tls-verify": true },
      { token: "t" },
      "cluster 'spoke' disables TLS verification",
    ],
    ["a proxy", { "proxy-url": "http://proxy:3128" }, { token: "t" }, "cluster 'spoke' uses a proxy-url"],
    [
      "tokenFile (the agent's own token would be sent)",
      {},
      { tokenFile: "/var/run/secrets/token" },
      "user 'admin' references a tokenFile",
    ],
    [
      "client-certificate file",
      {},
      { "client-certificate": "/c.crt" },
      "user 'admin' references a client-certificate file",
    ],
    ["client-key file", {}, { "client-key": "/c.key" }, "user 'admin' references a client-key file"],
    [
      "an exec plugin",
      {},
      { exec: { command: "aws", apiVersion: "client.authentication.k8s.io/v1" } },
      "user 'admin' uses an exec credential plugin",
    ],
    [
      "an auth-provider",
      {},
      { "auth-provider": { name: "gcp" } },
      "user 'admin' uses an auth-provider plugin",
    ],
    [
      "impersonation in the file",
      {},
      { token: "t", as: "system:admin" },
      "user 'admin' impersonates a user; set spec.serviceAccountName instead",
    ],
  ])("refused: %s", (_rule, cluster, user, message) => {
    expect(() => remoteKubeConfig(kubeconfig(cluster, user), "Secret 'hub/spoke'")).toThrow(
      `KubeConfig in Secret 'hub/spoke': ${message}`,
    );
  });

  it.each([
    ["no current-context", kubeconfig({}, { token: "t" }, ""), "no current-context"],
    [
      "an undefined current-context",
      kubeconfig({}, { token: "t" }, "other"),
      "current-context 'other' is not defined",
    ],
    ["not YAML", "clusters: [", "invalid KubeConfig in Secret 'hub/spoke'"],
    [
      "a plain http server (credentials only over TLS)",
      kubeconfig({ server: "http://127.0.0.1:6443" }, { token: "t" }),
      "has no https server address",
    ],
  ])("invalid: %s", (_rule, text, message) => {
    expect(() => remoteKubeConfig(text, "Secret 'hub/spoke'")).toThrow(message);
  });
});

const roots: string[] = [];
afterAll(() => {
  for (const r of roots) rmSync(r, { recursive: true, force: true });
});
function tree(files: Record<string, unknown>): string {
  const root = mkdtempSync(join(tmpdir(), "shipmate-bases-"));
  roots.push(root);
  for (const [path, content] of Object.entries(files)) {
    mkdirSync(dirname(join(root, path)), { recursive: true });
    writeFileSync(join(root, path), typeof content === "string" ? content : stringify(content));
  }
  return root;
}
const kustomization = (extra: Record<string, unknown>) => ({
  apiVersion: "kustomize.config.k8s.io/v1beta1",
  kind: "Kustomization",
  ...extra,
});

describe("--no-remote-bases: what a build would fetch from the network", () => {
  it.each([
    [
      "local files and directories only: nothing",
      {
        "app/kustomization.yaml": kustomization({
          resources: ["deploy.yaml", "../base"],
          components: ["../comp"],
        }),
        "app/deploy.yaml": "kind: ConfigMap",
        "base/kustomization.yaml": kustomization({ resources: ["cm.yaml"] }),
        "base/cm.yaml": "kind: ConfigMap",
        "comp/kustomization.yaml": { apiVersion: "kustomize.config.k8s.io/v1alpha1", kind: "Component" },
      },
      [],
    ],
    [
      "an https resource",
      { "app/kustomization.yaml": kustomization({ resources: ["https://example.com/cm.yaml"] }) },
      [{ file: "app/kustomization.yaml", entry: "https://example.com/cm.yaml" }],
    ],
    [
      "a git remote base in kustomize's shorthand, found through a local base",
      {
        "app/kustomization.yaml": kustomization({ resources: ["../base"] }),
        "base/kustomization.yaml": kustomization({
          resources: ["github.com/stefanprodan/podinfo//kustomize?ref=6.7.0"],
        }),
      },
      [{ file: "base/kustomization.yaml", entry: "github.com/stefanprodan/podinfo//kustomize?ref=6.7.0" }],
    ],
    [
      "an ssh git remote component",
      { "app/kustomization.yaml": kustomization({ components: ["git@github.com:org/repo.git//comp"] }) },
      [{ file: "app/kustomization.yaml", entry: "git@github.com:org/repo.git//comp" }],
    ],
    [
      "a patch file fetched over https",
      { "app/kustomization.yaml": kustomization({ patches: [{ path: "https://example.com/p.yaml" }] }) },
      [{ file: "app/kustomization.yaml", entry: "https://example.com/p.yaml" }],
    ],
    [
      "a generator file fetched over https",
      {
        "app/kustomization.yaml": kustomization({
          configMapGenerator: [{ name: "c", files: ["conf=https://example.com/c.conf"] }],
        }),
      },
      [{ file: "app/kustomization.yaml", entry: "https://example.com/c.conf" }],
    ],
  ])("%s", (_rule, files, expected) => {
    const root = tree(files);
    expect(remoteBases(join(root, "app"), root)).toEqual(expected);
  });

  it("the message names the entry and its file, in one line", () => {
    const msg = remoteBasesMessage(
      [{ file: "app/kustomization.yaml", entry: "https://x/y.yaml" }],
      'path "./app"',
    );
    expect(msg).toBe(
      'remote bases are not allowed (--no-remote-bases): path "./app" refers to "https://x/y.yaml" in app/kustomization.yaml; every resource must be a file or directory of the source',
    );
  });
});

describe("a remote API server behind a path prefix (Rancher-style proxies)", () => {
  it("requests keep the server URL's path", async () => {
    const dir = mkdtempSync(join(tmpdir(), "shipmate-proxy-"));
    roots.push(dir);
    makeCertificates(dir);
    const seen: { url?: string; user?: string }[] = [];
    const srv = createServer(
      { key: readFileSync(join(dir, "serving.key")), cert: readFileSync(join(dir, "serving.crt")) },
      (req, res) => {
        seen.push({ url: req.url, user: req.headers["impersonate-user"] as string | undefined });
        res.writeHead(200, { "content-type": "application/json" });
        res.end("{}");
      },
    );
    await new Promise<void>((r) => srv.listen(0, "127.0.0.1", r));
    const port = (srv.address() as { port: number }).port;
    const kc = remoteKubeConfig(
      stringify({
        clusters: [
          {
            name: "c",
            cluster: {
              server: `https://127.0.0.1:${port}/k8s/clusters/c-1/`,
              "certificate-authority-data": readFileSync(join(dir, "ca.crt")).toString("base64"),
            },
          },
        ],
        users: [{ name: "u", user: { token: "proxy-token-value" } }],
        contexts: [{ name: "c", context: { cluster: "c", user: "u" } }],
        "current-context": "c",
      }),
      "Secret 'hub/proxy'",
    );
    const client = new KubeClient(kc, { retryForMs: 0 });
    try {
      await client.raw({ method: "GET", path: "/api/v1" });
      await client
        .as({ user: serviceAccountUser("apps", "flux") })
        .raw({ method: "GET", path: "/apis/apps/v1" });
    } finally {
      client.close();
      srv.close();
    }
    expect(seen).toEqual([
      { url: "/k8s/clusters/c-1/api/v1", user: undefined },
      { url: "/k8s/clusters/c-1/apis/apps/v1", user: "system:serviceaccount:apps:flux" },
    ]);
  });
});
