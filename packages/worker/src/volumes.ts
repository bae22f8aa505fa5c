/**
 * The seam for named volumes (`--mount type=volume,source=NAME`). The worker asks a
 * VolumeProvider for a host directory holding the volume (creating it on first use with the
 * mount's labels and driver options) and bind-mounts that directory. A node without a provider
 * fails such tasks with WORKER_VOLUME_UNSUPPORTED. Anonymous volumes (no source) go to the
 * provider too, with name ''.
 */
import type { Mount } from '@shoal/api';

export interface VolumeProvider {
  /**
   * The host path of volume `name`, created if missing (labels and driver options from the
   * mount's VolumeOptions). `name` is '' for an anonymous volume: the provider makes one up.
   */
  mountpoint(name: string, mount: Mount, owner: { taskId: string; containerName: string }): Promise<string>;
}
