"""Layout ops (RESHAPE, SQUEEZE, TRANSPOSE, STRIDED_SLICE, PAD, PADV2, CONCATENATION, PACK,
SHAPE): every output byte of the generated C against TFLM, plus the compile-time folds.

Several ops read the same input in one model, each its own output, to keep compiles few.
"""

from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.paths import MODELS
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import run_on_host
from tinyc.compiler import compile_model
from tinyc.errors import UnsupportedError
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.ir import Graph, Op, QuantParams, Tensor
from tinyc.ops.registry import lookup
from tinyc.passes.manager import run_passes

Q = dict(scale=0.05, zero_point=-3)


def rand(rng: np.random.Generator, shape: tuple[int, ...], dtype: str) -> np.ndarray:
    if dtype == "float32":
        return rng.standard_normal(shape).astype(np.float32)
    info = np.iinfo(dtype)
    return rng.integers(info.min, info.max, size=shape, endpoint=True, dtype=dtype)


def quant(dtype: str) -> dict:
    return Q if dtype in ("int8", "uint8", "int16") else {}


def compare(model: bytes, inputs: list[np.ndarray], labels: list[str] | None = None) -> list[np.ndarray]:
    got = run_on_host(model, inputs)
    want = run_tflm(model, inputs)
    assert len(got) == len(want)
    for i, (a, b) in enumerate(zip(got, want)):
        assert a.dtype == b.dtype
        np.testing.assert_array_equal(a, b, err_msg=labels[i] if labels else f"output {i}")
    return got


def kinds_after_passes(model: bytes) -> list[str]:
    return [op.kind for op in compile_model(model).graph.ops]


# ----------------------------------------------------------------------------- RESHAPE / SQUEEZE

def test_reshape_between_graph_input_and_output_is_a_copy_matching_tflm():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 2, 3, 4), dtype="int8", **Q)
    y = b.tensor("y", shape=(6, 4), dtype="int8", scale=0.07, zero_point=5)  # TFLM ignores the requant
    b.op("RESHAPE", [x, b.const("s", [6, 4])], [y])
    b.output(y)
    m = b.build()
    assert kinds_after_passes(m) == ["RESHAPE"]
    x_in = rand(np.random.default_rng(1), (8, 1, 2, 3, 4), "int8")
    out = compare(m, [x_in])
    np.testing.assert_array_equal(out[0], x_in.reshape(8, 6, 4))


def test_reshape_and_squeeze_inside_graph_become_aliases_and_match_tflm():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4, 4, 3), dtype="int8", **Q)
    p = b.tensor("p", shape=(1, 1, 1, 3), dtype="int8", **Q)
    b.op("MAX_POOL_2D", [x], [p], dict(filter_height=4, filter_width=4, stride_h=4, stride_w=4))
    r = b.tensor("r", shape=(1, 3), dtype="int8", **Q)
    b.op("RESHAPE", [p, b.const("s", [1, 3])], [r])
    s = b.tensor("s2", shape=(3,), dtype="int8", **Q)
    b.op("SQUEEZE", [r], [s], dict(squeeze_dims=[0]))
    perm = b.tensor("t", shape=(3,), dtype="int8", **Q)
    b.op("TRANSPOSE", [s, b.const("perm", [0])], [perm])
    b.output(perm)
    m = b.build()
    assert kinds_after_passes(m) == ["MAX_POOL_2D", "TRANSPOSE"]
    compare(m, [rand(np.random.default_rng(2), (8, 1, 4, 4, 3), "int8")])


def test_expand_dims_is_a_view_and_lowers_to_one_contiguous_copy():
    # The test builder cannot write EXPAND_DIMS; check the module on the IR directly.
    q = QuantParams(scale=(0.1,), zero_point=(0,))
    x = Tensor("t0", (2, 3), "int8", q)
    axis = Tensor("t1", (), "int32", data=np.array(0, dtype=np.int32))
    y = Tensor("t2", (1, 2, 3), "int8", q)
    op = Op("EXPAND_DIMS", ("t0", "t1"), ("t2",), {}, 0)
    g = Graph("m", {"t0": x, "t1": axis, "t2": y}, (op,), ("t0",), ("t2",))
    mod = lookup("EXPAND_DIMS")
    mod.check(op, g)
    assert mod.view_of(op, g) == "t0"
    call = mod.lower(op, g)
    assert call.function == "tinyc_strided_copy"
    assert call.params["dims"] == (1, 1, 1, 1, 1, 6) and call.params["in_strides"][-1] == 1


