/**
 * Under Flux's own Kustomization CRD (kept after `bootstrap --from-flux`),
 * whose schema prunes the agent's state hashes from status.inventory, a
 * steady pass still costs no dry run and no write: the agent remembers the
 * hashes of its last apply while it runs (./src/agent/reconciler.ts).
 */
import { expect, it, vi } from "vitest";
import type { KubeClient } from "../../src/kube/client.ts";
import { kubeSuite } from "../helpers/kube.ts";
import { configMap, FleetRepo, getObject, makeAgent, namespace } from "./helpers.ts";

vi.setConfig({ testTimeout: 180_000 });

const k = kubeSuite({
  name: "fluxcrd",
  fluxCrds: [
    "kustomize.toolkit.fluxcd.io_kustomizations.yaml",
    "source.toolkit.fluxcd.io_gitrepositories.yaml",
  ],
});

it("a steady pass under Flux's CRD makes no dry run and no write", async () => {
  const repo = FleetRepo.create();
  try {
    repo.commit({
      "clusters/test/cms.yaml": [
        namespace("fc-a"),
        ...Array.from({ length: 20 }, (_, i) => configMap(`c${i}`, "fc-a", { i: String(i) })),
      ],
    });
    const agent = makeAgent(k.kube, repo, { name: "fc" });
    try {
      const first = await agent.once();
      expect(first.reconciled[0]?.ready).toBe(true);
      // The CRD is Flux's: the hashes did not survive in status.
      const ks = await getObject(
        k.client,
        "/apis/kustomize.toolkit.fluxcd.io/v1/namespaces/shipmate-system/kustomizations/fc",
      );
      const entries = ks?.status?.inventory?.entries as { id: string; h?: string }[];
      expect(entries.length).toBe(21);
      expect(entries.some((e) => e.h)).toBe(false);

      const counts = (agent as unknown as { client: KubeClient }).client.counts;
      const before = { ...counts };
      const second = await agent.pass(new AbortController().signal, true);
      expect(second.reconciled[0]?.ready).toBe(true);
      expect(counts.dryRuns - before.dryRuns).toBe(0);
      expect(counts.writes - before.writes).toBe(0);

      // Drift is still seen: a changed owned field costs that object's dry run and its write.
      await k.client.raw({
        method: "PATCH",
        path: "/api/v1/namespaces/fc-a/configmaps/c3",
        contentType: "application/merge-patch+json",
        body: { data: { i: "drifted" } },
      });
      await agent.pass(new AbortController().signal, true);
      expect((await getObject(k.client, "/api/v1/namespaces/fc-a/configmaps/c3"))?.data.i).toBe("3");
    } finally {
      agent.close();
    }
  } finally {
    repo.remove();
  }
});
