"""Weights saved as Python pickles, and the stack key that accepts them (standard library only).

Loading a pickle can run code (`weights_only=True` is bypassable before torch 2.6:
CVE-2025-32434): packager and loader refuse pickle-only weights unless the stack trusts the repo.
"""

PICKLE_SUFFIXES = (".bin", ".pt", ".pth", ".ckpt")
# The stack key that accepts pickles for a trusted repository (loader event allow_pickled_weights).
ALLOW_PICKLES_KEY = "allowPickledWeights"
