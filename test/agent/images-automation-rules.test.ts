/**
 * The pure rules of an in-cluster ImageUpdateAutomation
 * (src/agent/images/automation-rules.ts), as Flux's image-automation-controller
 * documents them: policy selection, setters and observedPolicies, branches
 * and refspecs, push options, message templates.
 */
import { describe, expect, it } from "vitest";
import {
  branchesOf,
  checkTemplate,
  cloneStartOf,
  pushOptionEnv,
  selectorMatches,
  selectorProblem,
  settersOf,
} from "../../src/agent/images/automation-rules.ts";
import { ImageUpdateAutomationSpec } from "../../src/agent/images/spec.ts";
import { messageData, renderMessage } from "../../src/git/message.ts";

const spec = (git: object) =>
  ImageUpdateAutomationSpec.parse({
    interval: "5m",
    sourceRef: { kind: "GitRepository", name: "fleet" },
    git: { commit: { author: { email: "bot@example.com" } }, ...git },
  });

describe("policySelector", () => {
  it.each([
    ["no selector selects every policy", undefined, { a: "1" }, true],
    ["matchLabels must all match", { matchLabels: { team: "x" } }, { team: "x", other: "y" }, true],
    ["matchLabels with a different value", { matchLabels: { team: "x" } }, { team: "y" }, false],
    ["In", { matchExpressions: [{ key: "env", operator: "In", values: ["a", "b"] }] }, { env: "b" }, true],
    [
      "In without the label",
      { matchExpressions: [{ key: "env", operator: "In", values: ["a"] }] },
      {},
      false,
    ],
    [
      "NotIn without the label",
      { matchExpressions: [{ key: "env", operator: "NotIn", values: ["a"] }] },
      {},
      true,
    ],
    [
      "NotIn with it",
      { matchExpressions: [{ key: "env", operator: "NotIn", values: ["a"] }] },
      { env: "a" },
      false,
    ],
    ["Exists", { matchExpressions: [{ key: "env", operator: "Exists" }] }, { env: "" }, true],
    ["DoesNotExist", { matchExpressions: [{ key: "env", operator: "DoesNotExist" }] }, { env: "a" }, false],
  ] as const)("%s", (_name, selector, labels, expected) => {
    expect(selectorMatches(selector as never, labels)).toBe(expected);
  });

  it("a selector Kubernetes would refuse is named", () => {
    expect(selectorProblem({ matchExpressions: [{ key: "env", operator: "In" }] })).toBe(
      'policySelector: operator In on "env" needs values',
    );
    expect(
      selectorProblem({ matchExpressions: [{ key: "env", operator: "Exists", values: ["x"] }] }),
    ).toContain("takes no values");
    expect(selectorProblem({ matchLabels: { a: "b" } })).toBeUndefined();
  });
});

describe("setters from the namespace's policies", () => {
  const policy = (name: string, ns: string, latestRef?: object, labels?: Record<string, string>) => ({
    metadata: { name, namespace: ns, ...(labels ? { labels } : {}) },
    ...(latestRef ? { status: { latestRef } } : {}),
  });
  it("only the automation's namespace, only selected, only policies with a latestRef", () => {
    const { sets, observed } = settersOf(
      [
        policy("b", "apps", { name: "reg/b", tag: "2.0", digest: "sha256:" + "a".repeat(64) }),
        policy("a", "apps", { name: "reg/a", tag: "1.0" }, { auto: "yes" }),
        policy("pending", "apps"),
        policy("other", "elsewhere", { name: "reg/o", tag: "9" }),
      ],
      "apps",
      undefined,
    );
    expect(sets).toEqual([
      { policy: "apps:a", selection: { image: "reg/a", tag: "1.0" } },
      { policy: "apps:b", selection: { image: "reg/b", tag: "2.0", digest: `sha256:${"a".repeat(64)}` } },
    ]);
    expect(observed).toEqual({
      a: { name: "reg/a", tag: "1.0" },
      b: { name: "reg/b", tag: "2.0", digest: `sha256:${"a".repeat(64)}` },
    });
    const selected = settersOf(
      [
        policy("a", "apps", { name: "reg/a", tag: "1.0" }, { auto: "yes" }),
        policy("b", "apps", { name: "x", tag: "1" }),
      ],
      "apps",
      { matchLabels: { auto: "yes" } },
    );
    expect(Object.keys(selected.observed)).toEqual(["a"]);
  });
});

const SHA = "0123456789abcdef0123456789abcdef01234567";

