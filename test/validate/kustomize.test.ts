import { describe, expect, it } from "vitest";
import { kustomizeErrorLine } from "../../src/validate/kustomize.ts";

// Messages exactly as kustomize v5.7 and kubectl v1.32 printed them for broken trees under /tmp/ke.
describe("kustomize errors, read as one line", () => {
  it.each([
    [
      "a missing resource deep in an overlay: the file that is missing",
      "Error: accumulating resources: accumulation err='accumulating resources from '../base': '/tmp/ke/base' must resolve to a file': recursed accumulation of path '/tmp/ke/base': accumulating resources: accumulation err='accumulating resources from 'a.yaml': evalsymlink failure on '/tmp/ke/base/a.yaml' : lstat /tmp/ke/base/a.yaml: no such file or directory': must build at directory: not a valid directory: evalsymlink failure on '/tmp/ke/base/a.yaml' : lstat /tmp/ke/base/a.yaml: no such file or directory\n",
      "base/a.yaml does not exist",
    ],
    [
      "kubectl's klog wrapping and a message spread over lines",
      "E1125 23:14:31.410403   29452 run.go:72] \"command failed\" err=<\n\ttrouble configuring builtin PatchTransformer with config: `\n\tpath: p.yaml\n\t`: failed to get the patch file from path(p.yaml): evalsymlink failure on '/tmp/ke/ov/p.yaml' : lstat /tmp/ke/ov/p.yaml: no such file or directory\n >\n",
      "ov/p.yaml does not exist",
    ],
    [
      "an invalid kustomization: the innermost clause, paths relative",
      "Error: accumulating resources: accumulation err='accumulating resources from '../base': '/tmp/ke/base' must resolve to a file': couldn't make target for path '/tmp/ke/base': invalid Kustomization: json: unknown field \"resourcez\"\n",
      "accumulating resources from '../base': 'base' must resolve to a file': couldn't make target for path 'base': invalid Kustomization: json: unknown field \"resourcez\"",
    ],
    [
      "malformed YAML in a resource",
      "Error: accumulating resources: accumulation err='accumulating resources from '../base': '/tmp/ke/base' must resolve to a file': recursed accumulation of path '/tmp/ke/base': accumulating resources: accumulating resources from 'a.yaml': MalformedYAMLError: yaml: line 5: did not find expected node content in File: a.yaml\n",
      "accumulating resources from '../base': 'base' must resolve to a file': recursed accumulation of path 'base': accumulating resources: accumulating resources from 'a.yaml': MalformedYAMLError: yaml: line 5: did not find expected node content in File: a.yaml",
    ],
  ])("%s", (_rule, stderr, line) => {
    expect(kustomizeErrorLine(stderr, "/tmp/ke")).toBe(line);
  });
});
