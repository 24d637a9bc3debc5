"""The peak-SRAM report: stable JSON keys, honest totals, and --strict on a model that does not fit."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.support.paths import MODELS
from tinyc.cli import main
from tinyc.compiler import Compiled, Options, compile_model
from tinyc.report.report import build_report
from tinyc.target.boards import get_board


def test_report_json_has_stable_keys_and_marks_one_peak_layer(capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", str(MODELS / "tflm/person_detect.tflite"), "--board", "stm32f746", "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("arena_bytes", "lower_bound_bytes", "peak_sram_bytes", "flash_bytes", "fits", "layers"):
        assert key in doc
    assert doc["fits"] is True
    assert sum(1 for layer in doc["layers"] if layer["peak"]) == 1
    assert doc["arena_bytes"] <= 55_296  # TFLM's arena for this model
    # Peak SRAM counts the arena (model input and output included) plus static data and stack.
    assert doc["peak_sram_bytes"] >= doc["arena_bytes"]


def test_report_totals_include_model_io_in_the_arena() -> None:
    c = compile_model(MODELS / "mlperf_tiny/kws_ref_model.tflite")
    rep = build_report(c, get_board("mps2_an386"))
    assert rep.arena.bytes == c.plan.arena_bytes
    assert rep.io_bytes == 490 + 12
    assert rep.peak_sram_bytes >= rep.arena.bytes
    assert max(r.live_bytes for r in rep.layers) == c.plan.lower_bound_bytes


def test_report_strict_exits_1_with_the_overflow_when_the_model_does_not_fit(
        capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["report", str(MODELS / "wake_vision/wv_quality_mobilenetv2.tflite"), "--board", "stm32f746",
               "--strict", "--patch", "off"])
    captured = capsys.readouterr()
    assert rc == 1
    assert "DOES NOT FIT" in captured.out
    assert "over by" in captured.out
    assert captured.err.count("\n") == 1 and "does not fit stm32f746g_disco" in captured.err


def test_report_without_strict_still_exits_0_when_it_does_not_fit() -> None:
    assert main(["report", str(MODELS / "wake_vision/wv_quality_mobilenetv2.tflite"), "--board", "stm32f746",
                 "--patch", "off"]) == 0


def test_patch_mode_makes_mobilenetv2_fit_the_f746_by_itself(capsys: pytest.CaptureFixture[str]) -> None:
    """Issue 4: WV MobileNetV2 (TFLM arena 1,215,024 B) does not fit layer by layer; the default
    --patch auto picks a plan that does, input included, and the JSON says which."""
    assert main(["report", str(MODELS / "wake_vision/wv_quality_mobilenetv2.tflite"), "--board", "stm32f746",
                 "--json", "--strict"]) == 0
    doc = json.loads(capsys.readouterr().out)
    p = doc["patch"]
    assert doc["fits"] is True and p["grid"] and p["split"] is not None
    assert p["peak_sram_bytes"] == doc["peak_sram_bytes"] <= 320 * 1024
    assert p["peak_sram_bytes_without_patches"] > 320 * 1024
    assert 0 < p["mac_overhead"] <= 0.10
    assert doc["io_bytes"] >= 224 * 224 * 3  # the input is in the arena figure
    layers = [r for r in doc["layers"] if r["patch"] is not None]
    assert len({tuple(r["patch"]) for r in layers}) == p["grid"][0] * p["grid"][1]


def test_report_html_is_one_self_contained_page(tmp_path: Path) -> None:
    page = tmp_path / "r.html"
    model = str(MODELS / "tflm/person_detect.tflite")
    assert main(["report", model, "--board", "stm32f746", "--html", str(page)]) == 0
    text = page.read_text()
    assert text.startswith("<!doctype html>") and "<svg" in text and "<table>" in text
    assert "src=" not in text and "href=\"http" not in text  # nothing fetched from elsewhere
    assert "patch" in text.lower() and "peak SRAM" in text
    assert main(["report", model, "--board", "stm32f746", "--html", str(page)]) == 2  # no silent overwrite
    assert main(["report", model, "--board", "stm32f746", "--html", str(page), "--force"]) == 0


@pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")
def test_static_data_is_read_off_the_objects_not_assumed(monkeypatch: pytest.MonkeyPatch) -> None:
    """Runtime static data comes from the cross-compiled objects: the arena is accounted on its own
    line, any other .data/.bss lands in the peak. A streamed input is not compiled in unless the
    opt-in buffer reader is, and then its buffer counts like any other static data."""
    c = compile_model(MODELS / "tflm/person_detect.tflite", Options(patch="2x4@3", patch_input="stream"))
    board = get_board("stm32f746")
    base = build_report(c, board)
    assert base.static_data.how == "compiled" and base.static_data.bytes == 0
    assert base.peak_sram_bytes == base.arena.bytes + base.stack.bytes  # the arena is not counted twice
    assert base.streamed_input_bytes == 96 * 96

    real_files = Compiled.files
    monkeypatch.setattr(Compiled, "files", lambda self: {
        k: ("#define TINYC_READ_INPUT_BUFFER 1\n" + v if k == "model.c" else v) for k, v in real_files(self).items()})
    assert build_report(c, board).static_data.bytes == 96 * 96  # the buffer reader's copy of the frame
    monkeypatch.undo()

    monkeypatch.setattr(Compiled, "files", lambda self: {
        k: v + ("\nint tinyc_table[300] = {1};\nstatic char tinyc_log[77];\n"
                "char *tinyc_log_at(int i) { return &tinyc_log[i]; }\n" if k == "model.c" else "")
        for k, v in real_files(self).items()})
    grown = build_report(c, board)
    assert grown.static_data.bytes == 1200 + 77
    assert grown.peak_sram_bytes == base.peak_sram_bytes + 1277 + (grown.stack.bytes - base.stack.bytes)


@pytest.mark.parametrize("suffix", ["png", "svg"])
def test_plot_draws_the_real_footprint_under_the_arena(tmp_path: Path, suffix: str) -> None:
    """The timeline stacks each tensor's occupied bytes; bytes shared by in-place buffers are drawn
    once, so every step's stack equals the union of live address ranges and stays under the arena."""
    from tinyc.report.plot import _series

    model = str(MODELS / "mlperf_tiny/vww_96_int8.tflite")
    dest = tmp_path / f"mem.{suffix}"
    assert main(["report", model, "--board", "stm32f746", "--plot", str(dest)]) == 0
    assert dest.stat().st_size > 1000
    assert main(["report", model, "--board", "stm32f746", "--plot", str(tmp_path / "mem.jpg")]) == 2

    c = compile_model(model)
    plan, steps = c.plan, len(c.graph.ops)
    stacked = [sum(col) for col in zip(*(v for _, v in _series(c, steps)))]
    for s in range(steps):
        used = set()
        for b in plan.buffers:
            if b.first <= s <= b.last:
                used.update(range(plan.offsets[b.name], plan.offsets[b.name] + b.size))
        assert stacked[s] == len(used) <= plan.arena_bytes
    # in-place buffers really do share bytes in this plan, so the old raw-size stack would overshoot
    assert any(sum(b.size for b in plan.buffers if b.first <= s <= b.last) > stacked[s] for s in range(steps))


