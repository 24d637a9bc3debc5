"""ModelBuilder: every supported op yields a model TFLM (and LiteRT-ref) load and run.

Models run out of process through tests.support.reference.run_many (one worker
for all of them), so a malformed flatbuffer can't take pytest down.
Layout-only ops are checked exactly against numpy; arithmetic ops are checked
TFLM vs LiteRT-ref (±1), which catches options TFLM and LiteRT both honour.
"""

from __future__ import annotations

import importlib
from typing import Callable

import numpy as np
import pytest

from tests.support.reference import ReferenceRunError, run_many
from tests.support.tflite_builder import SUPPORTED_OPS, ModelBuilder

N = 3
RNG = np.random.default_rng(1234)

Check = Callable[[list[np.ndarray], list[np.ndarray]], None]
Case = tuple[bytes, list[np.ndarray], Check | None]


def _i8(shape: tuple[int, ...]) -> np.ndarray:
    return RNG.integers(-128, 128, size=shape, dtype=np.int8)


def _batch(shape: tuple[int, ...], dtype: str = "int8") -> np.ndarray:
    if dtype == "float32":
        return RNG.uniform(-3, 3, size=(N, *shape)).astype(np.float32)
    return _i8((N, *shape))


def _exact(fn: Callable[..., np.ndarray]) -> Check:
    def check(ins: list[np.ndarray], outs: list[np.ndarray]) -> None:
        want = np.stack([fn(*[x[s] for x in ins]) for s in range(N)])
        np.testing.assert_array_equal(outs[0], want)
    return check


def _conv(bias: bool = True, padding: str = "SAME", stride: int = 1) -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3), "int8", 0.05, -3)
    ws = [0.01, 0.02, 0.015, 0.03]
    w = b.const("w", _i8((4, 3, 3, 3)), scale=ws, zero_point=0, quantized_dimension=0)
    bb = b.const("b", RNG.integers(-500, 500, 4).astype(np.int32),
                 scale=[0.05 * s for s in ws], zero_point=0) if bias else None
    oh = 8 if padding == "SAME" else 6
    oh = (oh + stride - 1) // stride
    y = b.tensor("y", (1, oh, oh, 4), "int8", 0.1, 2)
    b.op("CONV_2D", [x, w, bb], [y], dict(padding=padding, stride_w=stride, stride_h=stride,
                                         fused_activation_function="RELU"))
    b.output(y)
    return b.build(), [_batch((1, 8, 8, 3))], None


def _depthwise() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3), "int8", 0.05, 1)
    ws = list(np.linspace(0.01, 0.03, 6))
    w = b.const("w", _i8((1, 3, 3, 6)), scale=ws, zero_point=0, quantized_dimension=3)
    bb = b.const("b", RNG.integers(-500, 500, 6).astype(np.int32),
                 scale=[0.05 * s for s in ws], zero_point=0)
    y = b.tensor("y", (1, 8, 8, 6), "int8", 0.08, -5)
    b.op("DEPTHWISE_CONV_2D", [x, w, bb], [y], dict(depth_multiplier=2, padding="SAME",
                                                   fused_activation_function="RELU6"))
    b.output(y)
    return b.build(), [_batch((1, 8, 8, 3))], None


def _fully_connected() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 16), "int8", 0.05, 0)
    w = b.const("w", _i8((5, 16)), scale=0.02, zero_point=0)
    bb = b.const("b", RNG.integers(-500, 500, 5).astype(np.int32), scale=0.001, zero_point=0)
    y = b.tensor("y", (1, 5), "int8", 0.2, -10)
    b.op("FULLY_CONNECTED", [x, w, bb], [y], dict(fused_activation_function="NONE",
                                                 keep_num_dims=False))
    b.output(y)
    return b.build(), [_batch((1, 16))], None


def _binary(op: str) -> Case:
    b = ModelBuilder()
    a = b.input("a", (1, 4, 4, 3), "int8", 0.05, -3)
    c = b.input("c", (1, 4, 4, 3), "int8", 0.03, 4)
    y = b.tensor("y", (1, 4, 4, 3), "int8", 0.1 if op != "MUL" else 0.01, 1)
    b.op(op, [a, c], [y], dict(fused_activation_function="RELU6" if op == "ADD" else "NONE"))
    b.output(y)
    return b.build(), [_batch((1, 4, 4, 3)), _batch((1, 4, 4, 3))], None


