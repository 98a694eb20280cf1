"""Where an ONNX graph's tensors say their bytes are: the `location` of each external-data tensor.

ONNX Runtime reads an external tensor from whatever path its `location` names, absolute or up
out of the model's folder (`/etc/passwd`, `../../proc/self/environ`): a graph from a repository
could read any file of the container into its weights. The container and the loader refuse a
graph whose tensors point anywhere but the data file beside it. ONNX Runtime exposes no such
list, and the container has no `onnx` package, so this walks the protobuf wire format itself,
reading only the messages that can hold tensors (standard library only, Python 3.9-safe).
"""

from __future__ import annotations

import mmap
import os
from collections.abc import Collection, Iterator

# Message → {field number: message type of that field}, for every path from a model to a tensor
# (onnx.proto3: ModelProto, TrainingInfoProto, GraphProto, NodeProto, AttributeProto,
# FunctionProto, SparseTensorProto, TensorProto, StringStringEntryProto).
_FIELDS = {
    "model": {7: "graph", 20: "training", 25: "function"},
    "training": {1: "graph", 2: "graph"},
    "graph": {1: "node", 5: "tensor", 15: "sparse"},
    # node, and attribute_proto: an attribute's default, which a Constant in the body may take
    "function": {7: "node", 11: "attribute"},
    "node": {5: "attribute"},
    "attribute": {5: "tensor", 6: "graph", 10: "tensor", 11: "graph", 22: "sparse", 23: "sparse"},
    "sparse": {1: "tensor", 2: "tensor"},
    "tensor": {13: "entry"},
    "entry": {},
}
_LENGTH_DELIMITED, _VARINT, _FIXED64, _FIXED32 = 2, 0, 1, 5


class GraphFormatError(ValueError):
    """The bytes are not a protobuf message where the ONNX format says one is."""


class GraphTooDeep(ValueError):
    """Messages (graph, node, attribute, ...) nested deeper than this walk follows."""


_MAX_DEPTH = 100
_START_GROUP, _END_GROUP = 3, 4


def _varint(data: memoryview, at: int) -> tuple[int, int]:
    value, shift = 0, 0
    while True:
        if at >= len(data) or shift > 63:
            raise GraphFormatError("a varint runs past the end of the graph")
        byte = data[at]
        value |= (byte & 0x7F) << shift
        at, shift = at + 1, shift + 7
        if not byte & 0x80:
            return value, at


def _tag(data: memoryview, at: int) -> tuple[int, int]:
    """A field's tag as protobuf reads it: a varint cut to 32 bits (`BA 80 80 80 10` is field
    7, not 2**29 + 7), at most 5 bytes."""
    start = at
    tag, at = _varint(data, at)
    if at - start > 5:
        raise GraphFormatError("a tag runs over 5 bytes")
    return tag & 0xFFFFFFFF, at


def _fields(data: memoryview) -> Iterator[tuple[int, memoryview | None]]:
    """(field number, bytes of a length-delimited field or None) for each field of a message."""
    at = 0
    while at < len(data):
        tag, at = _tag(data, at)
        number, wire = tag >> 3, tag & 7
        if wire == _LENGTH_DELIMITED:
            size, at = _varint(data, at)
            if at + size > len(data):
                raise GraphFormatError(f"field {number} runs past the end of its message")
            yield number, data[at : at + size]
            at += size
        elif wire == _VARINT:
            _, at = _varint(data, at)
            yield number, None
        elif wire in (_FIXED64, _FIXED32):
            at += 8 if wire == _FIXED64 else 4
            yield number, None
        elif wire == _START_GROUP:  # deprecated, but a parser skips one as an unknown field
            at = _skip_group(data, at, number)
            yield number, None
        else:
            raise GraphFormatError(f"field {number} has wire type {wire}, which ONNX never uses")


def _skip_group(data: memoryview, at: int, number: int, depth: int = 0) -> int:
    """Where the group `number` that starts at `at` ends (past its end tag)."""
    while depth < _MAX_DEPTH:
        tag, at = _tag(data, at)
        inner, wire = tag >> 3, tag & 7
        if wire == _END_GROUP:
            if inner != number:
                raise GraphFormatError(f"group {number} ends with the tag of group {inner}")
            return at
        if wire == _START_GROUP:
            at = _skip_group(data, at, inner, depth + 1)
        elif wire == _VARINT:
            _, at = _varint(data, at)
        elif wire == _LENGTH_DELIMITED:
            size, at = _varint(data, at)
            at += size
        elif wire in (_FIXED64, _FIXED32):
            at += 8 if wire == _FIXED64 else 4
        else:
            raise GraphFormatError(f"field {inner} has wire type {wire}")
    raise GraphTooDeep(f"groups nest more than {_MAX_DEPTH} deep")


def _locations(data: memoryview, kind: str, depth: int = 0) -> Iterator[str]:
    if depth > _MAX_DEPTH:
        raise GraphTooDeep(f"the graph nests messages more than {_MAX_DEPTH} deep")
    if kind == "entry":
        entry = {number: bytes(value) for number, value in _fields(data) if value is not None}
        if entry.get(1) == b"location":
            yield entry.get(2, b"").decode("utf-8", errors="replace")
        return
    children = _FIELDS[kind]
    for number, value in _fields(data):
        if value is not None and number in children:
            yield from _locations(value, children[number], depth + 1)


def external_locations(graph: bytes | memoryview) -> set[str]:
    """Every external-data `location` the ONNX model `graph` (its file's bytes) names."""
    return set(_locations(memoryview(graph), "model"))


def external_data_problem(graph: bytes | memoryview, allowed: Collection[str]) -> str | None:
    """Why the graph may not be loaded (None: it may): a tensor whose bytes lie elsewhere than
    in `allowed`, the bare names of the data files packaged beside it."""
    try:
        locations = external_locations(graph)
    except (GraphFormatError, GraphTooDeep) as error:
        # Refused rather than left to ONNX Runtime: where its parser and this walk part, the
        # walk must not be the one that gives up.
        return f"the graph cannot be checked, so it is not loaded: {error}"
    foreign = sorted(location for location in locations if location not in allowed)
    if not foreign:
        return None
    return (
        f"the graph reads tensors from {foreign[:5]}, not from its own data file "
        f"({sorted(allowed) or 'none'}): ONNX Runtime would read any file of the container there"
    )


def graph_file_problem(path: str, allowed: Collection[str]) -> str | None:
    """`external_data_problem` of the graph file at `path`, mapped rather than read: a graph can
    be gigabytes. An empty file passes (ONNX Runtime refuses it with its own message)."""
    with open(path, "rb") as handle:
        if os.fstat(handle.fileno()).st_size == 0:
            return None
        with mmap.mmap(handle.fileno(), 0, access=mmap.ACCESS_READ) as data:
            return external_data_problem(data, allowed)
