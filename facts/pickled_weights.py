"""Weights saved as Python pickles, and the stack key that accepts them (standard library only).

Loading a pickle can run code: torch 1.13 and 2.0 (the oldest DLC images) load
`pytorch_model.bin` without `weights_only`, and `weights_only=True` can be bypassed before
torch 2.6 (CVE-2025-32434). The packager refuses, at preview, and the loader refuses, before any
upload, a model whose weights are pickles only, unless the stack trusts the repository.
"""

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# The stack key that accepts pickles for a trusted repository (loader event allow_pickled_weights).
ALLOW_PICKLES_KEY = "allowPickledWeights"
