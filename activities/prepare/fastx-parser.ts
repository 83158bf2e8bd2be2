/**
 * Incremental FASTA / FASTQ parser: bytes go in as they arrive, complete records come
 * out. It keeps only the record being read (plus one partial line), so memory follows the
 * longest record, not the file. Parsing follows Biopython's `SeqIO.parse(..., "fasta")`,
 * which the original used: id = first whitespace-separated word of the header, sequence
 * = all lines up to the next header with spaces, tabs and line ends removed, case kept.
 */
import { ReadInputError } from './errors';

export interface SequenceRecord {
  /** 1-based position of the record in the input, counting every record. */
  number: number;
  /** First word of the header, as Biopython's `record.id`. */
  id: string;
  /** The header after '>' or '@', trailing whitespace removed. */
  description: string;
  /** Residues as in the file (case kept), whitespace removed. */
  sequence: Uint8Array;
}

export type SequenceFormat = 'fasta' | 'fastq';

// Byte classes for the per-byte loop; a table lookup beats chains of comparisons.
const KEEP = 0;
const SKIP = 1; // whitespace Biopython strips from sequence lines
const BINARY = 2; // control bytes and non-ASCII: the file is not text
const PROTEIN_ONLY = 3; // letters no nucleotide or IUPAC code uses
const BYTE_CLASS = new Uint8Array(256).fill(BINARY);
for (let b = 0x21; b < 0x7f; b++) BYTE_CLASS[b] = KEEP;
for (const b of [0x20, 0x09, 0x0d, 0x0a]) BYTE_CLASS[b] = SKIP;
for (const c of 'EFIJLOPQZefijlopqz') BYTE_CLASS[c.charCodeAt(0)] = PROTEIN_ONLY;

/** Share of protein-only letters above which a record is taken for protein, not DNA. */
const PROTEIN_LETTER_SHARE = 0.1;
/** Records shorter than this are too short to judge by letter frequencies. */
const PROTEIN_CHECK_MIN_LENGTH = 30;

// Python's str.isspace() set, which `str.split()` (hence Biopython's id) splits on.
const PY_WHITESPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

const GT = 0x3e; // '>'
const AT = 0x40; // '@'
const PLUS = 0x2b; // '+'
const LF = 0x0a;
const CR = 0x0d;

const enum State {
  Start,
  FastaSequence,
  FastqHeader,
  FastqSequence,
  FastqQuality,
}

const utf8 = new TextDecoder('utf-8');

export class FastxParser {
  private state = State.Start;
  private format: SequenceFormat | undefined;
  private partialLine: Uint8Array = new Uint8Array(0);
  private recordNumber = 0;
  private header = '';
  private seq = new Uint8Array(1 << 12);
  private seqLength = 0;
  private proteinLetters = 0;
  private qualityLength = 0;
  private out: SequenceRecord[] = [];

  constructor(private readonly file: string) {}

  get detectedFormat(): SequenceFormat | undefined {
    return this.format;
  }

  /** Feeds the next bytes; returns the records completed by them. */
  push(chunk: Uint8Array): SequenceRecord[] {
    let lineStart = 0;
    if (this.partialLine.length > 0) {
      const firstEnd = chunk.indexOf(LF);
      if (firstEnd < 0) {
        this.partialLine = concat(this.partialLine, chunk);
        return this.drain();
      }
      this.line(concat(this.partialLine, chunk.subarray(0, firstEnd)));
      this.partialLine = new Uint8Array(0);
      lineStart = firstEnd + 1;
    }
    for (;;) {
      const end = chunk.indexOf(LF, lineStart);
      if (end < 0) break;
      this.line(chunk.subarray(lineStart, end));
      lineStart = end + 1;
    }
    // Copy: the caller may reuse its buffer after push returns.
    if (lineStart < chunk.length) this.partialLine = chunk.slice(lineStart);
    return this.drain();
  }

  /** Ends the input; returns the last record and checks the file was not cut short. */
  finish(): SequenceRecord[] {
    if (this.partialLine.length > 0) {
      this.line(this.partialLine);
      this.partialLine = new Uint8Array(0);
    }
    switch (this.state) {
      case State.Start:
        throw new ReadInputError(this.file, 'no records: the file holds only blank lines');
      case State.FastaSequence:
        this.emit();
        break;
      case State.FastqSequence:
        this.fail('FASTQ record has no "+" line (file truncated?)');
        break;
      case State.FastqQuality:
        // A complete record would have moved on to FastqHeader.
        this.fail(`quality is shorter than the sequence (${this.qualityLength} < ${this.seqLength}; file truncated?)`);
      case State.FastqHeader:
        break;
    }
    return this.drain();
  }

  private drain(): SequenceRecord[] {
    const records = this.out;
    this.out = [];
    return records;
  }

