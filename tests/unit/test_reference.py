"""Subprocess reference runners: shapes, golden results, arena sizes, failure modes."""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.shared_data import shared_dir
import pytest

from tinyc.validate import reference as ref
from tests.support.reference import (ReferenceCrashed, ReferenceFailed, ReferenceTimeout,
                                     run_litert_ref, run_many, run_tflm, tflm_arena_bytes,
                                     tflm_arena_stats)
from tests.support.tflite_builder import ModelBuilder

MODELS = shared_dir() / "models"
DATA = shared_dir() / "data"
needs_models = pytest.mark.skipif(not MODELS.is_dir(), reason="shared models not present")


def _relu_model(scale_out: float = 0.1) -> bytes:
    b = ModelBuilder()
    x = b.input("x", (1, 4), "int8", 0.1, 0)
    y = b.tensor("y", (1, 4), "int8", scale_out, 0)
    b.op("RELU", [x], [y])
    b.output(y)
    return b.build()


def _bad_softmax_model() -> bytes:
    """TFLM's int8 SOFTMAX requires output (1/256, -128): Prepare fails -> Python error."""
    b = ModelBuilder()
    x = b.input("x", (1, 4), "int8", 0.1, 0)
    y = b.tensor("y", (1, 4), "int8", 0.1, 0)
    b.op("SOFTMAX", [x], [y])
    b.output(y)
    return b.build()


@needs_models
@pytest.mark.parametrize("path,head", [
    ("tflm/person_detect.tflite", 55_296),
    ("mlperf_tiny/vww_96_int8.tflite", 73_728),
    ("mlperf_tiny/kws_ref_model.tflite", 16_000),
    ("mlperf_tiny/pretrainedResnet_quant.tflite", 49_152),
    ("mlperf_tiny/ad01_int8.tflite", 768),
])
def test_tflm_arena_bytes_known_values(path: str, head: int) -> None:
    assert tflm_arena_bytes(MODELS / path) == head


@needs_models
def test_arena_stats_independent_of_arena_size() -> None:
    model = (MODELS / "mlperf_tiny/kws_ref_model.tflite").read_bytes()
    a = tflm_arena_stats(model)
    b = tflm_arena_stats(model, arena_size=64 << 10)
    assert a == b and a["total"] == a["head"] + a["tail"]


def test_batch_shapes_and_values() -> None:
    x = np.arange(-8, 16, dtype=np.int8).reshape(6, 1, 4)
    for run in (run_tflm, run_litert_ref):
        (y,) = run(_relu_model(), [x])
        assert y.shape == (6, 1, 4) and y.dtype == np.int8
        np.testing.assert_array_equal(y, np.maximum(x, 0))


def test_empty_batch_and_validation() -> None:
    m = _relu_model()
    (y,) = run_tflm(m, [np.zeros((0, 1, 4), np.int8)])
    assert y.shape == (0, 1, 4)
    with pytest.raises(ValueError):
        run_tflm(m, [np.zeros((2, 4), np.int8)])  # missing the model's own batch-1 axis
    with pytest.raises(ValueError):
        run_tflm(m, [np.full((1, 1, 4), 300)])  # not representable as int8
    with pytest.raises(ValueError):
        run_tflm(m, [])
    (y,) = run_tflm(m, [np.array([[[1, -2, 3, -4]]])])  # int64 values cast losslessly
    np.testing.assert_array_equal(y, [[[1, 0, 3, 0]]])


@needs_models
def test_kws_golden_class_and_tflm_matches_litert() -> None:
    model = MODELS / "mlperf_tiny/kws_ref_model.tflite"
    x = np.load(DATA / "mlperf_tiny/kws01/kws_inputs_i8.npy").reshape(1, 1, 49, 10, 1)
    x = np.concatenate([x, x])  # same sample twice: no state leaks between samples
    (t,) = run_tflm(model, [x])
    (lt,) = run_litert_ref(model, [x])
    assert t.shape == (2, 1, 12)
    assert int(t[0, 0].argmax()) == 5
    np.testing.assert_array_equal(t[0], t[1])
    assert np.abs(t.astype(int) - lt).max() <= 1


@needs_models
def test_litert_refuses_person_detect_qdim() -> None:
    x = np.zeros((1, 1, 96, 96, 1), np.int8)
    with pytest.raises(ReferenceFailed, match="quantized_dimension"):
        run_litert_ref(MODELS / "tflm/person_detect.tflite", [x])


def test_python_error_in_worker_is_reference_failed() -> None:
    with pytest.raises(ReferenceFailed) as e:
        run_tflm(_bad_softmax_model(), [np.zeros((1, 1, 4), np.int8)])
    assert e.value.returncode == 3 and "Traceback" in e.value.stderr_tail


def test_native_crash_is_reference_crashed() -> None:
    with pytest.raises(ReferenceCrashed) as e:
        ref._run_worker(["abort"], 60, "abort hook")
    assert e.value.returncode is not None and e.value.returncode < 0


def test_timeout() -> None:
    with pytest.raises(ReferenceTimeout):
        run_tflm(_relu_model(), [np.zeros((1, 1, 4), np.int8)], timeout=0.01)


def test_run_many_isolates_failures() -> None:
    x = np.array([[[1, -2, 3, -4]]], np.int8)
    x2 = np.array([[[2, -2, 4, -4]]], np.int8)
    res = run_many("tflm", [(_relu_model(), [x]), (_bad_softmax_model(), [x]),
                            (_relu_model(0.2), [x2])])
    assert isinstance(res[1], ReferenceFailed)
    np.testing.assert_array_equal(res[0][0], [[[1, 0, 3, 0]]])
    np.testing.assert_array_equal(res[2][0], [[[1, 0, 2, 0]]])  # requantized 0.1 -> 0.2


def test_run_many_attributes_crash_and_continues(monkeypatch: pytest.MonkeyPatch) -> None:
    """Simulate the worker dying on job 1 of 3: job 1 gets the crash, 0 and 2 still run."""
    real = ref._run_worker
    calls: list[int] = []

    def fake(args: list[str], timeout: float, what: str):  # type: ignore[no-untyped-def]
        calls.append(len(args) - 3)
        if args[0] == "run" and any(a.endswith("job_1") for a in args[3:]):
            # run job 0 for real, then "crash" before job 1 finishes
            real(args[:3] + [args[3]], timeout, what)
            raise ReferenceCrashed("simulated", -6, "")
        return real(args, timeout, what)

    monkeypatch.setattr(ref, "_run_worker", fake)
    x = np.array([[[1, -2, 3, -4]]], np.int8)
    res = run_many("tflm", [(_relu_model(), [x])] * 3)
    assert isinstance(res[1], ReferenceCrashed)
    np.testing.assert_array_equal(res[0][0], [[[1, 0, 3, 0]]])
    np.testing.assert_array_equal(res[2][0], [[[1, 0, 3, 0]]])
    assert calls == [3, 1]
