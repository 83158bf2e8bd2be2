"""Random-weight checkpoints in the real file formats, for tests and benchmarks.

    paths = write_checkpoints("tiny" | "full", directory)
    # {"esm2": .../esm2_synthetic_<kind>.pt, "dnabert": .../dnabert_s_synthetic_<kind>/,
    #  "classifier": .../classifier_synthetic.pth}

- ESM-2: a fair-esm `.pt` laid out like the published files (`encoder.sentence_encoder.*`
  keys, `encoder.lm_head.*`, cfg['model'] as an argparse.Namespace) plus the co-located
  `-contact-regression.pt` that fair-esm's `load_model_and_alphabet_local` expects.
- DNABERT-S: a Hugging Face directory: config.json, pytorch_model.bin (DNABERT-S key
  names, no `bert.` prefix) and a byte-pair-encoding tokenizer.json trained on seeded
  random DNA, with [UNK] [CLS] [SEP] [PAD] [MASK] as ids 0-4 (DNABERT-2's order) and a
  post-processor adding [CLS] ... [SEP].
- Classifier: a whole pickled module whose class is `__main__.MLPClassifier`, the way the
  original's training script saves it.

`full` has the real sizes (ESM-2 3B: 36 x 2560, 40 heads; DNABERT-S 12 x 768, vocabulary
4096). `tiny` keeps the real output widths (2560, 768, a 3328-input classifier) but has one
ESM-2 layer and two DNABERT-S layers with narrow attention (64) and feed-forward (128)
widths, so its cost is mostly element-wise work on 2560-wide activations (a few
thousand tokens per second per CPU core); fair-esm itself cannot load it (it assumes
the published proportions), our loader can. Everything is seeded and deterministic.
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import sys
from pathlib import Path

import numpy as np
import torch
from tokenizers import Tokenizer, models, processors, trainers
from torch import nn

from .models.classifier import MLPClassifier
from .models.dnabert_s import DNABERTS, DNABERTSConfig
from .models.esm2 import ESM2, ESM2Config, mean_residues_packed
from .packing import assemble_packed, assemble_padded
from .tokenizers import DnaTokenizer, tokenize_proteins

KINDS = {
    "tiny": {
        "esm2": ESM2Config(num_layers=1, embed_dim=2560, num_heads=4, attn_dim=64, ffn_dim=128),
        "dnabert": DNABERTSConfig(vocab_size=512, hidden_size=768, num_layers=2, num_heads=4, attn_dim=64, intermediate_size=128),
    },
    "full": {
        "esm2": ESM2Config(num_layers=36, embed_dim=2560, num_heads=40),
        "dnabert": DNABERTSConfig(vocab_size=4096, hidden_size=768, num_layers=12, num_heads=12, intermediate_size=3072),
    },
}
DNA_SPECIAL_TOKENS = ["[UNK]", "[CLS]", "[SEP]", "[PAD]", "[MASK]"]
# Spread of the classifier's logit difference over the calibration set: P(virus) =
# sigmoid(d) with d ~ N(0, 2^2) puts 90% of scores between 0.04 and 0.96.
CLASSIFIER_LOGIT_STD = 2.0


def randomize_(module: nn.Module, seed: int) -> nn.Module:
    """Seeded random weights that keep activations at unit scale: matrices ~ N(0, 1/fan_in),
    embeddings ~ N(0, 1), norm scales 1 + N(0, 0.1^2) and biases ~ N(0, 0.1^2) (non-trivial,
    so parity tests exercise every term)."""
    generator = torch.Generator(device="cpu").manual_seed(seed)
    with torch.no_grad():
        for name, param in module.named_parameters():
            noise = torch.randn(param.shape, generator=generator, dtype=torch.float32)
            if param.ndim == 2 and "embed" in name:
                value = noise
            elif param.ndim == 2:
                value = noise / param.shape[1] ** 0.5
            elif name.endswith("weight"):  # LayerNorm / BatchNorm scales
                value = 1 + 0.1 * noise
            else:
                value = 0.1 * noise
            param.copy_(value.to(param.device))
    return module


def build_esm2(kind: str, seed: int = 1) -> ESM2:
    return randomize_(ESM2(KINDS[kind]["esm2"]), seed).eval()


def build_dnabert_s(kind: str, seed: int = 2) -> DNABERTS:
    return randomize_(DNABERTS(KINDS[kind]["dnabert"]), seed).eval()


def random_dna(rng: np.random.Generator, count: int, low: int, high: int) -> list[str]:
    bases = np.frombuffer(b"ACGT", dtype=np.uint8)
    return [bases[rng.integers(0, 4, size=int(n))].tobytes().decode() for n in rng.integers(low, high + 1, size=count)]


def random_proteins(rng: np.random.Generator, count: int, low: int, high: int) -> list[str]:
    residues = np.frombuffer(b"ACDEFGHIKLMNPQRSTVWY", dtype=np.uint8)
    return [residues[rng.integers(0, 20, size=int(n))].tobytes().decode() for n in rng.integers(low, high + 1, size=count)]


def build_dna_tokenizer(vocab_size: int, seed: int = 3) -> Tokenizer:
    """A valid DNA byte-pair-encoding tokenizer, trained on seeded random DNA."""
    tokenizer = Tokenizer(models.BPE(unk_token="[UNK]"))
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size, special_tokens=DNA_SPECIAL_TOKENS, initial_alphabet=list("ACGT"), show_progress=False
    )
    tokenizer.train_from_iterator(random_dna(np.random.default_rng(seed), 2000, 500, 500), trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[("[CLS]", tokenizer.token_to_id("[CLS]")), ("[SEP]", tokenizer.token_to_id("[SEP]"))],
    )
    return tokenizer


# ---- writers in the real formats -----------------------------------------------------------


def esm2_fair_esm_state(model: ESM2) -> dict[str, torch.Tensor]:
    """Our ESM-2 weights under the published fair-esm names, including the (unused) LM
    head and the rotary buffers, so fair-esm's own loader accepts the file."""
    cfg = model.cfg
    state = model.state_dict()
    prefix = "encoder.sentence_encoder."
    out = {f"{prefix}embed_tokens.weight": state["embed_tokens.weight"]}
    inv_freq = 1.0 / (10000 ** (torch.arange(0, cfg.head_dim, 2).float() / cfg.head_dim))
    for i in range(cfg.num_layers):
        ours, theirs = f"layers.{i}.", f"{prefix}layers.{i}."
        for kind in ("weight", "bias"):
            q, k, v = state[f"{ours}qkv.{kind}"].chunk(3, dim=0)
            out.update({f"{theirs}self_attn.q_proj.{kind}": q, f"{theirs}self_attn.k_proj.{kind}": k, f"{theirs}self_attn.v_proj.{kind}": v})
            for our_name, their_name in (
                ("out_proj", "self_attn.out_proj"), ("attn_norm", "self_attn_layer_norm"),
                ("fc1", "fc1"), ("fc2", "fc2"), ("ffn_norm", "final_layer_norm"),
            ):
                out[f"{theirs}{their_name}.{kind}"] = state[f"{ours}{our_name}.{kind}"]
        out[f"{theirs}self_attn.rot_emb.inv_freq"] = inv_freq
    out[f"{prefix}emb_layer_norm_after.weight"] = state["final_norm.weight"]
    out[f"{prefix}emb_layer_norm_after.bias"] = state["final_norm.bias"]
    d, vocab = cfg.embed_dim, cfg.vocab_size
    generator = torch.Generator().manual_seed(4)
    out.update({
        "encoder.lm_head.weight": state["embed_tokens.weight"],
        "encoder.lm_head.bias": torch.zeros(vocab),
        "encoder.lm_head.dense.weight": torch.randn(d, d, generator=generator) / d**0.5,
        "encoder.lm_head.dense.bias": torch.zeros(d),
        "encoder.lm_head.layer_norm.weight": torch.ones(d),
        "encoder.lm_head.layer_norm.bias": torch.zeros(d),
    })
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def write_esm2_fair_esm(model: ESM2, path: Path) -> Path:
    cfg = model.cfg
    hyper = argparse.Namespace(
        encoder_layers=cfg.num_layers,
        encoder_embed_dim=cfg.embed_dim,
        encoder_ffn_embed_dim=cfg.ffn_dim,
        encoder_attention_heads=cfg.num_heads,
        token_dropout=cfg.token_dropout,
    )
    torch.save({"model": esm2_fair_esm_state(model), "cfg": {"model": hyper}}, path)
    regression = {"contact_head.regression.weight": torch.zeros(1, cfg.num_layers * cfg.num_heads),
                  "contact_head.regression.bias": torch.zeros(1)}
    torch.save({"model": regression}, path.with_name(path.stem + "-contact-regression.pt"))
    return path


