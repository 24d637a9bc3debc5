"""tinyc.passes.reorder: the op order with the lowest peak, exact on small graphs (checked
against every topological order), bit-exact on a real branching model, deterministic."""

from __future__ import annotations

import itertools

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.golden import assert_outputs_equal
from tests.support.reference import run_tflm
from tests.support.tflite_builder import ModelBuilder
from tinyc.api import Options, compile_model, run_on_host
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.ir import Graph, Op, Tensor
from tinyc.memory.plan import plan_memory
from tinyc.passes import reorder
from tinyc.passes.manager import run_passes


def _conv1x1(b: ModelBuilder, x: int, name: str, in_c: int, out_c: int, hw: int, seed: int) -> int:
    rng = np.random.default_rng(seed)
    w = b.const(f"w_{name}", rng.integers(-60, 60, (out_c, 1, 1, in_c), dtype=np.int8),
                scale=[0.01] * out_c, zero_point=[0] * out_c, quantized_dimension=0)
    y = b.tensor(name, (1, hw, hw, out_c), "int8", 0.2, 1)
    b.op("CONV_2D", [x, w, None], [y], dict(padding="SAME", stride_h=1, stride_w=1))
    return y


def two_branches() -> bytes:
    """x -> A (64 ch) -> B (4 ch) = y1 and x -> C (64 ch) -> D (4 ch) = y2, written A C B D:
    A's big output waits while C runs."""
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 4), "int8", 0.1, 0)
    a = _conv1x1(b, x, "a", 4, 64, 8, 1)
    c = _conv1x1(b, x, "c", 4, 64, 8, 2)
    y1 = _conv1x1(b, a, "y1", 64, 4, 8, 3)
    y2 = _conv1x1(b, c, "y2", 64, 4, 8, 4)
    b.output(y1, y2)
    return b.build()


def test_runs_one_branch_to_its_end_before_the_other() -> None:
    g = run_passes(read_tflite(data=two_branches(), name="two"), [])
    labels = [g.t(op.outputs[0]).label for op in g.ops]
    assert labels == ["a", "c", "y1", "y2"]
    res = reorder.run(g)
    assert res.changed
    new = [res.graph.t(op.outputs[0]).label for op in res.graph.ops]
    assert new == ["a", "y1", "c", "y2"]
    res.graph.lint()
    before = reorder.peak_of(g, range(4))
    after = reorder.peak_of(res.graph, range(4))
    assert after < before
    # The estimate is the planner's lower bound, and the planner gains what the pass promised.
    assert plan_memory(g, ()).lower_bound_bytes == before
    assert plan_memory(res.graph, ()).lower_bound_bytes == after
    assert plan_memory(res.graph, ()).arena_bytes < plan_memory(g, ()).arena_bytes
    assert [op.index for op in reorder.run(g).graph.ops] == [op.index for op in res.graph.ops]  # deterministic


@pytest.mark.slow
def test_reordered_model_is_bit_exact_with_tflm() -> None:
    m = two_branches()
    c = compile_model(m, Options(patch="off"))
    assert [c.graph.t(op.outputs[0]).label for op in c.graph.ops] == ["a", "y1", "c", "y2"]
    x = np.random.default_rng(5).integers(-128, 128, (4, 1, 8, 8, 4), dtype=np.int8)
    assert_outputs_equal(run_on_host(m, [x], Options(patch="off")), run_tflm(m, [x]))


def test_a_chain_keeps_its_order() -> None:
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 4), "int8", 0.1, 0)
    b.output(_conv1x1(b, _conv1x1(b, x, "a", 4, 16, 8, 1), "y", 16, 4, 8, 2))
    g = run_passes(read_tflite(data=b.build(), name="chain"), [])
    assert not reorder.run(g).changed


# ------------------------------------------------------------------ exactness on random DAGs


def dag(sizes: list[int], parents: list[list[int]], n_inputs: int) -> Graph:
    """A synthetic graph: op i reads the graph inputs / op outputs listed in parents[i] (ids
    below n_inputs are graph inputs) and writes t{n_inputs + i} of sizes[...] bytes; outputs
    nobody reads are graph outputs. Op kinds are unregistered: no overlap rules."""
    tensors = {f"t{k}": Tensor(f"t{k}", (s,), "int8") for k, s in enumerate(sizes)}
    ops = tuple(Op("TEST_OP", tuple(f"t{p}" for p in ps), (f"t{n_inputs + i}",), index=i)
                for i, ps in enumerate(parents))
    read = {p for ps in parents for p in ps}
    outs = tuple(f"t{k}" for k in range(n_inputs, len(sizes)) if k not in read) or (f"t{len(sizes) - 1}",)
    return Graph("dag", tensors, ops, tuple(f"t{k}" for k in range(n_inputs)), outs)


@st.composite
def dags(draw: st.DrawFn) -> Graph:
    n_inputs = draw(st.integers(1, 2))
    n_ops = draw(st.integers(2, 7))
    sizes = [draw(st.sampled_from([4, 8, 16, 64, 100])) for _ in range(n_inputs + n_ops)]
    parents = []
    for i in range(n_ops):
        avail = list(range(n_inputs + i))
        k = draw(st.integers(1, min(2, len(avail))))
        parents.append(sorted(draw(st.lists(st.sampled_from(avail), min_size=k, max_size=k, unique=True))))
    return dag(sizes, parents, n_inputs)


def topological_orders(g: Graph):
    prod = {o: i for i, op in enumerate(g.ops) for o in op.outputs}
    deps = [{prod[x] for x in op.inputs if x in prod} for op in g.ops]
    for perm in itertools.permutations(range(len(g.ops))):
        pos = {i: k for k, i in enumerate(perm)}
        if all(pos[d] < pos[i] for i in range(len(g.ops)) for d in deps[i]):
            yield perm


@settings(derandomize=True, max_examples=150, deadline=None, database=None)
@given(dags())
def test_best_order_is_optimal_among_all_topological_orders(g: Graph) -> None:
    g.lint()
    order = reorder.best_order(g)
    assert sorted(order) == list(range(len(g.ops)))
    assert list(order) in [list(p) for p in topological_orders(g)]
    best = min(reorder.peak_of(g, p) for p in topological_orders(g))
    assert reorder.peak_of(g, order) == best
    res = reorder.run(g)
    res.graph.lint()
    if not res.changed:
        assert reorder.peak_of(g, range(len(g.ops))) == best  # kept the file order: it was optimal


def test_beam_beyond_max_states_still_gives_a_valid_order_no_worse_than_file_order(monkeypatch) -> None:
    # eight independent two-op branches from one input: 3^8 sets of executed ops per layer at most
    parents = [[0] for _ in range(8)] + [[1 + i] for i in range(8)]
    sizes = [4] + [64] * 8 + [4] * 8
    g = dag(sizes, parents, 1)
    monkeypatch.setattr(reorder, "MAX_STATES", 20)
    order = reorder.best_order(g)
    res = reorder.run(g)
    res.graph.lint()
    assert reorder.peak_of(g, order) <= reorder.peak_of(g, range(len(g.ops)))
    # one branch at a time: at worst the input, seven finished outputs and one big intermediate
    assert reorder.peak_of(g, order) == 4 + 7 * 4 + 64
