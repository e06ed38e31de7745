/**
 * Where and as whom a Kustomization's (or HelmRelease's) objects are applied. Every request made
 * for its objects (dry-run, apply, prune, drift reads, health checks) goes
 * through its Target: the agent's own client, the same client impersonating
 * the Kustomization's service account, or a client of the remote cluster
 * named by `spec.kubeConfig.secretRef` (impersonating there when a service
 * account is set too), as Flux's kustomize-controller does. A HelmRelease's
 * Helm actions and release storage go through the same rule (helm-controller's).
 * Status, events, Secrets, valuesFrom and sources are read and written with
 * the agent's own rights.
 */
import { createHash } from "node:crypto";
import { ClusterError } from "../errors.ts";
import { Applier, type ApplyOptions } from "../kube/apply.ts";
import { apiError, KubeClient } from "../kube/client.ts";
import { Discovery } from "../kube/discovery.ts";
import { type KustomizationObject, SecretObject } from "../kube/schema.ts";
import {
  type Impersonation,
  impersonationOf,
  kubeConfigText,
  remoteKubeConfig,
  serviceAccountUser,
} from "./tenancy.ts";

export interface Target {
  client: KubeClient;
  discovery: Discovery;
  applier: Applier;
  /** A remote cluster (kubeConfig): its objects are not the local cluster's. */
  remote: boolean;
  /** "the local cluster as system:serviceaccount:team-a:reconciler", for messages. */
  description: string;
}

/**
 * The target cannot be built: a missing ServiceAccount or kubeconfig Secret,
 * an unusable kubeconfig, an unreachable remote cluster. Nothing is applied.
 */
export class TargetError extends ClusterError {
  override name = "TargetError";
  /** The impersonated service account does not exist (Flux then skips garbage collection on deletion). */
  readonly missingServiceAccount: boolean;
  /** The kubeConfig Secret does not exist (Flux's helm-controller then skips the uninstall on deletion). */
  readonly missingKubeConfigSecret: boolean;
  constructor(message: string, missingServiceAccount = false, missingKubeConfigSecret = false) {
    super(message);
    this.missingServiceAccount = missingServiceAccount;
    this.missingKubeConfigSecret = missingKubeConfigSecret;
  }
}

/** The fields of a spec that choose its target. */
export interface TargetSpec {
  serviceAccountName?: unknown;
  kubeConfig?: { secretRef?: { name?: unknown; key?: unknown }; configMapRef?: unknown };
}

export interface TargetOptions {
  /** The agent's own client, discovery and applier (the local cluster, its own rights). */
  client: KubeClient;
  discovery: Discovery;
  applier: Applier;
  applyOptions: ApplyOptions;
  /** `--default-service-account`. */
  defaultServiceAccount?: string;
  /** The agent's root Kustomization: runs with the agent's rights unless it names a service account. */
  root: { name: string; namespace: string };
  /** How long an unreachable remote API server is retried within one request. */
  remoteRetryMs?: number;
  /** Remote clusters unused for this long are disconnected. */
  idleMs?: number;
}

interface Remote {
  client: KubeClient;
  discovery: Discovery;
  lastUsed: number;
}

/** Flux's remote client timeout (fluxcd/pkg/runtime/client KubeConfigOptions). */
const REMOTE_TIMEOUT_MS = 30_000;

export class TargetResolver {
  private readonly opts: TargetOptions;
  /** Remote clusters by the digest of their kubeconfig: a rotated credential opens a new client. */
  private readonly remotes = new Map<string, Remote>();

  constructor(opts: TargetOptions) {
    this.opts = opts;
  }

  /** The agent's own target: the local cluster with the agent's rights. */
  get local(): Target {
    const { client, discovery, applier } = this.opts;
    return { client, discovery, applier, remote: false, description: "the local cluster" };
  }

  async resolve(ks: KustomizationObject): Promise<Target> {
    const namespace = ks.metadata.namespace ?? "";
    const root = namespace === this.opts.root.namespace && ks.metadata.name === this.opts.root.name;
    return await this.resolveSpec(namespace, (ks.spec ?? {}) as TargetSpec, { root });
  }

