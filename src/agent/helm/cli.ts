/**
 * The Helm engine: the real `helm` CLI (built from Helm's Go module by
 * scripts/provision/60-helm.sh, shipped in the agent image), run with a
 * kubeconfig written for the call from the agent's own credentials (0600 in
 * a private temporary directory, removed afterwards) and Helm's home
 * directories inside the agent's workdir. Releases live in Helm's own
 * storage (`sh.helm.release.v1.*` Secrets), so `helm list` and `helm
 * history` see what the agent did. Each call runs where and as whom its
 * HelmRelease's target says (a remote cluster's kubeconfig, `--kube-as-user`
 * for a service account). A release stored apart from its namespace runs
 * through `shipmate-helm` instead (Helm's action SDK, the same module), as
 * the CLI has one namespace for both, and so do an install or upgrade
 * through kustomize post-renderers (Helm v4's CLI only takes plugins) and
 * `test`. Every invocation is counted by action.
 *
 * By default every action goes to one long-lived `shipmate-helm serve`
 * process (requests as JSON lines, answered concurrently), as helm-controller
 * keeps Helm in-process: no helm process, client setup and discovery per
 * release. `engine: "cli"` (or SHIPMATE_HELM_ENGINE=cli) runs the helm CLI per
 * action instead, shipmate-helm only where the CLI cannot express it.
 */
import { type ChildProcess, execFile, spawn } from "node:child_process";
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from "node:fs";
import type { RequestOptions } from "node:https";
import { homedir, tmpdir } from "node:os";
import { delimiter, join } from "node:path";
import { createInterface } from "node:readline";
import type { KubeConfig } from "@kubernetes/client-node";
import { stringify } from "yaml";
import { redact, registerSecret } from "../../errors.ts";
import { parseDuration } from "../kustomization.ts";
import { findKustomize } from "../render.ts";
import type { Values } from "./rules.ts";

export class HelmError extends Error {
  override name = "HelmError";
}

/** A program from $<env>, PATH, or $SHIPMATE_CACHE/bin (where provisioning builds it). */
function findTool(name: string, env: string): string {
  const set = process.env[env];
  if (set) return set;
  const cache =
    process.env.SHIPMATE_CACHE ?? join(process.env.XDG_CACHE_HOME ?? join(homedir(), ".cache"), "shipmate");
  for (const d of [...(process.env.PATH ?? "").split(delimiter), join(cache, "bin")]) {
    if (d && existsSync(join(d, name))) return join(d, name);
  }
  throw new HelmError(
    `${name} not found on PATH or in ${join(cache, "bin")}: run scripts/provision/60-helm.sh`,
  );
}

/** `helm` from $SHIPMATE_HELM, PATH, or $SHIPMATE_CACHE/bin. */
export const findHelm = (): string => findTool("helm", "SHIPMATE_HELM");

/**
 * `shipmate-helm` (scripts/provision/helm/cmd/shipmate-helm, built from the
 * same Helm module as `helm`) from $SHIPMATE_HELM_SDK, PATH, or
 * $SHIPMATE_CACHE/bin: the actions on a release whose storage namespace
 * differs from its namespace, which the helm CLI cannot express.
 */
export const findHelmSdk = (): string => findTool("shipmate-helm", "SHIPMATE_HELM_SDK");

/**
 * A kubeconfig for one Helm call, from the credentials client-node would
 * send now (a bearer token, a client certificate, basic auth), whatever
 * produced them (file, in-cluster service account, exec plugin).
 */
