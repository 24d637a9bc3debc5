"""tinyc.passes.concat_inplace: producers write straight into their slice of a CONCATENATION's
output. Which inputs qualify, the arena it saves, slices in the IR (lint, offsets, verifier),
and bit-exactness against TFLM, with every allocator."""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.golden import assert_outputs_equal
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import Options, compile_model, run_on_host
from tinyc.errors import InternalError
from tinyc.ir import Graph, Op, Tensor
from tinyc.memory.allocators import allocators
from tinyc.memory.lifetimes import Buffer
from tinyc.memory.verify import verify_slices
from tinyc.passes import manager

OFF = Options(patch="off")


def _conv(b: ModelBuilder, x: int, name: str, in_c: int, out_c: int, hw: tuple[int, int], seed: int) -> int:
    rng = np.random.default_rng(seed)
    w = b.const(f"w_{name}", rng.integers(-60, 60, (out_c, 1, 1, in_c), dtype=np.int8),
                scale=[0.01] * out_c, zero_point=[0] * out_c, quantized_dimension=0)
    y = b.tensor(name, (1, *hw, out_c), "int8", 0.2, 1)
    b.op("CONV_2D", [x, w, None], [y], dict(padding="SAME"))
    return y


def _concat(b: ModelBuilder, ins: list[int], name: str, shape: tuple[int, ...], axis: int) -> int:
    y = b.tensor(name, shape, "int8", 0.2, 1)
    b.op("CONCATENATION", ins, [y], dict(axis=axis))
    return y


def _x(model_shape: tuple[int, ...], seed: int, n: int = 3) -> np.ndarray:
    return np.random.default_rng(seed).integers(-128, 128, (n, *model_shape), dtype=np.int8)


def _bit_exact(m: bytes, x: np.ndarray, options: Options = Options()) -> None:
    assert_outputs_equal(run_on_host(m, [x], options), run_tflm(m, [x]))


def _copy_arena(m: bytes, monkeypatch: pytest.MonkeyPatch) -> int:
    """The arena with the pass switched off (the copy kernel)."""
    every = manager.default_passes
    with monkeypatch.context() as mp:
        mp.setattr(manager, "default_passes", lambda: [p for p in every() if p[0] != "concat_inplace"])
        return compile_model(m, OFF).plan.arena_bytes


def _label(g: Graph, name: str) -> str:
    return g.t(name).label


def _slice_offsets(g: Graph) -> dict[str, int]:
    """label -> byte offset in its storage, for every slice."""
    return {_label(g, n): g.offset_in_storage(n) for n in g.tensors if g.is_slice(n)}


def two_convs_along_h() -> bytes:
    """x (1,8,8,4) -> conv a, conv c (1,8,8,16 each) -> concat on H (1,16,8,16) -> conv (1,16,8,4)."""
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 4), "int8", 0.1, 0)
    a = _conv(b, x, "a", 4, 16, (8, 8), 1)
    c = _conv(b, x, "c", 4, 16, (8, 8), 2)
    y = _concat(b, [a, c], "y", (1, 16, 8, 16), axis=1)
    b.output(_conv(b, y, "out", 16, 4, (16, 8), 3))
    return b.build()


def test_two_convs_concatenated_on_h_write_into_the_output(monkeypatch) -> None:
    m = two_convs_along_h()
    c = compile_model(m, OFF)
    g = c.graph
    assert [op.kind for op in g.ops] == ["CONV_2D", "CONV_2D", "CONV_2D"]
    assert _slice_offsets(g) == {"a": 0, "c": 1024}
    assert c.plan.offset(g, g.ops[1].outputs[0]) == c.plan.offset(g, g.ops[2].inputs[0]) + 1024
    # copy: a (1024) + c (1024) + y (2048) at the concatenation = 4096.
    # In place: x (256) + y (2048) while c is written = 2304, the lower bound.
    assert _copy_arena(m, monkeypatch) == 4096
    assert c.plan.arena_bytes == c.plan.lower_bound_bytes == 2304
    _bit_exact(m, _x((1, 8, 8, 4), 5))
    _bit_exact(m, _x((1, 8, 8, 4), 6), OFF)