def _pool(op: str) -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3), "int8", 0.05, -3)
    y = b.tensor("y", (1, 4, 4, 3), "int8", 0.05, -3)
    b.op(op, [x], [y], dict(padding="VALID", stride_w=2, stride_h=2, filter_width=2,
                            filter_height=2))
    b.output(y)
    check = None
    if op == "MAX_POOL_2D":
        check = _exact(lambda v: v.reshape(1, 4, 2, 4, 2, 3).max(axis=(2, 4)))
    return b.build(), [_batch((1, 8, 8, 3))], check


def _mean() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 8), "int8", 0.05, -3)
    ax = b.const("axis", np.array([1, 2], np.int32))
    y = b.tensor("y", (1, 1, 1, 8), "int8", 0.05, -3)
    b.op("MEAN", [x, ax], [y], dict(keep_dims=True))
    b.output(y)
    return b.build(), [_batch((1, 4, 4, 8))], None


def _pad() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 3), "int8", 0.05, -3)
    p = b.const("paddings", np.array([[0, 0], [1, 1], [2, 0], [0, 0]], np.int32))
    y = b.tensor("y", (1, 6, 6, 3), "int8", 0.05, -3)
    b.op("PAD", [x, p], [y])
    b.output(y)
    pw = [(0, 0), (1, 1), (2, 0), (0, 0)]
    return b.build(), [_batch((1, 4, 4, 3))], _exact(lambda v: np.pad(v, pw, constant_values=-3))


def _reshape(with_shape_input: bool) -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2), "int8", 0.05, -3)
    ins = [x]
    if with_shape_input:
        ins.append(b.const("shape", np.array([1, 32], np.int32)))
    y = b.tensor("y", (1, 32), "int8", 0.05, -3)
    b.op("RESHAPE", ins, [y])
    b.output(y)
    return b.build(), [_batch((1, 4, 4, 2))], _exact(lambda v: v.reshape(1, 32))


def _softmax() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 10), "int8", 0.1, 0)
    y = b.tensor("y", (1, 10), "int8", 1 / 256, -128)
    b.op("SOFTMAX", [x], [y], dict(beta=1.0))
    b.output(y)
    return b.build(), [_batch((1, 10))], None


def _concat() -> Case:
    b = ModelBuilder()
    a = b.input("a", (1, 4, 4, 2), "int8", 0.05, -3)
    c = b.input("c", (1, 4, 4, 3), "int8", 0.05, -3)
    y = b.tensor("y", (1, 4, 4, 5), "int8", 0.05, -3)
    b.op("CONCATENATION", [a, c], [y], dict(axis=3))
    b.output(y)
    return (b.build(), [_batch((1, 4, 4, 2)), _batch((1, 4, 4, 3))],
            _exact(lambda u, v: np.concatenate([u, v], axis=3)))


def _quantize() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 8), "float32")
    y = b.tensor("y", (1, 8), "int8", 0.05, 3)
    b.op("QUANTIZE", [x], [y])
    b.output(y)

    def check(ins: list[np.ndarray], outs: list[np.ndarray]) -> None:
        want = np.clip(np.round(ins[0] / np.float32(0.05)) + 3, -128, 127)
        assert np.abs(outs[0].astype(int) - want).max() <= 1
    return b.build(), [_batch((1, 8), "float32")], check


def _dequantize() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 8), "int8", 0.05, 3)
    y = b.tensor("y", (1, 8), "float32")
    b.op("DEQUANTIZE", [x], [y])
    b.output(y)

    def check(ins: list[np.ndarray], outs: list[np.ndarray]) -> None:
        np.testing.assert_allclose(outs[0], (ins[0].astype(np.float32) - 3) * 0.05, rtol=1e-6)
    return b.build(), [_batch((1, 8))], check


def _unary(op: str) -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 16), "int8", 0.05, -3)
    out_q = (1 / 256, -128) if op == "LOGISTIC" else (0.05, -3)
    y = b.tensor("y", (1, 16), "int8", *out_q)
    b.op(op, [x], [y])
    b.output(y)
    check = None
    if op == "RELU":
        check = _exact(lambda v: np.maximum(v, -3))
    elif op == "RELU6":  # 6.0 / 0.05 = 120 steps above the zero point
        check = _exact(lambda v: np.clip(v, -3, 117))
    return b.build(), [_batch((1, 16))], check


