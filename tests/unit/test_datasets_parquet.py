"""`tinyc validate --data shard.parquet`: Wake Vision parquet shards as Hugging Face writes them
(an ``image`` struct {bytes, path} of JPEG bytes, ``person``, 0/1 benchmark columns, ``filename``)
become model inputs, labels and accuracy slices; bad shards are a one-line BadInput."""

from __future__ import annotations

import io
from pathlib import Path

import numpy as np
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
from PIL import Image

from tests.support.paths import DATA, MODELS
from tinyc.errors import BadInput
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.validate.datasets import load_dataset
from tinyc.validate.preprocess import encode_pixels

FOLDER = DATA / "wake_vision_test_128"
PNGS = sorted(FOLDER.glob("*.png"))
PERSON = [1 if "_person_" in p.name and "no_person" not in p.name else 0 for p in PNGS]
HF_IMAGE = pa.struct([("bytes", pa.binary()), ("path", pa.string())])  # datasets.Image's arrow type


@pytest.fixture(scope="module")
def vww():
    g = read_tflite(str(MODELS / "mlperf_tiny" / "vww_96_int8.tflite"))
    return g.t(g.inputs[0])  # int8 [1, 96, 96, 3]


@pytest.fixture(scope="module")
def gray():
    g = read_tflite(str(MODELS / "tflm" / "person_detect.tflite"))
    return g.t(g.inputs[0])  # int8 [1, 96, 96, 1]


def _encoded(path: Path, fmt: str) -> bytes:
    buf = io.BytesIO()
    Image.open(path).convert("RGB").save(buf, format=fmt, **({"quality": 90} if fmt == "JPEG" else {}))
    return buf.getvalue()


def _shard(tmp_path: Path, images: list, struct: bool = True, name: str = "shard.parquet", **cols) -> Path:
    """A shard laid out like Wake Vision's: image, person, benchmark columns, filename."""
    arrays = {"image": pa.array([{"bytes": b, "path": f"{k}.jpg"} for k, b in enumerate(images)], HF_IMAGE)
              if struct else pa.array(images, pa.binary())}
    arrays.update({k: v if isinstance(v, pa.Array) else pa.array(v) for k, v in cols.items()})
    arrays.setdefault("filename", pa.array([f"{k}.jpg" for k in range(len(images))]))
    out = tmp_path / name
    pq.write_table(pa.table(arrays), out)
    return out


def _pil_reference(raw: bytes, t) -> np.ndarray:
    _, h, w, c = t.shape
    img = Image.open(io.BytesIO(raw)).convert("L" if c == 1 else "RGB").resize((w, h), Image.BILINEAR)
    return encode_pixels(np.asarray(img, dtype=np.uint8).reshape(h, w, c), t)


def test_png_bytes_match_the_folder_loader_exactly(tmp_path, vww):
    """Same pixels, same preprocessing: the parquet and folder loaders must agree byte for byte."""
    shard = _shard(tmp_path, [_encoded(p, "PNG") for p in PNGS], person=PERSON)
    pq_data, folder = load_dataset(str(shard), vww), load_dataset(str(FOLDER), vww)
    assert pq_data.inputs.shape == (10, 1, 96, 96, 3) and pq_data.inputs.dtype == np.int8
    assert np.array_equal(pq_data.inputs, folder.inputs)
    assert np.array_equal(pq_data.labels, folder.labels) and pq_data.labels.dtype == np.int64
    assert pq_data.names == [f"row{i}" for i in range(10)] and pq_data.source == str(shard)


@pytest.mark.parametrize("struct", [True, False], ids=["hf_struct", "plain_binary"])
def test_jpeg_decoded_resized_and_quantized(tmp_path, vww, struct):
    jpegs = [_encoded(p, "JPEG") for p in PNGS]
    data = load_dataset(str(_shard(tmp_path, jpegs, struct=struct, person=PERSON)), vww)
    for x, raw in zip(data.inputs, jpegs):
        assert np.array_equal(x, _pil_reference(raw, vww))
    # JPEG costs a little, but it is still the same picture as the folder's PNG
    folder = load_dataset(str(FOLDER), vww)
    assert np.abs(data.inputs.astype(int) - folder.inputs.astype(int)).mean() < 4
    assert data.labels.tolist() == PERSON


def test_grayscale_model_input(tmp_path, gray):
    jpegs = [_encoded(p, "JPEG") for p in PNGS[:3]]
    data = load_dataset(str(_shard(tmp_path, jpegs, person=PERSON[:3])), gray)
    assert data.inputs.shape == (3, 1, 96, 96, 1)
    assert np.array_equal(data.inputs[2], _pil_reference(jpegs[2], gray))


