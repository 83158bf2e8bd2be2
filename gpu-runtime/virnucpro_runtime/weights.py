"""Finding and loading the weights of ESM-2 and DNABERT-S.

    esm2 = load_esm2(path, device, dtype)                   # -> models.esm2.ESM2, eval
    dnabert, tokenizer = load_dnabert_s(path, device, dtype)  # -> (DNABERTS, DnaTokenizer)

`path` may be None: the weights are then looked up in the standard caches (below). A
path is either a file or a directory:
- ESM-2, fair-esm `.pt` file: `{'model': state dict, 'cfg': {'model': Namespace}}` or
  `'args'`; keys `encoder.sentence_encoder.*` (published files) or the module's own names
  (`embed_tokens.*`, `layers.N.self_attn.*`, ...). Sizes come from the tensors; the head
  count from cfg/args, else from the published ESM-2 sizes.
- ESM-2, Hugging Face directory (`EsmModel` / `EsmForMaskedLM`): config.json +
  model.safetensors or pytorch_model.bin, keys with or without `esm.`.
- DNABERT-S, Hugging Face directory: config.json + pytorch_model.bin or
  model.safetensors (keys with or without `bert.`) + tokenizer.json.
Files are read without running pickled code (`weights_pickle`). A file of the wrong
model or shape fails with a `CheckpointError` naming the file, the key and the shapes.
With a `cache` (weights_cache.WeightsCache), the converted weights are written once to the
state directory and taken from there on later loads.

Look-up order: explicit path; the standard caches (weight_caches.py, which `predict` asks
too). When nothing is found and `huggingface_hub` is importable and HF_HUB_OFFLINE is unset, a
download is attempted; otherwise `WeightsNotFound` says which file is missing and where to put it.
"""

from __future__ import annotations

import dataclasses
import json
import os
import re
import sys
from pathlib import Path

import torch

from .state import code_digest
from .weight_caches import DNABERT_HUB_REPO, ESM2_HUB_REPO, ESM2_TORCH_HUB_FILE, cached, hf_hub_cache, torch_hub_checkpoints

from .models.dnabert_s import DNABERTS, DNABERTSConfig
from .models.esm2 import ESM2, ESM2Config
from .tokenizers import DnaTokenizer
from .weights_pickle import CheckpointError, PickledObject, check_state, restricted_load

# Head counts of the published ESM-2 models, by (layers, embed dim): a fair-esm state dict
# carries every other size in its tensor shapes.
_ESM2_PUBLISHED_HEADS = {(6, 320): 20, (12, 480): 20, (30, 640): 20, (33, 1280): 20, (36, 2560): 40, (48, 5120): 40}


class WeightsNotFound(FileNotFoundError):
    pass


def _try_download(repo: str) -> Path | None:
    if os.environ.get("HF_HUB_OFFLINE"):
        return None
    try:
        from huggingface_hub import snapshot_download
    except ImportError:
        return None
    return Path(snapshot_download(repo))


def resolve_esm2(path: str | Path | None) -> Path:
    """An ESM-2 weights file or directory: `path` when given, else the caches."""
    if path is not None:
        return _existing(path, "ESM-2 weights")
    found = cached("esm2")
    if found is not None:
        return found
    downloaded = _try_download(ESM2_HUB_REPO)
    if downloaded is not None:
        return downloaded
    raise WeightsNotFound(
        f"ESM-2 3B weights not found. Pass --esm2-weights, or put the fair-esm file "
        f"{ESM2_TORCH_HUB_FILE} in {torch_hub_checkpoints()}, or the Hugging Face model "
        f"{ESM2_HUB_REPO} in {hf_hub_cache()} (huggingface-cli download {ESM2_HUB_REPO})."
    )


def resolve_dnabert_s(path: str | Path | None) -> Path:
    """A DNABERT-S model directory: `path` when given, else the Hugging Face cache."""
    if path is not None:
        return _existing(path, "DNABERT-S weights")
    candidate = cached("dnabert") or _try_download(DNABERT_HUB_REPO)
    if candidate is not None:
        return candidate
    raise WeightsNotFound(
        f"DNABERT-S weights not found. Pass --dnabert-weights DIR (config.json, pytorch_model.bin, "
        f"tokenizer.json), or put the Hugging Face model {DNABERT_HUB_REPO} in {hf_hub_cache()} "
        f"(huggingface-cli download {DNABERT_HUB_REPO})."
    )


def _existing(path: str | Path, what: str) -> Path:
    path = Path(path).expanduser()
    if not path.exists():
        raise WeightsNotFound(f"{what}: {path} does not exist")
    return path


