/**
 * The persistent registry cache. Only facts that cannot go stale, or whose
 * age is recorded, are kept: digest → build time and index → platform
 * manifest (content-addressed, immutable), tag → digest with the time it was
 * checked, and how each registry wants to be authenticated (never a token or
 * a password). One JSON file per repository, written atomically (temp file +
 * rename); a file that does not parse is ignored and rewritten, never fatal.
 */
import { createHash, randomBytes } from "node:crypto";
import { mkdir, readFile, rename, rm, writeFile } from "node:fs/promises";
import { homedir } from "node:os";
import { dirname, join } from "node:path";
import { z } from "zod";

const VERSION = 1;

/** How a registry answered its first challenge, so later runs authenticate up front. */
const AuthMemory = z.discriminatedUnion("scheme", [
  z.object({ scheme: z.literal("basic") }),
  z.object({ scheme: z.literal("bearer"), realm: z.string(), service: z.string().optional() }),
]);
export type AuthMemory = z.infer<typeof AuthMemory>;

const TagEntry = z.object({ digest: z.string(), mediaType: z.string(), checkedAt: z.number() });
export type TagEntry = z.infer<typeof TagEntry>;

/** Cache file format (ours): one repository. */
const RepoFile = z.object({
  version: z.literal(VERSION),
  registry: z.string(),
  repository: z.string(),
  tags: z.record(z.string(), TagEntry),
  /** `<digest>` or `<index digest>|<platform>` → RFC 3339 build time, null when the image has none. */
  created: z.record(z.string(), z.string().nullable()),
  /** `<index digest>|<platform>` → platform manifest digest. */
  platforms: z.record(z.string(), z.string()),
});
type RepoFile = z.infer<typeof RepoFile>;

/** Cache file format (ours): per-registry auth schemes. */
const RegistriesFile = z.object({
  version: z.literal(VERSION),
  registries: z.record(z.string(), AuthMemory),
});

export function defaultCacheDir(env: NodeJS.ProcessEnv = process.env): string {
  return join(env.XDG_CACHE_HOME || join(env.HOME || homedir(), ".cache"), "shipmate", "registry");
}

/** Serialised atomic writes of one file: bursts of updates collapse into at most one pending write. */
class FileWriter {
  private running: Promise<void> | undefined;
  private pending = false;
  private readonly file: string;
  private readonly render: () => string;
  constructor(file: string, render: () => string) {
    this.file = file;
    this.render = render;
  }
  schedule(): void {
    if (this.running) {
      this.pending = true;
      return;
    }
    this.running = this.loop();
  }
  async idle(): Promise<void> {
    while (this.running) await this.running;
  }
  private async loop(): Promise<void> {
    try {
      do {
        this.pending = false;
        // Let a burst of synchronous updates land before rendering.
        await new Promise((r) => setImmediate(r));
        await atomicWrite(this.file, this.render());
      } while (this.pending);
    } catch {
      // A cache that cannot be written only costs requests next time; never fail a scan for it.
    } finally {
      this.running = undefined;
    }
  }
}

async function atomicWrite(file: string, content: string): Promise<void> {
  await mkdir(dirname(file), { recursive: true });
  const tmp = `${file}.${process.pid}.${randomBytes(4).toString("hex")}.tmp`;
  try {
    await writeFile(tmp, content, { mode: 0o600 });
    await rename(tmp, file);
  } catch (err) {
    await rm(tmp, { force: true });
    throw err;
  }
}

async function readJson<T>(file: string, schema: z.ZodType<T>): Promise<T | undefined> {
  try {
    const parsed = schema.safeParse(JSON.parse(await readFile(file, "utf8")));
    return parsed.success ? parsed.data : undefined;
  } catch {
    return undefined;
  }
}

export class RepoCache {
  private readonly data: RepoFile;
  private readonly writer: FileWriter | undefined;
  constructor(data: RepoFile, file: string | undefined) {
    this.data = data;
    this.writer = file ? new FileWriter(file, () => JSON.stringify(this.data)) : undefined;
  }
  tag(tag: string): TagEntry | undefined {
    return this.data.tags[tag];
  }
  setTag(tag: string, entry: TagEntry): void {
    this.data.tags[tag] = entry;
    this.writer?.schedule();
  }
  /** undefined: unknown; null: known to have no build time. */
  created(key: string): string | null | undefined {
    return this.data.created[key];
  }
  setCreated(key: string, created: string | null): void {
    this.data.created[key] = created;
    this.writer?.schedule();
  }
  platform(key: string): string | undefined {
    return this.data.platforms[key];
  }
  setPlatform(key: string, digest: string): void {
    this.data.platforms[key] = digest;
    this.writer?.schedule();
  }
  idle(): Promise<void> {
    return this.writer?.idle() ?? Promise.resolve();
  }
}

export class RegistryCache {
  /** undefined: in memory only. */
  readonly dir: string | undefined;
  private readonly repos = new Map<string, Promise<RepoCache>>();
  private auth: Promise<Record<string, AuthMemory>> | undefined;
  private readonly authWriter: FileWriter | undefined;
  private authData: Record<string, AuthMemory> = {};

  constructor(dir: string | undefined) {
    this.dir = dir;
    this.authWriter = dir
      ? new FileWriter(join(dir, `v${VERSION}`, "registries.json"), () =>
          JSON.stringify({ version: VERSION, registries: this.authData }),
        )
      : undefined;
  }

  private repoFile(registry: string, repository: string): string | undefined {
    if (!this.dir) return undefined;
    // Hashed names: no registry or path spelling can escape the directory or collide with another.
    const id = createHash("sha256").update(`${registry}/${repository}`).digest("hex").slice(0, 32);
    return join(this.dir, `v${VERSION}`, "repos", `${id}.json`);
  }

  repo(registry: string, repository: string): Promise<RepoCache> {
    const key = `${registry}/${repository}`;
    let p = this.repos.get(key);
    if (!p) {
      p = (async () => {
        const file = this.repoFile(registry, repository);
        const loaded = file ? await readJson(file, RepoFile) : undefined;
        const fresh: RepoFile = {
          version: VERSION,
          registry,
          repository,
          tags: {},
          created: {},
          platforms: {},
        };
        const data =
          loaded && loaded.registry === registry && loaded.repository === repository ? loaded : fresh;
        return new RepoCache(data, file);
      })();
      this.repos.set(key, p);
    }
    return p;
  }

  private loadAuth(): Promise<Record<string, AuthMemory>> {
    this.auth ??= (async () => {
      const file = this.dir ? join(this.dir, `v${VERSION}`, "registries.json") : undefined;
      const loaded = file ? await readJson(file, RegistriesFile) : undefined;
      this.authData = { ...loaded?.registries, ...this.authData };
      return this.authData;
    })();
    return this.auth;
  }

  async authMemory(registry: string): Promise<AuthMemory | undefined> {
    return (await this.loadAuth())[registry];
  }

  async setAuthMemory(registry: string, memory: AuthMemory): Promise<void> {
    const all = await this.loadAuth();
    if (JSON.stringify(all[registry]) === JSON.stringify(memory)) return;
    all[registry] = memory;
    this.authWriter?.schedule();
  }

  /** Waits for every pending write. */
  async flush(): Promise<void> {
    await this.authWriter?.idle();
    for (const p of this.repos.values()) await (await p).idle();
  }
}