# ----------------------------------------------------------------------------- TRANSPOSE

TRANSPOSES = [((1, 3, 3, 10), (0, 3, 1, 2)),  # hanlab vww / mcunetv2 head
              ((2, 3, 4, 5), (3, 2, 1, 0)), ((2, 3, 4, 5), (1, 0, 2, 3)), ((2, 3, 4, 5), (0, 1, 2, 3)),
              ((5, 7), (1, 0)), ((6,), (0,)), ((2, 3, 4), (2, 0, 1)),
              ((2, 1, 3, 2, 3), (4, 2, 0, 3, 1)), ((3, 2, 1, 3, 2), (4, 0, 3, 1, 2))]


@pytest.mark.parametrize("dtype", ["int8", "int16", "float32"])
def test_transpose_ranks_1_to_5_every_axis_order_matches_tflm(dtype):
    b = ModelBuilder()
    rng = np.random.default_rng(3)
    xs, feeds = [], []
    for i, (shape, perm) in enumerate(TRANSPOSES):
        x = b.input(f"x{i}", shape=shape, dtype=dtype, **quant(dtype))
        y = b.tensor(f"y{i}", shape=tuple(shape[p] for p in perm), dtype=dtype, **quant(dtype))
        b.op("TRANSPOSE", [x, b.const(f"perm{i}", list(perm))], [y])
        b.output(y)
        feeds.append(rand(rng, (4, *shape), dtype))
    out = compare(b.build(), feeds, [str(t) for t in TRANSPOSES])
    for (shape, perm), f, o in zip(TRANSPOSES, feeds, out):
        np.testing.assert_array_equal(o, np.transpose(f, (0, *[p + 1 for p in perm])))


# ----------------------------------------------------------------------------- STRIDED_SLICE

SLICES = [  # (shape, begin, end, strides, begin_mask, end_mask, shrink_axis_mask)
    ((1, 6, 7, 5), (0, 1, 2, 0), (1, 5, 7, 5), (1, 1, 1, 1), 0, 0, 0),
    ((1, 6, 7, 5), (0, 0, 0, 1), (1, 6, 7, 4), (1, 2, 3, 2), 0, 0, 0),
    ((1, 6, 7, 5), (0, -1, -2, -1), (1, -7, 0, -6), (1, -1, -2, -1), 0, 0, 0),  # reversed
    ((1, 6, 7, 5), (0, 4, 9, -9), (1, 100, -9, 100), (1, 1, -1, 1), 0b0010, 0b0100, 0),  # masks, clamping
    ((1, 6, 7, 5), (0, 2, 0, -1), (1, 3, 7, 0), (1, 1, 1, 1), 0, 0, 0b1010),  # shrink two axes
    ((1, 6, 7, 5), (0, -3, 1, 0), (0, 0, 0, 0), (1, 1, 2, 1), 0b1000, 0b1101, 0b0011),
    ((6, 7), (5, 6), (-8, -9), (-2, -3), 0, 0, 0),
    ((6, 7), (0, 0), (0, 0), (1, 1), 0b11, 0b11, 0),  # whole tensor
    ((11,), (-1,), (0,), (1,), 0, 0, 1),  # the MCUNet Wake Vision head's pattern, on data
    ((11,), (1,), (-1,), (3,), 0, 0, 0),
    ((4, 3, 5), (1, 0, 4), (3, 3, 0), (1, 1, -2), 0, 0, 0),
]


def _np_slice(shape, begin, end, strides, bm, em, sm):
    idx = []
    for k in range(len(shape)):
        if sm >> k & 1:
            idx.append(begin[k])
        else:
            idx.append(slice(None if bm >> k & 1 else begin[k], None if em >> k & 1 else end[k], strides[k]))
    return tuple(idx)


