"""TFLM goldens for a table of op test cases, computed in one reference worker, and the
byte-for-byte comparison every op test uses."""

from __future__ import annotations

from typing import Any, Mapping, Sequence

import numpy as np

from tinyc.validate.reference import run_many


def tflm_goldens(cases: Mapping[str, Any]) -> dict[str, list[np.ndarray]]:
    """cases: name -> object with `.model` and `.inputs`; one TFLM worker runs them all."""
    names = list(cases)
    results = run_many("tflm", [(cases[n].model, list(cases[n].inputs)) for n in names])
    out = {}
    for n, r in zip(names, results):
        if isinstance(r, Exception):
            raise r
        out[n] = r
    return out


def assert_outputs_equal(got: Sequence[np.ndarray], want: Sequence[np.ndarray]) -> None:
    """Every output: same dtype, same shape, every byte equal."""
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert g.dtype == w.dtype and g.shape == w.shape, (g.dtype, g.shape, w.dtype, w.shape)
        np.testing.assert_array_equal(g, w)
