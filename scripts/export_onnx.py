"""Export a Hugging Face encoder to ONNX as the Hub's embedding repos ship it: onnx/model.onnx.

opset 17, fp32, eager attention, optimum's input and output names, dynamic axes; checked against
the PyTorch model before it is kept. `--fuse` makes optimum's O2 graph, as the loader does
(loader/graph_fusion.py; docs/inference.md). Needs requirements-dev.txt.

    python scripts/export_onnx.py path/to/model path/to/model/onnx/model.onnx
    python scripts/export_onnx.py --fuse model/onnx/model.onnx model/onnx/model_O2.onnx
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path
from typing import Any

# How close the export's token vectors must be to the PyTorch model's: the loader's threshold.
from facts.onnx_fusion import MIN_TOKEN_COSINE

ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ONNX_OUTPUT = "last_hidden_state"


class ExportMismatch(RuntimeError):
    """The export's token vectors differ from the PyTorch model's; the message says how much."""


def additive_mask(attention_mask: Any) -> Any:
    """[batch, length] of 1/0 as transformers 4 expanded it: 0 where attended, float32 min not.

    Built with the same operations (`_expand_mask`), so the exported graph holds the mask path
    ONNX Runtime's attention fusion matches; transformers 5 builds its own from a 2-D mask with
    And/Where nodes that the fusion does not know. A 4-D float mask is used by the model as given.
    """
    import torch

    rows, length = attention_mask.shape
    expanded = attention_mask.unsqueeze(1).unsqueeze(2).expand(rows, 1, length, length)
    inverted = 1.0 - expanded.to(torch.float32)
    return inverted.masked_fill(inverted.to(torch.bool), torch.finfo(torch.float32).min)


def export_transformer(
    model_dir: Path, destination: Path, inputs: tuple[str, ...] = ONNX_INPUTS
) -> Path:
    """`destination` (an .onnx file): the folder's transformer, token vectors out, fp32.

    `inputs` are the graph's inputs, passed to the model by name (`position_ids` as well). The
    mask goes in as `additive_mask`; a model that does not give its own vectors so is exported
    with its 2-D mask instead (transformers' own mask path, which ONNX Runtime does not fuse).
    """
    import torch
    from transformers import AutoModel

    # Eager attention: a plain MatMul/Softmax graph (254 nodes after ONNX Runtime's optimizer for
    # all-MiniLM-L6-v2, against 338 with the SDPA path's extra mask checks); as fast, measured.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()
    examples = check_batch(model.config.vocab_size)
    with torch.no_grad():
        plain = model(**{name: examples[name] for name in inputs}).last_hidden_state.numpy()
    destination.parent.mkdir(parents=True, exist_ok=True)
    problem = ""
    for additive in (True, False):
        _export(model, inputs, destination, additive, examples)
        problem = export_mismatch(destination, examples, plain)
        if not problem:
            return destination
    raise ExportMismatch(f"{destination} does not give the model's token vectors: {problem}")


def check_batch(vocab_size: int) -> dict[str, Any]:
    """The loader's check batch (two texts, right-padded) as torch tensors."""
    import torch

    from loader.graph_fusion import check_batch as numpy_batch

    return {name: torch.from_numpy(array) for name, array in numpy_batch(vocab_size).items()}


def _export(
    model: Any, inputs: tuple[str, ...], destination: Path, additive: bool, examples: dict
) -> None:
    import torch

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            named = dict(zip(inputs, tensors, strict=True))
            if additive and "attention_mask" in named:
                named["attention_mask"] = additive_mask(named["attention_mask"])
            return self.model(**named).last_hidden_state

    axes = {0: "batch_size", 1: "sequence_length"}
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TokenVectors().eval(),  # export() restores the wrapper's mode, and so its model's
            tuple(examples[name] for name in inputs),
            str(destination),
            dynamo=False,
            opset_version=17,
            input_names=list(inputs),
            output_names=[ONNX_OUTPUT],
            dynamic_axes={name: axes for name in (*inputs, ONNX_OUTPUT)},
        )


def export_token_cosine(graph: Path, examples: dict[str, Any], expected: Any) -> float:
    """The least cosine between `graph`'s token vectors for `examples` and `expected`."""
    from loader.graph_fusion import least_token_cosine, token_vectors

    batch = {name: tensor.numpy() for name, tensor in examples.items()}
    hidden = token_vectors(graph, batch)
    return float(least_token_cosine(hidden, expected, batch["attention_mask"]))


def export_mismatch(graph: Path, examples: dict[str, Any], expected: Any) -> str:
    """Why `graph`'s token vectors for `examples` are not `expected` ("" when they are)."""
    cosine = export_token_cosine(graph, examples, expected)
    if cosine >= MIN_TOKEN_COSINE:
        return ""
    return f"token cosine {cosine:.7f} on a padded batch, under {MIN_TOKEN_COSINE}"


def fuse_like_optimum_o2(graph: Path, destination: Path) -> dict[str, int]:
    """`destination`: `graph` fused as optimum's O2, as the loader fuses it; what fused.

    loader/graph_fusion.py, without its size bound: checked against `graph` on a padded batch,
    and GraphNotFused (with the reason) when nothing fused or the vectors differ.
    """
    from loader.graph_fusion import fuse_graph

    report = fuse_graph(graph, destination, max_bytes=None)
    if not report.applied:
        raise GraphNotFused(f"{graph}: {report.reason}")
    return report.fused


class GraphNotFused(RuntimeError):
    """The optimizer fused nothing in the graph, or its fused graph gave other vectors."""


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n", 1)[0])
    parser.add_argument(
        "source",
        type=Path,
        help="a folder transformers can load (or, with --fuse, an .onnx export)",
    )
    parser.add_argument("destination", type=Path, help="the .onnx file to write")
    parser.add_argument("--fuse", action="store_true", help="fuse an export as optimum's O2")
    args = parser.parse_args(argv)
    if args.fuse:
        print(args.destination, fuse_like_optimum_o2(args.source, args.destination))
    else:
        print(export_transformer(args.source, args.destination))
    return 0


if __name__ == "__main__":
    sys.exit(main())
