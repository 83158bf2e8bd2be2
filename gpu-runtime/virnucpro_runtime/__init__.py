"""virnucpro resident PyTorch runtime: the serving path (``python -m virnucpro_runtime
serve`` and ``import-legacy``). The measuring tools (bench, embed, the fp32 reference,
parity) are in ``measure/``, which this package never imports."""