def test_three_inputs_on_c_with_hw_1_including_an_elementwise_op(monkeypatch) -> None:
    """H = W = 1: channels are contiguous. Odd sizes, so slices start unaligned (the kernels
    take byte pointers; UBSan is on). The RELU's output (a slice) gets no overlap rule."""
    b = ModelBuilder()
    x = b.input("x", (1, 1, 1, 8), "int8", 0.1, 0)
    p = _conv(b, x, "p", 8, 5, (1, 1), 1)
    q = _conv(b, x, "q", 8, 3, (1, 1), 2)
    r0 = _conv(b, x, "r0", 8, 7, (1, 1), 3)
    r = b.tensor("r", (1, 1, 1, 7), "int8", 0.2, 1)
    b.op("RELU", [r0], [r])
    y = _concat(b, [p, q, r], "y", (1, 1, 1, 15), axis=3)
    b.output(_conv(b, y, "out", 15, 4, (1, 1), 4))
    m = b.build()
    c = compile_model(m, OFF)
    assert "CONCATENATION" not in [op.kind for op in c.graph.ops]
    assert _slice_offsets(c.graph) == {"p": 0, "q": 5, "r": 8}
    assert c.plan.arena_bytes < _copy_arena(m, monkeypatch)
    _bit_exact(m, _x((1, 1, 1, 8), 7))


def test_concat_on_channels_with_hw_above_1_keeps_the_copy() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 4), "int8", 0.1, 0)
    a = _conv(b, x, "a", 4, 8, (4, 4), 1)
    c = _conv(b, x, "c", 4, 8, (4, 4), 2)
    y = _concat(b, [a, c], "y", (1, 4, 4, 16), axis=3)
    b.output(_conv(b, y, "out", 16, 4, (4, 4), 3))
    m = b.build()
    g = compile_model(m, OFF).graph
    assert [op.kind for op in g.ops].count("CONCATENATION") == 1 and not g.alias_offsets
    _bit_exact(m, _x((1, 4, 4, 4), 8))


def test_a_model_input_a_graph_output_and_an_input_read_later_are_copied_into_their_slice() -> None:
    """Concat on H of: x (the model input), a (qualifies), b (also a graph output), d (read by
    the ADD after the concatenation). Only a is written in place; the others get a one-input
    copy into their slice."""
    b = ModelBuilder()
    x = b.input("x", (1, 2, 8, 4), "int8", 0.2, 1)
    a = _conv(b, x, "a", 4, 4, (2, 8), 1)
    bb = _conv(b, x, "b", 4, 4, (2, 8), 2)
    d = _conv(b, x, "d", 4, 4, (2, 8), 3)
    y = _concat(b, [x, a, bb, d], "y", (1, 8, 8, 4), axis=1)
    z = _conv(b, y, "z", 4, 4, (8, 8), 4)
    pz = b.tensor("pz", (1, 2, 8, 4), "int8", 0.2, 1)
    b.op("MAX_POOL_2D", [z], [pz], dict(filter_height=4, filter_width=1, stride_h=4, stride_w=1, padding="VALID"))
    s = b.tensor("s", (1, 2, 8, 4), "int8", 0.3, -2)
    b.op("ADD", [pz, d], [s])
    b.output(s, bb)
    m = b.build()
    g = compile_model(m, OFF).graph
    copies = [op for op in g.ops if op.kind == "CONCATENATION"]
    assert sorted(_label(g, op.inputs[0]) for op in copies) == ["b", "d", "x"]
    assert all(len(op.inputs) == 1 for op in copies)
    offs = _slice_offsets(g)
    assert offs["a"] == 64 and {offs[k] for k in offs if k != "a"} == {0, 128, 192}
    assert not g.is_slice(next(n for n in g.tensors if _label(g, n) == "b"))
    _bit_exact(m, _x((1, 2, 8, 4), 9))


def test_a_concat_of_a_concat_nests_the_slices(monkeypatch) -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 2, 8, 4), "int8", 0.1, 0)
    a = _conv(b, x, "a", 4, 8, (2, 8), 1)
    c = _conv(b, x, "c", 4, 8, (2, 8), 2)
    inner = _concat(b, [a, c], "inner", (1, 4, 8, 8), axis=1)
    d = _conv(b, x, "d", 4, 8, (2, 8), 3)
    outer = _concat(b, [inner, d], "outer", (1, 6, 8, 8), axis=1)
    b.output(_conv(b, outer, "out", 8, 4, (6, 8), 4))
    m = b.build()
    c_ = compile_model(m, OFF)
    g = c_.graph
    assert "CONCATENATION" not in [op.kind for op in g.ops]
    assert _slice_offsets(g) == {"a": 0, "c": 128, "inner": 0, "d": 256}
    assert {g.storage(n) for n in g.tensors if g.is_slice(n)} == {outer_name(g)}
    assert c_.plan.arena_bytes < _copy_arena(m, monkeypatch)
    _bit_exact(m, _x((1, 2, 8, 4), 10))


