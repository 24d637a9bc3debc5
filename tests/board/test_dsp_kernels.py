"""The Cortex-M DSP-extension paths (1x1 convolution, windows inside the input of the other convolutions and of depthwise with the folded bias) on emulated
M4 (mps2_an386), M7 (mps2_an500) and M33 (mps2_an505), bit-exact with TFLM.

The host tests run the portable C of the same kernels; the shared models exercise the DSP paths
on common shapes (channel counts that are multiples of 8). This model is built for the tails and
geometries they miss: channel counts that are not multiples of 4 (the word loops' remainders), an
odd pixel count (the two-pixel loop's last pixel), strided 1x1 layers, dilated and strided
depthwise windows at the borders, input zero points that are not 0, and with patches the same
layers on patch-sized pieces.
"""

from __future__ import annotations

import pytest

from tests.schedule.test_patch_models import Net
from tinyc.compiler import Options, compile_model
from tinyc.target.boards import get_board
from tinyc.validate.datasets import random_dataset
from tinyc.validate.runner import validate

pytestmark = pytest.mark.board


def _odd_model() -> bytes:
    n = Net((13, 11, 5), seed=3)
    n.conv(7, 1, act="RELU6")              # 1x1 5->7: in and out channels both off the word size
    n.conv(7, 3, depthwise=True)           # 7 channels: one group of 4 and a 3-channel tail
    n.conv(12, 1, s=2)                     # strided 1x1 (VALID-equivalent taps), 7x6 output
    n.conv(12, 3, d=2, depthwise=True)     # dilated: border windows on every side
    n.residual()                           # a 1x1 and a depthwise whose output may overlap
    n.conv(12, 5, s=2, depthwise=True, pad="VALID")
    n.conv(9, 1, act="RELU")
    n.conv(7, 3, s=2)                      # 3x3 convolution: row runs of 27 bytes, odd channel count
    n.conv(6, 3, d=2)                      # dilated: every window on the border, the per-tap path
    return n.head()


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500", "mps2_an505"])
@pytest.mark.parametrize("patch", ["off", "2x2@6"])
def test_dsp_kernels_bit_exact_on_odd_shapes(tmp_path, board: str, patch: str) -> None:
    m = tmp_path / "odd.tflite"
    m.write_bytes(_odd_model())
    bd = get_board(board)
    c = compile_model(m, Options(patch=patch, alignment=bd.alignment))
    kinds = {call.function for call in c.calls}
    assert {"tinyc_conv2d_s8_1x1", "tinyc_conv2d_s8"} <= kinds, kinds
    data = random_dataset(c.graph.t(c.graph.inputs[0]), 4, seed=11)
    res = validate(m, bd, data, emulate=True, quiet=True, compiled=c)
    assert res.bit_exact, (res.first_mismatch, res.first_layer_mismatch)


def _fc_model() -> bytes:
    """A chain of FULLY_CONNECTED layers on the packed kernel's tails: row blocks of 4, 2 and 1,
    input counts that are not multiples of 8 or 4, per-tensor weights with a zero point,
    per-channel weights, two batch rows, input zero points at both ends."""
    import numpy as np

    from tests.support.tflite_builder import ModelBuilder

    rng = np.random.default_rng(5)
    b = ModelBuilder()
    x = b.input("x", shape=(2, 37), dtype="int8", scale=0.05, zero_point=-128)
    layers = [  # (units, per-channel, weights zero point, output zero point, activation)
        (23, False, 3, 127, "NONE"),   # 37 inputs: 4 chunks of 8, one of 4, a tail of 1
        (7, True, 0, -5, "RELU6"),     # 23 inputs, rows 4 + 2 + 1
        (6, False, 0, 9, "RELU"),      # 7 inputs: a chunk of 4 and a tail of 3
        (3, True, 0, -128, "NONE"),    # rows 2 + 1
    ]
    depth = 37
    for i, (units, pc, wzp, ozp, act) in enumerate(layers):
        w = rng.integers(-127, 128, size=(units, depth)).astype(np.int8)
        scale = list(rng.uniform(0.002, 0.01, units)) if pc else 0.006
        wt = b.const(f"w{i}", w, scale=scale, zero_point=[0] * units if pc else wzp, quantized_dimension=0)
        in_s = 0.05 if i == 0 else 0.08
        bs = [in_s * s for s in scale] if pc else in_s * scale
        bt = b.const(f"b{i}", rng.integers(-3000, 3000, size=units).astype(np.int32), scale=bs,
                     zero_point=[0] * units if pc else 0)
        y = b.tensor(f"y{i}", shape=(2, units), dtype="int8", scale=0.08, zero_point=ozp)
        b.op("FULLY_CONNECTED", inputs=[x, wt, bt], outputs=[y], options=dict(fused_activation_function=act))
        x, depth = y, units
    b.output(x)
    return b.build()


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500", "mps2_an505"])
@pytest.mark.parametrize("kernel", ["packed", "model_layout"])
def test_fully_connected_dsp_bit_exact(tmp_path, monkeypatch, board: str, kernel: str) -> None:
    import tinyc.ops.fully_connected as fc

    if kernel == "model_layout":  # what trained layers and layers too large to pack run
        monkeypatch.setattr(fc, "PACK_MAX_EXTRA_BYTES", -(1 << 40))
    m = tmp_path / "fc.tflite"
    m.write_bytes(_fc_model())
    bd = get_board(board)
    c = compile_model(m, Options(patch="off", alignment=bd.alignment))
    kinds = {call.function for call in c.calls}
    want = ({"tinyc_fully_connected_s8_packed"} if kernel == "packed"
            else {"tinyc_fully_connected_s8", "tinyc_fully_connected_s8_pc"})
    assert kinds == want, kinds
    data = random_dataset(c.graph.t(c.graph.inputs[0]), 4, seed=12)
    res = validate(m, bd, data, emulate=True, quiet=True, compiled=c)
    assert res.bit_exact, (res.first_mismatch, res.first_layer_mismatch)


