"""tinyc.train.export: trained weights written back into a .tflite, in place or with a new head."""

from __future__ import annotations

import flatbuffers
import numpy as np
import pytest

from tests.support.paths import MODELS
from tinyc.api import run_on_host
from tinyc.errors import BadInput
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.train import export as export_mod
from tinyc.train.export import NewTensorData, export_tflite
from tinyc.validate.reference import run_tflm

VWW96 = MODELS / "mlperf_tiny" / "vww_96_int8.tflite"
HANLAB_VWW = MODELS / "hanlab" / "vww.tflite"
MCUNET_IN3 = MODELS / "hanlab" / "mcunet-320kb-1mb_imagenet.tflite"
PERSON_DETECT = MODELS / "tflm" / "person_detect.tflite"
WV_MCUNET = MODELS / "wake_vision" / "wv_quality_mcunet-320kb-1mb_vww.tflite"


def _model(path) -> bytes:
    if not path.is_file():
        pytest.skip(f"shared model {path} not present (set TINYC_SHARED)")
    return path.read_bytes()


def _schema():
    for name in export_mod._SCHEMA_MODULES:
        try:
            return __import__(name, fromlist=["ModelT"])
        except ImportError:
            continue
    pytest.skip("no TFLite schema object API (pip install tflite-micro)")


def _by_label(g, label: str):
    return next(t for t in g.tensors.values() if t.label == label)


def _fc_head(g):
    """The last FULLY_CONNECTED or CONV_2D (the classifier) and its input, weights, bias, output."""
    op = [o for o in g.ops if o.kind in ("FULLY_CONNECTED", "CONV_2D")][-1]
    x, w, b = (g.t(n) for n in op.inputs[:3])
    return op, x, w, b, g.t(op.outputs[0])


def _new_head(g, classes: int, seed: int = 0) -> list[NewTensorData]:
    """A random int8 per-channel head with `classes` outputs replacing the model's classifier."""
    rng = np.random.default_rng(seed)
    _, x, w, b, _ = _fc_head(g)
    shape = (classes, *w.shape[1:])
    wq = rng.integers(-127, 128, size=shape, dtype=np.int8)
    ws = tuple(float(s) for s in rng.uniform(0.002, 0.01, classes))
    bq = rng.integers(-3000, 3000, size=classes).astype(np.int32)
    bs = tuple(x.quant.s * s for s in ws)
    return [NewTensorData(w.index, wq, ws, (0,) * classes), NewTensorData(b.index, bq, bs, (0,) * classes)]


def _agree(model: bytes, inputs: np.ndarray) -> np.ndarray:
    """TFLM and tinyc's generated C on the host give byte-identical outputs; return them."""
    pytest.importorskip("tflite_micro")
    want = run_tflm(model, [inputs])[0]
    got = run_on_host(model, [inputs])[0]
    assert got.dtype == want.dtype and got.shape == want.shape
    assert got.tobytes() == want.tobytes()
    return want


def _random_inputs(g, n: int = 2, seed: int = 1) -> np.ndarray:
    t = g.t(g.inputs[0])
    rng = np.random.default_rng(seed)
    if t.dtype == "float32":
        return rng.uniform(-1, 1, size=(n, *t.shape)).astype(np.float32)
    return rng.integers(-128, 128, size=(n, *t.shape), dtype=np.int8)


# --- same structure: patched in place ----------------------------------------------------------


