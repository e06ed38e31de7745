/**
 * The test cluster has no kubelet, so no pod ever runs. This stand-in plays
 * the kubelet's part for the agent's Deployment: it waits until the
 * Deployment exists, reads its container's args and env as the cluster holds
 * them (a secretKeyRef is resolved from the Secret), mints a token for the
 * pod's ServiceAccount with the TokenRequest API, and runs `shipmate <args>`
 * as a local process with that identity. What bootstrap installed is thus
 * what runs: wrong args, a missing Secret key or missing RBAC fail here the
 * way they would fail in a pod. Tests may append flags (shorter intervals,
 * a local listen address and workdir), as a pod's environment differs.
 */
import { type ChildProcess, spawn } from "node:child_process";
import { appendFileSync, mkdtempSync, rmSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import type { KubeClient } from "../../src/kube/client.ts";
import type { KubeCluster } from "../infra/kube.ts";

const CLI = join(import.meta.dirname, "../../src/cli/index.ts");

export interface PodProcess {
  proc: ChildProcess;
  /** The last stderr lines (the agent's JSON logs), for failure messages. */
  logs: string[];
  /** Every stderr line, kept in a file until the process's workdir is removed. */
  logFile: string;
  /** The args the Deployment gave the container. */
  args: string[];
  /** Where the process serves /healthz, /readyz and /metrics, once it says so. */
  url: Promise<string>;
  stop(): Promise<void>;
}

type Json = Record<string, unknown>;

async function get(client: KubeClient, path: string): Promise<Json | undefined> {
  const res = await client.raw({ method: "GET", path });
  if (res.code === 404) return undefined;
  if (res.code !== 200) throw new Error(`GET ${path}: ${res.code} ${JSON.stringify(res.body)}`);
  return res.body as Json;
}

interface Container {
  args?: string[];
  env?: { name: string; value?: string; valueFrom?: { secretKeyRef?: { name: string; key: string } } }[];
}

/** Waits for the Deployment and starts its container's process; `extra` flags come after the Deployment's own. */
export async function runDeployment(
  kube: KubeCluster,
  client: KubeClient,
  opts: { namespace: string; name: string; extra: string[]; timeoutMs?: number },
): Promise<PodProcess> {
  const path = `/apis/apps/v1/namespaces/${opts.namespace}/deployments/${opts.name}`;
  const deadline = Date.now() + (opts.timeoutMs ?? 120_000);
  let deployment = await get(client, path);
  while (!deployment) {
    if (Date.now() > deadline) throw new Error(`Deployment ${opts.namespace}/${opts.name} never appeared`);
    await new Promise((r) => setTimeout(r, 200));
    deployment = await get(client, path);
  }
  const podSpec = (deployment.spec as { template: { spec: Json } }).template.spec;
  const container = (podSpec.containers as Container[])[0] ?? {};
  const env: NodeJS.ProcessEnv = { ...process.env };
  for (const e of container.env ?? []) {
    const ref = e.valueFrom?.secretKeyRef;
    if (ref) {
      const secret = await get(client, `/api/v1/namespaces/${opts.namespace}/secrets/${ref.name}`);
      const data = (secret?.data ?? {}) as Record<string, string>;
      const value = data[ref.key];
      if (!value) throw new Error(`Secret ${ref.name} has no key ${ref.key}: the pod would not start`);
      env[e.name] = Buffer.from(value, "base64").toString();
    } else env[e.name] = e.value ?? "";
  }
  const sa = String(podSpec.serviceAccountName ?? "default");
  const tokenReq = await client.raw({
    method: "POST",
    path: `/api/v1/namespaces/${opts.namespace}/serviceaccounts/${sa}/token`,
    body: { apiVersion: "authentication.k8s.io/v1", kind: "TokenRequest", spec: { expirationSeconds: 3600 } },
  });
  if (tokenReq.code !== 201) throw new Error(`TokenRequest for ${sa}: ${tokenReq.code}`);
  const token = (tokenReq.body as { status: { token: string } }).status.token;
  const kubeconfig = kube.kubeconfigFor(token, `pod-${sa}`);
  const args = container.args ?? [];
  const workdir = mkdtempSync(join(tmpdir(), "shipmate-pod-"));
  const logFile = join(workdir, "agent.log");
  const proc = spawn(
    process.execPath,
    [
      CLI,
      ...args,
      `--kubeconfig=${kubeconfig}`,
      `--workdir=${join(workdir, "work")}`,
      "--listen=127.0.0.1:0",
      ...opts.extra,
    ],
    { env, stdio: ["ignore", "ignore", "pipe"] },
  );
  const logs: string[] = [];
  let buf = "";
  let served: (url: string) => void = () => {};
  const url = new Promise<string>((r) => {
    served = r;
  });
  proc.stderr?.on("data", (d: Buffer) => {
    appendFileSync(logFile, d);
    buf += d.toString();
    const lines = buf.split("\n");
    buf = lines.pop() ?? "";
    logs.push(...lines);
    for (const l of lines) {
      const m = /"url":"(http:\/\/[^"]+)"/.exec(l);
      if (m?.[1]) served(m[1]);
    }
    if (logs.length > 400) logs.splice(0, logs.length - 400);
  });
  const exited = new Promise<void>((r) => proc.once("exit", () => r()));
  return {
    proc,
    logs,
    logFile,
    args,
    url,
    async stop() {
      if (proc.exitCode === null && proc.signalCode === null) {
        proc.kill("SIGTERM");
        const t = setTimeout(() => proc.kill("SIGKILL"), 5000);
        await exited;
        clearTimeout(t);
      }
      rmSync(workdir, { recursive: true, force: true });
    },
  };
}