def _add_slice(b, x, i, dtype, shape, begin, end, strides, bm, em, sm):
    out_shape = np.zeros(shape)[_np_slice(shape, begin, end, strides, bm, em, sm)].shape
    y = b.tensor(f"y{i}", shape=out_shape, dtype=dtype, **quant(dtype))
    b.op("STRIDED_SLICE", [x, b.const(f"b{i}", list(begin)), b.const(f"e{i}", list(end)),
                           b.const(f"s{i}", list(strides))], [y],
         dict(begin_mask=bm, end_mask=em, shrink_axis_mask=sm))
    b.output(y)


@pytest.mark.parametrize("dtype", ["int8", "float32"])
def test_strided_slice_masks_negative_indices_and_strides_match_tflm(dtype):
    b = ModelBuilder()
    rng = np.random.default_rng(4)
    feeds = []
    for i, case in enumerate(SLICES):
        x = b.input(f"x{i}", shape=case[0], dtype=dtype, **quant(dtype))
        _add_slice(b, x, i, dtype, *case)
        feeds.append(rand(rng, (4, *case[0]), dtype))
    out = compare(b.build(), feeds, [str(c) for c in SLICES])
    for case, f, o in zip(SLICES, feeds, out):
        np.testing.assert_array_equal(o, f[(slice(None),) + _np_slice(*case)])


@settings(max_examples=5, derandomize=True, deadline=None)
@given(st.data())
def test_strided_slice_random_rank4_slices_match_tflm(data):
    shape = (2, 5, 4, 6)
    b = ModelBuilder()
    x = b.input("x", shape=shape, dtype="int8", **Q)
    cases = []
    for i in range(6):
        begin = [data.draw(st.integers(-s - 2, s + 2)) for s in shape]
        end = [data.draw(st.integers(-s - 2, s + 2)) for s in shape]
        strides = [data.draw(st.sampled_from([-3, -2, -1, 1, 2, 3])) for _ in shape]
        bm, em = data.draw(st.integers(0, 15)), data.draw(st.integers(0, 15))
        sm = 0
        for k, s in enumerate(shape):  # shrink only where the index is in range and the stride positive
            if strides[k] > 0 and -s <= begin[k] < s and not bm >> k & 1 and data.draw(st.booleans()):
                sm |= 1 << k
        case = (shape, begin, end, strides, bm, em, sm)
        if 0 in np.zeros(shape)[_np_slice(*case)].shape:
            continue  # TFLM's writer does not touch empty outputs; nothing to compare
        _add_slice(b, x, i, "int8", *case)
        cases.append(case)
    if not cases:
        return
    compare(b.build(), [rand(np.random.default_rng(5), (4, *shape), "int8")], [str(c) for c in cases])


# ----------------------------------------------------------------------------- PAD / PADV2

PADS = [((1, 5, 6, 3), [[0, 0], [1, 1], [1, 1], [0, 0]]),  # every conv stem in the HAN-lab models
        ((1, 5, 6, 3), [[0, 0], [0, 1], [0, 1], [0, 0]]),  # wv mobilenetv2
        ((1, 5, 6, 3), [[1, 2], [3, 0], [0, 2], [2, 1]]),
        ((2, 3, 4), [[0, 1], [2, 0], [1, 3]]), ((7, 5), [[2, 1], [0, 3]]), ((9,), [[4, 2]]),
        ((1, 2, 3, 4), [[0, 0], [0, 0], [0, 0], [0, 0]])]


