import { mkdtemp, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { describe, expect, it } from "vitest";
import { loadFleet, parseFleet, promotionChain } from "../../src/config/fleet.ts";
import { ConfigError } from "../../src/errors.ts";

const header =
  "apiVersion: shipmate.dev/v1alpha1\nkind: Fleet\nmetadata:\n  name: acme\nspec:\n  environments:\n";

describe("shipmate.yaml (Fleet)", () => {
  it("defaults: push mode, no gates; policies default to nothing (the env path is used)", () => {
    const fleet = parseFleet(`${header}    - name: staging\n      path: ./apps/staging/\n`);
    expect(fleet.spec.environments).toEqual([{ name: "staging", path: "apps/staging", mode: "push" }]);
  });

  it("promotion chain, repositories per environment and gates", () => {
    const fleet = parseFleet(
      `${header}    - name: staging\n      path: apps\n      repository:\n        url: https://git/acme/staging.git\n` +
        `    - name: production\n      path: apps\n      repository:\n        url: https://git/acme/production.git\n        branch: release\n` +
        `      mode: pull-request\n      promoteFrom: staging\n      gates:\n        checks: true\n        soak: 1h30m\n`,
    );
    const [staging, production] = promotionChain(fleet);
    expect(staging?.from).toBeUndefined();
    expect(production?.from?.name).toBe("staging");
    expect(production?.env.repository).toEqual({ url: "https://git/acme/production.git", branch: "release" });
    expect(staging?.env.repository?.branch).toBe("main");
    expect(production?.env.gates).toEqual({ checks: true, health: false, soak: "1h30m", canary: false });
  });

  it("request settings per environment", () => {
    const fleet = parseFleet(
      `${header}    - name: production\n      path: apps\n      mode: pull-request\n      pullRequest:\n        labels: [release]\n        reviewers: [alice, acme/sre]\n        autoMerge: true\n`,
    );
    expect(fleet.spec.environments[0]?.pullRequest).toEqual({
      labels: ["release"],
      reviewers: ["alice", "acme/sre"],
      autoMerge: true,
    });
  });

  it.each([
    [
      "an environment listed twice",
      `    - name: a\n      path: x\n    - name: a\n      path: y\n`,
      'shipmate.yaml:9: spec.environments.1.name: environment "a" is listed twice',
    ],
    [
      "promotion from an environment listed later",
      `    - name: a\n      path: x\n      promoteFrom: b\n    - name: b\n      path: y\n`,
      'shipmate.yaml:9: spec.environments.0.promoteFrom: promoteFrom "b" is not an environment listed before "a"',
    ],
    [
      "promotion from itself",
      `    - name: a\n      path: x\n      promoteFrom: a\n`,
      'shipmate.yaml:9: spec.environments.0.promoteFrom: environment "a" cannot promote from itself',
    ],
    [
      "a path leaving the repository",
      `    - name: a\n      path: ../other\n`,
      "shipmate.yaml:8: spec.environments.0.path: must be a relative path inside the repository",
    ],
    [
      "an unknown mode",
      `    - name: a\n      path: x\n      mode: merge\n`,
      "shipmate.yaml:9: spec.environments.0.mode: Invalid option",
    ],
    [
      "a soak that is not a duration",
      `    - name: a\n      path: x\n      gates:\n        soak: 1 day\n`,
      "shipmate.yaml:10: spec.environments.0.gates.soak: must be a duration such as 30m, 1h or 1h30m",
    ],
    [
      "an unknown field (a typo)",
      `    - name: a\n      path: x\n      promotefrom: b\n`,
      'shipmate.yaml:7: spec.environments.0: Unrecognized key: "promotefrom"',
    ],
    [
      "a request setting that does not exist",
      `    - name: a\n      path: x\n      pullRequest:\n        label: [x]\n`,
      'shipmate.yaml:10: spec.environments.0.pullRequest: Unrecognized key: "label"',
    ],
    [
      "an empty label",
      `    - name: a\n      path: x\n      pullRequest:\n        labels: [""]\n`,
      "spec.environments.0.pullRequest.labels.0:",
    ],
    [
      "a name that is not a DNS-1123 label",
      `    - name: Prod\n      path: x\n`,
      "shipmate.yaml:7: spec.environments.0.name: must be a DNS-1123 label",
    ],
  ])("rejects %s with file and line", (_rule, envs, message) => {
    expect(() => parseFleet(header + envs)).toThrow(ConfigError);
    expect(() => parseFleet(header + envs)).toThrow(message);
  });

  it("rejects invalid YAML with its line", () => {
    expect(() => parseFleet(`${header}    - name: [a\n`)).toThrow(
      /^shipmate\.yaml:8: invalid YAML: Flow sequence/,
    );
  });

  it("a repository without shipmate.yaml is a ConfigError naming the file", async () => {
    const dir = await mkdtemp(join(tmpdir(), "shipmate-fleet-"));
    await expect(loadFleet(dir)).rejects.toThrow(`${join(dir, "shipmate.yaml")}: no shipmate.yaml`);
    await writeFile(join(dir, "shipmate.yaml"), `${header}    - name: a\n      path: x\n`);
    expect((await loadFleet(dir)).metadata.name).toBe("acme");
  });
});
