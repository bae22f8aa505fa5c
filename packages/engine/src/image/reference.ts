/**
 * Image references: `[registry/]repository[:tag][@digest]`, normalised the way Docker does
 * (a first component without `.` or `:` and other than `localhost` is a Docker Hub path;
 * a one-component Hub name gets `library/`; no tag and no digest means `:latest`).
 */
import { InvalidReferenceError } from '../errors.js';

export const DEFAULT_REGISTRY = 'docker.io';
/** The host that actually serves Docker Hub's API. */
export const DOCKER_HUB_API_HOST = 'registry-1.docker.io';

const COMPONENT = /^[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*$/;
const TAG = /^[\w][\w.-]{0,127}$/;
const DIGEST = /^sha256:[a-f0-9]{64}$/;
const DOMAIN =
  /^(?:[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)(?:\.[a-zA-Z0-9](?:[a-zA-Z0-9-]*[a-zA-Z0-9])?)*(?::[0-9]+)?$|^\[[0-9a-fA-F:.]+\](?::[0-9]+)?$/;

export interface ImageReference {
  /** Registry host[:port], e.g. `docker.io` or `127.0.0.1:5000`. */
  registry: string;
  /** Repository path inside the registry, e.g. `library/busybox`. */
  repository: string;
  tag?: string;
  digest?: string;
}

/** True for `sha256:<64 hex>`. */
export function isDigest(s: string): boolean {
  return DIGEST.test(s);
}

/** Parses and normalises `ref`; throws InvalidReferenceError saying what is wrong. */
export function parseReference(ref: string): ImageReference {
  if (ref.length === 0 || ref.length > 512) throw new InvalidReferenceError(ref, 'empty or too long');
  let rest = ref;
  let digest: string | undefined;
  const at = rest.indexOf('@');
  if (at >= 0) {
    digest = rest.slice(at + 1);
    rest = rest.slice(0, at);
    if (!isDigest(digest)) throw new InvalidReferenceError(ref, 'digest must be sha256:<64 lowercase hex>');
  }
  let tag: string | undefined;
  const lastSlash = rest.lastIndexOf('/');
  const colon = rest.lastIndexOf(':');
  if (colon > lastSlash) {
    tag = rest.slice(colon + 1);
    rest = rest.slice(0, colon);
    if (!TAG.test(tag)) throw new InvalidReferenceError(ref, `bad tag ${JSON.stringify(tag)}`);
  }
  const parts = rest.split('/');
  let registry = DEFAULT_REGISTRY;
  const first = parts[0] ?? '';
  if (parts.length > 1 && (first.includes('.') || first.includes(':') || first === 'localhost')) {
    registry = first;
    parts.shift();
    if (!DOMAIN.test(registry)) throw new InvalidReferenceError(ref, `bad registry host ${JSON.stringify(registry)}`);
  }
  if (registry === 'index.docker.io' || registry === DOCKER_HUB_API_HOST) registry = DEFAULT_REGISTRY;
  if (registry === DEFAULT_REGISTRY && parts.length === 1) parts.unshift('library');
  for (const p of parts) {
    if (!COMPONENT.test(p)) {
      throw new InvalidReferenceError(
        ref,
        `bad name component ${JSON.stringify(p)} (lowercase letters, digits, . _ -)`,
      );
    }
  }
  const repository = parts.join('/');
  if (repository.length > 255) throw new InvalidReferenceError(ref, 'repository name too long');
  if (tag === undefined && digest === undefined) tag = 'latest';
  const out: ImageReference = { registry, repository };
  if (tag !== undefined) out.tag = tag;
  if (digest !== undefined) out.digest = digest;
  return out;
}

/** `registry/repository` */
export function repoName(r: ImageReference): string {
  return `${r.registry}/${r.repository}`;
}

/** The canonical string: `registry/repository[:tag][@digest]`. */
export function formatReference(r: ImageReference): string {
  return `${repoName(r)}${r.tag !== undefined ? `:${r.tag}` : ''}${r.digest !== undefined ? `@${r.digest}` : ''}`;
}

/** `registry/repository:tag`, or undefined when the reference has no tag. */
export function tagRef(r: ImageReference): string | undefined {
  return r.tag === undefined ? undefined : `${repoName(r)}:${r.tag}`;
}

/** A shorter form for display: Docker Hub names lose `docker.io/` and `library/`. */
export function familiarName(full: string): string {
  if (full.startsWith(`${DEFAULT_REGISTRY}/library/`)) return full.slice(DEFAULT_REGISTRY.length + 9);
  if (full.startsWith(`${DEFAULT_REGISTRY}/`)) return full.slice(DEFAULT_REGISTRY.length + 1);
  return full;
}
