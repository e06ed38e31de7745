/**
 * A real Kubernetes control plane for tests: etcd + kube-apiserver on
 * 127.0.0.1 with random free ports, built by scripts/provision/40-kube.sh.
 * Flags follow what Kubernetes' own integration-test harness uses: loopback
 * advertise/bind addresses, service-account keys, static bearer tokens
 * (an admin in system:masters and a user with no rights until a test binds
 * some), RBAC authorization. No controller-manager or kubelet runs, so a test
 * that needs workload status writes it itself through the status subresource.
 *
 * A suite that cannot find the binaries fails (it never skips).
 */
import { type ChildProcess, execFileSync, spawn } from "node:child_process";
import { randomBytes } from "node:crypto";
import { existsSync, mkdirSync, mkdtempSync, openSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { KubeConfig } from "@kubernetes/client-node";
import { waitFor as poll } from "../helpers/wait.ts";
import { freePort } from "./net.ts";

export interface KubeCluster {
  /** https://127.0.0.1:PORT */
  server: string;
  /** PEM of the CA that signed the serving certificate. */
  caPem: string;
  /** Bearer token of `admin` (group system:masters). */
  adminToken: string;
  /** Bearer token of `dev` (group `developers`), which has no rights until a test grants them. */
  userToken: string;
  /** Path of a kubeconfig file for the admin. */
  kubeconfig: string;
  /** Scratch directory holding certificates, data and logs; removed by stop(). */
  dir: string;
  /** A kubeconfig file (written under dir) authenticating with `token`. */
  kubeconfigFor(token: string, name: string): string;
  /** A client-node KubeConfig for `token` (admin by default). */
  kubeConfig(token?: string): KubeConfig;
  /** Stops kube-apiserver (etcd keeps the data). */
  stopApiServer(): Promise<void>;
  /** Starts kube-apiserver again on the same port and etcd, waiting for /readyz. */
  startApiServer(): Promise<void>;
  /** Stops etcd (its data stays on disk); kube-apiserver keeps running and answers with errors. */
  stopEtcd(): Promise<void>;
  /** Starts etcd again on the same ports and data, waiting for its /health. */
  startEtcd(): Promise<void>;
  /** Stops everything and removes dir. */
  stop(): Promise<void>;
}

const children = new Set<ChildProcess>();
let exitHookInstalled = false;
function track(child: ChildProcess): void {
  children.add(child);
  child.once("exit", () => children.delete(child));
  if (!exitHookInstalled) {
    exitHookInstalled = true;
    // A crashed or interrupted test process must not leave servers behind.
    process.once("exit", () => {
      for (const c of children) c.kill("SIGKILL");
    });
  }
}

/** Looks a control-plane binary up on PATH, then in $SHIPMATE_CACHE/bin. */
export function findBinary(name: string): string {
  const cache =
    process.env.SHIPMATE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shipmate");
  const dirs = [...(process.env.PATH ?? "").split(delimiter), join(cache, "bin")];
  for (const d of dirs) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  throw new Error(
    `${name} not found on PATH or in ${join(cache, "bin")}: run scripts/provision/40-kube.sh (scripts/test.sh does)`,
  );
}

export { freePort };

function openssl(args: string[], cwd: string): void {
  execFileSync("openssl", args, { cwd, stdio: ["ignore", "ignore", "pipe"] });
}

/** CA, a serving certificate for 127.0.0.1/localhost, and the service-account key pair. */
export function makeCertificates(dir: string): void {
  openssl(
    ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "2", "-subj", "/CN=shipmate-test-ca"].concat([
      "-keyout",
      "ca.key",
      "-out",
      "ca.crt",
    ]),
    dir,
  );
  writeFileSync(
    join(dir, "serving.ext"),
    "subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:kubernetes.default.svc\nextendedKeyUsage=serverAuth\n",
  );
  openssl(
    [
      "req",
      "-newkey",
      "rsa:2048",
      "-nodes",
      "-subj",
      "/CN=kube-apiserver",
      "-keyout",
      "serving.key",
      "-out",
      "serving.csr",
    ],
    dir,
  );
  openssl(
    [
      "x509",
      "-req",
      "-in",
      "serving.csr",
      "-CA",
      "ca.crt",
      "-CAkey",
      "ca.key",
      "-CAcreateserial",
      "-days",
      "2",
    ].concat(["-extfile", "serving.ext", "-out", "serving.crt"]),
    dir,
  );
  openssl(["genrsa", "-out", "sa.key", "2048"], dir);
  openssl(["rsa", "-in", "sa.key", "-pubout", "-out", "sa.pub"], dir);
}

function kubeconfigText(server: string, caPem: string, token: string, user: string): string {
  const ca = Buffer.from(caPem).toString("base64");
  return [
    "apiVersion: v1",
    "kind: Config",
    "clusters:",
    `- name: test\n  cluster:\n    server: ${server}\n    certificate-authority-data: ${ca}`,
    "users:",
    `- name: ${user}\n  user:\n    token: ${token}`,
    "contexts:",
    `- name: ${user}@test\n  context:\n    cluster: test\n    user: ${user}`,
    `current-context: ${user}@test`,
    "",
  ].join("\n");
}

async function waitFor(
  what: string,
  child: ChildProcess,
  logFile: string,
  check: () => Promise<boolean>,
  timeoutMs: number,
) {
  await poll(
    async () => {
      if (child.exitCode !== null || child.signalCode !== null)
        throw new Error(
          `${what} exited (${child.exitCode ?? child.signalCode}); log tail:\n${tail(logFile)}`,
        );
      return await check().catch(() => false);
    },
    { ms: timeoutMs, every: 200, what: `${what} to be ready`, detail: () => `log tail:\n${tail(logFile)}` },
  );
}

