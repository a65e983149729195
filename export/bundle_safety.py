"""What a bundle's model files may do, checked before TensorFlow or ONNX Runtime sees them.

A bundle comes from someone else, and its hashes only prove that the files
are the ones its author listed. A SavedModel is a program (its signatures run
whatever ops their graphs name, file writes and reads included), and an ONNX
file can name custom operators or pull its weights from any path. So:

- SavedModel: every op named anywhere in ``saved_model.pb`` (graph nodes, every
  function of the library, every function an attribute refers to) must be one
  our own exports produce (``export/op_allowlist.py``); the file-touching
  checkpoint ops only inside the saver's own functions, which nothing a loader
  or a signature calls can reach; only the signatures our exports write; no
  assets; only ``saved_model.pb``, ``fingerprint.pb`` and the ``variables/``
  checkpoint files; a TensorFlow 2 object graph (the TF1 loader runs the
  saver's restore function).
- ONNX: at most :data:`MAX_ONNX_BYTES`; only the standard operator domains; no
  model-local functions; no tensor with external data.

Each refusal is one :class:`~export.bundle.BundleError` naming the op, domain or
file and where it sits.
"""

from __future__ import annotations

import re
from pathlib import Path

from export.bundle import BundleError, Manifest
from export.graph_ops import GraphParseError, MetaGraph, read_saved_model
from export.op_allowlist import ALLOWED_OPS, CHECKPOINT_OPS

#: serving_default, cam, cam_graph (export.build) and the init op TensorFlow adds
ALLOWED_SIGNATURES = frozenset({"serving_default", "cam", "cam_graph", "__saved_model_init_op"})
_SAVEDMODEL_FILES = re.compile(
    r"(saved_model\.pb|fingerprint\.pb|variables/variables\.index"
    r"|variables/variables\.data-\d{5}-of-\d{5})"
)
#: a graph file of ours is well under a megabyte; the weights live in variables/
MAX_SAVED_MODEL_PB_BYTES = 64 << 20
#: protobuf's own limit for one message
MAX_ONNX_BYTES = 2 << 30
ONNX_DOMAINS = frozenset({"", "ai.onnx", "ai.onnx.ml"})


def check_savedmodel_files(root: Path, manifest: Manifest) -> None:
    """Only the SavedModel files our exports write, each one explained by its name."""
    sm = manifest.savedmodel.directory.rstrip("/") + "/"
    for rel in sorted(manifest.files):
        if not rel.startswith(sm):
            continue
        inner = rel[len(sm) :]
        if inner.startswith("assets/") or inner.startswith("assets.extra/"):
            raise BundleError(
                f"'{rel}' is a SavedModel asset; bundles carry no assets: refused",
                bundle=root,
                file=rel,
            )
        if not _SAVEDMODEL_FILES.fullmatch(inner):
            raise BundleError(
                f"'{rel}' is not a file a SavedModel of ours holds (saved_model.pb, "
                "fingerprint.pb, variables/variables.*): refused",
                bundle=root,
                file=rel,
            )


def check_savedmodel_graph(root: Path, manifest: Manifest, data: bytes) -> None:
    """``data``: the bytes of ``saved_model.pb`` whose hash was just verified."""
    rel = savedmodel_pb(manifest)
    try:
        graphs = read_saved_model(data)
    except GraphParseError as exc:
        raise BundleError(
            f"'{rel}' cannot be read ({exc}): refused", bundle=root, file=rel
        ) from None
    for mg in graphs:
        problem = graph_problem(mg)
        if problem:
            raise BundleError(f"'{rel}': {problem}: refused", bundle=root, file=rel)


def graph_problem(mg: MetaGraph) -> str:
    """What is wrong with one meta graph, in one line; "" when nothing is."""
    extra_sigs = sorted(set(mg.signatures) - ALLOWED_SIGNATURES)
    if extra_sigs:
        return (
            f"signature(s) {', '.join(extra_sigs)} beyond {', '.join(sorted(ALLOWED_SIGNATURES))}"
        )
    if mg.assets:
        return "the graph declares asset files"
    if not mg.object_graph:
        return "no TensorFlow 2 object graph (a TF1 SavedModel)"
    functions = mg.functions
    where: dict[str, list[str]] = {}

    def note(op: str, place: str) -> None:
        where.setdefault(op, []).append(place)

    for n in mg.nodes:
        for name in (n.op, *n.calls):
            if name not in functions and name not in ALLOWED_OPS:
                note(name, f"graph node '{n.name}'")
    called_by_functions: set[str] = set()
    for fn in functions.values():
        for n in fn.nodes:
            for name in (n.op, *n.calls):
                if name in functions:
                    called_by_functions.add(name)
                elif name not in ALLOWED_OPS:
                    note(name, f"function '{fn.name}'")
    if where:
        ops = sorted(where)
        return "op(s) not produced by our exports: " + "; ".join(
            f"{op} in {', '.join(sorted(set(where[op]))[:3])}" for op in ops
        )
    # the checkpoint ops: only in functions that only top-level graph nodes call (the
    # saver's), never reachable from a signature, a loaded function or a gradient
    reached = called_by_functions | set(mg.gradients) | set(mg.gradients.values())
    signature_callees = {
        c for n in mg.nodes if n.name in mg.signature_nodes for c in (n.op, *n.calls)
    }
    for fn in functions.values():
        io = sorted({n.op for n in fn.nodes} & CHECKPOINT_OPS)
        if not io:
            continue
        if fn.name in reached or fn.name in signature_callees or _names(mg.object_graph, fn.name):
            return (
                f"function '{fn.name}' holds file op(s) {', '.join(io)} and a signature or "
                "loaded function can call it"
            )
    return ""


