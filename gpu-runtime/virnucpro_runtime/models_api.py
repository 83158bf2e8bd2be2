"""The three models as the engine uses them: embed a batch, classify.

``LoadedModels`` wraps the model modules (``models/``) and DNABERT-S's tokeniser behind
the handful of calls the engine, the reference path and the benchmark make, so those
never depend on a model file's internals. ``load_models`` builds it from checkpoint
paths (or synthetic checkpoints) for ``serve``'s ``load`` request.
"""
from __future__ import annotations

import contextlib
from dataclasses import dataclass
from typing import Callable

import torch

from . import tokenizers
from .models.esm2 import mean_residues_packed


class WeightsUnavailable(Exception):
    """A checkpoint is missing or cannot be loaded (the protocol's ``weights`` error)."""


@contextlib.contextmanager
def tf32_matmuls():
    """fp32 matmuls on tensor cores (TF32 inputs, fp32 accumulation) inside the block."""
    matmul = torch.backends.cuda.matmul
    # torch >= 2.9 has fp32_precision; older ones only the legacy flag.
    name, value = ("fp32_precision", "tf32") if hasattr(matmul, "fp32_precision") else ("allow_tf32", True)
    previous = getattr(matmul, name)
    setattr(matmul, name, value)
    try:
        yield
    finally:
        setattr(matmul, name, previous)


def dnabert_uses_tf32(device: torch.device, dtype: torch.dtype) -> bool:
    """DNABERT-S always keeps fp32 weights and activations. On the fast path (``dtype``
    bf16 on CUDA) its matmuls run in TF32; with ``dtype`` fp32 they stay strict fp32.

    Why not bf16 like ESM-2: DNABERT-S is ~4% of the FLOPs, and in bf16 its embeddings
    (cosine min 0.9994 vs fp32) moved 3% of labels under a random-direction classifier on
    the H200; in TF32 the cosine min is 0.999995 and its time per frame doubles, which
    costs ~4% end to end (bench/results/studies/2026-11-30-nvidia-h200-precision-study.json)."""
    return device.type == "cuda" and dtype != torch.float32


@dataclass
class LoadedModels:
    device: torch.device
    dtype: torch.dtype  # ESM-2's; DNABERT-S and the classifier are fp32 (see dnabert_uses_tf32)
    esm2: torch.nn.Module
    dnabert: torch.nn.Module
    dna_tokenizer: tokenizers.DnaTokenizer
    classifier: torch.nn.Module
    sources: dict
    # Replaces esm2.forward_packed when set (compiled.py's torch.compile path).
    esm2_packed_forward: Callable | None = None
    # Replaces dnabert.embed when set (compiled.py).
    dnabert_padded_embed: Callable | None = None
    # ESM-2's linear layers in FP8 (models/fp8.py): None, "scaled_mm" (the GPU) or "emulated"
    # (tests and bench on a CPU). Set by use_fp8_esm2; ``dtype`` stays bf16 for the rest.
    esm2_fp8: str | None = None

    @property
    def esm2_hidden(self) -> int:
        return self.esm2.cfg.embed_dim

    @property
    def esm2_ffn(self) -> int:
        return self.esm2.cfg.ffn_dim

    @property
    def esm2_layers(self) -> int:
        return self.esm2.cfg.num_layers

    @property
    def dnabert_pad_id(self) -> int:
        return self.dna_tokenizer.pad_id

    def weight_bytes(self) -> int:
        """Device memory the three models hold."""
        modules = (self.esm2, self.dnabert, self.classifier)
        return sum(t.numel() * t.element_size() for m in modules for t in [*m.parameters(), *m.buffers()])

    def embed_proteins_packed(self, tokens: torch.Tensor, cu_seqlens: torch.Tensor, max_seqlen: int) -> torch.Tensor:
        """Packed ESM-2 batch -> per-sequence residue means [B, 2560] float32."""
        forward = self.esm2_packed_forward or self.esm2.forward_packed
        hidden = forward(tokens, cu_seqlens, max_seqlen)
        return mean_residues_packed(hidden, cu_seqlens, max_seqlen=max_seqlen)

    def embed_nucleotides_padded(self, input_ids: torch.Tensor, lengths: torch.Tensor) -> torch.Tensor:
        """Padded DNABERT-S batch -> mean over all tokens incl. [CLS]/[SEP], [B, 768] float32."""
        embed = self.dnabert_padded_embed or self.dnabert.embed
        with tf32_matmuls() if dnabert_uses_tf32(self.device, self.dtype) else contextlib.nullcontext():
            return embed(input_ids, lengths)

    def precision(self) -> dict:
        esm2 = str(self.dtype).removeprefix("torch.")
        if self.esm2_fp8 is not None:
            esm2 = f"{esm2}, linear layers float8_e4m3fn with per-row scales ({self.esm2_fp8})"
        return {"esm2": esm2, "dnabert": "float32 (TF32 matmuls)" if dnabert_uses_tf32(self.device, self.dtype) else "float32",
                "classifier": "float32"}

    def describe(self) -> dict:
        return {
            "esm2": {"layers": self.esm2_layers, "hidden": self.esm2_hidden, "source": self.sources.get("esm2")},
            "dnabert": {"source": self.sources.get("dnabert")},
            "classifier": {"source": self.sources.get("classifier")},
            "device": str(self.device),
            "dtype": str(self.dtype).removeprefix("torch."),
            "precision": self.precision(),
        }


