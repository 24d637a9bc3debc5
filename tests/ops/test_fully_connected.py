"""FULLY_CONNECTED (int8, per-tensor and per-channel weights, batches, fused activations): every
output byte equals TFLM's.

The TFLM goldens of all cases are computed in one reference worker (run_many); each case is then
compiled and run on the host (ASan + UBSan) by tinyc.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Sequence

import numpy as np
import pytest

from tests.support.golden import assert_outputs_equal, tflm_goldens
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.errors import UnsupportedError

N = 16  # inputs per batch


@dataclass(frozen=True)
class Case:
    model: bytes
    inputs: tuple[np.ndarray, ...]


def fc_model(in_shape: Sequence[int], units: int, *, rng: np.random.Generator, in_q=(0.05, -3), out_q=(0.08, 5),
             w_scale: float | Sequence[float] = 0.01, w_zp: int = 0, bias: bool = True, act: str = "NONE",
             keep_num_dims: bool = False, out_shape: Sequence[int] | None = None, w_range=(-127, 128),
             bias_range=(-2000, 2000), features: int | None = None) -> bytes:
    """One FULLY_CONNECTED with random int8 weights and int32 bias (scale = input x weights)."""
    b = ModelBuilder()
    x = b.input("x", shape=tuple(in_shape), dtype="int8", scale=in_q[0], zero_point=in_q[1])
    k = features or in_shape[-1]
    w = rng.integers(w_range[0], w_range[1], size=(units, k), dtype=np.int8)
    per_channel = not np.isscalar(w_scale)
    wt = b.const("w", w, scale=w_scale, zero_point=[0] * units if per_channel else w_zp, quantized_dimension=0)
    bt = None
    if bias:
        bs = [in_q[0] * s for s in w_scale] if per_channel else in_q[0] * float(w_scale)
        bt = b.const("b", rng.integers(bias_range[0], bias_range[1], size=units).astype(np.int32), scale=bs,
                     zero_point=[0] * units if per_channel else 0)
    if out_shape is None:
        out_shape = (*in_shape[:-1], units) if keep_num_dims else (int(np.prod(in_shape[:-1])), units)
    y = b.tensor("y", shape=tuple(out_shape), dtype="int8", scale=out_q[0], zero_point=out_q[1])
    b.op("FULLY_CONNECTED", inputs=[x, wt, bt], outputs=[y],
         options=dict(fused_activation_function=act, keep_num_dims=keep_num_dims))
    b.output(y)
    return b.build()


def _case(in_shape, units, seed, extreme=False, **kw) -> Case:
    rng = np.random.default_rng(seed)
    model = fc_model(in_shape, units, rng=rng, **kw)
    x = rng.integers(-128, 128, size=(N, *in_shape), dtype=np.int8)
    if extreme:  # whole rows at both ends of the int8 range
        x.reshape(N, -1)[0] = -128
        x.reshape(N, -1)[1] = 127
    return Case(model, (x,))


def _random_case(seed: int) -> Case:
    """A seeded random configuration: shapes, scales, zero points, quantization kind, activation."""
    rng = np.random.default_rng(1000 + seed)
    k = int(rng.integers(1, 96))
    units = int(rng.integers(1, 40))
    lead = [int(d) for d in rng.integers(1, 4, size=int(rng.integers(0, 3)))]
    in_shape = (*lead, k) if lead else (1, k)
    per_channel = bool(rng.integers(0, 2))
    w_scale = list(rng.uniform(0.001, 0.05, size=units)) if per_channel else float(rng.uniform(0.001, 0.05))
    act = str(rng.choice(["NONE", "RELU", "RELU6", "RELU_N1_TO_1"]))
    in_q = (float(rng.uniform(0.005, 0.2)), int(rng.integers(-128, 128)))
    out_q = (float(rng.uniform(0.01, 0.5)), int(rng.integers(-128, 128)))
    keep = bool(rng.integers(0, 2)) and len(in_shape) > 2
    return _case(in_shape, units, seed, in_q=in_q, out_q=out_q, w_scale=w_scale, act=act, keep_num_dims=keep,
                 bias=bool(rng.integers(0, 4)), w_zp=0 if per_channel else int(rng.integers(-3, 4)))


PC = [0.004 + 0.001 * i for i in range(10)]

CASES: dict[str, Callable[[], Case]] = {
    "fc_per_tensor_bias_1x16_to_10": lambda: _case((1, 16), 10, 1),
    "fc_per_channel_bias_relu6": lambda: _case((1, 24), 10, 2, w_scale=PC, act="RELU6", out_q=(0.03, -128)),
    "fc_per_tensor_no_bias_relu": lambda: _case((1, 33), 7, 3, bias=False, act="RELU", out_q=(0.05, -20)),
    "fc_per_channel_no_bias_relu_n1_to_1": lambda: _case((1, 12), 10, 4, w_scale=PC, bias=False,
                                                         act="RELU_N1_TO_1", out_q=(0.01, 0)),
    "fc_weights_zero_point_nonzero_per_tensor": lambda: _case((1, 20), 6, 5, w_zp=7, w_range=(-100, 100)),
    "fc_batch_dims_4d_input_flattened_to_rows": lambda: _case((1, 2, 3, 8), 5, 6),
    "fc_keep_num_dims_3d": lambda: _case((2, 3, 8), 5, 7, keep_num_dims=True, act="RELU"),
    "fc_rank2_batches_4x32_to_12": lambda: _case((4, 32), 12, 8, w_scale=[0.01 + 0.002 * i for i in range(12)]),
    "fc_input_zero_points_at_extremes_low": lambda: _case((1, 40), 8, 9, in_q=(0.02, -128), out_q=(0.1, 127),
                                                          extreme=True),
    "fc_input_zero_points_at_extremes_high": lambda: _case((1, 40), 8, 10, in_q=(0.02, 127), out_q=(0.1, -128),
                                                           extreme=True),
    "fc_long_accumulation_1024_to_4": lambda: _case((1, 1024), 4, 11, w_scale=0.002, out_q=(0.2, 0)),
    "fc_multiplier_above_one_saturates": lambda: _case((1, 8), 6, 12, in_q=(0.5, 0), w_scale=0.5, out_q=(0.01, 0)),
    "fc_single_unit_flattened_image": lambda: _case((1, 4, 4, 3), 1, 13, out_shape=(1, 1),
                                                                features=48),
    "fc_tiny_multiplier": lambda: _case((1, 16), 4, 14, in_q=(0.001, 0), w_scale=0.0001, out_q=(1.0, 3)),
    # the packed kernel's row blocks (4, then 2 and 1) and chunk tails (8 inputs per pass, then 4, then 1-3)
    "fc_row_blocks_4_2_1_depth_8k_plus_7": lambda: _case((1, 23), 7, 15, act="RELU6", out_q=(0.04, -128)),
    "fc_row_blocks_depth_8k_plus_4_batches_3": lambda: _case((3, 12), 6, 16, w_scale=PC[:6]),
    "fc_one_input_five_units": lambda: _case((2, 1), 5, 17),
    "fc_vww_head_256_to_2": lambda: _case((1, 256), 2, 18, w_scale=0.004, out_q=(0.1, -10)),
    "fc_kws_head_64_to_12_weights_zp": lambda: _case((1, 64), 12, 19, w_zp=-5, w_range=(-120, 120)),
    **{f"fc_random_config_{i}": (lambda i=i: _random_case(i)) for i in range(10)},
}


@pytest.fixture(scope="module")
def cases() -> dict[str, Case]:
    return {name: make() for name, make in CASES.items()}


@pytest.fixture(scope="module")
def goldens(cases: dict[str, Case]) -> dict[str, list[np.ndarray]]:
    return tflm_goldens(cases)


@pytest.mark.parametrize("kernel", ["packed", "model_layout"])
@pytest.mark.parametrize("name", list(CASES))
def test_matches_tflm(name: str, kernel: str, cases: dict[str, Case], goldens: dict[str, list[np.ndarray]],
                      monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    """Both kernels: the packed int16 weights (constant layers) and the model's [out][in] layout
    (trained layers and those too large to pack), forced here by a packing budget below zero."""
    case = cases[name]
    if kernel == "model_layout":
        import tinyc.ops.fully_connected as fc

        monkeypatch.setattr(fc, "PACK_MAX_EXTRA_BYTES", -(1 << 40))
        monkeypatch.setenv("TINYC_CACHE", str(tmp_path))  # the host build cache does not key on it
    got = run_on_host(case.model, list(case.inputs))
    assert_outputs_equal(got, goldens[name])


# ---------------------------------------------------------------------------- lowering facts
def test_fc_macs_and_kernel_choice() -> None:
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.ops.registry import lookup

    import dataclasses

    import tinyc.ops.fully_connected as fc

    rng = np.random.default_rng(0)
    for w_scale, fn in ((0.01, "tinyc_fully_connected_s8"), (PC[:5], "tinyc_fully_connected_s8_pc")):
        g = read_tflite(data=fc_model((3, 16), 5, rng=rng, w_scale=w_scale))
        op = g.ops[0]
        mod = lookup("FULLY_CONNECTED")
        assert mod.macs(op, g) == 3 * 16 * 5
        call = mod.lower(op, g)  # constant weights: packed for SMLAD
        assert call.function == "tinyc_fully_connected_s8_packed"
        assert call.params["batches"] == 3 and call.params["accum_depth"] == 16
        assert call.params["weights"].dtype == np.int32 and call.params["weights"].size == 5 * 4 * 2
        assert [a.kind for a in call.args] == ["in", "out"]  # the int8 tensor is no longer read
        # trained weights change at run time in the model's layout: nothing packed or folded
        trained = dataclasses.replace(op, attrs={**op.attrs, "trained": True})
        call = mod.lower(trained, g)
        assert call.function == fn and [a.kind for a in call.args] == ["in", "const", "const", "out"]
    # too large to pack within the flash budget: the model's layout
    g = read_tflite(data=fc_model((1, 1024), 40, rng=rng))
    assert fc.packed_weight_bytes(40, 1024) - 40 * 1024 > fc.PACK_MAX_EXTRA_BYTES
    assert lookup("FULLY_CONNECTED").lower(g.ops[0], g).function == "tinyc_fully_connected_s8"


def test_fc_packed_layout() -> None:
    """Row blocks of 4, 2, 1; per chunk and row the even and odd int16 pairs, zero padded."""
    import tinyc.ops.fully_connected as fc

    w = np.arange(7 * 6).reshape(7, 6) - 20  # 7 rows (4 + 2 + 1), 6 inputs (2 chunks, the last padded)
    words = fc.pack_weights(w).view(np.uint32)
    lo = (words & 0xffff).astype(np.uint16).view(np.int16).astype(int)
    hi = (words >> 16).astype(np.uint16).view(np.int16).astype(int)
    wp = np.zeros((7, 8), dtype=int)
    wp[:, :6] = w
    want, pos = [], 0
    for rows in (range(0, 4), range(4, 6), range(6, 7)):
        for k in range(2):
            for r in rows:
                want += [(wp[r, 4 * k], wp[r, 4 * k + 2]), (wp[r, 4 * k + 1], wp[r, 4 * k + 3])]
    assert list(zip(lo, hi)) == want


# ---------------------------------------------------------------------------- unsupported
def _float_fc() -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4), dtype="float32")
    w = b.const("w", np.ones((2, 4), dtype=np.float32))
    y = b.tensor("y", shape=(1, 2), dtype="float32")
    b.op("FULLY_CONNECTED", inputs=[x, w, None], outputs=[y])
    b.output(y)
    return b.build()


def _int16_fc() -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4), dtype="int16", scale=0.01, zero_point=0)
    w = b.const("w", np.ones((2, 4), dtype=np.int8), scale=0.01, zero_point=0)
    y = b.tensor("y", shape=(1, 2), dtype="int16", scale=0.01, zero_point=0)
    b.op("FULLY_CONNECTED", inputs=[x, w, None], outputs=[y])
    b.output(y)
    return b.build()


def _runtime_weights_fc() -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4), dtype="int8", scale=0.01, zero_point=0)
    w = b.input("w", shape=(2, 4), dtype="int8", scale=0.01, zero_point=0)
    y = b.tensor("y", shape=(1, 2), dtype="int8", scale=0.01, zero_point=0)
    b.op("FULLY_CONNECTED", inputs=[x, w, None], outputs=[y])
    b.output(y)
    return b.build()


def _fc_with(**kw) -> Callable[[], bytes]:
    return lambda: fc_model((1, 8), 4, rng=np.random.default_rng(0), **kw)


def _per_channel_nonzero_zp() -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4), dtype="int8", scale=0.01, zero_point=0)
    w = b.const("w", np.ones((2, 4), dtype=np.int8), scale=[0.01, 0.02], zero_point=[0, 3])
    y = b.tensor("y", shape=(1, 2), dtype="int8", scale=0.01, zero_point=0)
    b.op("FULLY_CONNECTED", inputs=[x, w, None], outputs=[y])
    b.output(y)
    return b.build()


def _shuffled_weights() -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 16), dtype="int8", scale=0.01, zero_point=0)
    w = b.const("w", np.ones((4, 16), dtype=np.int8), scale=0.01, zero_point=0)
    y = b.tensor("y", shape=(1, 4), dtype="int8", scale=0.01, zero_point=0)
    b.op("FULLY_CONNECTED", inputs=[x, w, None], outputs=[y], options=dict(weights_format=1))
    b.output(y)
    return b.build()


def _bias_scale_mismatch() -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4), dtype="int8", scale=0.1, zero_point=0)
    w = b.const("w", np.ones((2, 4), dtype=np.int8), scale=0.1, zero_point=0)
    bias = b.const("b", np.zeros(2, dtype=np.int32), scale=0.5, zero_point=0)
    y = b.tensor("y", shape=(1, 2), dtype="int8", scale=0.1, zero_point=0)
    b.op("FULLY_CONNECTED", inputs=[x, w, bias], outputs=[y])
    b.output(y)
    return b.build()


def _accumulator_overflow() -> bytes:
    b = ModelBuilder()
    # |w - zp_w| * |x - zp_x| = 255 * 255 per term: 40000 terms exceed int32
    x = b.input("x", shape=(1, 40000), dtype="int8", scale=0.1, zero_point=-128)
    w = b.const("w", np.full((1, 40000), 127, dtype=np.int8), scale=0.1, zero_point=-128)
    y = b.tensor("y", shape=(1, 1), dtype="int8", scale=0.1, zero_point=0)
    b.op("FULLY_CONNECTED", inputs=[x, w, None], outputs=[y])
    b.output(y)
    return b.build()


def test_float_fc_is_rejected_by_the_op_module_too() -> None:
    """The frontend refuses float models first (BadInput); the op's own check says the same."""
    from tinyc.errors import BadInput
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.ops.registry import lookup

    with pytest.raises(BadInput):
        run_on_host(_float_fc(), [np.zeros((1, 1, 4), dtype=np.float32)])
    g = read_tflite(data=_float_fc())
    with pytest.raises(UnsupportedError, match=r"FULLY_CONNECTED \(op #0\): float32 FULLY_CONNECTED"):
        lookup("FULLY_CONNECTED").check(g.ops[0], g)


@pytest.mark.parametrize("make, why", [
    (_int16_fc, "int16 activations"),
    (_runtime_weights_fc, "must be a constant"),
    (_fc_with(act="TANH"), "fused activation TANH"),
    (_fc_with(out_shape=(1, 5)), "weights have 4 units"),
    (_fc_with(out_shape=(2, 4)), "need 16"),
    (_per_channel_nonzero_zp, "zero points 0"),
    (_shuffled_weights, "weights_format"),
    (_bias_scale_mismatch, "TFLM refuses"),
    (_accumulator_overflow, "accumulator could overflow"),
])
def test_unsupported_raises_naming_the_op(make, why: str) -> None:
    with pytest.raises(UnsupportedError) as e:
        run_on_host(make(), [np.zeros((1, 1, 4), dtype=np.int8)])
    assert "FULLY_CONNECTED (op #0)" in str(e.value)
    assert why in str(e.value)