def _transpose() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 2, 3, 4), "int8", 0.05, 0)
    perm = b.const("perm", np.array([0, 3, 1, 2], np.int32))
    y = b.tensor("y", (1, 4, 2, 3), "int8", 0.05, 0)
    b.op("TRANSPOSE", [x, perm], [y])
    b.output(y)
    return b.build(), [_batch((1, 2, 3, 4))], _exact(lambda v: v.transpose(0, 3, 1, 2))


def _strided_slice() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 3), "int8", 0.05, 0)
    begin = b.const("begin", np.array([0, 1, 0, 0], np.int32))
    end = b.const("end", np.array([1, 7, 8, 3], np.int32))
    strides = b.const("strides", np.array([1, 2, 1, 1], np.int32))
    y = b.tensor("y", (1, 3, 8, 3), "int8", 0.05, 0)
    b.op("STRIDED_SLICE", [x, begin, end, strides], [y], dict(begin_mask=0, end_mask=0))
    b.output(y)
    return b.build(), [_batch((1, 8, 8, 3))], _exact(lambda v: v[:, 1:7:2])


def _resize_nn() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 3), "int8", 0.05, 0)
    size = b.const("size", np.array([8, 8], np.int32))
    y = b.tensor("y", (1, 8, 8, 3), "int8", 0.05, 0)
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, size], [y], dict(align_corners=False,
                                                         half_pixel_centers=False))
    b.output(y)
    return (b.build(), [_batch((1, 4, 4, 3))],
            _exact(lambda v: v.repeat(2, axis=1).repeat(2, axis=2)))


def _pack() -> Case:
    b = ModelBuilder()
    a = b.input("a", (1, 4), "int8", 0.05, 0)
    c = b.input("c", (1, 4), "int8", 0.05, 0)
    y = b.tensor("y", (2, 1, 4), "int8", 0.05, 0)
    b.op("PACK", [a, c], [y], dict(axis=0))
    b.output(y)
    return b.build(), [_batch((1, 4)), _batch((1, 4))], _exact(lambda u, v: np.stack([u, v]))


def _shape() -> Case:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 5, 3), "int8", 0.05, 0)
    y = b.tensor("y", (4,), "int32")
    b.op("SHAPE", [x], [y], dict(out_type="INT32"))
    b.output(y)
    return b.build(), [_batch((1, 4, 5, 3))], _exact(lambda v: np.array([1, 4, 5, 3], np.int32))


CASES: dict[str, Callable[[], Case]] = {
    "CONV_2D": _conv,
    "CONV_2D_nobias_valid_s2": lambda: _conv(bias=False, padding="VALID", stride=2),
    "DEPTHWISE_CONV_2D": _depthwise,
    "FULLY_CONNECTED": _fully_connected,
    "ADD": lambda: _binary("ADD"),
    "SUB": lambda: _binary("SUB"),
    "MUL": lambda: _binary("MUL"),
    "AVERAGE_POOL_2D": lambda: _pool("AVERAGE_POOL_2D"),
    "MAX_POOL_2D": lambda: _pool("MAX_POOL_2D"),
    "MEAN": _mean,
    "PAD": _pad,
    "RESHAPE": lambda: _reshape(False),
    "RESHAPE_shape_input": lambda: _reshape(True),
    "SOFTMAX": _softmax,
    "CONCATENATION": _concat,
    "QUANTIZE": _quantize,
    "DEQUANTIZE": _dequantize,
    "HARD_SWISH": lambda: _unary("HARD_SWISH"),
    "LOGISTIC": lambda: _unary("LOGISTIC"),
    "RELU": lambda: _unary("RELU"),
    "RELU6": lambda: _unary("RELU6"),
    "TRANSPOSE": _transpose,
    "STRIDED_SLICE": _strided_slice,
    "RESIZE_NEAREST_NEIGHBOR": _resize_nn,
    "PACK": _pack,
    "SHAPE": _shape,
}


# LiteRT's int8 CONV_2D insists on a bias tensor ("Tensor at index 2 was optional but was
# expected"); TFLM accepts a missing one, which is what this case checks.
LITERT_REJECTS = {"CONV_2D_nobias_valid_s2"}


@pytest.fixture(scope="module")
def runs() -> dict[str, tuple[Case, object, object]]:
    built = {name: make() for name, make in CASES.items()}
    jobs = [(m, ins) for m, ins, _ in built.values()]
    tflm = run_many("tflm", jobs)
    litert = run_many("litert", jobs)
    return {name: (built[name], t, l) for name, t, l in zip(built, tflm, litert)}


