"""Every shared model, end to end: compiled, built with ASan+UBSan, bit-exact with TFLM.

Inputs: 16 random samples over the input dtype's full range (float inputs: over the range the
model's first QUANTIZE can represent, plus some beyond it to exercise clamping), and the
matching real files from ../shared/data.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.paths import DATA, MODELS, all_models
from tests.support.reference import run_tflm
from tinyc.api import compile_model, run_on_host
from tinyc.ir import Graph, Tensor
from tinyc.validate.preprocess import load_image, quantize_real

if not MODELS.is_dir():  # pragma: no cover - a broken checkout, not a test outcome
    raise RuntimeError(f"shared models not found at {MODELS} (set TINYC_SHARED)")

N_RANDOM = 16
WV_IMAGES = sorted((DATA / "wake_vision_test_128").glob("*.png"))


def _random_inputs(g: Graph, t: Tensor, rng: np.random.Generator) -> np.ndarray:
    if t.dtype in ("int8", "uint8", "int16"):
        info = np.iinfo(np.dtype(t.dtype))
        return rng.integers(info.min, info.max, size=(N_RANDOM, *t.shape), endpoint=True).astype(t.dtype)
    if t.dtype == "float32":
        lo, hi = -1.0, 1.0
        for op in g.ops:
            if op.kind == "QUANTIZE" and op.inputs[0] == t.name:
                q = g.t(op.outputs[0]).quant
                info = np.iinfo(np.dtype(g.t(op.outputs[0]).dtype))
                lo, hi = (info.min - q.zp) * q.s, (info.max - q.zp) * q.s
        span = hi - lo
        return rng.uniform(lo - 0.05 * span, hi + 0.05 * span, size=(N_RANDOM, *t.shape)).astype(np.float32)
    raise AssertionError(f"no random input rule for {t.dtype}")


def _real_inputs(model: str, t: Tensor) -> np.ndarray | None:
    name = model.split("/")[-1]
    if name.startswith("person_detect"):
        files = sorted((DATA / "tflm_person_detection").glob("*.bmp"))
        return np.stack([load_image(f, t) for f in files])
    if name == "kws_ref_model.tflite":
        return np.load(DATA / "mlperf_tiny/kws01/kws_inputs_i8.npy").reshape(-1, *t.shape).astype(t.dtype)
    if name == "ad01_int8.tflite":
        frames = np.fromfile(DATA / "mlperf_tiny/ad01/normal_id_01_00000000_hist_librosa.bin", dtype=np.float32)
        frames = frames.reshape(-1, 128)
        win = t.size // 128
        return np.stack([quantize_real(frames[i:i + win].ravel(), t) for i in range(0, 8 * 4, 4)])
    if len(t.shape) == 4 and t.shape[3] in (1, 3) and t.shape[1] >= 16:
        return np.stack([load_image(f, t) for f in WV_IMAGES])
    return None


@pytest.mark.slow
@pytest.mark.parametrize("model", [str(p.relative_to(MODELS)) for p in all_models()])
def test_model_matches_tflm_bit_exact(model: str) -> None:
    path = MODELS / model
    compiled = compile_model(path)
    g = compiled.graph
    rng = np.random.default_rng(1234)
    batches = [[_random_inputs(g, g.t(n), rng) for n in g.inputs]]
    if len(g.inputs) == 1:
        real = _real_inputs(model, g.t(g.inputs[0]))
        if real is not None:
            batches.append([real])
    for inputs in batches:
        want = run_tflm(str(path), inputs)
        got = run_on_host(path, inputs, sanitize=True)
        assert len(got) == len(want)
        for k, (a, b) in enumerate(zip(got, want)):
            assert a.dtype == b.dtype and a.shape == b.shape, (k, a.dtype, a.shape, b.dtype, b.shape)
            if not np.array_equal(a, b):
                bad = np.argwhere(a != b)
                first = tuple(bad[0])
                pytest.fail(f"{model} output {k}: {len(bad)} of {a.size} values differ; first at {first}: "
                            f"tinyc {a[first]} vs TFLM {b[first]}")


def test_real_person_bmp_gives_tflm_documented_scores() -> None:
    """The manifest documents TFLM's outputs for the two BMPs: person [-113, 113], no person [57, -57]."""
    path = MODELS / "tflm/person_detect.tflite"
    t = compile_model(path).graph
    x = _real_inputs("tflm/person_detect.tflite", t.t(t.inputs[0]))
    assert x is not None
    got = run_on_host(path, [x], sanitize=False)[0].reshape(2, 2)
    files = sorted(p.name for p in (DATA / "tflm_person_detection").glob("*.bmp"))
    assert files == ["no_person.bmp", "person.bmp"]
    np.testing.assert_array_equal(got, [[57, -57], [-113, 113]])
