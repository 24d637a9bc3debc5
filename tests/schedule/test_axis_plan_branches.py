"""axis_plan on branching stages (hypothesis): two paths from one tensor (windows of different
reach, or a residual skip) merged by an ADD, so the tensor is needed over the union of what the
paths read. Every tensor computed over the span axis_plan gives it, from only the
spans it says each op reads and padded only as it says, equals the unsplit result there."""

from __future__ import annotations

from dataclasses import dataclass
from types import SimpleNamespace

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.schedule.test_receptive_field import conv1d
from tinyc.ops._conv_math import out_size, padding_before
from tinyc.ops.base import SpatialWindow
from tinyc.schedule.receptive_field import axis_plan, split
from tinyc.schedule.stage import Stage


@dataclass
class _T:
    shape: tuple[int, int, int, int]
    is_const: bool = False


class _G:
    def __init__(self) -> None:
        self.tensors: dict[str, _T] = {}

    def t(self, name: str) -> _T:
        return self.tensors[name]


window = st.tuples(st.integers(1, 5), st.integers(1, 2), st.integers(1, 2), st.sampled_from(["SAME", "VALID"]))
path = st.lists(st.tuples(st.integers(1, 5), st.integers(1, 3)), min_size=0, max_size=3)  # SAME, stride 1
# two paths from one tensor merged by an ADD; an empty path is the identity (a residual skip)
block = st.one_of(st.tuples(st.just("win"), window), st.tuples(st.just("res"), st.tuples(path, path)))


@settings(max_examples=300, deadline=None)
@given(size=st.integers(2, 48), blocks=st.lists(block, min_size=1, max_size=4), parts=st.integers(1, 6),
       seed=st.integers(0, 2**31))
def test_residual_stages_reproduce_the_unsplit_result(size: int, blocks: list, parts: int, seed: int) -> None:
    g, ops, wins = _G(), [], []
    full: dict[str, np.ndarray] = {"x": np.random.default_rng(seed).integers(-50, 50, size=size).astype(np.int64)}
    g.tensors["x"] = _T((1, size, 1, 1))
    geo: dict[int, tuple[int, int, int]] = {}  # op position -> (filter, stride, dilation)

    def add_window(src: str, f: int, s: int, d: int, pad: str) -> str | None:
        n = g.t(src).shape[1]
        o = out_size(pad, n, f, s, d)
        if o < 1:
            return None
        p = padding_before(s, d, n, f, o) if pad == "SAME" else 0
        name = f"t{len(ops)}"
        g.tensors[name] = _T((1, o, 1, 1))
        full[name] = conv1d(full[src], f, s, d, p, o)
        geo[len(ops)] = (f, s, d)
        ops.append(SimpleNamespace(inputs=[src], outputs=[name], label=name))
        wins.append(SpatialWindow(filter=(f, 1), stride=(s, 1), dilation=(d, 1), pad_before=(p, 0)))
        return name

    cur = "x"
    for kind, spec in blocks:
        if kind == "win":
            nxt = add_window(cur, *spec)
            if nxt is None:
                return
            cur = nxt
        else:
            ends = []
            for p in spec:
                b = cur
                for f, d in p:
                    b = add_window(b, f, 1, d, "SAME")
                ends.append(b)
            name = f"t{len(ops)}"
            g.tensors[name] = _T(g.t(cur).shape)
            full[name] = full[ends[0]] + 3 * full[ends[1]]
            ops.append(SimpleNamespace(inputs=ends, outputs=[name], label=name))
            wins.append(SpatialWindow())
            cur = name
    n = g.t(cur).shape[1]
    if parts > n:
        return
    stage = Stage(split=len(ops) - 1, ops=tuple(ops), windows=tuple(wins), inputs=("x",))
    try:
        plan = axis_plan(g, stage, 0, split(n, parts))
    except ValueError:
        return  # a part that reads only padding: the search skips such grids
    for k in range(parts):
        have = {"x": (plan.need["x"][k], full["x"][slice(*plan.need["x"][k])])}
        for pos, op in enumerate(ops):
            lo, hi = plan.need[op.outputs[0]][k]
            ins = []
            for slot, src in enumerate(op.inputs):
                r = plan.reads[(pos, slot)][k]
                (slo, shi), vals = have[src]
                assert slo <= r.lo and r.hi <= shi  # the producer computed what this op reads
                ins.append((r, vals[r.lo - slo:r.hi - slo]))
            if pos in geo:
                f, s, d = geo[pos]
                (r, v), = ins
                out = conv1d(v, f, s, d, r.pad_before, hi - lo)
            else:
                (_, a), (_, b) = ins
                out = a + 3 * b
            np.testing.assert_array_equal(out, full[op.outputs[0]][lo:hi])
            have[op.outputs[0]] = ((lo, hi), out)
        assert plan.need[cur][k] == plan.parts[k]