export async function kubeconfigFor(kc: KubeConfig): Promise<string> {
  const cluster = kc.getCurrentCluster();
  if (!cluster) throw new HelmError("kubeconfig has no current cluster");
  const opts: RequestOptions = {};
  await kc.applyToHTTPSOptions(opts);
  const b64 = (v: unknown) => Buffer.from(v as string | Buffer).toString("base64");
  const user: Record<string, string> = {};
  const authz = (opts.headers as Record<string, string> | undefined)?.Authorization;
  if (authz?.startsWith("Bearer ")) {
    user.token = authz.slice("Bearer ".length);
    registerSecret(user.token);
  }
  if (opts.cert) user["client-certificate-data"] = b64(opts.cert);
  if (opts.key) user["client-key-data"] = b64(opts.key);
  if (typeof opts.auth === "string" && opts.auth.includes(":")) {
    const i = opts.auth.indexOf(":");
    user.username = opts.auth.slice(0, i);
    user.password = opts.auth.slice(i + 1);
    registerSecret(user.password);
  }
  const clusterEntry: Record<string, unknown> = { server: cluster.server };
  if (opts.ca) clusterEntry["certificate-authority-data"] = b64(opts.ca);
  if (cluster.skipTLSVerify) clusterEntry["insecure-skip-tls-verify"] = true;
  if (cluster.tlsServerName) clusterEntry["tls-server-name"] = cluster.tlsServerName;
  return stringify({
    apiVersion: "v1",
    kind: "Config",
    clusters: [{ name: "cluster", cluster: clusterEntry }],
    users: [{ name: "agent", user }],
    contexts: [{ name: "agent", context: { cluster: "cluster", user: "agent" } }],
    "current-context": "agent",
  });
}

export type HelmAction = "install" | "upgrade" | "rollback" | "uninstall" | "test";

/**
 * The cluster and identity a Helm action runs against: the HelmRelease's
 * target (./../targets.ts), the local cluster or a remote one, as itself or
 * impersonating a service account (helm's `--kube-as-user`, a user only, as
 * client-go sends it for Flux, so the API server adds the account's groups).
 */
export interface ClusterAccess {
  kc: KubeConfig;
  asUser?: string;
}

export interface ReleaseCall {
  release: string;
  /** The release's namespace: its objects and `.Release.Namespace` (Flux's targetNamespace). */
  namespace: string;
  /** Where its records live (Flux's storageNamespace); `namespace` when omitted. */
  storageNamespace?: string;
  /** Where and as whom; the agent's own cluster and rights when omitted. */
  cluster?: ClusterAccess;
  timeout: string;
  wait: boolean;
  waitForJobs?: boolean;
}

export interface UpgradeCall extends ReleaseCall {
  chartDir: string;
  values: Values;
  install: boolean;
  maxHistory: number;
  createNamespace?: boolean;
  skipCrds?: boolean;
  disableHooks?: boolean;
  disableOpenApiValidation?: boolean;
  disableSchemaValidation?: boolean;
  cleanupOnFail?: boolean;
  /** Adopt objects another tool created (helm-controller does unless `disableTakeOwnership`). */
  takeOwnership?: boolean;
  /** Replace objects whose update fails (Flux's `upgrade.force`, Helm's `--force-replace`). */
  forceReplace?: boolean;
  /** Kustomization documents (patches, images, labels…) applied in turn to the rendered manifests. */
  postRenderers?: Record<string, unknown>[];
}

let engines = 0;

export class HelmCli {
  private bin: string | undefined;
  private sdkBin: string | undefined;
  private readonly kc: KubeConfig;
  private readonly home: string;
  /** This engine's temporary directories start with it (a test checks none is left behind). */
  readonly tempPrefix = `shipmate-helm-${process.pid}-${++engines}-`;
  /** Helm actions run, by action: what the no-op rule is measured by. */
  readonly actions: Record<HelmAction, number> = {
    install: 0,
    upgrade: 0,
    rollback: 0,
    uninstall: 0,
    test: 0,
  };

  /** "sdk": one shipmate-helm serve process for every action; "cli": a helm process per action. */
  readonly engine: "sdk" | "cli";
  private worker:
    | { child: ChildProcess; pending: Map<number, (error: string | undefined) => void>; next: number }
    | undefined;

  constructor(kc: KubeConfig, opts: { workdir: string; binary?: string; engine?: "sdk" | "cli" }) {
    this.kc = kc;
    this.bin = opts.binary;
    this.home = join(opts.workdir, "helm-home");
    this.engine = opts.engine ?? (process.env.SHIPMATE_HELM_ENGINE === "cli" ? "cli" : "sdk");
  }

  /** The shipmate-helm serve process's pid while it runs (benchmarks read its memory). */
  get workerPid(): number | undefined {
    return this.worker?.child.pid;
  }

  /** Ends the shipmate-helm serve process (requests in flight are answered first). */
  close(): void {
    this.worker?.child.stdin?.end();
    this.worker = undefined;
  }

  private viaSdk(call: ReleaseCall): boolean {
    return this.engine === "sdk" || split(call);
  }

  /** Resolved on first use: an agent with no HelmRelease never needs helm. */
  get binary(): string {
    this.bin ??= findHelm();
    return this.bin;
  }

