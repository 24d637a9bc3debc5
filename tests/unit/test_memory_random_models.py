"""Property: on random small CNNs (convolutions of any window, stride and dilation, depthwise,
residual ADDs, pooling), the plan of every registered strategy passes the independent verifier
and the generated C, built with ASan+UBSan, stays bit-exact with TFLM (hypothesis)."""

from __future__ import annotations

import numpy as np
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from tests.schedule.test_patch_models import Net
from tests.support.golden import assert_outputs_equal
from tests.support.reference import run_tflm
from tinyc.api import Options, compile_model, run_on_host
from tinyc.memory.allocators import allocators
from tinyc.memory.verify import verify

layer = st.one_of(
    st.tuples(st.just("conv"), st.integers(2, 12), st.sampled_from([1, 3, 5]), st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.just("dw"), st.just(0), st.sampled_from([3, 5]), st.integers(1, 2), st.integers(1, 2)),
    st.tuples(st.just("res"), st.just(0), st.sampled_from([3, 5]), st.just(1), st.just(1)),
    st.tuples(st.just("pool"), st.just(0), st.just(2), st.just(2), st.just(1)),
)


@settings(max_examples=12, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(hw=st.tuples(st.integers(5, 17), st.integers(5, 17)), layers=st.lists(layer, min_size=2, max_size=5),
       strategy=st.sampled_from(sorted(allocators())), seed=st.integers(0, 1000))
def test_every_strategy_is_bit_exact_on_random_models(hw, layers, strategy, seed) -> None:
    n = Net((*hw, 4), seed=seed)
    n.conv(8, 3, act="RELU")  # pooling keeps its input's quantization: start from the layers' (scale, zero point)
    for kind, c, k, s, d in layers:
        h, w, _ = n.shape
        if min(h, w) < k * d:
            continue
        if kind == "conv":
            n.conv(c, k, s=s, d=d, act="RELU")
        elif kind == "dw":
            n.conv(0, k, s=s, d=d, depthwise=True)
        elif kind == "res":
            n.residual(k)
        else:
            n.pool("MAX_POOL_2D", 2, 2, "VALID")
    model = n.head()
    opts = Options(allocator=strategy, patch="off")
    plan = compile_model(model, opts).plan
    assert plan.strategy.split("+")[-1] == strategy
    verify(plan.buffers, plan.offsets, plan.alignment, plan.overlaps)
    x = np.random.default_rng(seed).integers(-128, 128, (2, 1, *hw, 4), dtype=np.int8)
    assert_outputs_equal(run_on_host(model, [x], opts), run_tflm(model, [x]))
