/**
 * The watched output scripts in a compact in-memory index (DESIGN §5: not hex strings): scripts stored
 * back to back in one growing byte array, found through an open-addressing table of int32 slots. The
 * scripts we watch end in a hash (HASH160 or SHA-256), so a few of their bytes are already a good hash.
 * About 30 bytes per P2WPKH script, against ~150 for a Map of hex strings.
 */
import type { ScriptWatch } from './block-walker.js';

const EMPTY = -1;

export class ScriptIndex implements ScriptWatch {
  private data = new Uint8Array(1 << 16);
  private used = 0;
  private offsets = new Int32Array(1024); // entry → offset in data
  private lengths = new Uint8Array(1024);
  private tags = new Int32Array(1024);
  private count = 0;
  /**
   * Two int32 per slot, side by side: the entry (or EMPTY) and the script's full 32-bit hash. Nearly
   * every output of a block is not ours; comparing the stored hash first answers those from this one
   * array (one cache line) without touching the entry arrays or the script bytes, which at 1,000,000
   * scripts are each a cache miss away.
   */
  private slots = new Int32Array(2 * 2048).fill(EMPTY);

  get size(): number {
    return this.count;
  }

  /** Bytes held, for the memory figure in the benchmark. */
  get bytes(): number {
    return this.data.byteLength + this.offsets.byteLength + this.lengths.byteLength + this.tags.byteLength + this.slots.byteLength;
  }

  /** bytes[start, end): the last 4 bytes of a witness program (a hash output), mixed with the length. */
  private static hash(b: Uint8Array, start: number, end: number): number {
    const n = end - start;
    if (n < 4) {
      let h = n;
      for (let i = start; i < end; i++) h = Math.imul(h ^ b[i]!, 0x9e3779b1);
      return h | 0;
    }
    return (b[end - 1]! | (b[end - 2]! << 8) | (b[end - 3]! << 16) | (b[end - 4]! << 24)) ^ Math.imul(n, 0x9e3779b1);
  }

  /** The entry holding bytes[start, end), or -1 - (the free slot where it would go). */
  private find(b: Uint8Array, start: number, end: number): number {
    const slots = this.slots;
    const mask = (slots.length >> 1) - 1;
    const n = end - start;
    const h = ScriptIndex.hash(b, start, end);
    for (let s = h & mask; ; s = (s + 1) & mask) {
      const e = slots[2 * s]!;
      if (e === EMPTY) return -1 - s;
      if (slots[2 * s + 1] === h && this.lengths[e] === n && this.equalAt(this.offsets[e]!, b, start, n)) return e;
    }
  }

  private equalAt(offset: number, b: Uint8Array, start: number, n: number): boolean {
    const d = this.data;
    for (let i = 0; i < n; i++) if (d[offset + i] !== b[start + i]) return false;
    return true;
  }

  /** Adds a script (at most 255 bytes) with a tag; an existing script keeps its first tag. */
  add(script: Uint8Array, tag: number): void {
    if (script.length > 255) throw new RangeError('script longer than 255 bytes');
    if (this.find(script, 0, script.length) >= 0) return;
    if ((this.count + 1) * 2 > this.slots.length >> 1) this.rehash(this.slots.length);
    if (this.count === this.offsets.length) this.growEntries();
    if (this.used + script.length > this.data.length) {
      const bigger = new Uint8Array(Math.max(this.data.length * 2, this.used + script.length));
      bigger.set(this.data.subarray(0, this.used));
      this.data = bigger;
    }
    const e = this.count++;
    this.data.set(script, this.used);
    this.offsets[e] = this.used;
    this.lengths[e] = script.length;
    this.tags[e] = tag;
    this.used += script.length;
    const s = -1 - this.find(script, 0, script.length);
    this.slots[2 * s] = e;
    this.slots[2 * s + 1] = ScriptIndex.hash(script, 0, script.length);
  }

  /** The tag of the script at bytes[start, end), or undefined (what the block walker calls). */
  lookup(bytes: Uint8Array, start: number, end: number): number | undefined {
    const e = this.find(bytes, start, end);
    return e >= 0 ? this.tags[e] : undefined;
  }

  get(script: Uint8Array): number | undefined {
    return this.lookup(script, 0, script.length);
  }

  private growEntries(): void {
    const n = this.offsets.length * 2;
    const offsets = new Int32Array(n);
    offsets.set(this.offsets);
    const lengths = new Uint8Array(n);
    lengths.set(this.lengths);
    const tags = new Int32Array(n);
    tags.set(this.tags);
    this.offsets = offsets;
    this.lengths = lengths;
    this.tags = tags;
  }

  /** Doubles the table: `slotCount` slots become twice as many. */
  private rehash(slotCount: number): void {
    const old = this.slots;
    this.slots = new Int32Array(2 * slotCount).fill(EMPTY);
    const mask = slotCount - 1;
    for (let i = 0; i < old.length; i += 2) {
      const e = old[i]!;
      if (e === EMPTY) continue;
      const h = old[i + 1]!;
      let s = h & mask;
      while (this.slots[2 * s] !== EMPTY) s = (s + 1) & mask;
      this.slots[2 * s] = e;
      this.slots[2 * s + 1] = h;
    }
  }
}
