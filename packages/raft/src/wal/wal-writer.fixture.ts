/**
 * Test fixture (not part of the library): opens the WAL in argv[2] and appends synced batches
 * forever, printing `ack <lastIndex>` after each durable save, until killed.
 */
import { Wal } from './wal.js';

const dir = process.argv[2]!;
const segmentSize = Number(process.argv[3] ?? 65536);
const { wal, state } = await Wal.open(dir, { segmentSize });
let next = (state.entries[state.entries.length - 1]?.index ?? 0) + 1;
const term = state.hardState.term + 1;
for (;;) {
  const n = 1 + Math.floor(Math.random() * 20);
  const batch = [];
  for (let i = 0; i < n; i++, next++) {
    batch.push({ term, index: next, type: 'normal' as const, data: Buffer.from(`v${next}`.repeat(1 + (next % 7))) });
  }
  await wal.save({ term, vote: '', commit: next - 1 }, batch, true);
  process.stdout.write(`ack ${next - 1} ${term}\n`);
}
