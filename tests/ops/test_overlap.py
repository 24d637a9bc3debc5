"""Overlapped buffers, proven by running the kernels: every op with an OverlapSpec runs with its
output placed over its input at exactly the distance the spec proves (below the input, and
above it for the memmove-like kernels that then write in descending order), under ASan and
UBSan, and must give TFLM's bytes. One negative case checks that a placement one step closer
than proven is caught by the verifier and really corrupts the output.
"""

from __future__ import annotations

import dataclasses
import os
import subprocess
import tempfile
from pathlib import Path

import numpy as np
import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.ops.test_conv import Branch, model, random_inputs
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.codegen.emit import build_program
from tinyc.compiler import Compiled, compile_model
from tinyc.errors import InternalError
from tinyc.memory.lifetimes import buffers
from tinyc.memory.overlap import Overlap, find_in_place, find_overlaps
from tinyc.memory.verify import verify
from tinyc.ops._conv_math import out_size, padding_before
from tinyc.ops.base import elementwise_overlap, window_overlap
from tinyc.target.host import build_host


def _single_rule(c: Compiled) -> Overlap:
    rules = find_overlaps(c.graph, buffers(c.graph, c.calls), c.plan.alignment)
    assert len(rules) == 1, rules
    return rules[0]


def _own_kernels(c: Compiled) -> Compiled:
    """c with every op's own kernel (lower()), whatever variant the planner chose."""
    from tinyc.compiler import lower
    calls = lower(c.graph)[0]
    return dataclasses.replace(c, calls=calls, plan=dataclasses.replace(c.plan, buffers=tuple(buffers(c.graph, calls))))


