"""Localising a mismatch to a layer: layer dumps of the generated C vs TFLM's intermediates."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.faults import corrupt_bias, first_step_of
from tests.support.paths import MODELS
from tinyc.compiler import compile_model
from tinyc.validate.localize import captures, compare_layers, dump_on_host, localize_mismatch
from tinyc.validate.runner import layer_mismatch_text

KWS = MODELS / "mlperf_tiny" / "kws_ref_model.tflite"
PATCHED = MODELS / "wake_vision" / "wv_quality_mobilenetv2.tflite"


def _x(compiled, seed=0):
    t = compiled.graph.t(compiled.graph.inputs[0])
    info = np.iinfo(np.dtype(t.dtype))
    return np.random.default_rng(seed).integers(info.min, info.max, t.shape, endpoint=True).astype(t.dtype)


def test_every_layer_of_a_correct_build_matches_tflm():
    c = compile_model(KWS)
    res = localize_mismatch(KWS, c, _x(c))
    assert res["layer"] is None and res["compared_layers"] == len(captures(c)) >= 10


def test_wrong_bias_in_the_generated_c_is_pinned_to_its_layer():
    c = compile_model(KWS)
    step = first_step_of(c, "CONV_2D", 1)  # the second convolution
    res = localize_mismatch(KWS, corrupt_bias(c, step), _x(c))
    op = c.graph.ops[step]
    assert (res["step"], res["layer"], res["op"]) == (step, op.index, "CONV_2D")
    assert res["tflite_tensor"] == c.graph.t(op.outputs[0]).index
    assert 0 < res["differing"] <= res["elements"] and res["max_abs_diff"] > 0
    assert res["first_element"][-1] == 0  # the corrupted bias is channel 0's
    text = layer_mismatch_text(res)
    assert f"#{op.index} CONV_2D" in text and "host debug build" in text


def test_patch_stage_output_is_compared_whole():
    """A patch stage assembles its output tensor patch by patch: corrupting a layer inside the
    stage shows up at the stage's output, named with the stage's layers."""
    c = compile_model(PATCHED)
    stage = [k for k, op in enumerate(c.graph.ops) if op.attrs.get("patch") is not None]
    if not stage:
        pytest.skip("the compiler no longer chooses patches for this model")
    inner = next(k for k in stage if c.graph.ops[k].kind == "CONV_2D")
    res = localize_mismatch(PATCHED, corrupt_bias(c, inner), _x(c))
    assert res["layer"] is not None and res["patch_stage"] is not None
    first = min(c.graph.ops[k].index for k in stage)
    assert res["patch_stage"].startswith(f"layers #{first}..")


def test_fake_reference_with_one_wrong_byte():
    """The comparison itself: TFLM's tensor of one layer altered by one byte -> that layer."""
    c = compile_model(KWS)
    caps = captures(c)
    x = _x(c)
    dumped = dump_on_host(c, x, caps)
    golden, pos = {}, 0
    for cap in caps:
        golden[cap.tflite_index] = np.frombuffer(dumped[pos:pos + cap.nbytes], dtype=cap.dtype).reshape(cap.shape)
        pos += cap.nbytes
    victim = caps[4]
    bad = golden[victim.tflite_index].copy()
    bad.flat[7] = bad.flat[7] ^ 0x01
    golden[victim.tflite_index] = bad
    res = compare_layers(caps, dumped, golden)
    assert res["step"] == victim.step and res["differing"] == 1 and res["max_abs_diff"] == 1
    assert res["compared_layers"] == 5
