"""Labelled training data: images (or arrays) with class indices, encoded for the model's input.

Three layouts, told apart by what `spec` is:

* a folder with one sub-folder per class, ``DIR/<class>/*.jpg|jpeg|png|bmp`` (class names in
  alphabetical order unless ``classes`` gives the order; then a folder not among them is an
  error, and a class without a folder simply has no samples, as in a small evaluation set);
* a folder in the Wake Vision layout (images next to a labels CSV with ``filename`` and
  ``person``: classes ``["no_person", "person"]``), read by tinyc/validate/datasets.py;
* a ``.npz`` with ``x`` (already encoded inputs of the input tensor's dtype, or uint8 pixels
  [N, H, W, C] of the input's size) and ``y`` (class indices); an optional ``classes`` array
  names the classes.

Images go through the same steps as validation (tinyc/validate/preprocess.py): resized to the
input's H x W, then the 256 pixel levels laid onto the input's quantized range.

Sample order: round-robin over the classes, each class in file order (class 0's first file,
class 1's first file, ..., class 0's second file, ...). ``n`` keeps the first n of that order, so
a small n still holds every class and a smaller load is a prefix of a larger one.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np

from tinyc.errors import BadInput
from tinyc.ir import Tensor
from tinyc.validate.datasets import _IMAGE_EXT, _folder_files
from tinyc.validate.preprocess import encode_pixels, image_hw_channels, load_image

__all__ = ["LabelledData", "load_labelled", "split_holdout", "shuffled_order", "WAKE_VISION_CLASSES"]

WAKE_VISION_CLASSES = ["no_person", "person"]


@dataclass
class LabelledData:
    """inputs (N, *input_shape) of the input tensor's dtype; labels (N,) int64 indices into classes."""

    inputs: np.ndarray
    labels: np.ndarray
    classes: list[str]
    source: str

    def __len__(self) -> int:
        return int(self.labels.shape[0])

    def counts(self) -> np.ndarray:
        """Samples per class, (len(classes),)."""
        return np.bincount(self.labels, minlength=len(self.classes))


def load_labelled(spec: str | Path, t: Tensor, n: int | None = None, classes: list[str] | None = None,
                  progress: bool = False) -> LabelledData:
    """Read a labelled data set (see the module docstring) as inputs for tensor `t`."""
    if n is not None and n <= 0:
        raise BadInput(f"n must be a positive number of samples, not {n}")
    if classes is not None:
        classes = [str(c) for c in classes]
        if len(set(classes)) != len(classes):
            raise BadInput(f"classes has duplicates: {classes}")
    p = Path(spec)
    if p.is_dir():
        if _has_csv(p) and any(f.suffix.lower() in _IMAGE_EXT for f in p.iterdir() if f.is_file()):
            return _from_wake_vision(p, t, n, classes, progress)
        return _from_class_folders(p, t, n, classes, progress)
    if not p.exists():
        raise BadInput(f"{p}: no such data folder or file")
    if p.suffix.lower() == ".npz":
        return _from_npz(p, t, n, classes)
    raise BadInput(f"{p}: unknown training data format (give a folder with one sub-folder of images per "
                   f"class, a Wake Vision folder with a labels CSV, or a .npz with x and y)")


def split_holdout(d: LabelledData, fraction: float = 0.2, seed: int = 0) -> tuple[LabelledData, LabelledData]:
    """(train, holdout): `fraction` of each class, picked at random with `seed`, goes to holdout.

    Each class with two or more samples gives at least one sample to each side (for a fraction in
    (0, 1)); a class with one sample stays in train. Both parts keep the original sample order.
    """
    if not 0 <= fraction < 1:
        raise BadInput(f"holdout fraction must be in [0, 1), not {fraction}")
    rng = np.random.default_rng(seed)
    held = np.zeros(len(d), dtype=bool)
    for c in range(len(d.classes)):
        idx = np.flatnonzero(d.labels == c)
        k = int(round(fraction * len(idx)))
        if fraction > 0 and len(idx) >= 2:
            k = min(max(k, 1), len(idx) - 1)
        elif len(idx) < 2:
            k = 0
        held[rng.permutation(idx)[:k]] = True
    train, hold = np.flatnonzero(~held), np.flatnonzero(held)
    what = f"stratified {fraction:g} holdout, seed {seed}"
    return (_subset(d, train, f"{d.source} (train part, {what})"),
            _subset(d, hold, f"{d.source} (holdout part, {what})"))