  get sdkBinary(): string {
    this.sdkBin ??= findHelmSdk();
    return this.sdkBin;
  }

  get total(): number {
    return Object.values(this.actions).reduce((a, b) => a + b, 0);
  }

  /** `helm upgrade --install` (or a plain upgrade): values travel in a 0600 file, never on the command line. */
  async upgrade(call: UpgradeCall): Promise<void> {
    this.actions[call.install ? "install" : "upgrade"]++;
    if (this.viaSdk(call) || call.postRenderers?.length)
      return await this.sdk(call, {
        action: "upgrade",
        ...(call.postRenderers?.length
          ? { postRenderers: call.postRenderers, kustomize: kustomizeCommand() }
          : {}),
        chartDir: call.chartDir,
        values: call.values,
        install: call.install,
        maxHistory: call.maxHistory,
        waitForJobs: call.wait && call.waitForJobs,
        createNamespace: call.createNamespace,
        skipCrds: call.skipCrds,
        disableHooks: call.disableHooks,
        disableOpenApiValidation: call.disableOpenApiValidation,
        disableSchemaValidation: call.disableSchemaValidation,
        cleanupOnFail: call.cleanupOnFail,
        takeOwnership: call.takeOwnership,
        forceReplace: call.forceReplace,
      });
    await this.run(call, async (dir) => {
      const valuesFile = join(dir, "values.json");
      writeFileSync(valuesFile, JSON.stringify(call.values), { mode: 0o600 });
      const args = ["upgrade", call.release, call.chartDir, "--namespace", call.namespace, "-f", valuesFile];
      args.push("--timeout", goDuration(call.timeout), "--history-max", String(call.maxHistory));
      if (call.install) args.push("--install");
      if (call.wait) args.push("--wait");
      if (call.wait && call.waitForJobs) args.push("--wait-for-jobs");
      if (call.takeOwnership) args.push("--take-ownership");
      if (call.createNamespace) args.push("--create-namespace");
      if (call.skipCrds) args.push("--skip-crds");
      if (call.disableHooks) args.push("--no-hooks");
      if (call.disableOpenApiValidation) args.push("--disable-openapi-validation");
      if (call.disableSchemaValidation) args.push("--skip-schema-validation");
      if (call.cleanupOnFail) args.push("--cleanup-on-fail");
      if (call.forceReplace) args.push("--force-replace");
      return args;
    });
  }

  /**
   * The chart's CustomResourceDefinitions, its dependencies' included
   * (`helm show crds`): what Flux's `crds: Create | CreateReplace` policies
   * apply. No cluster is involved.
   */
  async showCrds(chartDir: string): Promise<string> {
    mkdirSync(this.home, { recursive: true });
    return await new Promise<string>((resolve, reject) => {
      execFile(
        this.binary,
        ["show", "crds", chartDir],
        { maxBuffer: 64 * 1024 * 1024, env: this.env() },
        (err, stdout, stderr) => {
          if (!err) return resolve(stdout);
          const line = `${stderr}`.split("\n").find((l) => l.startsWith("Error:")) ?? err.message;
          reject(new HelmError(redact(line.replace(/^Error:\s*/, ""))));
        },
      );
    });
  }

  private env(): NodeJS.ProcessEnv {
    return {
      PATH: process.env.PATH ?? "/usr/bin:/bin",
      HOME: this.home,
      HELM_CACHE_HOME: join(this.home, "cache"),
      HELM_CONFIG_HOME: join(this.home, "config"),
      HELM_DATA_HOME: join(this.home, "data"),
      HELM_DRIVER: "secret",
    };
  }

  /** `helm rollback` to `version` (0: the previous release). */
  async rollback(
    call: ReleaseCall & {
      version: number;
      cleanupOnFail?: boolean;
      disableHooks?: boolean;
      forceReplace?: boolean;
    },
  ): Promise<void> {
    this.actions.rollback++;
    if (this.viaSdk(call))
      return await this.sdk(call, {
        action: "rollback",
        version: call.version,
        waitForJobs: call.wait && call.waitForJobs,
        cleanupOnFail: call.cleanupOnFail,
        disableHooks: call.disableHooks,
        forceReplace: call.forceReplace,
      });
    await this.run(call, async () => {
      const args = ["rollback", call.release, String(call.version), "--namespace", storageOf(call)];
      args.push("--timeout", goDuration(call.timeout));
      if (call.wait) args.push("--wait");
      if (call.wait && call.waitForJobs) args.push("--wait-for-jobs");
      if (call.cleanupOnFail) args.push("--cleanup-on-fail");
      if (call.disableHooks) args.push("--no-hooks");
      if (call.forceReplace) args.push("--force-replace");
      return args;
    });
  }

