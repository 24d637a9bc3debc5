"""The tinyc demo: a Wake Vision person detector on an emulated STM32F746 Discovery.

compile (peak-SRAM report) → cross-build with arm-none-eabi-gcc against the F746's real memory
limits → run under QEMU (Cortex-M7) → validate over the serial link (the UART on a TCP socket,
the framed protocol a real board speaks) against TFLM on the 10 Wake Vision test images:
bit-exactness, accuracy, instructions per inference, peak SRAM and flash.
"""

from __future__ import annotations

import sys
import time
from pathlib import Path

from tinyc.cli import main as tinyc
from tinyc.shared_data import shared_dir

REPO = Path(__file__).resolve().parents[2]
SHARED = shared_dir()
MODEL = SHARED / "models/wake_vision/wv_quality_mcunet-320kb-1mb_vww.tflite"
DATA = SHARED / "data/wake_vision_test_128"
OUT = REPO / "out" / "person_detection"


def main() -> int:
    if not MODEL.is_file():
        print(f"demo: {MODEL} not found (set TINYC_SHARED to the shared folder)", file=sys.stderr)
        return 2
    t0 = time.perf_counter()
    print(f"== 1. compile {MODEL.name} for stm32f746g_disco", flush=True)
    rc = tinyc(["compile", str(MODEL), "--board", "stm32f746g_disco", "-o", str(OUT), "--force"])
    if rc:
        return rc
    print("\n== 2. build with arm-none-eabi-gcc (real F746 memory limits, QEMU load addresses)", flush=True)
    rc = tinyc(["build", str(OUT), "--emulate"])
    if rc:
        return rc
    print("\n== 3. validate on QEMU mps2-an500 (Cortex-M7) over the serial link against TFLM", flush=True)
    rc = tinyc(["validate", str(MODEL), "--board", "stm32f746g_disco", "--emulate", "--data", str(DATA),
                "--serial", "-o", str(OUT)])
    print(f"\ndemo finished in {time.perf_counter() - t0:.0f} s")
    return rc


if __name__ == "__main__":
    sys.exit(main())
