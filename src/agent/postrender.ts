/**
 * What happens to a Kustomization's objects between `kustomize build` and
 * apply, in Flux's order: SOPS decryption (`spec.decryption`, ./sops.ts),
 * then variable substitution (`spec.postBuild`, ./postbuild/). Both read
 * their Secrets and ConfigMaps with the agent's own client from the
 * Kustomization's namespace, as kustomize-controller does.
 */
import { ConfigError } from "../errors.ts";
import type { KubeClient } from "../kube/client.ts";
import type { KubeObject } from "../kube/schema.ts";
import { runPostBuild } from "./postbuild/index.ts";
import { Decryption, decryptObjects, loadDecryptionKeys, SopsCli, type SopsRunner } from "./sops.ts";

export interface PostRenderOptions {
  /** Unset variables without a default fail (Flux's StrictPostBuildSubstitutions, on by default). */
  strictSubstitutions?: boolean;
  sops?: SopsRunner;
}

export async function postRender(
  client: KubeClient,
  namespace: string,
  spec: Record<string, unknown> | undefined,
  objects: KubeObject[],
  opts: PostRenderOptions = {},
): Promise<KubeObject[]> {
  let out = objects;
  if (spec?.decryption !== undefined && spec.decryption !== null) {
    const parsed = Decryption.safeParse(spec.decryption);
    if (!parsed.success) {
      const issue = parsed.error.issues[0];
      throw new ConfigError(
        `invalid spec.decryption${issue?.path.length ? `.${issue.path.join(".")}` : ""}: ${issue?.message}`,
      );
    }
    const keys = await loadDecryptionKeys(client, namespace, parsed.data);
    out = (await decryptObjects(out, keys, opts.sops ?? new SopsCli())).objects;
  }
  return (await runPostBuild(client, namespace, spec?.postBuild, out, { strict: opts.strictSubstitutions }))
    .objects;
}
