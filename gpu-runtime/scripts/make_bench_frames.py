"""Make the benchmark's frame shard from real genomes (bench/data/frames_<C>bp.arrow).

Reads are cut from the viral genomes and the Klebsiella genome in /work/shared/data
(half viral, half bacterial; random offsets and strands; fixed seed), so real codon
statistics decide which of the six frames survive. 85% of reads are C bases long and 15%
are shorter (uniform in [C/3, C)), like the tails of real read sets. Each read then goes
through the original's chunking and six-frame selection (docs: original-pipeline.md
sections 1-2), implemented here independently of the TypeScript prepare step so the
benchmark does not depend on it:

    python gpu-runtime/scripts/make_bench_frames.py --data /work/shared/data \
        --read-length 500 --frames 8192 --out bench/data/frames_500bp.arrow
"""
from __future__ import annotations

import argparse
import gzip
import lzma
import math
import sys
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))
from virnucpro_runtime.shards import FrameKeys, write_frames  # noqa: E402

VIRAL = ["lambda_virus.fa.gz", "dwv.fasta.gz", "vdv1.fasta.gz", "Acinetobacter_phage.fasta.gz"]
BACTERIAL = ["Klebs_HS11286.fna.xz"]

_BASES = "TCAG"
_AMINO = "FFLLSSSSYY**CC*WLLLLPPPPHHQQRRRRIIIMTTTTNNKKSSRRVVVVAAAADDEEGGGG"  # NCBI table 1
CODONS = {a + b + c: _AMINO[16 * i + 4 * j + k] for i, a in enumerate(_BASES) for j, b in enumerate(_BASES) for k, c in enumerate(_BASES)}
COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")


def read_fasta(path: Path) -> list[str]:
    opener = lzma.open if path.suffix == ".xz" else gzip.open if path.suffix == ".gz" else open
    sequences, current = [], []
    with opener(path, "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                if current:
                    sequences.append("".join(current))
                current = []
            else:
                current.append(line.strip())
    if current:
        sequences.append("".join(current))
    return sequences


def chunk_starts(length: int, size: int) -> list[tuple[int, int]]:
    """The original's overlapping chunks (original-pipeline.md section 1), quirk included."""
    if length <= size:
        return [(0, length)]
    n = math.ceil(length / size)
    surplus = n * size - length
    q = surplus // n
    m = surplus - q * (n - 1)
    spans, shifted = [], 0
    for k in range(n):
        if k > 0:
            shifted += q + 1 if k <= m else q
        start = k * size - shifted
        spans.append((start, min(start + size, length)))
    return spans


def reverse_complement(seq: str) -> str:
    # Only A C G T are complemented; anything else is kept, then the string is reversed.
    return seq.translate(COMPLEMENT)[::-1]


def translate(seq: str, frame: int) -> str:
    # Codons with any character outside ACGT are dropped, not translated to X.
    return "".join(CODONS.get(seq[i:i + 3], "") for i in range(frame, len(seq) - 2, 3))


def kept_frames(chunk_id: str, chunk: str) -> list[tuple[str, str, str]]:
    """(frame id, nucleotide input of DNABERT-S, protein) for every stop-free frame."""
    upper = chunk.upper()
    strands = (("F", upper), ("R", reverse_complement(upper)))
    kept = []
    for letter, strand in strands:
        for frame in range(3):
            protein = translate(strand, frame)
            if protein and "*" not in protein:
                # The original's slice is one base longer than the codons (its off-by-one).
                nucleotide = strand[frame:frame + 1 + 3 * len(protein)]
                kept.append((f"{chunk_id}{letter}{frame + 1}", nucleotide, protein))
    return kept


def cut_reads(data: Path, size: int, seed: int):
    """Reads without end, alternately from the viral and the bacterial genomes: random genome,
    offset and strand; 85% are ``size`` bases long, 15% shorter (uniform in [size/3, size))."""
    rng = np.random.default_rng(seed)
    pools = [[s for f in VIRAL for s in read_fasta(data / f)], [s for f in BACTERIAL for s in read_fasta(data / f)]]
    index = 0
    while True:
        pool = pools[index % 2]
        genome = pool[rng.integers(len(pool))]
        length = size if rng.random() < 0.85 else int(rng.integers(size // 3, size))
        start = int(rng.integers(0, len(genome) - length))
        read = genome[start:start + length]
        yield reverse_complement(read) if rng.random() < 0.5 else read
        index += 1


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--data", type=Path, default=Path("/work/shared/data"))
    parser.add_argument("--read-length", type=int, choices=(300, 500), default=500)
    parser.add_argument("--frames", type=int, default=8192)
    parser.add_argument("--seed", type=int, default=20250224)
    parser.add_argument("--out", type=Path, required=True)
    args = parser.parse_args()

    size = args.read_length
    ids, records, chunks, nucleotides, proteins = [], [], [], [], []
    read_index = 0
    reads = cut_reads(args.data, size, args.seed)
    while len(ids) < args.frames:
        read = next(reads)
        record_id = f"read{read_index:07d}"
        for k, (begin, end) in enumerate(chunk_starts(len(read), size), start=1):
            for frame_id, nucleotide, protein in kept_frames(f"{record_id}_chunk_{k}", read[begin:end]):
                ids.append(frame_id)
                records.append(read_index)
                chunks.append(k - 1)
                nucleotides.append(nucleotide)
                proteins.append(protein)
        read_index += 1
    n = args.frames
    marker = write_frames(args.out, FrameKeys.of(ids[:n], records[:n], chunks[:n]), nucleotides[:n], proteins[:n])
    lengths = np.array([len(p) for p in proteins[:n]])
    print(f"{n} frames from {read_index} reads ({n / read_index:.2f} kept frames per read); "
          f"protein length median {np.median(lengths):.0f}, {np.mean(lengths == lengths.max()):.0%} at the maximum {lengths.max()}; "
          f"{marker['bytes']} bytes -> {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
