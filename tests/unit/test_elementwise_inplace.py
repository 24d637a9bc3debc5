"""ADD writes over whichever full-size input dies there, not simply its first one."""

from __future__ import annotations

import numpy as np

from tests.support.golden import assert_outputs_equal
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import compile_model, run_on_host
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.memory.plan import plan_memory
from tinyc.ops.registry import lookup
from tinyc.passes.manager import run_passes


def _conv1x1(b: ModelBuilder, x: int, name: str, in_c: int, out_c: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    w = b.const(f"w_{name}", rng.integers(-60, 60, (out_c, 1, 1, in_c), dtype=np.int8),
                scale=[0.01] * out_c, zero_point=[0] * out_c, quantized_dimension=0)
    y = b.tensor(name, (1, 8, 8, out_c), "int8", 0.2, 1)
    b.op("CONV_2D", [x, w, None], [y], dict(padding="SAME", stride_h=1, stride_w=1))
    return y


def skip_read_after_add() -> bytes:
    """a -> c; y = ADD(a, c); a is read again after the ADD, c dies at it."""
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 4), "int8", 0.1, 0)
    a = _conv1x1(b, x, "a", 4, 64, 1)
    c = _conv1x1(b, a, "c", 64, 64, 2)
    y = b.tensor("y", (1, 8, 8, 64), "int8", 0.3, 0)
    b.op("ADD", [a, c], [y])
    w = _conv1x1(b, a, "w", 64, 4, 3)
    out = _conv1x1(b, y, "out", 64, 4, 4)
    b.output(w, out)
    return b.build()


def test_add_writes_over_its_second_input_when_that_one_dies() -> None:
    g = run_passes(read_tflite(data=skip_read_after_add(), name="skip"), [])
    add = next(op for op in g.ops if op.kind == "ADD")
    assert lookup("ADD").overlap(add, g).input_index == 1
    plan = plan_memory(g, ())
    # a and c/y share nothing else at the ADD: two 4096 B tensors, not three
    assert plan.lower_bound_bytes < 3 * 64 * 64


def test_the_model_stays_bit_exact() -> None:
    model = skip_read_after_add()
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, (4, 1, 8, 8, 4), dtype=np.int8)
    assert compile_model(model).plan.arena_bytes < 3 * 64 * 64
    assert_outputs_equal(run_on_host(model, [x]), run_tflm(model, [x]))