def _read_hf_state(directory: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    source, state = _read_hf_files(directory)
    # Old BERT checkpoints, and transformers 5 when saving, name LayerNorm parameters
    # gamma/beta instead of weight/bias.
    return source, {re.sub(r"\.gamma$", ".weight", re.sub(r"\.beta$", ".bias", k)): v for k, v in state.items()}


def _read_hf_files(directory: Path) -> tuple[Path, dict[str, torch.Tensor]]:
    safetensors_file = directory / "model.safetensors"
    if safetensors_file.is_file():
        from safetensors.torch import load_file

        return safetensors_file, load_file(str(safetensors_file))
    bin_file = directory / "pytorch_model.bin"
    if bin_file.is_file():
        state = restricted_load(bin_file, mmap=True)
        if not isinstance(state, dict):
            raise CheckpointError(f"{bin_file}: expected a state dict")
        return bin_file, state
    raise WeightsNotFound(f"{directory}: neither model.safetensors nor pytorch_model.bin found")


def _read_config(directory: Path) -> dict:
    config_file = directory / "config.json"
    if not config_file.is_file():
        raise WeightsNotFound(f"{directory}: config.json not found")
    return json.loads(config_file.read_text())


def _strip_prefix(state: dict[str, torch.Tensor], prefix: str) -> dict[str, torch.Tensor]:
    return {k[len(prefix):] if k.startswith(prefix) else k: v for k, v in state.items()}


def _finish(model_class, cfg, source, state: dict[str, torch.Tensor], device, dtype, ignore=()):
    """Build the model without initialising it (meta device), check the checkpoint's keys
    and shapes against it, adopt the checkpoint's tensors, then move and cast."""
    with torch.device("meta"):
        model = model_class(cfg)
    expected = model.state_dict()
    check_state(source, state, expected, ignore=ignore)
    model.load_state_dict({k: state[k] for k in expected}, assign=True)
    return model.to(device=device, dtype=dtype).eval()


# ---- ESM-2 -------------------------------------------------------------------------------

_FAIR_ESM_IGNORED = ("lm_head.", "contact_head.")
_HF_ESM_IGNORED = ("lm_head.", "contact_head.", "pooler.", "embeddings.position_ids")


def _esm2_from_fair_esm_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """fair-esm names (published prefixes stripped as fair-esm does) -> ours."""
    state = {re.sub(r"^(encoder\.sentence_encoder\.|encoder\.)", "", k): v for k, v in state.items()}
    out = {}
    for key, value in state.items():
        m = re.match(r"layers\.(\d+)\.(.+)$", key)
        if not m:
            out[{"emb_layer_norm_after.weight": "final_norm.weight", "emb_layer_norm_after.bias": "final_norm.bias"}.get(key, key)] = value
            continue
        i, rest = m.groups()
        if rest.startswith("self_attn.rot_emb."):
            continue
        if rest.startswith(("self_attn.q_proj.", "self_attn.k_proj.", "self_attn.v_proj.")):
            continue  # fused below
        rest = (
            rest.replace("self_attn.out_proj.", "out_proj.")
            .replace("self_attn_layer_norm.", "attn_norm.")
            .replace("final_layer_norm.", "ffn_norm.")
        )
        out[f"layers.{i}.{rest}"] = value
    for key in state:
        m = re.match(r"layers\.(\d+)\.self_attn\.q_proj\.(weight|bias)$", key)
        if m:
            i, kind = m.groups()
            parts = [state.get(f"layers.{i}.self_attn.{p}_proj.{kind}") for p in "qkv"]
            if all(p is not None for p in parts):
                out[f"layers.{i}.qkv.{kind}"] = torch.cat(parts, dim=0)
    return out


def _esm2_from_hf_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    # Rotary frequencies are recomputed, never read (transformers 5 even saves them under a
    # wildcard name, encoder.layer.*.attention.self.rotary_embeddings.inv_freq).
    state = {k: v for k, v in _strip_prefix(state, "esm.").items() if "rotary_embeddings." not in k}
    out = {}
    for key, value in state.items():
        m = re.match(r"encoder\.layer\.(\d+)\.(.+)$", key)
        if not m:
            renamed = {
                "embeddings.word_embeddings.weight": "embed_tokens.weight",
                "encoder.emb_layer_norm_after.weight": "final_norm.weight",
                "encoder.emb_layer_norm_after.bias": "final_norm.bias",
            }
            out[renamed.get(key, key)] = value
            continue
        i, rest = m.groups()
        if rest.startswith("attention.self."):
            m2 = re.match(r"attention\.self\.query\.(weight|bias)$", rest)
            if m2:
                kind = m2.group(1)
                parts = [state.get(f"encoder.layer.{i}.attention.self.{p}.{kind}") for p in ("query", "key", "value")]
                if all(p is not None for p in parts):
                    out[f"layers.{i}.qkv.{kind}"] = torch.cat(parts, dim=0)
            continue
        out[f"layers.{i}.{_rename_first_prefix(rest, _HF_ESM_LAYER_PREFIXES)}"] = value
    return out


_HF_ESM_LAYER_PREFIXES = (
    ("attention.output.dense.", "out_proj."),
    ("attention.LayerNorm.", "attn_norm."),
    ("intermediate.dense.", "fc1."),
    ("output.dense.", "fc2."),
    ("LayerNorm.", "ffn_norm."),
)


def _rename_first_prefix(name: str, prefixes: tuple[tuple[str, str], ...]) -> str:
    """``name`` with the first matching (theirs, ours) prefix swapped; unchanged if none matches."""
    for theirs, ours in prefixes:
        if name.startswith(theirs):
            return ours + name[len(theirs):]
    return name


def _esm2_config_from_state(source, state: dict[str, torch.Tensor], heads: int | None, **extra) -> ESM2Config:
    if "embed_tokens.weight" not in state or "layers.0.fc1.weight" not in state:
        raise CheckpointError(f"{source}: no ESM-2 embedding or layer weights (embed_tokens, layers.0.fc1): not an ESM-2 checkpoint")
    vocab, dim = state["embed_tokens.weight"].shape
    layers = 1 + max(int(m.group(1)) for k in state if (m := re.match(r"layers\.(\d+)\.", k)))
    heads = heads or _ESM2_PUBLISHED_HEADS.get((layers, dim))
    if heads is None:
        raise CheckpointError(f"{source}: ESM-2 with {layers} layers x {dim} is not a published size and the file names no head count")
    return ESM2Config(
        num_layers=layers,
        embed_dim=dim,
        num_heads=heads,
        ffn_dim=state["layers.0.fc1.weight"].shape[0],
        attn_dim=state["layers.0.out_proj.weight"].shape[1] if "layers.0.out_proj.weight" in state else dim,
        vocab_size=vocab,
        **extra,
    )


def _fair_esm_hyperparameters(checkpoint: dict) -> dict:
    """cfg['model'] (fair-esm 2 files) or args (older files), read as plain attributes."""
    for holder in (checkpoint.get("cfg", {}).get("model") if isinstance(checkpoint.get("cfg"), dict) else None, checkpoint.get("args")):
        if isinstance(holder, PickledObject) and isinstance(getattr(holder, "state", None), dict):
            return holder.state
        if isinstance(holder, dict):
            return holder
    return {}


def _source_files(path: Path) -> list[Path]:
    """The files a checkpoint is read from: the file itself, or a directory's config and weights."""
    if path.is_file():
        return [path]
    weights = next((path / n for n in ("model.safetensors", "pytorch_model.bin") if (path / n).is_file()), None)
    return [path / "config.json"] + ([weights] if weights else [])


def _cached(cache, model_name: str, model_class, config_class, files: list[Path], device, dtype):
    """The model from the converted-weights cache, or None."""
    if cache is None:
        return None
    hit = cache.load(model_name, files, dtype, torch.device(device), _code_digest(model_class))
    if hit is None:
        return None
    with torch.device("meta"):
        model = model_class(config_class(**hit.config))
    model.load_state_dict(hit.state, assign=True)
    return model.eval()


def _remember(cache, model_name: str, model, files: list[Path], dtype) -> None:
    if cache is not None:
        cache.store(model_name, files, dtype, _code_digest(type(model)), dataclasses.asdict(model.cfg), model.state_dict())


def _code_digest(model_class) -> str:
    """The conversion is this module's code plus the model's layout."""
    return code_digest(sys.modules[__name__], sys.modules[model_class.__module__])


def load_esm2(path: str | Path | None, device="cpu", dtype: torch.dtype = torch.float32, cache=None) -> ESM2:
    """``cache``: a weights_cache.WeightsCache, to take the converted weights from it (or
    convert once and put them there)."""
    path = resolve_esm2(path)
    files = _source_files(path)
    model = _cached(cache, "esm2", ESM2, ESM2Config, files, device, dtype)
    if model is not None:
        return model
    model = _read_esm2(path, device, dtype)
    _remember(cache, "esm2", model, files, dtype)
    return model


def _read_esm2(path: Path, device, dtype: torch.dtype) -> ESM2:
    if path.is_dir():
        config = _read_config(path)
        if config.get("emb_layer_norm_before") or config.get("position_embedding_type", "rotary") != "rotary":
            raise CheckpointError(f"{path / 'config.json'}: an ESM-1-style model (no rotary embeddings or an embedding LayerNorm), not ESM-2")
        source, raw = _read_hf_state(path)
        state = _esm2_from_hf_names(raw)
        ignore = _HF_ESM_IGNORED
        cfg = _esm2_config_from_state(
            source,
            state,
            config.get("num_attention_heads"),
            token_dropout=bool(config.get("token_dropout", True)),
            layer_norm_eps=float(config.get("layer_norm_eps", 1e-5)),
            padding_idx=int(config.get("pad_token_id", 1)),
            mask_idx=int(config.get("mask_token_id", 32)),
        )
    else:
        source = path
        checkpoint = restricted_load(path, mmap=True)
        if not isinstance(checkpoint, dict):
            raise CheckpointError(f"{path}: expected a fair-esm checkpoint dict")
        raw = checkpoint.get("model", checkpoint)
        state = _esm2_from_fair_esm_names({k: v for k, v in raw.items() if isinstance(v, torch.Tensor)})
        ignore = _FAIR_ESM_IGNORED
        hyper = _fair_esm_hyperparameters(checkpoint)
        cfg = _esm2_config_from_state(
            source, state, hyper.get("encoder_attention_heads"), token_dropout=bool(hyper.get("token_dropout", True))
        )
    return _finish(ESM2, cfg, source, state, device, dtype, ignore=ignore)


# ---- DNABERT-S ---------------------------------------------------------------------------

_DNABERT_IGNORED = ("pooler.", "cls.", "embeddings.position_ids")


def _dnabert_from_hf_names(state: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    state = _strip_prefix(state, "bert.")
    out = {}
    for key, value in state.items():
        m = re.match(r"encoder\.layer\.(\d+)\.(.+)$", key)
        if not m:
            out[{"embeddings.word_embeddings.weight": "word_embeddings.weight",
                 "embeddings.token_type_embeddings.weight": "token_type_embeddings.weight",
                 "embeddings.LayerNorm.weight": "emb_norm.weight",
                 "embeddings.LayerNorm.bias": "emb_norm.bias"}.get(key, key)] = value
            continue
        i, rest = m.groups()
        out[f"layers.{i}.{_rename_first_prefix(rest, _DNABERT_LAYER_PREFIXES)}"] = value
    return out


_DNABERT_LAYER_PREFIXES = (
    ("attention.self.Wqkv.", "wqkv."),
    ("attention.output.dense.", "attn_out."),
    ("attention.output.LayerNorm.", "attn_norm."),
    ("mlp.gated_layers.", "gated."),
    ("mlp.wo.", "wo."),
    ("mlp.layernorm.", "mlp_norm."),
)


def load_dnabert_s(path: str | Path | None, device="cpu", dtype: torch.dtype = torch.float32, cache=None) -> tuple[DNABERTS, DnaTokenizer]:
    path = resolve_dnabert_s(path)
    if not path.is_dir():
        raise CheckpointError(f"{path}: DNABERT-S weights must be a model directory (config.json, weights, tokenizer.json)")
    tokenizer_file = path / "tokenizer.json"
    if not tokenizer_file.is_file():
        raise WeightsNotFound(f"{path}: tokenizer.json not found")
    files = _source_files(path)
    model = _cached(cache, "dnabert_s", DNABERTS, DNABERTSConfig, files, device, dtype)
    if model is None:
        model = _read_dnabert_s(path, device, dtype)
        _remember(cache, "dnabert_s", model, files, dtype)
    return model, DnaTokenizer.from_file(tokenizer_file)


def _read_dnabert_s(path: Path, device, dtype: torch.dtype) -> DNABERTS:
    config = _read_config(path)
    source, raw = _read_hf_state(path)
    state = _dnabert_from_hf_names(raw)
    if "word_embeddings.weight" not in state or "layers.0.wqkv.weight" not in state:
        raise CheckpointError(f"{source}: no DNABERT-S embedding or Wqkv weights: not a DNABERT-S checkpoint")
    vocab, hidden = state["word_embeddings.weight"].shape
    cfg = DNABERTSConfig(
        vocab_size=vocab,
        hidden_size=hidden,
        num_layers=1 + max(int(m.group(1)) for k in state if (m := re.match(r"layers\.(\d+)\.", k))),
        num_heads=int(config.get("num_attention_heads", 12)),
        intermediate_size=state["layers.0.wo.weight"].shape[1],
        attn_dim=state["layers.0.wqkv.weight"].shape[0] // 3,
        layer_norm_eps=float(config.get("layer_norm_eps", 1e-12)),
    )
    return _finish(DNABERTS, cfg, source, state, device, dtype, ignore=_DNABERT_IGNORED)
