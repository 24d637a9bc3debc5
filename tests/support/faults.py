"""Fault injection for validation tests: a compiled model with one wrong number in its C."""

from __future__ import annotations

import copy
import dataclasses
import re

from tinyc.compiler import Compiled


def corrupt_bias(compiled: Compiled, step: int, delta: int = 100_000) -> Compiled:
    """The same compile with the first bias value of schedule step ``step`` off by ``delta``
    (large enough to saturate that channel): only that layer's output can change first."""
    prog = copy.deepcopy(compiled.program)
    arrays = {a.cname: a for a in prog.arrays}
    s = prog.steps[step]
    # the bias is a constant argument, or (input offset folded in) the params' bias array: 1x1
    # kernel "bias"; FC and 3x3 depthwise "requant" / "stream", whose first word is a (doubled) bias
    biases = [arrays[f["value"]] for f in s.fields
              if f["name"] in ("bias", "requant", "stream") and f["value"] in arrays]
    biases += [arrays[a] for a in s.args if a in arrays and arrays[a].ctype == "int32_t"]
    if not biases:
        raise ValueError(f"step {step} ({s.function}) has no int32 constant argument")
    b = biases[0]
    b.body = re.sub(r"-?\d+", lambda m: str(int(m.group()) + delta), b.body, count=1)
    return dataclasses.replace(compiled, program=prog)


def first_step_of(compiled: Compiled, kind: str, nth: int = 0) -> int:
    """Schedule position of the nth op of ``kind``."""
    steps = [k for k, op in enumerate(compiled.graph.ops) if op.kind == kind]
    return steps[nth]