def test_compile_strict_exits_1_when_the_model_does_not_fit(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    rc = main(["compile", str(MODELS / "wake_vision/wv_quality_mobilenetv2.tflite"), "--board", "stm32f746",
               "--patch", "off", "--strict", "-o", str(tmp_path / "out")])
    captured = capsys.readouterr()
    assert rc == 1 and "DOES NOT FIT" in captured.out and "over by" in captured.out
    assert "does not fit stm32f746g_disco" in captured.err


def test_without_the_toolchain_fit_is_unknown_unless_the_known_part_overflows(monkeypatch) -> None:
    """Stack, static data and code need arm-none-eabi-gcc: without it "fits" is unknown (None),
    never a silent yes, while an arena that alone overflows is still a certain no."""
    import tinyc.report.report as report

    monkeypatch.setattr(report, "cross_compile_sizes", lambda *a, **k: None)
    board = get_board("stm32f746")
    small = build_report(compile_model(MODELS / "tflm/person_detect.tflite"), board)
    assert small.fits is None and all(r.fits is None for r in small.regions)
    assert small.stack.bytes is None and "unknown" in small.stack.how
    big = build_report(compile_model(MODELS / "wake_vision/wv_quality_mobilenetv2.tflite", Options(patch="off")), board)
    assert big.fits is False and any("over by" in a for a in big.advice)


def test_every_ram_region_is_listed() -> None:
    """The H743's RAM is not one run: the arena's run is checked, the others are listed as free."""
    rep = build_report(compile_model(MODELS / "tflm/person_detect.tflite"), get_board("nucleo_h743zi"))
    names = [r.name for r in rep.regions if r.kind == "ram"]
    assert len(names) >= 2 and rep.regions[0].used == rep.peak_sram_bytes
    assert all(r.used == 0 for r in rep.regions[1:] if r.kind == "ram")