@pytest.mark.parametrize("dtype,zp", [("int8", -3), ("int8", -128), ("int8", 127), ("float32", 0), ("int16", 0)])
def test_pad_ranks_1_to_4_pads_with_output_zero_point_matches_tflm(dtype, zp):
    b = ModelBuilder()
    rng = np.random.default_rng(6)
    feeds = []
    q = dict(scale=0.05, zero_point=zp) if dtype != "float32" else {}
    for i, (shape, pads) in enumerate(PADS):
        x = b.input(f"x{i}", shape=shape, dtype=dtype, **q)
        y = b.tensor(f"y{i}", shape=tuple(s + p[0] + p[1] for s, p in zip(shape, pads)), dtype=dtype, **q)
        b.op("PAD", [x, b.const(f"p{i}", np.array(pads, dtype=np.int32))], [y])
        b.output(y)
        feeds.append(rand(rng, (4, *shape), dtype))
    out = compare(b.build(), feeds, [str(p) for p in PADS])
    for (shape, pads), f, o in zip(PADS, feeds, out):
        want = np.pad(f, [[0, 0]] + pads, constant_values=zp if dtype == "int8" else 0)
        np.testing.assert_array_equal(o, want)


def test_padv2_with_constant_values_int8_and_float_matches_tflm():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 4, 3, 2), dtype="int8", **Q)
    y = b.tensor("y", shape=(1, 6, 4, 3), dtype="int8", **Q)
    pads = np.array([[0, 0], [1, 1], [0, 1], [1, 0]], dtype=np.int32)
    b.op("PADV2", [x, b.const("p", pads), b.const("v", np.array([77], dtype=np.int8), **Q)], [y])
    b.output(y)
    xf = b.input("xf", shape=(3, 5), dtype="float32")
    yf = b.tensor("yf", shape=(4, 8), dtype="float32")
    b.op("PADV2", [xf, b.const("pf", np.array([[1, 0], [2, 1]], dtype=np.int32)),
                   b.const("vf", np.array([-1.5], dtype=np.float32))], [yf])
    b.output(yf)
    rng = np.random.default_rng(7)
    feeds = [rand(rng, (4, 1, 4, 3, 2), "int8"), rand(rng, (4, 3, 5), "float32")]
    out = compare(b.build(), feeds)
    np.testing.assert_array_equal(out[0], np.pad(feeds[0], [[0, 0]] + pads.tolist(), constant_values=77))
    np.testing.assert_array_equal(out[1], np.pad(feeds[1], [[0, 0], [1, 0], [2, 1]], constant_values=-1.5))


def test_pad_uint8_pads_with_zero_point():
    # TFLM has no uint8 PAD; TFLite pads with the zero point, checked against numpy.
    b = ModelBuilder()
    x = b.input("x", shape=(1, 3, 3, 2), dtype="uint8", scale=0.1, zero_point=131)
    y = b.tensor("y", shape=(1, 5, 4, 2), dtype="uint8", scale=0.1, zero_point=131)
    b.op("PAD", [x, b.const("p", np.array([[0, 0], [1, 1], [1, 0], [0, 0]], dtype=np.int32))], [y])
    b.output(y)
    f = rand(np.random.default_rng(8), (4, 1, 3, 3, 2), "uint8")
    (out,) = run_on_host(b.build(), [f])
    np.testing.assert_array_equal(out, np.pad(f, [[0, 0], [0, 0], [1, 1], [1, 0], [0, 0]], constant_values=131))


# ----------------------------------------------------------------------------- CONCATENATION / PACK

def test_concatenation_int8_on_every_axis_matches_tflm():
    base = (2, 3, 4, 5)
    sizes = [1, 3, 2]
    axes = [0, 1, 2, 3, -1, -3]
    b = ModelBuilder()
    rng = np.random.default_rng(10)
    feeds, wants = [], []
    for j, axis in enumerate(axes):
        ax = axis % 4
        ins, mine = [], []
        for i, n in enumerate(sizes):
            shape = tuple(n if k == ax else s for k, s in enumerate(base))
            ins.append(b.input(f"x{j}_{i}", shape=shape, dtype="int8", **Q))
            mine.append(rand(rng, (4, *shape), "int8"))
        c_shape = tuple(2 if k == ax else s for k, s in enumerate(base))
        c_data = rand(rng, c_shape, "int8")
        ins.insert(1, b.const(f"c{j}", c_data, **Q))  # a constant input between activations
        out_shape = tuple(sum(sizes) + 2 if k == ax else s for k, s in enumerate(base))
        y = b.tensor(f"y{j}", shape=out_shape, dtype="int8", **Q)
        b.op("CONCATENATION", ins, [y], dict(axis=axis))
        b.output(y)
        feeds += mine
        wants.append(np.concatenate([mine[0], np.broadcast_to(c_data, (4, *c_shape)), *mine[1:]], axis=ax + 1))
    out = compare(b.build(), feeds, [f"axis {a}" for a in axes])
    for o, w in zip(out, wants):
        np.testing.assert_array_equal(o, w)


