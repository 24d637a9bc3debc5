"""tinyc.memory: lifetimes, registered allocators, the verifier and plan_memory.

Planner tests are tables (TFLM's greedy_memory_planner_test.cc): hand-sized buffers
`(size, first, last)` with the expected arena of every registered allocator, and every
result checked by `no_overlap_oracle` below, which is written here and shares no code with
tinyc.memory.verify. One real-model case plans person_detect.tflite.
"""

from __future__ import annotations

from typing import Mapping, Sequence

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from tests.support.paths import MODELS
from tests.support.tflite_builder import ModelBuilder
from tinyc.errors import BadInput, InternalError
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.ir import Graph
from tinyc.memory.allocators import allocators
from tinyc.memory.lifetimes import Buffer, buffers, live_bytes_per_step
from tinyc.memory.overlap import Overlap
from tinyc.memory.plan import plan_memory
from tinyc.memory.verify import verify
from tinyc.ops.base import Arg, KernelCall
from tinyc.ops.registry import lookup
from tinyc.passes.manager import run_passes

PERSON = MODELS / "tflm" / "person_detect.tflite"
TFLM_PERSON_ARENA = 55_296  # DESIGN.md: TFLM's recording allocator on person_detect


# ------------------------------------------------------------------ the oracle


def no_overlap_oracle(bufs: Sequence[Buffer], offsets: Mapping[str, int], align: int,
                      allowed: Sequence[tuple[str, str]] = ()) -> None:
    """Every buffer has an aligned, non-negative offset, and no two buffers live at a common
    step (first..last inclusive) share a byte, except the `allowed` pairs (proven overlaps)."""
    ok = {frozenset(p) for p in allowed}
    assert set(offsets) >= {b.name for b in bufs}
    for b in bufs:
        assert offsets[b.name] >= 0 and offsets[b.name] % align == 0, (b, offsets[b.name])
    for i, a in enumerate(bufs):
        for b in bufs[i + 1:]:
            if a.size == 0 or b.size == 0 or frozenset((a.name, b.name)) in ok:
                continue
            same_time = max(a.first, b.first) <= min(a.last, b.last)
            oa, ob = offsets[a.name], offsets[b.name]
            same_bytes = oa < ob + b.size and ob < oa + a.size
            assert not (same_time and same_bytes), f"{a} at {oa} overlaps {b} at {ob}"


def extent(bufs: Sequence[Buffer], offsets: Mapping[str, int]) -> int:
    return max((offsets[b.name] + b.size for b in bufs), default=0)


