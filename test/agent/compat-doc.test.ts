import { readFileSync } from "node:fs";
import { describe, expect, it } from "vitest";
import {
  BEGIN,
  COMPAT_DOC_FILE,
  END,
  renderFieldSections,
  withFieldSections,
} from "../../src/agent/fields/compat-doc.ts";
import type { KindFields } from "../../src/agent/fields/tables.ts";

const tables: KindFields[] = [
  { group: "kustomize.toolkit.fluxcd.io", kind: "Kustomization", fields: { "a|b": { refused: "x | y" } } },
  {
    group: "source.toolkit.fluxcd.io",
    kind: "GitRepository",
    fields: { url: "honoured", provider: { refused: "generic only", accepts: ["generic"] } },
  },
];

describe("docs/flux-compat.md", () => {
  it("the committed file is what scripts/gen-flux-compat.ts generates from the agent's tables", () => {
    const committed = readFileSync(COMPAT_DOC_FILE, "utf8");
    expect(committed).toContain(BEGIN);
    expect(withFieldSections(committed), "run node scripts/gen-flux-compat.ts").toBe(committed);
  });

  it("each kind gets a section, kinds and fields sorted, a refused field with its reason and accepted defaults", () => {
    const block = renderFieldSections(tables);
    const lines = block.split("\n");
    expect(lines.indexOf("### GitRepository (`source.toolkit.fluxcd.io`)")).toBeLessThan(
      lines.indexOf("### Kustomization (`kustomize.toolkit.fluxcd.io`)"),
    );
    expect(lines).toContain(
      '| `spec.provider` | **refused** | generic only (accepted: `"generic"`, Flux\'s default) |',
    );
    expect(
      lines.indexOf(
        '| `spec.provider` | **refused** | generic only (accepted: `"generic"`, Flux\'s default) |',
      ),
    ).toBeLessThan(lines.indexOf("| `spec.url` | honoured | |"));
    expect(lines, "a pipe in a reason does not break the table").toContain(
      "| `spec.a|b` | **refused** | x \\| y |",
    );
  });

  it("the prose around the generated block is kept; a document without one gets it appended", () => {
    const doc = `# Title\n\nintro\n\n${BEGIN}\nold\n${END}\n\n## Moving from Flux\n`;
    const next = withFieldSections(doc, tables);
    expect(next.startsWith("# Title\n\nintro\n\n")).toBe(true);
    expect(next.endsWith(`${END}\n\n## Moving from Flux\n`)).toBe(true);
    expect(next).not.toContain("\nold\n");
    expect(withFieldSections("# Title\n", tables)).toBe(`# Title\n\n${renderFieldSections(tables)}\n`);
  });
});
