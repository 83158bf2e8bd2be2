"""The three models of the VirNucPro prediction path, one file each; fp8.py swaps ESM-2's
linear layers for FP8 ones after loading (``--precision fp8``)."""
