/**
 * Incremental FASTA / FASTQ parser: bytes go in as they arrive, complete records come
 * out. It keeps only the record being read (plus one partial line), so memory follows the
 * longest record, not the file. Parsing follows Biopython's `SeqIO.parse(..., "fasta")`,
 * which the original used: id = first whitespace-separated word of the header, sequence
 * = all lines up to the next header with spaces, tabs and line ends removed, case kept.
 * Unlike Biopython, a sequence may hold only nucleotide letters (IUPAC codes incl. U and N,
 * and the gaps - and .; the original drops codons holding any but A C G T): anything else,
 * such as GenBank-style position numbers, would silently become part of the read. A UTF-8
 * byte-order mark at the start of the file (Windows editors write one) is skipped.
 *
 * Hot path: a file of short reads is millions of tiny records, so lines are handled as
 * (buffer, start, end) triples without views, sequences are copied straight into shared
 * slabs, and ids are cut from the header bytes without decoding whole headers.
 */
import { ReadInputError } from './errors';

export interface SequenceRecord {
  /** 1-based position of the record in the input, counting every record. */
  number: number;
  /** First word of the header, as Biopython's `record.id`. */
  id: string;
  /** Residues as in the file (case kept), whitespace removed. A view into a shared slab. */
  sequence: Uint8Array;
}

// Byte classes for the per-byte loop; a table lookup beats chains of comparisons.
const KEEP = 0;
const SKIP = 1; // whitespace Biopython strips from sequence lines
const BINARY = 2; // control bytes and non-ASCII: the file is not text
const PROTEIN_ONLY = 3; // letters no nucleotide or IUPAC code uses (also not allowed, but counted to tell a protein file)
const NOT_A_BASE = 4; // other printable characters: digits, X, punctuation
/** What a sequence may hold: IUPAC nucleotide codes (with U and N) and the gaps - and . */
const SEQUENCE_ALPHABET = 'ACGTURYSWKMBDHVN-.';
const BYTE_CLASS = new Uint8Array(256).fill(BINARY);
for (let b = 0x21; b < 0x7f; b++) BYTE_CLASS[b] = NOT_A_BASE;
for (const c of SEQUENCE_ALPHABET + SEQUENCE_ALPHABET.toLowerCase()) BYTE_CLASS[c.charCodeAt(0)] = KEEP;
for (const b of [0x20, 0x09, 0x0d, 0x0a]) BYTE_CLASS[b] = SKIP;
for (const c of 'EFIJLOPQZefijlopqz') BYTE_CLASS[c.charCodeAt(0)] = PROTEIN_ONLY;

const UTF8_BOM = [0xef, 0xbb, 0xbf];