def test_same_structure_patches_bytes_in_place():
    src = _model(VWW96)
    g = read_tflite(data=src)
    rng = np.random.default_rng(3)
    _, _, w_fc, b_fc, _ = _fc_head(g)
    conv_w = next(t for t in g.tensors.values() if t.is_const and t.dtype == "int8" and len(t.shape) == 4
                  and t.shape[0] == 256)
    new_conv = conv_w.data.copy()
    new_conv[7, 0, 0, :16] = rng.integers(-127, 128, size=16, dtype=np.int8)
    new_fc = rng.integers(-127, 128, size=w_fc.shape, dtype=np.int8)
    new_bias = np.array([-4000, 5000], dtype=np.int32)
    updates = [NewTensorData(conv_w.index, new_conv), NewTensorData(w_fc.index, new_fc),
               NewTensorData(b_fc.index, new_bias)]
    out = export_tflite(src, updates)

    assert len(out) == len(src)
    diff = np.flatnonzero(np.frombuffer(out, np.uint8) != np.frombuffer(src, np.uint8))
    assert 0 < len(diff) <= 16 + w_fc.nbytes + b_fc.nbytes
    g2 = read_tflite(data=out)
    changed = {u.index: u.data for u in updates}
    for name, t in g.tensors.items():
        t2 = g2.t(name)
        assert (t2.shape, t2.dtype, t2.quant, t2.label) == (t.shape, t.dtype, t.quant, t.label)
        if t.index in changed:
            assert np.array_equal(t2.data, changed[t.index])
        elif t.is_const:
            assert np.array_equal(t2.data, t.data)
    # writing the old values back gives the source file, byte for byte
    back = export_tflite(out, [NewTensorData(u.index, g.t(f"t{u.index}").data) for u in updates])
    assert back == src

    x = _random_inputs(g)
    y = _agree(out, x)
    assert y.shape == (2, 1, 2)
    assert not np.array_equal(y, run_tflm(src, [x])[0])  # the new weights took effect


def test_flat_data_of_the_right_size_is_taken_in_the_tensor_shape():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, w, _, _ = _fc_head(g)
    flat = np.arange(w.size, dtype=np.int64).astype(np.int8)
    out = export_tflite(src, [NewTensorData(w.index, flat)])
    assert len(out) == len(src)
    assert np.array_equal(read_tflite(data=out).t(f"t{w.index}").data, flat.reshape(w.shape))


def test_a_buffer_shared_by_two_tensors_is_split():
    src = _model(VWW96)
    schema = _schema()
    g = read_tflite(data=src)
    biases = [t for t in g.tensors.values() if t.is_const and t.dtype == "int32" and t.shape == (64,)]
    a, b = biases[:2]
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(src, 0))
    m.subgraphs[0].tensors[a.index].buffer = m.subgraphs[0].tensors[b.index].buffer
    fb = flatbuffers.Builder(len(src) + 4096)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    shared = bytes(fb.Output())
    gs = read_tflite(data=shared)
    assert np.array_equal(gs.t(a.name).data, b.data)

    new = np.arange(64, dtype=np.int32) * 7
    out = export_tflite(shared, [NewTensorData(a.index, new)])
    g2 = read_tflite(data=out)
    assert np.array_equal(g2.t(a.name).data, new)
    assert np.array_equal(g2.t(b.name).data, b.data)  # the other user keeps the old contents
    for name, t in gs.tensors.items():
        if t.is_const and name != a.name:
            assert np.array_equal(g2.t(name).data, t.data)
    # both tensors given the same new bytes: still one buffer, patched in place
    same = export_tflite(shared, [NewTensorData(a.index, new), NewTensorData(b.index, new)])
    assert len(same) == len(shared)


def test_quantization_change_of_same_shape_rebuilds():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, w, _, _ = _fc_head(g)
    out = export_tflite(src, [NewTensorData(w.index, w.data, scale=(0.0123,), zero_point=(0,))])
    t = read_tflite(data=out).t(w.name)
    assert np.float32(t.quant.s) == np.float32(0.0123) and t.quant.zp == 0
    assert np.array_equal(t.data, w.data)


# --- a new classifier head: rebuilt ------------------------------------------------------------


