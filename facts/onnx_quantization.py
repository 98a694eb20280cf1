"""int8 ONNX archives (`onnxQuantization: int8`): the choices, the quantizer and its quality bar.

The loader quantizes the graph it packages (fused, or the export) with ONNX Runtime's dynamic
quantizer (loader/graph_quantization.py) and ships it only when its sentence vectors stay close to
the fp32 graph's and retrieve the same neighbours (loader/quantization_check.py). The thresholds
below are that bar; docs/loader.md gives the figures they were set from.
"""

from __future__ import annotations

from facts.onnx_fusion import FUSION_PACKAGES, MAX_FUSED_GRAPH_BYTES

NO_QUANTIZATION = "none"
INT8 = "int8"
QUANTIZATIONS = (NO_QUANTIZATION, INT8)
# What quantizes and what the check tokenizes with, pinned (loader/requirements.txt): another
# quantizer may round differently (other bytes), another tokenizer may check other ids.
QUANTIZATION_PACKAGES = (*FUSION_PACKAGES, ("tokenizers", "0.23.3"))
# The bar an int8 graph must clear against its fp32 graph. Measured (docs/loader.md):
# all-MiniLM-L6-v2 min cosine 0.979, mean recall@10 0.884; a model with heavy-tailed weights
# 0.19 / 0.007.
MIN_SENTENCE_COSINE = 0.95
MIN_MEAN_RECALL_AT_10 = 0.80
# The largest fp32 graph the loader quantizes and checks: the one it takes to disk to fuse. Within
# the loader's 3,008 MB: quantizing a 435 MB BERT-base peaks at 2,026 MB, its check at 1,328 MB
# (docs/loader.md). Larger graphs (the *-large models) are refused with int8, never shipped fp32.
MAX_QUANTIZED_GRAPH_BYTES = MAX_FUSED_GRAPH_BYTES


def quantization_identity() -> str:
    """The quantizer's packages and versions, as the archive's format version hashes them."""
    return ",".join(f"{name}=={version}" for name, version in QUANTIZATION_PACKAGES)
