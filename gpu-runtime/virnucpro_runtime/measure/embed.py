"""``python -m virnucpro_runtime embed``: embed sequences with ESM-2 and/or DNABERT-S and
write the vectors to Parquet (schema in docs/data-formats.md, "Embeddings").

    python -m virnucpro_runtime embed --model {esm2,dnabert-s,both} --in INPUT --out FILE.parquet
        [--weights PATH] [--dnabert-weights PATH] [--device cpu|cuda:N]
        [--dtype float32|bfloat16] [--synthetic tiny|full] [--token-budget N]

INPUT is a FASTA file (optionally .gz; proteins for esm2, DNA for dnabert-s; the id is
the first word of the header) or a frame shard (`.arrow`, format virnucpro.frames), whose
`protein` / `nucleotide` columns feed the two models; `both` needs a frame shard.
`--weights` is the ESM-2 weights for esm2/both and the DNABERT-S directory for
dnabert-s; missing weights are looked up in the standard caches (see `weights`).
`--synthetic` uses the seeded random models of `synthetic` instead (no files needed).

A simple, exact path for inspection and parity checks, not the fast engine, batched by
the engine's planners (packing.py): ESM-2 in packed, length-sorted batches of at most
`--token-budget` tokens, DNABERT-S in length-sorted padded batches of at most that many
(padded) tokens.
"""

from __future__ import annotations

import argparse
import gzip
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import torch

from .. import formats, packing, synthetic, weights
from ..models.dnabert_s import DNABERTS
from ..models.esm2 import ESM2, mean_residues_packed
from ..tokenizers import DnaTokenizer, tokenize_proteins

DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def configure(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--model", required=True, choices=["esm2", "dnabert-s", "both"])
    parser.add_argument("--in", dest="input", required=True, help="FASTA (.gz ok) or frame shard (.arrow)")
    parser.add_argument("--out", required=True, help="output Parquet file")
    parser.add_argument("--weights", help="ESM-2 weights (esm2, both) or DNABERT-S directory (dnabert-s)")
    parser.add_argument("--dnabert-weights", help="DNABERT-S directory (with --model both)")
    parser.add_argument("--device", default="cpu", help="cpu or cuda:N (default cpu)")
    parser.add_argument("--dtype", default="float32", choices=sorted(DTYPES))
    parser.add_argument("--synthetic", choices=sorted(synthetic.KINDS), help="seeded random-weight models instead of weights")
    parser.add_argument("--token-budget", type=int, default=None, help="tokens per batch (default 4096 on CPU, 65536 on CUDA)")


def read_fasta(path: Path) -> tuple[list[str], list[str]]:
    opener = gzip.open if path.name.endswith(".gz") else open
    ids: list[str] = []
    chunks: list[list[str]] = []
    with opener(path, "rt") as handle:
        for line in handle:
            if line.startswith(">"):
                header = line[1:].split()
                ids.append(header[0] if header else "")
                chunks.append([])
            elif chunks:
                chunks[-1].append(line.strip())
    return ids, ["".join(c) for c in chunks]


def read_inputs(path: Path, model: str) -> tuple[list[str], dict[str, list[str]]]:
    """ids and, per model, the sequences it embeds."""
    if path.suffix == ".arrow":
        with pa.memory_map(str(path)) as source:
            table = pa.ipc.open_file(source).read_all()
        columns = {"esm2": "protein", "dnabert-s": "nucleotide"}
        wanted = ["esm2", "dnabert-s"] if model == "both" else [model]
        return table.column("frame_id").to_pylist(), {m: table.column(columns[m]).to_pylist() for m in wanted}
    if model == "both":
        raise SystemExit("embed: --model both needs a frame shard (.arrow) with protein and nucleotide columns")
    ids, sequences = read_fasta(path)
    return ids, {model: sequences}


@torch.inference_mode()
def embed_proteins(model: ESM2, proteins: list[str], budget: int) -> np.ndarray:
    device = next(model.parameters()).device
    out = np.empty((len(proteins), model.cfg.embed_dim), dtype=np.float32)
    tokens = tokenize_proteins(proteins)
    for rows in packing.plan_packed(tokens.lengths, budget):
        batch = packing.assemble_packed(tokens, rows)
        cu = batch.cu_seqlens.to(device)
        hidden = model.forward_packed(batch.tokens.to(device), cu, batch.max_seqlen)
        out[rows] = mean_residues_packed(hidden, cu).cpu().numpy()
    return out


@torch.inference_mode()
def embed_nucleotides(model: DNABERTS, tokenizer: DnaTokenizer, sequences: list[str], budget: int) -> np.ndarray:
    device = next(model.parameters()).device
    out = np.empty((len(sequences), model.cfg.hidden_size), dtype=np.float32)
    tokens = tokenizer.tokenize(sequences)
    for rows in packing.plan_padded(tokens.lengths, budget):
        batch = packing.assemble_padded(tokens, rows, tokenizer.pad_id)
        out[rows] = model.embed(batch.input_ids.to(device), batch.lengths.to(device)).cpu().numpy()
    return out


def write_parquet(path: Path, ids: list[str], vectors: dict[str, np.ndarray], models: dict) -> None:
    """Atomic: written to a temporary name in the same directory, fsynced, renamed."""
    columns = {"id": pa.array(ids, type=pa.string())}
    for name, matrix in vectors.items():
        flat = pa.array(matrix.reshape(-1), type=pa.float32())
        columns[name] = pa.FixedSizeListArray.from_arrays(flat, matrix.shape[1])
    metadata = formats.metadata(formats.EMBEDDINGS, **{"virnucpro.models": json.dumps(models)})
    table = pa.table(columns).replace_schema_metadata(metadata)
    tmp = path.with_name(f"{path.name}.tmp-{os.getpid()}")
    pq.write_table(table, tmp)
    with open(tmp, "rb") as handle:
        os.fsync(handle.fileno())
    os.replace(tmp, path)


def main(args: argparse.Namespace) -> int:
    device = torch.device(args.device)
    dtype = DTYPES[args.dtype]
    budget = args.token_budget or (65536 if device.type == "cuda" else 4096)
    ids, inputs = read_inputs(Path(args.input), args.model)
    vectors: dict[str, np.ndarray] = {}
    models: dict[str, dict] = {}
    started = time.perf_counter()
    if "dnabert-s" in inputs:
        source = args.dnabert_weights if args.model == "both" else args.weights
        if args.synthetic:
            dnabert = synthetic.build_dnabert_s(args.synthetic).to(device=device, dtype=dtype)
            tokenizer = DnaTokenizer(synthetic.build_dna_tokenizer(dnabert.cfg.vocab_size))
            source = f"synthetic:{args.synthetic}"
        else:
            dnabert, tokenizer = weights.load_dnabert_s(source, device, dtype)
            source = str(weights.resolve_dnabert_s(source))
        vectors["dnabert"] = embed_nucleotides(dnabert, tokenizer, inputs["dnabert-s"], budget)
        models["dnabert"] = {"source": source, "dtype": args.dtype}
    if "esm2" in inputs:
        if args.synthetic:
            esm2 = synthetic.build_esm2(args.synthetic).to(device=device, dtype=dtype)
            source = f"synthetic:{args.synthetic}"
        else:
            esm2 = weights.load_esm2(args.weights, device, dtype)
            source = str(weights.resolve_esm2(args.weights))
        vectors["esm2"] = embed_proteins(esm2, inputs["esm2"], budget)
        models["esm2"] = {"source": source, "dtype": args.dtype}
    write_parquet(Path(args.out), ids, vectors, models)
    print(f"embed: {len(ids)} sequences -> {args.out} ({time.perf_counter() - started:.1f}s)", file=sys.stderr)
    return 0