  /**
   * Helm's test hooks of the release's latest revision (`helm test`), through
   * shipmate-helm: `filters` as Helm reads them (`name`: only these, `!name`:
   * all but these). The outcome is in the release record's hooks.
   */
  async test(call: ReleaseCall & { filters?: Record<string, string[]> }): Promise<void> {
    this.actions.test++;
    await this.sdk(call, {
      action: "test",
      ...(call.filters && Object.keys(call.filters).length ? { filters: call.filters } : {}),
    });
  }

  async uninstall(
    call: ReleaseCall & { keepHistory?: boolean; disableHooks?: boolean; cascade?: string },
  ): Promise<void> {
    this.actions.uninstall++;
    if (this.viaSdk(call))
      return await this.sdk(call, {
        action: "uninstall",
        keepHistory: call.keepHistory,
        disableHooks: call.disableHooks,
        cascade: call.cascade,
      });
    await this.run(call, async () => {
      const args = [
        "uninstall",
        call.release,
        "--namespace",
        storageOf(call),
        "--timeout",
        goDuration(call.timeout),
      ];
      if (call.wait) args.push("--wait");
      if (call.keepHistory) args.push("--keep-history");
      if (call.disableHooks) args.push("--no-hooks");
      if (call.cascade) args.push("--cascade", call.cascade);
      return args;
    });
  }

  /**
   * One action through shipmate-helm: the same request the CLI flags carry,
   * as JSON on stdin (values included, never on a command line), with the
   * release's two namespaces.
   */
  private async sdk(call: ReleaseCall, request: Record<string, unknown>): Promise<void> {
    if (this.engine === "sdk") return await this.serve(call, request);
    await this.run(call, async (_dir, kubeconfig) => ({
      bin: this.sdkBinary,
      args: [],
      stdin: JSON.stringify(sdkRequest(call, request, kubeconfig)),
    }));
  }