def dnabert_hf_state(model: DNABERTS) -> dict[str, torch.Tensor]:
    """Our DNABERT-S weights under the checkpoint's own names (no `bert.` prefix)."""
    out = {}
    for key, value in model.state_dict().items():
        if key.startswith("layers."):
            _, i, module, kind = key.split(".")
            their = {
                "wqkv": "attention.self.Wqkv", "attn_out": "attention.output.dense",
                "attn_norm": "attention.output.LayerNorm", "gated": "mlp.gated_layers",
                "wo": "mlp.wo", "mlp_norm": "mlp.layernorm",
            }[module]
            out[f"encoder.layer.{i}.{their}.{kind}"] = value
        else:
            out[{"word_embeddings.weight": "embeddings.word_embeddings.weight",
                 "token_type_embeddings.weight": "embeddings.token_type_embeddings.weight",
                 "emb_norm.weight": "embeddings.LayerNorm.weight",
                 "emb_norm.bias": "embeddings.LayerNorm.bias"}[key]] = value
    hidden = model.cfg.hidden_size
    out["pooler.dense.weight"] = torch.eye(hidden)
    out["pooler.dense.bias"] = torch.zeros(hidden)
    return {k: v.detach().cpu().contiguous() for k, v in out.items()}


def write_dnabert_hf(model: DNABERTS, tokenizer: Tokenizer, directory: Path) -> Path:
    cfg = model.cfg
    directory.mkdir(parents=True, exist_ok=True)
    config = {
        "architectures": ["BertModel"],
        "model_type": "bert",
        "vocab_size": cfg.vocab_size,
        "hidden_size": cfg.hidden_size,
        "num_hidden_layers": cfg.num_layers,
        "num_attention_heads": cfg.num_heads,
        "intermediate_size": cfg.intermediate_size,
        "hidden_act": "gelu",
        "layer_norm_eps": cfg.layer_norm_eps,
        "type_vocab_size": 2,
        "alibi_starting_size": 512,
        "attention_probs_dropout_prob": 0.0,
        "hidden_dropout_prob": 0.1,
        "pad_token_id": tokenizer.token_to_id("[PAD]"),
    }
    (directory / "config.json").write_text(json.dumps(config, indent=2) + "\n")
    torch.save(dnabert_hf_state(model), directory / "pytorch_model.bin")
    tokenizer.save(str(directory / "tokenizer.json"))
    return directory


