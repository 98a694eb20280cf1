"""Export a Hugging Face encoder to ONNX as the Hub's embedding repos ship it: onnx/model.onnx.

`torch.onnx.export` (TorchScript exporter, opset 17, fp32, the model's eager attention rather than
transformers' default SDPA) with the names optimum's exports use — inputs `input_ids`,
`attention_mask`, `token_type_ids`, output `last_hidden_state` — and dynamic batch and sequence
axes. The tests and the inference benchmark make the reference model's export
with it (the ONNX engine runs exactly such files); it also works for a model folder of your own:

    python scripts/export_onnx.py path/to/model path/to/model/onnx/model.onnx
    python scripts/export_onnx.py --fuse model/onnx/model.onnx model/onnx/model_O2.onnx

`--fuse` makes from an export what optimum's O2 files on the Hub are (`onnx/model_O2.onnx`, the
graph a stack may choose with `onnxFile`): ONNX Runtime's transformer optimizer, its exact fusions
only (no GELU approximation, which is O3).

Needs torch, transformers and onnx (requirements-dev.txt).
"""

from __future__ import annotations

import argparse
import sys
import warnings
from pathlib import Path

ONNX_INPUTS = ("input_ids", "attention_mask", "token_type_ids")
ONNX_OUTPUT = "last_hidden_state"


def export_transformer(
    model_dir: Path, destination: Path, inputs: tuple[str, ...] = ONNX_INPUTS
) -> Path:
    """`destination` (an .onnx file): the folder's transformer, token vectors out, fp32.

    `inputs` are the graph's inputs, passed to the model by name (`position_ids` as well).
    """
    import torch
    from transformers import AutoModel

    # Eager attention: a plain MatMul/Softmax graph (254 nodes after ONNX Runtime's optimizer for
    # all-MiniLM-L6-v2, against 338 with the SDPA path's extra mask checks); as fast, measured.
    model = AutoModel.from_pretrained(str(model_dir), attn_implementation="eager").eval()

    class TokenVectors(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.model = model

        def forward(self, *tensors: torch.Tensor) -> torch.Tensor:
            return self.model(**dict(zip(inputs, tensors, strict=True))).last_hidden_state

    ids = torch.ones(2, 8, dtype=torch.long)
    examples = {
        "input_ids": ids,
        "attention_mask": torch.ones_like(ids),
        "token_type_ids": torch.zeros_like(ids),
        "position_ids": torch.arange(8).expand_as(ids),
    }
    axes = {0: "batch_size", 1: "sequence_length"}
    destination.parent.mkdir(parents=True, exist_ok=True)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            TokenVectors(),
            tuple(examples[name] for name in inputs),
            str(destination),
            dynamo=False,
            opset_version=17,
            input_names=list(inputs),
            output_names=[ONNX_OUTPUT],
            dynamic_axes={name: axes for name in (*inputs, ONNX_OUTPUT)},
        )
    return destination


def fuse_like_optimum_o2(graph: Path, destination: Path) -> dict[str, int]:
    """`destination`: `graph` with ONNX Runtime's BERT fusions, as optimum's O2; what fused.

    Attention, SkipLayerNormalization, EmbedLayerNormalization and BiasGelu where the graph's
    patterns match (the attention of a transformers 5 export does not; optimum's exports from
    transformers 4 do). Exact: GELU keeps erf (O3 would approximate it with tanh).
    """
    from onnxruntime.transformers import optimizer
    from onnxruntime.transformers.fusion_options import FusionOptions

    options = FusionOptions("bert")
    options.enable_gelu_approximation = False
    fused = optimizer.optimize_model(
        str(graph), model_type="bert", optimization_options=options, opt_level=0, use_gpu=False
    )
    destination.parent.mkdir(parents=True, exist_ok=True)
    fused.save_model_to_file(str(destination))
    return {name: count for name, count in fused.get_fused_operator_statistics().items() if count}


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
