"""tinyc.passes: fold_constants, alias_views, fold_pad, prune and the pass manager.

Each case builds a small model with ModelBuilder, reads it into the IR and runs the passes;
a case that needs an op module that is not registered yet is skipped with the op named.
"""

from __future__ import annotations

import dataclasses

import numpy as np
import pytest

from tests.support.tflite_builder import ModelBuilder
from tinyc.errors import InternalError
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.frontend.validate import validate
from tinyc.ir import Graph
from tinyc.ops.registry import lookup
from tinyc.passes import alias_views, fold_constants, fold_pad, prune
from tinyc.passes.manager import PassResult, default_passes, run_passes


def needs(*kinds: str) -> pytest.MarkDecorator:
    missing = [k for k in kinds if lookup(k) is None]
    return pytest.mark.skipif(bool(missing), reason=f"op module(s) not registered yet: {', '.join(missing)}")


def _read(b: ModelBuilder, name: str = "m") -> Graph:
    g = read_tflite(data=b.build(), name=name)
    g.lint()
    return g


def _kinds(g: Graph) -> list[str]:
    return [op.kind for op in g.ops]


def _labels(g: Graph, names) -> list[str]:
    return [g.t(n).label for n in names]


def _conv(b: ModelBuilder, x: int, out_name: str, in_c: int, out_hw: int, out_c: int = 4, k: int = 3,
          padding: str = "VALID", zp: int = 0) -> int:
    w = b.const(f"{out_name}_w", np.ones((out_c, k, k, in_c), np.int8), scale=0.01, zero_point=0)
    y = b.tensor(out_name, (1, out_hw, out_hw, out_c), "int8", 0.1, zp)
    b.op("CONV_2D", [x, w, None], [y], dict(padding=padding))
    return y


# ------------------------------------------------------------------ fold_constants + alias_views


def _shape_head_model() -> ModelBuilder:
    """conv -> h[1,1,1,8]; SHAPE(h) -> STRIDED_SLICE[0:1] -> PACK(batch, -1) -> RESHAPE(h) -> y[1,8]
    (the MCUNet Wake Vision head)."""
    b = ModelBuilder()
    x = b.input("x", (1, 3, 3, 2), "int8", 0.1, 0)
    h = _conv(b, x, "h", in_c=2, out_hw=1, out_c=8)
    shp = b.tensor("shape", (4,), "int32")
    b.op("SHAPE", [h], [shp])
    batch = b.tensor("batch", (), "int32")
    b.op("STRIDED_SLICE", [shp, b.const("begin", [0]), b.const("end", [1]), b.const("strides", [1])], [batch],
         dict(shrink_axis_mask=1))
    packed = b.tensor("packed", (2,), "int32")
    b.op("PACK", [batch, b.const("minus1", np.array(-1, np.int32))], [packed])
    y = b.tensor("y", (1, 8), "int8", 0.1, 0)
    b.op("RESHAPE", [h, packed], [y])
    b.output(y)
    return b


@needs("SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE", "CONV_2D")
def test_shape_slice_pack_chain_folds_and_reshape_becomes_alias() -> None:
    g = _read(_shape_head_model())
    validate(g)
    assert _kinds(g) == ["CONV_2D", "SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"]

    folded = fold_constants.run(g)
    assert folded.changed
    assert _kinds(folded.graph) == ["CONV_2D", "RESHAPE"]
    shape_in = folded.graph.t(folded.graph.ops[1].inputs[1])
    assert shape_in.is_const and shape_in.data.tolist() == [1, -1]

    out = run_passes(g)
    assert _kinds(out) == ["CONV_2D"]
    y = out.outputs[0]
    assert _labels(out, [y]) == ["y"]
    assert _labels(out, [out.storage(y)]) == ["h"]  # y is h's bytes
    assert _kinds(g) == ["CONV_2D", "SHAPE", "STRIDED_SLICE", "PACK", "RESHAPE"]  # input graph untouched
    assert not {"shape", "batch", "packed", "begin"} & set(_labels(out, out.tensors))  # pruned


