// A fast, exact BPE model for @huggingface/tokenizers 0.2.0 (`BPE.encode` of one pre-token): integer
// symbols, pair ranks in an open-addressing table, merges in the library's order (lowest rank first,
// then leftmost) by a scan for short chunks or a binary heap for long ones, words cut into chunks at
// boundaries no merge can cross, and a cache of chunk ids.
// Reference: the library's BPE.ts (heap BPE from belladoreai/llama-tokenizer-js), HF tokenizers' BPE model.
import type { BPE } from "@huggingface/tokenizers";

/** SentencePiece's meta-space (`▁`): word starts in Gemma/Llama-style vocabularies, where chunking is tried. */
const META_SPACE = 0x2581;
/** Heap keys are `rank * RANK_SCALE + position`: exact in a double while ranks < 2^21 and positions < 2^32. */
const RANK_SCALE = 2 ** 32;
const MAX_RANK = 2 ** 21;
/** Chunks of at most this many symbols merge by scanning (no heap); longer ones through the heap. */
const SCAN_LIMIT = 48;
const NO_RANK = 0x7fffffff;
/** Symbols are Int32 ids: vocabulary ids, then extra ids for merge strings the vocabulary lacks. */
const MAX_SYMBOLS = 2 ** 30;
/** Chunks longer than this (UTF-16 units) are not cached: they rarely repeat (the library's own bound is 256). */
const MAX_CACHED_CHUNK = 256;
/** Entries per cache generation: two full generations (131k chunks) measured 22 MB of heap. */
const CACHE_GENERATION = 65_536;

/** Scratch arrays start at this many symbols and are given back after a chunk longer than MAX_KEPT_SCRATCH (a multi-MB line without spaces would otherwise pin ~37 bytes per character). */
const INITIAL_SCRATCH = 256;
const MAX_KEPT_SCRATCH = 1 << 16;
/** Bound on the per-character caches (astral symbols, byte-fallback pieces): random text over all of Unicode cannot grow them past a few MB. */
const CHAR_CACHE_LIMIT = 65_536;
/** V8 makes substrings of at least this many UTF-16 units views that keep their whole parent string alive. */
const V8_MIN_SLICE = 13;

/**
 * `s` as a string that owns its characters: a cache key sliced from a document would otherwise keep
 * the document alive (measured: 2,000 cached 20-char slices of 400 kB strings held 548 MB).
 */
function ownCopy(s: string): string {
  return s.length < V8_MIN_SLICE ? s : Buffer.from(s, "utf16le").toString("utf16le");
}

/** A two-generation LRU: hits in the old generation move to the new one; a full new generation retires the old. */
class ChunkCache {
  private hot = new Map<string, readonly number[]>();
  private cold = new Map<string, readonly number[]>();

  get(key: string): readonly number[] | undefined {
    const v = this.hot.get(key);
    if (v !== undefined) return v;
    const old = this.cold.get(key);
    if (old !== undefined) this.put(key, old);
    return old;
  }

  put(key: string, ids: readonly number[]): void {
    this.hot.set(key, ids);
    if (this.hot.size >= CACHE_GENERATION) {
      this.cold = this.hot;
      this.hot = new Map();
    }
  }
}

/**
 * Pair (left symbol, right symbol) → (rank, merged symbol), open addressing with linear probing. One
 * Int32Array of 4-int slots [left, right, rank, merged], so a lookup touches one cache line.
 */
class PairTable {
  readonly slots: Int32Array;
  private readonly mask: number;

  constructor(entries: number) {
    let size = 1024;
    while (size < entries * 2) size *= 2; // load factor ≤ 0.5
    this.slots = new Int32Array(size * 4).fill(-1);
    this.mask = size - 1;
  }

  private home(a: number, b: number): number {
    let h = Math.imul(a ^ Math.imul(b, 0x85ebca6b), 0x9e3779b1);
    h ^= h >>> 15;
    return h & this.mask;
  }

