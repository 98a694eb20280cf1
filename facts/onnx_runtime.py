"""The ONNX engine's facts: the file it runs and the wheels each DLC Python gets in `code/`.

Read by the stack config (which Pythons have a runtime), the program (which wheel to fetch), the
loader (which wheel to vendor into `code/`, checked against its sha256) and the container (which
file to load). One CPU wheel per CPython, manylinux x86_64, from PyPI:

- Python 3.10, 3.11, 3.12: onnxruntime 1.23.2, the newest release that still publishes a
  cp310 wheel (1.24 and later require Python >= 3.11); one version for every current image.
- Python 3.9 (the 1.13.1 image): onnxruntime 1.19.2, the last release with cp39 wheels.

Both need numpy >= 1.21.6 (their `Requires-Dist`) and glibc >= 2.27 (their manylinux tag); the
DLCs run Ubuntu 20.04 / 22.04 (glibc 2.31 / 2.35) and ship numpy 1.2x or 2.x.

Beside it, orjson (a JSON encoder written in Rust, glibc >= 2.17, no dependencies): it writes a
response's float32 vectors in about a tenth of the standard library's time, each number in its
shortest form that reads back as the same float32 (facts/embedding_api.py). orjson 3.13.0 for
Python 3.10 to 3.12, 3.11.5 (its last with cp39 wheels) for 3.9. The sha256 values are those of
the files PyPI serves; a wheel whose bytes differ is refused wherever it is used.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, replace

# Where the Hub's embedding repositories keep their ONNX export (optimum's layout, also what
# sentence-transformers' ONNX backend loads); larger graphs keep their weights beside it. The
# engine runs this graph unless the stack's `onnxFile` asks for another of the repo's exports.
ONNX_MODEL_FILE = "onnx/model.onnx"
ONNX_FOLDER = "onnx/"
# The names exporters give the graph's external weights: optimum's, and torch.onnx's since 2.5.
ONNX_EXTERNAL_DATA_SUFFIXES = ("_data", ".data")
# In onnx/, or at the root, where some repositories keep their one graph (jina-embeddings-v2).
_GRAPH_PATH = re.compile(r"^(?:onnx/)?[A-Za-z0-9][A-Za-z0-9_.-]*\.onnx$")
# Exports that do not run well on a serverless endpoint's x86_64 CPU, by their usual names:
# fp16 graphs (optimum's O4, transformers.js' `_fp16`) are made for GPUs, and `_arm64` ones are
# quantized for ARM CPUs.
_NOT_FOR_THIS_CPU = (
    (re.compile(r"(?:^|_)O4$", re.IGNORECASE), "optimum's O4 graph is fp16, made for GPUs"),
    (
        re.compile(r"fp16|f16|float16|half", re.IGNORECASE),
        "an fp16 graph (`fp16`, `q4f16`, `float16`, `half`) is made for GPUs",
    ),
    (re.compile(r"arm64", re.IGNORECASE), "an arm64 graph is quantized for ARM CPUs"),
)
# Graph names whose artifact folder would be another graph's (RuntimeWheel.variant): an onnx/
# graph named `root-…` is a root graph's, one ending in `unfused` an unfused graph's, and one
# named `int8` or ending in `-int8` an int8 graph's.
_SHARES_A_FOLDER = re.compile(r"^root-|unfused$|(?:^|-)int8$", re.IGNORECASE)


def onnx_file_problem(path: str) -> str | None:
    """Why the ONNX engine cannot be asked to run `path` (None: it can), from its name alone."""
    if not _GRAPH_PATH.match(path):
        hint = ""
        if "\\" in path:
            hint = " (with forward slashes)"
        elif path.startswith(("./", "/")):
            hint = " (relative to the repository's root, without a leading ./ or /)"
        elif path.lower().endswith(".onnx"):
            hint = " (the extension is .onnx, in lower case)"
        return (
            "expected an .onnx file directly in the repository's onnx/ folder or at its root"
            f"{hint}, such as {ONNX_MODEL_FILE}, onnx/model_O2.onnx or model.onnx"
        )
    stem = _stem(path)
    for pattern, why in _NOT_FOR_THIS_CPU:
        if pattern.search(stem):
            return f"{why}; serverless endpoints run on x86_64 CPUs"
    if _SHARES_A_FOLDER.search(stem):
        return (
            "the artifact key names graphs by their file names, and one starting with 'root-', "
            "ending in 'unfused' or in '-int8' would share its folder with another graph's archive"
        )
    return None


def external_data_files(graph: str) -> tuple[str, ...]:
    """Where exporters put the weights of `graph` beside it (`onnx/model.onnx_data`)."""
    return tuple(graph + suffix for suffix in ONNX_EXTERNAL_DATA_SUFFIXES)


def _stem(graph: str) -> str:
    return graph.rsplit("/", 1)[-1][: -len(".onnx")]


def graph_mark(graph: str) -> str:
    """How the artifact key names a graph other than onnx/model.onnx: `-model_O2`, else ``.

    A graph at the repository's root is `-root-model`: never the same as one in onnx/.
    """
    if graph == ONNX_MODEL_FILE:
        return ""
    return ("-" if graph.startswith(ONNX_FOLDER) else "-root-") + _stem(graph)


# The graph's token-level output, by the names exporters give it, most specific first (else the
# graph's only rank-3 output): what the engine pools, and what the loader's fusion check compares.
TOKEN_OUTPUTS = ("last_hidden_state", "token_embeddings")


def token_output_name(outputs: Sequence[tuple[str, int]]) -> str | None:
    """The token-level output among a graph's (name, rank) outputs; None when none is clear."""
    names = [name for name, _ in outputs]
    for name in TOKEN_OUTPUTS:
        if name in names:
            return name
    ranked = [name for name, rank in outputs if rank == 3]
    return ranked[0] if len(ranked) == 1 else None


