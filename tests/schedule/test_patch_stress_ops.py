"""More ops inside a patch stage than the first stress model has: a dilated ordinary convolution,
an explicit PAD folded into a VALID stride-2 convolution, stand-alone activations (RELU,
HARD_SWISH, LOGISTIC) and an element-wise MUL of two branches (a swish-like gate). Every grid,
including ones that do not divide the map, is bit-exact with TFLM on the unsplit model."""

from __future__ import annotations

import numpy as np
import pytest

from tests.schedule.test_patch_models import Net, _check
from tinyc.compiler import Options, compile_model


def _unary(n: Net, kind: str, scale: float = 0.08, zp: int = 2) -> int:
    y = n.b.tensor(f"a{n.n}", shape=(1, *n.shape), dtype="int8", scale=scale, zero_point=zp)
    n.n += 1
    n.b.op(kind, [n.x], [y])
    n.x = y
    return y


def _pad(n: Net, p: int) -> None:
    h, w, c = n.shape
    pads = n.b.const(f"pads{n.n}", np.array([[0, 0], [p, p], [p, p], [0, 0]], dtype=np.int32))
    y = n.b.tensor(f"pad{n.n}", shape=(1, h + 2 * p, w + 2 * p, c), dtype="int8", scale=0.08, zero_point=2)
    n.n += 1
    n.shape = (h + 2 * p, w + 2 * p, c)
    n.b.op("PAD", [n.x, pads], [y])
    n.x = y


def gated_model() -> bytes:
    n = Net((21, 17, 4), seed=3)
    n.conv(8, 3, d=2, act="RELU")               # dilated ordinary conv, 21x17
    _pad(n, 1)                                  # explicit PAD (zero point) ...
    n.conv(8, 3, s=2, pad="VALID")              # ... folded into a VALID stride-2 conv -> 11x9
    _unary(n, "RELU")
    _unary(n, "HARD_SWISH", scale=0.05, zp=-10)
    trunk = n.x
    n.conv(8, 1)                                # gate branch
    gate = _unary(n, "LOGISTIC", scale=1 / 256, zp=-128)
    y = n.b.tensor(f"mul{n.n}", shape=(1, *n.shape), dtype="int8", scale=0.03, zero_point=0)
    n.n += 1
    n.b.op("MUL", [trunk, gate], [y], dict(fused_activation_function="NONE"))
    n.x = y
    n.conv(12, 3, depthwise=False, act="RELU6")  # 11x9
    return n.head()


@pytest.mark.parametrize("patch", ["2x2@8", "3x2@8", "4x3@7", "2x5@4", "3x3@2", "5x4@8", "7x6@8", "4x4@3"])
def test_gated_model_patches_are_bit_exact(patch: str) -> None:
    m = gated_model()
    c = compile_model(m, Options(patch=patch))
    assert c.patch.chosen is not None and c.patch.chosen.grid == tuple(int(v) for v in patch.split("@")[0].split("x"))
    _check(m, patch)


def test_gated_model_auto_never_raises_the_peak() -> None:
    m = gated_model()
    auto, off = compile_model(m, Options(patch="auto")), compile_model(m, Options(patch="off"))
    assert auto.plan.arena_bytes <= off.plan.arena_bytes
    _check(m, "auto")