  /**
   * The target of any object that names `serviceAccountName` and
   * `kubeConfig` (a Kustomization, a HelmRelease): one rule for both, as
   * Flux's kustomize- and helm-controller share it. `root` exempts the
   * agent's own sync from `--default-service-account`; a HelmRelease is
   * never the root.
   */
  async resolveSpec(namespace: string, spec: TargetSpec, opts: { root: boolean }): Promise<Target> {
    const sa = impersonationOf(spec, namespace, {
      ...(this.opts.defaultServiceAccount ? { defaultServiceAccount: this.opts.defaultServiceAccount } : {}),
      root: opts.root,
    });
    let base = this.local;
    if (spec.kubeConfig) base = await this.remote(namespace, spec.kubeConfig);
    if (!sa) return base;
    await this.checkServiceAccount(base, sa);
    const client = base.client.as({ user: serviceAccountUser(sa.namespace, sa.name) });
    return {
      client,
      discovery: base.discovery,
      applier: new Applier(client, base.discovery, this.opts.applyOptions),
      remote: base.remote,
      description: `${base.description} as ${client.identity?.user}`,
    };
  }

  /**
   * The service account must exist where it is impersonated. The API server
   * would impersonate a name that does not exist, and apply whatever RBAC
   * still grants that name; a Kustomization whose account is missing is
   * never Ready instead. On a remote cluster whose credentials may not read
   * service accounts, the API server's own answers decide.
   */
  private async checkServiceAccount(base: Target, sa: Impersonation): Promise<void> {
    const path = `/api/v1/namespaces/${encodeURIComponent(sa.namespace)}/serviceaccounts/${encodeURIComponent(sa.name)}`;
    const res = await base.client.raw({ method: "GET", path });
    if (res.code === 200) return;
    if (res.code === 404)
      throw new TargetError(
        `ServiceAccount '${sa.namespace}/${sa.name}' (${sa.from}) not found on ${base.description}: its objects are applied only as that account`,
        true,
      );
    if (res.code === 403 && base.remote) return;
    throw apiError(`ServiceAccount '${sa.namespace}/${sa.name}' (${sa.from})`, res.code, res.body);
  }

  private async remote(
    namespace: string,
    ref: { secretRef?: { name?: unknown; key?: unknown }; configMapRef?: unknown },
  ): Promise<Target> {
    const name = typeof ref.secretRef?.name === "string" ? ref.secretRef.name : "";
    if (!name)
      // configMapRef (workload identity) is refused by the field table before this point.
      throw new TargetError("spec.kubeConfig.secretRef.name is required");
    const secret = `${namespace}/${name}`;
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`,
    });
    if (res.code === 404)
      throw new TargetError(`unable to read KubeConfig secret '${secret}': not found`, false, true);
    if (res.code !== 200) throw apiError(`KubeConfig secret '${secret}'`, res.code, res.body);
    const data = SecretObject.parse(res.body).data;
    const key = typeof ref.secretRef?.key === "string" ? ref.secretRef.key : undefined;
    const text = kubeConfigText(data, key, secret);
    const digest = createHash("sha256").update(text).digest("hex");
    const now = Date.now();
    let remote = this.remotes.get(digest);
    if (!remote) {
      const kc = remoteKubeConfig(text, `Secret '${secret}'`);
      const client = new KubeClient(kc, {
        retryForMs: this.opts.remoteRetryMs ?? 10_000,
        requestTimeoutMs: REMOTE_TIMEOUT_MS,
        counts: this.opts.client.counts,
      });
      remote = { client, discovery: new Discovery(client), lastUsed: now };
      this.remotes.set(digest, remote);
    }
    remote.lastUsed = now;
    this.sweep(now);
    const description = `cluster ${remote.client.server.host} (kubeConfig secret '${secret}')`;
    // One cheap request proves the cluster answers and the credentials work before anything is planned.
    try {
      await remote.discovery.resolve("v1", "Namespace");
    } catch (err) {
      throw new TargetError(`${description}: ${(err as Error).message}`);
    }
    return {
      client: remote.client,
      discovery: remote.discovery,
      applier: new Applier(remote.client, remote.discovery, this.opts.applyOptions),
      remote: true,
      description,
    };
  }

  private sweep(now: number): void {
    const idle = this.opts.idleMs ?? 60 * 60_000;
    for (const [k, r] of this.remotes) {
      if (now - r.lastUsed <= idle) continue;
      r.client.close();
      this.remotes.delete(k);
    }
  }

  /** Disconnects every remote cluster. */
  close(): void {
    for (const r of this.remotes.values()) r.client.close();
    this.remotes.clear();
  }
}