def max_live(bufs: Sequence[Buffer], align: int) -> int:
    """Independent lower bound: the most (aligned) bytes live at any one step."""
    steps = max((b.last for b in bufs), default=0) + 1
    live = [0] * steps
    for b in bufs:
        for s in range(b.first, b.last + 1):
            live[s] += -(-b.size // align) * align
    return max(live, default=0)


def _bufs(table: Sequence[tuple[int, int, int]]) -> list[Buffer]:
    return [Buffer(f"b{i}", size, first, last) for i, (size, first, last) in enumerate(table)]


# ------------------------------------------------------------------ tables

# TFLM greedy_memory_planner_test.cc: TestGreedyBasics, TestGreedyMedium, TestOverlapCase.
BASICS = [(10, 0, 1), (20, 2, 3)]
MEDIUM = [(10, 0, 1), (20, 1, 2), (30, 2, 3), (40, 3, 4), (50, 0, 1)]
OVERLAP = [(100, 0, 1), (50, 2, 3), (20, 1, 2)]
# A long-lived small buffer under a chain of big ones: size-first ordering wins here.
FRAGMENT = [(64, 0, 2), (32, 1, 1), (64, 2, 4), (96, 3, 3), (16, 0, 4)]
# TestPersonDetectionModel: the 250 KB MobileNet's buffer sizes and lifetimes.
PERSON_TFLM = ([(9216, 0, 29), (3, 28, 29), (256, 27, 28), (2304, 26, 27), (2304, 25, 26), (2304, 24, 25),
                (1152, 23, 24)] + [(4608, s, s + 1) for s in range(22, 11, -1)]
               + [(2304, 11, 12), (9216, 10, 11), (9216, 9, 10), (9216, 8, 9), (4608, 7, 8), (18432, 6, 7),
                  (18432, 5, 6), (18432, 4, 5), (9216, 3, 4), (36864, 2, 3), (18432, 1, 2), (18432, 0, 1)])

GS, GC, FU, LT = "greedy_by_size", "greedy_by_conflicts", "by_first_use", "by_lifetime"

# (name, buffers, alignment, lower bound, {allocator: extent of its placement})
TABLE = [
    ("basics", BASICS, 1, 20, {GS: 20, GC: 20, FU: 20, LT: 20}),
    ("medium", MEDIUM, 1, 80, {GS: 90, GC: 90, FU: 80, LT: 90}),  # TFLM's greedy: 90
    ("medium_align4", MEDIUM, 4, 84, {GS: 92, GC: 92, FU: 84, LT: 92}),
    ("overlap", OVERLAP, 1, 120, {GS: 120, GC: 120, FU: 120, LT: 120}),
    ("overlap_align16", OVERLAP, 16, 144, {GS: 132, GC: 132, FU: 132, LT: 132}),
    ("fragment", FRAGMENT, 4, 176, {GS: 176, GC: 176, FU: 240, LT: 240}),
    ("person_tflm", PERSON_TFLM, 16, 64512, {GS: 64512, GC: 64512, FU: 82944, LT: 64512}),
]


@pytest.mark.parametrize("name, table, align, lower, want", TABLE, ids=[t[0] for t in TABLE])
def test_allocator_table(name: str, table: list, align: int, lower: int, want: dict[str, int]) -> None:
    bufs = _bufs(table)
    assert max_live(bufs, align) == lower
    assert max(live_bytes_per_step(bufs, max(b.last for b in bufs), align)) == lower
    for algo_name, algo in allocators().items():
        offs = algo(bufs, align)
        no_overlap_oracle(bufs, offs, align)
        verify(bufs, offs, align)  # the verifier agrees with the oracle
        size = extent(bufs, offs)
        assert -(-size // align) * align >= lower, algo_name
        if algo_name in want:
            assert size == want[algo_name], f"{name}: {algo_name} gave {size}, table says {want[algo_name]}"


def test_table_covers_every_registered_allocator() -> None:
    assert set(allocators()) == {GS, GC, FU, LT}, "new allocator: add its column to TABLE"


def test_greedy_by_size_reproduces_tflm_offsets() -> None:
    """TestGreedyMedium's exact offsets: TFLM's largest-first greedy planner."""
    bufs = _bufs(MEDIUM)
    offs = allocators()[GS](bufs, 1)
    assert [offs[b.name] for b in bufs] == [50, 70, 40, 0, 0]


@st.composite
def tables(draw: st.DrawFn) -> list[Buffer]:
    n = draw(st.integers(1, 12))
    out = []
    for i in range(n):
        first = draw(st.integers(0, 10))
        last = draw(st.integers(first, 12))
        out.append(Buffer(f"b{i}", draw(st.sampled_from([0, 1, 3, 7, 16, 33, 64, 100, 255])), first, last))
    return out


@settings(derandomize=True, max_examples=40, deadline=None, database=None)
@given(tables(), st.sampled_from([1, 4, 8, 16]))
def test_every_allocator_is_sound_on_random_tables(bufs: list[Buffer], align: int) -> None:
    lower = max_live(bufs, align)
    for algo_name, algo in allocators().items():
        offs = algo(bufs, align)
        no_overlap_oracle(bufs, offs, align)
        assert -(-extent(bufs, offs) // align) * align >= lower, algo_name


# ------------------------------------------------------------------ the verifier


def test_verifier_rejects_overlapping_placement() -> None:
    bufs = _bufs([(16, 0, 1), (16, 1, 2)])  # both live at step 1
    with pytest.raises(InternalError, match="overlap"):
        verify(bufs, {"b0": 0, "b1": 8}, 4)
    with pytest.raises(InternalError, match="overlap"):
        verify(bufs, {"b0": 0, "b1": 0}, 4)


def test_verifier_accepts_adjacent_and_time_disjoint() -> None:
    verify(_bufs([(16, 0, 1), (16, 1, 2)]), {"b0": 0, "b1": 16}, 4)  # touching addresses
    verify(_bufs([(16, 0, 1), (16, 2, 3)]), {"b0": 0, "b1": 0}, 4)  # never live together


def test_verifier_rejects_misaligned_and_negative_offsets() -> None:
    with pytest.raises(InternalError, match="alignment"):
        verify(_bufs([(16, 0, 1)]), {"b0": 2}, 4)
    with pytest.raises(InternalError):
        verify(_bufs([(16, 0, 1)]), {"b0": -4}, 4)


def test_verifier_allows_only_the_proven_overlap() -> None:
    """An op module may prove that output Y can start `distance` bytes below dying input X."""
    x, y = Buffer("x", 64, 0, 1), Buffer("y", 64, 1, 2)
    rule = Overlap(x="x", y="y", distance=16, step=1)
    verify([x, y], {"x": 16, "y": 0}, 4, [rule])
    verify([x, y], {"x": 32, "y": 0}, 4, [rule])
    with pytest.raises(InternalError, match="overlap"):
        verify([x, y], {"x": 8, "y": 0}, 4, [rule])  # closer than proven
    with pytest.raises(InternalError, match="overlap"):
        verify([x, y], {"x": 16, "y": 0}, 4)  # no rule: not allowed
    z = Buffer("z", 64, 0, 2)  # live across more than the op's step
    with pytest.raises(InternalError, match="overlap"):
        verify([z, y], {"z": 16, "y": 0}, 4, [Overlap(x="z", y="y", distance=16, step=1)])


def test_verifier_allows_an_exact_rule_only_at_the_same_offset() -> None:
    x, y = Buffer("x", 64, 0, 1), Buffer("y", 16, 1, 2)
    rule = Overlap(x="x", y="y", distance=0, step=1, exact=True)
    verify([x, y], {"x": 32, "y": 32}, 4, [rule])
    verify([x, y], {"x": 0, "y": 64}, 4, [rule])  # apart: no rule needed
    for oy in (28, 36, 80 - 16):
        with pytest.raises(InternalError, match="overlap"):
            verify([x, y], {"x": 32, "y": oy}, 4, [rule])


def test_allocators_place_an_exact_pair_at_one_offset_in_both_directions() -> None:
    # x dies at step 1 where y (a quarter of it, stride 2) is born; s is the op's scratch.
    x, y, s = Buffer("x", 64, 0, 1), Buffer("y", 16, 1, 2), Buffer("s", 8, 1, 1)
    rule = Overlap(x="x", y="y", distance=0, step=1, exact=True)
    for name, algo in allocators().items():
        for top_down in (False, True):
            offs = algo([x, y, s], 4, [rule], top_down=top_down)
            no_overlap_oracle([x, y, s], offs, 4, [("x", "y")])
            verify([x, y, s], offs, 4, [rule])
            assert extent([x, y, s], offs) == 72, (name, top_down, offs)


def test_allocators_follow_an_overlap_rule_downwards_when_placing_top_down() -> None:
    """Y may start `distance` below dying X. Bottom-up placement puts X at 0 and Y can only go
    above it; top-down placement (the mirror image) follows the rule."""
    x, y = Buffer("x", 64, 0, 1), Buffer("y", 64, 1, 2)
    other = Buffer("o", 32, 2, 3)  # live with Y only: it must avoid Y
    rule = Overlap(x="x", y="y", distance=16, step=1)
    for algo_name, algo in allocators().items():
        for top_down in (False, True):
            offs = algo([x, y], 4, [rule], top_down=top_down)
            verify([x, y], offs, 4, [rule])
            assert extent([x, y], offs) == (80 if top_down else 128), (algo_name, top_down, offs)
            offs = algo([x, y, other], 4, [rule], top_down=top_down)
            verify([x, y, other], offs, 4, [rule])
            no_overlap_oracle([x, y, other], offs, 4, [("x", "y")])


def test_memmove_rule_lets_the_output_start_above_the_input() -> None:
    """A memmove-like kernel (rule.above) may also write Y starting `above` bytes above X."""
    x, y = Buffer("x", 64, 0, 1), Buffer("y", 64, 1, 2)
    rule = Overlap(x="x", y="y", distance=16, step=1, above=8)
    verify([x, y], {"x": 0, "y": 8}, 4, [rule])
    verify([x, y], {"x": 16, "y": 0}, 4, [rule])
    for bad in ({"x": 0, "y": 4}, {"x": 0, "y": 0}, {"x": 12, "y": 0}):
        with pytest.raises(InternalError, match="overlap"):
            verify([x, y], bad, 4, [rule])
    for algo_name, algo in allocators().items():
        offs = algo([x, y], 4, [rule])  # bottom-up: X at 0, Y just above it
        verify([x, y], offs, 4, [rule])
        assert extent([x, y], offs) == 72, (algo_name, offs)


# ------------------------------------------------------------------ lifetimes and plan_memory


def _chain_graph() -> Graph:
    """x -> CONV -> a -> CONV -> b -> CONV -> y (1x1 convs, 8x8x4 int8)."""
    b = ModelBuilder()
    x = b.input("x", (1, 8, 8, 4), "int8", 0.1, 0)
    prev = x
    for i, name in enumerate(("a", "b", "y")):
        w = b.const(f"w{i}", np.ones((4, 1, 1, 4), np.int8), scale=0.01, zero_point=0)
        t = b.tensor(name, (1, 8, 8, 4), "int8", 0.1, 0)
        b.op("CONV_2D", [prev, w, None], [t], dict(padding="VALID"))
        prev = t
    b.output(prev)
    return read_tflite(data=b.build(), name="chain")


def test_lifetimes_of_a_chain() -> None:
    g = _chain_graph()
    bufs = {b.name: b for b in buffers(g, ())}
    by_label = {g.t(n).label: b for n, b in bufs.items()}
    assert set(by_label) == {"x", "a", "b", "y"}  # constants are not in the arena
    assert (by_label["x"].first, by_label["x"].last) == (0, 0)
    assert (by_label["a"].first, by_label["a"].last) == (0, 1)
    assert (by_label["b"].first, by_label["b"].last) == (1, 2)
    assert (by_label["y"].first, by_label["y"].last) == (2, 3)  # outputs live past the last op
    assert all(b.size == 256 for b in bufs.values())


def test_lifetimes_add_scratch_buffers() -> None:
    g = _chain_graph()
    calls = [KernelCall("f", "", (), None, {}, (Arg("scratch", nbytes=100), Arg("scratch", nbytes=0))),
             KernelCall("f", "", (), None, {}, ()),
             KernelCall("f", "", (), None, {}, (Arg("scratch", nbytes=12),))]
    scratch = sorted((b.name, b.size, b.first, b.last) for b in buffers(g, calls) if b.name.startswith("scratch"))
    assert scratch == [("scratch0_0", 100, 0, 0), ("scratch2_0", 12, 2, 2)]


def test_plan_memory_lower_bound_is_max_live_and_arena_is_sound() -> None:
    g = _chain_graph()
    plan = plan_memory(g, (), alignment=16, overlap=False)
    bufs = list(plan.buffers)
    no_overlap_oracle(bufs, plan.offsets, 16)
    assert plan.lower_bound_bytes == max(plan.live_per_step) == max_live(bufs, 16) == 512
    assert plan.arena_bytes == 512 and plan.arena_bytes % 16 == 0
    assert plan.overhead == 0.0
    assert plan.candidates and plan.strategy in plan.candidates


@pytest.mark.parametrize("strategy", sorted(allocators()))
def test_plan_memory_named_strategy(strategy: str) -> None:
    plan = plan_memory(_chain_graph(), (), alignment=4, strategy=strategy)
    # A named strategy runs bottom-up and top-down, on plain buffers and with overlap rules.
    assert plan.strategy.split("+")[-1] == strategy and not plan.strategy.startswith("search")
    assert {c.split("+")[-1] for c in plan.candidates} == {strategy}
    no_overlap_oracle(list(plan.buffers), plan.offsets, 4, [(o.x, o.y) for o in plan.overlaps])


def test_plan_memory_unknown_strategy_is_bad_input() -> None:
    with pytest.raises(BadInput, match="unknown planner strategy 'nope'"):
        plan_memory(_chain_graph(), (), strategy="nope")


# ------------------------------------------------------------------ the real model

needs_person = pytest.mark.skipif(not PERSON.is_file(), reason=f"{PERSON} not available")
PERSON_OPS = ("CONV_2D", "DEPTHWISE_CONV_2D", "AVERAGE_POOL_2D", "RESHAPE", "SOFTMAX")


@needs_person
def test_person_detect_activation_plan_fits_tflm_arena() -> None:
    """The planner alone on person_detect's activations (after the passes, no kernel scratch)."""
    g = run_passes(read_tflite(PERSON))
    plain = plan_memory(g, (), alignment=16, overlap=False)
    no_overlap_oracle(list(plain.buffers), plain.offsets, 16)
    assert plain.lower_bound_bytes == max_live(list(plain.buffers), 16)
    assert plain.lower_bound_bytes <= plain.arena_bytes <= TFLM_PERSON_ARENA
    plan = plan_memory(g, (), alignment=16)
    no_overlap_oracle(list(plan.buffers), plan.offsets, 16, [(o.x, o.y) for o in plan.overlaps])
    assert plan.lower_bound_bytes == max(plan.live_per_step) < plain.lower_bound_bytes
    assert plan.lower_bound_bytes <= plan.arena_bytes <= plan.lower_bound_bytes * 1.02


@needs_person
@pytest.mark.skipif(any(lookup(k) is None for k in PERSON_OPS),
                    reason="compile_model needs CONV_2D, DEPTHWISE_CONV_2D, AVERAGE_POOL_2D, RESHAPE and SOFTMAX")
def test_person_detect_compiled_arena_fits_tflm_arena() -> None:
    from tinyc.compiler import compile_model

    c = compile_model(PERSON)
    plan = c.plan
    no_overlap_oracle(list(plan.buffers), plan.offsets, plan.alignment, [(o.x, o.y) for o in plan.overlaps])
    verify(plan.buffers, plan.offsets, plan.alignment, plan.overlaps)
    assert plan.lower_bound_bytes <= plan.arena_bytes <= TFLM_PERSON_ARENA


# ------------------------------------------------------------------ overlap rules, search, properties


def rule_allows(rule: Overlap, off_x: int, off_y: int) -> bool:
    """The kernels' contract, written independently of tinyc.memory: ascending kernels need
    Y at least `distance` below X; memmove-like ones (rule.above) run descending when Y starts
    above X and then need it at least `above` above; in-place kernels (rule.exact) need Y to
    start exactly where X starts."""
    if rule.exact:
        return off_x == off_y
    if rule.above is not None and off_y > off_x:
        return off_y - off_x >= rule.above
    return off_x - off_y >= rule.distance


def rule_oracle(bufs: Sequence[Buffer], offsets: Mapping[str, int], align: int, rules: Sequence[Overlap]) -> None:
    """no_overlap_oracle, plus: every pair that does share bytes obeys its rule at its step."""
    no_overlap_oracle(bufs, offsets, align, [(o.x, o.y) for o in rules])
    by = {b.name: b for b in bufs}
    for o in rules:
        x, y = by[o.x], by[o.y]
        ox, oy = offsets[o.x], offsets[o.y]
        if x.size and y.size and ox < oy + y.size and oy < ox + x.size:
            assert x.last == o.step == y.first, o
            assert rule_allows(o, ox, oy), f"{o}: X at {ox}, Y at {oy}"


def brute_lower_bound(bufs: Sequence[Buffer], rules: Sequence[Overlap], align: int) -> int:
    """The most bytes live at any step, a ruled pair counted as the fewest bytes any aligned
    placement the rule allows can make it occupy (tried one delta at a time)."""
    size = {b.name: -(-b.size // align) * align for b in bufs}
    steps = max((b.last for b in bufs), default=0) + 1
    live = [0] * steps
    for b in bufs:
        for s in range(b.first, b.last + 1):
            live[s] += size[b.name]
    for o in rules:
        sx, sy = size[o.x], size[o.y]
        best = sx + sy
        for delta in range(-sx - sy, sx + sy + 1, align):
            if rule_allows(o, delta, 0) or not (delta < sy and 0 < delta + sx):
                best = min(best, max(delta + sx, sy) - min(delta, 0))
        live[o.step] -= sx + sy - best
    return max(live, default=0)


def test_pair_span_table() -> None:
    """The lower bound's view of one ruled pair (sizes 64 and 32, or 32 and 64)."""
    from tinyc.memory.overlap import pair_span

    cases = [  # (distance, above, size_x, size_y, span)
        (16, None, 64, 64, 80),  # stride-1 window: a row of lag
        (48, None, 16, 64, 64),  # expansion: X in Y's tail
        (200, None, 64, 64, 128),  # too far: no saving
        (-8, None, 64, 16, 64),  # Y may start above X: inside it
        (16, 8, 64, 64, 72),  # memmove-like: above is the cheaper side
        (4, 100, 32, 64, 64),
        ("exact", None, 64, 64, 64),  # in place (depthwise channel by channel): Y exactly over X
        ("exact", None, 64, 16, 64),  # stride 2: Y in X's head
        ("exact", None, 16, 64, 64),
    ]
    for d, above, sx, sy, want in cases:
        rule = Overlap("x", "y", 0, 0, exact=True) if d == "exact" else Overlap("x", "y", d, 0, above)
        assert pair_span(rule, sx, sy) == want, (d, above, sx, sy)
        assert brute_lower_bound([Buffer("x", sx, 0, 0), Buffer("y", sy, 0, 0)], [rule], 4) == want


@st.composite
def ruled_tables(draw: st.DrawFn) -> tuple[list[Buffer], list[Overlap], int]:
    """Random lifetimes and sizes, and overlap rules shaped like the ones ops give: at most one
    per step, each between a buffer dying there and one born there, each buffer at most once
    as X and once as Y; some exact (in place: Y starts where X starts)."""
    align = draw(st.sampled_from([1, 4, 16]))
    bufs = draw(tables())
    rules: list[Overlap] = []
    used_x: set[str] = set()
    used_y: set[str] = set()
    steps_used: set[int] = set()
    for x in bufs:
        for y in bufs:
            if x is y or x.name in used_x or y.name in used_y or x.last != y.first or x.last in steps_used:
                continue
            if not draw(st.booleans()):
                continue
            if draw(st.integers(0, 3)) == 0:  # an in-place kernel: Y exactly over X
                rules.append(Overlap(x.name, y.name, 0, x.last, exact=True))
            else:
                dist = -(-draw(st.integers(-64, 300)) // align) * align
                above = draw(st.one_of(st.none(), st.integers(1, 300)))
                above = None if above is None else -(-above // align) * align
                rules.append(Overlap(x.name, y.name, dist, x.last, above))
            used_x.add(x.name)
            used_y.add(y.name)
            steps_used.add(x.last)
    return bufs, rules, align


@settings(derandomize=True, max_examples=150, deadline=None, database=None)
@given(ruled_tables())
def test_every_allocator_obeys_overlap_rules_on_random_tables(problem) -> None:
    bufs, rules, align = problem
    lower = brute_lower_bound(bufs, rules, align)
    for algo_name, algo in allocators().items():
        for top_down in (False, True):
            offs = algo(bufs, align, rules, top_down=top_down)
            rule_oracle(bufs, offs, align, rules)
            verify(bufs, offs, align, rules)
            assert -(-extent(bufs, offs) // align) * align >= lower, (algo_name, top_down)


@settings(derandomize=True, max_examples=100, deadline=None, database=None)
@given(ruled_tables())
def test_plan_with_search_is_sound_and_its_lower_bound_is_exact(problem) -> None:
    from tinyc.memory.plan import plan_buffers

    bufs, rules, align = problem
    steps = max((b.last for b in bufs), default=0)
    plan = plan_buffers(bufs, rules, steps, align, search_seconds=0.05)
    rule_oracle(bufs, plan.offsets, align, rules)
    assert plan.lower_bound_bytes == brute_lower_bound(bufs, rules, align)
    assert plan.lower_bound_bytes <= plan.arena_bytes == -(-extent(bufs, plan.offsets) // align) * align
    assert plan.arena_bytes <= min(plan.candidates.values())
    assert plan.arena_bytes % align == 0
    assert {(o.x, o.y) for o in plan.overlaps} <= {(o.x, o.y) for o in rules}
    again = plan_buffers(bufs, rules, steps, align, search_seconds=0.05)
    assert again.offsets == plan.offsets  # deterministic


# Every registered order, bottom-up or top-down, leaves a gap here (128); the search closes it.
SEARCH_CASE = [(48, 5, 5), (32, 2, 5), (16, 0, 7), (48, 0, 0), (32, 0, 4)]


def test_search_improves_on_the_greedy_orders_and_stops_at_the_lower_bound() -> None:
    from tinyc.memory.plan import plan_buffers

    bufs = _bufs(SEARCH_CASE)
    greedy = plan_buffers(bufs, [], 7, 4, search_seconds=0)
    searched = plan_buffers(bufs, [], 7, 4, search_seconds=1.0)
    no_overlap_oracle(bufs, searched.offsets, 4)
    assert searched.lower_bound_bytes == greedy.lower_bound_bytes == max_live(bufs, 4) == 96
    assert greedy.arena_bytes == 128 and not greedy.strategy.startswith("search")
    assert searched.arena_bytes == 96 and searched.strategy.startswith("search+")
