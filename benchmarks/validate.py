"""Validation throughput: N inputs of a model on an emulated board, device vs TFLM, end to end.

The issue-5 goal: 1,000 inputs of mlperf_tiny/vww_96_int8.tflite on the emulated STM32F746
(`stm32f746g_disco --emulate`, QEMU mps2-an500) in at most 2 minutes on a 2-core machine,
compile and cross build included (the build is done afresh in a temporary folder, not taken
from the cache), bit-exact against TFLM.

    python benchmarks/validate.py [--model M] [--board B] [-n 1000] [--jobs 2] [--data DIR|random]

Data: by default the 10 Wake Vision test images at 128x128, resized to the model input and
cycled with seeded random crops/flips/brightness to reach N (labels carry over, so the
accuracy printed is a pipeline check, not an accuracy estimate); `--data random` uses random
int8 inputs instead. The output says which.
"""

from __future__ import annotations

import argparse
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from tinyc.frontend.tflite_reader import read_tflite  # noqa: E402
from tinyc.shared_data import shared_dir  # noqa: E402
from tinyc.target.boards import get_board  # noqa: E402
from tinyc.validate.datasets import load_dataset  # noqa: E402
from tinyc.validate.runner import ValidationResult, validate  # noqa: E402

MODEL = shared_dir() / "models" / "mlperf_tiny" / "vww_96_int8.tflite"
DATA = shared_dir() / "data" / "wake_vision_test_128"
GOAL_S = 120.0


def run(model: Path = MODEL, board: str = "stm32f746g_disco", n: int = 1000, jobs: int = 2,
        data: str | None = None, quiet: bool = True) -> tuple[ValidationResult, float]:
    """Validate ``n`` inputs with a fresh build; returns the result and the wall seconds
    (data preparation, compile, cross build, reference, QEMU runs and comparison)."""
    t0 = time.perf_counter()
    g = read_tflite(str(model))
    spec = str(DATA) if data is None else data
    ds = load_dataset(spec, g.t(g.inputs[0]), n, augment=True)
    with tempfile.TemporaryDirectory(prefix="tinyc-bench-validate-") as tmp:
        res = validate(model, get_board(board), ds, emulate=True, jobs=jobs, out=Path(tmp) / "fw", quiet=quiet)
    return res, time.perf_counter() - t0


def table(res: ValidationResult, wall: float) -> str:
    lat = res.latency
    unit = "instructions" if "instructions" in lat else "cycles"
    rows = [("inputs", f"{res.inputs:,}"),
            ("wall seconds (incl. compile/build)", f"{wall:.1f}"),
            ("inputs/s", f"{res.inputs / wall:.1f}"),
            ("bit-exact", "yes" if res.bit_exact else "NO"),
            ("mismatches", f"{res.mismatches}"),
            (f"median {unit}/inference", f"{lat[unit]:,}" if lat else "-"),
            ("accuracy (labels)", f"{res.accuracy * 100:.1f} %" if res.accuracy is not None else "- (no labels)"),
            ("top-1 agreement with TFLM", f"{res.top1_agreement * 100:.1f} %")]
    w = max(len(k) for k, _ in rows)
    t = res.timings
    lines = [f"validate benchmark: {res.model} on {res.board}{' (emulated)' if res.emulated else ''}, "
             f"--jobs {res.jobs}, inputs via {res.path}",
             f"data: {res.data}", ""]
    lines += [f"  {k:<{w}}  {v}" for k, v in rows]
    lines += ["", f"  phases (wall s): compile+build {t.get('compile_build', 0):.1f}, device runs {t.get('device', 0):.1f}, "
                  f"TFLM reference {t.get('reference', 0):.1f} (overlapped; waited {t.get('reference_wait', 0):.1f} "
                  f"after the device runs)",
              f"  goal: <= {GOAL_S:.0f} s for 1,000 inputs: "
              + ("met" if res.inputs >= 1000 and wall <= GOAL_S else ("MISSED" if res.inputs >= 1000 else "n/a (<1,000 inputs)"))]
    return "\n".join(lines)


def main() -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--model", default=str(MODEL))
    ap.add_argument("--board", default="stm32f746g_disco")
    ap.add_argument("-n", type=int, default=1000)
    ap.add_argument("--jobs", type=int, default=2)
    ap.add_argument("--data", default=None, help="image folder (cycled/augmented to N) or 'random'; "
                                                 "default: the Wake Vision test images")
    args = ap.parse_args()
    res, wall = run(Path(args.model), args.board, args.n, args.jobs, args.data, quiet=False)
    print(table(res, wall))
    return 0 if res.bit_exact else 1


if __name__ == "__main__":
    sys.exit(main())