def _depthwise_model() -> bytes:
    """The 3x3 depthwise kernel's assembly and C paths on one input: windows inside the input
    (row runs) and on the border (the tap table), a channel count off the group of four (7),
    strides, VALID and SAME padding, dilation, depth multipliers 1, 4 and 8, both clamps (int8's
    own range, narrower), negative per-channel scales, an input zero point of -128 (the zero-point
    taps)."""
    from tests.ops.test_conv import Branch, model

    def dw(**kw) -> Branch:
        kw.setdefault("depth_multiplier", 1)
        return Branch(**kw)

    return model([dw(kernel=(3, 3), act="RELU6", out_zp=-128),
                  dw(kernel=(3, 3), stride=(2, 2), act="RELU6", out_zp=7),
                  dw(kernel=(3, 3), padding="VALID", dilation=(2, 1), negative_scales=True),
                  dw(kernel=(3, 3), stride=(1, 2), act="RELU", out_zp=-30, negative_scales=True),
                  dw(kernel=(3, 3), stride=(2, 2), dilation=(1, 2), act="RELU6", out_zp=0),
                  dw(kernel=(3, 3), depth_multiplier=4, act="RELU6", out_zp=-128),
                  dw(kernel=(3, 3), depth_multiplier=8, stride=(2, 2), negative_scales=True, act="RELU", out_zp=3),
                  dw(kernel=(3, 3), depth_multiplier=4, padding="VALID", stride=(1, 2))],
                 in_shape=(1, 11, 10, 7), in_zp=-128, seed=8)


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500", "mps2_an505"])
def test_depthwise_3x3_dsp_bit_exact(tmp_path, board: str) -> None:
    m = tmp_path / "dw.tflite"
    m.write_bytes(_depthwise_model())
    bd = get_board(board)
    c = compile_model(m, Options(patch="off", alignment=bd.alignment))
    assert {call.function for call in c.calls} == {"tinyc_depthwise_conv2d_s8_3x3"}
    data = random_dataset(c.graph.t(c.graph.inputs[0]), 4, seed=13)
    res = validate(m, bd, data, emulate=True, quiet=True, compiled=c)
    assert res.bit_exact, (res.first_mismatch, res.first_layer_mismatch)


@pytest.mark.parametrize("board", ["mps2_an386", "mps2_an500"])
@pytest.mark.parametrize("shape, br", [
    ((1, 25, 5, 24), dict(act="RELU6", out_zp=-128)),                        # KWS: rows of 5, both edges
    ((1, 9, 3, 16), dict(negative_scales=True)),                             # rows narrower than a word
    ((2, 6, 7, 40), dict(act="RELU", out_zp=-20)),                           # two images, odd width
    ((1, 6, 8, 40), dict(per_channel=False, bias=False, act="RELU_N1_TO_1")),
], ids=["kws", "narrow", "batch2", "per_tensor"])
def test_depthwise_3x3_channel_by_channel_dsp_bit_exact(tmp_path, board: str, shape, br) -> None:
    """A lone 3x3 depthwise layer whose channel-by-channel in-place variant the planner takes."""
    from tests.ops.test_conv import Branch, model

    m = tmp_path / "dwc.tflite"
    m.write_bytes(model([Branch(depth_multiplier=1, kernel=(3, 3), **br)], shape, in_zp=-9, seed=4))
    bd = get_board(board)
    c = compile_model(m, Options(patch="off", alignment=bd.alignment))
    assert [call.function for call in c.calls] == ["tinyc_depthwise_conv2d_s8_3x3_channels"]
    data = random_dataset(c.graph.t(c.graph.inputs[0]), 4, seed=15)
    res = validate(m, bd, data, emulate=True, quiet=True, compiled=c)
    assert res.bit_exact, (res.first_mismatch, res.first_layer_mismatch)
