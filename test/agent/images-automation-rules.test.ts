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

describe("checkout and push branches", () => {
  it.each([
    ["the GitRepository's branch by default", {}, { branch: "prod" }, { checkout: "prod", push: "prod" }],
    ["master when nothing says", {}, undefined, { checkout: "master", push: "master" }],
    [
      "checkout.ref.branch wins",
      { checkout: { ref: { branch: "dev" } } },
      { branch: "prod" },
      { checkout: "dev", push: "dev" },
    ],
    [
      "push.branch elsewhere",
      { checkout: { ref: { branch: "main" } }, push: { branch: "image-updates" } },
      undefined,
      { checkout: "main", push: "image-updates" },
    ],
    [
      "refspec only: pushed there alone",
      { push: { refspec: "HEAD:refs/for/main" } },
      { branch: "main" },
      { checkout: "main", refspec: { dst: "refs/for/main", only: true } },
    ],
    [
      "branch and refspec: both",
      { push: { branch: "auto", refspec: "auto:refs/heads/mirror" } },
      { branch: "main" },
      { checkout: "main", push: "auto", refspec: { dst: "refs/heads/mirror", only: false } },
    ],
  ] as const)("%s", (_name, git, ref, expected) => {
    expect(branchesOf(spec(git), ref)).toEqual(expected);
  });

  it.each([
    ["a forced refspec", { push: { refspec: "+HEAD:refs/heads/x" } }],
    ["a deletion", { push: { refspec: ":refs/heads/x" } }],
    ["another source", { push: { refspec: "other:refs/heads/x" } }],
  ])("refused: %s", (_name, git) => {
    expect(branchesOf(spec(git), { branch: "main" })).toHaveProperty("error");
  });

  it("a GitRepository on a tag needs checkout.ref.branch", () => {
    expect(branchesOf(spec({}), { tag: "v1" })).toMatchObject({
      error: expect.stringContaining("checkout.ref.branch"),
    });
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

  it.each([
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