describe("checkout and push branches", () => {
  it.each([
    [
      "the GitRepository's branch by default",
      {},
      { branch: "prod" },
      { checkout: { branch: "prod" }, base: "prod", push: "prod" },
    ],
    [
      "master when nothing says",
      {},
      undefined,
      { checkout: { branch: "master" }, base: "master", push: "master" },
    ],
    [
      "checkout.ref.branch wins",
      { checkout: { ref: { branch: "dev" } } },
      { branch: "prod" },
      { checkout: { branch: "dev" }, base: "dev", push: "dev" },
    ],
    [
      "push.branch elsewhere",
      { checkout: { ref: { branch: "main" } }, push: { branch: "image-updates" } },
      undefined,
      { checkout: { branch: "main" }, base: "main", push: "image-updates" },
    ],
    [
      "refspec only: pushed there alone",
      { push: { refspec: "HEAD:refs/for/main" } },
      { branch: "main" },
      { checkout: { branch: "main" }, base: "main", refspec: { dst: "refs/for/main", only: true } },
    ],
    [
      "branch and refspec: both",
      { push: { branch: "auto", refspec: "auto:refs/heads/mirror" } },
      { branch: "main" },
      {
        checkout: { branch: "main" },
        base: "main",
        push: "auto",
        refspec: { dst: "refs/heads/mirror", only: false },
      },
    ],
    [
      "a tag checkout pushes to push.branch",
      { checkout: { ref: { tag: "v1.0.0" } }, push: { branch: "release-1" } },
      { branch: "main" },
      { checkout: { tag: "v1.0.0" }, push: "release-1" },
    ],
    [
      "a semver checkout pushes to push.branch",
      { checkout: { ref: { semver: ">=1.0.0 <2.0.0" } }, push: { branch: "release-1" } },
      { branch: "main" },
      { checkout: { semver: ">=1.0.0 <2.0.0" }, push: "release-1" },
    ],
    [
      "a reference name pushes to push.branch",
      { checkout: { ref: { name: "refs/pull/7/head" } }, push: { branch: "pr-7-images" } },
      { branch: "main" },
      { checkout: { name: "refs/pull/7/head" }, push: "pr-7-images" },
    ],
    [
      "a commit within a branch pushes to that branch",
      { checkout: { ref: { branch: "main", commit: SHA } } },
      undefined,
      { checkout: { commit: SHA, branch: "main" }, base: "main", push: "main" },
    ],
    [
      "a lone commit pushes to push.branch",
      { checkout: { ref: { commit: SHA } }, push: { branch: "pinned" } },
      undefined,
      { checkout: { commit: SHA }, push: "pinned" },
    ],
    [
      "precedence as source-controller's: name over semver, tag and branch",
      {
        checkout: { ref: { branch: "main", tag: "v1", semver: "1.x", name: "refs/tags/v2" } },
        push: { branch: "x" },
      },
      undefined,
      { checkout: { name: "refs/tags/v2" }, push: "x" },
    ],
    [
      "the GitRepository's tag, with push.branch",
      { push: { branch: "auto" } },
      { tag: "v1" },
      { checkout: { tag: "v1" }, push: "auto" },
    ],
    [
      "a tag checkout with a refspec from HEAD beside the branch",
      { checkout: { ref: { tag: "v1" } }, push: { branch: "auto", refspec: "HEAD:refs/for/main" } },
      undefined,
      { checkout: { tag: "v1" }, push: "auto", refspec: { dst: "refs/for/main", only: false } },
    ],
  ] as const)("%s", (_name, git, ref, expected) => {
    expect(branchesOf(spec(git), ref)).toEqual(expected);
  });

  it.each([
    ["a forced refspec", { push: { refspec: "+HEAD:refs/heads/x" } }, "spec.git.push.refspec"],
    ["a deletion", { push: { refspec: ":refs/heads/x" } }, "spec.git.push.refspec"],
    ["another source", { push: { refspec: "other:refs/heads/x" } }, "spec.git.push.refspec"],
    [
      "a tag checkout without push.branch",
      { checkout: { ref: { tag: "v1" } } },
      "spec.git.checkout.ref checks out tag v1, not a branch: set spec.git.push.branch",
    ],
    [
      "a semver checkout with a refspec alone",
      { checkout: { ref: { semver: "1.x" } }, push: { refspec: "HEAD:refs/for/main" } },
      'checks out the newest tag in semver range "1.x", not a branch: set spec.git.push.branch',
    ],
    [
      "a lone commit without push.branch",
      { checkout: { ref: { commit: SHA } } },
      `checks out commit ${SHA}, not a branch`,
    ],
    [
      "a reference name without push.branch",
      { checkout: { ref: { name: "refs/heads/dev" } } },
      "checks out reference refs/heads/dev, not a branch",
    ],
    [
      "a short commit",
      { checkout: { ref: { commit: "abc123" } }, push: { branch: "x" } },
      'spec.git.checkout.ref.commit "abc123" is not a full commit SHA',
    ],
    [
      "a name that is not a full reference",
      { checkout: { ref: { name: "main" } }, push: { branch: "x" } },
      'spec.git.checkout.ref.name "main" is not a full reference name',
    ],
    [
      "a semver range that does not parse",
      { checkout: { ref: { semver: "not a range" } }, push: { branch: "x" } },
      'spec.git.checkout.ref.semver "not a range"',
    ],
  ])("refused: %s", (_name, git, message) => {
    expect(branchesOf(spec(git), { branch: "main" })).toEqual({ error: expect.stringContaining(message) });
  });

  it("a GitRepository on a tag needs push.branch, and says whose ref it is", () => {
    expect(branchesOf(spec({}), { tag: "v1" })).toEqual({
      error:
        "the GitRepository's spec.ref checks out tag v1, not a branch: set spec.git.push.branch to the branch the automation pushes to",
    });
  });
});

