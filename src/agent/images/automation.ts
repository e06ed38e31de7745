/**
 * In-cluster image update automation (`shipmate agent --image-automation`):
 * the agent serves Flux's ImageUpdateAutomation objects as Flux's
 * image-automation-controller does, on shipmate's one update engine
 * (src/run/update.ts → src/update → src/git/deliver.ts): the setters are the
 * `status.latestRef` of the namespace's ImagePolicies (chosen by
 * `policySelector`), handed to the engine as explicit selections; the
 * repository is the `sourceRef` GitRepository's URL with its Secret's
 * credentials; the commit carries the automation's author, message template
 * (./automation-rules.ts) and signature (an OpenPGP or SSH key of the run
 * alone, ./signing.ts);
 * the push is the engine's race-safe one, to the push branch, refspec and
 * options asked for. Status is Flux's: `lastPushCommit`, `lastPushTime`,
 * `observedPolicies`, `lastAutomationRunTime`, Ready/Stalled.
 *
 * A run happens on the interval, on a reconcile request, on a spec change,
 * and as soon as the policies it applies select something new.
 */

import type { Logger } from "pino";
import type { FileUpdate } from "../../changes.ts";
import { ConfigError, describeError, GitError, redact } from "../../errors.ts";
import { createForge, type Forge, forgeOptions } from "../../forge/index.ts";
import { apiError, type KubeClient } from "../../kube/client.ts";
import { canonicalJson, REQUESTED_AT_ANNOTATION } from "../../kube/objects.ts";
import { SOURCE_API_VERSION } from "../../kube/schema.ts";
import { runUpdate, type UpdateRunResult } from "../../run/update.ts";
import type { EventRecorder } from "../events.ts";
import { refusedFields, unsupportedMessage } from "../fields/support.ts";
import { parseDuration } from "../kustomization.ts";
import { urlWithSecret } from "../sources/git.ts";
import { type Outcome, ReconcileFailure, type ServedObject, writeOutcome } from "../status.ts";
import {
  branchesOf,
  checkTemplate,
  cloneStartOf,
  type PolicyObject,
  pushOptionEnv,
  selectorProblem,
  settersOf,
  withGitConfig,
} from "./automation-rules.ts";
import { prepareSigner, SigningKeyError } from "./signing.ts";
import type { SigningKeyType } from "./signing-rules.ts";
import { IMAGE_API_VERSION, IMAGE_UPDATE_AUTOMATION_FIELDS, ImageUpdateAutomationSpec } from "./spec.ts";

export interface AutomationOptions {
  client: KubeClient;
  events: EventRecorder;
  log: Logger;
  /** How soon a failed run is tried again (capped by the interval). */
  retryMs?: number;
  /** Flux's --no-cross-namespace-refs: a sourceRef into another namespace is refused. */
  noCrossNamespaceRefs?: boolean;
  /**
   * The forge hosting the fleet repository (`--forge`), for pull requests of
   * a push branch; default: told from the GitRepository URL's host.
   */
  forge?: string;
  /** Where signers' keys are written for a run (./signing.ts signingRoot); default: the system's temp folder. */
  signingDir?: string;
}

const PLURAL = "imageupdateautomations";
const now = () => new Date().toISOString().replace(/\.\d+Z$/, "Z");

export class ImageAutomation {
  private readonly opts: AutomationOptions;
  /** When each automation last ran in this process, and whether that run failed. */
  private readonly lastRun = new Map<string, { at: number; failed: boolean }>();
  /** Per automation: a push branch whose request failed after the push, and the changes it proposes. */
  private readonly pendingRequests = new Map<string, { branch: string; files: readonly FileUpdate[] }>();
  /** Runs so far, per `namespace/name` (the benchmark's and tests' figure). */
  readonly runs = new Map<string, number>();

  constructor(opts: AutomationOptions) {
    this.opts = opts;
  }

  private async list(path: string): Promise<{ items: unknown[] } | undefined> {
    const res = await this.opts.client.raw({ method: "GET", path });
    if (res.code === 404) return undefined;
    if (res.code !== 200) throw apiError(`list ${path}`, res.code, res.body);
    return res.body as { items: unknown[] };
  }

