"""tinyc.train.data: labelled training sets, holdout split, epoch order."""

from __future__ import annotations

import csv

import numpy as np
import pytest
from PIL import Image

from tests.support.paths import DATA
from tinyc.errors import BadInput
from tinyc.ir import QuantParams, Tensor
from tinyc.train.data import LabelledData, load_labelled, shuffled_order, split_holdout
from tinyc.validate.preprocess import load_image

# the vww_96_int8 / mobilenet convention: pixel / 255 quantized with scale 1/255, zero point -128
IMG8 = Tensor("x", (1, 8, 8, 3), "int8", QuantParams((1 / 255,), (-128,)))
IMG96 = Tensor("x", (1, 96, 96, 3), "int8", QuantParams((1 / 255,), (-128,)))


def _image(path, value: int, size=(12, 10)) -> None:
    """A flat image of one gray level (PNG lossless; JPEG near enough)."""
    Image.new("RGB", size, (value, value, value)).save(path)


@pytest.fixture
def folders(tmp_path):
    """cats: 3 PNG, dogs: 2 JPEG, mice: 1 PNG + 1 BMP, plus files that are not images."""
    root = tmp_path / "pets"
    for cls, files in {"cats": ["a.png", "b.png", "c.png"], "dogs": ["x.jpg", "y.jpeg"],
                       "mice": ["m1.png", "m2.bmp"]}.items():
        (root / cls).mkdir(parents=True)
        for i, f in enumerate(files):
            _image(root / cls / f, {"cats": 10, "dogs": 100, "mice": 200}[cls] + i)
        (root / cls / "notes.txt").write_text("not an image")
    (root / "dogs" / ".hidden").write_text("ignored")
    return root


def _levels(d: LabelledData) -> list[int]:
    """Each sample's gray level back as a pixel value (int8 input = pixel - 128)."""
    return [int(round(float(x.astype(np.int16).mean()))) + 128 for x in d.inputs]


# --- one folder per class ---------------------------------------------------------------------


def test_class_folders_sorted_round_robin(folders):
    d = load_labelled(folders, IMG8)
    assert d.classes == ["cats", "dogs", "mice"]
    assert d.inputs.shape == (7, 1, 8, 8, 3) and d.inputs.dtype == np.int8
    assert d.labels.dtype == np.int64
    # round robin over classes, each in file order: cats a, dogs x, mice m1, cats b, dogs y, mice m2, cats c
    assert d.labels.tolist() == [0, 1, 2, 0, 1, 2, 0]
    levels = _levels(d)
    assert [levels[i] for i in (0, 3, 6)] == [10, 11, 12]  # PNG: exact
    assert [levels[i] for i in (2, 5)] == [200, 201]  # PNG, BMP: exact
    assert all(abs(a - b) <= 2 for a, b in zip([levels[1], levels[4]], [100, 101]))  # JPEG
    assert str(folders) in d.source
    assert d.counts().tolist() == [3, 2, 2]


def test_images_are_encoded_like_validation(folders):
    d = load_labelled(folders, IMG8)
    assert np.array_equal(d.inputs[0], load_image(folders / "cats" / "a.png", IMG8))


def test_class_order_given(folders):
    d = load_labelled(folders, IMG8, classes=["mice", "cats", "dogs"])
    assert d.classes == ["mice", "cats", "dogs"]
    assert d.labels.tolist() == [0, 1, 2, 0, 1, 2, 1]
    assert _levels(d)[:2] == [200, 10]


def test_given_class_without_a_folder_has_no_samples(folders):
    """An evaluation set read with the training set's classes may lack some of them."""
    d = load_labelled(folders, IMG8, classes=["birds", "cats", "dogs", "mice"])
    assert d.classes == ["birds", "cats", "dogs", "mice"]
    assert d.counts().tolist() == [0, 3, 2, 2]
    assert d.labels.tolist() == [1, 2, 3, 1, 2, 3, 1]


def test_n_spreads_over_classes(folders):
    d = load_labelled(folders, IMG8, n=3)
    assert d.labels.tolist() == [0, 1, 2]
    d5 = load_labelled(folders, IMG8, n=5)
    assert d5.labels.tolist() == [0, 1, 2, 0, 1]
    full = load_labelled(folders, IMG8)
    assert np.array_equal(d5.inputs, full.inputs[:5])  # a smaller load is a prefix of a larger one
    assert len(load_labelled(folders, IMG8, n=100)) == 7


def test_progress_bar_does_not_change_the_result(folders, capsys):
    a = load_labelled(folders, IMG8, progress=True)
    b = load_labelled(folders, IMG8)
    assert np.array_equal(a.inputs, b.inputs) and np.array_equal(a.labels, b.labels)


