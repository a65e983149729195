"""The ops of a SavedModel, read from ``saved_model.pb`` without TensorFlow.

A SavedModel is a program: ``tf.saved_model.load`` builds its functions and a
signature call runs whatever ops they hold, file writes included. So the graph
is read here, before TensorFlow sees it, with a minimal protobuf wire-format
reader: importing TensorFlow's own ``saved_model_pb2`` imports all of
TensorFlow (seconds, and the loader we do not yet trust).

Only these fields are read (numbers from TensorFlow's ``.proto`` files):

- ``SavedModel``: 2 ``meta_graphs`` (MetaGraphDef)
- ``MetaGraphDef``: 2 ``graph_def`` (GraphDef), 5 ``signature_def`` (map: 1 key,
  2 SignatureDef: 1 ``inputs`` / 2 ``outputs``, maps of TensorInfo: 1 ``name``),
  6 ``asset_file_def``, 7 ``object_graph_def`` (kept as raw bytes)
- ``GraphDef``: 1 ``node`` (NodeDef), 2 ``library`` (FunctionDefLibrary)
- ``FunctionDefLibrary``: 1 ``function`` (FunctionDef), 2 ``gradient`` (GradientDef:
  1 ``function_name``, 2 ``gradient_func``)
- ``FunctionDef``: 1 ``signature`` (OpDef: 1 ``name``), 3 ``node_def`` (NodeDef)
- ``NodeDef``: 1 ``name``, 2 ``op``, 5 ``attr`` (map: 2 value = AttrValue)
- ``AttrValue``: 1 ``list`` (ListValue: 9 ``func``), 10 ``func`` (NameAttrList:
  1 ``name``, 2 ``attr`` map of AttrValue)

Every function of the library is listed (nested and gradient functions live
there too), and every function name a node refers to (an attr such as
``PartitionedCall``'s ``f``, or the op field itself), since TensorFlow runs a
name it does not find in the library as a primitive op.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass, field

#: wire types of the protobuf encoding
_VARINT, _I64, _LEN, _I32 = 0, 1, 2, 5
#: NameAttrList → AttrValue → NameAttrList … deeper than this is not an export of ours
_MAX_DEPTH = 32


class GraphParseError(ValueError):
    """Bytes that are not a well-formed SavedModel protobuf."""


def _varint(buf: bytes, pos: int) -> tuple[int, int]:
    result = shift = 0
    while True:
        if pos >= len(buf) or shift > 63:
            raise GraphParseError("truncated or overlong varint")
        b = buf[pos]
        pos += 1
        result |= (b & 0x7F) << shift
        if not b & 0x80:
            return result, pos
        shift += 7


def fields(buf: bytes) -> Iterator[tuple[int, int, bytes | int]]:
    """(field number, wire type, value) of one message: bytes for LEN fields, else int."""
    pos, end = 0, len(buf)
    while pos < end:
        key = buf[pos]  # one-byte keys and lengths are the common case: no call
        if key < 0x80:
            pos += 1
        else:
            key, pos = _varint(buf, pos)
        num, wire = key >> 3, key & 7
        if num == 0:
            raise GraphParseError("field number 0")
        if wire == _LEN:
            n = buf[pos] if pos < end else 0x80
            if n < 0x80:
                pos += 1
            else:
                n, pos = _varint(buf, pos)
            if pos + n > end:
                raise GraphParseError("length-delimited field runs past its message")
            value: bytes | int = buf[pos : pos + n]
            pos += n
        elif wire == _VARINT:
            value, pos = _varint(buf, pos)
        elif wire == _I64:
            value, pos = int.from_bytes(buf[pos : pos + 8], "little"), pos + 8
        elif wire == _I32:
            value, pos = int.from_bytes(buf[pos : pos + 4], "little"), pos + 4
        else:
            raise GraphParseError(f"unsupported wire type {wire}")
        if pos > end:
            raise GraphParseError("field runs past its message")
        yield num, wire, value


def _sub(buf: bytes, number: int) -> Iterator[bytes]:
    for num, wire, value in fields(buf):
        if num == number:
            if wire != _LEN:
                raise GraphParseError(f"field {number} is not length-delimited")
            yield value  # type: ignore[misc]


def _text(buf: bytes, number: int) -> str:
    out = ""
    for value in _sub(buf, number):
        out = value.decode("utf-8", "replace")
    return out


@dataclass
class Node:
    """One NodeDef: its op and the function names its attrs refer to."""

    name: str
    op: str
    calls: list[str] = field(default_factory=list)


@dataclass
class Function:
    name: str
    nodes: list[Node] = field(default_factory=list)


@dataclass
class MetaGraph:
    nodes: list[Node] = field(default_factory=list)
    functions: dict[str, Function] = field(default_factory=dict)
    #: GradientDef: function name → its gradient function
    gradients: dict[str, str] = field(default_factory=dict)
    signatures: list[str] = field(default_factory=list)
    #: graph nodes whose tensors a SignatureDef names
    signature_nodes: set[str] = field(default_factory=set)
    assets: int = 0
    object_graph: bytes = b""


def _attr_funcs(attr_value: bytes, out: list[str], depth: int = 0) -> None:
    if depth > _MAX_DEPTH:
        raise GraphParseError("attributes nested too deeply")
    for num, wire, value in fields(attr_value):
        if wire != _LEN:
            continue
        if num == 10:  # func: NameAttrList
            _name_attr_list(value, out, depth)  # type: ignore[arg-type]
        elif num == 1:  # list: ListValue, 9 = repeated NameAttrList
            for f in _sub(value, 9):  # type: ignore[arg-type]
                _name_attr_list(f, out, depth)


def _name_attr_list(buf: bytes, out: list[str], depth: int) -> None:
    out.append(_text(buf, 1))
    for entry in _sub(buf, 2):
        for v in _sub(entry, 2):
            _attr_funcs(v, out, depth + 1)


def _node(buf: bytes) -> Node:
    node = Node(name="", op="")
    for num, wire, value in fields(buf):
        if wire != _LEN:
            continue
        if num == 1:
            node.name = value.decode("utf-8", "replace")  # type: ignore[union-attr]
        elif num == 2:
            node.op = value.decode("utf-8", "replace")  # type: ignore[union-attr]
        elif num == 5:  # attr map entry: 1 key, 2 AttrValue
            for v in _sub(value, 2):  # type: ignore[arg-type]
                _attr_funcs(v, node.calls)
    return node


def _meta_graph(buf: bytes) -> MetaGraph:
    mg = MetaGraph()
    for num, wire, value in fields(buf):
        if wire != _LEN:
            continue
        if num == 2:  # graph_def
            for gnum, gwire, gval in fields(value):  # type: ignore[arg-type]
                if gwire != _LEN:
                    continue
                if gnum == 1:
                    mg.nodes.append(_node(gval))  # type: ignore[arg-type]
                elif gnum == 2:
                    _library(gval, mg)  # type: ignore[arg-type]
        elif num == 5:  # map entry: 1 key, 2 SignatureDef (1 inputs, 2 outputs: TensorInfo)
            name = _text(value, 1)  # type: ignore[arg-type]
            mg.signatures.append(name)
            for sig in _sub(value, 2):  # type: ignore[arg-type]
                for io in (1, 2):
                    for entry in _sub(sig, io):
                        for info in _sub(entry, 2):
                            tensor = _text(info, 1)
                            mg.signature_nodes.add(tensor.split(":", 1)[0].lstrip("^"))
        elif num == 6:
            mg.assets += 1
        elif num == 7:
            mg.object_graph = value  # type: ignore[assignment]
    return mg


def _library(buf: bytes, mg: MetaGraph) -> None:
    for num, wire, value in fields(buf):
        if wire != _LEN:
            continue
        if num == 1:
            sig = b"".join(_sub(value, 1))  # type: ignore[arg-type]
            fn = Function(name=_text(sig, 1) if sig else "")
            fn.nodes = [_node(n) for n in _sub(value, 3)]  # type: ignore[arg-type]
            if fn.name in mg.functions:  # one of the two would go unchecked
                raise GraphParseError(f"two library functions named '{fn.name}'")
            mg.functions[fn.name] = fn
        elif num == 2:
            mg.gradients[_text(value, 1)] = _text(value, 2)  # type: ignore[arg-type]


def read_saved_model(data: bytes) -> list[MetaGraph]:
    """The meta graphs of a serialized ``SavedModel`` message."""
    graphs = [_meta_graph(m) for m in _sub(data, 2)]
    if not graphs:
        raise GraphParseError("no meta graph")
    return graphs


def all_ops(graphs: list[MetaGraph]) -> set[str]:
    """Every primitive op named anywhere (graph nodes, functions, attr references)."""
    ops: set[str] = set()
    for mg in graphs:
        names = set(mg.functions)
        nodes = list(mg.nodes) + [n for f in mg.functions.values() for n in f.nodes]
        for n in nodes:
            ops.update(x for x in [n.op, *n.calls] if x not in names)
    return ops
