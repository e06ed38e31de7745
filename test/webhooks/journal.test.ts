/**
 * serve's delivery journal (src/webhooks/journal.ts) on real files: what was
 * accepted and not run survives a process that dies, is replayed once by the
 * next, and leaves the journal when its run ends; a broken journal is one line.
 */
import { existsSync, mkdtempSync, readFileSync, rmSync, writeFileSync } from "node:fs";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { afterAll, describe, expect, it } from "vitest";
import { DeliveryJournal, defaultJournalPath, JournaledQueue } from "../../src/webhooks/journal.ts";
import type { RefreshScope } from "../../src/webhooks/queue.ts";

const dir = mkdtempSync(join(tmpdir(), "shipmate-journal-"));
afterAll(() => rmSync(dir, { recursive: true, force: true }));
const images = (...i: string[]): RefreshScope => ({ kind: "images", images: new Set(i) });
const stored = (file: string) => JSON.parse(readFileSync(file, "utf8"));

/** A runner whose runs finish only when told to, recording what each covered. */
function gatedRunner() {
  const runs: string[][] = [];
  let release: () => void = () => {};
  const run = (scope: RefreshScope) =>
    new Promise<void>((resolve) => {
      runs.push(scope.kind === "all" ? ["*"] : [...scope.images].sort());
      release = resolve;
    });
  return { runs, run, finish: () => release() };
}

describe("JournaledQueue", () => {
  it("a delivery accepted and not run is replayed by the next process, once", async () => {
    const file = join(dir, "a.json");
    const first = gatedRunner();
    const q1 = new JournaledQueue(first.run, new DeliveryJournal(file));
    void q1.accept(images("reg/app"));
    // The first process dies mid-run: its journal still holds the delivery.
    expect(stored(file)).toEqual({ kind: "images", images: ["reg/app"] });

    const second = gatedRunner();
    const q2 = new JournaledQueue(second.run, new DeliveryJournal(file));
    const replayed = q2.replay();
    expect(replayed).toEqual(images("reg/app"));
    await new Promise((r) => setTimeout(r, 0));
    expect(second.runs).toEqual([["reg/app"]]);
    second.finish();
    await q2.queue.idle();
    expect(existsSync(file)).toBe(false);
    // Nothing left to replay.
    expect(new JournaledQueue(second.run, new DeliveryJournal(file)).replay()).toBeUndefined();
  });

  it("what arrives during a run stays journaled after it, and leaves with the next", async () => {
    const file = join(dir, "b.json");
    const r = gatedRunner();
    const q = new JournaledQueue(r.run, new DeliveryJournal(file));
    void q.accept(images("reg/a"));
    await new Promise((res) => setTimeout(res, 0));
    void q.accept(images("reg/b"));
    expect(stored(file)).toEqual({ kind: "images", images: ["reg/a", "reg/b"] });
    r.finish();
    await new Promise((res) => setTimeout(res, 0));
    expect(stored(file)).toEqual({ kind: "images", images: ["reg/b"] });
    r.finish();
    await q.queue.idle();
    expect(r.runs).toEqual([["reg/a"], ["reg/b"]]);
    expect(existsSync(file)).toBe(false);
  });

  it("interval refreshes need no journal; a failed run leaves it too (the runner reports)", async () => {
    const file = join(dir, "c.json");
    const q = new JournaledQueue(async () => {
      throw new Error("remote down");
    }, new DeliveryJournal(file));
    await q.request({ kind: "all" });
    expect(existsSync(file)).toBe(false);
    await q.accept(images("reg/x"));
    expect(existsSync(file)).toBe(false);
  });

  it("a journal that is not one is one line naming the file, and nothing is replayed", () => {
    const file = join(dir, "d.json");
    writeFileSync(file, "{not json");
    expect(() => new DeliveryJournal(file).load()).toThrow(
      `${file}: not JSON; the deliveries it held are not replayed`,
    );
    writeFileSync(file, JSON.stringify({ kind: "everything" }));
    expect(() => new DeliveryJournal(file).load()).toThrow(/not a delivery journal/);
  });

  it("one journal per repository, branch and path, under XDG_STATE_HOME", () => {
    const a = defaultJournalPath("repo-a", { XDG_STATE_HOME: "/state" });
    expect(a).toMatch(/^\/state\/shipmate\/serve\/[0-9a-f]{16}\.json$/);
    expect(defaultJournalPath("repo-b", { XDG_STATE_HOME: "/state" })).not.toBe(a);
    expect(defaultJournalPath("repo-a", { HOME: "/home/u" })).toMatch(
      /^\/home\/u\/\.local\/state\/shipmate\/serve\//,
    );
  });
});