@pytest.mark.parametrize("name", list(CASES))
def test_op_runs_in_tflm_and_litert(name: str, runs: dict) -> None:
    (model, ins, check), tflm, litert = runs[name]
    assert not isinstance(tflm, ReferenceRunError), str(tflm)
    if name in LITERT_REJECTS:
        assert isinstance(litert, ReferenceRunError)
        litert = None
    else:
        assert not isinstance(litert, ReferenceRunError), str(litert)
        assert len(litert) == 1 and tflm[0].shape == litert[0].shape
    assert len(tflm) == 1 and tflm[0].shape[0] == N
    if check is not None:
        check(ins, tflm)
    if litert is None:
        return
    diff = np.abs(tflm[0].astype(np.float64) - litert[0].astype(np.float64)).max()
    assert diff <= (1e-5 if tflm[0].dtype.kind == "f" else 1), f"TFLM vs LiteRT differ by {diff}"


def test_every_listed_op_has_a_case() -> None:
    required = {"CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED", "ADD", "MUL", "SUB",
                "AVERAGE_POOL_2D", "MAX_POOL_2D", "MEAN", "PAD", "RESHAPE", "SOFTMAX",
                "CONCATENATION", "QUANTIZE", "DEQUANTIZE", "HARD_SWISH", "LOGISTIC", "RELU",
                "RELU6", "TRANSPOSE", "STRIDED_SLICE", "RESIZE_NEAREST_NEIGHBOR", "PACK", "SHAPE"}
    assert required <= set(CASES) and required <= set(SUPPORTED_OPS)


def _parse(model: bytes):  # type: ignore[no-untyped-def]
    return importlib.import_module("tflite.Model").Model.GetRootAs(model, 0)


def test_flatbuffer_header_fields() -> None:
    model, _, _ = _conv(bias=False)
    m = _parse(model)
    assert m.Version() == 3
    assert m.Description()
    assert m.Buffers(0).DataLength() == 0
    sg = m.Subgraphs(0)
    op = sg.Operators(0)
    assert op.InputsAsNumpy().tolist()[2] == -1  # missing bias
    code = m.OperatorCodes(op.OpcodeIndex())
    assert code.BuiltinCode() == code.DeprecatedBuiltinCode() == 3  # CONV_2D
    assert code.Version() == 1
    w = sg.Tensors(int(op.Inputs(1)))
    q = w.Quantization()
    assert q.ScaleLength() == 4 and q.ZeroPointLength() == 4 and q.QuantizedDimension() == 0
    assert m.Buffers(w.Buffer()).DataLength() == 4 * 3 * 3 * 3


def test_deprecated_code_is_clamped_for_large_opcodes() -> None:
    # Exercise the code path with a fake high opcode by patching the enum lookup.
    from tests.support import tflite_builder as tb

    b = ModelBuilder()
    x = b.input("x", (1, 4), "int8", 0.1, 0)
    y = b.tensor("y", (1, 4), "int8", 0.1, 0)
    b.op("RELU", [x], [y])
    b.output(y)
    orig = tb._BuiltinOperator.RELU
    try:
        tb._BuiltinOperator.RELU = 200
        code = _parse(b.build()).OperatorCodes(0)
    finally:
        tb._BuiltinOperator.RELU = orig
    assert code.BuiltinCode() == 200 and code.DeprecatedBuiltinCode() == 127


def test_errors() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4), "int8", 0.1, 0)
    y = b.tensor("y", (1, 4), "int8", 0.1, 0)
    with pytest.raises(ValueError):
        b.op("NOT_AN_OP", [x], [y])
    with pytest.raises(ValueError):
        b.op("SOFTMAX", [x], [y], dict(betta=1.0))
    with pytest.raises(ValueError):
        b.op("CONV_2D", [x, None, None], [y], dict(padding="HALF"))
    with pytest.raises(ValueError):
        b.op("RELU", [x], [y], dict(alpha=1.0))
    with pytest.raises(ValueError):
        b.tensor("bad", (1, 4), "complex64")
    with pytest.raises(ValueError):  # 3 scales for a dim of size 4
        b.const("w", np.zeros((4, 2), np.int8), scale=[0.1, 0.2, 0.3])
    with pytest.raises(ValueError):
        b.const("w", np.array([300]), dtype="int8")
