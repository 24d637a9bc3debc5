"""Images onto a model input: the 256 pixel levels onto the 256 quantized levels, and a warning
when the input's quantization does not span an image range."""

from __future__ import annotations

import numpy as np
import pytest

from tinyc.ir import QuantParams, Tensor
from tinyc.validate import preprocess
from tinyc.validate.preprocess import encode_pixels


def _t(dtype: str, scale: float, zp: int) -> Tensor:
    return Tensor(name="x", shape=(1, 2, 2, 1), dtype=dtype, quant=QuantParams((scale,), (zp,)))


PIX = np.array([0, 1, 128, 255], np.uint8).reshape(2, 2, 1)


@pytest.mark.parametrize("scale,zp", [(1 / 255, -128), (1.0, -128), (1 / 127.5, -1), (1 / 127, 0)])
def test_int8_image_inputs_take_pixel_minus_128_without_warning(scale, zp, capsys, monkeypatch):
    monkeypatch.setattr(preprocess, "_warned", set())
    x = encode_pixels(PIX, _t("int8", scale, zp))
    assert x.dtype == np.int8 and x.ravel().tolist() == [-128, -127, 0, 127]
    # the real value each level stands for is the pixel in the model's own range
    real = (x.astype(np.float64) - zp) * scale
    assert real.min() >= -1.01 and real.max() <= 255.01
    assert capsys.readouterr().err == ""


def test_uint8_image_inputs_take_the_raw_pixel():
    assert encode_pixels(PIX, _t("uint8", 1.0, 0)).ravel().tolist() == [0, 1, 128, 255]


def test_an_input_quantized_for_another_range_warns_once(capsys, monkeypatch):
    monkeypatch.setattr(preprocess, "_warned", set())
    t = _t("int8", 0.5847, 83)  # kws_ref_model's spectrogram input
    encode_pixels(PIX, t)
    encode_pixels(PIX, t)
    err = capsys.readouterr().err
    assert err.count("warning") == 1 and "not [0, 1], [0, 255] or [-1, 1]" in err