  /** Offset of the pair's slot (rank at +2, merged symbol at +3), or -1. Negative symbols never pair. */
  find(a: number, b: number): number {
    if ((a | b) < 0) return -1;
    const t = this.slots;
    for (let i = this.home(a, b); ; i = (i + 1) & this.mask) {
      const o = i << 2;
      const l = t[o]!;
      if (l === a && t[o + 1] === b) return o;
      if (l === -1) return -1;
    }
  }

  /** Sets (overwrites) a pair: a later duplicate merge wins, as in the library's `new Map(merges…)`. */
  set(a: number, b: number, rank: number, merged: number): void {
    const t = this.slots;
    let i = this.home(a, b);
    while (t[i << 2] !== -1 && !(t[i << 2] === a && t[(i << 2) + 1] === b)) i = (i + 1) & this.mask;
    const o = i << 2;
    t[o] = a;
    t[o + 1] = b;
    t[o + 2] = rank;
    t[o + 3] = merged;
  }
}

/**
 * The library's BPE model, re-implemented on integer ids with identical output. Built from the
 * library's own loaded `BPE` instance (after the Tokenizer added its tokens to `tokens_to_ids`),
 * so vocabulary, merges and flags are read exactly as the library reads them.
 */
export class FastBpe {
  private readonly tokensToIds: Map<string, number>;
  private readonly pairs: PairTable;
  /** Symbol of each BMP code unit (a vocabulary/merge string), or `-1 - unit` when it is in neither. */
  private readonly bmpSymbol = new Int32Array(65_536);
  private readonly astralSymbol = new Map<number, number>();
  /** Symbols at or above `extraBase` name merge strings that own no vocabulary id: output through `extraOut`. */
  private readonly extraBase: number;
  private readonly extraIds = new Map<string, number>();
  private readonly extraOut: Int32Array[] = [];
  /** Strings of `tokens_to_ids` that do not own their id (`vocab[id] !== s`, e.g. an added token reusing an id). */
  private readonly notOwners = new Set<string>();
  private readonly byteIds: Int32Array;
  private readonly byteFallback: boolean;
  private readonly unkId: number | undefined;
  private readonly ignoreMerges: boolean;
  private readonly encoder = new TextEncoder();
  /** `unsafeBefore[u]`: some merge result contains code unit u followed by `▁`, so no chunk boundary there. */
  private readonly unsafeBefore = new Uint8Array(65_536);
  private readonly cache = new ChunkCache();
  private readonly foreignOut = new Map<number, Int32Array>();
  // Scratch for one chunk's BPE (grown on demand).
  private sym = new Int32Array(INITIAL_SCRATCH);
  private next = new Int32Array(INITIAL_SCRATCH);
  private prev = new Int32Array(INITIAL_SCRATCH);
  private dead = new Uint8Array(INITIAL_SCRATCH);
  private rank = new Int32Array(INITIAL_SCRATCH);
  private slot = new Int32Array(INITIAL_SCRATCH);
  private heap = new Float64Array(INITIAL_SCRATCH * 2);

  private constructor(model: BPE) {
    this.tokensToIds = model.tokens_to_ids;
    for (const [text, id] of this.tokensToIds) {
      if (!(Number.isInteger(id) && id >= 0 && model.vocab[id] === text)) this.notOwners.add(text);
    }
    this.extraBase = model.vocab.length;
    this.byteFallback = model.byte_fallback;
    this.unkId = model.unk_token == null ? undefined : model.unk_token_id;
    this.ignoreMerges = model.ignore_merges;
    this.pairs = new PairTable(model.merges.length);
    (model.merges as unknown[]).forEach((m, rank) => {
      // The library looks pairs up by JSON.stringify([a, b]) of two strings: any other entry never
      // matches, but still takes its rank (index) from the full list.
      if (!Array.isArray(m) || m.length !== 2 || typeof m[0] !== "string" || typeof m[1] !== "string") return;
      const [a, b] = m as [string, string];
      const merged = a + b;
      this.pairs.set(this.symbolOf(a, true), this.symbolOf(b, true), rank, this.symbolOf(merged, true));
      for (let k = merged.indexOf("▁", 1); k !== -1; k = merged.indexOf("▁", k + 1)) {
        this.unsafeBefore[merged.charCodeAt(k - 1)] = 1;
      }
    });
    this.byteIds = new Int32Array(256);
    for (let b = 0; b < 256; b++) {
      this.byteIds[b] = this.tokensToIds.get(`<0x${b.toString(16).toUpperCase().padStart(2, "0")}>`) ?? -1;
    }
    this.extraOut = [...this.extraIds.keys()].map((s) => this.fallback(s));
    for (let u = 0; u < 65_536; u++) {
      const s = this.symbolOf(String.fromCharCode(u), false);
      this.bmpSymbol[u] = s >= 0 ? s : -1 - u;
    }
  }

