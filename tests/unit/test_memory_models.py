"""tinyc.memory on real models: every registered strategy's plan runs bit-exact with TFLM,
and the shared models' arenas meet issue 3's targets.

hanlab/vww.tflite (MCUNet-VWW) is the real model for the strategies: a float input quantized
in place, expansion / depthwise / projection chains whose overlap rules the plans follow both
downwards and upwards (memmove-like kernels), and residual ADDs.
"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.golden import assert_outputs_equal
from tests.support.paths import MODELS, all_models
from tests.support.reference import run_tflm
from tinyc.api import Options, compile_model, run_on_host
from tinyc.memory.allocators import allocators
from tinyc.memory.verify import verify
from tinyc.validate.reference import tflm_arena_bytes

CHANNEL_KERNELS = ("tinyc_depthwise_conv2d_s8_channels", "tinyc_depthwise_conv2d_s8_3x3_channels")

VWW = MODELS / "hanlab" / "vww.tflite"
needs_vww = pytest.mark.skipif(not VWW.is_file(), reason=f"{VWW} not available")
# Issue 3: mcunet-vww1 and mcunet-in3 arenas, layer by layer, the input included.
TARGETS = {"hanlab/vww.tflite": 85_000, "hanlab/mcunet-320kb-1mb_imagenet.tflite": 240_000}


def _vww_inputs() -> np.ndarray:
    g = compile_model(VWW, Options(patch="off")).graph
    t = g.t(g.inputs[0])
    return np.random.default_rng(11).uniform(-1.1, 1.1, (3, *t.shape)).astype(np.float32)


@pytest.mark.slow
@needs_vww
@pytest.mark.parametrize("strategy", sorted(allocators()))
def test_every_strategy_runs_mcunet_vww_bit_exact(strategy: str) -> None:
    opts = Options(allocator=strategy, patch="off")
    plan = compile_model(VWW, opts).plan
    assert plan.strategy.split("+")[-1] == strategy
    verify(plan.buffers, plan.offsets, plan.alignment, plan.overlaps)
    x = _vww_inputs()
    assert_outputs_equal(run_on_host(VWW, [x], opts), run_tflm(str(VWW), [x]))


@pytest.mark.slow
@needs_vww
def test_best_plan_of_mcunet_vww_uses_both_overlap_directions() -> None:
    plan = compile_model(VWW, Options(patch="off")).plan
    assert plan.arena_bytes <= TARGETS["hanlab/vww.tflite"]
    up = [o for o in plan.overlaps if plan.offsets[o.y] > plan.offsets[o.x]]
    down = [o for o in plan.overlaps if plan.offsets[o.y] < plan.offsets[o.x]]
    assert up and down, "the plan should exercise both kernel directions"


@pytest.mark.slow
@pytest.mark.parametrize("model", [str(p.relative_to(MODELS)) for p in all_models()])
def test_shared_model_arena_is_within_2_percent_of_its_lower_bound_and_below_tflm(model: str) -> None:
    """Issue 3's done-when, layer by layer: arena <= TFLM's (measured live) and <= 1.02 x the
    lower bound, which is itself checked to be the most bytes live at a step."""
    plan = compile_model(MODELS / model, Options(patch="off")).plan
    verify(plan.buffers, plan.offsets, plan.alignment, plan.overlaps)
    assert plan.lower_bound_bytes == max(plan.live_per_step)
    assert plan.lower_bound_bytes <= plan.arena_bytes <= plan.lower_bound_bytes * 1.02
    assert plan.arena_bytes <= tflm_arena_bytes(str(MODELS / model))
    if model in TARGETS:
        assert plan.arena_bytes <= TARGETS[model]


# Arenas with --patch-input stream before depthwise could run in place channel by channel:
# both peaked on a stride-1 depthwise whose overlap distance (a row of lag) exceeded one channel.
DISTANCE_ONLY_STREAMED = {"hanlab/mcunetv2_large.tflite": 233_680, "hanlab/vww.tflite": 26_656}


@pytest.mark.slow
@pytest.mark.parametrize("model", sorted(DISTANCE_ONLY_STREAMED))
def test_streamed_patch_plan_runs_depthwise_in_place_channel_by_channel(model: str) -> None:
    """The planner picks the channel-by-channel kernel where it is lower, the scratch channel is
    a buffer live only at its op, and the arena drops below the distance-only plan's."""
    from tinyc.compiler import lower
    from tinyc.memory.lifetimes import buffers
    from tinyc.memory.overlap import find_overlaps
    from tinyc.memory.plan import plan_buffers

    c = compile_model(MODELS / model, Options(patch_input="stream"))
    plan = c.plan
    verify(plan.buffers, plan.offsets, plan.alignment, plan.overlaps)
    steps = [k for k, call in enumerate(c.calls) if call.function in CHANNEL_KERNELS]
    assert steps and plan.calls == c.calls
    exact = {o.step: o for o in plan.overlaps if o.exact}
    assert exact and set(exact) <= set(steps)
    for k, o in exact.items():
        assert plan.offsets[o.x] == plan.offsets[o.y]
        (temp,) = [b for b in plan.buffers if b.name.startswith(f"scratch{k}_")]
        assert temp.first == temp.last == k
    assert plan.arena_bytes < DISTANCE_ONLY_STREAMED[model]
    # The same graph with every op's own kernel and distance rules only needs more.
    own = lower(c.graph)[0]
    bufs = buffers(c.graph, own)
    plain = plan_buffers(bufs, find_overlaps(c.graph, bufs, plan.alignment), len(c.graph.ops), plan.alignment,
                         search_seconds=2.0)
    assert plan.arena_bytes < plain.arena_bytes


@pytest.mark.slow
def test_ops_whose_in_place_variant_does_not_lower_the_arena_keep_their_fast_kernel() -> None:
    """person_detect (patches on): channel by channel is needed where it sets the peak, not at
    every depthwise layer; the others get the pixel kernel back at the same arena."""
    from tinyc.compiler import lower
    from tinyc.memory.plan import plan_memory

    c = compile_model(MODELS / "tflm/person_detect.tflite", Options())
    calls = lower(c.graph)[0]
    every = plan_memory(c.graph, calls, alignment=c.plan.alignment, fast_kernels=False)
    fast = plan_memory(c.graph, calls, alignment=c.plan.alignment)

    def variants(plan) -> int:
        return sum(call.function in CHANNEL_KERNELS for call in plan.calls)

    assert fast.arena_bytes <= every.arena_bytes
    assert 0 < variants(fast) < variants(every)
    verify(fast.buffers, fast.offsets, fast.alignment, fast.overlaps)
