"""Check every op against its module's constraints before any pass runs.

All problems are collected first so the user sees the whole list, then raised as one error
whose first line names the first problem.
"""

from __future__ import annotations

from tinyc.errors import BadInput, UnsupportedError
from tinyc.ir import Graph
from tinyc.ops.registry import lookup, supported

_COMPUTE_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "TRANSPOSE_CONV")


def validate(g: Graph) -> None:
    """Raise BadInput/UnsupportedError naming the op, its index and what is supported."""
    _reject_float_model(g)
    unknown: dict[str, list[int]] = {}
    for op in g.ops:
        if lookup(op.kind) is None:
            unknown.setdefault(op.kind, []).append(op.index)
    if unknown:
        kind, idx = next(iter(unknown.items()))
        others = [f"{k} ({len(v)}x)" for k, v in list(unknown.items())[1:]]
        raise UnsupportedError(
            f"op #{idx[0]} {kind} is not supported ({len(idx)} {kind} op(s) in the model"
            + (f"; also unsupported: {', '.join(others)}" if others else "")
            + f"). Supported ops: {', '.join(supported())}")
    problems: list[str] = []
    for op in g.ops:
        try:
            lookup(op.kind).check(op, g)  # type: ignore[union-attr]
        except UnsupportedError as e:
            problems.append(str(e))
    if problems:
        more = f" (and {len(problems) - 1} more: {'; '.join(problems[1:3])}" \
               f"{' ...' if len(problems) > 3 else ''})" if len(problems) > 1 else ""
        raise UnsupportedError(problems[0] + more)


def _reject_float_model(g: Graph) -> None:
    for op in g.ops:
        if op.kind in _COMPUTE_OPS and op.inputs and op.inputs[0] is not None:
            t = g.t(op.inputs[0])
            if t.dtype == "float32":
                raise BadInput(f"op #{op.index} {op.kind} computes in float32: tinyc needs an int8-quantized "
                               f"model (convert with full-integer quantization, e.g. TFLiteConverter with "
                               f"optimizations=[DEFAULT] and a representative dataset)")