def test_concatenation_of_ten_inputs_matches_tflm():
    b = ModelBuilder()
    ins, feeds = [], []
    rng = np.random.default_rng(11)
    for i in range(10):
        ins.append(b.input(f"x{i}", shape=(1, 2, 2, i + 1), dtype="int8", **Q))
        feeds.append(rand(rng, (4, 1, 2, 2, i + 1), "int8"))
    y = b.tensor("y", shape=(1, 2, 2, 55), dtype="int8", **Q)
    b.op("CONCATENATION", ins, [y], dict(axis=3))
    b.output(y)
    (out,) = compare(b.build(), feeds)
    np.testing.assert_array_equal(out, np.concatenate(feeds, axis=4))


def test_concatenation_float32_and_int32_match_tflm():
    b = ModelBuilder()
    rng = np.random.default_rng(12)
    feeds = []
    for dt in ("float32", "int32"):
        a = b.input(f"a_{dt}", shape=(3, 2), dtype=dt)
        c = b.input(f"c_{dt}", shape=(3, 5), dtype=dt)
        y = b.tensor(f"y_{dt}", shape=(3, 7), dtype=dt)
        b.op("CONCATENATION", [a, c], [y], dict(axis=1))
        b.output(y)
        feeds += [rand(rng, (4, 3, 2), dt), rand(rng, (4, 3, 5), dt)]
    compare(b.build(), feeds)


def test_pack_int8_and_float32_on_every_axis_matches_tflm():
    b = ModelBuilder()
    rng = np.random.default_rng(13)
    feeds, wants, labels = [], [], []
    shape = (2, 3)
    for axis in (0, 1, 2, -1):
        ax = axis % 3
        for dt in ("int8", "float32"):
            mine = []
            ins = []
            for i in range(3):
                ins.append(b.input(f"x{i}_{dt}_{ax}_{axis}", shape=shape, dtype=dt, **quant(dt)))
                mine.append(rand(rng, (4, *shape), dt))
            out_shape = list(shape)
            out_shape.insert(ax, 3)
            y = b.tensor(f"y_{dt}_{axis}", shape=out_shape, dtype=dt, **quant(dt))
            b.op("PACK", ins, [y], dict(axis=axis))
            b.output(y)
            feeds += mine
            wants.append(np.stack(mine, axis=ax + 1))
            labels.append(f"{dt} axis {axis}")
    out = compare(b.build(), feeds, labels)
    for o, w in zip(out, wants):
        np.testing.assert_array_equal(o, w)


# ----------------------------------------------------------------------------- SHAPE and folding

def _wake_vision_head(b: ModelBuilder, x: int) -> int:
    """SHAPE -> STRIDED_SLICE -> PACK -> RESHAPE, as in wv_quality_mcunet-320kb-1mb_vww.tflite."""
    shape = b.tensor("shape", shape=(4,), dtype="int32")
    b.op("SHAPE", [x], [shape], dict(out_type="INT32"))
    n = b.tensor("n", shape=(), dtype="int32")
    b.op("STRIDED_SLICE", [shape, b.const("b", [0]), b.const("e", [1]), b.const("s", [1])], [n],
         dict(shrink_axis_mask=1))
    new_shape = b.tensor("new_shape", shape=(2,), dtype="int32")
    b.op("PACK", [n, b.const("two", np.array(2, dtype=np.int32))], [new_shape], dict(axis=0))
    y = b.tensor("y", shape=(1, 2), dtype="int8", **Q)
    b.op("RESHAPE", [x, new_shape], [y], dict(new_shape=[]))
    return y


