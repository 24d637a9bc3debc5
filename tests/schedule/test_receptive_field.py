"""The receptive-field arithmetic, checked against a direct 1-D computation (hypothesis).

For a chain of 1-D windows (any filter, stride, dilation, SAME/VALID padding) split into
parts: computing each part from only the input span `axis_plan` says it reads, padded as it
says, gives exactly that part of the unsplit result; the parts tile the output.
"""

from __future__ import annotations

import numpy as np
from hypothesis import given, settings
from hypothesis import strategies as st

from tinyc.ops._conv_math import out_size, padding_before
from tinyc.schedule.receptive_field import read_span, split


def conv1d(x: np.ndarray, f: int, s: int, d: int, pad_before: int, out: int) -> np.ndarray:
    """Sum of the taps inside x (outside is padding: zero contribution), with distinct weights."""
    w = np.arange(1, f + 1, dtype=np.int64) * 7 + 3
    y = np.zeros(out, dtype=np.int64)
    for o in range(out):
        for k in range(f):
            i = o * s - pad_before + k * d
            if 0 <= i < len(x):
                y[o] = (y[o] * 31 + w[k] * x[i]) % 1000003  # order-sensitive: a tap read from the wrong place shows
    return y


layer = st.tuples(st.integers(1, 7), st.integers(1, 3), st.integers(1, 3), st.sampled_from(["SAME", "VALID"]))


@settings(max_examples=300, deadline=None)
@given(size=st.integers(1, 60), layers=st.lists(layer, min_size=1, max_size=4), parts=st.integers(1, 8),
       seed=st.integers(0, 2**31))
def test_patches_reproduce_the_unsplit_chain(size: int, layers: list, parts: int, seed: int) -> None:
    rng = np.random.default_rng(seed)
    x = rng.integers(-50, 50, size=size).astype(np.int64)
    geo, n = [], size
    for f, s, d, pad in layers:
        o = out_size(pad, n, f, s, d)
        if o < 1:
            return
        geo.append((f, s, d, padding_before(s, d, n, f, o) if pad == "SAME" else 0, n, o))
        n = o
    full = x
    for f, s, d, p, _, o in geo:
        full = conv1d(full, f, s, d, p, o)
    if parts > n:
        return
    spans = split(n, parts)
    assert spans[0][0] == 0 and spans[-1][1] == n and all(a[1] == b[0] for a, b in zip(spans, spans[1:]))
    for lo, hi in spans:
        # backwards: which span of each tensor this part needs
        need = [(lo, hi)]
        reads = []
        for f, s, d, p, size_in, _ in reversed(geo):
            try:
                r = read_span(need[-1], f, s, d, p, size_in)
            except ValueError:
                return  # the part reads only padding: the search skips such grids
            reads.append(r)
            need.append((r.lo, r.hi))
        reads.reverse()
        # forwards on the patch only, padded only as read_span says
        cur = x[reads[0].lo:reads[0].hi]
        for (f, s, d, _p, _n, _o), r, out_span in zip(geo, reads, list(reversed(need[:-1]))):
            assert len(cur) == r.hi - r.lo
            out_len = out_span[1] - out_span[0]
            padded = len(cur) + r.pad_before + r.pad_after
            assert (padded - ((f - 1) * d + 1)) // s + 1 == out_len
            cur = conv1d(cur, f, s, d, r.pad_before, out_len)
        np.testing.assert_array_equal(cur, full[lo:hi])


@given(size=st.integers(1, 500), parts=st.integers(1, 64))
def test_split_is_a_near_even_tiling(size: int, parts: int) -> None:
    if parts > size:
        return
    spans = split(size, parts)
    lens = [b - a for a, b in spans]
    assert sum(lens) == size and max(lens) - min(lens) <= 1 and len(spans) == parts
