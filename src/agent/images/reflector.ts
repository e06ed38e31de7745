/**
 * In-cluster image reflection (`shipmate agent --image-automation`): the
 * agent serves Flux's ImageRepository and ImagePolicy objects as Flux's
 * image-reflector-controller does, on shipmate's own engine — the registry
 * client (../../registry: auth, budgets, retries), the policy selection
 * (../../policy, the same rule as `shipmate scan` through
 * config/load.ts's fluxSelectionPolicy) and Flux's status vocabulary.
 *
 * Each ImageRepository is scanned on its interval (or a reconcile request, or
 * a spec change): one tag listing, excluded tags dropped, the tags kept in
 * memory for the policies that use it, and `lastScanResult` written as Flux
 * writes it. Each ImagePolicy then selects from those tags (no request of its
 * own), resolves the digest when `digestReflectionPolicy` asks, and writes
 * `latestRef` only when it changes. Registry clients are shared by every
 * repository with the same credentials, so tokens and connections are reused.
 */

import type { Logger } from "pino";
import { fluxSelectionPolicy } from "../../config/load.ts";
import { describeError, RegistryError } from "../../errors.ts";
import { pool } from "../../kube/apply.ts";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "../../kube/objects.ts";
import { compileGoRegexp, selectLatest } from "../../policy/index.ts";
import { type CredentialProvider, RegistryClient } from "../../registry/index.ts";
import type { EventRecorder } from "../events.ts";
import { refusedFields, unsupportedMessage } from "../fields/support.ts";
import { parseDuration } from "../kustomization.ts";
import { sourceDue } from "../source-objects.ts";
import { SourceError } from "../sources/handler.ts";
import { secretCredentials } from "../sources/oci.ts";
import { type ServedObject, writeOutcome } from "../status.ts";
import { accessAllowed, imageRepository, latestTags, policyMessage, scanMessage } from "./rules.ts";
import {
  IMAGE_API_VERSION,
  IMAGE_POLICY_FIELDS,
  IMAGE_REPOSITORY_FIELDS,
  ImagePolicySpec,
  ImageRepositorySpec,
} from "./spec.ts";

interface Scanned {
  tags: string[];
  canonical: string;
  at: number;
  error?: { reason: string; message: string; stalled: boolean };
}

export interface ReflectorOptions {
  client: KubeClient;
  events: EventRecorder;
  log: Logger;
  /** How soon a failed scan is tried again (capped by the interval). */
  retryMs?: number;
}

export interface ReflectorSummary {
  scans: number;
  registryRequests: number;
}

const notFound = (code: number) => code === 404;

export class ImageReflector {
  private readonly opts: ReflectorOptions;
  private readonly scanned = new Map<string, Scanned>();
  private readonly clients = new Map<string, RegistryClient>();
  /** `canonical:tag` → digest, for digestReflectionPolicy IfNotPresent. */
  private readonly digests = new Map<string, string>();
  private readonly digestAt = new Map<string, number>();

  constructor(opts: ReflectorOptions) {
    this.opts = opts;
  }

  /** Registry requests made so far by every client (the benchmark's figure). */
  registryRequests(): number {
    let n = 0;
    for (const c of this.clients.values()) n += c.stats().total;
    return n;
  }

  private async list(plural: string): Promise<ServedObject[] | undefined> {
    const res = await this.opts.client.raw({ method: "GET", path: `/apis/${IMAGE_API_VERSION}/${plural}` });
    if (notFound(res.code)) return undefined;
    if (res.code !== 200) throw apiError(`list ${plural}`, res.code, res.body);
    return ((res.body as { items?: ServedObject[] }).items ?? []) as ServedObject[];
  }

