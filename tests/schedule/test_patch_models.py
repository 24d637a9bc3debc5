"""Patch-based execution, bit-exact with TFLM running the unsplit model.

Synthetic models stress what the receptive-field code must get right (odd map sizes, stride 2,
dilation, 5x5 and 7x7 windows, pooling with SAME padding, a residual ADD inside the stage,
grids that do not divide the map); every shared model with a patchable stage runs with a
forced grid. The outputs are compared byte for byte on random inputs under ASan+UBSan.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.paths import MODELS, all_models
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.compiler import Options, compile_model
from tinyc.api import run_on_host
from tinyc.errors import BadInput
from tinyc.ops._conv_math import out_size
from tinyc.schedule.stage import stages


class Net:
    """A chain of int8 layers with exact control over shapes (weights random but fixed)."""

    def __init__(self, shape: tuple[int, int, int], seed: int = 0, float_input: bool = False) -> None:
        self.b = ModelBuilder()
        self.rng = np.random.default_rng(seed)
        self.shape = shape
        self.n = 0
        if float_input:  # a float32 input the model quantizes first, as hanlab's MCUNets have
            f = self.b.input("f", shape=(1, *shape), dtype="float32")
            self.x = self.b.tensor("x", shape=(1, *shape), dtype="int8", scale=0.05, zero_point=-3)
            self.b.op("QUANTIZE", [f], [self.x])
        else:
            self.x = self.b.input("x", shape=(1, *shape), dtype="int8", scale=0.05, zero_point=-3)

    def _out(self, shape: tuple[int, int, int]) -> int:
        self.n += 1
        self.shape = shape
        return self.b.tensor(f"t{self.n}", shape=(1, *shape), dtype="int8", scale=0.08, zero_point=2)

    def conv(self, c_out: int, k: int, s: int = 1, d: int = 1, pad: str = "SAME", depthwise: bool = False,
             act: str = "NONE") -> "Net":
        h, w, c = self.shape
        oh, ow = out_size(pad, h, k, s, d), out_size(pad, w, k, s, d)
        if depthwise:
            c_out = c
            wt = self.b.const(f"w{self.n}", self.rng.integers(-127, 128, size=(1, k, k, c)).astype(np.int8),
                              scale=list(self.rng.uniform(0.002, 0.01, c)), zero_point=[0] * c,
                              quantized_dimension=3)
        else:
            wt = self.b.const(f"w{self.n}", self.rng.integers(-127, 128, size=(c_out, k, k, c)).astype(np.int8),
                              scale=list(self.rng.uniform(0.001, 0.006, c_out)), zero_point=[0] * c_out,
                              quantized_dimension=0)
        bias = self.b.const(f"b{self.n}", self.rng.integers(-500, 500, size=c_out).astype(np.int32))
        y = self._out((oh, ow, c_out))
        opts = dict(padding=pad, stride_h=s, stride_w=s, dilation_h_factor=d, dilation_w_factor=d,
                    fused_activation_function=act)
        if depthwise:
            opts["depth_multiplier"] = 1
        self.b.op("DEPTHWISE_CONV_2D" if depthwise else "CONV_2D", [self.x, wt, bias], [y], opts)
        self.x = y
        return self

    def pool(self, kind: str, k: int, s: int, pad: str) -> "Net":
        h, w, c = self.shape
        from tinyc.ops.pooling import out_size as pool_out

        y = self.b.tensor(f"p{self.n}", shape=(1, pool_out(pad, h, k, s), pool_out(pad, w, k, s), c), dtype="int8",
                          scale=0.08, zero_point=2)
        self.n += 1
        self.shape = (pool_out(pad, h, k, s), pool_out(pad, w, k, s), c)
        self.b.op(kind, [self.x], [y], dict(padding=pad, stride_h=s, stride_w=s, filter_height=k, filter_width=k))
        self.x = y
        return self

    def residual(self, k: int = 3) -> "Net":
        skip = self.x
        c = self.shape[2]
        self.conv(c, 1, act="RELU").conv(c, k, depthwise=True)
        y = self._out(self.shape)
        self.b.op("ADD", [skip, self.x], [y], dict(fused_activation_function="NONE"))
        self.x = y
        return self

    def head(self) -> bytes:
        """A global MEAN so the stage must end before it, then the output."""
        axes = self.b.const("axes", np.array([1, 2], dtype=np.int32))
        y = self.b.tensor("mean", shape=(1, 1, 1, self.shape[2]), dtype="int8", scale=0.08, zero_point=2)
        self.b.op("MEAN", [self.x, axes], [y], dict(keep_dims=True))
        self.b.output(y, )
        return self.b.build()


def _stress_model() -> bytes:
    n = Net((23, 19, 3))
    n.conv(8, 3, s=2, act="RELU6")          # 12x10
    n.conv(8, 3, d=2, depthwise=True)       # dilated depthwise
    n.residual()                            # residual add inside the stage
    n.conv(12, 5, act="RELU")               # 5x5
    n.conv(12, 7, s=2, depthwise=True)      # 7x7 stride 2 -> 6x5
    n.pool("AVERAGE_POOL_2D", 3, 1, "SAME")
    n.pool("MAX_POOL_2D", 2, 1, "VALID")    # 5x4
    n.conv(16, 1)
    return n.head()


def _check(model: bytes | str, patch: str, n: int = 6, options: dict | None = None) -> None:
    opts = Options(patch=patch, **(options or {}))
    c = compile_model(model, opts)
    x = c.graph.t(c.graph.inputs[0])  # what the program takes (int8 with --input-type int8)
    rng = np.random.default_rng(7)
    if x.dtype == "float32":
        data = rng.uniform(-1.5, 1.5, size=(n, *x.shape)).astype(np.float32)
    else:
        info = np.iinfo(np.dtype(x.dtype))
        data = rng.integers(info.min, info.max, size=(n, *x.shape), endpoint=True).astype(x.dtype)
    want = run_tflm(model if isinstance(model, bytes) else str(model), c.reference_inputs([data]))
    got = run_on_host(model, [data], options=opts, sanitize=True)
    for a, b in zip(got, want):
        assert a.dtype == b.dtype and a.shape == b.shape
        np.testing.assert_array_equal(a, b, err_msg=f"patch {patch}")




@pytest.mark.parametrize("patch", ["2x2@5", "3x2@5", "1x5@5", "4x3@4", "3x3@7", "5x4@9", "2x3@8", "6x5@1", "3x3@6"])
def test_stress_model_patches_are_bit_exact(patch: str) -> None:
    _check(_stress_model(), patch)


def test_stress_model_auto_never_raises_the_peak() -> None:
    m = _stress_model()
    auto = compile_model(m, Options(patch="auto"))
    off = compile_model(m, Options(patch="off"))
    assert auto.plan.arena_bytes <= off.plan.arena_bytes
    assert auto.patch.unpatched_arena_bytes == off.plan.arena_bytes
    _check(m, "auto")


def test_split_at_a_global_op_is_refused_with_the_valid_layers() -> None:
    m = _stress_model()
    last = compile_model(m, Options(patch="off")).graph.ops[-1].index
    with pytest.raises(BadInput, match="cannot end a patch stage.*valid split layers"):
        compile_model(m, Options(patch=f"2x2@{last}"))
    with pytest.raises(BadInput, match="expected off, auto or NxM@LAYER"):
        compile_model(m, Options(patch="4by4"))


def _forced_plans() -> list[tuple[str, str]]:
    """Per shared model with a patchable stage: the deepest stage with a 3x2 grid (so halos,
    borders and uneven splits all occur) — models without one are listed with the reason."""
    out = []
    for p in all_models():
        rel = str(p.relative_to(MODELS))
        g = compile_model(p, Options(patch="off")).graph
        st = [s for s in stages(g) if min(g.t(s.output).shape[1:3]) >= 3]
        if st:
            out.append((rel, f"3x2@{st[len(st) // 2].ops[-1].index}"))
    return out


@pytest.mark.slow
@pytest.mark.parametrize("model,patch", _forced_plans())
def test_shared_model_forced_patches_bit_exact(model: str, patch: str) -> None:
    _check(MODELS / model, patch, n=3)
