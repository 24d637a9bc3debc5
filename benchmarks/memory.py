"""Arena bytes per shared model: tinyc vs its own lower bound, TFLM (measured live with the
tflite-micro recording allocator) and TinyEngine's published figures.

    python benchmarks/memory.py [--models DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyc.compiler import compile_model  # noqa: E402
from tinyc.errors import TinycError  # noqa: E402
from tinyc.shared_data import shared_dir  # noqa: E402
from tinyc.validate.reference import tflm_arena_bytes  # noqa: E402

# TinyEngine's own planner on these files (per-layer, input image excluded): DESIGN.md.
TINYENGINE = {
    "hanlab/vww.tflite": 93_992,
    "hanlab/mcunet-320kb-1mb_imagenet.tflite": 266_344,
    "hanlab/mcunetv2_large.tflite": 1_431_784,
    "hanlab/detection.tflite": 257_448,
}


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=str(shared_dir() / "models"))
    args = ap.parse_args()
    root = Path(args.models)
    rows = []
    for p in sorted(root.glob("*/*.tflite")):
        name = str(p.relative_to(root))
        try:
            c = compile_model(p)
            arena, lower, strategy = c.plan.arena_bytes, c.plan.lower_bound_bytes, c.plan.strategy
        except TinycError as e:
            rows.append((name, None, None, None, None, str(e).split(".")[0][:60]))
            continue
        try:
            tflm = tflm_arena_bytes(str(p))
        except Exception as e:  # a reference that cannot load the model is a data point, not a crash
            tflm = None
            strategy += f" (TFLM: {type(e).__name__})"
        rows.append((name, arena, lower, tflm, TINYENGINE.get(name), strategy))
    hdr = f"{'model':<52} {'tinyc':>10} {'lower bd':>10} {'gap':>6} {'TFLM':>10} {'vs TFLM':>8} {'TinyEngine':>11} {'vs TE':>7}  planner"
    print(hdr)
    print("-" * len(hdr))
    for name, arena, lower, tflm, te, note in rows:
        if arena is None:
            print(f"{name:<52} {'—':>10}  {note}")
            continue
        gap = f"{(arena / lower - 1) * 100:.1f}%" if lower else "-"
        vs_tflm = f"{arena / tflm:.2f}x" if tflm else "-"
        vs_te = f"{arena / te:.2f}x" if te else "-"
        print(f"{name:<52} {arena:>10,} {lower:>10,} {gap:>6} {tflm or 0:>10,} {vs_tflm:>8} "
              f"{te or 0:>11,} {vs_te:>7}  {note}")
    print("\ntinyc arena includes the model input and output; TinyEngine's figures exclude the input image.")
    return 0


if __name__ == "__main__":
    sys.exit(main())