  /**
   * One pass over every ImageRepository and ImagePolicy; `force` scans every
   * repository now. Repositories with a reconcile request (a Receiver's, a
   * `reconcile image repository`) go first: they are scanned, their policies
   * resolved and `requested` called (the automations run) before the other
   * repositories due are scanned, so a pushed tag is committed without
   * waiting for the rest of a large fleet's scans.
   */
  async reconcileAll(force = false, requested?: () => Promise<void>): Promise<ReflectorSummary> {
    const before = this.registryRequests();
    const repos = await this.list("imagerepositories");
    if (!repos) return { scans: 0, registryRequests: 0 };
    const policies = (await this.list("imagepolicies")) ?? [];
    let scans = 0;
    const seen = new Set<string>(repos.map(keyOf));
    for (const key of this.scanned.keys()) if (!seen.has(key)) this.scanned.delete(key);
    const byKey = new Map(repos.map((r) => [keyOf(r), r]));
    const labels = policies.some((p) => refNamespace(p) !== p.metadata.namespace)
      ? await this.namespaceLabels()
      : new Map<string, Record<string, string>>();
    const asked = (r: ServedObject) => {
      const at = r.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
      return at !== undefined && at !== r.status?.lastHandledReconcileAt;
    };
    const urgent = force ? [] : repos.filter(asked);
    if (urgent.length) {
      await pool(urgent, 8, async (repo) => {
        if (await this.reconcileRepository(repo, false)) scans++;
      });
      const keys = new Set(urgent.map(keyOf));
      for (const policy of policies)
        if (
          keys.has(
            `${refNamespace(policy)}/${(policy.spec?.imageRepositoryRef as { name?: string } | undefined)?.name}`,
          )
        )
          await this.reconcilePolicy(policy, byKey, labels);
      await requested?.();
    }
    const done = new Set(urgent);
    await pool(
      repos.filter((r) => !done.has(r)),
      8,
      async (repo) => {
        if (await this.reconcileRepository(repo, force)) scans++;
      },
    );
    for (const policy of policies) await this.reconcilePolicy(policy, byKey, labels);
    return { scans, registryRequests: this.registryRequests() - before };
  }

  private async namespaceLabels(): Promise<Map<string, Record<string, string>>> {
    const res = await this.opts.client.raw({ method: "GET", path: "/api/v1/namespaces" });
    if (res.code !== 200) throw apiError("list namespaces", res.code, res.body);
    const out = new Map<string, Record<string, string>>();
    for (const ns of (
      res.body as { items?: { metadata: { name: string; labels?: Record<string, string> } }[] }
    ).items ?? [])
      out.set(ns.metadata.name, ns.metadata.labels ?? {});
    return out;
  }