@needs("RESHAPE", "CONV_2D")
def test_reshape_between_convs_becomes_alias() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2), "int8", 0.1, 0)
    h = _conv(b, x, "h", in_c=2, out_hw=2, out_c=4)
    r = b.tensor("r", (1, 4, 4, 1), "int8", 0.1, 0)
    b.op("RESHAPE", [h, b.const("new_shape", [1, 4, 4, 1])], [r])
    _conv(b, r, "y", in_c=1, out_hw=2, out_c=2)
    b.output(len(b.tensors) - 1)
    g = _read(b)
    res = alias_views.run(g)
    assert res.changed
    assert _kinds(res.graph) == ["CONV_2D", "CONV_2D"]
    r_name = next(n for n, t in g.tensors.items() if t.label == "r")
    assert _labels(res.graph, [res.graph.storage(r_name)]) == ["h"]
    res.graph.lint()


@needs("RESHAPE")
def test_reshape_from_graph_input_to_graph_output_keeps_its_copy() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 2, 2, 2), "int8", 0.1, 0)
    y = b.tensor("y", (1, 8), "int8", 0.1, 0)
    b.op("RESHAPE", [x, b.const("s", [1, 8])], [y])
    b.output(y)
    g = _read(b)
    res = alias_views.run(g)
    assert not res.changed and _kinds(res.graph) == ["RESHAPE"] and not res.graph.aliases


@needs("ADD")
def test_int32_constant_arithmetic_folds() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4), "int8", 0.1, 0)
    s = b.tensor("s", (2,), "int32")
    b.op("ADD", [b.const("a", [1, 2]), b.const("c", [10, 20])], [s])
    y = b.tensor("y", (1, 4), "int8", 0.1, 0)
    b.op("ADD", [x, x], [y])
    b.output(y)
    g = _read(b)
    res = fold_constants.run(g)
    assert res.changed and _kinds(res.graph) == ["ADD"]
    s_name = next(n for n, t in g.tensors.items() if t.label == "s")
    assert res.graph.t(s_name).data.tolist() == [11, 22] and res.graph.t(s_name).data.dtype == np.int32
    assert not fold_constants.run(res.graph).changed  # nothing left to fold


# ------------------------------------------------------------------ fold_pad


def _pad_conv_model(pads, kind: str = "PAD", pad_value: int | None = None, conv_padding: str = "VALID",
                    extra_consumer: bool = False, zp: int = -3) -> ModelBuilder:
    b = ModelBuilder()
    x = b.input("x", (1, 6, 6, 2), "int8", 0.1, zp)
    p_arr = np.array(pads, np.int32).reshape(4, 2)
    ph, pw = 6 + int(p_arr[1].sum()), 6 + int(p_arr[2].sum())
    pc = 2 + int(p_arr[3].sum())
    p = b.tensor("p", (1, ph, pw, pc), "int8", 0.1, zp)
    ins = [x, b.const("pads", p_arr)]
    if kind == "PADV2":
        ins.append(b.const("value", np.array([zp if pad_value is None else pad_value], np.int8), scale=0.1,
                           zero_point=zp))
    b.op(kind, ins, [p])
    out_hw = ph - 2 if conv_padding == "VALID" else ph
    y = _conv(b, p, "y", in_c=pc, out_hw=out_hw, padding=conv_padding)
    outs = [y]
    if extra_consumer:
        outs.append(_conv(b, p, "y2", in_c=pc, out_hw=out_hw, padding=conv_padding))
    b.output(*outs)
    return b


@needs("PAD", "CONV_2D")
def test_zero_point_pad_folds_into_valid_conv() -> None:
    g = _read(_pad_conv_model([[0, 0], [1, 2], [3, 1], [0, 0]]))
    res = fold_pad.run(g)
    assert res.changed
    assert _kinds(res.graph) == ["CONV_2D"]
    conv = res.graph.ops[0]
    assert conv.attrs["explicit_padding"] == (1, 2, 3, 1)  # (top, bottom, left, right)
    assert conv.attrs["padding"] == "VALID"
    assert conv.inputs[0] == g.inputs[0]
    assert conv.inputs[1:] == g.ops[1].inputs[1:]
    res.graph.lint()
    after = prune.run(res.graph).graph
    assert "p" not in _labels(after, after.tensors) and "pads" not in _labels(after, after.tensors)
    assert "explicit_padding" not in g.ops[1].attrs  # the input graph is not mutated


@needs("PADV2", "CONV_2D")
def test_padv2_with_zero_point_value_folds() -> None:
    g = _read(_pad_conv_model([[0, 0], [1, 1], [1, 1], [0, 0]], kind="PADV2"))
    res = fold_pad.run(g)
    assert res.changed and res.graph.ops[0].attrs["explicit_padding"] == (1, 1, 1, 1)


