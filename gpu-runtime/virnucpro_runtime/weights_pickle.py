"""Reading torch weights files without running pickled code.

`restricted_load` is torch.load with an unpickler that resolves only an allow-list of
names: torch's tensor rebuild functions, storage and dtype names, plain containers, and
inert stand-ins (`PickledObject`) for module classes (torch.nn.* and the original's
`__main__.MLPClassifier`) and for configuration containers (argparse.Namespace,
omegaconf, typing: fair-esm's `args`/`cfg`), whose pickled state is then read as data,
and numpy arrays (as the fork's ESM-2 batch checkpoints hold them).
Any other name (os.system, builtins.eval, ...) stops the load before anything is
called. CUDA storages are mapped to the CPU.
"""

from __future__ import annotations

import collections
import pickle
import types
from pathlib import Path

import numpy as np
import torch


class CheckpointError(ValueError):
    """A weights file that is unreadable, unsafe, or not the model it should be."""


class PickledObject:
    """Stand-in for an allow-listed class: remembers its pickled state, runs nothing."""

    def __init__(self, *args, **kwargs):
        self.args = args

    def __setstate__(self, state):
        self.state = state


def _rebuild_parameter(data, requires_grad, backward_hooks, *extra):
    return data


_numpy_reconstruct = (np._core if hasattr(np, "_core") else np.core).multiarray._reconstruct


# Names a torch.save'd module or state dict legitimately contains. Tensors and storages are
# rebuilt by torch's own functions; parameters are returned as their plain tensors.
_SAFE_GLOBALS = {
    ("torch._utils", "_rebuild_tensor_v2"): torch._utils._rebuild_tensor_v2,
    ("torch._utils", "_rebuild_parameter"): _rebuild_parameter,
    ("torch._utils", "_rebuild_parameter_with_state"): _rebuild_parameter,
    ("collections", "OrderedDict"): collections.OrderedDict,
    ("builtins", "set"): set,
    ("builtins", "frozenset"): frozenset,
    # pickle protocol 2 (torch.save's default) writes Python 2 names for builtins
    ("__builtin__", "set"): set,
    ("__builtin__", "frozenset"): frozenset,
    ("torch", "Size"): torch.Size,
    ("torch", "device"): torch.device,
    ("argparse", "Namespace"): PickledObject,
    # numpy arrays (the fork's ESM-2 batch checkpoints hold them; legacy.py reads those).
    ("numpy", "ndarray"): np.ndarray,
    ("numpy", "dtype"): np.dtype,
    ("numpy.core.multiarray", "_reconstruct"): _numpy_reconstruct,  # numpy 1 pickles
    ("numpy._core.multiarray", "_reconstruct"): _numpy_reconstruct,  # numpy 2
}
# Module classes of whole-module pickles, and configuration containers that checkpoints of
# fairseq lineage may carry next to the weights (argparse above, omegaconf, typing hints).
_INERT_MODULE_PREFIXES = ("torch.nn.modules.", "omegaconf.", "typing")
_INERT_MAIN_CLASSES = {"MLPClassifier"}


class _RestrictedUnpickler(pickle.Unpickler):
    def find_class(self, module: str, name: str):
        if (module, name) in _SAFE_GLOBALS:
            return _SAFE_GLOBALS[(module, name)]
        if module == "torch" and (name.endswith("Storage") or isinstance(getattr(torch, name, None), torch.dtype)):
            return getattr(torch, name)
        if module.startswith(_INERT_MODULE_PREFIXES) or (module == "__main__" and name in _INERT_MAIN_CLASSES):
            return PickledObject
        raise pickle.UnpicklingError(f"refusing to load '{module}.{name}': not an allowed name in a weights file")


# torch.load accepts any object with pickle's interface as `pickle_module`.
_restricted_pickle = types.ModuleType("virnucpro_restricted_pickle")
_restricted_pickle.Unpickler = _RestrictedUnpickler
_restricted_pickle.load = lambda f, **kw: _RestrictedUnpickler(f, **kw).load()
_restricted_pickle.__name__ = "virnucpro_restricted_pickle"


def restricted_load(path: str | Path, mmap: bool = False):
    """torch.load through the allow-list above, CUDA storages mapped to the CPU. With
    `mmap`, tensors of a zip-format file stay in the page cache instead of being read into
    memory (a 3B checkpoint then never needs two copies in RAM)."""
    try:
        return torch.load(str(path), map_location="cpu", pickle_module=_restricted_pickle, weights_only=False, mmap=mmap)
    except pickle.UnpicklingError as err:
        raise CheckpointError(f"{path}: {err}") from None
    except RuntimeError as err:
        if mmap and "mmap" in str(err):  # legacy (pre-zip) torch.save format: no mmap
            return restricted_load(path, mmap=False)
        raise


def module_state(obj, prefix: str = "") -> dict[str, torch.Tensor]:
    """The state dict of a restricted-loaded module (a PickledObject tree), or `obj` itself
    when the file held a plain state dict."""
    if isinstance(obj, dict):
        return {k: v for k, v in obj.items() if isinstance(v, torch.Tensor)}
    if not isinstance(obj, PickledObject) or not isinstance(getattr(obj, "state", None), dict):
        raise CheckpointError(f"expected a module or a state dict, found {type(obj).__name__}")
    state: dict[str, torch.Tensor] = {}
    for table in ("_parameters", "_buffers"):
        for name, tensor in obj.state.get(table, {}).items():
            if tensor is not None:
                state[prefix + name] = tensor
    for name, child in obj.state.get("_modules", {}).items():
        if child is not None:
            state.update(module_state(child, prefix + name + "."))
    return state


def check_state(path, state: dict[str, torch.Tensor], expected: dict[str, torch.Tensor], ignore=()) -> None:
    """Raise a CheckpointError naming the file and key when `state` does not match the
    keys and shapes of `expected` (a model's state dict)."""
    missing = [k for k in expected if k not in state]
    if missing:
        raise CheckpointError(f"{path}: missing key(s) {missing[:5]}{' ...' if len(missing) > 5 else ''}: not the expected model")
    for key, tensor in expected.items():
        if tuple(state[key].shape) != tuple(tensor.shape):
            raise CheckpointError(
                f"{path}: key '{key}' has shape {tuple(state[key].shape)}, expected {tuple(tensor.shape)}"
            )
    unexpected = [k for k in state if k not in expected and not k.startswith(tuple(ignore))]
    if unexpected:
        raise CheckpointError(f"{path}: unexpected key(s) {unexpected[:5]}: not the expected model")