def test_new_head_vww96_fully_connected_softmax():
    src = _model(VWW96)
    g = read_tflite(data=src)
    fc, x, w, b, logits = _fc_head(g)
    probs = g.t(g.outputs[0])
    updates = _new_head(g, 10)
    out = export_tflite(src, updates, reshape={logits.index: (1, 10), probs.index: (1, 10)})

    g2 = read_tflite(data=out)
    w2, b2 = g2.t(w.name), g2.t(b.name)
    assert w2.shape == (10, 256) and b2.shape == (10,)
    assert np.array_equal(w2.data, updates[0].data) and np.array_equal(b2.data, updates[1].data)
    assert w2.quant.per_channel and len(w2.quant.scale) == 10 and w2.quant.axis == 0
    assert np.allclose(w2.quant.scale, updates[0].scale)
    assert g2.t(logits.name).shape == (1, 10) and g2.t(probs.name).shape == (1, 10)
    for name, t in g.tensors.items():  # everything else is unchanged
        if name not in (w.name, b.name, logits.name, probs.name):
            t2 = g2.t(name)
            assert (t2.shape, t2.dtype, t2.quant) == (t.shape, t.dtype, t.quant)
            assert (t.data is None) == (t2.data is None)
            if t.is_const:
                assert np.array_equal(t2.data, t.data)
    assert [op.kind for op in g2.ops] == [op.kind for op in g.ops]

    y = _agree(out, _random_inputs(g))
    assert y.shape == (2, 1, 10)


def test_new_head_hanlab_vww_fully_connected_dequantize():
    src = _model(HANLAB_VWW)
    g = read_tflite(data=src)
    _, _, w, _, logits = _fc_head(g)
    deq = g.t(g.outputs[0])
    out = export_tflite(src, _new_head(g, 10, seed=5), reshape={logits.index: (1, 10), deq.index: (1, 10)})
    y = _agree(out, _random_inputs(g))
    assert y.shape == (2, 1, 10) and y.dtype == np.float32


def test_new_head_conv_classifier_rewrites_the_reshape():
    """mcunet-in3: a 1x1 CONV_2D [1000, 1, 1, 160] head, then RESHAPE to [-1, 1000]."""
    src = _model(MCUNET_IN3)
    g = read_tflite(data=src)
    _, _, w, _, logits = _fc_head(g)
    assert w.shape == (1000, 1, 1, 160)
    rs = g.ops[-1]
    assert rs.kind == "RESHAPE" and tuple(g.t(rs.inputs[1]).data) == (-1, 1000)
    out = export_tflite(src, _new_head(g, 10, seed=2),
                        reshape={logits.index: (1, 1, 1, 10), g.t(g.outputs[0]).index: (1, 10)})
    g2 = read_tflite(data=out)
    assert len(out) < len(src)  # the 1000-class buffers are gone
    assert g2.ops[-1].attrs["new_shape"] == (-1, 10)
    assert tuple(g2.t(rs.inputs[1]).data) == (-1, 10)
    assert g2.t(w.name).shape == (10, 1, 1, 160)
    y = _agree(out, _random_inputs(g, n=1))
    assert y.shape == (1, 1, 10)


def test_new_head_person_detect_reshape_with_a_fixed_shape():
    """person_detect: CONV_2D [2, 1, 1, 256], RESHAPE new_shape [1, 2] (no -1), SOFTMAX."""
    src = _model(PERSON_DETECT)
    g = read_tflite(data=src)
    _, _, _, _, logits = _fc_head(g)
    rs = g.ops[-2]
    out = export_tflite(src, _new_head(g, 7, seed=4), reshape={logits.index: (1, 1, 1, 7),
                                                               g.t(rs.outputs[0]).index: (1, 7),
                                                               g.t(g.outputs[0]).index: (1, 7)})
    g2 = read_tflite(data=out)
    assert g2.ops[-2].attrs["new_shape"] == (1, 7) and tuple(g2.t(rs.inputs[1]).data) == (1, 7)
    assert _agree(out, _random_inputs(g)).shape == (2, 1, 7)