# The mean-pooling head the loader adds to a graph it fuses (loader/pooling_head.py): the masked
# mean of the token vectors, and that mean at unit length. The engine fetches one of them instead
# of the token vectors when the model pools by mean (container/sentence_embedding/encoder.py).
MEAN_POOLED_OUTPUT = "endpoint_mean_pooled"
UNIT_MEAN_POOLED_OUTPUT = "endpoint_mean_pooled_unit"
# The artifact key's mark for archives whose graph ships as the repository has it, unfused.
UNFUSED_MARK = "-unfused"

# The engines inference.py can run, and what a stack may ask for.
ENGINES = ("torch", "onnx")
ENGINE_CHOICES = ("auto", *ENGINES)


@dataclass(frozen=True)
class RuntimeWheel:
    """One wheel on PyPI that an ONNX archive vendors into `code/`: its Python, name and sha256.

    The onnxruntime wheel carries the wheels that ship beside it (`companions`: orjson).
    """

    python: str  # "3.10"
    version: str  # "1.23.2"
    filename: str
    sha256: str
    package: str = "onnxruntime"
    companions: tuple[RuntimeWheel, ...] = ()

    @property
    def requirement(self) -> str:
        return f"{self.package}=={self.version}"

    @property
    def platforms(self) -> tuple[str, ...]:
        """The wheel's platform tags (`manylinux_2_17_x86_64`, ...), from its file name."""
        return tuple(self.filename[: -len(".whl")].rsplit("-", 1)[-1].split("."))

    @property
    def vendored(self) -> tuple[RuntimeWheel, ...]:
        """This wheel and its companions: every wheel the archive's `code/` unpacks."""
        return (self, *self.companions)

    @property
    def python_tag(self) -> str:
        """`py310`, as in the DLC image tag."""
        return "py" + self.python.replace(".", "")

    def variant(
        self, graph: str = ONNX_MODEL_FILE, fused: bool = True, quantized: str | None = None
    ) -> str:
        """The artifact key's folder for archives of `graph` that vendor this wheel.

        `onnx-py310` for onnx/model.onnx, `onnx-model_O2-py310` for another graph,
        `onnx-unfused-py310` when the loader was told not to fuse it (`onnxFusion: false`) and
        `onnx-int8-py310` when it quantizes it to `quantized` (`onnxQuantization: int8`):
        archives of two graphs, or for two images, of one commit never overwrite each other.
        """
        unfused = "" if fused else UNFUSED_MARK
        precision = f"-{quantized}" if quantized else ""
        return f"onnx{graph_mark(graph)}{unfused}{precision}-{self.python_tag}"

    @property
    def identity(self) -> str:
        """Names and contents, companions included: what the archive's format version hashes."""
        return "+".join(f"{wheel.filename}#sha256={wheel.sha256}" for wheel in self.vendored)


_MANYLINUX = "manylinux_2_27_x86_64.manylinux_2_28_x86_64"
_MANYLINUX2014 = "manylinux_2_17_x86_64.manylinux2014_x86_64"


# orjson beside each: (version, sha256) per Python.
_ORJSON = {
    "3.9": ("3.11.5", "fea7339bdd22e6f1060c55ac31b6a755d86a5b2ad3657f2669ec243f8e3b2bdb"),
    "3.10": ("3.13.0", "93c70a5e22bbbbdeafc7b273441e8452a196041d67fd4d9a9c450c66370a8486"),
    "3.11": ("3.13.0", "89bcf2d4bc6c9a7e1763c8cf534f38712e66b76a0fefda7fb7785462f0d635e4"),
    "3.12": ("3.13.0", "bceadfd314bd238f584fc229a4bbaf0e573597e7a026dec5429fbf29fd66c641"),
}


def _with_orjson(runtime: RuntimeWheel) -> RuntimeWheel:
    """`runtime` with the orjson wheel for its Python as its companion."""
    version, sha256 = _ORJSON[runtime.python]
    tag = "cp" + runtime.python.replace(".", "")
    filename = f"orjson-{version}-{tag}-{tag}-{_MANYLINUX2014}.whl"
    orjson = RuntimeWheel(runtime.python, version, filename, sha256, package="orjson")
    return replace(runtime, companions=(orjson,))


RUNTIME_WHEELS = {
    wheel.python: _with_orjson(wheel)
    for wheel in (
        RuntimeWheel(
            "3.9",
            "1.19.2",
            f"onnxruntime-1.19.2-cp39-cp39-{_MANYLINUX}.whl",
            "fae4b4de45894b9ce7ae418c5484cbf0341db6813effec01bb2216091c52f7fb",
        ),
        RuntimeWheel(
            "3.10",
            "1.23.2",
            f"onnxruntime-1.23.2-cp310-cp310-{_MANYLINUX}.whl",
            "4ca88747e708e5c67337b0f65eed4b7d0dd70d22ac332038c9fc4635760018f7",
        ),
        RuntimeWheel(
            "3.11",
            "1.23.2",
            f"onnxruntime-1.23.2-cp311-cp311-{_MANYLINUX}.whl",
            "da44b99206e77734c5819aa2142c69e64f3b46edc3bd314f6a45a932defc0b3e",
        ),
        RuntimeWheel(
            "3.12",
            "1.23.2",
            f"onnxruntime-1.23.2-cp312-cp312-{_MANYLINUX}.whl",
            "0f9b4ae77f8e3c9bee50c27bc1beede83f786fe1d52e99ac85aa8d65a01e9b77",
        ),
    )
}


def runtime_wheel(python: str | None) -> RuntimeWheel | None:
    """The wheel for a container Python ("3.10"), or None when none is known."""
    return RUNTIME_WHEELS.get(python or "")
