"""The TensorFlow ops a bundle's SavedModel may hold: those our own exports produce.

A SavedModel runs whatever ops its graph names, ``WriteFile``, ``ReadFile`` and
``PrintV2`` to a file among them, so a bundle is refused when its graph names
any op outside :data:`ALLOWED_OPS` (``export/bundle_safety.py``).

The list is the union of the ops of real exports (``export.build.write_bundle``):
the compact backbone (the demo bundle; ``cxr train --backbone compact --weights
none``) and VGG19 with ``weights=None``, each with ``serving_default``, the XLA
``cam`` and the plain ``cam_graph`` signatures. After a change to the export or
to TensorFlow, regenerate it from fresh exports of both backbones::

    python -m export.op_allowlist BUNDLE [BUNDLE ...]

which prints the ops of the given bundles (or SavedModel folders) as a Python set.
"""

from __future__ import annotations

import sys
from pathlib import Path

#: ops that read or write files: only the checkpoint functions of the saver may hold
#: them (see ``export.bundle_safety``); the TF2 loader restores variables by itself
#: and never calls those functions
CHECKPOINT_OPS = frozenset({"MergeV2Checkpoints", "RestoreV2", "SaveV2"})

ALLOWED_OPS = frozenset(
    {
        "AddN",
        "AddV2",
        "AssignVariableOp",
        "BiasAdd",
        "BiasAddGrad",
        "BroadcastTo",
        "Cast",
        "ConcatV2",
        "Const",
        "Conv2D",
        "Conv2DBackpropFilter",
        "Conv2DBackpropInput",
        "DisableCopyOnRead",
        "DynamicStitch",
        "ExpandDims",
        "Fill",
        "FloorMod",
        "GatherV2",
        "Identity",
        "MatMul",
        "MaxPool",
        "MaxPoolGrad",
        "Mean",
        "MergeV2Checkpoints",
        "Mul",
        "Neg",
        "NoOp",
        "Pack",
        "Placeholder",
        "Prod",
        "Range",
        "ReadVariableOp",
        "RealDiv",
        "Relu",
        "ReluGrad",
        "Reshape",
        "RestoreV2",
        "Rsqrt",
        "SaveV2",
        "Select",
        "Shape",
        "ShapeN",
        "ShardedFilename",
        "Size",
        "Softmax",
        "Squeeze",
        "StatefulPartitionedCall",
        "StaticRegexFullMatch",
        "StridedSlice",
        "StringJoin",
        "Sub",
        "Sum",
        "Tile",
        "Transpose",
        "UnsortedSegmentSum",
        "VarHandleOp",
        "VarIsInitializedOp",
    }
)


def bundle_ops(path: str | Path) -> set[str]:
    """The primitive ops named in a bundle's (or a SavedModel folder's) ``saved_model.pb``."""
    from export.graph_ops import all_ops, read_saved_model

    p = Path(path)
    pb = next(
        (c for c in (p / "saved_model.pb", p / "savedmodel" / "saved_model.pb") if c.is_file()),
        None,
    )
    if pb is None:
        raise FileNotFoundError(f"no saved_model.pb in {p} or {p / 'savedmodel'}")
    return all_ops(read_saved_model(pb.read_bytes()))


def main(argv: list[str] | None = None) -> int:
    paths = sys.argv[1:] if argv is None else argv
    if not paths:
        print("usage: python -m export.op_allowlist BUNDLE [BUNDLE ...]", file=sys.stderr)
        return 2
    ops: set[str] = set()
    for p in paths:
        ops |= bundle_ops(p)
    print("{\n" + "".join(f"    {op!r},\n" for op in sorted(ops)) + "}")
    extra = sorted(ops - ALLOWED_OPS)
    if extra:
        print(f"# not in ALLOWED_OPS yet: {', '.join(extra)}", file=sys.stderr)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