function tail(file: string): string {
  try {
    return readFileSync(file, "utf8").split("\n").slice(-25).join("\n");
  } catch {
    return "(no log)";
  }
}

async function stopChild(child: ChildProcess | undefined, graceMs = 5000): Promise<void> {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((r) => child.once("exit", () => r()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), graceMs);
  await exited;
  clearTimeout(timer);
}

/** An HTTPS GET against the API server that trusts only the test CA. */
async function apiGet(server: string, caPem: string, token: string, path: string): Promise<number> {
  const { request } = await import("node:https");
  return await new Promise((resolve, reject) => {
    const req = request(
      `${server}${path}`,
      { ca: caPem, headers: { authorization: `Bearer ${token}` }, timeout: 2000 },
      (res) => {
        res.resume();
        res.on("end", () => resolve(res.statusCode ?? 0));
      },
    );
    req.on("error", reject);
    req.on("timeout", () => req.destroy(new Error("timeout")));
    req.end();
  });
}

export async function startKube(opts: { name?: string } = {}): Promise<KubeCluster> {
  const etcdBin = findBinary("etcd");
  const apiBin = findBinary("kube-apiserver");
  const dir = mkdtempSync(join(tmpdir(), `shipmate-kube-${opts.name ?? "test"}-`));
  makeCertificates(dir);
  const caPem = readFileSync(join(dir, "ca.crt"), "utf8");
  const adminToken = randomBytes(16).toString("hex");
  const userToken = randomBytes(16).toString("hex");
  writeFileSync(
    join(dir, "tokens.csv"),
    `${adminToken},admin,admin-uid,"system:masters"\n${userToken},dev,dev-uid,"developers"\n`,
  );

  const [etcdClient, etcdPeer, apiPort] = [await freePort(), await freePort(), await freePort()];
  const etcdUrl = `http://127.0.0.1:${etcdClient}`;
  mkdirSync(join(dir, "etcd"));
  const etcdLog = join(dir, "etcd.log");
  let etcd: ChildProcess | undefined;
  const startEtcd = async () => {
    etcd = spawn(
      etcdBin,
      [
        "--name=test",
        `--data-dir=${join(dir, "etcd")}`,
        `--listen-client-urls=${etcdUrl}`,
        `--advertise-client-urls=${etcdUrl}`,
        `--listen-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-advertise-peer-urls=http://127.0.0.1:${etcdPeer}`,
        `--initial-cluster=test=http://127.0.0.1:${etcdPeer}`,
        // Test data is thrown away; fsync would only make every write slower.
        "--unsafe-no-fsync",
        "--log-level=warn",
      ],
      { stdio: ["ignore", openSync(etcdLog, "a"), openSync(etcdLog, "a")] },
    );
    track(etcd);
    await waitFor(
      "etcd",
      etcd,
      etcdLog,
      async () => {
        const res = await fetch(`${etcdUrl}/health`);
        return res.ok;
      },
      30_000,
    );
  };
  await startEtcd();

  const server = `https://127.0.0.1:${apiPort}`;
  const apiLog = join(dir, "kube-apiserver.log");
  const apiArgs = [
    "--advertise-address=127.0.0.1",
    "--bind-address=127.0.0.1",
    `--secure-port=${apiPort}`,
    `--cert-dir=${dir}`,
    `--tls-cert-file=${join(dir, "serving.crt")}`,
    `--tls-private-key-file=${join(dir, "serving.key")}`,
    `--etcd-servers=${etcdUrl}`,
    `--service-account-issuer=${server}`,
    `--service-account-key-file=${join(dir, "sa.pub")}`,
    `--service-account-signing-key-file=${join(dir, "sa.key")}`,
    `--token-auth-file=${join(dir, "tokens.csv")}`,
    "--authorization-mode=RBAC",
    // A Service's cluster IP is only a configuration value here; nothing routes to it.
    "--service-cluster-ip-range=10.0.0.0/24",
    // Without a controller-manager no default ServiceAccount exists in new namespaces.
    "--disable-admission-plugins=ServiceAccount",
    "--enable-priority-and-fairness=false",
    "--endpoint-reconciler-type=none",
    "--allow-privileged=true",
    "--profiling=false",
    "--v=1",
  ];
  let api: ChildProcess | undefined;
  const startApiServer = async () => {
    api = spawn(apiBin, apiArgs, { stdio: ["ignore", openSync(apiLog, "a"), openSync(apiLog, "a")] });
    track(api);
    const child = api;
    await waitFor(
      "kube-apiserver",
      child,
      apiLog,
      async () => (await apiGet(server, caPem, adminToken, "/readyz")) === 200,
      120_000,
    );
  };
  try {
    await startApiServer();
  } catch (err) {
    await stopChild(api);
    await stopChild(etcd);
    throw err;
  }

  const kubeconfig = join(dir, "admin.kubeconfig");
  writeFileSync(kubeconfig, kubeconfigText(server, caPem, adminToken, "admin"));
  return {
    server,
    caPem,
    adminToken,
    userToken,
    kubeconfig,
    dir,
    kubeconfigFor(token, name) {
      const file = join(dir, `${name}.kubeconfig`);
      writeFileSync(file, kubeconfigText(server, caPem, token, name));
      return file;
    },
    kubeConfig(token = adminToken) {
      const kc = new KubeConfig();
      kc.loadFromString(kubeconfigText(server, caPem, token, "user"));
      return kc;
    },
    stopApiServer: () => stopChild(api),
    startApiServer,
    stopEtcd: () => stopChild(etcd),
    startEtcd,
    async stop() {
      await stopChild(api);
      await stopChild(etcd);
      rmSync(dir, { recursive: true, force: true });
    },
  };
}