  /** One request to the shipmate-helm serve process, with a kubeconfig written for it. */
  private async serve(call: ReleaseCall, request: Record<string, unknown>): Promise<void> {
    mkdirSync(this.home, { recursive: true });
    const dir = mkdtempSync(join(tmpdir(), this.tempPrefix));
    try {
      const kubeconfig = join(dir, "kubeconfig");
      writeFileSync(kubeconfig, await kubeconfigFor(call.cluster?.kc ?? this.kc), { mode: 0o600 });
      const w = this.ensureWorker();
      const id = ++w.next;
      const full = sdkRequest(call, request, kubeconfig);
      // Helm's own timeout ends the action; this bound only catches a hung request.
      const limit = parseDuration(call.timeout) + 60_000;
      const error = await new Promise<string | undefined>((resolve) => {
        const timer = setTimeout(() => {
          w.pending.delete(id);
          resolve(`shipmate-helm did not answer within ${Math.round(limit / 1000)}s`);
        }, limit);
        w.pending.set(id, (e) => {
          clearTimeout(timer);
          resolve(e);
        });
        w.child.stdin?.write(`${JSON.stringify({ id, request: full })}\n`);
      });
      if (error !== undefined) throw new HelmError(redact(oneLine(error)));
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }

  private ensureWorker(): NonNullable<HelmCli["worker"]> {
    if (this.worker) return this.worker;
    const child = spawn(this.sdkBinary, ["serve"], { env: this.env(), stdio: ["pipe", "pipe", "ignore"] });
    const w = { child, pending: new Map<number, (error: string | undefined) => void>(), next: 0 };
    createInterface({ input: child.stdout as NodeJS.ReadableStream }).on("line", (line) => {
      let answer: { id?: number; error?: string };
      try {
        answer = JSON.parse(line);
      } catch {
        return;
      }
      const done = w.pending.get(answer.id ?? -1);
      if (!done) return;
      w.pending.delete(answer.id ?? -1);
      done(answer.error ? answer.error : undefined);
    });
    const gone = (why: string) => {
      if (this.worker === w) this.worker = undefined;
      for (const done of w.pending.values()) done(why);
      w.pending.clear();
    };
    child.on("error", (err) => gone(`shipmate-helm: ${err.message}`));
    child.on("exit", (code, signal) => gone(`shipmate-helm exited (${signal ?? code})`));
    // An idle worker never keeps the agent's process alive.
    child.unref();
    (child.stdin as unknown as { unref?: () => void } | null)?.unref?.();
    (child.stdout as unknown as { unref?: () => void } | null)?.unref?.();
    this.worker = w;
    return w;
  }

  /** Runs helm with a private kubeconfig; the first `Error:` line (redacted) is the failure. */
  private async run(
    call: ReleaseCall,
    argsFor: (
      dir: string,
      kubeconfig: string,
    ) => Promise<string[] | { bin: string; args: string[]; stdin: string }>,
  ): Promise<string> {
    mkdirSync(this.home, { recursive: true });
    const dir = mkdtempSync(join(tmpdir(), this.tempPrefix));
    try {
      const kubeconfig = join(dir, "kubeconfig");
      writeFileSync(kubeconfig, await kubeconfigFor(call.cluster?.kc ?? this.kc), { mode: 0o600 });
      const built = await argsFor(dir, kubeconfig);
      let bin: string;
      let args: string[];
      let stdin: string | undefined;
      if (Array.isArray(built)) {
        bin = this.binary;
        args = [...built, "--kubeconfig", kubeconfig];
        if (call.cluster?.asUser) args.push("--kube-as-user", call.cluster.asUser);
      } else ({ bin, args, stdin } = built);
      // Helm's own timeout ends the action; this bound only catches a hung process.
      const limit = parseDuration(call.timeout) + 60_000;
      return await new Promise<string>((resolve, reject) => {
        const child = execFile(
          bin,
          args,
          {
            timeout: limit,
            maxBuffer: 32 * 1024 * 1024,
            env: this.env(),
          },
          (err, stdout, stderr) => {
            if (!err) return resolve(stdout);
            const lines = `${stderr}`
              .split("\n")
              .map((l) => l.trim())
              .filter(Boolean);
            const at = lines.findIndex((l) => l.startsWith("Error:"));
            let line = at >= 0 ? (lines[at] as string) : (lines.at(-1) ?? err.message);
            // An error that announces a list (schema violations, one per line) keeps the list, on one line.
            if (at >= 0 && line.endsWith(":")) line = [line, ...lines.slice(at + 1, at + 6)].join(" ");
            reject(new HelmError(redact(line.replace(/^Error:\s*/, ""))));
          },
        );
        child.stdin?.end(stdin ?? "");
      });
    } finally {
      rmSync(dir, { recursive: true, force: true });
    }
  }
}

/** A multi-line error (a list of schema violations) on one line, bounded. */
function oneLine(error: string): string {
  const lines = error
    .split("\n")
    .map((l) => l.trim())
    .filter(Boolean);
  return lines.slice(0, 6).join(" ");
}

const storageOf = (call: ReleaseCall): string => call.storageNamespace ?? call.namespace;

/** A release whose records live apart from its objects: the helm CLI has one namespace for both. */
const split = (call: ReleaseCall): boolean => storageOf(call) !== call.namespace;

/** The kustomize build command post-renderers run (the one Kustomizations render with). */
function kustomizeCommand(): string[] {
  const k = findKustomize();
  return [k.command, ...k.args];
}

/** A Flux duration as Go's time.ParseDuration reads it (Flux's own syntax is a subset). */
function goDuration(d: string): string {
  return `${Math.max(1, Math.round(parseDuration(d) / 1000))}s`;
}

/** The JSON request shipmate-helm takes for `call`, one-shot or served: the action's fields, the cluster and the release's two namespaces. */
function sdkRequest(
  call: ReleaseCall,
  request: Record<string, unknown>,
  kubeconfig: string,
): Record<string, unknown> {
  return {
    ...request,
    kubeconfig,
    ...(call.cluster?.asUser ? { asUser: call.cluster.asUser } : {}),
    release: call.release,
    namespace: call.namespace,
    storageNamespace: storageOf(call),
    timeoutSeconds: Math.max(1, Math.round(parseDuration(call.timeout) / 1000)),
    wait: call.wait,
  };
}
