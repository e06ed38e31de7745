/**
 * A Flagger Canary the fleet applied goes Failed, against the real
 * kube-apiserver with Flagger's own CRDs: the agent, running continuously,
 * records one Warning `CanaryFailed` event on the Kustomization that applied
 * it, and a Flux Alert + generic Provider deliver it to a receiver on
 * 127.0.0.1 with the applied revision. No Flagger runs here: the test writes
 * the Canary's status as Flagger does (status subresource, its `Promoted`
 * condition); test/e2e/flagger.test.ts runs the real one. With Flagger's
 * CRDs gone, the agent says so in one log line and reconciles on.
 */
import { pino } from "pino";
import { afterAll, beforeAll, describe, expect, it, vi } from "vitest";
import { kubeSuite } from "../helpers/kube.ts";
import { installFlaggerCrds } from "../infra/flagger.ts";
import { type Receiver, startReceiver } from "../notify/receiver.ts";
import {
  type ApiJson,
  type FleetRepo,
  getObject,
  ksStatus,
  makeAgent,
  namespace,
  patchObject,
  waitFor,
} from "./helpers.ts";

vi.setConfig({ testTimeout: 60_000, hookTimeout: 60_000 });

let receiver: Receiver;
let fleet: FleetRepo;

const k = kubeSuite({
  name: "canaryev",
  fluxCrds: ["notification.toolkit.fluxcd.io_providers.yaml", "notification.toolkit.fluxcd.io_alerts.yaml"],
  alongside: async () => {
    receiver = await startReceiver();
  },
});
beforeAll(async () => {
  await installFlaggerCrds(k.client);
  fleet = k.fleet();
});
afterAll(async () => {
  await receiver?.close();
});

const NS = "shipmate-system";
const CANARY = "/apis/flagger.app/v1beta1/namespaces/apps/canaries/web";

const canary = {
  apiVersion: "flagger.app/v1beta1",
  kind: "Canary",
  metadata: { name: "web", namespace: "apps" },
  spec: {
    provider: "kubernetes",
    targetRef: { apiVersion: "apps/v1", kind: "Deployment", name: "web" },
    service: { port: 80 },
    analysis: { interval: "1m", threshold: 5, iterations: 5 },
  },
};

/** The Canary's status as Flagger writes it for a phase. */
async function setPhase(phase: string, message: string, failedChecks = 0): Promise<void> {
  const now = new Date().toISOString().replace(/\.\d+Z$/, "Z");
  const status = phase === "Succeeded" ? "True" : phase === "Failed" ? "False" : "Unknown";
  await patchObject(
    k.client,
    `${CANARY}/status`,
    {
      status: {
        phase,
        failedChecks,
        canaryWeight: 0,
        iterations: 0,
        lastTransitionTime: now,
        conditions: [
          { type: "Promoted", status, reason: phase, message, lastUpdateTime: now, lastTransitionTime: now },
        ],
      },
    },
    { fieldManager: "flagger" },
  );
}

async function ksEvents(reason: string): Promise<ApiJson[]> {
  const list = await getObject(
    k.client,
    `/api/v1/namespaces/${NS}/events?fieldSelector=involvedObject.kind%3DKustomization,involvedObject.name%3Dfleet,reason%3D${reason}`,
  );
  return list?.items ?? [];
}

