"""``python -m virnucpro_runtime <command>``: serve (the resident runtime), bench, embed, import-legacy, find-weights.

Each command registers a (configure, run) pair; run imports its module lazily so that
``serve`` starts without loading benchmark code, and the allocator setting below is in
place before anything imports torch.
"""
from __future__ import annotations

import argparse
import os
import sys

# Fragmentation from variable-size packed batches otherwise strands GPU memory between
# shards. Must be set before torch initialises CUDA; a user's own setting wins.
os.environ.setdefault("PYTORCH_CUDA_ALLOC_CONF", "expandable_segments:True")


def _configure_serve(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--device", default="cpu", help="cuda:N or cpu (default cpu)")
    parser.add_argument("--progress-interval", type=float, default=1.0, help="seconds between progress events")


def _run_serve(args: argparse.Namespace) -> int:
    from . import cuda_start, state

    early_cuda = cuda_start.begin(args.device)  # the CUDA context starts while torch imports
    # Before torch is imported: warm starts reuse compiled kernels and, where torch's
    # installation keeps no bytecode, torch's compiled Python.
    state.use_compile_caches()
    state.use_bytecode_cache()
    from . import serve

    return serve.main(args.device, progress_interval_s=args.progress_interval, early_cuda=early_cuda)


def _configure_bench(parser: argparse.ArgumentParser) -> None:
    from .measure import bench

    bench.configure(parser)


def _run_bench(args: argparse.Namespace) -> int:
    from .measure import bench

    return bench.main(args)


def _configure_embed(parser: argparse.ArgumentParser) -> None:
    from .measure import embed

    embed.configure(parser)


def _run_embed(args: argparse.Namespace) -> int:
    from .measure import embed

    return embed.main(args)


def _configure_import_legacy(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("request", nargs="?", help="the import request (JSON; activities/legacy/import-step.ts writes it)")
    parser.add_argument("--find", nargs=2, metavar=("INPUT", "OUT_DIR"), help="only list the earlier runs left for INPUT (beside it and in OUT_DIR), as JSON")


def _run_import_legacy(args: argparse.Namespace) -> int:
    if args.find:
        import json

        from . import legacy_layouts  # no torch: predict asks this before a run starts

        print(json.dumps([run.describe() for run in legacy_layouts.find(*args.find)]))
        return 0
    if not args.request:
        raise SystemExit("import-legacy: give a REQUEST file or --find INPUT OUT_DIR")
    from . import legacy

    return legacy.main(args.request)


def _configure_find_weights(parser: argparse.ArgumentParser) -> None:
    pass


def _run_find_weights(args: argparse.Namespace) -> int:
    import json

    from . import weight_caches  # no torch: predict asks this before a run starts

    print(json.dumps(weight_caches.describe()))
    return 0


COMMANDS = {
    "serve": ("run the resident runtime (JSON lines on stdin/stdout)", _configure_serve, _run_serve),
    "bench": ("benchmark ESM-2/DNABERT-S throughput and parity (full-size random weights)", _configure_bench, _run_bench),
    "embed": ("embed a FASTA or frame shard with ESM-2 and/or DNABERT-S into Parquet", _configure_embed, _run_embed),
    "import-legacy": ("import the embeddings an earlier VirNucPro or virnucpro-broad run left (or --find them)", _configure_import_legacy, _run_import_legacy),
    "find-weights": ("the ESM-2 and DNABERT-S weights in the Hugging Face and torch hub caches, as JSON", _configure_find_weights, _run_find_weights),
}


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    parser = argparse.ArgumentParser(prog="python -m virnucpro_runtime")
    sub = parser.add_subparsers(dest="command", required=True)
    for name, (help_text, configure, run) in COMMANDS.items():
        command_parser = sub.add_parser(name, help=help_text)
        # Configuring a command may import its module (bench imports torch): only the one asked
        # for, so that the quick questions predict asks (find-weights, import-legacy --find) stay quick.
        if argv[:1] == [name]:
            configure(command_parser)
        command_parser.set_defaults(run=run)
    args = parser.parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
