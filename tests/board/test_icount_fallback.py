"""Instruction counts without the insncount plugin: QEMU runs with -icount and the TIMER0 ticks
the firmware measures around each inference convert to instructions (tinyc/target/qemu.py).

Measured on MLPerf Tiny's ad01 (emulated F746, mps2-an500, shift=6), per input:
plugin 1,958,139 / 1,958,114 / 1,958,107, fallback 1,958,153 / 1,958,128 / 1,958,121: the
fallback is the exact count + 14, every time (the instructions between the TIMER0 reads and
the markers in timed_invoke), and 25 MHz ticks at 64 ns per instruction resolve 0.625 of an
instruction. So the tolerance is absolute, 0..100 instructions over the exact count (the 14
plus room for a compiler that schedules timed_invoke differently): 0.005 % of this model, far
inside the "few percent" the fallback is meant for; a wrong shift or clock would be off by
a factor of 2 or more. (Since FULLY_CONNECTED runs on packed int16 weights, ad01 takes about
492,000 instructions per input.)"""

from __future__ import annotations

import numpy as np
import pytest

from tests.support.paths import MODELS
from tinyc.errors import CheckFailed
from tinyc.target import qemu
from tinyc.target.boards import get_board
from tinyc.target.device import Device

pytestmark = pytest.mark.board
AD01 = MODELS / "mlperf_tiny" / "ad01_int8.tflite"
OVERHEAD = (0, 100)  # fallback - exact, in instructions (see the module doc)


@pytest.fixture(scope="module")
def ad01():
    from tinyc.validate.runner import prepare_firmware

    compiled, d, _ = prepare_firmware(AD01, get_board("stm32f746g_disco"), emulate=True)
    return compiled, d


@pytest.fixture(autouse=True)
def fresh_qemu_state(monkeypatch):
    """Forget which plugins loaded and which warnings were given in this process."""
    monkeypatch.setattr(qemu, "_PLUGIN_STATE", {})
    monkeypatch.setattr(qemu, "_WARNED", set())


def _inputs(compiled, n: int) -> list[np.ndarray]:
    g = compiled.graph
    rng = np.random.default_rng(3)
    return [rng.integers(-128, 128, g.t(g.inputs[0]).shape, dtype=np.int8) for _ in range(n)]


def _run(d, xs, monkeypatch, mode: str) -> tuple[list[int], str | None]:
    monkeypatch.setenv(qemu.PLUGIN_ENV, mode)
    with Device.start(d, emulate=True) as dev:
        counts = []
        for x in xs:
            dev.run([x])
            counts.append(dev.stats().instructions)
        return counts, dev.stats().instructions_source


def test_fallback_agrees_with_the_plugin(ad01, monkeypatch, capsys):
    compiled, d = ad01
    xs = _inputs(compiled, 3)
    exact, exact_source = _run(d, xs, monkeypatch, "on")
    assert exact_source == qemu.SOURCE_PLUGIN
    approx, source = _run(d, xs, monkeypatch, "off")
    assert source == qemu.icount_source(qemu.DEFAULT_ICOUNT_SHIFT)
    assert "-icount" in source and "approximate" in source
    for e, a in zip(exact, approx):
        assert e > 200_000  # the inference ran
        assert OVERHEAD[0] <= a - e <= OVERHEAD[1], (exact, approx)
    _run(d, xs[:1], monkeypatch, "off")
    err = capsys.readouterr().err
    assert err.count("tinyc: warning:") == 1 and "TINYC_QEMU_PLUGIN=off" in err  # warned once


def test_fallback_on_the_file_path_and_in_validate(ad01, monkeypatch):
    """The semihosting fast path (what validate uses under QEMU) gets one derived count per
    input, and validate's latency names its source."""
    from tinyc.validate.datasets import load_dataset
    from tinyc.validate.runner import validate

    compiled, d = ad01
    xs = _inputs(compiled, 3)
    exact, _ = _run(d, xs, monkeypatch, "on")
    with Device.start(d, emulate=True) as dev:  # still TINYC_QEMU_PLUGIN=on
        assert dev.qemu.exact_instructions
    monkeypatch.setenv(qemu.PLUGIN_ENV, "off")
    with Device.start(d, emulate=True) as dev:
        assert not dev.qemu.exact_instructions
        dev.load_inputs_file([[x] for x in xs])
        for i in range(len(xs)):
            dev.run_file(i)
        counts = dev.qemu.instruction_counts()
    assert len(counts) == len(xs)
    assert all(OVERHEAD[0] <= a - e <= OVERHEAD[1] for e, a in zip(exact, counts)), (exact, counts)

    g = compiled.graph
    res = validate(AD01, get_board("stm32f746g_disco"), load_dataset("random", g.t(g.inputs[0]), 2),
                   emulate=True, quiet=True, compiled=compiled)
    assert res.bit_exact
    lat = res.to_json()["latency"]
    assert lat["source"] == qemu.icount_source(qemu.DEFAULT_ICOUNT_SHIFT)
    assert abs(lat["instructions"] - np.median(exact)) < 0.001 * np.median(exact)  # other inputs
    assert "approximate" in res.text()


def test_a_plugin_qemu_cannot_load_falls_back(ad01, monkeypatch, tmp_path, capsys):
    """A plugin that builds but does not load (another QEMU's plugin API, a QEMU without plugin
    support) is found before the guest starts: fallback with a warning, or an error with =on."""
    compiled, d = ad01
    bogus = tmp_path / "insncount.so"
    bogus.write_bytes(b"not a shared object")
    monkeypatch.setattr(qemu, "build_plugin", lambda: bogus)
    counts, source = _run(d, _inputs(compiled, 1), monkeypatch, "auto")
    assert source == qemu.icount_source(qemu.DEFAULT_ICOUNT_SHIFT) and counts[0] > 200_000
    err = capsys.readouterr().err
    assert "cannot load the insncount plugin" in err and "approximate" in err
    monkeypatch.setenv(qemu.PLUGIN_ENV, "on")
    with pytest.raises(CheckFailed, match="cannot load the insncount plugin.*TINYC_QEMU_PLUGIN=on"):
        Device.start(d, emulate=True)


def test_plugin_mode_is_checked(monkeypatch):
    monkeypatch.setenv(qemu.PLUGIN_ENV, "sometimes")
    with pytest.raises(Exception, match="TINYC_QEMU_PLUGIN='sometimes': use auto, on or off"):
        qemu.plugin_mode()
