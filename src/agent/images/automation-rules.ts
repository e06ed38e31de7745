/**
 * The pure rules of an in-cluster ImageUpdateAutomation, as Flux's
 * image-automation-controller states them: which ImagePolicies it applies
 * (`policySelector`), the setters they give (`status.latestRef`) and the
 * `observedPolicies` it records, the branches it checks out and pushes to,
 * the push options and refspec it sends, and whether its `messageTemplate`
 * is one shipmate renders as Flux would. Tested with tables
 * (test/agent/images-automation-rules.test.ts).
 */
import type { PushRefspec } from "../../git/deliver.ts";
import { goTemplateToHandlebars } from "../../git/message.ts";
import type { CloneStart } from "../../git/workspace.ts";
import { parseSemverRange } from "../../policy/semver.ts";
import type { SetFlag } from "../../update/selections.ts";
import { type CheckoutRef, pickSemverTag } from "../git-source.ts";
import { checkoutRefOf } from "../sources/git.ts";
import type { ImageUpdateAutomationSpec, LabelSelector } from "./spec.ts";

export interface LatestRef {
  name: string;
  tag: string;
  digest?: string;
}

export interface PolicyObject {
  metadata: { name: string; namespace: string; labels?: Record<string, string> };
  status?: { latestRef?: Partial<LatestRef> };
}

/** Kubernetes label-selector semantics; an absent selector selects everything. */
export function selectorMatches(
  selector: LabelSelector | undefined,
  labels: Record<string, string>,
): boolean {
  if (!selector) return true;
  for (const [k, v] of Object.entries(selector.matchLabels ?? {})) if (labels[k] !== v) return false;
  for (const e of selector.matchExpressions ?? []) {
    const has = Object.hasOwn(labels, e.key);
    const inValues = has && (e.values ?? []).includes(labels[e.key] ?? "");
    if (e.operator === "In" && !inValues) return false;
    if (e.operator === "NotIn" && inValues) return false;
    if (e.operator === "Exists" && !has) return false;
    if (e.operator === "DoesNotExist" && has) return false;
  }
  return true;
}

/** A selector Kubernetes would refuse (In/NotIn without values, Exists/DoesNotExist with some). */
export function selectorProblem(selector: LabelSelector | undefined): string | undefined {
  for (const e of selector?.matchExpressions ?? []) {
    const n = e.values?.length ?? 0;
    if ((e.operator === "In" || e.operator === "NotIn") && n === 0)
      return `policySelector: operator ${e.operator} on "${e.key}" needs values`;
    if ((e.operator === "Exists" || e.operator === "DoesNotExist") && n > 0)
      return `policySelector: operator ${e.operator} on "${e.key}" takes no values`;
  }
  return undefined;
}

/**
 * The setters of an automation: every selected policy of its namespace that
 * has a `latestRef`, as `--set namespace:name=image:tag[@digest]`, and the
 * `observedPolicies` status Flux records (policy name → latestRef).
 */
export function settersOf(
  policies: readonly PolicyObject[],
  namespace: string,
  selector: LabelSelector | undefined,
): { sets: SetFlag[]; observed: Record<string, LatestRef> } {
  const sets: SetFlag[] = [];
  const observed: Record<string, LatestRef> = {};
  const chosen = policies
    .filter((p) => p.metadata.namespace === namespace && selectorMatches(selector, p.metadata.labels ?? {}))
    .sort((a, b) => a.metadata.name.localeCompare(b.metadata.name));
  for (const p of chosen) {
    const ref = p.status?.latestRef;
    if (!ref?.name || !ref.tag) continue;
    const latest: LatestRef = { name: ref.name, tag: ref.tag, ...(ref.digest ? { digest: ref.digest } : {}) };
    observed[p.metadata.name] = latest;
    sets.push({
      policy: `${namespace}:${p.metadata.name}`,
      selection: { image: ref.name, tag: ref.tag, ...(ref.digest ? { digest: ref.digest } : {}) },
    });
  }
  return { sets, observed };
}

/** A GitRepository's or an automation's `ref`, as Flux writes it. */
export type RefSpec = { branch?: string; tag?: string; semver?: string; name?: string; commit?: string };

