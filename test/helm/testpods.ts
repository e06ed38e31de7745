/**
 * The test cluster has no kubelet, so no pod ever runs, and Helm's test
 * hooks are pods that must end. This stand-in plays the kubelet's part for
 * test-hook pods only (annotation `helm.sh/hook: test`): it runs the
 * pod's first container's `command` + `args` as a local process, with the
 * container's literal `env`, and writes the pod's phase (Succeeded on exit
 * 0, Failed otherwise) through the status subresource, as the kubelet would.
 * What stands in is the container runtime; the chart's command, its values
 * and Helm's wait on the pod phase are real. Tests start it per file and
 * stop it in afterAll.
 */
import { execFile } from "node:child_process";
import type { KubeClient } from "../../src/kube/client.ts";

interface Pod {
  metadata: { name: string; namespace: string; annotations?: Record<string, string> };
  spec: { containers: { command?: string[]; args?: string[]; env?: { name: string; value?: string }[] }[] };
  status?: { phase?: string };
}

export interface TestPodRunner {
  /** Test pods run so far, `namespace/name`. */
  ran: string[];
  stop(): void;
}

export function runTestPods(client: KubeClient): TestPodRunner {
  const ran: string[] = [];
  const started = new Set<string>();
  let stopped = false;
  const tick = async () => {
    const res = await client.raw({ method: "GET", path: "/api/v1/pods" });
    if (res.code !== 200) return;
    for (const pod of (res.body as { items: Pod[] }).items) {
      const key = `${pod.metadata.namespace}/${pod.metadata.name}`;
      const hook = pod.metadata.annotations?.["helm.sh/hook"] ?? "";
      if (!hook.split(",").includes("test") || started.has(key) || pod.status?.phase === "Succeeded")
        continue;
      if (pod.status?.phase === "Failed") continue;
      started.add(key);
      const c = pod.spec.containers[0];
      const argv = [...(c?.command ?? []), ...(c?.args ?? [])];
      const env = Object.fromEntries((c?.env ?? []).map((e) => [e.name, e.value ?? ""]));
      const code = await new Promise<number>((resolve) => {
        if (!argv.length) return resolve(1);
        execFile(
          argv[0] as string,
          argv.slice(1),
          { env: { PATH: process.env.PATH, ...env }, timeout: 30_000 },
          (err) => resolve(err ? 1 : 0),
        );
      });
      ran.push(key);
      await client.raw({
        method: "PATCH",
        path: `/api/v1/namespaces/${pod.metadata.namespace}/pods/${pod.metadata.name}/status`,
        body: { status: { phase: code === 0 ? "Succeeded" : "Failed" } },
        contentType: "application/merge-patch+json",
      });
      // A pod recreated under the same name (the next test run) is run again.
      started.delete(key);
    }
  };
  const loop = async () => {
    while (!stopped) {
      await tick().catch(() => undefined);
      await new Promise((r) => setTimeout(r, 100));
    }
  };
  void loop();
  return {
    ran,
    stop: () => {
      stopped = true;
    },
  };
}