  /** One pass over every ImageUpdateAutomation; `force` runs each now. */
  async reconcileAll(force = false): Promise<void> {
    const autos = await this.list(`/apis/${IMAGE_API_VERSION}/${PLURAL}`);
    if (!autos?.items.length) return;
    const policies = ((await this.list(`/apis/${IMAGE_API_VERSION}/imagepolicies`))?.items ??
      []) as PolicyObject[];
    const seen = new Set<string>();
    for (const auto of autos.items as ServedObject[]) {
      const key = `${auto.metadata.namespace}/${auto.metadata.name}`;
      seen.add(key);
      try {
        await this.reconcileOne(auto, policies, force);
      } catch (err) {
        this.opts.log.error({ imageUpdateAutomation: key }, describeError(err));
      }
    }
    for (const key of this.lastRun.keys()) if (!seen.has(key)) this.lastRun.delete(key);
    for (const key of this.pendingRequests.keys()) if (!seen.has(key)) this.pendingRequests.delete(key);
  }

  private async reconcileOne(auto: ServedObject, policies: PolicyObject[], force: boolean): Promise<void> {
    const key = `${auto.metadata.namespace}/${auto.metadata.name}`;
    const refused = refusedFields(auto.spec, IMAGE_UPDATE_AUTOMATION_FIELDS);
    if (refused.length)
      return await this.writeStatus(auto, {
        reason: "UnsupportedField",
        message: unsupportedMessage("ImageUpdateAutomation", refused, IMAGE_UPDATE_AUTOMATION_FIELDS),
        stalled: true,
      });
    const parsed = ImageUpdateAutomationSpec.safeParse(auto.spec ?? {});
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      return await this.writeStatus(auto, {
        reason: "InvalidSpec",
        message: `invalid spec: ${issue?.path.join(".") || "spec"}: ${issue?.message}`,
        stalled: true,
      });
    }
    const spec = parsed.data;
    if (spec.suspend) return;
    const template = checkTemplate(spec.git.commit.messageTemplate);
    if (!template.ok)
      return await this.writeStatus(auto, {
        reason: template.reason,
        message: template.message,
        stalled: true,
      });
    const badSelector = selectorProblem(spec.policySelector);
    if (badSelector)
      return await this.writeStatus(auto, {
        reason: "InvalidPolicySelector",
        message: badSelector,
        stalled: true,
      });
    const { sets, observed } = settersOf(policies, auto.metadata.namespace, spec.policySelector);

    const last = this.lastRun.get(key);
    const intervalMs = parseDuration(spec.interval);
    const requestedAt = auto.metadata.annotations?.[REQUESTED_AT_ANNOTATION];
    const due =
      force ||
      last === undefined ||
      auto.metadata.generation !== auto.status?.observedGeneration ||
      (requestedAt !== undefined && requestedAt !== auto.status?.lastHandledReconcileAt) ||
      canonicalJson(observed) !== canonicalJson(auto.status?.observedPolicies ?? {}) ||
      Date.now() - last.at >= (last.failed ? Math.min(this.opts.retryMs ?? 30_000, intervalMs) : intervalMs);
    if (!due) return;