def save_like_original(model: MLPClassifier, path: Path) -> Path:
    """torch.save of the whole module with its class named `__main__.MLPClassifier`, as the
    original's training script leaves it. pickle checks that the name resolves to the
    class, so the class is published in __main__ for the duration of the save only."""
    original_style = type("MLPClassifier", (MLPClassifier,), {"__module__": "__main__"})
    main = sys.modules["__main__"]
    missing = object()
    previous = getattr(main, "MLPClassifier", missing)
    main.MLPClassifier = original_style
    model.__class__ = original_style
    try:
        torch.save(model, path)
    finally:
        model.__class__ = MLPClassifier
        if previous is missing:
            del main.MLPClassifier
        else:
            main.MLPClassifier = previous
    return path


@torch.no_grad()
def calibrated_classifier(esm2: ESM2, dnabert: DNABERTS, dna_tokenizer: DnaTokenizer, seed: int = 5) -> MLPClassifier:
    """A random classifier whose scores spread over (0, 1) on these models' embeddings.

    Random embedding models give embeddings that share a large common component and
    differ little between inputs, so a classifier with arbitrary weights would score
    everything alike. We embed a seeded calibration set (32 random proteins and DNA
    strings), set BatchNorm's running mean/variance to the hidden layer's statistics on
    it (the normalised hidden units are then ~N(0, 1) across inputs), then scale the
    output layer so the logit difference (virus - others) has standard deviation
    CLASSIFIER_LOGIT_STD and mean 0 over the set: half the scores fall on each side of
    0.5 and most lie between 0.04 and 0.96.
    """
    rng = np.random.default_rng(seed)
    device = next(esm2.parameters()).device
    proteins = assemble_packed(tokenize_proteins(random_proteins(rng, 32, 40, 80)), np.arange(32))
    cu = proteins.cu_seqlens.to(device)
    esm_emb = mean_residues_packed(esm2.forward_packed(proteins.tokens.to(device), cu, proteins.max_seqlen), cu)
    dna = assemble_padded(dna_tokenizer.tokenize(random_dna(rng, 32, 150, 300)), np.arange(32), dna_tokenizer.pad_id)
    dna_emb = dnabert.embed(dna.input_ids.to(device), dna.lengths.to(device))
    x = torch.cat([dna_emb, esm_emb], dim=1).float().cpu()
    return calibrate_(randomize_(MLPClassifier(), seed).eval(), x)