  /**
   * A FastBpe for the library's loaded BPE model, or the reason it cannot match the library exactly
   * (then use the library). Output ids are `tokens_to_ids` values: the caller checks that the
   * Tokenizer maps those strings to the same ids.
   */
  static fromLibrary(model: BPE): FastBpe | string {
    if (model.end_of_word_suffix || model.continuing_subword_suffix) return "BPE with end_of_word_suffix/continuing_subword_suffix";
    if (model.vocab.length >= MAX_SYMBOLS) return `vocabulary of ${model.vocab.length} entries`;
    if (model.unk_token != null && (model.unk_token_id === undefined || model.tokens_to_ids.get(model.unk_token) !== model.unk_token_id)) {
      return `unk_token ${JSON.stringify(model.unk_token)} has no single id in the vocabulary`;
    }
    if (model.merges.length >= MAX_RANK) return `${model.merges.length} merges`;
    return new FastBpe(model);
  }

  /**
   * Appends the ids of one pre-token, exactly as the library's `BPE.encode([word])` followed by its
   * token → id mapping: BPE, then byte fallback (`<0xNN>`) or unk for pieces outside the vocabulary.
   */
  encodeWord(word: string, out: number[]): void {
    if (word.length === 0) return;
    if (this.ignoreMerges) {
      const id = this.tokensToIds.get(word);
      if (id !== undefined) {
        out.push(id);
        return;
      }
    }
    // No merge result contains "x▁" for x outside `unsafeBefore`, so no merge can join the symbols
    // either side of such a boundary: BPE of the whole word = concatenated BPE of the chunks.
    let start = 0;
    for (let p = word.indexOf("▁", 1); p !== -1; p = word.indexOf("▁", p + 1)) {
      const before = word.charCodeAt(p - 1);
      if (before === META_SPACE || this.unsafeBefore[before] === 1) continue;
      this.encodeChunk(word, start, p, out);
      start = p;
    }
    this.encodeChunk(word, start, word.length, out);
  }

  private encodeChunk(word: string, start: number, end: number, out: number[]): void {
    const cacheable = end - start <= MAX_CACHED_CHUNK;
    const key = cacheable ? (start === 0 && end === word.length ? word : word.slice(start, end)) : "";
    if (cacheable) {
      const hit = this.cache.get(key);
      if (hit !== undefined) {
        for (let i = 0; i < hit.length; i++) out.push(hit[i]!);
        return;
      }
    }
    const from = out.length;
    this.bpe(word, start, end, out);
    if (cacheable) this.cache.put(ownCopy(key), out.slice(from));
  }

