"""Fusing the ONNX export when it is packaged: the optimizer's pinned versions and its limits.

The Hub's exports (`onnx/model.onnx`) are unfused graphs: ONNX Runtime's session optimizations do
not match their attention, so a single long text runs about 1.4× sentence-transformers. ONNX
Runtime's own transformer optimizer fuses them (Attention, SkipLayerNormalization,
EmbedLayerNormalization, BiasGelu: optimum's O2, exact), about 1.7×. It needs the `onnx` package
and 2.5 s on the smallest models, too slow for a cold start, so the loader fuses once, when it
packages, and checks the fused graph against the export before it ships it (loader/graph_fusion.py).
The same versions run in the loader Lambda (loader/requirements.txt) and wherever runner `local`
packages, so an archive's bytes do not depend on where it was made.
"""

from __future__ import annotations

# What the loader fuses with, pinned: another optimizer may fuse differently (other bytes).
FUSION_PACKAGES = (("onnxruntime", "1.23.2"), ("onnx", "1.23.2"))
# The largest graph the loader fuses. The optimizer holds about 5.5× the graph in memory
# (measured: 500 MB for all-MiniLM-L6-v2's 90 MB), which the loader's memory bounds; a larger
# graph (the *-large models, 1.3 GB) is packaged as the repository ships it.
MAX_FUSED_GRAPH_BYTES = 512 * 1024 * 1024
# How close every token vector of the fused graph must be to the export's, on a padded batch.
MIN_TOKEN_COSINE = 0.99999


def fusion_identity() -> str:
    """The optimizer's packages and versions, as the archive's format version hashes them."""
    return ",".join(f"{name}=={version}" for name, version in FUSION_PACKAGES)