def _names(message: bytes, name: str) -> bool:
    """Does a serialized message hold ``name`` as a whole string field?"""
    raw = name.encode("utf-8")
    n, prefix = len(raw), bytearray()
    while True:  # the varint length that precedes a length-delimited field
        prefix.append((n & 0x7F) | (0x80 if n > 0x7F else 0))
        n >>= 7
        if not n:
            break
    return bytes(prefix) + raw in message


def check_onnx(root: Path, manifest: Manifest, data: bytes) -> None:
    """``data``: the bytes of the ONNX file whose hash was just verified."""
    import onnx

    rel = manifest.onnx.file
    try:
        model = onnx.load_model_from_string(data)
    except Exception as exc:  # a damaged protobuf raises DecodeError and others
        raise BundleError(
            f"'{rel}': ONNX model cannot be loaded ({type(exc).__name__})", bundle=root, file=rel
        ) from None
    problem = onnx_problem(model)
    if problem:
        raise BundleError(f"'{rel}': {problem}: refused", bundle=root, file=rel)


def onnx_problem(model) -> str:
    """What is wrong with an ``onnx.ModelProto``, in one line; "" when nothing is."""
    from onnx import AttributeProto, TensorProto

    for imp in model.opset_import:
        if imp.domain not in ONNX_DOMAINS:
            return f"custom operator domain '{imp.domain}' (only the standard ONNX domains)"
    if len(model.functions):
        return f"model-local function '{model.functions[0].name}'"

    def tensor_problem(t, where: str) -> str:
        if t.data_location == TensorProto.EXTERNAL or len(t.external_data):
            loc = next((e.value for e in t.external_data if e.key == "location"), "?")
            return f"tensor '{t.name}' in {where} keeps its data in an external file '{loc}'"
        return ""

    graphs = [(model.graph, "the main graph")]
    while graphs:
        graph, where = graphs.pop()
        for t in graph.initializer:
            if p := tensor_problem(t, where):
                return p
        for st in graph.sparse_initializer:
            for t in (st.values, st.indices):
                if p := tensor_problem(t, where):
                    return p
        for node in graph.node:
            here = f"node '{node.name or node.op_type}'"
            if node.domain not in ONNX_DOMAINS:
                return f"{here} uses custom operator {node.domain}.{node.op_type}"
            for a in node.attribute:
                tensors = list(a.tensors) + ([a.t] if a.type == AttributeProto.TENSOR else [])
                for t in tensors:
                    if p := tensor_problem(t, here):
                        return p
                subs = list(a.graphs) + ([a.g] if a.type == AttributeProto.GRAPH else [])
                graphs.extend((g, f"a subgraph of {here}") for g in subs)
    return ""


def savedmodel_pb(manifest: Manifest) -> str:
    return f"{manifest.savedmodel.directory.rstrip('/')}/saved_model.pb"


def model_file_limits(manifest: Manifest) -> dict[str, int]:
    """The files :func:`check_model_files` parses, with the most bytes each may have."""
    return {savedmodel_pb(manifest): MAX_SAVED_MODEL_PB_BYTES, manifest.onnx.file: MAX_ONNX_BYTES}


def check_model_files(root: Path, manifest: Manifest, blobs: dict[str, bytes]) -> None:
    """Everything above, on the bytes that were hashed (``blobs``: path → bytes of each
    file of :func:`model_file_limits`), so what is checked is what the hash vouched for;
    raises :class:`~export.bundle.BundleError` on the first problem."""
    check_savedmodel_files(root, manifest)
    check_savedmodel_graph(root, manifest, blobs[savedmodel_pb(manifest)])
    check_onnx(root, manifest, blobs[manifest.onnx.file])
