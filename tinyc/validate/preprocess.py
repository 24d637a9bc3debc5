"""Turn real data (images, .npy, raw spectrograms) into model inputs.

The rule follows the model's input tensor, not the file: images are resized to its H×W,
converted to grayscale when it has one channel, and the 256 pixel levels are laid onto the 256
levels of the quantized input: uint8 inputs take the raw pixel, int8 inputs take pixel - 128.
That is what the input's (scale, zero point) say for image models, whatever real range they
were trained on: [0, 1] (vww_96: 1/255, -128), [0, 255] (ResNet-8: 1, -128) and [-1, 1]
(person_detect: 1/127.5, -1; mcunet: 1/127, 0) all span the whole integer range, and it is the
convention of TFLM's person detection example. An input whose quantization spans a different
real range gets a warning (mean/std normalisation cannot be read off the file). Float inputs
take pixel / 127.5 - 1.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np

from tinyc.errors import BadInput
from tinyc.ir import Tensor


def image_hw_channels(t: Tensor) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1 or t.shape[3] not in (1, 3):
        raise BadInput(f"the model input {t.dtype}{list(t.shape)} is not an image (expected [1, H, W, 1 or 3])")
    return t.shape[1], t.shape[2], t.shape[3]


_USUAL_RANGES = ((0.0, 1.0), (0.0, 255.0), (-1.0, 1.0))
_warned: set[tuple[float, int]] = set()


def _check_image_quantization(t: Tensor) -> None:
    """Warn once per (scale, zero point) when the quantized input does not span a usual image range."""
    q = t.quant
    if q is None or t.dtype not in ("int8", "uint8") or (q.s, q.zp) in _warned:
        return
    info = np.iinfo(np.dtype(t.dtype))
    lo, hi = (info.min - q.zp) * q.s, (info.max - q.zp) * q.s
    width = hi - lo
    if any(abs(lo - a) <= 0.02 * (b - a) and abs(hi - b) <= 0.02 * (b - a) for a, b in _USUAL_RANGES):
        return
    _warned.add((q.s, q.zp))
    print(f"tinyc: warning: the model input's quantization spans real values [{lo:.3g}, {hi:.3g}] "
          f"(width {width:.3g}), not [0, 1], [0, 255] or [-1, 1]; images are laid onto the whole integer "
          f"range: check the model's own preprocessing", file=sys.stderr)


def encode_pixels(pixels: np.ndarray, t: Tensor) -> np.ndarray:
    """uint8 pixels [H, W, C] -> one model input sample shaped like t."""
    _check_image_quantization(t)
    p = pixels.astype(np.int16)
    if t.dtype == "uint8":
        x = p.astype(np.uint8)
    elif t.dtype == "int8":
        x = (p - 128).astype(np.int8)
    elif t.dtype == "float32":
        x = (p.astype(np.float32) / np.float32(127.5) - np.float32(1.0)).astype(np.float32)
    else:
        raise BadInput(f"cannot feed images to a {t.dtype} model input")
    return x.reshape(t.shape)


def load_image(path: str | Path, t: Tensor) -> np.ndarray:
    """Read an image file (PNG, JPEG, BMP...) and encode it for input tensor t."""
    from PIL import Image

    h, w, c = image_hw_channels(t)
    try:
        img = Image.open(path)
        img.load()
    except Exception as e:
        raise BadInput(f"{path}: not a readable image ({e})") from e
    if Path(path).suffix.lower() == ".bmp" and img.mode in ("L", "P") and c == 1 and img.size == (w, h) \
            and t.dtype == "int8":
        # TFLM's person-detection BMPs store the int8 input bytes themselves (see the models manifest).
        return np.asarray(img, dtype=np.uint8).view(np.int8).reshape(t.shape).copy()
    img = img.convert("L" if c == 1 else "RGB")
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    return encode_pixels(np.asarray(img, dtype=np.uint8).reshape(h, w, c), t)


def quantize_real(values: np.ndarray, t: Tensor) -> np.ndarray:
    """Real values (e.g. a float log-mel spectrogram) -> t's dtype with t's quantization."""
    v = np.asarray(values, dtype=np.float32).reshape(t.shape)
    if t.dtype == "float32":
        return v
    if t.quant is None:
        raise BadInput(f"the model input {t.dtype}{list(t.shape)} has no quantization parameters")
    info = np.iinfo(np.dtype(t.dtype))
    q = np.round(v / np.float32(t.quant.s)) + t.quant.zp
    return np.clip(q, info.min, info.max).astype(t.dtype)
