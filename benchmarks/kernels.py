"""Kernel speed on emulated Cortex-M: instructions per MAC of single-layer models shaped like
MobileNet/MCUNet layers, counted exactly by QEMU's instruction-count plugin (instructions, not
cycles: the emulator has no pipeline model; on a Cortex-M4/M7 most of these run in 1 cycle,
SMLAD included, loads 1-2).

    python benchmarks/kernels.py [--boards mps2_an386,stm32f746g_disco] [--only fc]

Each layer is one op between an int8 input and output, compiled and run by `tinyc validate`
(so every figure is also a bit-exactness check against TFLM on a random input), then counted by
`tinyc profile`'s layer hook: the figure is the layer's own instructions (one kernel call, as the
per-layer CMSIS-NN figures in ../shared/bench/cmsisnn_m7_m4.json count one call), without
tinyc's per-inference overhead (a few hundred instructions, which would dominate small layers).
"""

from __future__ import annotations

import argparse
import sys
import tempfile
from pathlib import Path

import numpy as np

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tests.support.tflite_builder import ModelBuilder  # noqa: E402
from tinyc.compiler import Options, compile_model  # noqa: E402
from tinyc.target.boards import get_board  # noqa: E402
from tinyc.validate.datasets import load_dataset  # noqa: E402
from tinyc.validate.profile import profile_on_qemu  # noqa: E402
from tinyc.validate.runner import validate  # noqa: E402

# (name, input HxWxC, op, kernel, stride, output channels); FULLY_CONNECTED: input (1, 1, features)
LAYERS = [
    ("pointwise 48x48 8->16", (48, 48, 8), "CONV_2D", 1, 1, 16),
    ("pointwise 24x24 32->64", (24, 24, 32), "CONV_2D", 1, 1, 64),
    ("pointwise 6x6 128->256", (6, 6, 128), "CONV_2D", 1, 1, 256),
    ("depthwise 3x3 48x48x16", (48, 48, 16), "DEPTHWISE_CONV_2D", 3, 1, 16),
    ("depthwise 3x3/2 24x24x64", (24, 24, 64), "DEPTHWISE_CONV_2D", 3, 2, 64),
    ("conv 3x3/2 96x96x3->8", (96, 96, 3), "CONV_2D", 3, 2, 8),
    ("conv 3x3 12x12x32->32", (12, 12, 32), "CONV_2D", 3, 1, 32),
    ("depthwise 3x3 6x6x128", (6, 6, 128), "DEPTHWISE_CONV_2D", 3, 1, 128),
    ("depthwise 3x3/2 96x96x1 x8", (96, 96, 1), "DEPTHWISE_CONV_2D", 3, 2, 8),
    ("depthwise 3x3 25x5x64 in place", (25, 5, 64), "DEPTHWISE_CONV_2D", 3, 1, 64),
    ("depthwise 3x3 24x24x32 in place", (24, 24, 32), "DEPTHWISE_CONV_2D", 3, 1, 32),
    ("fc 256->2", (1, 1, 256), "FULLY_CONNECTED", 1, 1, 2),
    ("fc 64->12", (1, 1, 64), "FULLY_CONNECTED", 1, 1, 12),
    ("fc 256->64", (1, 1, 256), "FULLY_CONNECTED", 1, 1, 64),
]


def layer_model(shape: tuple[int, int, int], kind: str, k: int, s: int, c_out: int, seed: int = 0,
                in_place: bool = False) -> bytes:
    rng = np.random.default_rng(seed)
    h, w, c = shape
    b = ModelBuilder()
    if kind == "FULLY_CONNECTED":
        x = b.input("x", shape=(1, c), dtype="int8", scale=0.02, zero_point=-7)
        wt = b.const("w", rng.integers(-127, 128, size=(c_out, c)).astype(np.int8), scale=0.003, zero_point=0)
        bias = b.const("b", rng.integers(-2000, 2000, size=c_out).astype(np.int32), scale=0.02 * 0.003)
        y = b.tensor("y", shape=(1, c_out), dtype="int8", scale=0.05, zero_point=3)
        b.op(kind, [x, wt, bias], [y], dict(fused_activation_function="NONE"))
        b.output(y)
        return b.build()
    x = b.input("x", shape=(1, h, w, c), dtype="int8", scale=0.02, zero_point=-7)
    oh, ow = -(-h // s), -(-w // s)
    if kind == "DEPTHWISE_CONV_2D":
        wt = b.const("w", rng.integers(-127, 128, size=(1, k, k, c_out)).astype(np.int8),
                     scale=list(rng.uniform(0.002, 0.01, c_out)), zero_point=[0] * c_out, quantized_dimension=3)
        opts = dict(depth_multiplier=c_out // c)
    else:
        wt = b.const("w", rng.integers(-127, 128, size=(c_out, k, k, c)).astype(np.int8),
                     scale=list(rng.uniform(0.001, 0.004, c_out)), zero_point=[0] * c_out)
        opts = {}
    bias = b.const("b", rng.integers(-2000, 2000, size=c_out).astype(np.int32))
    y = b.tensor("y", shape=(1, oh, ow, c_out), dtype="int8", scale=0.05, zero_point=3)
    b.op(kind, [x, wt, bias], [y], dict(padding="SAME", stride_h=s, stride_w=s, fused_activation_function="RELU6",
                                        **opts))
    b.output(y)
    if kind == "DEPTHWISE_CONV_2D" and not in_place:
        # a second reader keeps the input alive: the layer runs its own kernel, not the in-place
        # channel-by-channel variant the planner takes for a lone layer ("in place" rows measure that)
        z = b.tensor("z", shape=(1, h, w, c), dtype="int8", scale=0.02, zero_point=-7)
        b.op("MAX_POOL_2D", [x], [z], dict(padding="VALID", stride_h=1, stride_w=1, filter_height=1,
                                          filter_width=1, fused_activation_function="NONE"))
        b.output(z)
    return b.build()


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--boards", default="mps2_an386,stm32f746g_disco")
    ap.add_argument("--only", default="", help="only the layers whose name contains this")
    args = ap.parse_args()
    boards = args.boards.split(",")
    hdr = f"{'layer':<28} {'MACs':>10} " + " ".join(f"{b + ' instr/MAC':>30}" for b in boards) + "  kernel"
    print(hdr)
    print("-" * len(hdr))
    with tempfile.TemporaryDirectory(prefix="tinyc-bench-kernels-") as tmp:
        for name, shape, kind, k, s, c_out in LAYERS:
            if args.only not in name:
                continue
            m = Path(tmp) / f"{name.replace(' ', '_').replace('/', 's')}.tflite"
            m.write_bytes(layer_model(shape, kind, k, s, c_out, in_place="in place" in name))
            cells, macs = [], 0
            for board in boards:
                bd = get_board(board)
                c = compile_model(m, Options(patch="off", alignment=bd.alignment))
                macs = c.macs[0]
                data = load_dataset("random", c.graph.t(c.graph.inputs[0]), 1)
                res = validate(m, bd, data, emulate=True, quiet=True, localize=False, compiled=c)
                prof = profile_on_qemu(c, bd, data.inputs[0])
                instr = prof.layers[0].instructions  # the layer (a depthwise layer's second reader not counted)
                ok = "" if res.bit_exact else " NOT BIT-EXACT"
                cells.append(f"{instr / macs:>10.2f} ({instr:>12,}){ok}" if instr else f"{'n/a':>30}")
            print(f"{name:<28} {macs:>10,} " + " ".join(f"{cell:>30}" for cell in cells) + f"  {c.calls[0].function}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