def precision_dtype(precision: str) -> torch.dtype:
    """ESM-2's dtype for a ``--precision``: fp8 keeps bf16 outside the linear layers."""
    return torch.float32 if precision == "fp32" else torch.bfloat16


def use_fp8_esm2(models: LoadedModels, emulate: bool = False) -> None:
    """ESM-2's linear layers quantised to FP8 in place (models/fp8.py), once, after loading.
    Without ``emulate`` the device must have FP8 matmuls: fp8.Fp8Unavailable otherwise.
    The emulation is for tests and ``bench`` only; ``serve`` never asks for it."""
    from .models.fp8 import quantize_esm2_linears_

    quantize_esm2_linears_(models.esm2, emulate=emulate)
    models.esm2_fp8 = "emulated" if emulate else "scaled_mm"


def load_models(
    device: torch.device,
    dtype: torch.dtype,
    esm2: str | None = None,
    dnabert: str | None = None,
    classifier: str | None = None,
    synthetic: str | None = None,
    cache=None,
) -> LoadedModels:
    """Load from explicit paths; with ``synthetic`` ("tiny"/"full"), random-weight
    checkpoints in the real formats (written once to the state directory) fill in whatever
    path was not given. ``cache``: a weights_cache.WeightsCache for the embedding models."""
    from . import weights
    from .models.classifier import load_classifier

    paths = {"esm2": esm2, "dnabert": dnabert, "classifier": classifier}
    if synthetic is not None:
        from . import synthetic as synthetic_mod

        generated = synthetic_mod.cached_checkpoints(synthetic)
        paths = {name: paths[name] or str(generated[name]) for name in paths}
    missing = [name for name, path in paths.items() if path is None]
    if missing:
        raise WeightsUnavailable(f"no weights given for {', '.join(missing)} (pass paths, or synthetic='tiny'|'full')")
    try:
        esm2_model = weights.load_esm2(paths["esm2"], device, dtype, cache=cache)
        dnabert_model, dna_tokenizer = weights.load_dnabert_s(paths["dnabert"], device, torch.float32, cache=cache)
        classifier_model = load_classifier(paths["classifier"], device)
    except (FileNotFoundError, ValueError, KeyError) as exc:
        raise WeightsUnavailable(str(exc)) from exc
    return LoadedModels(
        device=device,
        dtype=dtype,
        esm2=esm2_model.eval(),
        dnabert=dnabert_model.eval(),
        dna_tokenizer=dna_tokenizer,
        classifier=classifier_model.float().eval(),
        sources={name: str(path) for name, path in paths.items()},
    )