describe("the clone of a checkout that is not a branch", () => {
  it.each([
    ["a branch clones as before", { branch: "main" }, undefined],
    ["a tag is its full reference", { tag: "v1.2.0" }, { ref: "refs/tags/v1.2.0" }],
    ["a name is fetched as it is", { name: "refs/pull/7/head" }, { ref: "refs/pull/7/head" }],
    ["a commit keeps its branch", { commit: SHA, branch: "main" }, { commit: SHA, branch: "main" }],
    ["a lone commit", { commit: SHA }, { commit: SHA }],
  ] as const)("%s", (_name, ref, expected) => {
    expect(cloneStartOf(ref)).toEqual(expected);
  });

  it("a semver range picks the newest matching tag, as source-controller does", () => {
    const start = cloneStartOf({ semver: "1.x" });
    expect(start).toMatchObject({ what: 'semver range "1.x"' });
    const pick = start && "pick" in start ? start.pick : () => "wrong";
    expect(pick(["v0.9.0", "v1.0.0", "v1.10.0", "v1.9.0", "v2.0.0", "latest"])).toBe("v1.10.0");
    expect(pick(["v2.0.0"])).toBeUndefined();
  });
});

describe("push options", () => {
  it("each option is one push.pushOption value, in git's GIT_CONFIG_* variables", () => {
    expect(pushOptionEnv({ "merge_request.create": "", "ci.skip": "", topic: "images" })).toEqual({
      GIT_CONFIG_COUNT: "3",
      GIT_CONFIG_KEY_0: "push.pushOption",
      GIT_CONFIG_VALUE_0: "ci.skip",
      GIT_CONFIG_KEY_1: "push.pushOption",
      GIT_CONFIG_VALUE_1: "merge_request.create",
      GIT_CONFIG_KEY_2: "push.pushOption",
      GIT_CONFIG_VALUE_2: "topic=images",
    });
    expect(pushOptionEnv(undefined)).toEqual({});
  });
});

describe("message templates", () => {
  const files = [
    {
      path: "apps/web.yaml",
      changes: [
        {
          policy: "apps:web",
          setter: "apps:web",
          old: "reg/web:1.0",
          new: "reg/web:1.1",
          line: 3,
          part: "image" as const,
          object: { kind: "Deployment", namespace: "apps", name: "web" },
        },
      ],
    },
  ];
  const render = (t: string | undefined) => {
    const c = checkTemplate(t);
    if (!c.ok) throw new Error(c.message);
    return renderMessage(
      c.handlebars,
      messageData(files as never, { automation: "flux-system/auto", values: { env: "prod" } }),
    );
  };

  it("no template: Flux's default message, objects by kind and name", () => {
    const out = render(undefined);
    expect(out).toContain("Automated image update");
    expect(out).toContain("Automation name: flux-system/auto");
    expect(out).toContain("- apps/web.yaml");
    expect(out).toContain("- Deployment web");
    expect(out).toContain("reg/web:1.0 -> reg/web:1.1");
  });

  it("text without actions is the message itself", () => {
    expect(render("chore: bump images")).toBe("chore: bump images\n");
  });

  it("fields, range over maps with $key, $value and .Values", () => {
    expect(
      render("{{ range $file, $objs := .Changed.FileChanges }}{{ $file }}{{ end }} to {{ .Values.env }}"),
    ).toBe("apps/web.yaml to prod\n");
  });

  it("print and println of one field, as Flux's image-update guide writes the template", () => {
    expect(render("{{range .Changed.Changes}}{{print .OldValue}} -> {{println .NewValue}}{{end}}")).toBe(
      "reg/web:1.0 -> reg/web:1.1\n",
    );
    expect(render("{{ range .Changed.Changes -}}\n{{ println .NewValue -}}\n{{ end }}done")).toBe(
      "reg/web:1.1\ndone\n",
    );
    expect(render("{{ range $f, $_ := .Changed.FileChanges }}{{ print $f }}{{ end }}")).toBe(
      "apps/web.yaml\n",
    );
  });

  it.each([
    ["two operands", "{{ print .AutomationObject .Values.env }}", "InvalidMessageTemplate", "print"],
    ["a file read", '{{ readFile "/etc/passwd" }}', "InvalidMessageTemplate", "readFile"],
    ["a function", '{{ printf "%s" .AutomationObject }}', "InvalidMessageTemplate", "printf"],
    ["a pipeline", "{{ .AutomationObject | upper }}", "InvalidMessageTemplate", "upper"],
    ["an unclosed range", "{{ range .Changed.Changes }}x", "InvalidMessageTemplate", "does not parse"],
    [
      "Flux's removed .Updated",
      "{{ range .Updated.Images }}{{ . }}{{ end }}",
      "RemovedTemplateField",
      ".Updated",
    ],
  ])("refused: %s", (_name, template, reason, named) => {
    const c = checkTemplate(template);
    expect(c.ok).toBe(false);
    if (c.ok) return;
    expect(c.reason).toBe(reason);
    expect(c.message).toContain(named);
    expect(c.message).not.toContain("\n");
  });
});
