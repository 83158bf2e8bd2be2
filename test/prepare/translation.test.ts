import assert from 'node:assert/strict';
import { SixFrameTranslator } from '../../activities/prepare/translation';

const translate = (dna: string) =>
  new SixFrameTranslator().translate(Buffer.from(dna, 'latin1')).map((f) => [f.frame, f.protein, f.nucleotide]);

describe('prepare: six-frame translation and frame selection', () => {
  it('translates all six frames with the one-base-longer nucleotide slice', () => {
    // Forward frames of ATGAAATTT: ATG AAA TTT = MKF; TGA.. stops; GAA ATT = EI.
    // Reverse complement AAATTTCAT: AAA TTT CAT = KFH; AAT TTC = NF; ATT TCA = IS.
    assert.deepEqual(translate('ATGAAATTT'), [
      ['F1', 'MKF', 'ATGAAATTT'],
      ['F3', 'EI', 'GAAATTT'],
      ['R1', 'KFH', 'AAATTTCAT'],
      ['R2', 'NF', 'AATTTCA'],
      ['R3', 'IS', 'ATTTCAT'],
    ]);
  });

  it('upper-cases before translating', () => {
    assert.deepEqual(translate('atgaaattt'), translate('ATGAAATTT'));
  });

  it('drops codons with non-ACGT characters without an X, keeping the slice length from the protein', () => {
    // F1: ATG NNN AAA -> "MK"; the slice is chunk[0 : 1 + 3*2] = ATGNNNA, as the original cuts it.
    const f1 = translate('ATGNNNAAA').find(([frame]) => frame === 'F1');
    assert.deepEqual(f1, ['F1', 'MK', 'ATGNNNA']);
    for (const odd of ['ATGRAAAAA', 'ATGUAAAAA', 'ATG-AAAAA', 'ATG.AAAAA']) {
      const frame = translate(odd).find(([f]) => f === 'F1');
      assert.equal(frame?.[1], 'MK', odd);
    }
  });

  it('complements only A C G T on the reverse strand', () => {
    // Reverse complement of ATGCR is R + GCAT: the R stays R (not Y).
    const r1 = translate('CCATGCRAA').find(([f]) => f === 'R1');
    assert.equal(r1?.[2].slice(0, 3), 'TTR');
  });

  it('keeps no frame with a stop codon or an empty protein', () => {
    assert.deepEqual(translate('TAATAGTGATAA'.repeat(3)).filter(([f]) => f.startsWith('F1')), []);
    assert.deepEqual(translate('NNNNNNNNN'), []);
    assert.deepEqual(translate('AC'), []);
  });

  it('reuses its buffers across chunks of different lengths', () => {
    const translator = new SixFrameTranslator();
    const long = translator.translate(Buffer.from('ATGAAATTTGGG'.repeat(50)));
    const short = translator.translate(Buffer.from('ATGAAATTT'));
    assert.equal(long[0].protein, 'MKFG'.repeat(50));
    assert.deepEqual(short.map((f) => f.protein), ['MKF', 'EI', 'KFH', 'NF', 'IS']);
  });
});
