"""The generated CMakeLists.txt builds the same firmware as the Makefile: warning-free with
-Werror for the board and for its QEMU twin, and the CMake-built emulated firmware answers the
link and validates bit-exact."""

from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.support.paths import MODELS
from tinyc.cli import main as tinyc
from tinyc.target.qemu import start_qemu

pytestmark = [pytest.mark.board,
              pytest.mark.skipif(shutil.which("cmake") is None, reason="needs cmake")]
KWS = MODELS / "mlperf_tiny" / "kws_ref_model.tflite"


def _cmake(proj: Path, build: str, *defs: str) -> Path:
    subprocess.run(["cmake", "-B", build, *defs], cwd=proj, check=True, capture_output=True, text=True)
    r = subprocess.run(["cmake", "--build", build, "-j", "2"], cwd=proj, capture_output=True, text=True)
    assert r.returncode == 0, r.stdout[-3000:] + r.stderr[-3000:]
    assert "warning" not in (r.stdout + r.stderr).lower()
    return proj / build / "firmware.elf"


def test_cmake_builds_board_and_emulated_firmware_that_validates(tmp_path: Path, capsys) -> None:
    proj = tmp_path / "fw"
    assert tinyc(["compile", str(KWS), "--board", "stm32f746g_disco", "-o", str(proj)]) == 0
    board_elf = _cmake(proj, "build-cmake")
    emu_elf = _cmake(proj, "build-cmake-emu", "-DTINYC_EMULATE=ON")
    assert board_elf.is_file() and emu_elf.is_file()
    capsys.readouterr()
    with start_qemu(emu_elf, "mps2-an500", count_instructions=False, timeout=120) as q:
        rc = tinyc(["validate", str(KWS), "--board", "stm32f746g_disco", "--data", "random", "-n", "2",
                    "--port", q.url, "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["bit_exact"] and doc["inputs"] == 2
