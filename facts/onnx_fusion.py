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
# The largest graph the loader fuses. With its weights on disk while the optimizer works
# (loader/graph_fusion.py), fusing peaks at about 100 MB + 4.7× the graph (measured: 606 MB for
# all-MiniLM-L6-v2's 90 MB, 2,141 MB for a 435 MB BERT-base), which the loader's 3,008 MB must
# hold: base-size models fuse, the *-large ones (1.3 GB) are packaged as the repository ships them.
MAX_FUSED_GRAPH_BYTES = 480 * 1024 * 1024
# How close every token vector of the fused graph must be to the export's, on a padded batch.
MIN_TOKEN_COSINE = 0.99999


def fusion_requirements(packages: tuple[tuple[str, str], ...] = FUSION_PACKAGES) -> str:
    """The optimizer as pip takes it: `onnxruntime==1.23.2 onnx==1.23.2`."""
    return " ".join(f"{name}=={version}" for name, version in packages)


def fusion_identity() -> str:
    """The optimizer's packages and versions, as the archive's format version hashes them."""
    return ",".join(f"{name}=={version}" for name, version in FUSION_PACKAGES)
