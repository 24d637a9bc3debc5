"""Every shared model on the QEMU Cortex-M7 (mps2_an500) and Cortex-M4 (mps2_an386) boards: a
model that fits validates bit-exact against TFLM on a few inputs; one that does not fit fails
at link time with tinyc's message naming the region and the bytes over.

Whether a model fits is the compiler report's verdict for the board (never a hard-coded arena
size: the planner keeps improving); the linker then has to agree. Firmware builds are cached by
(model, options, board, tinyc sources), so a rerun without source changes only runs QEMU.
Inputs: one random and one real sample (image, keyword, spectrogram) where the data set has
one, else two random ones.
"""

from __future__ import annotations

import re

import numpy as np
import pytest

from tests.models.test_models import _real_inputs
from tests.support.paths import MODELS, all_models
from tinyc.compiler import Options, compile_model
from tinyc.errors import CheckFailed
from tinyc.report.report import build_report
from tinyc.target.boards import get_board
from tinyc.validate.datasets import Dataset, random_dataset
from tinyc.validate.runner import prepare_firmware, validate

pytestmark = pytest.mark.board
BOARDS = ["mps2_an500", "mps2_an386"]
MODEL_IDS = [str(p.relative_to(MODELS)) for p in all_models()]
_OVERFLOW = re.compile(r"^tinyc: does not fit on (\S+): (?:(RAM|FLASH) region \S+ \([\d.]+ [KM]?B\) "
                       r"overflowed by (\d+) bytes(?:; )?)+$")


def _inputs(model: str, compiled) -> Dataset:
    g = compiled.graph
    t = g.t(g.inputs[0])
    real = _real_inputs(model, t)
    if real is None:
        return random_dataset(t, 2, seed=5)
    return Dataset(inputs=np.concatenate([random_dataset(t, 1, seed=5).inputs, real[:1]]),
                   names=["random0", "real0"], source="1 random + 1 real")


def _planned_fit(compiled, board, monkeypatch) -> bool:
    """The report's fit check from the planned figures (arena, weights): its cross-compiled code
    size and stack estimate are skipped here, they cost a second arm-none-eabi-gcc run per case
    and the linker checks the exact sizes next anyway (it must agree, or the test fails)."""
    import tinyc.report.report as report

    monkeypatch.setattr(report, "cross_compile_sizes", lambda *a, **k: None)
    return build_report(compiled, board).fits is not False  # None: fits what is known


@pytest.mark.parametrize("board_name", BOARDS)
@pytest.mark.parametrize("model", MODEL_IDS)
def test_model_validates_or_fails_to_link(model: str, board_name: str, monkeypatch) -> None:
    board = get_board(board_name)
    compiled = compile_model(MODELS / model, Options(alignment=board.alignment))
    if not _planned_fit(compiled, board, monkeypatch):
        with pytest.raises(CheckFailed) as e:
            prepare_firmware(MODELS / model, board, True, compiled=compiled)
        assert _OVERFLOW.match(str(e.value)), str(e.value)
        return
    res = validate(MODELS / model, board, _inputs(model, compiled), jobs=1, quiet=True, compiled=compiled)
    detail = f"{res.first_mismatch} {res.first_layer_mismatch}"
    assert res.bit_exact, f"{model} on {board_name}: {res.mismatches}/{res.inputs} differ: {detail}"
    assert res.latency.get("instructions", 0) > 0 and res.peak_stack_bytes


def test_a_model_that_does_not_fit_fails_at_link_time(monkeypatch) -> None:
    """On the emulated STM32F746 (320 KB SRAM, 1 MB flash) some shared model does not fit (the
    report says which); its build must fail in the linker with the tinyc message, and the
    overflow must be in a region the report flagged."""
    board = get_board("stm32f746g_disco")
    over = None
    for p in sorted(all_models(), key=lambda p: -p.stat().st_size):  # biggest first: likeliest
        compiled = compile_model(p, Options(alignment=board.alignment))
        if not _planned_fit(compiled, board, monkeypatch):
            over = (p, compiled, build_report(compiled, board))
            break
    if over is None:
        pytest.skip("every shared model fits the STM32F746 now; nothing to check here")
    p, compiled, rep = over
    with pytest.raises(CheckFailed) as e:
        prepare_firmware(p, board, True, compiled=compiled)
    msg = str(e.value)
    m = _OVERFLOW.match(msg)
    assert m and m.group(1) == "stm32f746g_disco", msg
    flagged = {r.kind.upper() for r in rep.regions if not r.fits}
    linked = set(re.findall(r"(RAM|FLASH) region", msg))
    assert linked & flagged, (msg, flagged)
    assert all(int(n) > 0 for n in re.findall(r"overflowed by (\d+) bytes", msg))