  private line(bytes: Uint8Array): void {
    switch (this.state) {
      case State.Start:
        this.startLine(bytes);
        return;
      case State.FastaSequence:
        if (bytes[0] === GT) {
          this.emit();
          this.beginRecord(bytes);
        } else {
          this.appendSequence(bytes);
        }
        return;
      case State.FastqHeader:
        if (isBlank(bytes)) return;
        if (bytes[0] !== AT) this.failAfterRecord(`expected a FASTQ header starting with "@", found "${preview(bytes)}"`);
        this.beginRecord(bytes);
        this.state = State.FastqSequence;
        return;
      case State.FastqSequence:
        if (bytes[0] === PLUS) {
          this.qualityLength = 0;
          if (this.seqLength === 0) {
            // An empty read's quality line is empty too; the header state skips it as blank.
            this.emit();
            this.state = State.FastqHeader;
          } else {
            this.state = State.FastqQuality;
          }
        } else {
          this.appendSequence(bytes);
        }
        return;
      case State.FastqQuality:
        this.qualityLength += trimmedLength(bytes);
        if (this.qualityLength > this.seqLength) {
          this.fail(`quality length ${this.qualityLength} differs from sequence length ${this.seqLength}`);
        }
        if (this.qualityLength === this.seqLength) {
          this.state = State.FastqHeader;
          this.emit();
        }
        return;
    }
  }

  private startLine(bytes: Uint8Array): void {
    if (isBlank(bytes)) return;
    if (looksBinary(bytes)) throw new ReadInputError(this.file, 'binary data: not a FASTA/FASTQ text file (or an unsupported compression)');
    if (bytes[0] === GT) {
      this.format = 'fasta';
      this.beginRecord(bytes);
      this.state = State.FastaSequence;
    } else if (bytes[0] === AT) {
      this.format = 'fastq';
      this.beginRecord(bytes);
      this.state = State.FastqSequence;
    } else {
      throw new ReadInputError(this.file, `not FASTA or FASTQ: the first line should start with ">" or "@", found "${preview(bytes)}"`);
    }
  }

  private beginRecord(headerLine: Uint8Array): void {
    this.recordNumber += 1;
    let end = headerLine.length;
    if (end > 0 && headerLine[end - 1] === CR) end -= 1;
    const header = headerLine.subarray(1, end);
    for (const b of header) {
      if (b < 0x20 && b !== 0x09) {
        throw new ReadInputError(this.file, 'binary data in the header line', { number: this.recordNumber, id: '' });
      }
    }
    this.header = utf8.decode(header).replace(/\s+$/u, '');
    this.seqLength = 0;
    this.proteinLetters = 0;
  }

  private appendSequence(bytes: Uint8Array): void {
    const needed = this.seqLength + bytes.length;
    if (needed > this.seq.length) {
      // Doubling keeps appends amortised O(1) for multi-megabase records.
      const grown = new Uint8Array(Math.max(needed, this.seq.length * 2));
      grown.set(this.seq.subarray(0, this.seqLength));
      this.seq = grown;
    }
    const seq = this.seq;
    let n = this.seqLength;
    for (let i = 0; i < bytes.length; i++) {
      const b = bytes[i];
      const cls = BYTE_CLASS[b];
      if (cls === KEEP) {
        seq[n++] = b;
      } else if (cls === PROTEIN_ONLY) {
        seq[n++] = b;
        this.proteinLetters++;
      } else if (cls === BINARY) {
        this.fail(`binary data in the sequence (byte 0x${b.toString(16).padStart(2, '0')})`);
      }
    }
    this.seqLength = n;
  }

  private emit(): void {
    const id = this.header.split(PY_WHITESPACE, 1)[0] ?? '';
    if (this.seqLength >= PROTEIN_CHECK_MIN_LENGTH && this.proteinLetters > PROTEIN_LETTER_SHARE * this.seqLength) {
      this.fail(
        `looks like protein, not DNA: ${this.proteinLetters} of ${this.seqLength} letters (E F I L P Q ...) are not nucleotide or IUPAC codes`,
      );
    }
    this.out.push({
      number: this.recordNumber,
      id,
      description: this.header,
      sequence: this.seq.slice(0, this.seqLength),
    });
  }

  private fail(problem: string): never {
    const id = this.header.split(PY_WHITESPACE, 1)[0] ?? '';
    throw new ReadInputError(this.file, problem, { number: this.recordNumber, id });
  }

  /** For problems found after a record ended: blame the following (unnamed) record. */
  private failAfterRecord(problem: string): never {
    throw new ReadInputError(this.file, problem, { number: this.recordNumber + 1, id: '' });
  }
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function isBlank(bytes: Uint8Array): boolean {
  for (const b of bytes) if (BYTE_CLASS[b] !== SKIP) return false;
  return true;
}

function trimmedLength(bytes: Uint8Array): number {
  let end = bytes.length;
  while (end > 0 && BYTE_CLASS[bytes[end - 1]] === SKIP) end--;
  return end;
}

function looksBinary(bytes: Uint8Array): boolean {
  const n = Math.min(bytes.length, 512);
  for (let i = 0; i < n; i++) {
    const b = bytes[i];
    if (b === 0 || (b < 0x20 && b !== 0x09 && b !== 0x0d)) return true;
  }
  return false;
}

function preview(bytes: Uint8Array): string {
  const text = Buffer.from(bytes.subarray(0, 40)).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
  return bytes.length > 40 ? `${text}...` : text;
}
