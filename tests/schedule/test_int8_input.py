"""--input-type int8: a float32 input the model quantizes first is taken as int8.

The program is fed int8 data; TFLM runs the unchanged model on s * (q - z), which its own
QUANTIZE maps back to q, so every output must be byte-identical. The issue-4 figures for the two
hanlab models (float32 inputs larger than the targets themselves) are met this way with the
input kept whole in the arena and counted.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from tests.schedule.test_patch_models import Net, _check, _stress_model
from tests.support.paths import MODELS
from tests.support.tflite_builder import ModelBuilder
from tinyc.compiler import Options, compile_model
from tinyc.errors import BadInput
from tinyc.report.report import build_report
from tinyc.target.boards import get_board

INT8 = dict(input_type="int8")


def _float_model() -> bytes:
    n = Net((21, 17, 3), float_input=True)
    n.conv(8, 3, s=2, act="RELU6")
    n.conv(8, 3, depthwise=True)
    n.residual()
    n.conv(16, 1)
    return n.head()


def test_the_quantize_goes_and_the_input_takes_its_int8_quantization() -> None:
    m = _float_model()
    model, int8 = compile_model(m, Options(patch="off")), compile_model(m, Options(patch="off", **INT8))
    assert model.graph.t(model.graph.inputs[0]).dtype == "float32"
    t = int8.graph.t(int8.graph.inputs[0])
    assert (t.dtype, t.quant.s, t.quant.zp) == ("int8", pytest.approx(0.05), -3)
    assert "QUANTIZE" not in [op.kind for op in int8.graph.ops]
    assert int8.source_graph.t(int8.source_graph.inputs[0]).dtype == "float32"  # the model as read
    # the float32 input (4 B per element) was live next to its int8 copy at the QUANTIZE step
    assert int8.plan.arena_bytes < model.plan.arena_bytes
    header = int8.files()["model.h"]
    assert "#define TINYC_INPUT0_SCALE 5.000000075e-02f" in header
    assert "#define TINYC_INPUT0_ZERO_POINT (-3)" in header


@pytest.mark.parametrize("patch", ["off", "auto", "2x2@2", "3x2@5", "2x3@6"])
def test_int8_input_is_bit_exact_with_tflm_on_the_float_model(patch: str) -> None:
    _check(_float_model(), patch, options=INT8)


@pytest.mark.parametrize("patch", ["auto", "2x2@5"])
def test_int8_input_streamed_is_bit_exact(patch: str) -> None:
    """The int8 input read box by box through the buffer reader: the same bytes."""
    _check(_float_model(), patch, options=dict(INT8, patch_input="stream"))


def test_tinyc_run_takes_the_int8_input(tmp_path, capsys) -> None:
    from tests.support.reference import run_tflm
    from tinyc.cli import main

    m = tmp_path / "f.tflite"
    m.write_bytes(_float_model())
    c = compile_model(m, Options(**INT8))
    x = np.random.default_rng(4).integers(-128, 128, size=(3, *c.graph.t(c.graph.inputs[0]).shape)).astype(np.int8)
    np.save(tmp_path / "x.npy", x)
    assert main(["run", str(m), "--input-type", "int8", "--input", str(tmp_path / "x.npy"),
                 "--output", str(tmp_path / "y.npy")]) == 0
    np.testing.assert_array_equal(np.load(tmp_path / "y.npy"), run_tflm(str(m), c.reference_inputs([x]))[0])
    # without the flag the program takes float32, and says so
    assert main(["run", str(m), "--input", str(tmp_path / "x.npy"), "--output", str(tmp_path / "z.npy")]) == 2
    assert "the model input is float32" in capsys.readouterr().err


def test_an_int8_model_is_left_as_it_is() -> None:
    m = _stress_model()
    a, b = compile_model(m, Options()), compile_model(m, Options(**INT8))
    assert a.files() == b.files()


def test_a_float_input_that_is_not_just_quantized_is_refused() -> None:
    b = ModelBuilder()
    f = b.input("f", shape=(1, 4, 4, 2), dtype="float32")
    q1 = b.tensor("q1", shape=(1, 4, 4, 2), dtype="int8", scale=0.1, zero_point=0)
    q2 = b.tensor("q2", shape=(1, 4, 4, 2), dtype="int8", scale=0.2, zero_point=0)
    y = b.tensor("y", shape=(1, 4, 4, 2), dtype="int8", scale=0.2, zero_point=0)
    b.op("QUANTIZE", [f], [q1])
    b.op("QUANTIZE", [f], [q2])
    b.op("ADD", [q1, q2], [y], dict(fused_activation_function="NONE"))
    b.output(y)
    with pytest.raises(BadInput, match=r"--input-type int8: model input 0 \(f, float32\[1, 4, 4, 2\]\).*"
                                       r"feeds QUANTIZE \(op #0\), QUANTIZE \(op #1\).*--input-type model"):
        compile_model(b.build(), Options(**INT8))
    with pytest.raises(BadInput, match="--input-type 'uint8': expected one of model, int8"):
        compile_model(b.build(), Options(input_type="uint8"))


def test_localize_feeds_tflm_the_float_input(tmp_path) -> None:
    """The layer-by-layer comparison must run TFLM on the float the int8 data stands for."""
    from tinyc.validate.localize import localize_mismatch

    m = tmp_path / "f.tflite"
    m.write_bytes(_float_model())
    c = compile_model(m, Options(**INT8))
    x = np.random.default_rng(3).integers(-128, 128, size=c.graph.t(c.graph.inputs[0]).shape).astype(np.int8)
    res = localize_mismatch(m, c, x)
    assert res["layer"] is None and res["compared_layers"] > 3, res


def test_report_says_what_int8_input_does_and_advises_it(capsys: pytest.CaptureFixture[str]) -> None:
    from tinyc.cli import main

    c = compile_model(MODELS / "hanlab/mcunetv2_large.tflite", Options())
    rep = build_report(c, get_board("stm32f746"))
    assert rep.input_type == "model" and "--input-type int8" in rep.input_note
    assert any("--input-type int8" in a for a in rep.advice), rep.advice  # it does not fit as it is
    assert main(["report", str(MODELS / "hanlab/vww.tflite"), "--input-type", "int8", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["input_type"] == "int8" and doc["io_bytes"] == 80 * 80 * 3 + 2 * 4


@pytest.mark.slow
@pytest.mark.parametrize("model,limit", [("hanlab/mcunetv2_large.tflite", 400_000),
                                         ("hanlab/vww.tflite", 56_000)])
def test_issue4_targets_with_the_int8_input_whole_and_bit_exact(model: str, limit: int) -> None:
    """Peak SRAM = arena (the whole int8 input, the stage output, patch intermediates, the rest
    of the model) + static data + stack, on the F746."""
    c = compile_model(MODELS / model, Options(**INT8))
    doc = build_report(c, get_board("stm32f746")).to_json()
    t = c.graph.t(c.graph.inputs[0])
    assert doc["patch"]["input"] == "whole" and doc["streamed_input_bytes"] == 0
    assert doc["io_bytes"] >= t.nbytes == t.size  # the int8 input is in the arena, one byte per element
    assert doc["peak_sram_bytes"] <= limit, doc["patch"]
    assert doc["patch"]["grid"] and doc["patch"]["mac_overhead"] <= 0.10
    _check(MODELS / model, "auto", n=2, options=INT8)


@pytest.mark.board
def test_int8_input_validates_on_the_emulated_f746(capsys: pytest.CaptureFixture[str]) -> None:
    """The firmware takes int8 inputs; validate feeds TFLM their float values."""
    from tinyc.cli import main

    rc = main(["validate", str(MODELS / "hanlab/vww.tflite"), "--emulate", "--data", "random", "-n", "3",
               "--input-type", "int8", "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["bit_exact"] is True and doc["inputs"] == 3
    assert doc["arena_bytes"] <= 56_000