def shuffled_order(n: int, epochs: int, seed: int) -> np.ndarray:
    """The sample order of `epochs` epochs over n samples: one permutation per epoch, concatenated
    (numpy default_rng(seed)); int64, length n * epochs."""
    if n <= 0:
        raise BadInput(f"cannot shuffle {n} samples")
    if epochs < 0:
        raise BadInput(f"epochs must be >= 0, not {epochs}")
    rng = np.random.default_rng(seed)
    if epochs == 0:
        return np.zeros(0, dtype=np.int64)
    return np.concatenate([rng.permutation(n) for _ in range(epochs)]).astype(np.int64)


# ---------------------------------------------------------------------------------------------


def _subset(d: LabelledData, idx: np.ndarray, source: str) -> LabelledData:
    return LabelledData(inputs=d.inputs[idx], labels=d.labels[idx], classes=list(d.classes), source=source)


def _has_csv(d: Path) -> bool:
    return any(f.suffix.lower() == ".csv" and f.is_file() for f in d.iterdir())


def _round_robin(per_class: list[list[int]], n: int | None) -> list[int]:
    """Items of every class in turn (each class in its own order), the first n of them."""
    out: list[int] = []
    depth = max((len(c) for c in per_class), default=0)
    for k in range(depth):
        for items in per_class:
            if k < len(items):
                out.append(items[k])
                if n is not None and len(out) == n:
                    return out
    return out


def _decode(files: list[Path], t: Tensor, progress: bool, what: str) -> np.ndarray:
    image_hw_channels(t)  # a clear error for a non-image input before any file is opened
    from tqdm import tqdm

    out = np.empty((len(files), *t.shape), dtype=np.dtype(t.dtype))
    for i, f in enumerate(tqdm(files, desc=f"decoding {what}", unit="img", disable=not progress,
                               leave=False)):
        out[i] = load_image(f, t)
    return out


def _from_class_folders(d: Path, t: Tensor, n: int | None, classes: list[str] | None,
                        progress: bool) -> LabelledData:
    folders = {f.name: f for f in d.iterdir() if f.is_dir() and not f.name.startswith(".")}
    if not folders:
        raise BadInput(f"{d}: no images: expected one sub-folder of images per class "
                       f"(DIR/<class>/*.jpg|png|bmp) or images with a labels CSV (Wake Vision layout)")
    if classes is None:
        names = sorted(folders)
    else:
        unknown = sorted(set(folders) - set(classes))
        if unknown:
            raise BadInput(f"{d}: folder(s) {', '.join(unknown)} are not among the classes given "
                           f"({', '.join(classes)})")
        names = list(classes)  # a class without a folder has no samples here (a small evaluation set)
    if len(names) < 2:
        raise BadInput(f"{d}: {len(names)} class folder ({', '.join(names)}); training a classifier needs "
                       f"at least 2")
    per_class: list[list[Path]] = []
    for c in names:
        if c not in folders:
            per_class.append([])
            continue
        files = sorted(f for f in folders[c].iterdir() if f.is_file() and f.suffix.lower() in _IMAGE_EXT)
        if not files:
            raise BadInput(f"{folders[c]}: class folder '{c}' holds no images "
                           f"({', '.join(sorted(_IMAGE_EXT))})")
        per_class.append(files)
    flat = [(c, f) for c, files in enumerate(per_class) for f in files]
    starts = np.cumsum([0] + [len(f) for f in per_class])
    order = _round_robin([list(range(starts[c], starts[c + 1])) for c in range(len(names))], n)
    picked = [flat[i] for i in order]
    xs = _decode([f for _, f in picked], t, progress, d.name)
    ys = np.array([c for c, _ in picked], dtype=np.int64)
    return LabelledData(inputs=xs, labels=ys, classes=names, source=f"{d} ({len(names)} class folders)")


