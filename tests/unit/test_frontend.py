"""tinyc.frontend: reading .tflite files into the IR and rejecting what tinyc cannot compile.

Every bad input must become a `BadInput` (UnsupportedError is a subclass) with a one-line
message that names the problem, and the CLI must turn it into exit code 2 with a single
`tinyc: error:` line and no traceback.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import MODELS, REPO, all_models
from tests.support.tflite_builder import SUPPORTED_OPS, ModelBuilder, _OpSpec
from tinyc.errors import BadInput, UnsupportedError
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.frontend.validate import validate
from tinyc.ir import Graph

PERSON = MODELS / "tflm" / "person_detect.tflite"
needs_person = pytest.mark.skipif(not PERSON.is_file(), reason=f"{PERSON} not available")


def _one_line(e: BaseException) -> str:
    msg = str(e)
    assert msg and "\n" not in msg, f"error message is not one line: {msg!r}"
    return msg


def _conv_model(dtype: str = "int8", w_zero_point: int = 0) -> bytes:
    b = ModelBuilder()
    if dtype == "float32":
        x = b.input("x", (1, 4, 4, 2), "float32")
        w = b.const("w", np.ones((3, 1, 1, 2), np.float32))
        bias = b.const("b", np.zeros(3, np.float32))
        y = b.tensor("y", (1, 4, 4, 3), "float32")
    else:
        x = b.input("x", (1, 4, 4, 2), dtype, 0.05, 0)
        w = b.const("w", np.ones((3, 1, 1, 2), np.int8), scale=0.02, zero_point=w_zero_point)
        bias = b.const("b", np.zeros(3, np.int32), scale=0.001, zero_point=0)
        y = b.tensor("y", (1, 4, 4, 3), dtype, 0.1, 0)
    b.op("CONV_2D", [x, w, bias], [y], dict(padding="VALID"))
    b.output(y)
    return b.build()


def _unary_model(monkeypatch: pytest.MonkeyPatch, kind: str, n_before: int = 0) -> bytes:
    """A model whose last op is `kind` (not known to the builder: added for this test only)."""
    monkeypatch.setitem(SUPPORTED_OPS, kind, _OpSpec(None))
    b = ModelBuilder()
    t = b.input("x", (1, 8), "int8", 0.1, 0)
    for i in range(n_before):
        w = b.const(f"w{i}", np.ones((1, 8), np.int8), scale=0.1, zero_point=0)
        u = b.tensor(f"a{i}", (1, 8), "int8", 0.1, 0)
        b.op("ADD", [t, w], [u])
        t = u
    y = b.tensor("y", (1, 8), "int8", 0.1, 0)
    b.op(kind, [t], [y])
    b.output(y)
    return b.build()


def _load(data: bytes, name: str = "m") -> Graph:
    g = read_tflite(data=data, name=name)
    validate(g)
    return g


# ------------------------------------------------------------------ malformed files


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_are_bad_input(seed: int) -> None:
    data = np.random.default_rng(seed).integers(0, 256, 4096, dtype=np.uint8).tobytes()
    with pytest.raises(BadInput) as ei:
        read_tflite(data=data, name="noise")
    assert "not a TFLite model" in _one_line(ei.value)


@pytest.mark.parametrize("seed", range(8))
def test_random_bytes_with_tflite_identifier_are_bad_input(seed: int) -> None:
    """Garbage behind a valid 'TFL3' identifier reaches the flatbuffer parser and must still be
    reported as a corrupt model, not as whatever the flatbuffer library raised."""
    raw = bytearray(np.random.default_rng(100 + seed).integers(0, 256, 4096, dtype=np.uint8).tobytes())
    raw[4:8] = b"TFL3"
    with pytest.raises(BadInput) as ei:
        read_tflite(data=bytes(raw), name="noise")
    _one_line(ei.value)


@needs_person
@pytest.mark.parametrize("fraction", [0.5, 0.1])
def test_truncated_model_is_bad_input(fraction: float) -> None:
    data = PERSON.read_bytes()
    with pytest.raises(BadInput) as ei:
        read_tflite(data=data[: int(len(data) * fraction)], name="person_detect")
    msg = _one_line(ei.value)
    assert "truncated" in msg or "corrupt" in msg


def test_empty_file_is_bad_input(tmp_path: Path) -> None:
    p = tmp_path / "empty.tflite"
    p.write_bytes(b"")
    with pytest.raises(BadInput) as ei:
        read_tflite(p)
    msg = _one_line(ei.value)
    assert "not a TFLite model" in msg and "0 bytes" in msg


def test_missing_file_is_bad_input(tmp_path: Path) -> None:
    with pytest.raises(BadInput) as ei:
        read_tflite(tmp_path / "nope.tflite")
    assert "no such model file" in _one_line(ei.value)


# ------------------------------------------------------------------ unsupported models


def test_float_model_is_rejected() -> None:
    g = read_tflite(data=_conv_model("float32"), name="float_conv")
    with pytest.raises(BadInput) as ei:
        validate(g)
    msg = _one_line(ei.value)
    assert "float32" in msg and "CONV_2D" in msg and "#0" in msg
    assert "int8" in msg  # tells the user what it needs


@pytest.mark.parametrize("kind", ["SQRT", "CUSTOM"])
def test_unsupported_op_names_op_and_index(monkeypatch: pytest.MonkeyPatch, kind: str) -> None:
    g = read_tflite(data=_unary_model(monkeypatch, kind, n_before=2), name="unsupported")
    assert g.ops[2].kind.startswith(kind)
    with pytest.raises(UnsupportedError) as ei:
        validate(g)
    msg = _one_line(ei.value)
    assert kind in msg and "#2" in msg and "not supported" in msg


def test_several_unsupported_ops_still_one_line(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setitem(SUPPORTED_OPS, "SQRT", _OpSpec(None))
    monkeypatch.setitem(SUPPORTED_OPS, "RSQRT", _OpSpec(None))
    b = ModelBuilder()
    x = b.input("x", (1, 8), "int8", 0.1, 0)
    y = b.tensor("y", (1, 8), "int8", 0.1, 0)
    z = b.tensor("z", (1, 8), "int8", 0.1, 0)
    b.op("SQRT", [x], [y])
    b.op("RSQRT", [y], [z])
    b.output(z)
    with pytest.raises(UnsupportedError) as ei:
        _load(b.build())
    msg = _one_line(ei.value)
    assert msg.startswith("op #0 SQRT") and "RSQRT" in msg


def test_op_constraint_error_names_op_index_and_tensors() -> None:
    """A registered op whose attributes it cannot handle: the op module's check() explains why."""
    with pytest.raises(UnsupportedError) as ei:
        _load(_conv_model(w_zero_point=3))
    msg = _one_line(ei.value)
    assert "CONV_2D" in msg and "#0" in msg and "zero point" in msg


