"""TINYC_KERNEL: an op that is an already prepared kernel call (the steps of a training step).

The backward facets of the op modules (tinyc/ops/*.py `backward`) make every decision for the
ops they add — kernel, params, arguments, overlap rule — so those ops carry their KernelCall in
attrs["call"] and this module only hands it on to the stages that ask."""

from __future__ import annotations

from typing import Sequence

from tinyc.ir import Graph, Op
from tinyc.ops.base import KernelCall, OpSupport, OverlapSpec
from tinyc.ops.registry import register

KIND = "TINYC_KERNEL"


@register(KIND)
class PreparedKernel(OpSupport):
    def macs(self, op: Op, g: Graph) -> int:
        return int(op.attrs.get("macs", 0))

    def lower(self, op: Op, g: Graph) -> KernelCall:
        return op.attrs["call"]

    def overlap(self, op: Op, g: Graph) -> OverlapSpec | None:
        return op.attrs.get("overlap")


def kernel_op(call: KernelCall, index: int, what: str, macs: int = 0, overlap: OverlapSpec | None = None,
              extra_inputs: Sequence[str] = ()) -> Op:
    """The op running `call`: its inputs and outputs are the tensors the call reads and writes,
    so that lifetimes and the planner see them. index: the forward op it belongs to (messages,
    gradient hook); what: shown in the generated C's comments."""
    ins = [a.tensor for a in call.args if a.kind in ("in", "const", "param") and a.tensor is not None]
    outs = [a.tensor for a in call.args if a.kind == "out" and a.tensor is not None]
    return Op(kind=KIND, inputs=tuple(ins) + tuple(extra_inputs), outputs=tuple(outs),
              attrs={"call": call, "macs": macs, "overlap": overlap, "what": what}, index=index)
