/**
 * Fault suite: the agent against a control plane that goes away mid-apply.
 * etcd stopped (kube-apiserver up, answering with errors) and kube-apiserver
 * stopped (connections refused), each while the agent applies 150 objects
 * and started again. Whatever the moment, the agent says why it failed in
 * one line (Ready=False in its report), deletes nothing because a request
 * failed (no prune storm), keeps its inventory whole, and converges on the
 * next pass. A real etcd and kube-apiserver on 127.0.0.1.
 */
import { afterAll, describe, expect, it, vi } from "vitest";
import type { Agent } from "../../src/agent/agent.ts";
import { configMap, type FleetRepo, getObject, ksStatus, namespace } from "../agent/helpers.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { waitFor } from "../helpers/wait.ts";

vi.setConfig({ testTimeout: 240_000 });

const OBJECTS = 150;

const figures: string[] = [];

const k = kubeSuite({ name: "faults" });
afterAll(() => {
  console.log(`api outage faults: ${figures.join("; ")}`);
});

const many = (ns: string, n: number, version: string) =>
  Array.from({ length: n }, (_, i) => configMap(`c${i}`, ns, { i: String(i), version }));

async function owned(ns: string): Promise<{ metadata: { name: string }; data: Record<string, string> }[]> {
  return ((
    await getObject(
      k.client,
      `/api/v1/namespaces/${ns}/configmaps?labelSelector=kustomize.toolkit.fluxcd.io%2Fname%3D${ns}`,
    )
  )?.items ?? []) as { metadata: { name: string }; data: Record<string, string> }[];
}

const until = async (check: () => boolean | Promise<boolean>, ms: number, what: string): Promise<void> => {
  await waitFor(check, { ms, what, every: 20 });
};

/** An agent whose fleet holds `OBJECTS` ConfigMaps at v1, applied and Ready; then git moves them to v2. */
async function synced(ns: string, apiRetryMs: number): Promise<{ agent: Agent; repo: FleetRepo }> {
  const repo = k.fleet();
  repo.commit({ "clusters/test/all.yaml": [namespace(ns), ...many(ns, OBJECTS, "v1")] });
  const agent = k.agent(repo, ns, { apiRetryMs });
  const first = await agent.once();
  expect(first.reconciled[0]?.ready, first.reconciled[0]?.message).toBe(true);
  expect(await owned(ns)).toHaveLength(OBJECTS);
  repo.commit({ "clusters/test/all.yaml": [namespace(ns), ...many(ns, OBJECTS, "v2")] });
  return { agent, repo };
}

/** One line, no stack, no Node or library text. */
function oneLine(message: string | undefined): void {
  expect(message).toBeTruthy();
  expect(message).not.toContain("\n");
  expect(message).not.toMatch(/\bat .+:\d+:\d+\)|TypeError|undefined/);
}

const outages = [
  { what: "etcd", stop: () => k.kube.stopEtcd(), start: () => k.kube.startEtcd() },
  { what: "kube-apiserver", stop: () => k.kube.stopApiServer(), start: () => k.kube.startApiServer() },
];