def test_int16_activations_are_unsupported() -> None:
    with pytest.raises(UnsupportedError) as ei:
        _load(_conv_model("int16"))
    msg = _one_line(ei.value)
    assert "CONV_2D" in msg and "int16" in msg


def test_small_int8_model_loads() -> None:
    g = _load(_conv_model(), name="conv-1.x")
    g.lint()
    assert g.name == "conv_1_x"  # a C-safe identifier
    assert [op.kind for op in g.ops] == ["CONV_2D"]
    assert g.ops[0].attrs["padding"] == "VALID"
    w = g.t(g.ops[0].inputs[1])
    assert w.is_const and w.data.dtype == np.int8 and not w.data.flags.writeable
    x = g.t(g.inputs[0])
    assert not x.is_const and x.quant is not None and x.quant.s == pytest.approx(0.05)


# ------------------------------------------------------------------ real models


@needs_person
def test_person_detect_biases_with_quantized_dimension_3_load() -> None:
    """person_detect.tflite stores quantized_dimension 3 on its rank-1 per-channel biases;
    TFLM ignores it and so must we."""
    g = read_tflite(PERSON)
    g.lint()
    biases = [t for t in g.tensors.values() if t.is_const and t.dtype == "int32" and len(t.shape) == 1
              and t.quant is not None and t.quant.per_channel]
    assert biases, "expected per-channel rank-1 biases"
    assert all(t.quant.axis == 0 and len(t.quant.scale) == t.shape[0] for t in biases)
    assert len(g.ops) == 31 and g.ops[-1].kind == "SOFTMAX"


@pytest.mark.parametrize("path", all_models(), ids=lambda p: f"{p.parent.name}/{p.stem}")
def test_every_shared_model_loads_and_lints(path: Path) -> None:
    g = read_tflite(path)
    g.lint()
    assert g.ops and g.inputs and g.outputs
    assert all(op.index == i for i, op in enumerate(g.ops))


# ------------------------------------------------------------------ through the CLI


def _cli_compile(model: Path, out: Path) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-m", "tinyc.cli", "compile", str(model), "--board", "host",
                           "-o", str(out)], capture_output=True, text=True, cwd=REPO, timeout=60)


def _assert_one_error_line(r: subprocess.CompletedProcess[str]) -> str:
    assert r.returncode == 2, r.stderr
    assert "Traceback" not in r.stderr
    lines = r.stderr.splitlines()
    assert len(lines) == 1 and lines[0].startswith("tinyc: error:"), r.stderr
    return lines[0]


def test_cli_corrupt_model_exits_2_with_one_line(tmp_path: Path) -> None:
    p = tmp_path / "noise.tflite"
    p.write_bytes(np.random.default_rng(7).integers(0, 256, 1000, dtype=np.uint8).tobytes())
    line = _assert_one_error_line(_cli_compile(p, tmp_path / "out"))
    assert "not a TFLite model" in line


def test_cli_unsupported_op_exits_2_with_one_line(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    p = tmp_path / "sqrt.tflite"
    p.write_bytes(_unary_model(monkeypatch, "SQRT", n_before=1))
    line = _assert_one_error_line(_cli_compile(p, tmp_path / "out"))
    assert "SQRT" in line and "#1" in line
