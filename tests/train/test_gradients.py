"""Whole-model gradients of the compiled training step against the float64 reference.

The C step's forward is the int8 inference path; its gradients (reported through the
TINYC_TRAIN_GRAD_HOOK debug hook before each update) must match tinyc.train.reference run on the
same int8 activations (TFLM's intermediate tensors, dequantized): cosine >= 0.999 and relative L2
<= 1e-3 per updated tensor (float32 backward vs float64)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import MODELS
from tinyc.train.compile import TrainOptions, compile_training
from tinyc.train.host import HostTrainer
from tinyc.train.reference import FloatNet, quantized_values
from tinyc.validate.reference import tflm_tensors


def read_grads(path: Path) -> dict[tuple[int, int], dict[int, float]]:
    raw = np.fromfile(path, dtype=np.uint8).reshape(-1, 16)
    head = raw[:, :12].copy().view(np.int32)
    g = raw[:, 12:].copy().view(np.float32).ravel()
    out: dict[tuple[int, int], dict[int, float]] = {}
    for (layer, kind, index), v in zip(head.tolist(), g.tolist()):
        out.setdefault((layer, kind), {})[index] = v
    return out


def check_model(model: Path, update: str, tmp_path: Path, seed: int = 0) -> list[str]:
    if update.startswith("sparse:{"):  # an inline scheme
        (tmp_path / "scheme.json").write_text(update[7:])
        update = f"sparse:{tmp_path / 'scheme.json'}"
    tc = compile_training(model, TrainOptions(update=update), search_seconds=0)
    g = tc.model
    t_in = g.t(g.inputs[0])
    rng = np.random.default_rng(seed)
    lo, hi = (0, 256) if t_in.dtype == "uint8" else (-128, 128)
    x = rng.integers(lo, hi, size=(1, *t_in.shape)).astype(t_in.dtype)
    label = int(rng.integers(0, tc.classes))
    trainer = HostTrainer(tc, sanitize=True, grad_hook=True, workdir=tmp_path / "build")
    grads_file = tmp_path / "grads.bin"
    trainer.train([x], np.array([label]), lr=0.0, grads=grads_file)
    got = read_grads(grads_file)
    # the reference on TFLM's int8 activations
    names = [n for n in g.tensors if not g.t(n).is_const and g.t(n).index >= 0]
    ref_in = tc.compiled.reference_inputs([x[0]])
    acts = tflm_tensors(model, ref_in, [g.t(n).index for n in names])
    by_index = {g.t(n).index: n for n in names}
    values = quantized_values(g, {by_index[i]: a for i, a in acts.items() if i in by_index})
    g = tc.model  # the float reference reads the whole weight tensors, layer by layer
    net = FloatNet(g, tc.train.logits, tc.train.beta)
    wanted = []
    for op in [*tc.train.convs, tc.train.classifier]:
        up = tc.train.updates.get(op.index)
        if up is None:
            continue
        if up.channels:
            wanted.append((op, 0, op.inputs[1], up.channels))
        if up.bias and len(op.inputs) > 2 and op.inputs[2] is not None:
            wanted.append((op, 1, op.inputs[2], None))
    _, ref = net.backward(values, label, [w[2] for w in wanted], quantized=True)
    report = []
    for op, kind, name, chans in wanted:
        r = ref[name]
        c = got.get((op.index, kind))
        assert c is not None, f"no gradient reported for {op.label} {'bias' if kind else 'weights'}"
        idx = np.array(sorted(c), dtype=np.int64)
        cv = np.array([c[i] for i in idx], dtype=np.float64)
        rv = r.ravel()[idx]
        if kind == 0:  # only the selected input channels' weights are trained
            axis = 3 if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D") else 1
            ch = np.unravel_index(idx, r.shape)[axis]
            if op.kind == "DEPTHWISE_CONV_2D":
                ch = ch // op.attrs["depth_multiplier"]
            assert set(ch.tolist()) == set(chans), f"{op.label}: the C step trained other channels"
            assert len(idx) == r.size // (r.shape[axis] if op.kind != "DEPTHWISE_CONV_2D" else
                                          r.shape[axis] // op.attrs["depth_multiplier"]) * len(chans)
        else:
            assert len(idx) == r.size
        nr = np.linalg.norm(rv)
        if nr == 0:
            assert np.linalg.norm(cv) <= 1e-6, f"{op.label}: reference gradient is zero, C's is not"
            continue
        cos = float(cv @ rv / (np.linalg.norm(cv) * nr))
        rel = float(np.linalg.norm(cv - rv) / nr)
        report.append(f"{op.label} {'bias' if kind else 'weights'}: cos {cos:.6f} rel {rel:.2e}")
        assert cos >= 0.999 and rel <= 1e-3, report[-1]
    return report


@pytest.mark.parametrize("model,update", [
    ("mlperf_tiny/vww_96_int8.tflite", "last:4"),
    ("mlperf_tiny/kws_ref_model.tflite", "full"),
    ("mlperf_tiny/pretrainedResnet_quant.tflite", "last:4"),
    ("tflm/person_detect.tflite", "last:3"),
    # partial updates: weights split into trained (SRAM) and frozen (flash) parts, bias-only layers
    ("mlperf_tiny/vww_96_int8.tflite",
     'sparse:{"n_bias_update": 6, "manual_weight_idx": [21, 23, 24, 26], "weight_update_ratio": [0.5, 0.25, 0.125, 0.5]}'),
    ("mlperf_tiny/pretrainedResnet_quant.tflite",
     'sparse:{"n_bias_update": 5, "manual_weight_idx": [4, 6, 8], "weight_update_ratio": [0.25, 0.5, 0.125]}'),
    ("mlperf_tiny/kws_ref_model.tflite", "bias"),
])
def test_model_gradients_match_reference(model: str, update: str, tmp_path: Path) -> None:
    path = MODELS / model
    if not path.is_file():
        pytest.skip(f"shared model {model} not found")
    report = check_model(path, update, tmp_path)
    assert report
