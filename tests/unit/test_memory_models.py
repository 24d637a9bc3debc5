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
