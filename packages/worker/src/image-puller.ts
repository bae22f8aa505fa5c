/**
 * The worker's image pulls. Swarm mode pulls on every task start (with the service's auth); done
 * literally, 25 tasks of one service landing on a node make 25 registry round trips and 25
 * image-index writes for one image. Here:
 * - a reference by digest that the node has is used as it is (moby's swarm executor does the same:
 *   its content cannot have changed);
 * - concurrent pulls of one reference with one auth share a single pull;
 * - a pull that succeeded less than `freshMs` ago (default 10 s) counts as done for the same
 *   reference and auth, as long as the image is still in the local store. So a burst of tasks
 *   costs one pull, and a tag moved in the registry is seen by tasks that start later.
 * A failed pull is not remembered: the next task tries again. A failed pull of an image the node
 * already has is logged and the local image is used, as Docker does.
 */
import { errorMessage, type Logger } from '@shoal/common';
import { ImageNotFoundError, ImageService, parseReference, type Engine } from '@shoal/engine';
import { decodeRegistryAuth } from './registry-auth.js';

export interface ImagePullerOptions {
  engine: Engine;
  logger: Logger;
  /** Registries this node may reach over plain HTTP (the daemon's `--insecure-registry`). */
  insecureRegistries?: () => string[];
  /** How long a successful pull of a reference is reused (ms, default 10 000; 0: never). */
  freshMs?: number;
  /** The clock (tests). */
  now?: () => number;
}

export const DEFAULT_PULL_FRESH_MS = 10_000;

export class ImagePuller {
  private readonly inFlight = new Map<string, Promise<void>>();
  /** Key -> when its last successful pull ended. */
  private readonly pulledAt = new Map<string, number>();
  private readonly freshMs: number;
  private readonly now: () => number;
  /** How many pulls actually went to a registry (for tests and logs). */
  registryPulls = 0;

  constructor(private readonly opts: ImagePullerOptions) {
    this.freshMs = opts.freshMs ?? DEFAULT_PULL_FRESH_MS;
    this.now = opts.now ?? Date.now;
  }

  /** Resolves once `image` is in the local store (pulled now, shortly before, or by digest already). */
  async pull(image: string, registryAuth: string, signal: AbortSignal): Promise<void> {
    signal.throwIfAborted();
    if (parseReference(image).digest !== undefined && (await this.present(image))) return;
    const key = `${image}\0${registryAuth}`;
    const at = this.pulledAt.get(key);
    if (at !== undefined && this.now() - at < this.freshMs && (await this.present(image))) return;
    let shared = this.inFlight.get(key);
    if (!shared) {
      shared = this.pullOnce(image, registryAuth).finally(() => this.inFlight.delete(key));
      this.inFlight.set(key, shared);
      shared.then(
        () => this.pulledAt.set(key, this.now()),
        () => this.pulledAt.delete(key),
      );
    }
    // The shared pull is not aborted by one waiter; a waiter that gives up just stops waiting.
    await abortable(shared, signal);
  }

  private async present(image: string): Promise<boolean> {
    try {
      await this.opts.engine.images().resolve(image);
      return true;
    } catch (err) {
      if (err instanceof ImageNotFoundError) return false;
      throw err;
    }
  }

  private async pullOnce(image: string, registryAuth: string): Promise<void> {
    const engine = this.opts.engine;
    const log = this.opts.logger;
    const creds = decodeRegistryAuth(registryAuth);
    const local = engine.localImages();
    const service = creds
      ? new ImageService({
          root: local.root,
          logger: log,
          registry: { credentials: { [parseReference(image).registry]: creds } },
        })
      : local;
    this.registryPulls++;
    try {
      await service.pull(image, { insecureRegistries: this.opts.insecureRegistries?.() ?? [] });
    } catch (err) {
      if (!(await this.present(image))) throw err;
      log.warn({ image, err: errorMessage(err) }, 'pull failed: using the image the node has');
    }
  }
}

/** `p`, or the abort reason of `signal` if that comes first. */
function abortable<T>(p: Promise<T>, signal: AbortSignal): Promise<T> {
  signal.throwIfAborted();
  return new Promise<T>((resolve, reject) => {
    const onAbort = (): void => reject(signal.reason as Error);
    signal.addEventListener('abort', onAbort, { once: true });
    p.then(resolve, reject).finally(() => signal.removeEventListener('abort', onAbort));
  });
}
