/**
 * `shipmate update` without --set: the policies are scanned against a real
 * registry (CNCF Distribution on 127.0.0.1) and the selections written; a
 * single ImageUpdateAutomation supplies Flux's author, path and message.
 */
import { readFileSync } from "node:fs";
import { join } from "node:path";
import { afterAll, beforeAll, describe, expect, it } from "vitest";
import { goTemplateToHandlebars, messageData, renderMessage } from "../../src/git/message.ts";
import { runCli } from "../helpers/cli.ts";
import { git, seedCheckout, tempDir, writeFiles } from "../infra/git.ts";
import { seedTags, startRegistry, type TestRegistry } from "../infra/registry.ts";

let reg: TestRegistry;
let digest102: string;

beforeAll(async () => {
  reg = await startRegistry({ auth: "none" });
  await seedTags(reg, "team/web", ["1.0.0", "1.0.1"]);
  digest102 = (await seedTags(reg, "team/web", ["1.0.2"], { created: "2026-01-01T00:00:00Z" })).digest;
  await seedTags(reg, "team/api", ["2.0.0", "2.1.0", "3.0.0"]);
});
afterAll(async () => {
  await reg?.stop();
});

const policies = (host: string) => `apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: web, namespace: flux-system}
spec: {image: ${host}/team/web, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: web, namespace: flux-system}
spec:
  imageRepositoryRef: {name: web}
  digestReflectionPolicy: Always
  interval: 10m
  policy: {semver: {range: ">=1.0.0"}}
---
apiVersion: shipmate.dev/v1alpha1
kind: ImagePolicy
metadata: {name: api, namespace: apps}
spec:
  image: ${host}/team/api
  strategy: semver
  range: "^2.0.0"
  paths: [clusters/staging/api]
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImagePolicy
metadata: {name: gone, namespace: flux-system}
spec:
  imageRepositoryRef: {name: gone}
  policy: {semver: {range: ">=1.0.0"}}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageRepository
metadata: {name: gone, namespace: flux-system}
spec: {image: ${host}/team/gone, interval: 5m}
---
apiVersion: image.toolkit.fluxcd.io/v1
kind: ImageUpdateAutomation
metadata: {name: flux-system, namespace: flux-system}
spec:
  interval: 30m
  sourceRef: {kind: GitRepository, name: flux-system}
  git:
    checkout: {ref: {branch: main}}
    commit:
      author: {name: fluxcdbot, email: fluxcdbot@users.noreply.github.com}
      messageTemplate: |
        Automated image update

        {{ range .Changed.Changes -}}
        - {{ .OldValue }} -> {{ .NewValue }}
        {{ end -}}
    push: {branch: main}
  update: {path: ./clusters/staging, strategy: Setters}
`;

describe("update with a scan", () => {
  it("scan: selections come from the registry; digests where the policy reflects them; the automation's author and message", async () => {
    const host = reg.host;
    const { work } = seedCheckout({
      "clusters/staging/web.yaml": `image: ${host}/team/web:1.0.0 # {"$imagepolicy": "flux-system:web"}\n`,
      "clusters/staging/api/deploy.yaml": `containers:\n  - image: ${host}/team/api:2.0.0\n  - image: ${host}/team/other:2.0.0\n`,
      "clusters/prod/web.yaml": `image: ${host}/team/web:1.0.0 # {"$imagepolicy": "flux-system:web"}\n`,
    });
    const policyDir = tempDir();
    writeFiles(policyDir, { "policies.yaml": policies(host) });
    const r = await runCli(["update", "--repo", work, "--policies", policyDir, "--commit", "--json"]);
    // The policy whose repository does not exist is reported; the others are still delivered.
    expect(r.code, r.stderr).toBe(1);
    const out = JSON.parse(r.stdout);
    expect(out.problems).toMatchObject([
      { kind: "registry-error", severity: "error", message: expect.stringContaining("flux-system:gone") },
    ]);
    expect(Object.keys(out.files).sort()).toEqual([
      "clusters/staging/api/deploy.yaml",
      "clusters/staging/web.yaml",
    ]);
    expect(readFileSync(join(work, "clusters/staging/web.yaml"), "utf8")).toBe(
      `image: ${host}/team/web:1.0.2@${digest102} # {"$imagepolicy": "flux-system:web"}\n`,
    );
    expect(readFileSync(join(work, "clusters/staging/api/deploy.yaml"), "utf8")).toBe(
      `containers:\n  - image: ${host}/team/api:2.1.0\n  - image: ${host}/team/other:2.0.0\n`,
    );
    // update.path of the automation scopes the run: prod is untouched.
    expect(readFileSync(join(work, "clusters/prod/web.yaml"), "utf8")).toContain("web:1.0.0 #");
    expect(git(work, ["log", "-1", "--format=%an <%ae>"]).trim()).toBe(
      "fluxcdbot <fluxcdbot@users.noreply.github.com>",
    );
    expect(git(work, ["log", "-1", "--format=%B"]).trim()).toBe(
      `Automated image update\n\n- ${host}/team/api:2.0.0 -> ${host}/team/api:2.1.0\n- ${host}/team/web:1.0.0 -> ${host}/team/web:1.0.2@${digest102}`,
    );
  });

  it("scan: with no policies at all the run is a usage error", async () => {
    const { work } = seedCheckout({ "a.yaml": "x: 1\n" });
    const r = await runCli(["update", "--repo", work]);
    expect(r.code).toBe(2);
    expect(r.stderr).toMatch(/no image policies found/);
  });
});

describe("Flux messageTemplate (Go text/template) translated to Handlebars", () => {
  const files = [
    {
      path: "apps/a.yaml",
      changes: [
        {
          setter: "ns:a",
          policy: "ns:a",
          part: "image" as const,
          via: "marker" as const,
          old: "a:1",
          new: "a:2",
          line: 3,
          object: { kind: "Deployment", name: "a" },
        },
      ],
    },
  ];
  it.each([
    [
      "fields and range with trimming",
      "Update\n\n{{ range .Changed.Changes -}}\n* {{ .Setter }}: {{ .OldValue }} -> {{ .NewValue }}\n{{ end -}}",
      "Update\n\n* ns:a: a:1 -> a:2\n",
    ],
    [
      "range with key and value variables",
      "{{ range $file, $objs := .Changed.FileChanges }}{{ $file }}:{{ range $obj, $ch := $objs }} {{ $obj }} in {{ $file }}{{ end }}{{ end }}",
      "apps/a.yaml: Deployment/a in apps/a.yaml\n",
    ],
    [
      // Flux's documented example (image-update-automation docs, "Commit message template"):
      // `{{- range … }}` alone on its line keeps the newline after it, as Go does.
      "Flux's documented template: Go's trimming and standalone lines",
      `Automated image update

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
`,
      "Automated image update\n\nAutomation name: \n\nFiles:\n- apps/a.yaml\nObjects:\n- Deployment a\n  Changes:\n    - a:1 -> a:2\n",
    ],
    [
      "if / else",
      "{{ if .AutomationObject }}by {{ .AutomationObject }}{{ else }}by hand{{ end }}",
      "by hand\n",
    ],
  ])("%s", (_rule, go, expected) => {
    const hbs = goTemplateToHandlebars(go);
    expect(hbs).toBeDefined();
    expect(renderMessage(hbs, messageData(files))).toBe(expected);
  });

  it.each([["{{ .X | upper }}"], ['{{ printf "%s" .X }}'], ["{{ range .X }}unclosed"]])(
    "unsupported Go template %s is not translated",
    (go) => {
      expect(goTemplateToHandlebars(go)).toBeUndefined();
    },
  );
});