@needs("PAD", "PADV2", "CONV_2D")
@pytest.mark.parametrize("case, kwargs", [
    ("non-zero-point value", dict(pads=[[0, 0], [1, 1], [1, 1], [0, 0]], kind="PADV2", pad_value=5)),
    ("channel padding", dict(pads=[[0, 0], [1, 1], [1, 1], [0, 2]])),
    ("batch padding", dict(pads=[[1, 0], [1, 1], [1, 1], [0, 0]])),
    ("two consumers", dict(pads=[[0, 0], [1, 1], [1, 1], [0, 0]], extra_consumer=True)),
])
def test_pad_that_is_not_exact_does_not_fold(case: str, kwargs: dict) -> None:
    g = _read(_pad_conv_model(**kwargs))
    res = fold_pad.run(g)
    assert not res.changed, case
    assert _kinds(res.graph)[0] == "PAD" + ("V2" if kwargs.get("kind") == "PADV2" else "")
    assert all("explicit_padding" not in op.attrs for op in res.graph.ops)


@needs("PAD", "CONV_2D")
def test_pad_that_is_a_graph_output_does_not_fold() -> None:
    b = _pad_conv_model([[0, 0], [1, 1], [1, 1], [0, 0]])
    b.output(next(i for i, t in enumerate(b.tensors) if t.name == "p"))
    res = fold_pad.run(_read(b))
    assert not res.changed


# ------------------------------------------------------------------ prune


@needs("CONV_2D")
def test_dead_op_is_pruned() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2), "int8", 0.1, 0)
    y = _conv(b, x, "y", in_c=2, out_hw=2)
    _conv(b, x, "dead", in_c=2, out_hw=2)  # nobody reads it
    b.output(y)
    g = _read(b)
    res = prune.run(g)
    assert res.changed
    assert [_labels(res.graph, op.outputs) for op in res.graph.ops] == [["y"]]
    labels = set(_labels(res.graph, res.graph.tensors))
    assert "dead" not in labels and "dead_w" not in labels and {"x", "y", "y_w"} <= labels
    assert not prune.run(res.graph).changed


@needs("CONV_2D")
def test_prune_keeps_ops_feeding_outputs_through_aliases() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2), "int8", 0.1, 0)
    h = _conv(b, x, "h", in_c=2, out_hw=2)
    y = b.tensor("y", (1, 16), "int8", 0.1, 0)
    b.output(y)
    g = _read_unchecked(b, x, h, y)
    res = prune.run(g)
    assert _kinds(res.graph) == ["CONV_2D"]
    res.graph.lint()


def _read_unchecked(b: ModelBuilder, x: int, h: int, y: int) -> Graph:
    """The graph of `b` with y declared an alias of h (as alias_views leaves it)."""
    g = read_tflite(data=b.build(), name="m")
    return g.replace(aliases={f"t{y}": f"t{h}"})


# ------------------------------------------------------------------ manager


def test_default_pass_order() -> None:
    assert [name for name, _ in default_passes()] == ["fold_constants", "alias_views", "fold_pad", "prune",
                                                      "reorder", "concat_inplace"]


@needs("CONV_2D")
def test_manager_names_the_pass_that_broke_the_graph() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2), "int8", 0.1, 0)
    b.output(_conv(b, x, "y", in_c=2, out_hw=2))
    g = _read(b)

    def ok(g: Graph) -> PassResult:
        return PassResult(g, False)

    def breaks(g: Graph) -> PassResult:
        return PassResult(g.replace(ops=g.ops + (dataclasses.replace(g.ops[0]),)), True)  # produced twice

    with pytest.raises(InternalError, match=r"pass breaks \(after first\) broke the graph: .*produced twice"):
        run_passes(g, [("first", ok), ("breaks", breaks), ("never", ok)])


def test_manager_lints_its_input() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4), "int8", 0.1, 0)
    y = b.tensor("y", (1, 4), "int8", 0.1, 0)
    b.op("ADD", [x, x], [y])
    b.output(y)
    g = _read(b)
    broken = g.replace(ops=())  # the output is never produced
    with pytest.raises(InternalError, match="never produced"):
        run_passes(broken, [])


@needs("CONV_2D")
def test_passes_are_a_no_op_on_a_plain_conv() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 2), "int8", 0.1, 0)
    b.output(_conv(b, x, "y", in_c=2, out_hw=2))
    g = _read(b)
    for name, fn in default_passes():
        assert not fn(g).changed, name
