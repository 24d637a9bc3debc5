"""Arena bytes per shared model: tinyc vs its own lower bound, TFLM (measured live with the
tflite-micro recording allocator) and TinyEngine's published figures; then patch-based
inference (MCUNetV2) with the input kept whole and streamed, vs TinyEngine's patch plans.

    python benchmarks/memory.py [--models DIR]
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyc.compiler import Options, compile_model  # noqa: E402
from tinyc.errors import TinycError  # noqa: E402
from tinyc.passes.int8_input import float_inputs_to_strip  # noqa: E402
from tinyc.shared_data import shared_dir  # noqa: E402
from tinyc.validate.reference import tflm_arena_bytes  # noqa: E402

# TinyEngine's own planner on these files (per-layer, input image excluded): DESIGN.md.
TINYENGINE = {
    "hanlab/vww.tflite": 93_992,
    "hanlab/mcunet-320kb-1mb_imagenet.tflite": 266_344,
    "hanlab/mcunetv2_large.tflite": 1_431_784,
    "hanlab/detection.tflite": 257_448,
}
# TinyEngine's patch-based plans (input excluded): the issue-4 reference points.
TINYENGINE_PATCH = {
    "hanlab/mcunetv2_large.tflite": (444_168, "4x4"),
    "hanlab/vww.tflite": (62_352, "2x2"),
}


def _patch(p: Path, patch_input: str, input_type: str = "model") -> tuple[int, str]:
    c = compile_model(p, Options(patch="auto", patch_input=patch_input, input_type=input_type))
    ch = c.patch.chosen if c.patch else None
    plan = f"{ch.grid[0]}x{ch.grid[1]}@{ch.layer} +{ch.mac_overhead * 100:.1f}%MAC" if ch else "none"
    return c.plan.arena_bytes, plan


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--models", default=str(shared_dir() / "models"))
    args = ap.parse_args()
    root = Path(args.models)
    rows = []
    for p in sorted(root.glob("*/*.tflite")):
        name = str(p.relative_to(root))
        try:
            c = compile_model(p, Options(patch="off"))
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

    print("\nPatch-based inference (--patch auto, MAC overhead budget 10 %)")
    hdr = (f"{'model':<52} {'layer-by-layer':>14} {'patch, input whole':>32} {'patch, int8 input whole':>32} "
           f"{'patch, input streamed':>32} {'TinyEngine patch':>18}")
    print(hdr)
    print("-" * len(hdr))
    for name, arena, *_ in rows:
        if arena is None:
            continue
        whole, wplan = _patch(root / name, "whole")
        stream, splan = _patch(root / name, "stream")
        g = compile_model(root / name, Options(patch="off")).source_graph
        if float_inputs_to_strip(g):
            i8, i8plan = _patch(root / name, "whole", "int8")
            i8_s = f"{i8:>10,} {i8plan:>21}"
        else:
            i8_s = f"{'(int8 already)':>32}"
        te = TINYENGINE_PATCH.get(name)
        te_s = f"{te[0]:,} ({te[1]})" if te else "-"
        print(f"{name:<52} {arena:>14,} {whole:>10,} {wplan:>21} {i8_s} {stream:>10,} {splan:>21} {te_s:>18}")
    print("\npatch arenas: whole = the input in the arena; int8 input = --input-type int8 (a float32 input the "
          "model quantizes first is taken as int8, in the arena); streamed = only the input boxes a patch reads "
          "(the application's <name>_read_input() supplies them). Peak SRAM adds stack and static data "
          "(tinyc report).")
    return 0


if __name__ == "__main__":
    sys.exit(main())