@torch.no_grad()
def calibrate_(classifier: MLPClassifier, x: torch.Tensor) -> MLPClassifier:
    """Set BatchNorm's statistics and the output layer's scale and bias from features
    x [N, 3328] as described in `calibrated_classifier` (in place; returns the classifier)."""
    hidden = classifier.hidden_layer(x)
    classifier.bn1.weight.fill_(1.0)
    classifier.bn1.bias.zero_()
    classifier.bn1.running_mean.copy_(hidden.mean(dim=0))
    classifier.bn1.running_var.copy_(hidden.var(dim=0) + 1e-6)
    classifier.bn1.num_batches_tracked.fill_(1)
    activations = torch.relu(classifier.bn1(hidden))
    weight = classifier.output_layer.weight
    difference = activations @ (weight[1] - weight[0])
    weight.mul_(CLASSIFIER_LOGIT_STD / difference.std())
    shift = (difference.mean() * CLASSIFIER_LOGIT_STD / difference.std()).item()
    classifier.output_layer.bias.copy_(torch.tensor([shift / 2, -shift / 2]))
    return classifier


def checkpoint_paths(kind: str, directory: str | Path) -> dict[str, Path]:
    """Where `write_checkpoints` puts the checkpoints of `kind` inside `directory`."""
    directory = Path(directory)
    return {
        "esm2": directory / f"esm2_synthetic_{kind}.pt",
        "dnabert": directory / f"dnabert_s_synthetic_{kind}",
        "classifier": directory / "classifier_synthetic.pth",
    }


def write_checkpoints(kind: str, directory: str | Path, device: str | torch.device = "cpu") -> dict[str, Path]:
    """Write the three synthetic checkpoints of `kind` into `directory` (created); the
    classifier is calibrated by running the embedding models on `device`."""
    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; expected one of {sorted(KINDS)}")
    paths = checkpoint_paths(kind, directory)
    Path(directory).mkdir(parents=True, exist_ok=True)
    esm2 = build_esm2(kind)
    dnabert = build_dnabert_s(kind)
    dna_tokenizer = build_dna_tokenizer(KINDS[kind]["dnabert"].vocab_size)
    write_esm2_fair_esm(esm2, paths["esm2"])
    write_dnabert_hf(dnabert, dna_tokenizer, paths["dnabert"])
    classifier = calibrated_classifier(esm2.to(device), dnabert.to(device), DnaTokenizer(dna_tokenizer))
    save_like_original(classifier, paths["classifier"])
    return paths


def cached_checkpoints(kind: str) -> dict[str, Path]:
    """The synthetic checkpoints of `kind` in the state directory, written on first use (the
    full kind takes about a minute: 2.8e9 seeded random numbers, a CPU calibration pass and
    11 GB to write) and then reused by every later load, the way downloaded weights are.
    Keyed by this module's and the models' code, so a change that alters them writes anew."""
    from . import state
    from .models import classifier as classifier_module, dnabert_s, esm2

    if kind not in KINDS:
        raise ValueError(f"unknown synthetic kind {kind!r}; expected one of {sorted(KINDS)}")
    digest = state.code_digest(sys.modules[__name__], esm2, dnabert_s, classifier_module)
    directory = state.state_dir() / "synthetic" / f"{kind}-{digest}"
    if not directory.is_dir():
        with state.exclusive(directory.with_name(directory.name + ".lock")):
            if not directory.is_dir():  # another runtime may have written it while we waited
                staging = directory.with_name(f"{directory.name}.tmp-{os.getpid()}")
                shutil.rmtree(staging, ignore_errors=True)
                write_checkpoints(kind, staging)
                _fsync_tree(staging)
                os.replace(staging, directory)
    return checkpoint_paths(kind, directory)


def _fsync_tree(directory: Path) -> None:
    for path in sorted(directory.rglob("*")):
        if path.is_file():
            with open(path, "rb") as handle:
                os.fsync(handle.fileno())