def outer_name(g: Graph) -> str:
    return next(n for n in g.tensors if _label(g, n) == "outer")


def test_pack_on_axis_0_is_in_place_and_copies_the_model_input_into_its_slice() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 4), "int8", 0.2, 1)
    a = _conv(b, x, "a", 4, 4, (4, 4), 1)
    c = _conv(b, x, "c", 4, 4, (4, 4), 2)
    y = b.tensor("y", (3, 1, 4, 4, 4), "int8", 0.2, 1)
    b.op("PACK", [a, x, c], [y], dict(axis=0))
    b.output(y)
    m = b.build()
    g = compile_model(m, OFF).graph
    assert sorted(op.kind for op in g.ops) == ["CONCATENATION", "CONV_2D", "CONV_2D"]
    assert _slice_offsets(g) == {"a": 0, "x copied into y": 64, "c": 128}
    _bit_exact(m, _x((1, 4, 4, 4), 11))


@pytest.mark.parametrize("name", sorted(allocators()))
def test_every_allocator_is_bit_exact_in_place(name: str) -> None:
    m = two_convs_along_h()
    opts = Options(allocator=name, patch="off")
    assert compile_model(m, opts).graph.alias_offsets
    _bit_exact(m, _x((1, 8, 8, 4), 12), opts)


# ----------------------------------------------------------------------------- IR and verifier

def _t(name: str, shape: tuple[int, ...]) -> Tensor:
    return Tensor(name, shape, "int8")


def _graph(offsets: dict[str, int], sizes: tuple[int, int] = (4, 4), y: int = 8) -> Graph:
    ts = {"x": _t("x", (4,)), "a": _t("a", (sizes[0],)), "b": _t("b", (sizes[1],)), "y": _t("y", (y,)),
          "z": _t("z", (y,))}
    ops = (Op("RELU", ("x",), ("a",)), Op("RELU", ("x",), ("b",)), Op("RELU", ("y",), ("z",)))
    return Graph("g", ts, ops, ("x",), ("z",), aliases={"a": "y", "b": "y"}, alias_offsets=offsets)


def test_lint_accepts_slices_that_tile_their_target() -> None:
    g = _graph({"a": 0, "b": 4})
    g.lint()
    assert g.storage("b") == "y" and g.offset_in_storage("b") == 4 and g.is_slice("a") and not g.is_slice("y")


@pytest.mark.parametrize("offsets, sizes, y, msg", [
    ({"a": 0, "b": 2}, (4, 4), 8, "share bytes"),
    ({"a": 0, "b": 6}, (4, 4), 8, "does not fit"),
    ({"a": 0, "b": 4}, (4, 2), 8, "do not cover"),
])
def test_lint_rejects_bad_slices(offsets, sizes, y, msg) -> None:
    with pytest.raises(InternalError, match=msg):
        _graph(offsets, sizes, y).lint()


def test_slice_offsets_add_up_along_the_alias_chain() -> None:
    g = _graph({"a": 0, "b": 4})
    ts = dict(g.tensors, v=_t("v", (2, 2)))
    g = g.replace(tensors=ts, aliases={**g.aliases, "v": "b"})  # a whole view of a slice
    assert g.storage("v") == "y" and g.offset_in_storage("v") == 4 and g.is_slice("v")


def test_verifier_rejects_a_buffer_that_does_not_cover_its_slices() -> None:
    g = _graph({"a": 0, "b": 4})
    ok = [Buffer("x", 4, 0, 1), Buffer("y", 8, 0, 2), Buffer("z", 8, 2, 3)]
    verify_slices(g, ok)
    with pytest.raises(InternalError, match="slice a is used at step 0"):
        verify_slices(g, [ok[0], Buffer("y", 8, 2, 2), ok[2]])
    with pytest.raises(InternalError, match="outside its buffer"):
        verify_slices(g, [ok[0], Buffer("y", 6, 0, 2), ok[2]])
