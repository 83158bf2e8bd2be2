/**
 * Six-frame translation and frame selection exactly as the original's `translate_dna` and
 * `identify_seq` (docs: original pipeline, section 2), on bytes with lookup tables so a
 * core handles millions of reads a minute: no per-codon strings, one pass per frame that
 * stops at the first stop codon (such a frame is discarded anyway).
 */

export type FrameName = 'F1' | 'F2' | 'F3' | 'R1' | 'R2' | 'R3';
const FRAME_NAMES: FrameName[] = ['F1', 'F2', 'F3', 'R1', 'R2', 'R3'];

export interface KeptFrame {
  frame: FrameName;
  /** DNABERT-S input: the original's slice, one base longer than the codons. */
  nucleotide: string;
  /** ESM-2 input: the translation, never empty, never containing '*'. */
  protein: string;
}

/** Receives one kept frame as byte views into the translator's scratch buffers. */
export type FrameVisitor = (frame: FrameName, nucleotide: Uint8Array, protein: Uint8Array) => void;

function latin1(bytes: Uint8Array): string {
  return Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length).toString('latin1');
}

const NOT_ACGT = 4;
const BASE_CODE = new Uint8Array(256).fill(NOT_ACGT);
BASE_CODE[0x41] = 0; // A
BASE_CODE[0x43] = 1; // C
BASE_CODE[0x47] = 2; // G
BASE_CODE[0x54] = 3; // T

// NCBI table 1 in the textbook TCAG order, re-indexed below to our ACGT codes.
const TCAG = 'TCAG';
const TABLE1_TCAG = 'FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG';
const AMINO_ACID = new Uint8Array(64);
for (let i = 0; i < 64; i++) {
  const bases = [TCAG[i >> 4], TCAG[(i >> 2) & 3], TCAG[i & 3]].map((b) => BASE_CODE[b.charCodeAt(0)]);
  AMINO_ACID[(bases[0] << 4) | (bases[1] << 2) | bases[2]] = TABLE1_TCAG.charCodeAt(i);
}
const STOP = '*'.charCodeAt(0);

// Python's str.upper() on ASCII; the reader rejects non-ASCII sequence bytes.
const UPPER = new Uint8Array(256);
for (let b = 0; b < 256; b++) UPPER[b] = b >= 0x61 && b <= 0x7a ? b - 0x20 : b;

// The original's complement maps only A C G T; every other character stays as it is.
const COMPLEMENT = new Uint8Array(256);
for (let b = 0; b < 256; b++) COMPLEMENT[b] = b;
COMPLEMENT[0x41] = 0x54;
COMPLEMENT[0x54] = 0x41;
COMPLEMENT[0x43] = 0x47;
COMPLEMENT[0x47] = 0x43;

/**
 * Translates one chunk at a time, reusing its scratch buffers; not safe to share
 * between concurrent callers (there are none: one translator per prepare run).
 */
export class SixFrameTranslator {
  private upper = Buffer.alloc(0);
  private reverse = Buffer.alloc(0);
  private protein = Buffer.alloc(0);

  /** The kept frames of `chunk` (bytes in any case), in F1 F2 F3 R1 R2 R3 order. */
  translate(chunk: Uint8Array): KeptFrame[] {
    const kept: KeptFrame[] = [];
    this.translateEach(chunk, (frame, nucleotide, protein) => {
      kept.push({ frame, nucleotide: latin1(nucleotide), protein: latin1(protein) });
    });
    return kept;
  }

  /**
   * The same frames as byte views, for writers that copy bytes anyway (frame shards): no
   * strings, so no garbage per frame. The views are valid only during the call to `visit`.
   * Returns the number of kept frames.
   */
  translateEach(chunk: Uint8Array, visit: FrameVisitor): number {
    const length = chunk.length;
    this.ensureCapacity(length);
    const upper = this.upper;
    const reverse = this.reverse;
    for (let i = 0; i < length; i++) {
      const b = UPPER[chunk[i]];
      upper[i] = b;
      reverse[length - 1 - i] = COMPLEMENT[b];
    }
    let kept = 0;
    for (let f = 0; f < 6; f++) {
      const strand = f < 3 ? upper : reverse;
      const offset = f % 3;
      const residues = this.translateFrame(strand, length, offset);
      if (residues <= 0) continue;
      kept++;
      visit(FRAME_NAMES[f], strand.subarray(offset, Math.min(length, offset + 1 + 3 * residues)), this.protein.subarray(0, residues));
    }
    return kept;
  }

  /**
   * Writes the frame's protein into the scratch buffer and returns its length, or -1 at
   * a stop codon. Codons holding any non-ACGT character are dropped without an X.
   */
  private translateFrame(strand: Buffer, length: number, offset: number): number {
    const protein = this.protein;
    let residues = 0;
    for (let i = offset; i + 3 <= length; i += 3) {
      const a = BASE_CODE[strand[i]];
      const b = BASE_CODE[strand[i + 1]];
      const c = BASE_CODE[strand[i + 2]];
      if ((a | b | c) & NOT_ACGT) continue;
      const aa = AMINO_ACID[(a << 4) | (b << 2) | c];
      if (aa === STOP) return -1;
      protein[residues++] = aa;
    }
    return residues;
  }

  private ensureCapacity(length: number): void {
    if (this.upper.length >= length) return;
    this.upper = Buffer.alloc(length);
    this.reverse = Buffer.alloc(length);
    this.protein = Buffer.alloc(Math.ceil(length / 3));
  }
}