  /** BPE over word[start, end): repeatedly merge the adjacent pair of lowest (rank, position). */
  private bpe(word: string, start: number, end: number, out: number[]): void {
    this.reserve(end - start);
    const sym = this.sym;
    let n = 0;
    for (let i = start; i < end; n++) {
      const c = word.charCodeAt(i);
      const d = i + 1 < end ? word.charCodeAt(i + 1) : 0;
      if (c >= 0xd800 && c < 0xdc00 && d >= 0xdc00 && d < 0xe000) {
        sym[n] = this.astral(((c - 0xd800) << 10) + (d - 0xdc00) + 0x10000);
        i += 2;
      } else {
        sym[n] = this.bmpSymbol[c]!;
        i += 1;
      }
    }
    if (n <= SCAN_LIMIT) {
      n = this.mergeByScan(n);
      for (let i = 0; i < n; i++) this.emit(sym[i]!, out);
    } else {
      for (let i = this.mergeByHeap(n); i >= 0; i = this.next[i]!) this.emit(sym[i]!, out);
    }
    if (this.sym.length > MAX_KEPT_SCRATCH) this.reserve(0, true);
  }

  /**
   * Merges sym[0, n) in place by scanning for the lowest rank (leftmost on ties): O(n²) compares but
   * no heap, the faster way for word-sized chunks. Returns the final number of symbols.
   */
  private mergeByScan(n: number): number {
    const { sym, rank, slot } = this;
    const t = this.pairs.slots;
    for (let i = 0; i + 1 < n; i++) {
      const o = this.pairs.find(sym[i]!, sym[i + 1]!);
      slot[i] = o;
      rank[i] = o < 0 ? NO_RANK : t[o + 2]!;
    }
    while (n > 1) {
      let best = NO_RANK;
      let at = -1;
      for (let i = 0; i + 1 < n; i++) {
        if (rank[i]! < best) {
          best = rank[i]!;
          at = i;
        }
      }
      if (at < 0) break;
      sym[at] = t[slot[at]! + 3]!;
      // Drop symbol at+1; pair i+1 becomes pair i for everything after it.
      for (let j = at + 1; j + 1 < n; j++) {
        sym[j] = sym[j + 1]!;
        slot[j] = slot[j + 1]!;
        rank[j] = rank[j + 1]!;
      }
      n--;
      for (let i = Math.max(at - 1, 0); i <= at && i + 1 < n; i++) {
        const o = this.pairs.find(sym[i]!, sym[i + 1]!);
        slot[i] = o;
        rank[i] = o < 0 ? NO_RANK : t[o + 2]!;
      }
    }
    return n;
  }

  /**
   * Merges sym[0, n) over a linked list with a binary heap of (rank, position) keys, checking each
   * popped pair is still current (lazy deletion). Returns the first live position (follow `next`).
   */
  private mergeByHeap(n: number): number {
    const { sym, next, prev, dead } = this;
    const pairs = this.pairs;
    const t = pairs.slots;
    let size = 0;
    for (let i = 0; i < n; i++) {
      next[i] = i + 1 < n ? i + 1 : -1;
      prev[i] = i - 1;
      dead[i] = 0;
      if (i + 1 < n) {
        const o = pairs.find(sym[i]!, sym[i + 1]!);
        if (o >= 0) size = this.push(size, t[o + 2]! * RANK_SCALE + i);
      }
    }
    while (size > 0) {
      const key = this.heap[0]!;
      size = this.pop(size);
      const rank = Math.floor(key / RANK_SCALE);
      const pos = key - rank * RANK_SCALE;
      const nx = next[pos]!;
      if (dead[pos] === 1 || nx < 0) continue;
      const o = pairs.find(sym[pos]!, sym[nx]!);
      if (o < 0 || t[o + 2] !== rank) continue; // stale: the pair here changed since the push
      sym[pos] = t[o + 3]!;
      dead[nx] = 1;
      const nn = next[nx]!;
      next[pos] = nn;
      if (nn >= 0) prev[nn] = pos;
      const pp = prev[pos]!;
      if (pp >= 0) {
        const q = pairs.find(sym[pp]!, sym[pos]!);
        if (q >= 0) size = this.push(size, t[q + 2]! * RANK_SCALE + pp);
      }
      if (nn >= 0) {
        const q = pairs.find(sym[pos]!, sym[nn]!);
        if (q >= 0) size = this.push(size, t[q + 2]! * RANK_SCALE + pos);
      }
    }
    return n > 0 ? 0 : -1;
  }

