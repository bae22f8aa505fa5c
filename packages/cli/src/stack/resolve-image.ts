/**
 * `stack deploy --resolve-image`, as Docker: `always` pins every service's image to the digest the
 * registry has for its tag now (`image:tag@sha256:...`); `changed` does so for new services and
 * for services whose image (as written in the file, the com.docker.stack.image label) changed,
 * and otherwise keeps the running service's image (with its digest); `never` asks no registry
 * and keeps the running image when the file's image did not change. A registry that cannot be
 * reached gives Docker's warning and the tag is used as written.
 */
import type { Service, ServiceSpec } from '@shoal/api';
import { LABEL_IMAGE } from '@shoal/compose';
import { errorMessage, InvalidArgumentError } from '@shoal/common';
import { DEFAULT_ENGINE_ROOT, familiarName, formatReference, ImageService, parseReference } from '@shoal/engine';

export const RESOLVE_IMAGE_MODES = ['always', 'changed', 'never'] as const;
export type ResolveImage = (typeof RESOLVE_IMAGE_MODES)[number];

export function parseResolveImage(v: string): ResolveImage {
  if (!(RESOLVE_IMAGE_MODES as readonly string[]).includes(v))
    throw new InvalidArgumentError(`Invalid option ${v} for flag --resolve-image`);
  return v as ResolveImage;
}

/** The digest of `image`'s tag in its registry (one manifest request). */
export type DigestLookup = (image: string) => Promise<string>;

export function registryDigests(root = process.env['SHOAL_DATA_ROOT'] ?? DEFAULT_ENGINE_ROOT): DigestLookup {
  const images = new ImageService({ root });
  return async (image) => {
    const ref = parseReference(image);
    const m = await images.registry.getManifest(ref, ref.tag ?? 'latest');
    return m.digest;
  };
}

/** `image` pinned to `digest`, in the familiar form (`busybox:1@sha256:...`). */
function pinned(image: string, digest: string): string {
  const ref = parseReference(image);
  return familiarName(formatReference({ ...ref, tag: ref.tag ?? 'latest', digest }));
}

/**
 * Sets each spec's image as the mode says; `current` are the stack's running services. Returns
 * the warnings to print.
 */
export async function resolveImages(
  specs: ServiceSpec[],
  current: readonly Service[],
  mode: ResolveImage,
  lookup: DigestLookup,
): Promise<string[]> {
  const warnings: string[] = [];
  const byName = new Map(current.map((s) => [s.Spec?.Name ?? '', s]));
  for (const spec of specs) {
    const c = spec.TaskTemplate?.ContainerSpec;
    const image = c?.Image ?? '';
    if (c === undefined || image === '') continue;
    const running = byName.get(spec.Name ?? '');
    const unchanged = running !== undefined && running.Spec?.Labels?.[LABEL_IMAGE] === spec.Labels?.[LABEL_IMAGE];
    if (mode !== 'always' && unchanged) {
      c.Image = running.Spec?.TaskTemplate?.ContainerSpec?.Image || image;
      continue;
    }
    if (mode === 'never' || image.includes('@')) continue;
    try {
      c.Image = pinned(image, await lookup(image));
    } catch (err) {
      warnings.push(
        `image ${image} could not be accessed on a registry to record its digest. Each node will access ${image} independently, possibly leading to different nodes running different versions of the image. (${errorMessage(err)})`,
      );
    }
  }
  return warnings;
}