describe("the agent reports a Canary's outcome on the Kustomization that applied it", () => {
  it("Failed: one CanaryFailed event delivered to the Alert with the revision; Succeeded; CRDs gone", async () => {
    const sha = fleet.commit({
      "clusters/test/apps.yaml": [namespace("apps"), canary],
      "clusters/test/alerts.yaml": [
        {
          apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
          kind: "Provider",
          metadata: { name: "hook", namespace: NS },
          spec: { type: "generic", address: `${receiver.url}/canary` },
        },
        {
          apiVersion: "notification.toolkit.fluxcd.io/v1beta3",
          kind: "Alert",
          metadata: { name: "failures", namespace: NS },
          spec: {
            providerRef: { name: "hook" },
            eventSeverity: "error",
            eventSources: [{ kind: "Kustomization", name: "*" }],
          },
        },
      ],
    });
    // The agent's warnings, kept (makeAgent's logger is silent).
    const warnings: string[] = [];
    const agent = makeAgent(
      k.kube,
      fleet,
      {},
      pino({ level: "warn" }, { write: (line: string) => warnings.push(JSON.parse(line).msg) }),
    );
    const stop = new AbortController();
    const running = agent.run(stop.signal, false);
    // A pass that starts after now and ends (lastPassAt is a pass's end).
    const fullPass = async () => {
      for (let i = 0; i < 2; i++) {
        const t = Date.now();
        await waitFor(async () => (agent.lastPassAt > t ? true : undefined));
      }
    };
    try {
      await waitFor(async () =>
        (await ksStatus(k.client, "fleet")).inventory.some((e) => e.id === "apps_web_flagger.app_Canary")
          ? true
          : undefined,
      );
      await fullPass();
      await setPhase("Progressing", "New revision detected, progressing canary analysis.");
      await fullPass();
      expect(await ksEvents("CanaryFailed")).toEqual([]);

      await setPhase("Failed", "Canary analysis failed, Deployment scaled to zero.", 5);
      const event = await waitFor(async () => (await ksEvents("CanaryFailed"))[0]);
      expect([event?.type, event?.message]).toEqual([
        "Warning",
        "Canary apps/web failed: Canary analysis failed, Deployment scaled to zero. (5 failed checks)",
      ]);
      // Later passes see the same Failed Canary: nothing more.
      await fullPass();
      await fullPass();
      expect(await ksEvents("CanaryFailed")).toHaveLength(1);

      // The notification path: Flux's generic payload, the applied revision for commit statuses.
      const [sent] = await receiver.waitFor(1);
      expect(sent?.path).toBe("/canary");
      expect(sent?.json).toMatchObject({
        involvedObject: { kind: "Kustomization", name: "fleet", namespace: NS },
        severity: "error",
        reason: "CanaryFailed",
        message: event?.message,
        metadata: { revision: `main@sha1:${sha}` },
      });

      // The next rollout succeeds: a Normal event (the error-only Alert sends nothing more).
      await setPhase("Progressing", "New revision detected, progressing canary analysis.");
      await fullPass();
      await setPhase("Succeeded", "Canary analysis completed successfully, promotion finished.");
      const ok = await waitFor(async () => (await ksEvents("CanarySucceeded"))[0]);
      expect([ok?.type, ok?.message]).toEqual([
        "Normal",
        "Canary apps/web succeeded: Canary analysis completed successfully, promotion finished.",
      ]);
      await fullPass();
      expect(receiver.requests.map((r) => (r.json as ApiJson).reason)).toEqual(["CanaryFailed"]);

      // Flagger's CRDs removed: one log line, however many passes, and the Kustomization stays Ready.
      expect(warnings.filter((w) => w.startsWith("Canaries"))).toEqual([]);
      const crd = await k.client.raw({
        method: "DELETE",
        path: "/apis/apiextensions.k8s.io/v1/customresourcedefinitions/canaries.flagger.app",
      });
      expect(crd.code).toBe(200);
      await waitFor(async () =>
        (await k.client.raw({ method: "GET", path: CANARY })).code === 404 &&
        (await k.client.raw({ method: "GET", path: "/apis/flagger.app/v1beta1/canaries" })).code === 404
          ? true
          : undefined,
      );
      await fullPass();
      await fullPass();
      await fullPass();
      expect(warnings.filter((w) => w.startsWith("Canaries"))).toEqual([
        "Canaries not reported: the flagger.app Canary kind is not served (Flagger's CRDs are not installed)",
      ]);
      expect((await ksStatus(k.client, "fleet")).ready?.status).toBe("True");
    } finally {
      stop.abort();
      await running;
      agent.close();
    }
  });
});
