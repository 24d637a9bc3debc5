"""Turn real data (images, .npy, raw spectrograms) into model inputs.

The rule follows the model's input tensor, not the file: images are resized to its H×W,
converted to grayscale when it has one channel, and encoded the way TFLite image models are
fed: uint8 inputs take the raw pixel, int8 inputs take pixel - 128 (exactly the pixel/255
quantization of a scale 1/255, zero point -128 input, and the convention of TFLM's person
detection example), float inputs take pixel / 127.5 - 1.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from tinyc.errors import BadInput
from tinyc.ir import Tensor


def image_hw_channels(t: Tensor) -> tuple[int, int, int]:
    if len(t.shape) != 4 or t.shape[0] != 1 or t.shape[3] not in (1, 3):
        raise BadInput(f"the model input {t.dtype}{list(t.shape)} is not an image (expected [1, H, W, 1 or 3])")
    return t.shape[1], t.shape[2], t.shape[3]


def encode_pixels(pixels: np.ndarray, t: Tensor) -> np.ndarray:
    """uint8 pixels [H, W, C] -> one model input sample shaped like t."""
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
