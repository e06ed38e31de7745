/**
 * A scaffolded fleet as the in-cluster agent sees it: the real agent syncs
 * clusters/staging of a freshly scaffolded monorepo into a real
 * kube-apiserver (test/infra/kube.ts). Proves the scaffold is not only valid
 * on paper: CRDs, the agent's own objects, infrastructure before apps, image
 * tags from the overlays.
 */
import { execFile } from "node:child_process";
import { join } from "node:path";
import { promisify } from "node:util";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { Agent } from "../../src/agent/agent.ts";
import type { KubeClient } from "../../src/kube/client.ts";
import { init } from "../../src/scaffold/scaffold.ts";
import { adminClient, getObject, ksStatus, rollOutWhenCreated, silent } from "../agent/helpers.ts";
import { type KubeCluster, startKube } from "../infra/kube.ts";
import { tempDirs } from "./helpers.ts";

const tmp = tempDirs();
const run = promisify(execFile);
let kube: KubeCluster;
let client: KubeClient;
let agent: Agent | undefined;

beforeAll(async () => {
  kube = await startKube({ name: "scaffold" });
  client = adminClient(kube);
}, 120_000);
afterAll(async () => {
  agent?.close();
  client?.close();
  await kube?.stop();
});

describe("a scaffolded monorepo, synced by the real agent into a real API server", () => {
  it("bootstraps with the README's kubectl commands, then the agent applies infrastructure, then the apps", async () => {
    const out = join(await tmp(), "fleet");
    // The fleet's own GitRepository points at the scaffolded repository itself.
    await init({ layout: "monorepo", out, apps: ["web"], teams: ["payments"], gitUrl: `file://${out}` });
    // Bootstrap exactly as the scaffolded README says, with the real kubectl.
    for (const args of [
      ["apply", "--server-side", "-f", join(out, "clusters/staging/shipmate-system/crds.yaml")],
      ["apply", "--server-side", "-k", join(out, "clusters/staging/shipmate-system")],
    ])
      await run("kubectl", ["--kubeconfig", kube.kubeconfig, ...args]);
    expect(
      await getObject(
        client,
        "/apis/source.toolkit.fluxcd.io/v1/namespaces/shipmate-system/gitrepositories/shipmate-system",
      ),
    ).toBeDefined();

    // Then the agent takes over, as the Deployment just applied would.
    const root = await tmp();
    agent = new Agent(
      kube.kubeConfig(),
      {
        repo: `file://${out}`,
        branch: "main",
        path: "clusters/staging",
        intervalMs: 60_000,
        name: "shipmate-system",
        namespace: "shipmate-system",
        workdir: root,
        pollMs: 200,
        healthPollMs: 200,
      },
      silent,
    );
    const running = agent.once();
    // No controller-manager runs: play its part once the app's Deployment appears.
    const path = "/apis/apps/v1/namespaces/payments/deployments/web";
    const web = await rollOutWhenCreated(client, path);
    const result = await running;
    const byName = Object.fromEntries(result.reconciled.map((k) => [k.name, k]));
    expect(Object.keys(byName).sort()).toEqual([
      "apps",
      "infra-configs",
      "infra-controllers",
      "shipmate-system",
    ]);
    for (const k of Object.values(byName))
      expect([k.name, k.ready, k.message]).toEqual([k.name, true, k.message]);

    expect(web.spec.template.spec.containers[0].image).toBe("ghcr.io/example/web:1.0.0");
    const settings = await getObject(
      client,
      "/api/v1/namespaces/shipmate-system/configmaps/cluster-settings",
    );
    expect(settings?.data).toEqual({ fleet: "fleet", environment: "staging" });
    expect(
      await getObject(
        client,
        "/apis/rbac.authorization.k8s.io/v1/namespaces/payments/rolebindings/team-admin",
      ),
    ).toBeDefined();
    const agentDeployment = await getObject(
      client,
      "/apis/apps/v1/namespaces/shipmate-system/deployments/shipmate-agent",
    );
    expect(agentDeployment?.spec.template.spec.containers[0].args).toContain("--path=clusters/staging");
    // Infrastructure became ready before the apps that depend on it.
    const readyAt = async (n: string) =>
      Date.parse((await ksStatus(client, n)).ready?.lastTransitionTime ?? "");
    expect(await readyAt("apps")).toBeGreaterThanOrEqual(await readyAt("infra-configs"));
  }, 180_000);
});
