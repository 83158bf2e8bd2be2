import assert from 'node:assert/strict';
import { chmodSync, mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { gzipSync } from 'node:zlib';
import { readSequences, type SequenceRecord } from '../../activities/prepare/sequence-reader';
import { emptyStats, prepareChunks } from '../../activities/prepare/chunk-stream';
import { ReadInputError } from '../../activities/prepare/errors';
import { bzip2Program } from '../../activities/prepare/decompress';
import { fixture, scratch } from './fixtures';

async function readAll(path: string): Promise<Array<{ number: number; id: string; sequence: string }>> {
  const out = [];
  for await (const r of readSequences(path)) out.push(plain(r));
  return out;
}

function plain(r: SequenceRecord) {
  return { number: r.number, id: r.id, sequence: Buffer.from(r.sequence).toString('latin1') };
}

async function readError(path: string): Promise<ReadInputError> {
  try {
    await readAll(path);
  } catch (err) {
    assert.ok(err instanceof ReadInputError, `expected a ReadInputError, got ${String(err)}`);
    assert.ok(err.message.startsWith(path), `message names the file: ${err.message}`);
    return err;
  }
  assert.fail(`reading ${path} should have failed`);
}

describe('prepare: sequence reader', () => {
  let tmp: ReturnType<typeof scratch>;
  let klebsiella: Buffer;
  beforeEach(() => (tmp = scratch()));
  afterEach(() => tmp.remove());
  before(async () => {
    const records = await readAll(fixture('klebsiella_reads.fa.bz2'));
    klebsiella = Buffer.from(records.map((r) => `>${r.id} some description\n${r.sequence}\n`).join(''));
  });

  const write = (name: string, data: string | Uint8Array) => {
    const path = join(tmp.dir, name);
    writeFileSync(path, data);
    return path;
  };

  it('reads the same records from plain, gzip, bzip2 and xz files (also multi-stream), detected by content', async () => {
    const expected = await readAll(write('reads.fa', klebsiella));
    assert.equal(expected.length, 150);
    const half = klebsiella.indexOf('>kp_read_76 ');
    const multiMember = Buffer.concat([gzipSync(klebsiella.subarray(0, half)), gzipSync(klebsiella.subarray(half))]);
    const xz = readFileSync(fixture('klebsiella_reads.fa.xz'));
    const twice = [...expected, ...expected.map((r) => ({ ...r, number: r.number + expected.length }))];
    assert.deepEqual(await readAll(write('twice.xz', Buffer.concat([xz, xz]))), twice);
    for (const path of [
      write('renamed.txt', gzipSync(klebsiella)),
      write('multi.gz', multiMember),
      fixture('klebsiella_reads.fa.bz2'),
      fixture('klebsiella_reads.fa.xz'),
    ]) {
      assert.deepEqual(await readAll(path), expected, path);
    }
  });

  for (const decoder of ['js', 'system']) {
    it(`decodes bzip2 with the ${decoder === 'js' ? 'pure-JS decoder' : 'bzip2 program'} and reports truncation`, async function () {
      if (decoder === 'system' && !bzip2Program()) this.skip();
      const saved = process.env.VIRNUCPRO_BZIP2;
      process.env.VIRNUCPRO_BZIP2 = decoder;
      try {
        const bz2 = readFileSync(fixture('klebsiella_reads.fa.bz2'));
        const expected = await readAll(write('reads.fa', klebsiella));
        assert.deepEqual(await readAll(write('whole.bz2', bz2)), expected);
        // Concatenated streams, as pbzip2 writes them.
        const twice = [...expected, ...expected.map((r) => ({ ...r, number: r.number + expected.length }))];
        assert.deepEqual(await readAll(write('twice.bz2', Buffer.concat([bz2, bz2]))), twice);
        const cut = await readError(write('cut.bz2', bz2.subarray(0, bz2.length >> 1)));
        assert.match(cut.message, /corrupt or truncated bzip2 data/);
      } finally {
        if (saved === undefined) delete process.env.VIRNUCPRO_BZIP2;
        else process.env.VIRNUCPRO_BZIP2 = saved;
      }
    });
  }

  it('takes the first word of the header as id, strips CRLF and keeps case', async () => {
    const records = await readAll(write('crlf.fa', '>seq1 first read\r\nACgt\r\nNNa c\r\n>seq2\tx y\r\n\r\nTTTT\r\n'));
    assert.deepEqual(records, [
      { number: 1, id: 'seq1', sequence: 'ACgtNNac' },
      { number: 2, id: 'seq2', sequence: 'TTTT' },
    ]);
    const crlf = await readAll(fixture('viral_mix.fa'));
    const lf = await readAll(write('lf.fa', readFileSync(fixture('viral_mix.fa'), 'latin1').replace(/\r\n/g, '\n')));
    assert.deepEqual(crlf, lf);
    assert.ok(crlf.every((r) => !/[\r\n ]/.test(r.sequence + r.id)));
  });

  it('skips the UTF-8 byte-order mark Windows editors put at the start of a file, also compressed', async () => {
    const text = '>seq1 first read\r\nACGTRYKM\r\nu-.n\r\n';
    const bom = Buffer.from([0xef, 0xbb, 0xbf]);
    const expected = [{ number: 1, id: 'seq1', sequence: 'ACGTRYKMu-.n' }];
    assert.deepEqual(await readAll(write('bom.fa', Buffer.concat([bom, Buffer.from(text)]))), expected);
    assert.deepEqual(await readAll(write('bom.fa.gz', gzipSync(Buffer.concat([bom, Buffer.from(text)])))), expected);
    assert.deepEqual(await readAll(write('bom.fq', Buffer.concat([bom, Buffer.from('@q1\nACGT\n+\nIIII\n')]))), [{ number: 1, id: 'q1', sequence: 'ACGT' }]);
    // Only at the very start: further on it is binary data like any other non-ASCII byte.
    const later = await readError(write('bom-later.fa', Buffer.concat([Buffer.from('>a\nACGT\n>b\n'), bom, Buffer.from('ACGT\n')])));
    assert.deepEqual(later.record, { number: 2, id: 'b' });
    assert.match(later.message, /binary data/);
  });

  it('reads FASTQ, including wrapped records and quality lines starting with "@"', async () => {
    const fastq = '@r1 desc\nACGT\n+\n@@II\n@r2\nAC\nGT\n+r2\nII\nII\n';
    assert.deepEqual(await readAll(write('r.fq', fastq)), [
      { number: 1, id: 'r1', sequence: 'ACGT' },
      { number: 2, id: 'r2', sequence: 'ACGT' },
    ]);
  });

  it('streams a multi-megabase record across many reads of the file', async () => {
    const line = 'ACGTTGCA'.repeat(10) + '\n';
    const path = write('long.fa', '>chr\n' + line.repeat(100_000) + '>tail\nAC\n');
    const records = await readAll(path);
    assert.equal(records[0].sequence.length, 8_000_000);
    assert.equal(records[1].sequence, 'AC');
  });

  describe('errors name the file, and the record where there is one', () => {
    it('missing, empty, directory', async () => {
      assert.match((await readError(join(tmp.dir, 'nope.fa'))).message, /file not found/);
      assert.match((await readError(write('empty.fa', ''))).message, /file is empty/);
      const dir = join(tmp.dir, 'folder.fa');
      mkdirSync(dir);
      assert.match((await readError(dir)).message, /is a directory/);
    });

    it('unreadable file', async function () {
      if (process.getuid?.() === 0) this.skip(); // root reads any file
      const path = write('locked.fa', '>a\nACGT\n');
      chmodSync(path, 0);
      assert.match((await readError(path)).message, /permission denied/);
    });

    it('not FASTA/FASTQ, binary data, unsupported compression', async () => {
      assert.match((await readError(write('notes.txt', 'hello world\nACGT\n'))).message, /not FASTA or FASTQ/);
      assert.match((await readError(write('image.fa', Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a, 0, 0])))).message, /binary data/);
      const midway = await readError(write('mixed.fa', Buffer.concat([Buffer.from('>a\nACGT\n>b\nAC'), Buffer.from([0, 1, 2]), Buffer.from('\n')])));
      assert.deepEqual(midway.record, { number: 2, id: 'b' });
      assert.match((await readError(write('x.zst', Buffer.from([0x28, 0xb5, 0x2f, 0xfd, 0, 0, 0])))).message, /zstd/);
    });

    it('truncated gzip, bzip2 and xz streams', async () => {
      const gz = gzipSync(klebsiella);
      const cut = (data: Buffer) => data.subarray(0, Math.floor(data.length * 0.6));
      for (const path of [
        write('cut.fa.gz', cut(gz)),
        write('cut.fa.bz2', cut(readFileSync(fixture('klebsiella_reads.fa.bz2')))),
        write('cut.fa.xz', cut(readFileSync(fixture('klebsiella_reads.fa.xz')))),
      ]) {
        assert.match((await readError(path)).message, /corrupt or truncated (gzip|bzip2|xz) data/, path);
      }
    });

    it('a protein FASTA given instead of DNA', async () => {
      const err = await readError(write('proteins.faa', '>dna1\nACGTACGTACGTACGTACGTACGTACGTACGTAC\n>sp|P69905|HBA_HUMAN Hemoglobin\nMVLSPADKTNVKAAWGKVGAHAGEYGAEALERMFLSFPTTKTYFPHF\n'));
      assert.deepEqual(err.record, { number: 2, id: 'sp|P69905|HBA_HUMAN' });
      assert.match(err.message, /looks like protein/);
    });

    it('characters that are not nucleotides: GenBank position numbers, X, punctuation, one protein letter', async () => {
      const genbank = await readError(
        write('genbank.fa', '>ok\nACGTN\n>NC_001416.1 lambda\n        1 gggcggcgac ctcgcgggtt\n       21 ttcgctattt\n'),
      );
      assert.deepEqual(genbank.record, { number: 2, id: 'NC_001416.1' });
      assert.match(genbank.message, /genbank\.fa: record 2 \(NC_001416\.1\): "1" at position 1 of the sequence is not a nucleotide/);
      assert.match(genbank.message, /A C G T U R Y S W K M B D H V N - \. \(either case\)/);
      assert.match(genbank.message, /position numbers, as in GenBank files/);
      for (const [name, sequence, found, at] of [
        ['masked.fa', 'ACGTACGTXXXXACGT', 'X', 9],
        ['stop.fq', 'ACG\nT*A', '*', 5],
        ['one-protein-letter.fa', 'ACGTTGCAEACGT', 'E', 9],
      ] as const) {
        const text = name.endsWith('.fq') ? `@r1\n${sequence}\n+\n${'I'.repeat(sequence.replace(/\n/g, '').length)}\n` : `>r1 x\n${sequence}\n`;
        const err = await readError(write(name, text));
        assert.deepEqual(err.record, { number: 1, id: 'r1' }, name);
        assert.ok(err.message.includes(`"${found}" at position ${at} of the sequence is not a nucleotide`), err.message);
      }
    });

    it('FASTQ with mismatched sequence and quality lengths, or cut short', async () => {
      const longer = await readError(write('bad.fq', '@r1\nACGT\n+\nIIII\n@r2 x\nACGT\n+\nIIIII\n'));
      assert.deepEqual(longer.record, { number: 2, id: 'r2' });
      assert.match(longer.message, /quality length 5 differs from sequence length 4/);
      const shorter = await readError(write('short.fq', '@r1\nACGT\n+\nIII\n'));
      assert.match(shorter.message, /quality is shorter/);
      assert.deepEqual(shorter.record, { number: 1, id: 'r1' });
      assert.match((await readError(write('noplus.fq', '@r1\nACGT\n'))).message, /no "\+" line/);
    });
  });

  describe('record handling before chunking', () => {
    it('skips empty records with a warning and renames duplicate ids deterministically', async () => {
      const path = write('dups.fa', '>a\nACGT\n>empty desc\n\n>a\nAAAA\n>a_2\nCCCC\n>a\nGGGG\n>b\n>c\nTTT\n');
      const stats = emptyStats();
      const warnings: string[] = [];
      const chunks = [];
      for await (const c of prepareChunks(readSequences(path), path, 300, stats, (m) => warnings.push(m))) {
        chunks.push([c.record.number, c.record.originalId, c.record.id, c.name]);
      }
      assert.deepEqual(chunks, [
        [1, 'a', 'a', 'a_chunk_1'],
        [3, 'a', 'a_2', 'a_2_chunk_1'],
        [4, 'a_2', 'a_2_2', 'a_2_2_chunk_1'],
        [5, 'a', 'a_3', 'a_3_chunk_1'],
        [7, 'c', 'c', 'c_chunk_1'],
      ]);
      assert.deepEqual({ records: stats.records, skippedEmpty: stats.skippedEmpty, duplicates: stats.duplicates }, { records: 5, skippedEmpty: 2, duplicates: 3 });
      assert.equal(warnings.length, 5);
      assert.ok(warnings.some((w) => w.includes('record 2 (empty): empty sequence, skipped')));
      assert.ok(warnings.some((w) => w.includes('record 3: duplicate id "a" renamed to "a_2"')));
    });
  });
});