def test_unknown_class_folder_is_bad_input(folders):
    with pytest.raises(BadInput, match=r"folder\(s\) mice are not among the classes"):
        load_labelled(folders, IMG8, classes=["cats", "dogs"])
    with pytest.raises(BadInput, match=r"duplicates"):
        load_labelled(folders, IMG8, classes=["cats", "cats", "mice"])


def test_folder_errors(tmp_path, folders):
    with pytest.raises(BadInput, match=r"no such data folder"):
        load_labelled(tmp_path / "missing", IMG8)
    (tmp_path / "empty").mkdir()
    with pytest.raises(BadInput, match=r"no images"):
        load_labelled(tmp_path / "empty", IMG8)
    (folders / "birds").mkdir()
    (folders / "birds" / "readme.txt").write_text("no pictures yet")
    with pytest.raises(BadInput, match=r"class folder 'birds' holds no images"):
        load_labelled(folders, IMG8)
    one = tmp_path / "one"
    (one / "cats").mkdir(parents=True)
    _image(one / "cats" / "a.png", 5)
    with pytest.raises(BadInput, match=r"at least 2"):
        load_labelled(one, IMG8)
    with pytest.raises(BadInput, match=r"positive number"):
        load_labelled(folders, IMG8, n=0)
    with pytest.raises(BadInput, match=r"unknown training data format"):
        load_labelled(folders / "cats" / "notes.txt", IMG8)


def test_unreadable_image_names_the_file(folders):
    bad = folders / "dogs" / "broken.jpg"
    bad.write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    with pytest.raises(BadInput, match=r"broken\.jpg: not a readable image"):
        load_labelled(folders, IMG8)


def test_non_image_input_tensor_is_bad_input(folders):
    t = Tensor("x", (1, 49, 10), "int8", QuantParams((0.1,), (0,)))
    with pytest.raises(BadInput, match=r"not an image"):
        load_labelled(folders, t)


# --- Wake Vision layout and .npz ---------------------------------------------------------------


def test_wake_vision_layout_synthetic(tmp_path):
    d = tmp_path / "wv"
    d.mkdir()
    rows = [("p0.png", 1), ("n0.png", 0), ("p1.png", 1), ("x.png", -1), ("p2.png", 1), ("n1.png", 0)]
    for i, (f, _) in enumerate(rows):
        _image(d / f, 20 * i)
    with open(d / "labels.csv", "w", newline="") as fh:
        w = csv.writer(fh)
        w.writerow(["filename", "person"])
        w.writerows(rows)
    data = load_labelled(d, IMG8)
    assert data.classes == ["no_person", "person"]
    # sorted files: n0 n1 p0 p1 p2 (x excluded, -1); round robin no_person / person
    assert data.labels.tolist() == [0, 1, 0, 1, 1]
    assert _levels(data) == [20, 0, 100, 40, 80]  # n0, p0, n1, p1, p2
    assert load_labelled(d, IMG8, n=2).labels.tolist() == [0, 1]


def test_npz(tmp_path):
    rng = np.random.default_rng(0)
    x = rng.integers(-128, 128, size=(6, 8, 8, 3), dtype=np.int8)  # batch axis of the tensor left out
    y = np.array([2, 0, 1, 0, 2, 1])
    p = tmp_path / "set.npz"
    np.savez(p, x=x, y=y, classes=np.array(["a", "b", "c"]))
    d = load_labelled(p, IMG8)
    assert d.classes == ["a", "b", "c"] and d.inputs.shape == (6, 1, 8, 8, 3)
    assert d.labels.tolist() == [0, 1, 2, 0, 1, 2]
    assert np.array_equal(d.inputs[0, 0], x[1]) and np.array_equal(d.inputs[2, 0], x[0])
    assert load_labelled(p, IMG8, n=4).labels.tolist() == [0, 1, 2, 0]
    # uint8 pixels are encoded as images are
    px = rng.integers(0, 256, size=(4, 8, 8, 3), dtype=np.uint8)
    np.savez(p, x=px, y=np.array([0, 1, 0, 1]))
    d = load_labelled(p, IMG8)
    assert d.classes == ["0", "1"]
    assert np.array_equal(d.inputs[0, 0], (px[0].astype(np.int16) - 128).astype(np.int8))


def test_npz_errors(tmp_path):
    p = tmp_path / "bad.npz"
    np.savez(p, inputs=np.zeros((2, 8, 8, 3), np.int8))
    with pytest.raises(BadInput, match=r"needs arrays 'x'"):
        load_labelled(p, IMG8)
    np.savez(p, x=np.zeros((2, 8, 8, 3), np.float32), y=np.array([0, 1]))
    with pytest.raises(BadInput, match=r"float32"):
        load_labelled(p, IMG8)
    np.savez(p, x=np.zeros((2, 8, 8, 3), np.int8), y=np.array([0, 1, 1]))
    with pytest.raises(BadInput, match=r"2 inputs .* 3 labels"):
        load_labelled(p, IMG8)
    np.savez(p, x=np.zeros((2, 8, 8, 3), np.int8), y=np.array([0, 3]))
    with pytest.raises(BadInput, match=r"outside the 2 classes"):
        load_labelled(p, IMG8, classes=["a", "b"])
    p.write_bytes(b"garbage")
    with pytest.raises(BadInput, match=r"not a readable \.npz"):
        load_labelled(p, IMG8)