def test_shape_slice_pack_reshape_chain_vanishes_at_compile_time_and_matches_tflm():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 5, 5, 2), dtype="int8", **Q)
    p = b.tensor("p", shape=(1, 1, 1, 2), dtype="int8", **Q)
    b.op("AVERAGE_POOL_2D", [x], [p], dict(filter_height=5, filter_width=5, stride_h=5, stride_w=5))
    b.output(_wake_vision_head(b, p))
    m = b.build()
    assert kinds_after_passes(m) == ["AVERAGE_POOL_2D"]
    compare(m, [rand(np.random.default_rng(14), (8, 1, 5, 5, 2), "int8")])


def test_wake_vision_model_head_folds_to_an_alias():
    g = run_passes(read_tflite(MODELS / "wake_vision" / "wv_quality_mcunet-320kb-1mb_vww.tflite"))
    kinds = [op.kind for op in g.ops]
    for k in ("SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"):
        assert k not in kinds
    producers = g.producers()
    # The RESHAPE's output is now a view of the classifier convolution's output.
    assert [producers[g.storage(a)].kind for a in g.aliases] == ["CONV_2D"]


def test_shape_as_model_output_is_written_from_compile_time_bytes():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 3, 4, 2), dtype="int8", **Q)
    s = b.tensor("s", shape=(4,), dtype="int32")
    b.op("SHAPE", [x], [s], dict(out_type="INT32"))
    y = b.tensor("y", shape=(1, 3, 4, 2), dtype="int8", **Q)
    b.op("PAD", [x, b.const("p", np.zeros((4, 2), dtype=np.int32))], [y])
    b.output(s, y)
    out = compare(b.build(), [rand(np.random.default_rng(15), (2, 1, 3, 4, 2), "int8")])
    np.testing.assert_array_equal(out[0], [[1, 3, 4, 2]] * 2)


def test_fold_of_constant_transpose_pad_concat_slice_pack_and_reshape():
    b = ModelBuilder()
    x = b.input("x", shape=(2, 12), dtype="int8", **Q)
    c = b.const("c", np.arange(24, dtype=np.int8).reshape(2, 3, 4), **Q)
    t = b.tensor("t", shape=(4, 2, 3), dtype="int8", **Q)
    b.op("TRANSPOSE", [c, b.const("perm", [2, 0, 1])], [t])
    pd = b.tensor("pd", shape=(4, 2, 4), dtype="int8", **Q)
    b.op("PAD", [t, b.const("pads", np.array([[0, 0], [0, 0], [1, 0]], dtype=np.int32))], [pd])
    sl = b.tensor("sl", shape=(2, 2, 3), dtype="int8", **Q)
    b.op("STRIDED_SLICE", [pd, b.const("b", [3, 0, 1]), b.const("e", [-5, 2, 4]), b.const("s", [-2, 1, 1])],
         [sl])
    pk = b.tensor("pk", shape=(2, 2, 2, 3), dtype="int8", **Q)
    b.op("PACK", [sl, sl], [pk], dict(axis=1))
    r = b.tensor("r", shape=(2, 12), dtype="int8", **Q)
    b.op("RESHAPE", [pk, b.const("rs", [2, 12])], [r])
    y = b.tensor("y", shape=(2, 24), dtype="int8", **Q)
    b.op("CONCATENATION", [x, r], [y], dict(axis=1))
    b.output(y)
    m = b.build()
    assert kinds_after_passes(m) == ["CONCATENATION"]
    compare(m, [rand(np.random.default_rng(16), (4, 2, 12), "int8")])


# ----------------------------------------------------------------------------- rejections

def _slice_model(**opts) -> bytes:
    b = ModelBuilder()
    x = b.input("x", shape=(2, 3), dtype="int8", **Q)
    y = b.tensor("y", shape=(2, 3), dtype="int8", **Q)
    b.op("STRIDED_SLICE", [x, b.const("b", [0, 0]), b.const("e", [2, 3]), b.const("s", [1, 1])], [y], opts)
    b.output(y)
    return b.build()