// ASCII bytes Python's str.split() treats as whitespace (\t \n \v \f \r, 0x1c-0x1f, space).
const ASCII_SPACE = new Uint8Array(256);
for (const b of [0x09, 0x0a, 0x0b, 0x0c, 0x0d, 0x1c, 0x1d, 0x1e, 0x1f, 0x20]) ASCII_SPACE[b] = 1;
// The full str.isspace() set, for headers with non-ASCII text.
const PY_WHITESPACE = /[\t\n\v\f\r \x1c-\x1f\x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/;

/** Share of protein-only letters above which a record is taken for protein, not DNA. */
const PROTEIN_LETTER_SHARE = 0.1;
/** Records shorter than this are too short to judge by letter frequencies. */
const PROTEIN_CHECK_MIN_LENGTH = 30;

const SLAB_BYTES = 1 << 20;

const GT = 0x3e; // '>'
const AT = 0x40; // '@'
const PLUS = 0x2b; // '+'
const LF = 0x0a;

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
  private partialLine: Uint8Array = new Uint8Array(0);
  private recordNumber = 0;
  private id = '';
  // The record being read occupies slab[seqStart, seqStart + seqLength).
  private slab = new Uint8Array(SLAB_BYTES);
  private seqStart = 0;
  private seqLength = 0;
  private proteinLetters = 0;
  // The first character of the record being read that is not in SEQUENCE_ALPHABET (-1: none).
  private notABase = -1;
  private notABaseAt = 0;
  private qualityLength = 0;
  private atFileStart = true;
  private out: SequenceRecord[] = [];

  constructor(private readonly file: string) {}

  /** Feeds the next bytes; returns the records completed by them. */
  push(chunk: Uint8Array): SequenceRecord[] {
    let lineStart = 0;
    if (this.partialLine.length > 0) {
      const firstEnd = chunk.indexOf(LF);
      if (firstEnd < 0) {
        this.partialLine = concat(this.partialLine, chunk);
        return this.drain();
      }
      const joined = concat(this.partialLine, chunk.subarray(0, firstEnd));
      this.partialLine = new Uint8Array(0);
      this.line(joined, 0, joined.length);
      lineStart = firstEnd + 1;
    }
    for (;;) {
      const end = chunk.indexOf(LF, lineStart);
      if (end < 0) break;
      this.line(chunk, lineStart, end);
      lineStart = end + 1;
    }
    // Copy: the caller may reuse its buffer after push returns.
    if (lineStart < chunk.length) this.partialLine = chunk.slice(lineStart);
    return this.drain();
  }

  /** Ends the input; returns the last record and checks the file was not cut short. */
  finish(): SequenceRecord[] {
    if (this.partialLine.length > 0) {
      const last = this.partialLine;
      this.partialLine = new Uint8Array(0);
      this.line(last, 0, last.length);
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
        break;
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

  private line(buf: Uint8Array, start: number, end: number): void {
    switch (this.state) {
      case State.FastaSequence:
        if (buf[start] === GT) {
          this.emit();
          this.beginRecord(buf, start, end);
        } else {
          this.appendSequence(buf, start, end);
        }
        return;
      case State.FastqSequence:
        if (buf[start] === PLUS) {
          this.qualityLength = 0;
          if (this.seqLength === 0) {
            // An empty read's quality line is empty too; the header state skips it as blank.
            this.emit();
            this.state = State.FastqHeader;
          } else {
            this.state = State.FastqQuality;
          }
        } else {
          this.appendSequence(buf, start, end);
        }
        return;
      case State.FastqQuality:
        while (end > start && BYTE_CLASS[buf[end - 1]] === SKIP) end--;
        this.qualityLength += end - start;
        if (this.qualityLength > this.seqLength) {
          this.fail(`quality length ${this.qualityLength} differs from sequence length ${this.seqLength}`);
        }
        if (this.qualityLength === this.seqLength) {
          this.emit();
          this.state = State.FastqHeader;
        }
        return;
      case State.FastqHeader:
        if (isBlank(buf, start, end)) return;
        if (buf[start] !== AT) {
          throw new ReadInputError(this.file, `expected a FASTQ header starting with "@", found "${preview(buf, start, end)}"`, {
            number: this.recordNumber + 1,
            id: '',
          });
        }
        this.beginRecord(buf, start, end);
        this.state = State.FastqSequence;
        return;
      case State.Start:
        this.startLine(buf, start, end);
        return;
    }
  }

  private startLine(buf: Uint8Array, start: number, end: number): void {
    if (this.atFileStart) {
      this.atFileStart = false;
      if (end - start >= 3 && UTF8_BOM.every((b, i) => buf[start + i] === b)) start += 3;
    }
    if (isBlank(buf, start, end)) return;
    if (buf[start] === GT) {
      this.state = State.FastaSequence;
    } else if (buf[start] === AT) {
      this.state = State.FastqSequence;
    } else if (looksBinary(buf, start, end)) {
      throw new ReadInputError(this.file, 'binary data: not a FASTA/FASTQ text file (or an unsupported compression)');
    } else {
      throw new ReadInputError(this.file, `not FASTA or FASTQ: the first line should start with ">" or "@", found "${preview(buf, start, end)}"`);
    }
    this.beginRecord(buf, start, end);
  }

  /** Takes the id from the header line (after its '>' or '@') and starts a new sequence. */
  private beginRecord(buf: Uint8Array, start: number, end: number): void {
    this.recordNumber += 1;
    let ascii = true;
    for (let i = start + 1; i < end; i++) {
      const b = buf[i];
      if (b >= 0x80) ascii = false;
      else if (b < 0x20 && ASCII_SPACE[b] === 0) {
        throw new ReadInputError(this.file, 'binary data in the header line', { number: this.recordNumber, id: '' });
      }
    }
    if (ascii) {
      let i = start + 1;
      while (i < end && ASCII_SPACE[buf[i]] === 1) i++;
      let j = i;
      while (j < end && ASCII_SPACE[buf[j]] === 0) j++;
      this.id = asBuffer(buf).toString('latin1', i, j);
    } else {
      this.id = utf8.decode(buf.subarray(start + 1, end)).trim().split(PY_WHITESPACE, 1)[0] ?? '';
    }
    this.seqLength = 0;
    this.proteinLetters = 0;
    this.notABase = -1;
  }

  private appendSequence(buf: Uint8Array, start: number, end: number): void {
    if (this.seqStart + this.seqLength + (end - start) > this.slab.length) this.moveToNewSlab(end - start);
    const slab = this.slab;
    let n = this.seqStart + this.seqLength;
    for (let i = start; i < end; i++) {
      const b = buf[i];
      const cls = BYTE_CLASS[b];
      if (cls === KEEP) {
        slab[n++] = b;
      } else if (cls === PROTEIN_ONLY || cls === NOT_A_BASE) {
        // Reported when the record ends, so that a protein file is named as such instead.
        if (this.notABase < 0) {
          this.notABase = b;
          this.notABaseAt = n - this.seqStart + 1;
        }
        slab[n++] = b;
        if (cls === PROTEIN_ONLY) this.proteinLetters++;
      } else if (cls === BINARY) {
        this.fail(`binary data in the sequence (byte 0x${b.toString(16).padStart(2, '0')})`);
      }
    }
    this.seqLength = n - this.seqStart;
  }

  /** Starts a fresh slab holding the current record's bases with room for `more`; doubling keeps long records linear. */
  private moveToNewSlab(more: number): void {
    const needed = this.seqLength + more;
    const next = new Uint8Array(Math.max(SLAB_BYTES, needed, needed > SLAB_BYTES / 2 ? 2 * needed : 0));
    next.set(this.slab.subarray(this.seqStart, this.seqStart + this.seqLength));
    this.slab = next;
    this.seqStart = 0;
  }

  private emit(): void {
    if (this.seqLength >= PROTEIN_CHECK_MIN_LENGTH && this.proteinLetters > PROTEIN_LETTER_SHARE * this.seqLength) {
      this.fail(
        `looks like protein, not DNA: ${this.proteinLetters} of ${this.seqLength} letters (E F I L P Q ...) are not nucleotide or IUPAC codes`,
      );
    }
    if (this.notABase >= 0) {
      const found = String.fromCharCode(this.notABase);
      const hint = /[0-9]/.test(found) ? ' (position numbers, as in GenBank files, are not part of a FASTA sequence)' : '';
      this.fail(`"${found}" at position ${this.notABaseAt} of the sequence is not a nucleotide: a sequence may hold only ${SEQUENCE_ALPHABET.split('').join(' ')} (either case) and whitespace${hint}`);
    }
    const end = this.seqStart + this.seqLength;
    this.out.push({ number: this.recordNumber, id: this.id, sequence: this.slab.subarray(this.seqStart, end) });
    this.seqStart = end;
    this.seqLength = 0;
  }

  private fail(problem: string): never {
    throw new ReadInputError(this.file, problem, { number: this.recordNumber, id: this.id });
  }
}

function asBuffer(bytes: Uint8Array): Buffer {
  return Buffer.isBuffer(bytes) ? bytes : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength);
}

function concat(a: Uint8Array, b: Uint8Array): Uint8Array {
  const out = new Uint8Array(a.length + b.length);
  out.set(a);
  out.set(b, a.length);
  return out;
}

function isBlank(buf: Uint8Array, start: number, end: number): boolean {
  for (let i = start; i < end; i++) if (BYTE_CLASS[buf[i]] !== SKIP) return false;
  return true;
}

function looksBinary(buf: Uint8Array, start: number, end: number): boolean {
  const stop = Math.min(end, start + 512);
  for (let i = start; i < stop; i++) {
    const b = buf[i];
    if (b >= 0x80 || (b < 0x20 && b !== 0x09 && b !== 0x0d)) return true;
  }
  return false;
}

function preview(buf: Uint8Array, start: number, end: number): string {
  const text = Buffer.from(buf.subarray(start, Math.min(end, start + 40))).toString('latin1').replace(/[^\x20-\x7e]/g, '?');
  return end - start > 40 ? `${text}...` : text;
}