  private async clientFor(
    repo: ServedObject,
    spec: ImageRepositorySpec,
    registry: string,
  ): Promise<RegistryClient> {
    let credentials: CredentialProvider = { get: async () => undefined };
    let secretKey = "";
    if (spec.secretRef) {
      const { namespace } = repo.metadata;
      const res = await this.opts.client.raw({
        method: "GET",
        path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(spec.secretRef.name)}`,
      });
      if (res.code !== 200)
        throw new SourceError(
          "AuthenticationFailed",
          `secret ${namespace}/${spec.secretRef.name}: ${res.code === 404 ? "not found" : `HTTP ${res.code}`}`,
        );
      const data = (res.body as { data?: Record<string, string> }).data ?? {};
      secretKey = canonicalJson(data);
      try {
        credentials = secretCredentials(data, `secret ${namespace}/${spec.secretRef.name}`);
      } catch (err) {
        throw new SourceError("AuthenticationFailed", describeError(err), { stalled: true });
      }
    }
    const timeoutMs = parseDuration(spec.timeout ?? spec.interval);
    const key = canonicalJson([secretKey, timeoutMs, spec.insecure === true, registry]);
    let client = this.clients.get(key);
    if (!client) {
      client = new RegistryClient({
        credentials,
        cacheDir: false,
        timeoutMs: Math.min(timeoutMs, 300_000),
        insecureRegistries: spec.insecure ? [registry] : [],
        userAgent: "shipmate-agent",
      });
      this.clients.set(key, client);
    }
    return client;
  }

  /** Scans one repository when due and records its status; true when it scanned. */
  private async reconcileRepository(repo: ServedObject, force: boolean): Promise<boolean> {
    const key = keyOf(repo);
    const refused = refusedFields(repo.spec, IMAGE_REPOSITORY_FIELDS);
    if (refused.length) {
      const message = unsupportedMessage("ImageRepository", refused, IMAGE_REPOSITORY_FIELDS);
      this.scanned.set(key, {
        tags: [],
        canonical: "",
        at: Date.now(),
        error: failure("UnsupportedField", message, true),
      });
      await this.writeStatus("imagerepositories", repo, {
        reason: "UnsupportedField",
        message,
        stalled: true,
      });
      return false;
    }
    const parsed = ImageRepositorySpec.safeParse(repo.spec ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const message = `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`;
      this.scanned.set(key, {
        tags: [],
        canonical: "",
        at: Date.now(),
        error: failure("InvalidSpec", message, true),
      });
      await this.writeStatus("imagerepositories", repo, { reason: "InvalidSpec", message, stalled: true });
      return false;
    }
    const spec = parsed.data;
    const last = this.scanned.get(key);
    const intervalMs = parseDuration(spec.interval);
    const why = sourceDue({
      now: Date.now(),
      lastFetch: last?.at,
      failed: last?.error !== undefined,
      intervalMs,
      retryMs: this.opts.retryMs ?? 30_000,
      generation: repo.metadata.generation,
      observedGeneration: repo.status?.observedGeneration,
      requestedAt: repo.metadata.annotations?.[REQUESTED_AT_ANNOTATION],
      handledAt: repo.status?.lastHandledReconcileAt as string | undefined,
      suspended: spec.suspend === true,
      force,
    });
    if (!why) return false;
    let result: Scanned;
    try {
      let target: ReturnType<typeof imageRepository>;
      try {
        target = imageRepository(spec.image);
      } catch (err) {
        throw new SourceError("InvalidSpec", `spec.image: ${describeError(err)}`, { stalled: true });
      }
      const exclusions = (spec.exclusionList?.length ? spec.exclusionList : ["^.*\\.sig$"]).map((p) => {
        try {
          return compileGoRegexp(p);
        } catch (err) {
          throw new SourceError("InvalidExclusionList", `spec.exclusionList: ${describeError(err)}`, {
            stalled: true,
          });
        }
      });
      const client = await this.clientFor(repo, spec, target.ref.registry);
      const tags: string[] = [];
      for await (const page of client.tagPages(target.ref))
        for (const tag of page) if (!exclusions.some((r) => r.test(tag))) tags.push(tag);
      result = { tags, canonical: target.canonical, at: Date.now() };
      this.opts.log.debug({ imageRepository: key, why, tags: tags.length }, "scanned");
    } catch (err) {
      const e =
        err instanceof SourceError
          ? failure(err.reason, err.message, err.stalled)
          : failure(
              err instanceof RegistryError ? "ReadOperationFailed" : "ReconciliationFailed",
              describeError(err),
              false,
            );
      // The tags of the last good scan stay in use, as Flux keeps its database.
      result = { tags: last?.tags ?? [], canonical: last?.canonical ?? "", at: Date.now(), error: e };
      this.opts.log.warn({ imageRepository: key }, e.message);
    }
    this.scanned.set(key, result);
    const exclusionList = spec.exclusionList?.length ? spec.exclusionList : ["^.*\\.sig$"];
    await this.writeStatus(
      "imagerepositories",
      repo,
      result.error ?? { message: scanMessage(result.tags.length) },
      result.error
        ? {}
        : {
            canonicalImageName: result.canonical,
            lastScanResult: {
              tagCount: result.tags.length,
              scanTime: new Date(result.at).toISOString().replace(/\.\d+Z$/, "Z"),
              latestTags: latestTags(result.tags),
            },
            observedExclusionList: exclusionList,
          },
    );
    if (result.error)
      await this.opts.events.emit(
        involved("ImageRepository", repo),
        "Warning",
        result.error.reason,
        result.error.message,
      );
    return true;
  }

  private async reconcilePolicy(
    policy: ServedObject,
    repos: Map<string, ServedObject>,
    labels: Map<string, Record<string, string>>,
  ): Promise<void> {
    const refused = refusedFields(policy.spec, IMAGE_POLICY_FIELDS);
    if (refused.length) {
      const message = unsupportedMessage("ImagePolicy", refused, IMAGE_POLICY_FIELDS);
      await this.writeStatus("imagepolicies", policy, { reason: "UnsupportedField", message, stalled: true });
      return;
    }
    const parsed = ImagePolicySpec.safeParse(policy.spec ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      const message = `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`;
      await this.writeStatus("imagepolicies", policy, { reason: "InvalidSpec", message, stalled: true });
      return;
    }
    const spec = parsed.data;
    if (spec.suspend) return;
    const ns = policy.metadata.namespace;
    const refKey = `${refNamespace(policy)}/${spec.imageRepositoryRef.name}`;
    const repo = repos.get(refKey);
    const fail = (reason: string, message: string, stalled = false) =>
      this.writeStatus("imagepolicies", policy, { reason, message, stalled });
    if (!repo) return await fail("DependencyNotReady", `referenced ImageRepository ${refKey} not found`);
    const repoSpec = ImageRepositorySpec.safeParse(repo.spec ?? {});
    if (
      !accessAllowed(
        repo.metadata.namespace,
        ns,
        repoSpec.success ? repoSpec.data.accessFrom : undefined,
        labels.get(ns) ?? {},
      )
    )
      return await fail(
        "AccessDenied",
        `access denied to cross-namespace ImageRepository ${refKey}: its accessFrom does not select namespace ${ns}`,
        true,
      );
    const scanned = this.scanned.get(refKey);
    if (!scanned || (scanned.error && !scanned.tags.length))
      return await fail(
        "DependencyNotReady",
        `ImageRepository ${refKey} is not ready${scanned?.error ? `: ${scanned.error.message}` : ""}`,
      );
    let selection: ReturnType<typeof selectLatest>;
    try {
      const { selection: rules } = fluxSelectionPolicy(
        spec,
        repoSpec.success ? repoSpec.data.exclusionList : undefined,
      );
      selection = selectLatest(scanned.tags, rules);
    } catch (err) {
      return await fail("InvalidPolicy", describeError(err), true);
    }
    if (!selection.ok) return await fail("ReconciliationFailed", selection.message);
    const tag = selection.tag;
    const previous = policy.status?.latestRef as { name?: string; tag?: string; digest?: string } | undefined;
    let digest: string | undefined;
    const reflect = spec.digestReflectionPolicy ?? "Never";
    if (reflect !== "Never") {
      const dkey = `${scanned.canonical}:${tag}`;
      const intervalMs = spec.interval ? parseDuration(spec.interval) : 0;
      const stale =
        reflect === "Always" && Date.now() - (this.digestAt.get(dkey) ?? 0) >= Math.max(intervalMs, 1);
      digest =
        (!stale && this.digests.get(dkey)) ||
        (reflect === "IfNotPresent" && previous?.tag === tag && previous.name === scanned.canonical
          ? previous.digest
          : undefined);
      if (!digest || stale) {
        try {
          if (!repoSpec.success) throw new Error(`ImageRepository ${refKey} has an invalid spec`);
          const target = imageRepository(repoSpec.data.image);
          const client = await this.clientFor(repo, repoSpec.data, target.ref.registry);
          digest = (await client.resolveDigest({ ...target.ref, tag }, { platform: false })).digest;
          this.digests.set(dkey, digest);
          this.digestAt.set(dkey, Date.now());
        } catch (err) {
          return await fail(
            "ReconciliationFailed",
            `digest of ${scanned.canonical}:${tag}: ${describeError(err)}`,
          );
        }
      }
    }
    const latestRef = { name: scanned.canonical, tag, ...(digest ? { digest } : {}) };
    const changed = previous?.tag !== tag || previous?.name !== latestRef.name || previous?.digest !== digest;
    const extra: Record<string, unknown> = { latestRef };
    if (changed && previous?.tag) extra.observedPreviousRef = previous;
    const message = policyMessage(scanned.canonical, tag, changed ? previous?.tag : undefined);
    // The message of a steady policy does not change with each scan: "resolved to", once.
    const steadyMessage = changed ? message : ((readyOf(policy)?.message as string | undefined) ?? message);
    await this.writeStatus("imagepolicies", policy, { message: steadyMessage }, extra);
    if (changed) await this.opts.events.emit(involved("ImagePolicy", policy), "Normal", "Succeeded", message);
  }

  /** Writes Flux's status for an image object: Ready (and Stalled) conditions plus `extra`, only when it differs. */
  private async writeStatus(
    plural: "imagerepositories" | "imagepolicies",
    obj: ServedObject,
    outcome: { message: string; reason?: string; stalled?: boolean },
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const { namespace, name } = obj.metadata;
    const path = `/apis/${IMAGE_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/${plural}/${encodeURIComponent(name)}`;
    await writeOutcome(this.opts.client, path, `${plural} ${namespace}/${name}`, obj, outcome, extra, {
      handlesRequests: true,
    });
  }

  async close(): Promise<void> {
    for (const c of this.clients.values()) await c.close();
    this.clients.clear();
  }
}

const failure = (reason: string, message: string, stalled: boolean) => ({ reason, message, stalled });
const keyOf = (o: ServedObject) => `${o.metadata.namespace}/${o.metadata.name}`;
const refNamespace = (p: ServedObject) =>
  ((p.spec?.imageRepositoryRef as { namespace?: string } | undefined)?.namespace ?? p.metadata.namespace) ||
  "";
const readyOf = (o: ServedObject) => o.status?.conditions?.find((c) => c.type === "Ready");
const involved = (kind: string, o: ServedObject) => ({
  apiVersion: IMAGE_API_VERSION,
  kind,
  name: o.metadata.name,
  namespace: o.metadata.namespace,
  uid: o.metadata.uid,
});
