/**
 * The role manager (leader only): a manager demoted in its Node spec leaves Raft here, once its
 * role has changed (as SwarmKit's role manager). When the demoted manager is the leader itself,
 * it hands leadership to another reachable manager first; the new leader's role manager then
 * removes it. A removal refused for quorum is retried later.
 */
import { errorMessage } from '@shoal/common';
import { checkQuorumWithout, type ManagerContext, membership, type StoredNode, updateNode } from './context.js';

export class RoleManager {
  private running = false;
  private generation = 0;
  private busy: Promise<void> = Promise.resolve();
  private again = false;
  private retry: { cancel(): void } | undefined;
  private watchAbort: AbortController | undefined;

  constructor(
    private readonly ctx: ManagerContext,
    private readonly retryMs = 1000,
  ) {}

  start(): void {
    if (this.running) return;
    this.running = true;
    const gen = ++this.generation;
    const ac = new AbortController();
    this.watchAbort = ac;
    void this.watch(ac.signal, gen);
    this.kick();
  }

  stop(): void {
    this.running = false;
    this.generation++;
    this.watchAbort?.abort();
    this.retry?.cancel();
    this.retry = undefined;
  }

  /** Resolves once the reconciliations queued so far are done (for tests). */
  idle(): Promise<void> {
    return this.busy;
  }

  private async watch(signal: AbortSignal, gen: number): Promise<void> {
    try {
      for await (const _c of this.ctx.store.watch({ fromRevision: this.ctx.store.revision, kinds: ['node'], signal })) {
        if (gen !== this.generation) return;
        this.kick();
      }
    } catch (err) {
      if (this.running) this.ctx.logger.warn({ err: errorMessage(err) }, 'role manager watch ended');
    }
  }

  /** Runs a reconciliation after the current one (coalescing bursts). */
  kick(): void {
    if (this.again) return;
    this.again = true;
    const gen = this.generation;
    this.busy = this.busy.then(async () => {
      this.again = false;
      if (!this.running || gen !== this.generation) return;
      try {
        await this.reconcile();
      } catch (err) {
        this.ctx.logger.warn({ err: errorMessage(err) }, 'role reconciliation failed; retrying');
        this.retry?.cancel();
        this.retry = this.ctx.clock.setTimeout(() => this.kick(), this.retryMs);
      }
    });
  }

  private async reconcile(): Promise<void> {
    const m = membership(this.ctx);
    for (const id of m.voters) {
      const n = this.ctx.store.get<StoredNode>('node', id);
      if (n === undefined || n.Spec?.Role !== 'worker') continue;
      checkQuorumWithout(this.ctx, id, 'demote');
      if (id === this.ctx.raft.id) {
        const other = m.voters.find((v) => v !== id && m.reachable(v) === true);
        if (other === undefined) throw new Error(`no reachable manager to hand leadership to before demoting ${id}`);
        this.ctx.logger.info({ to: other }, 'demoted leader hands over leadership');
        await this.ctx.raft.transferLeadership(other);
        return;
      }
      await this.ctx.raft.removeMember(id);
      await updateNode(this.ctx, id, (node) => {
        const { ManagerStatus: _ms, ...rest } = node;
        return rest;
      });
      this.ctx.logger.info({ nodeId: id }, 'demoted manager removed from raft');
    }
  }
}