def _run_with_offsets(c: Compiled, offsets: dict[str, int], rule: Overlap | None,
                      inputs: list[np.ndarray]) -> list[np.ndarray]:
    """Build the compiled model with these buffer offsets (checked by the verifier) under
    ASan + UBSan and run it on the batch. The plan's buffers must be the ones of c.calls."""
    plan = c.plan
    arena = max(offsets[b.name] + b.size for b in plan.buffers)
    arena = -(-arena // plan.alignment) * plan.alignment
    verify(plan.buffers, offsets, plan.alignment, (rule,) if rule else ())
    plan = dataclasses.replace(plan, offsets=offsets, arena_bytes=arena, overlaps=(rule,) if rule else (),
                               calls=c.calls)
    prog = build_program(c.graph, c.calls, plan, c.macs, prefix=c.program.prefix)
    c = dataclasses.replace(c, plan=plan, program=prog)
    g = c.graph
    with tempfile.TemporaryDirectory(prefix="tinyc-overlap") as td:
        exe = build_host(c, Path(td), sanitize=True)
        blob = np.concatenate([np.ascontiguousarray(x).reshape(len(x), -1).view(np.uint8) for x in inputs], axis=1)
        (Path(td) / "in.bin").write_bytes(blob.tobytes())
        env = dict(os.environ, ASAN_OPTIONS="detect_leaks=0", UBSAN_OPTIONS="print_stacktrace=1")
        r = subprocess.run([str(exe), "in.bin", "out.bin"], cwd=td, capture_output=True, text=True, env=env,
                           timeout=300)
        assert r.returncode == 0, r.stderr[-3000:]
        raw = np.frombuffer((Path(td) / "out.bin").read_bytes(), dtype=np.uint8)
    outs = [g.t(n) for n in g.outputs]
    raw = raw.reshape(len(inputs[0]), -1)
    result, pos = [], 0
    for t in outs:
        result.append(raw[:, pos:pos + t.nbytes].copy().view(np.dtype(t.dtype)).reshape((-1, *t.shape)))
        pos += t.nbytes
    return result


def _placements(c: Compiled, rule: Overlap) -> dict[str, dict[str, int]]:
    """Y exactly `distance` below X, and (memmove-like kernels) exactly `above` above it."""
    out = {"below": {rule.y: max(0, -rule.distance), rule.x: max(0, rule.distance)}}
    if rule.above is not None:
        out["above"] = {rule.x: 0, rule.y: rule.above}
    sizes = {b.name: b.size for b in c.plan.buffers}
    for offs in out.values():
        lo, hi = min(offs[rule.x], offs[rule.y]), max(offs[rule.x] + sizes[rule.x], offs[rule.y] + sizes[rule.y])
        assert hi - lo < sizes[rule.x] + sizes[rule.y], "the placement does not overlap: nothing is tested"
    return out


def _check_overlapped(m: bytes, inputs: list[np.ndarray], want_above: bool) -> None:
    c = _own_kernels(compile_model(m))
    rule = _single_rule(c)
    assert (rule.above is not None) == want_above, rule
    want = run_tflm(m, inputs)
    for where, offs in _placements(c, rule).items():
        got = _run_with_offsets(c, offs, rule, inputs)
        for g_, w_ in zip(got, want):
            np.testing.assert_array_equal(g_, w_, err_msg=f"output {where} its input at {offs} differs from TFLM")


WINDOWS = [
    Branch(kernel=(1, 1), out_c=24),  # 1x1 expansion: the input in the output's tail
    Branch(kernel=(1, 1), out_c=2),  # 1x1 projection
    Branch(kernel=(3, 3), out_c=6, stride=(2, 2)),
    Branch(kernel=(3, 3), out_c=4, dilation=(2, 1), padding="VALID"),
    Branch(kernel=(3, 3), out_c=4, groups=2),
    Branch(depth_multiplier=1, kernel=(3, 3)),
    Branch(depth_multiplier=1, kernel=(3, 3), stride=(2, 2)),
    Branch(depth_multiplier=1, kernel=(7, 7), stride=(2, 2), act="RELU6"),
    Branch(depth_multiplier=2, kernel=(5, 5), padding="VALID"),
    Branch(depth_multiplier=1, kernel=(3, 3), dilation=(2, 2)),
]


@pytest.mark.parametrize("br", WINDOWS, ids=str)
def test_conv_and_depthwise_output_over_input_at_proven_distances_matches_tflm(br: Branch) -> None:
    shape = (1, 10, 9, 4)
    m = model([br], shape, seed=3)
    _check_overlapped(m, [random_inputs(shape, 6, seed=5)], want_above=True)


# --- depthwise in place, channel by channel (the exact rule) ----------------------------------

def _channel_variant(c: Compiled) -> tuple[Compiled, Overlap, str]:
    """c running its one depthwise conv with the channel-by-channel kernel: the exact rule and
    the scratch buffer's name."""
    opts = find_in_place(c.graph, buffers(c.graph, c.calls), c.plan.alignment)
    assert len(opts) == 1, opts
    calls = list(c.calls)
    calls[opts[0].step] = opts[0].in_place.call
    bufs = buffers(c.graph, calls)
    (scratch,) = [b for b in bufs if b.name.startswith("scratch")]
    c = dataclasses.replace(c, calls=tuple(calls), plan=dataclasses.replace(c.plan, buffers=tuple(bufs)))
    return c, opts[0].rule, scratch.name


def _check_channel_in_place(m: bytes, inputs: list[np.ndarray]) -> None:
    """Output exactly over the input, the temp right above both (and, to catch a kernel that
    reads or writes past its temp, nothing else)."""
    c, rule, scratch = _channel_variant(compile_model(m))
    assert c.calls[0].function in ("tinyc_depthwise_conv2d_s8_channels", "tinyc_depthwise_conv2d_s8_3x3_channels")
    sizes = {b.name: b.size for b in c.plan.buffers}
    top = -(-max(sizes[rule.x], sizes[rule.y]) // c.plan.alignment) * c.plan.alignment
    assert sizes[scratch] == inputs[0].shape[1] * inputs[0].shape[2] * inputs[0].shape[3]  # N*H*W
    offs = {rule.x: 0, rule.y: 0, scratch: top}
    want = run_tflm(m, inputs)
    got = _run_with_offsets(c, offs, rule, inputs)
    for g_, w_ in zip(got, want):
        np.testing.assert_array_equal(g_, w_, err_msg="depthwise in place, channel by channel, differs from TFLM")
        assert len(np.unique(w_)) > 4, "degenerate test"


CHANNEL_CASES = [
    Branch(depth_multiplier=1, kernel=(3, 3)),
    Branch(depth_multiplier=1, kernel=(5, 5), act="RELU6"),
    Branch(depth_multiplier=1, kernel=(7, 7), padding="VALID", act="RELU"),
    Branch(depth_multiplier=1, kernel=(3, 3), stride=(2, 2)),
    Branch(depth_multiplier=1, kernel=(5, 5), stride=(2, 2), padding="VALID", per_channel=False),
    Branch(depth_multiplier=1, kernel=(3, 2), stride=(2, 1), dilation=(1, 2), bias=False),
    Branch(depth_multiplier=1, kernel=(3, 3), dilation=(2, 2), act="RELU_N1_TO_1", out_gain=0.05),
    Branch(depth_multiplier=1, kernel=(1, 1), out_zp=-128, act="RELU"),
    # the 3x3 channel-by-channel kernel: words of four columns, zero-point columns and rows at the borders
    Branch(depth_multiplier=1, kernel=(3, 3), padding="VALID", act="RELU6", out_zp=-128),
    Branch(depth_multiplier=1, kernel=(3, 3), per_channel=False, bias=False),
    Branch(depth_multiplier=1, kernel=(3, 3), negative_scales=True, act="RELU"),
    Branch(depth_multiplier=1, kernel=(3, 3), stride=(2, 2), padding="VALID", out_zp=-40),
]


@pytest.mark.parametrize("shape", [(1, 10, 9, 5), (2, 5, 3, 4)], ids=str)
@pytest.mark.parametrize("br", CHANNEL_CASES, ids=str)
def test_depthwise_channel_by_channel_exactly_over_its_input_matches_tflm(br: Branch, shape) -> None:
    """(1, 10, 9, 5): the 3x3 kernel's words inside and at both ends of a row; (2, 5, 3, 4): two
    images, rows narrower than a word."""
    if shape[2] < 5 and br.padding == "VALID" and br.kernel[1] > shape[2]:
        pytest.skip("window wider than the input")
    _check_channel_in_place(model([br], shape, seed=11), [random_inputs(shape, 5, seed=12)])


@pytest.mark.parametrize("br", [b for b in CHANNEL_CASES if b.kernel == (3, 3) and b.dilation == b.stride == (1, 1)],
                         ids=str)
def test_depthwise_3x3_channel_kernel_is_chosen_and_the_reference_layout_one_still_matches(
        br: Branch, monkeypatch: pytest.MonkeyPatch, tmp_path) -> None:
    import tinyc.ops.depthwise_conv as dwc

    shape = (1, 7, 6, 5)
    m = model([br], shape, seed=13)
    assert _channel_variant(compile_model(m))[0].calls[0].function == "tinyc_depthwise_conv2d_s8_3x3_channels"
    monkeypatch.setattr(dwc, "FAST_3X3", False)
    _check_channel_in_place(m, [random_inputs(shape, 4, seed=14)])


@settings(derandomize=True, max_examples=6, deadline=None, database=None,
          suppress_health_check=list(HealthCheck))
@given(st.integers(1, 12), st.integers(1, 12), st.integers(1, 9), st.integers(1, 5), st.integers(1, 5),
       st.integers(1, 3), st.integers(1, 3), st.sampled_from(["SAME", "VALID"]),
       st.sampled_from(["NONE", "RELU", "RELU6"]), st.integers(0, 1000))
def test_depthwise_channel_by_channel_random_geometry_matches_tflm(h, w, c, kh, kw, sh, sw, padding, act,
                                                                   seed) -> None:
    if padding == "VALID" and (kh > h or kw > w):
        padding = "SAME"
    shape = (1, h, w, c)
    br = Branch(depth_multiplier=1, kernel=(kh, kw), stride=(sh, sw), padding=padding, act=act)
    m = model([br], shape, seed=seed)
    c_, rule, scratch = _channel_variant(compile_model(m))
    sizes = {b.name: b.size for b in c_.plan.buffers}
    top = -(-max(sizes[rule.x], sizes[rule.y]) // c_.plan.alignment) * c_.plan.alignment
    inputs = [random_inputs(shape, 3, seed=seed + 1)]
    got = _run_with_offsets(c_, {rule.x: 0, rule.y: 0, scratch: top}, rule, inputs)
    np.testing.assert_array_equal(got[0], run_tflm(m, inputs)[0], err_msg=f"{br} on {shape}")


def test_depthwise_channel_by_channel_one_step_off_is_rejected() -> None:
    shape = (1, 6, 6, 4)
    c, rule, scratch = _channel_variant(compile_model(model([Branch(depth_multiplier=1)], shape, seed=3)))
    align = c.plan.alignment
    for dx in (align, -align):
        with pytest.raises(InternalError, match="overlap"):
            verify(c.plan.buffers, {rule.x: max(dx, 0), rule.y: max(-dx, 0), scratch: 512}, align, (rule,))


def test_conv_with_two_images_over_its_input_matches_tflm() -> None:
    shape = (2, 6, 7, 4)
    m = model([Branch(kernel=(3, 3), out_c=8, stride=(2, 1))], shape, seed=4)
    _check_overlapped(m, [random_inputs(shape, 4, seed=6)], want_above=True)


def _unary_model(kind: str, in_dtype: str, out_dtype: str, shape: tuple[int, ...],
                 out_q: tuple[float, int] = (0.04, 5), options: dict | None = None) -> bytes:
    b = ModelBuilder()
    q_in = dict(scale=0.05, zero_point=-3) if in_dtype != "float32" else {}
    q_out = dict(scale=out_q[0], zero_point=out_q[1]) if out_dtype != "float32" else {}
    x = b.input("x", shape=shape, dtype=in_dtype, **q_in)
    y = b.tensor("y", shape=shape, dtype=out_dtype, **q_out)
    b.op(kind, inputs=[x], outputs=[y], options=options or {})
    b.output(y)
    return b.build()


@pytest.mark.parametrize("kind, src, dst", [("QUANTIZE", "float32", "int8"), ("QUANTIZE", "int8", "int8"),
                                            ("DEQUANTIZE", "int8", "float32")])
def test_quantize_output_over_its_input_matches_tflm(kind: str, src: str, dst: str) -> None:
    shape = (1, 5, 7, 3)
    rng = np.random.default_rng(7)
    x = rng.uniform(-7, 7, (6, *shape)).astype(np.float32) if src == "float32" else random_inputs(shape, 6, 8)
    _check_overlapped(_unary_model(kind, src, dst, shape), [x], want_above=False)


@pytest.mark.parametrize("kind, out_q, options", [
    ("RELU", (0.03, -128), None), ("RELU6", (0.05, -3), None),  # RELU_N1_TO_1: same kernel as RELU, not in TFLM
    ("LEAKY_RELU", (0.04, 2), dict(alpha=0.1)), ("LOGISTIC", (1 / 256, -128), None),
    ("TANH", (1 / 128, 0), None), ("HARD_SWISH", (0.03, -10), None),
])
def test_activation_output_over_its_input_matches_tflm(kind: str, out_q: tuple[float, int], options) -> None:
    shape = (1, 4, 6, 5)
    _check_overlapped(_unary_model(kind, "int8", "int8", shape, out_q, options), [random_inputs(shape, 6, 8)],
                      want_above=False)


def test_expansion_closer_than_proven_is_rejected_and_really_corrupts() -> None:
    shape = (1, 6, 6, 4)
    m = model([Branch(kernel=(1, 1), out_c=12)], shape, seed=3)
    inputs = [random_inputs(shape, 4, seed=5)]
    c = _own_kernels(compile_model(m))
    rule = _single_rule(c)
    align = c.plan.alignment
    close = {rule.y: 0, rule.x: rule.distance - align}
    with pytest.raises(InternalError, match="overlap"):
        verify(c.plan.buffers, close, align, (rule,))
    # Build it anyway (with the rule loosened so the verifier lets it through): wrong bytes.
    loose = dataclasses.replace(rule, distance=rule.distance - align)
    got = _run_with_offsets(c, close, loose, inputs)
    assert not np.array_equal(got[0], run_tflm(m, inputs)[0])


@pytest.mark.parametrize("kind, opts", [
    ("MAX_POOL_2D", dict(filter_height=3, filter_width=3, stride_h=2, stride_w=2, padding="SAME")),
    ("AVERAGE_POOL_2D", dict(filter_height=2, filter_width=3, stride_h=1, stride_w=1, padding="VALID")),
])
def test_pooling_output_over_its_input_matches_tflm(kind: str, opts: dict) -> None:
    shape = (1, 9, 8, 5)
    b = ModelBuilder()
    x = b.input("x", shape=shape, dtype="int8", scale=0.05, zero_point=-3)
    oh = -(-9 // opts["stride_h"]) if opts["padding"] == "SAME" else (9 - opts["filter_height"]) // opts["stride_h"] + 1
    ow = -(-8 // opts["stride_w"]) if opts["padding"] == "SAME" else (8 - opts["filter_width"]) // opts["stride_w"] + 1
    y = b.tensor("y", shape=(1, oh, ow, 5), dtype="int8", scale=0.05, zero_point=-3)
    b.op(kind, inputs=[x], outputs=[y], options=dict(opts, fused_activation_function="NONE"))
    b.output(y)
    _check_overlapped(b.build(), [random_inputs(shape, 6, seed=9)], want_above=False)


def test_add_output_over_its_first_input_matches_tflm() -> None:
    shape = (1, 6, 5, 7)
    b = ModelBuilder()
    x = b.input("x", shape=shape, dtype="int8", scale=0.05, zero_point=-3)
    w = b.const("k", np.arange(7, dtype=np.int8).reshape(1, 1, 1, 7), scale=0.1, zero_point=0)
    y = b.tensor("y", shape=shape, dtype="int8", scale=0.08, zero_point=2)
    b.op("ADD", inputs=[x, w], outputs=[y], options=dict(fused_activation_function="RELU"))
    b.output(y)
    _check_overlapped(b.build(), [random_inputs(shape, 6, seed=10)], want_above=False)


# --- the proof itself, by simulation -----------------------------------------------------------
# window_overlap derives the distances from the kernels' access order. Here that order is
# replayed in Python (every read and write of conv.c / depthwise_conv.c, pixel by pixel,
# ascending or descending) with the output placed exactly at the proven distance, on random
# geometries: no read may see a byte the kernel has already overwritten.

def _replay_window(n: int, ih: int, iw: int, ic: int, oh: int, ow: int, oc: int, k: tuple[int, int],
                   s: tuple[int, int], d: tuple[int, int], pad: tuple[int, int], depthwise: bool,
                   off_x: int, off_y: int) -> bool:
    """True when the kernel, with its output at off_y and input at off_x, never reads a byte it
    has overwritten. Descending when the output starts above the input, as the kernels do."""
    clobbered: set[int] = set()
    pixels = [(b, y, x) for b in range(n) for y in range(oh) for x in range(ow)]
    if off_y > off_x:
        pixels.reverse()
    for b, y, x in pixels:
        for c in range(oc):
            chans = [c * ic // oc] if depthwise else range(ic)
            for fy in range(k[0]):
                iy = y * s[0] - pad[0] + fy * d[0]
                for fx in range(k[1]):
                    ix = x * s[1] - pad[1] + fx * d[1]
                    if 0 <= iy < ih and 0 <= ix < iw:
                        for ch in chans:
                            if off_x + ((b * ih + iy) * iw + ix) * ic + ch in clobbered:
                                return False
            clobbered.add(off_y + ((b * oh + y) * ow + x) * oc + c)
    return True


@st.composite
def windows_geometry(draw: st.DrawFn):
    n = draw(st.integers(1, 2))
    ih, iw, ic = draw(st.integers(1, 7)), draw(st.integers(1, 7)), draw(st.integers(1, 3))
    depthwise = draw(st.booleans())
    oc = ic * draw(st.integers(1, 2)) if depthwise else draw(st.integers(1, 6))
    k = (draw(st.integers(1, 4)), draw(st.integers(1, 4)))
    s = (draw(st.integers(1, 3)), draw(st.integers(1, 3)))
    d = (draw(st.integers(1, 2)), draw(st.integers(1, 2)))
    padding = draw(st.sampled_from(["SAME", "VALID"]))
    oh, ow = out_size(padding, ih, k[0], s[0], d[0]), out_size(padding, iw, k[1], s[1], d[1])
    if oh < 1 or ow < 1:
        padding, oh, ow = "SAME", -(-ih // s[0]), -(-iw // s[1])
    pad = (padding_before(s[0], d[0], ih, k[0], oh), padding_before(s[1], d[1], iw, k[1], ow))
    return n, ih, iw, ic, oh, ow, oc, k, s, d, pad, depthwise


@settings(derandomize=True, max_examples=120, deadline=None, database=None)
@given(windows_geometry())
def test_window_overlap_distances_hold_for_the_kernels_access_order(geo) -> None:
    n, ih, iw, ic, oh, ow, oc, k, s, d, pad, depthwise = geo
    spec = window_overlap((n, ih, iw, ic), (n, oh, ow, oc), s, pad[0], pad[1],
                          reverse_window=(k[0], k[1], d[0], d[1]))
    dist, above = spec.min_distance(), spec.min_distance_above()
    base = 1000
    if dist > 0:  # Y below X (a non-positive distance puts Y at or above X: covered by `above`)
        assert _replay_window(n, ih, iw, ic, oh, ow, oc, k, s, d, pad, depthwise, base + dist, base)
    assert above is not None and above > 0
    assert _replay_window(n, ih, iw, ic, oh, ow, oc, k, s, d, pad, depthwise, base, base + above)
    assert _replay_window(n, ih, iw, ic, oh, ow, oc, k, s, d, pad, depthwise, base + max(dist, 0), base)


@settings(derandomize=True, max_examples=60, deadline=None, database=None)
@given(st.integers(1, 40), st.sampled_from([1, 2, 4]), st.sampled_from([1, 2, 4]))
def test_elementwise_overlap_distances_hold_for_any_element_sizes(n: int, bin_: int, bout: int) -> None:
    spec = elementwise_overlap(bin_, bout, n, reversible=True)

    def replay(off_x: int, off_y: int) -> bool:
        clobbered: set[int] = set()
        order = range(n - 1, -1, -1) if off_y > off_x else range(n)
        for i in order:
            if any(off_x + i * bin_ + j in clobbered for j in range(bin_)):
                return False
            clobbered.update(off_y + i * bout + j for j in range(bout))
        return True

    assert replay(500 + max(spec.min_distance(), 0), 500)
    assert replay(500, 500 + spec.min_distance_above())
