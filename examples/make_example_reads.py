"""Make examples/example_reads.fa: a small mixed read set for the demo and the tests.

Reads of 300 and 500 bp are cut at random offsets (either strand) from public genomes in
/work/shared/data (see its README; rebuildable from Debian example-data packages): viral
(phage lambda, deformed wing virus, Varroa destructor virus 1, Acinetobacter phage AP205) and
bacterial (Klebsiella pneumoniae HS11286). Real codon statistics matter: on real DNA about one
of the six frames per read is stop-free, on random DNA almost none are.
Deterministic (fixed seed). Usage: python examples/make_example_reads.py [DATA_DIR] [OUT]
"""
import gzip
import lzma
import random
import sys
from pathlib import Path

DATA = Path(sys.argv[1] if len(sys.argv) > 1 else "/work/shared/data")
OUT = Path(sys.argv[2] if len(sys.argv) > 2 else Path(__file__).with_name("example_reads.fa"))
SEED = 20250224
# (file, label, reads): 150 viral and 150 bacterial reads
SOURCES = [
    ("lambda_virus.fa.gz", "virus", 60),
    ("dwv.fasta.gz", "virus", 35),
    ("vdv1.fasta.gz", "virus", 35),
    ("Acinetobacter_phage.fasta.gz", "virus", 20),
    ("Klebs_HS11286.fna.xz", "bacteria", 150),
]
COMPLEMENT = str.maketrans("ACGTacgt", "TGCAtgca")


def read_fasta(path: Path) -> list[tuple[str, str]]:
    opener = lzma.open if path.suffix == ".xz" else gzip.open
    records, name, parts = [], None, []
    with opener(path, "rt") as handle:
        for line in handle:
            line = line.strip()
            if line.startswith(">"):
                if name is not None:
                    records.append((name, "".join(parts)))
                name, parts = line[1:].split()[0], []
            elif line:
                parts.append(line)
    if name is not None:
        records.append((name, "".join(parts)))
    return records


def main() -> None:
    rng = random.Random(SEED)
    reads = []
    for file, label, count in SOURCES:
        genomes = [(n, s.upper()) for n, s in read_fasta(DATA / file) if len(s) >= 500]
        weights = [len(s) for _, s in genomes]
        for i in range(count):
            name, seq = rng.choices(genomes, weights=weights)[0]
            length = rng.choice((300, 500))
            start = rng.randrange(0, len(seq) - length + 1)
            read = seq[start : start + length]
            strand = "+"
            if rng.random() < 0.5:
                read, strand = read.translate(COMPLEMENT)[::-1], "-"
            reads.append((f"{label}_{file.split('.')[0]}_{i + 1}", f"{name}:{start + 1}-{start + length}({strand})", read))
    rng.shuffle(reads)
    with open(OUT, "w") as out:
        for read_id, where, seq in reads:
            out.write(f">{read_id} {where}\n")
            for k in range(0, len(seq), 80):
                out.write(seq[k : k + 80] + "\n")
    print(f"wrote {len(reads)} reads to {OUT}")


if __name__ == "__main__":
    main()