def test_n_limits_rows(tmp_path, vww):
    shard = _shard(tmp_path, [_encoded(p, "JPEG") for p in PNGS], person=PERSON, far=[1, 0] * 5)
    data = load_dataset(str(shard), vww, 4)
    assert len(data.inputs) == 4 and data.labels.tolist() == PERSON[:4] and len(data.names) == 4
    assert data.slices["far"].tolist() == [True, False, True, False]
    assert len(load_dataset(str(shard), vww, 50).inputs) == 10


def test_slices_only_from_01_columns(tmp_path, vww):
    n = 4
    shard = _shard(
        tmp_path, [_encoded(p, "JPEG") for p in PNGS[:n]], person=[1, 0, 1, 0],
        bright=[1, 1, 0, 0], dark=[0, 0, 0, 1], near=pa.array([1, None, 0, 1], pa.int64()),
        predominantly_female=pa.array([True, False, False, False]),
        young=[0, 0, 0, 0],                 # an empty slice is left out
        width=[640, 480, 640, 1],           # numeric but not 0/1
        score=[1.0, 0.0, 1.0, 0.0],         # float, not a benchmark flag
        note=["1", "0", "1", "0"],          # text that looks like 0/1
        clean_label=[1, 0, 1, 0],           # a label, not a slice
    )
    data = load_dataset(str(shard), vww)
    s = data.slices
    assert set(s) == {"bright", "dark", "near", "predominantly_female"}
    assert all(m.shape == data.labels.shape for m in s.values())  # the runner indexes labels[mask]
    assert s["bright"].tolist() == [True, True, False, False] and s["bright"].dtype == bool
    assert s["near"].tolist() == [True, False, False, True]  # a null is "not in the slice"
    assert s["dark"].tolist() == [False, False, False, True]


def test_no_person_column_gives_no_labels(tmp_path, vww):
    data = load_dataset(str(_shard(tmp_path, [_encoded(p, "JPEG") for p in PNGS[:2]], bright=[1, 0])), vww)
    assert data.labels is None and len(data.inputs) == 2 and set(data.slices) == {"bright"}


def _bad(match: str, spec, t, n=None):
    with pytest.raises(BadInput, match=match) as e:
        load_dataset(str(spec), t, n)
    assert "\n" not in str(e.value)


def test_not_a_parquet_file(tmp_path, vww):
    p = tmp_path / "x.parquet"
    p.write_bytes(np.random.default_rng(0).bytes(4096))
    _bad("x.parquet: not a readable parquet file", p, vww)
    (tmp_path / "empty.parquet").write_bytes(b"")
    _bad("not a readable parquet file", tmp_path / "empty.parquet", vww)


def test_corrupt_image_names_the_row(tmp_path, vww):
    jpegs = [_encoded(p, "JPEG") for p in PNGS[:3]]
    shard = _shard(tmp_path, [jpegs[0], b"\xff\xd8 not really a jpeg", jpegs[2]], person=[1, 0, 1])
    _bad(r"row 1: not a readable image", shard, vww)
    truncated = _shard(tmp_path, [jpegs[0], jpegs[1][: len(jpegs[1]) // 2]], name="t.parquet", person=[1, 0])
    _bad(r"row 1: not a readable image", truncated, vww)
    assert len(load_dataset(str(shard), vww, 1).inputs) == 1  # rows past n are never decoded


def test_null_person_names_the_row(tmp_path, vww):
    """The runner has no 'unknown' label (a -1 would count as wrong), so a null is refused."""
    jpegs = [_encoded(p, "JPEG") for p in PNGS[:3]]
    shard = _shard(tmp_path, jpegs, person=pa.array([1, None, 0], pa.int64()))
    _bad(r"row 1: 'person' is None", shard, vww)


def test_empty_shard(tmp_path, vww):
    shard = tmp_path / "empty.parquet"
    pq.write_table(pa.table({"image": pa.array([], HF_IMAGE), "person": pa.array([], pa.int64())}), shard)
    _bad("empty.parquet: the shard has no rows", shard, vww)


def test_image_cell_without_bytes(tmp_path, vww):
    jpeg = _encoded(PNGS[0], "JPEG")
    path_only = pa.array([{"bytes": jpeg, "path": "a.jpg"}, {"bytes": None, "path": "b.jpg"}], HF_IMAGE)
    shard = tmp_path / "s.parquet"
    pq.write_table(pa.table({"image": path_only, "person": [1, 0]}), shard)
    _bad(r"row 1: the image cell has no image bytes \(only a path, 'b.jpg'\)", shard, vww)
    null_cell = _shard(tmp_path, [jpeg, None], struct=False, name="n.parquet", person=[1, 0])
    _bad(r"row 1: the image cell has no image bytes$", null_cell, vww)
    strings = tmp_path / "str.parquet"
    pq.write_table(pa.table({"image": ["a.jpg"], "person": [1]}), strings)
    _bad(r"row 0: the image cell has no image bytes", strings, vww)
    no_image = tmp_path / "noimg.parquet"
    pq.write_table(pa.table({"person": [1]}), no_image)
    _bad("no 'image' column", no_image, vww)