/** Where an automation checks out and pushes (see branchesOf). */
export interface Branches {
  /** The checkout: a branch, or a tag, semver range, reference name or commit (source-controller's precedence). */
  checkout: CheckoutRef;
  /** The checkout's branch, when it has one (a branch, or a commit within a branch): the base of requests. */
  base?: string;
  push?: string;
  refspec?: PushRefspec;
}

/**
 * Where the automation checks out and pushes, as image-automation-controller
 * documents it: the checkout is `git.checkout.ref` when given (it takes the
 * GitRepository's `ref` place), else the GitRepository's `ref`, else branch
 * `master`; a ref naming several kinds is read with source-controller's
 * precedence (commit, name, semver, tag, branch). The push branch is
 * `git.push.branch`, else the checkout's branch, unless only a refspec is
 * given (then only the refspec is pushed). A checkout that is not a branch
 * (a tag, semver range, reference name or a commit alone) yields no push
 * branch: `git.push.branch` must name one, or the automation fails, as
 * Flux's does.
 */
export function branchesOf(
  spec: ImageUpdateAutomationSpec,
  sourceRef: RefSpec | undefined,
): Branches | { error: string } {
  const own = spec.git.checkout?.ref;
  const checkout = checkoutRefOf(own ?? sourceRef);
  const where = own ? "spec.git.checkout.ref" : "the GitRepository's spec.ref";
  const base = "branch" in checkout ? checkout.branch : "commit" in checkout ? checkout.branch : undefined;
  if ("semver" in checkout) {
    try {
      parseSemverRange(checkout.semver);
    } catch (err) {
      return { error: `${where}.semver "${checkout.semver}": ${(err as Error).message}` };
    }
  }
  if ("commit" in checkout && !/^([0-9a-f]{40}|[0-9a-f]{64})$/.test(checkout.commit))
    return { error: `${where}.commit "${checkout.commit}" is not a full commit SHA` };
  if ("name" in checkout && !/^refs\/[^\s:^~?*[\\]+$/.test(checkout.name))
    return { error: `${where}.name "${checkout.name}" is not a full reference name (refs/…)` };
  const text = spec.git.push?.refspec || undefined;
  const push = spec.git.push?.branch || (text ? undefined : base);
  if (!base && !spec.git.push?.branch)
    return {
      error: `${where} checks out ${describeRef(checkout)}, not a branch: set spec.git.push.branch to the branch the automation pushes to`,
    };
  if (!text) return { checkout, ...(base ? { base } : {}), ...(push ? { push } : {}) };
  const m = /^([^:+\s]+):([^:\s]+)$/.exec(text);
  const src = m?.[1] ?? "";
  const committed = push ?? base ?? "";
  if (!m || !["HEAD", committed, `refs/heads/${committed}`].includes(src))
    return {
      error: `spec.git.push.refspec "${text}": only <src>:<dst> with src HEAD or the branch committed to (${committed}) is supported; deletions and forced refspecs are refused, as Flux does`,
    };
  const dst = (m[2] ?? "").startsWith("refs/") ? (m[2] ?? "") : `refs/heads/${m[2]}`;
  return { checkout, ...(base ? { base } : {}), ...(push ? { push } : {}), refspec: { dst, only: !push } };
}

function describeRef(ref: CheckoutRef): string {
  if ("commit" in ref) return `commit ${ref.commit}`;
  if ("name" in ref) return `reference ${ref.name}`;
  if ("semver" in ref) return `the newest tag in semver range "${ref.semver}"`;
  if ("tag" in ref) return `tag ${ref.tag}`;
  return `branch ${ref.branch}`;
}

/** How the run's clone starts for a checkout that is not a branch's tip; undefined for a branch. */
export function cloneStartOf(ref: CheckoutRef): CloneStart | undefined {
  if ("commit" in ref)
    return ref.branch ? { commit: ref.commit, branch: ref.branch } : { commit: ref.commit };
  if ("name" in ref) return { ref: ref.name };
  if ("semver" in ref)
    return { pick: (tags) => pickSemverTag(tags, ref.semver), what: `semver range "${ref.semver}"` };
  if ("tag" in ref) return { ref: `refs/tags/${ref.tag}` };
  return undefined;
}

/**
 * `git.push.options` as git configuration (`push.pushOption`, one value per
 * option, `key=value` or `key` when the value is empty), handed to git
 * through GIT_CONFIG_* variables: nothing on the command line.
 */
export function pushOptionEnv(options: Record<string, string> | undefined): Record<string, string> {
  const entries = Object.entries(options ?? {}).sort(([a], [b]) => a.localeCompare(b));
  const env: Record<string, string> = {};
  entries.forEach(([k, v], i) => {
    env[`GIT_CONFIG_KEY_${i}`] = "push.pushOption";
    env[`GIT_CONFIG_VALUE_${i}`] = v ? `${k}=${v}` : k;
  });
  if (entries.length) env.GIT_CONFIG_COUNT = String(entries.length);
  return env;
}

/** Adds one `key=value` git setting to GIT_CONFIG_* variables built by pushOptionEnv. */
export function withGitConfig(
  env: Record<string, string>,
  key: string,
  value: string,
): Record<string, string> {
  const i = Number(env.GIT_CONFIG_COUNT ?? "0");
  return {
    ...env,
    [`GIT_CONFIG_KEY_${i}`]: key,
    [`GIT_CONFIG_VALUE_${i}`]: value,
    GIT_CONFIG_COUNT: String(i + 1),
  };
}

/** The message image-automation-controller commits with when no messageTemplate is given. */
export const FLUX_DEFAULT_TEMPLATE = `Automated image update

Automation name: {{ .AutomationObject }}

Files:
{{ range $filename, $_ := .Changed.FileChanges -}}
- {{ $filename }}
{{ end -}}

Objects:
{{ range $resource, $changes := .Changed.Objects -}}
- {{ $resource.Kind }} {{ $resource.Name }}
  Changes:
{{- range $_, $change := $changes }}
    - {{ $change.OldValue }} -> {{ $change.NewValue }}
{{ end -}}
{{ end -}}
`;

export type TemplateCheck =
  | { ok: true; handlebars: string | undefined }
  | { ok: false; reason: "RemovedTemplateField" | "InvalidMessageTemplate"; message: string };

/**
 * A Flux `messageTemplate` (Go text/template) as shipmate renders it: no
 * template means shipmate's default message; text without actions is used
 * as it is; a template of fields, `range`, `if`, `with` and `else` is
 * translated, as are `print` and `println` of one field (Flux's image-update
 * guide writes them). Anything else — another function call (`readFile`,
 * `printf`, …), a pipeline, a variable outside a range — is refused, as is the `.Updated`
 * data Flux removed: nothing is committed with a message that is not the
 * one asked for.
 */
export function checkTemplate(template: string | undefined): TemplateCheck {
  if (!template) return { ok: true, handlebars: goTemplateToHandlebars(FLUX_DEFAULT_TEMPLATE) };
  if (/\{\{-?\s*[^}]*\.Updated\b/.test(template))
    return {
      ok: false,
      reason: "RemovedTemplateField",
      message: "spec.git.commit.messageTemplate uses .Updated, which Flux removed: use .Changed instead",
    };
  if (!template.includes("{{")) return { ok: true, handlebars: template };
  const handlebars = goTemplateToHandlebars(template);
  if (handlebars === undefined) {
    const action = firstUnsupportedAction(template);
    return {
      ok: false,
      reason: "InvalidMessageTemplate",
      message: `spec.git.commit.messageTemplate: ${action ? `"{{${action}}}" is not supported` : "it does not parse"} (fields, range, if, with, else, and print or println of one field, of .AutomationObject, .Changed and .Values only; no other functions)`,
    };
  }
  return { ok: true, handlebars };
}

function firstUnsupportedAction(template: string): string | undefined {
  for (const m of template.matchAll(/\{\{-?\s*([\s\S]*?)\s*-?\}\}/g)) {
    const body = (m[1] ?? "").trim();
    if (/^(end|else)$/.test(body)) continue;
    const single = goTemplateToHandlebars(
      `{{ ${/^(range|if|with)\s/.test(body) ? `${body} }}{{ end` : body} }}`,
    );
    if (single === undefined) return ` ${body} `;
  }
  return undefined;
}