describe.each(outages)("$what stopped in the middle of an apply", ({ what, stop, start }) => {
  it("back within the retry window: the same pass finishes, nothing deleted, inventory whole", async () => {
    const ns = `f-${what === "etcd" ? "etcd" : "api"}-short`;
    const { agent } = await synced(ns, 60_000);
    try {
      const deletesBefore = agent.client.counts.byVerb.DELETE ?? 0;
      const applies = agent.client.counts.byVerb.APPLY ?? 0;
      const run = agent.pass(new AbortController().signal, true);
      await until(() => (agent.client.counts.byVerb.APPLY ?? 0) > applies + 10, 60_000, "writes");
      await stop();
      await new Promise((r) => setTimeout(r, 1500));
      await start();
      const summary = await run;
      expect(summary.reconciled[0]?.ready, summary.reconciled[0]?.message).toBe(true);
      const objects = await owned(ns);
      expect(objects).toHaveLength(OBJECTS);
      expect(objects.every((o) => o.data.version === "v2")).toBe(true);
      expect((await ksStatus(k.client, ns)).inventory).toHaveLength(OBJECTS + 1);
      expect(agent.client.counts.byVerb.DELETE ?? 0).toBe(deletesBefore);
      figures.push(`${what} down 1.5 s mid-apply: recovered in the same pass, 0 deletes`);
    } finally {
      agent.close();
    }
  });

  it("down longer than the agent retries: Ready=False in one line, no deletes; the next pass converges", async () => {
    const ns = `f-${what === "etcd" ? "etcd" : "api"}-long`;
    const { agent, repo } = await synced(ns, 1500);
    try {
      const deletesBefore = agent.client.counts.byVerb.DELETE ?? 0;
      const applies = agent.client.counts.byVerb.APPLY ?? 0;
      const run = agent.pass(new AbortController().signal, true);
      // Its outcome is taken at once: the pass may end while the server is still stopping.
      let thrown: unknown;
      const outcome = run.catch((e: unknown) => {
        thrown = e;
        return undefined;
      });
      await until(() => (agent.client.counts.byVerb.APPLY ?? 0) > applies + 10, 60_000, "writes");
      await stop();
      let failed: Awaited<typeof run> | undefined;
      try {
        const t0 = performance.now();
        failed = await outcome;
        figures.push(
          `${what}: the cut pass ended ${((performance.now() - t0) / 1000).toFixed(1)} s after the cut`,
        );
      } finally {
        await start();
      }
      // The interrupted pass says so: a report with Ready=False and a reason, or an error, in one line.
      const report = failed?.reconciled.find((k) => k.name === ns);
      if (report) {
        expect(report.ready).toBe(false);
        expect(report.reason).toMatch(/^[A-Z][A-Za-z]+$/);
        oneLine(report.message);
      } else oneLine((thrown as Error).message);
      expect(agent.client.counts.byVerb.DELETE ?? 0).toBe(deletesBefore);
      // Nothing the cluster held was lost: every object is still there (at v1 or v2).
      expect(await owned(ns)).toHaveLength(OBJECTS);

      // Git moves on before the agent's next chance: a third of the objects go. Exactly those are pruned.
      repo.commit({ "clusters/test/all.yaml": [namespace(ns), ...many(ns, 100, "v3")] });
      // The first pass after the restart may still meet the cool-down or a control plane warming up.
      let next: Awaited<typeof run> | undefined;
      let passes = 0;
      const deadline = Date.now() + 60_000;
      while (Date.now() < deadline) {
        passes++;
        next = await agent.pass(new AbortController().signal, true).catch(() => undefined);
        if (next?.reconciled[0]?.ready) break;
        await new Promise((r) => setTimeout(r, 500));
      }
      expect(next?.reconciled[0]?.ready, next?.reconciled[0]?.message).toBe(true);
      const after = await owned(ns);
      expect(after.map((o) => o.metadata.name).sort()).toEqual(
        many(ns, 100, "v3")
          .map((c) => c.metadata.name)
          .sort(),
      );
      expect(after.every((o) => o.data.version === "v3")).toBe(true);
      const status = await ksStatus(k.client, ns);
      expect(status.inventory).toHaveLength(101);
      expect(status.ready?.status).toBe("True");
      expect(agent.client.counts.byVerb.DELETE ?? 0).toBe(deletesBefore + OBJECTS - 100);
      figures.push(
        `${what} down past the retry window: ${report ? `Ready=False ${report.reason}: ${report.message}` : `pass failed: ${(thrown as Error).message}`}, 0 deletes while down, ${OBJECTS - 100} pruned after as git asked, converged in ${passes} pass(es)`,
      );
    } finally {
      agent.close();
    }
  });
});