  private emit(s: number, out: number[]): void {
    if (s >= 0 && s < this.extraBase) {
      out.push(s);
      return;
    }
    const ids = s >= this.extraBase ? this.extraOut[s - this.extraBase]! : this.foreign(-1 - s);
    for (let i = 0; i < ids.length; i++) out.push(ids[i]!);
  }

  /** Output of a character that no merge or vocabulary entry names. */
  private foreign(codePoint: number): Int32Array {
    let ids = this.foreignOut.get(codePoint);
    if (ids === undefined) {
      ids = this.fallback(String.fromCodePoint(codePoint));
      if (this.foreignOut.size >= CHAR_CACHE_LIMIT) this.foreignOut.clear();
      this.foreignOut.set(codePoint, ids);
    }
    return ids;
  }

  private astral(codePoint: number): number {
    let s = this.astralSymbol.get(codePoint);
    if (s === undefined) {
      s = this.symbolOf(String.fromCodePoint(codePoint), false);
      if (s < 0) s = -1 - codePoint;
      if (this.astralSymbol.size >= CHAR_CACHE_LIMIT) this.astralSymbol.clear();
      this.astralSymbol.set(codePoint, s);
    }
    return s;
  }

  /** The library's handling of a BPE piece: its id when in the vocabulary, else its UTF-8 bytes as <0xNN>, else unk, else nothing. */
  private fallback(piece: string): Int32Array {
    const id = this.tokensToIds.get(piece);
    if (id !== undefined) return Int32Array.of(id);
    if (this.byteFallback) {
      const bytes = this.encoder.encode(piece);
      const ids = Int32Array.from(bytes, (b) => this.byteIds[b]!);
      if (ids.every((i) => i >= 0)) return ids;
    }
    return this.unkId === undefined ? new Int32Array(0) : Int32Array.of(this.unkId);
  }

  /**
   * A symbol for a string: its vocabulary id when it owns that id (not in `notOwners`), else an extra
   * id (created only while reading merges), else -1. Strings never share a symbol.
   */
  private symbolOf(s: string, create: boolean): number {
    const id = this.tokensToIds.get(s);
    if (id !== undefined && (this.notOwners.size === 0 || !this.notOwners.has(s))) return id;
    let extra = this.extraIds.get(s);
    if (extra === undefined && create) {
      extra = this.extraBase + this.extraIds.size;
      this.extraIds.set(s, extra);
    }
    return extra ?? -1;
  }

  /** Scratch arrays for n symbols (grown by doubling), or back to the initial size with `shrink`. */
  private reserve(n: number, shrink = false): void {
    if (n <= this.sym.length && !shrink) return;
    let size = INITIAL_SCRATCH;
    while (size < n) size *= 2;
    this.sym = new Int32Array(size);
    this.next = new Int32Array(size);
    this.prev = new Int32Array(size);
    this.dead = new Uint8Array(size);
    this.rank = new Int32Array(size);
    this.slot = new Int32Array(size);
    this.heap = new Float64Array(size * 2);
  }

  /** Binary min-heap push; returns the new size. */
  private push(size: number, key: number): number {
    if (size === this.heap.length) {
      const grown = new Float64Array(size * 2);
      grown.set(this.heap);
      this.heap = grown;
    }
    const heap = this.heap;
    let i = size;
    while (i > 0) {
      const parent = (i - 1) >> 1;
      if (heap[parent]! <= key) break;
      heap[i] = heap[parent]!;
      i = parent;
    }
    heap[i] = key;
    return size + 1;
  }

  /** Removes the minimum (heap[0], read by the caller first); returns the new size. */
  private pop(size: number): number {
    const heap = this.heap;
    const last = heap[--size]!;
    let i = 0;
    for (;;) {
      let child = 2 * i + 1;
      if (child >= size) break;
      if (child + 1 < size && heap[child + 1]! < heap[child]!) child++;
      if (heap[child]! >= last) break;
      heap[i] = heap[child]!;
      i = child;
    }
    heap[i] = last;
    return size;
  }
}
