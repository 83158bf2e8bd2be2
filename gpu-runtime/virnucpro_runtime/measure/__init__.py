"""The measuring tools, kept apart from the serving path: they import the runtime, the
runtime never imports them (``serve`` starts without loading any of this).

    bench.py             ``python -m virnucpro_runtime bench``: throughput and parity on one device
    embed.py             ``python -m virnucpro_runtime embed``: embeddings to Parquet, exact and simple
    reference.py         the original's way (fp32, padded fair-esm batches): the yardstick
    parity.py            the fast path's embeddings and labels against the reference
    proxy_classifier.py  a trained stand-in for the published classifier, for label parity

``synthetic.py`` (random-weight checkpoints in the real formats) is not here although the
tools use it: ``serve``'s load request and ``import-legacy`` take ``synthetic: tiny|full``
and write or read those checkpoints, so it belongs to the serving path.
"""
