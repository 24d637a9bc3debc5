"""Accuracy per Wake Vision benchmark slice: device and TFLM side by side, with the slice's size."""

from __future__ import annotations

import numpy as np

from tinyc.validate.runner import ValidationResult, accuracy_by_slice


def test_accuracy_overall_and_per_slice_with_counts() -> None:
    labels = np.array([1, 1, 0, 0, 1, 0])
    dev = np.array([1, 0, 0, 1, 1, 0])      # 4/6
    ref = np.array([1, 1, 0, 1, 1, 0])      # 5/6
    slices = {"far": np.array([1, 1, 0, 0, 0, 0], bool), "dark": np.array([0, 0, 1, 1, 1, 1], bool),
              "empty": np.zeros(6, bool)}
    acc, acc_ref, per = accuracy_by_slice(dev, ref, labels, slices)
    assert (acc, acc_ref) == (4 / 6, 5 / 6)
    assert per == {"far": {"inputs": 2, "accuracy": 0.5, "accuracy_reference": 1.0},
                   "dark": {"inputs": 4, "accuracy": 0.75, "accuracy_reference": 0.75}}


def test_slice_lines_show_both_accuracies_and_the_count() -> None:
    res = ValidationResult(model="m.tflite", board="b", emulated=True, inputs=6, mismatches=0, first_mismatch=None,
                           top1_agreement=1.0, accuracy=0.5, accuracy_reference=0.5,
                           slices={"far": {"inputs": 2, "accuracy": 0.5, "accuracy_reference": 1.0}})
    line = next(ln for ln in res.text().splitlines() if "far" in ln)
    assert "50.0 %" in line and "TFLM: 100.0 %" in line and "n=2" in line
    assert res.to_json()["accuracy_slices"]["far"]["inputs"] == 2
