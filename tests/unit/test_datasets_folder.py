"""Validation data other than parquet: image folders with Wake Vision label CSVs (`person` or the
cleaned `clean_label`, -1/-2 excluded), .npy batches, and clear errors for bad files."""

from __future__ import annotations

import shutil
from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import DATA, MODELS
from tinyc.errors import BadInput
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.validate.datasets import load_dataset

FOLDER = DATA / "wake_vision_test_128"
PNGS = sorted(FOLDER.glob("*.png"))


@pytest.fixture(scope="module")
def vww():
    g = read_tflite(str(MODELS / "mlperf_tiny" / "vww_96_int8.tflite"))
    return g.t(g.inputs[0])


def _folder(tmp_path: Path, header: str, rows: list[str]) -> Path:
    d = tmp_path / "imgs"
    d.mkdir()
    for p in PNGS[:4]:
        shutil.copy(p, d / p.name)
    (d / "labels.csv").write_text(header + "\n" + "\n".join(rows) + "\n")
    return d


def test_clean_label_csv_and_excluded_rows(tmp_path: Path, vww) -> None:
    """Wake Vision's cleaned CSVs: filename, original_label, clean_label; -1 (exclude) and -2
    (depiction) are left out of the data set."""
    names = [p.name for p in PNGS[:4]]
    d = _folder(tmp_path, "filename,original_label,clean_label",
                [f"{names[0]},1,1", f"{names[1]},1,0", f"{names[2]},0,-1", f"{names[3]},0,-2"])
    ds = load_dataset(str(d), vww)
    assert ds.names == names[:2] and ds.labels.tolist() == [1, 0]
    assert ds.inputs.shape == (2, *vww.shape) and ds.inputs.dtype == np.int8


def test_the_shared_folder_reads_its_person_column(vww) -> None:
    ds = load_dataset(str(FOLDER), vww, 6)
    assert len(ds.inputs) == 6 and set(ds.labels.tolist()) <= {0, 1}


def test_a_label_that_is_not_a_number_names_file_and_value(tmp_path: Path, vww) -> None:
    d = _folder(tmp_path, "filename,person", [f"{PNGS[0].name},yes"])
    with pytest.raises(BadInput, match=r"person 'yes' for '00_.*' is not an integer label"):
        load_dataset(str(d), vww)


def test_npy_batch_and_its_errors(tmp_path: Path, vww) -> None:
    x = np.random.default_rng(0).integers(-128, 128, (5, *vww.shape[1:]), dtype=np.int8)
    np.save(tmp_path / "x.npy", x)
    ds = load_dataset(str(tmp_path / "x.npy"), vww, 3)
    assert ds.inputs.shape == (3, *vww.shape) and np.array_equal(ds.inputs[:, 0], x[:3]) and ds.labels is None
    np.save(tmp_path / "f.npy", x.astype(np.float32))
    with pytest.raises(BadInput, match="holds float32, the model input is int8"):
        load_dataset(str(tmp_path / "f.npy"), vww)
    np.save(tmp_path / "odd.npy", x[:, :5])
    with pytest.raises(BadInput, match="is not a batch of"):
        load_dataset(str(tmp_path / "odd.npy"), vww)
    (tmp_path / "bad.npy").write_bytes(b"\x93NUMPY garbage")
    with pytest.raises(BadInput, match="not a readable .npy array"):
        load_dataset(str(tmp_path / "bad.npy"), vww)


@pytest.mark.parametrize("n", [0, -1])
def test_n_must_be_positive(vww, n: int) -> None:
    with pytest.raises(BadInput, match="-n must be a positive number"):
        load_dataset("random", vww, n)