    this.runs.set(key, (this.runs.get(key) ?? 0) + 1);
    const started = Date.now();
    const extra: Record<string, unknown> = { observedPolicies: observed };
    let outcome: Outcome;
    try {
      const pending = this.pendingRequests.get(key);
      const pushBranch = spec.git.push?.branch;
      const result = await this.run(auto, spec, sets, template.handlebars, {
        ...(pending && pending.branch === pushBranch ? { pendingRequest: pending.files } : {}),
      });
      extra.lastAutomationRunTime = now();
      const push = result.push;
      const errors = result.problems.filter((p) => p.severity === "error");
      const request = result.pushRequest;
      const failed = result.pushRequestError;
      // A request that failed after its push is asked for again on the next runs until it succeeds.
      if (failed && pushBranch) this.pendingRequests.set(key, { branch: pushBranch, files: failed.files });
      else if (request || push?.pushed) this.pendingRequests.delete(key);
      const pendingLine = failed
        ? `; pull request pending (retried on the next run): ${redact(failed.message.split("\n")[0] ?? "")}`
        : "";
      if (push?.pushed && push.commit) {
        extra.lastPushCommit = push.commit;
        extra.lastPushTime = now();
        const message = `pushed commit '${push.commit.slice(0, 7)}' to ${push.branch ? `branch '${push.branch}'` : "the refspec"}${
          request ? `; pull request ${request.pullRequest.url} ${request.action}` : ""
        }${pendingLine}`;
        outcome = failed ? { reason: "PullRequestFailed", message } : { message };
        await this.opts.events.emit(
          involved(auto),
          failed ? "Warning" : "Normal",
          failed ? "PullRequestFailed" : "Succeeded",
          `${message}\n${push.files
            .flatMap((f) => f.changes.map((c) => `${f.path}: ${c.old} -> ${c.new}`))
            .join("\n")}`,
        );
      } else if (failed) {
        outcome = { reason: "PullRequestFailed", message: `branch '${pushBranch}' is pushed${pendingLine}` };
        await this.opts.events.emit(involved(auto), "Warning", "PullRequestFailed", outcome.message);
      } else if (request) {
        outcome = {
          message: `branch '${pushBranch}' is pushed; pull request ${request.pullRequest.url} ${request.action}`,
        };
        await this.opts.events.emit(involved(auto), "Normal", "Succeeded", outcome.message);
      } else if (errors[0]) {
        const p = errors[0];
        outcome = { reason: "UpdateFailed", message: `${p.file}${p.line ? `:${p.line}` : ""}: ${p.message}` };
      } else outcome = { message: "repository up-to-date" };
    } catch (err) {
      const f =
        err instanceof ReconcileFailure
          ? err
          : err instanceof ConfigError
            ? new ReconcileFailure("InvalidMessageTemplate", describeError(err), true)
            : err instanceof GitError
              ? new ReconcileFailure("GitOperationFailed", describeError(err))
              : new ReconcileFailure("UpdateFailed", describeError(err));
      outcome = { reason: f.reason, message: redact(f.message.split("\n")[0] ?? ""), stalled: f.stalled };
      this.opts.log.warn({ imageUpdateAutomation: key }, outcome.message);
      await this.opts.events.emit(involved(auto), "Warning", f.reason, outcome.message);
    }
    this.lastRun.set(key, { at: Date.now(), failed: outcome.reason !== undefined });
    this.opts.log.debug({ imageUpdateAutomation: key, ms: Date.now() - started }, outcome.message);
    await this.writeStatus(auto, outcome, extra);
  }

  /** One automation run through the update engine. */
  private async run(
    auto: ServedObject,
    spec: ImageUpdateAutomationSpec,
    sets: ReturnType<typeof settersOf>["sets"],
    template: string | undefined,
    retry: { pendingRequest?: readonly FileUpdate[] },
  ): Promise<UpdateRunResult> {
    const ns = auto.metadata.namespace;
    const srcNs = spec.sourceRef.namespace ?? ns;
    const srcName = `${srcNs}/${spec.sourceRef.name}`;
    if (srcNs !== ns && this.opts.noCrossNamespaceRefs)
      throw new ReconcileFailure(
        "AccessDenied",
        `cross-namespace references are not allowed (--no-cross-namespace-refs): GitRepository ${srcName}`,
        true,
      );
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/apis/${SOURCE_API_VERSION}/namespaces/${encodeURIComponent(srcNs)}/gitrepositories/${encodeURIComponent(spec.sourceRef.name)}`,
    });
    if (res.code === 404)
      throw new ReconcileFailure(
        "InvalidSourceConfiguration",
        `referenced GitRepository ${srcName} not found`,
      );
    if (res.code !== 200) throw apiError(`GitRepository ${srcName}`, res.code, res.body);
    const source = res.body as {
      spec?: { url?: string; secretRef?: { name?: string }; ref?: Record<string, string> };
    };
    if (!source.spec?.url)
      throw new ReconcileFailure("InvalidSourceConfiguration", `GitRepository ${srcName} has no spec.url`);
    const branches = branchesOf(spec, source.spec.ref);
    if ("error" in branches) throw new ReconcileFailure("InvalidSourceConfiguration", branches.error, true);
    let url = source.spec.url;
    let forgeToken: string | undefined;
    if (source.spec.secretRef?.name) {
      const data = await this.secretData(srcNs, source.spec.secretRef.name);
      if (data.password) forgeToken = Buffer.from(data.password, "base64").toString();
      try {
        url = urlWithSecret(url, data, `${srcNs}/${source.spec.secretRef.name}`);
      } catch (err) {
        throw new ReconcileFailure("InvalidSourceConfiguration", describeError(err), true);
      }
    }
    let env: Record<string, string> = {
      PATH: process.env.PATH ?? "",
      HOME: process.env.HOME ?? "/nonexistent",
      ...(process.env.TMPDIR ? { TMPDIR: process.env.TMPDIR } : {}),
      ...pushOptionEnv(spec.git.push?.options),
    };
    const signing = spec.git.commit.signingKey
      ? await this.signer(ns, spec.git.commit.signingKey)
      : undefined;
    try {
      if (signing) {
        env = { ...env, ...signing.env };
        for (const [k, v] of signing.config) env = withGitConfig(env, k, v);
      }
      const author = spec.git.commit.author;
      const identity = { name: author.name || author.email, email: author.email };
      const path = spec.update?.path?.replace(/^\.\/?/, "") || undefined;
      const start = cloneStartOf(branches.checkout);
      return await runUpdate({
        repo: url,
        // A tag, reference or commit checkout starts the clone there; the push names its branch.
        ...(start ? { checkout: start } : { branch: branches.base ?? "master" }),
        // Always given: a repository's own ImageUpdateAutomation file must not narrow the in-cluster one's path.
        path: path ?? ".",
        policies: { kind: "repo", ...(path ? { path } : {}) },
        sets,
        delivery: {
          kind: "push",
          branch: branches.push ?? branches.base ?? "master",
          ...(branches.refspec ? { refspec: branches.refspec } : {}),
        },
        dryRun: false,
        env,
        tokenEnv: "SHIPMATE_AUTOMATION_NO_TOKEN",
        author: identity,
        committer: identity,
        sign: signing !== undefined,
        ...(template !== undefined
          ? {
              messageTemplate: template,
              messageTemplateSource: `ImageUpdateAutomation ${ns}/${auto.metadata.name} spec.git.commit.messageTemplate`,
            }
          : {}),
        automation: `${ns}/${auto.metadata.name}`,
        messageValues: spec.git.commit.messageTemplateValues ?? {},
        // A push branch shipmate.yaml wants proposed: the request is opened with the Secret's password as the forge token.
        forge: () => this.forgeFor(source.spec!.url!, forgeToken, srcName),
        // A failed request leaves the push standing, and is asked for again by the next run.
        requestFailure: "report",
        ...retry,
      });
    } finally {
      signing?.dispose();
    }
  }

  /** The forge of the GitRepository's URL, its token the Secret's password; a missing piece fails the run by name. */
  private forgeFor(url: string, token: string | undefined, source: string): Forge {
    if (!token)
      throw new ReconcileFailure(
        "InvalidSourceConfiguration",
        `GitRepository ${source}: shipmate.yaml asks for a pull request of the push branch, but its secretRef has no "password" (the forge token)`,
      );
    try {
      return createForge(
        forgeOptions(
          { ...(this.opts.forge ? { forge: this.opts.forge } : {}), remote: url, tokenEnv: "FORGE_TOKEN" },
          { FORGE_TOKEN: token },
        ),
      );
    } catch (err) {
      throw new ReconcileFailure(
        "InvalidSourceConfiguration",
        `GitRepository ${source}: ${describeError(err)}`,
        true,
      );
    }
  }

  private async secretData(namespace: string, name: string): Promise<Record<string, string>> {
    const res = await this.opts.client.raw({
      method: "GET",
      path: `/api/v1/namespaces/${encodeURIComponent(namespace)}/secrets/${encodeURIComponent(name)}`,
    });
    if (res.code === 404)
      throw new ReconcileFailure("InvalidSourceConfiguration", `secret ${namespace}/${name}: not found`);
    if (res.code !== 200) throw apiError(`secret ${namespace}/${name}`, res.code, res.body);
    return (res.body as { data?: Record<string, string> }).data ?? {};
  }

  /** The run's signer of `git.commit.signingKey` (./signing.ts); a Secret without a usable key fails the run naming it. */
  private async signer(namespace: string, key: { secretRef: { name: string }; type?: SigningKeyType }) {
    const name = key.secretRef.name;
    const data = await this.secretData(namespace, name);
    try {
      return await prepareSigner(
        key.type ?? "gpg",
        data,
        `signing key secret ${namespace}/${name}`,
        this.opts.signingDir,
      );
    } catch (err) {
      if (err instanceof SigningKeyError) throw new ReconcileFailure("InvalidSigningKey", err.message, true);
      throw err;
    }
  }

  /** Writes Flux's status: Ready (and Stalled) plus `extra`, only when something differs. */
  private async writeStatus(
    obj: ServedObject,
    outcome: Outcome,
    extra: Record<string, unknown> = {},
  ): Promise<void> {
    const { namespace, name } = obj.metadata;
    const path = `/apis/${IMAGE_API_VERSION}/namespaces/${encodeURIComponent(namespace)}/${PLURAL}/${encodeURIComponent(name)}`;
    const what = `ImageUpdateAutomation ${namespace}/${name}`;
    await writeOutcome(this.opts.client, path, what, obj, outcome, extra, {
      handlesRequests: true,
    });
  }
}

const involved = (o: ServedObject) => ({
  apiVersion: IMAGE_API_VERSION,
  kind: "ImageUpdateAutomation",
  name: o.metadata.name,
  namespace: o.metadata.namespace,
  uid: o.metadata.uid,
});