@pytest.mark.parametrize("opt", ["ellipsis_mask", "new_axis_mask"])
def test_strided_slice_ellipsis_and_new_axis_masks_are_rejected(opt):
    with pytest.raises(UnsupportedError, match=f"STRIDED_SLICE.*{opt}"):
        compile_model(_slice_model(**{opt: 1}))


def test_transpose_with_runtime_permutation_is_rejected():
    b = ModelBuilder()
    x = b.input("x", shape=(2, 3), dtype="int8", **Q)
    perm = b.input("perm", shape=(2,), dtype="int32")
    y = b.tensor("y", shape=(3, 2), dtype="int8", **Q)
    b.op("TRANSPOSE", [x, perm], [y])
    b.output(y)
    with pytest.raises(UnsupportedError, match="TRANSPOSE.*permutation"):
        compile_model(b.build())


def test_concatenation_with_fused_activation_or_eleven_inputs_is_rejected():
    b = ModelBuilder()
    ins = [b.input(f"x{i}", shape=(1, 2), dtype="int8", **Q) for i in range(11)]
    y = b.tensor("y", shape=(11, 2), dtype="int8", **Q)
    b.op("CONCATENATION", ins, [y], dict(axis=0))
    b.output(y)
    with pytest.raises(UnsupportedError, match="CONCATENATION.*11 inputs"):
        compile_model(b.build())
    b = ModelBuilder()
    ins = [b.input(f"x{i}", shape=(1, 2), dtype="int8", **Q) for i in range(2)]
    y = b.tensor("y", shape=(2, 2), dtype="int8", **Q)
    b.op("CONCATENATION", ins, [y], dict(axis=0, fused_activation_function="RELU"))
    b.output(y)
    with pytest.raises(UnsupportedError, match="CONCATENATION.*RELU"):
        compile_model(b.build())


def test_pad_with_runtime_paddings_or_foreign_constant_quantization_is_rejected():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 2, 2, 1), dtype="int8", **Q)
    p = b.input("p", shape=(4, 2), dtype="int32")
    y = b.tensor("y", shape=(1, 4, 4, 1), dtype="int8", **Q)
    b.op("PAD", [x, p], [y])
    b.output(y)
    with pytest.raises(UnsupportedError, match="PAD.*paddings"):
        compile_model(b.build())
    b = ModelBuilder()
    x = b.input("x", shape=(1, 2, 2, 1), dtype="int8", **Q)
    y = b.tensor("y", shape=(1, 4, 4, 1), dtype="int8", **Q)
    pads = b.const("p", np.array([[0, 0], [1, 1], [1, 1], [0, 0]], dtype=np.int32))
    b.op("PADV2", [x, pads, b.const("v", np.array([0], dtype=np.int8), scale=0.5, zero_point=0)], [y])
    b.output(y)
    with pytest.raises(UnsupportedError, match="PADV2.*constant_values"):
        compile_model(b.build())


@pytest.mark.parametrize("in_q", [(0.1, -3), (0.05, 4)])
def test_concatenation_needing_requantization_is_rejected_like_tflm(in_q):
    b = ModelBuilder()
    a = b.input("a", shape=(1, 2), dtype="int8", **Q)
    c = b.input("c", shape=(1, 2), dtype="int8", scale=in_q[0], zero_point=in_q[1])
    y = b.tensor("y", shape=(1, 4), dtype="int8", **Q)
    b.op("CONCATENATION", [a, c], [y], dict(axis=1))
    b.output(y)
    with pytest.raises(UnsupportedError, match="CONCATENATION.*quantization differs"):
        compile_model(b.build())


def test_transpose_of_rank_6_is_rejected_like_tflm():
    b = ModelBuilder()
    x = b.input("x", shape=(1, 2, 1, 2, 1, 2), dtype="int8", **Q)
    y = b.tensor("y", shape=(2, 1, 2, 1, 2, 1), dtype="int8", **Q)
    b.op("TRANSPOSE", [x, b.const("perm", [5, 4, 3, 2, 1, 0])], [y])
    b.output(y)
    with pytest.raises(UnsupportedError, match="TRANSPOSE.*rank 6"):
        compile_model(b.build())