def test_new_head_wake_vision_mcunet_class_count_in_a_pack_constant():
    """wv mcunet: the RESHAPE's shape is PACK(batch from SHAPE, constant 2): that scalar constant
    carries the class count and is given as an ordinary update."""
    src = _model(WV_MCUNET)
    g = read_tflite(data=src)
    _, _, _, _, logits = _fc_head(g)
    pack = next(op for op in g.ops if op.kind == "PACK")
    count = next(g.t(n) for n in pack.inputs if g.t(n).is_const)
    assert count.shape == () and int(count.data) == 2
    rs = next(op for op in g.ops if op.kind == "RESHAPE")
    alone = export_tflite(src, [NewTensorData(count.index, np.array(10, np.int32))])
    assert len(alone) == len(src) and read_tflite(data=alone).t(count.name).shape == ()  # scalars stay scalars
    out = export_tflite(src, [*_new_head(g, 10, seed=6), NewTensorData(count.index, np.array(10, np.int32))],
                        reshape={logits.index: (1, 1, 1, 10), g.t(rs.outputs[0]).index: (1, 10),
                                 g.t(g.outputs[0]).index: (1, 10)})
    x = np.random.default_rng(0).integers(0, 256, size=(1, *g.t(g.inputs[0]).shape), dtype=np.uint8)
    y = _agree(out, x)
    assert y.shape == (1, 1, 10) and y.dtype == np.uint8


def test_out_of_range_quantized_dimension_of_a_bias_is_written_as_zero():
    """person_detect's biases say quantized_dimension 3 (TFLM ignores it): new per-channel scales
    are written along dimension 0."""
    src = _model(PERSON_DETECT)
    import tflite

    m = tflite.Model.GetRootAsModel(src, 0)
    sg = m.Subgraphs(0)
    i = next(i for i in range(sg.TensorsLength()) if sg.Tensors(i).Type() == tflite.TensorType.INT32
             and sg.Tensors(i).ShapeLength() == 1 and sg.Tensors(i).Quantization().QuantizedDimension() == 3)
    g = read_tflite(data=src)
    b = g.t(f"t{i}")
    scales = tuple(float(s) * 1.5 for s in b.quant.scale)
    out = export_tflite(src, [NewTensorData(i, b.data, scale=scales)])
    q = tflite.Model.GetRootAsModel(out, 0).Subgraphs(0).Tensors(i).Quantization()
    assert q.QuantizedDimension() == 0
    assert np.allclose(q.ScaleAsNumpy(), scales)


def test_rebuilt_buffers_are_16_byte_aligned():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, _, _, logits = _fc_head(g)
    out = export_tflite(src, _new_head(g, 3), reshape={logits.index: (1, 3), g.t(g.outputs[0]).index: (1, 3)})
    import tflite

    m = tflite.Model.GetRootAsModel(out, 0)
    for i in range(m.BuffersLength()):
        buf = m.Buffers(i)
        o = buf._tab.Offset(4)
        if o and buf._tab.VectorLen(o):
            assert buf._tab.Vector(o) % 16 == 0


# --- errors -----------------------------------------------------------------------------------


def test_wrong_dtype_is_bad_input():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, w, b, _ = _fc_head(g)
    with pytest.raises(BadInput, match=r"int32.*the tensor is int8"):
        export_tflite(src, [NewTensorData(w.index, w.data.astype(np.int32))])
    with pytest.raises(BadInput, match=r"float64.*the tensor is int32"):
        export_tflite(src, [NewTensorData(b.index, b.data.astype(np.float64))])


def test_wrong_size_is_bad_input():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, w, b, logits = _fc_head(g)
    with pytest.raises(BadInput, match=r"keep the rank"):
        export_tflite(src, [NewTensorData(w.index, np.zeros(w.size - 1, np.int8))])
    with pytest.raises(BadInput, match=r"FULLY_CONNECTED has inconsistent shapes"):
        export_tflite(src, [NewTensorData(w.index, np.zeros((2, 255), np.int8))])
    with pytest.raises(BadInput, match=r"3 biases for 2 output channels"):
        export_tflite(src, [NewTensorData(b.index, np.zeros(3, np.int32))])


