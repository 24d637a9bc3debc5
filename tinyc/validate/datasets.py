"""Validation data: a folder of images + labels CSV (Wake Vision layout), Wake Vision parquet
shards, .npy arrays, or random inputs; each becomes model inputs with labels when known."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from tinyc.errors import BadInput
from tinyc.ir import Tensor
from tinyc.validate.preprocess import encode_pixels, image_hw_channels, load_image

if TYPE_CHECKING:
    import pyarrow as pa

_IMAGE_EXT = {".png", ".jpg", ".jpeg", ".bmp", ".gif", ".webp"}
# Wake Vision's fine-grained benchmark columns: accuracy is reported per slice when present.
_NON_SLICE = {"image", "person", "filename", "clean_label", "original_label", "wake_vision_filename"}


@dataclass
class Dataset:
    inputs: np.ndarray  # (N, *input_shape)
    labels: np.ndarray | None = None  # (N,) int class index, or None
    names: list[str] = field(default_factory=list)
    slices: dict[str, np.ndarray] = field(default_factory=dict)  # slice name -> bool mask (N,)
    source: str = ""


def _label_from_row(row: dict[str, str], where: str = "labels") -> int | None:
    for key in ("person", "clean_label", "label"):
        if key in row and row[key] not in ("", None):
            try:
                v = int(float(row[key]))
            except ValueError:
                raise BadInput(f"{where}: {key} {row[key]!r} for {row.get('filename')!r} is not an integer label") \
                    from None
            return v if v >= 0 else None  # Wake Vision: -1 exclude, -2 depiction
    return None


def _folder_files(d: Path) -> tuple[list[Path], dict[str, int | None]]:
    csvs = [d / "labels.csv"] if (d / "labels.csv").is_file() else sorted(d.glob("*.csv"))
    labels: dict[str, int | None] = {}
    if csvs:
        with open(csvs[0], newline="") as f:
            for row in csv.DictReader(f):
                if "filename" not in row:
                    raise BadInput(f"{csvs[0]}: needs a 'filename' column (Wake Vision layout)")
                labels[row["filename"]] = _label_from_row(row, str(csvs[0]))
    files = sorted(p for p in d.iterdir() if p.suffix.lower() in _IMAGE_EXT)
    if labels:
        files = [p for p in files if p.name in labels and labels[p.name] is not None]
    if not files:
        raise BadInput(f"{d}: no labelled images found")
    return files, labels


def _from_folder(d: Path, t: Tensor, n: int | None) -> Dataset:
    files, labels = _folder_files(d)
    files = files[:n] if n else files
    xs = np.stack([load_image(p, t) for p in files])
    ys = np.array([labels[p.name] for p in files], dtype=np.int64) if labels else None
    return Dataset(inputs=xs, labels=ys, names=[p.name for p in files], source=str(d))


def _read_parquet(p: Path, n: int | None) -> pa.Table:
    """The first ``n`` rows (all when n is falsy) as a pyarrow Table. Batches are read only until
    ``n`` rows are in hand, so ``-n 10`` on a multi-hundred-MB Wake Vision shard stays cheap."""
    try:
        import pyarrow as pa
        import pyarrow.parquet as pq
    except ImportError as e:
        raise BadInput("reading parquet needs pyarrow (pip install pyarrow)") from e
    try:
        f = pq.ParquetFile(p)
        batches, rows = [], 0
        for b in f.iter_batches(batch_size=min(n, 1024) if n else 1024):
            batches.append(b)
            rows += b.num_rows
            if n and rows >= n:
                break
        table = pa.Table.from_batches(batches, schema=f.schema_arrow)
    except (pa.ArrowException, OSError) as e:
        raise BadInput(f"{p}: not a readable parquet file ({str(e).splitlines()[0]})") from None
    return table.slice(0, n) if n else table


def _image_bytes(v: object, where: str) -> bytes:
    """Encoded image bytes of one ``image`` cell: Hugging Face writes a struct {bytes, path};
    plain binary columns hold the bytes directly. A path-only struct refers to a file outside the
    shard, which we do not chase."""
    raw = v.get("bytes") if isinstance(v, dict) else v
    if isinstance(raw, (bytes, bytearray)) and raw:
        return bytes(raw)
    path = v.get("path") if isinstance(v, dict) else None
    raise BadInput(f"{where}: the image cell has no image bytes" + (f" (only a path, {path!r})" if path else ""))


def _decode(raw: bytes, t: Tensor, where: str) -> np.ndarray:
    """JPEG/PNG bytes -> one model input, the same convert/resize/encode steps as ``load_image``."""
    from PIL import Image

    h, w, c = image_hw_channels(t)
    try:
        img = Image.open(io.BytesIO(raw))
        img = img.convert("L" if c == 1 else "RGB")
    except Exception as e:  # PIL raises several types for bad or truncated data
        raise BadInput(f"{where}: not a readable image ({e})") from None
    if img.size != (w, h):
        img = img.resize((w, h), Image.BILINEAR)
    return encode_pixels(np.asarray(img, dtype=np.uint8).reshape(h, w, c), t)


def _person_label(v: object, where: str) -> int:
    """A row's class index. The runner compares every label with the prediction and has no
    'unknown' label (a -1 would count as a wrong answer), so a null or negative ``person`` is
    refused instead of silently lowering the accuracy."""
    if isinstance(v, float) and v.is_integer():
        v = int(v)
    if not isinstance(v, int) or v < 0:
        raise BadInput(f"{where}: 'person' is {v!r}, expected a class index such as 0 or 1")
    return int(v)


def _slice_masks(table: pa.Table, columns: list[str]) -> dict[str, np.ndarray]:
    """Wake Vision's fine-grained benchmark columns (bright, far, female, ...) as boolean masks.
    Only integer or boolean columns holding nothing but 0/1 (nulls count as 0) are slices, so an
    id, a size or a text column never becomes one; empty slices are left out."""
    import pyarrow as pa

    slices: dict[str, np.ndarray] = {}
    for col in columns:
        typ = table.schema.field(col).type
        if col in _NON_SLICE or not (pa.types.is_integer(typ) or pa.types.is_boolean(typ)):
            continue
        vals = [0 if v is None else int(v) for v in table.column(col).to_pylist()]
        if set(vals) <= {0, 1} and any(vals):
            slices[col] = np.array(vals, dtype=bool)
    return slices


def _from_parquet(p: Path, t: Tensor, n: int | None) -> Dataset:
    """A Wake Vision parquet shard: ``image`` (encoded bytes), ``person`` (the label, optional)
    and 0/1 benchmark columns that become accuracy slices. Any bad row is a one-line BadInput
    naming the row, never a traceback."""
    table = _read_parquet(p, n)
    if "image" not in table.column_names:
        raise BadInput(f"{p}: no 'image' column (expected a Wake Vision parquet shard)")
    if table.num_rows == 0:
        raise BadInput(f"{p}: the shard has no rows")
    images = table.column("image").to_pylist()
    people = table.column("person").to_pylist() if "person" in table.column_names else None
    xs, ys = [], []
    for i, img in enumerate(images):
        where = f"{p}: row {i}"
        xs.append(_decode(_image_bytes(img, where), t, where))
        if people is not None:
            ys.append(_person_label(people[i], where))
    return Dataset(inputs=np.stack(xs), labels=np.array(ys, dtype=np.int64) if people is not None else None,
                   names=[f"row{i}" for i in range(len(xs))], slices=_slice_masks(table, table.column_names),
                   source=str(p))


def _from_npy(p: Path, t: Tensor, n: int | None) -> Dataset:
    try:
        x = np.load(p, allow_pickle=False)
    except Exception as e:  # truncated, not .npy, or an object array
        raise BadInput(f"{p}: not a readable .npy array ({str(e).splitlines()[0] if str(e) else type(e).__name__})") \
            from None
    if not isinstance(x, np.ndarray):
        raise BadInput(f"{p}: holds several arrays; give one .npy batch")
    if x.dtype != np.dtype(t.dtype):
        raise BadInput(f"{p}: holds {x.dtype}, the model input is {t.dtype}")
    if x.size % t.size:
        raise BadInput(f"{p}: shape {list(x.shape)} is not a batch of {list(t.shape)}")
    x = x.reshape((-1, *t.shape))
    return Dataset(inputs=x[:n] if n else x, source=str(p))


def augmented_folder(d: Path, t: Tensor, n: int, seed: int = 0) -> Dataset:
    """``n`` inputs from a small labelled folder: its images cycled, each pass after the first
    with a seeded random crop (70-100 % of each side), horizontal flip and brightness/contrast
    change (0.8-1.2x) before the model's resize. Labels carry over. For throughput and pipeline
    checks at scale; the accuracy of such a set says little about the model."""
    from PIL import Image, ImageEnhance

    files, labels = _folder_files(Path(d))
    h, w, c = image_hw_channels(t)
    rng = np.random.default_rng(seed)
    images = []
    for p in files:
        img = Image.open(p)
        img.load()
        images.append(img.convert("L" if c == 1 else "RGB"))
    xs, ys, names = [], [], []
    for k in range(n):
        i, variant = k % len(files), k // len(files)
        img = images[i]
        if variant:
            W, H = img.size
            cw, ch = int(W * rng.uniform(0.7, 1.0)), int(H * rng.uniform(0.7, 1.0))
            x0, y0 = int(rng.integers(0, W - cw + 1)), int(rng.integers(0, H - ch + 1))
            img = img.crop((x0, y0, x0 + cw, y0 + ch))
            if rng.random() < 0.5:
                img = img.transpose(Image.Transpose.FLIP_LEFT_RIGHT)
            img = ImageEnhance.Brightness(img).enhance(rng.uniform(0.8, 1.2))
            img = ImageEnhance.Contrast(img).enhance(rng.uniform(0.8, 1.2))
        if img.size != (w, h):
            img = img.resize((w, h), Image.BILINEAR)
        xs.append(encode_pixels(np.asarray(img, dtype=np.uint8).reshape(h, w, c), t))
        names.append(f"{files[i].name}#{variant}" if variant else files[i].name)
        if labels:
            ys.append(labels[files[i].name])
    return Dataset(inputs=np.stack(xs), labels=np.array(ys, dtype=np.int64) if labels else None, names=names,
                   source=f"{d}: {len(files)} images cycled to {n} with seeded random crop/flip/brightness "
                          f"(seed {seed})")


def random_dataset(t: Tensor, n: int, seed: int = 0) -> Dataset:
    rng = np.random.default_rng(seed)
    if t.dtype == "float32":
        x = rng.uniform(-1, 1, size=(n, *t.shape)).astype(np.float32)
    else:
        info = np.iinfo(np.dtype(t.dtype))
        x = rng.integers(info.min, info.max, size=(n, *t.shape), endpoint=True).astype(t.dtype)
    return Dataset(inputs=x, source=f"random (seed {seed})")


def load_dataset(spec: str | None, t: Tensor, n: int | None = None, augment: bool = False) -> Dataset:
    """spec: a folder, a .parquet, a .npy, or None / "random" for random inputs (n of them, default 16).
    ``augment``: a folder smaller than ``n`` is cycled with random crops/flips to reach ``n``."""
    if n is not None and n <= 0:
        raise BadInput(f"-n must be a positive number of inputs, not {n}")
    if spec in (None, "random"):
        return random_dataset(t, n or 16)
    p = Path(spec)
    if p.is_dir():
        if augment and n:
            return augmented_folder(p, t, n)
        return _from_folder(p, t, n)
    if not p.is_file():
        raise BadInput(f"{p}: no such data folder or file")
    if p.suffix == ".parquet":
        return _from_parquet(p, t, n)
    if p.suffix == ".npy":
        return _from_npy(p, t, n)
    raise BadInput(f"{p}: unknown data format (give a folder of images with labels.csv, a .parquet or a .npy)")