def _from_wake_vision(d: Path, t: Tensor, n: int | None, classes: list[str] | None,
                      progress: bool) -> LabelledData:
    files, labels = _folder_files(d)
    if not labels:
        raise BadInput(f"{d}: the labels CSV gives no labels")
    ys_all = [int(labels[f.name]) for f in files]  # type: ignore[arg-type]
    names = list(classes) if classes is not None else list(WAKE_VISION_CLASSES)
    if max(ys_all) >= len(names):
        raise BadInput(f"{d}: label {max(ys_all)} has no class name (classes: {', '.join(names)}); "
                       f"give classes")
    if len(names) < 2:
        raise BadInput(f"{d}: {len(names)} class; training a classifier needs at least 2")
    per_class = [[i for i, y in enumerate(ys_all) if y == c] for c in range(len(names))]
    order = _round_robin(per_class, n)
    xs = _decode([files[i] for i in order], t, progress, d.name)
    ys = np.array([ys_all[i] for i in order], dtype=np.int64)
    return LabelledData(inputs=xs, labels=ys, classes=names, source=f"{d} (Wake Vision layout)")


def _from_npz(p: Path, t: Tensor, n: int | None, classes: list[str] | None) -> LabelledData:
    try:
        with np.load(p, allow_pickle=False) as z:
            arrays = {k: z[k] for k in z.files}
    except Exception as e:  # truncated, not a zip, object arrays
        raise BadInput(f"{p}: not a readable .npz ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    if "x" not in arrays or "y" not in arrays:
        raise BadInput(f"{p}: needs arrays 'x' (inputs) and 'y' (labels); it has {', '.join(arrays) or 'none'}")
    x, y = arrays["x"], arrays["y"]
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    if y.ndim != 1 or y.dtype.kind not in "iu":
        raise BadInput(f"{p}: 'y' must be integer class indices (N,), got {y.dtype} {list(y.shape)}")
    if len(x) != len(y):
        raise BadInput(f"{p}: {len(x)} inputs in 'x' but {len(y)} labels in 'y'")
    if not len(y):
        raise BadInput(f"{p}: holds no samples")
    x = _npz_inputs(x, t, p)
    y = y.astype(np.int64)
    if classes is None and "classes" in arrays:
        classes = [str(c) for c in arrays["classes"].tolist()]
    names = list(classes) if classes is not None else [str(i) for i in range(int(y.max()) + 1)]
    if y.min() < 0 or y.max() >= len(names):
        raise BadInput(f"{p}: labels span {int(y.min())}..{int(y.max())}, outside the {len(names)} classes")
    if len(names) < 2:
        raise BadInput(f"{p}: {len(names)} class; training a classifier needs at least 2")
    order = np.array(_round_robin([np.flatnonzero(y == c).tolist() for c in range(len(names))], n),
                     dtype=np.int64)
    return LabelledData(inputs=x[order], labels=y[order], classes=names, source=str(p))


def _npz_inputs(x: np.ndarray, t: Tensor, p: Path) -> np.ndarray:
    """x as (N, *t.shape) of t's dtype: already encoded (the batch axis of t may be left out), or
    uint8 pixels [N, H, W, C] of an image input, encoded as images are."""
    want = np.dtype(t.dtype)
    if x.dtype == want:
        if x.shape[1:] == tuple(t.shape):
            return x
        if t.shape and t.shape[0] == 1 and x.shape[1:] == tuple(t.shape[1:]):
            return x.reshape((len(x), *t.shape))
        raise BadInput(f"{p}: 'x' {list(x.shape)} is not a batch of the model input {list(t.shape)}")
    if x.dtype == np.uint8 and len(t.shape) == 4 and x.shape[1:] == tuple(t.shape[1:]):
        image_hw_channels(t)
        return np.stack([encode_pixels(img, t) for img in x])
    raise BadInput(f"{p}: 'x' holds {x.dtype} {list(x.shape)}; the model input is {t.dtype} {list(t.shape)} "
                   f"(give encoded inputs of that dtype, or uint8 pixels [N, H, W, C])")