# --- holdout and order ------------------------------------------------------------------------


def _fake(counts: list[int]) -> LabelledData:
    labels = np.concatenate([np.full(c, i) for i, c in enumerate(counts)]).astype(np.int64)
    inputs = np.arange(len(labels), dtype=np.int32).reshape(-1, 1)  # sample i holds i
    return LabelledData(inputs=inputs, labels=labels, classes=[f"c{i}" for i in range(len(counts))], source="fake")


def test_split_holdout_is_stratified_and_deterministic():
    d = _fake([50, 20, 10, 1])
    train, hold = split_holdout(d, 0.2, seed=3)
    assert hold.counts().tolist() == [10, 4, 2, 0]
    assert train.counts().tolist() == [40, 16, 8, 1]
    ids = np.concatenate([train.inputs[:, 0], hold.inputs[:, 0]])
    assert sorted(ids.tolist()) == list(range(len(d)))  # a partition
    assert np.array_equal(d.labels[hold.inputs[:, 0]], hold.labels)  # labels travel with their inputs
    again = split_holdout(d, 0.2, seed=3)[1]
    assert np.array_equal(again.inputs, hold.inputs) and np.array_equal(again.labels, hold.labels)
    other = split_holdout(d, 0.2, seed=4)[1]
    assert not np.array_equal(other.inputs, hold.inputs)
    assert train.classes == d.classes and "holdout" in hold.source


def test_split_holdout_keeps_one_each_side():
    d = _fake([2, 3])
    train, hold = split_holdout(d, 0.01)
    assert hold.counts().tolist() == [1, 1] and train.counts().tolist() == [1, 2]
    train, hold = split_holdout(d, 0.9)
    assert train.counts().tolist() == [1, 1]
    train, hold = split_holdout(d, 0.0)
    assert len(hold) == 0 and len(train) == 5
    with pytest.raises(BadInput):
        split_holdout(d, 1.0)


def test_split_keeps_sample_order():
    d = _fake([6, 6])
    train, hold = split_holdout(d, 0.5, seed=1)
    for part in (train, hold):
        assert np.all(np.diff(part.inputs[:, 0]) > 0)


def test_shuffled_order():
    o = shuffled_order(5, 3, seed=7)
    assert o.dtype == np.int64 and o.shape == (15,)
    for e in range(3):
        assert sorted(o[5 * e: 5 * e + 5].tolist()) == [0, 1, 2, 3, 4]
    rng = np.random.default_rng(7)
    assert np.array_equal(o, np.concatenate([rng.permutation(5) for _ in range(3)]))
    assert np.array_equal(o, shuffled_order(5, 3, seed=7))
    assert not np.array_equal(o, shuffled_order(5, 3, seed=8))
    assert shuffled_order(5, 0, seed=0).shape == (0,)
    with pytest.raises(BadInput):
        shuffled_order(0, 1, seed=0)


# --- the shared real data ---------------------------------------------------------------------


def test_cifar10_test_folder():
    folder = DATA / "cifar10" / "test"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (set TINYC_SHARED)")
    d = load_labelled(folder, IMG96, n=50)
    assert d.classes == ["airplane", "automobile", "bird", "cat", "deer", "dog", "frog", "horse", "ship", "truck"]
    assert d.inputs.shape == (50, 1, 96, 96, 3) and d.inputs.dtype == np.int8
    assert d.counts().tolist() == [5] * 10
    assert d.labels[:10].tolist() == list(range(10))
    assert np.array_equal(d.inputs[0], load_image(folder / "airplane" / "0000.jpg", IMG96))
    assert d.inputs.std() > 10  # real pictures, not blank


def test_wake_vision_test_folder():
    folder = DATA / "wake_vision_test_128"
    if not folder.is_dir():
        pytest.skip(f"{folder} not present (set TINYC_SHARED)")
    d = load_labelled(folder, IMG96)
    assert d.classes == ["no_person", "person"]
    assert d.inputs.shape == (10, 1, 96, 96, 3) and d.inputs.dtype == np.int8
    assert d.counts().tolist() == [5, 5]
    assert d.labels.tolist() == [0, 1] * 5
    assert np.array_equal(d.inputs[0], load_image(folder / "05_no_person_1236621277_ac89c339fb_o.png", IMG96))