def test_forgotten_reshape_is_bad_input():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, _, _, logits = _fc_head(g)
    with pytest.raises(BadInput, match=r"SOFTMAX has inconsistent shapes.*reshape"):
        export_tflite(src, _new_head(g, 10), reshape={logits.index: (1, 10)})
    with pytest.raises(BadInput, match=r"10 output channels in the weights, 2 in the output"):
        export_tflite(src, _new_head(g, 10))


def test_per_channel_scales_must_match_the_channels():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, w, _, _ = _fc_head(g)
    with pytest.raises(BadInput, match=r"3 per-channel scales.*has 10 channels"):
        export_tflite(src, [NewTensorData(w.index, np.zeros((10, 256), np.int8), scale=(0.1, 0.1, 0.1))])
    with pytest.raises(BadInput, match=r"positive"):
        export_tflite(src, [NewTensorData(w.index, w.data, scale=(-0.1,))])


def test_bad_targets_are_bad_input():
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, w, _, logits = _fc_head(g)
    x = g.t(g.inputs[0])
    with pytest.raises(BadInput, match=r"not a constant"):
        export_tflite(src, [NewTensorData(x.index, np.zeros(x.shape, np.int8))])
    with pytest.raises(BadInput, match=r"does not exist"):
        export_tflite(src, [NewTensorData(10_000, w.data)])
    with pytest.raises(BadInput, match=r"updated twice"):
        export_tflite(src, [NewTensorData(w.index, w.data), NewTensorData(w.index, w.data)])
    with pytest.raises(BadInput, match=r"is a constant; give its new contents"):
        export_tflite(src, [], reshape={w.index: (10, 256)})
    with pytest.raises(BadInput, match=r"positive dimensions"):
        export_tflite(src, [], reshape={logits.index: (1, 0)})
    with pytest.raises(BadInput, match=r"not a TFLite model"):
        export_tflite(b"hello world, not a model", [])


def test_data_outside_the_flatbuffer_is_bad_input():
    src = _model(VWW96)
    schema = _schema()
    g = read_tflite(data=src)
    _, _, w, b, logits = _fc_head(g)
    m = schema.ModelT.InitFromObj(schema.Model.GetRootAs(src, 0))
    buf = m.buffers[m.subgraphs[0].tensors[w.index].buffer]
    buf.offset, buf.size, buf.data = 1 << 30, w.nbytes, None
    fb = flatbuffers.Builder(len(src) + 4096)
    fb.Finish(m.Pack(fb), file_identifier=b"TFL3")
    external = bytes(fb.Output())
    with pytest.raises(BadInput, match=r"outside the flatbuffer"):
        export_tflite(external, [NewTensorData(w.index, w.data)])
    with pytest.raises(BadInput, match=r"outside the flatbuffer.*not supported"):
        export_tflite(external, [NewTensorData(b.index, np.zeros(10, np.int32))], reshape={logits.index: (1, 10)})
    # a same-shape update of another tensor is still patched in place
    out = export_tflite(external, [NewTensorData(b.index, np.array([1, 2], np.int32))])
    assert len(out) == len(external)


def test_missing_schema_package_names_tflite_micro(monkeypatch):
    src = _model(VWW96)
    g = read_tflite(data=src)
    _, _, _, _, logits = _fc_head(g)
    monkeypatch.setattr(export_mod, "_SCHEMA_MODULES", ("no_such_package.schema_py_generated",))
    with pytest.raises(BadInput, match=r"pip install tflite-micro"):
        export_tflite(src, _new_head(g, 10), reshape={logits.index: (1, 10), g.t(g.outputs[0]).index: (1, 10)})
