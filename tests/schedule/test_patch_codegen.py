"""The generated C of a patch stage: one function per stage, run once per patch.

Each patch stage prints its op sequence once, in `<prefix>_stage<k>(arena, patch)`, reading the
patch's params and arena offsets from const tables; a step only some patches run (an input crop
a patch does not need, a kernel variant the planner chose for some patches) runs under a
per-patch flag. Only when patches differ in a way a table cannot hold does the stage fall back to
one function per patch (the layout before, whose code grew with the grid: WV MobileNetV2's 8x8
plan tripled the model's code). Checked here: the function count on a shared model,
bit-exactness against TFLM through the tables and through the fallback, what the fallback
detects, and the compiled code size against layer-by-layer code.
"""

from __future__ import annotations

import copy
import re
import shutil
import subprocess
from pathlib import Path

import pytest

from tests.schedule.test_patch_models import _check, _stress_model
from tests.support.paths import MODELS
from tinyc.codegen import emit
from tinyc.compiler import Compiled, Options, compile_model
from tinyc.target.host import WARN_FLAGS

WV_MOBILENETV2 = MODELS / "wake_vision" / "wv_quality_mobilenetv2.tflite"
_STAGE_FN = re.compile(r"^static void (\w+_stage\d+)\(uint8_t \*const arena, unsigned patch\) \{", re.M)
_PATCH_FN = re.compile(r"^static void (\w+_stage\d+_patch_\d+_\d+)\(", re.M)


def _c(c: Compiled) -> str:
    return next(t for n, t in c.files().items() if n.endswith(".c"))


def _stages(c: Compiled) -> list[emit.Block]:
    return [b for b in c.program.blocks if b.grid is not None]


@pytest.fixture
def untabled(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    """Force every patch stage to the one-function-per-patch fallback; host builds are cached by
    model, options and tinyc's sources, not by the generated C, so they go to a fresh cache."""
    monkeypatch.setattr(emit, "_columns", lambda patches: ([], "forced by the test"))
    monkeypatch.setenv("TINYC_CACHE", str(tmp_path / "cache"))


@pytest.fixture(scope="module")
def wv_auto() -> Compiled:
    return compile_model(WV_MOBILENETV2, Options(patch="auto"))


# ------------------------------------------------------------------ one function per stage


def test_shared_model_has_one_function_per_stage(wv_auto: Compiled) -> None:
    stages = _stages(wv_auto)
    assert stages and stages[0].grid == (8, 8) and len(stages[0].patches) == 64
    text = _c(wv_auto)
    assert _STAGE_FN.findall(text) == [b.function for b in stages]
    assert not _PATCH_FN.findall(text)
    assert "(*const" not in text  # no table of function pointers
    for b in stages:
        assert not b.fallback
        assert len(b.body) == len(b.patches[0].steps)  # the op sequence once
        # every step appears once in the stage function, with its layer and op in a comment
        body = text[text.index(f"static void {b.function}("):]
        body = body[:body.index("\n}\n")]
        assert len(re.findall(r"^  /\* #\d+ ", body, re.M)) == len(b.body)
        assert f"{b.function}(arena, patch);" in text
    # the debug hook still fires once after the stage (tinyc.validate.localize counts on it)
    invoke = text[text.index("_invoke(void) {"):]
    after_loop = invoke[invoke.index(f"{stages[0].function}(arena, patch);"):]
    assert after_loop.index("_DEBUG_LAYER_HOOK(arena)") < after_loop.index("/* #")


def test_identical_values_stay_literal_and_equal_params_share_a_row(wv_auto: Compiled) -> None:
    b = _stages(wv_auto)[0]
    for j, s in enumerate(b.body):
        column = [p.steps[j] for p in b.patches]
        for a, arg in enumerate(s.args):
            if all(x.args[a] == column[0].args[a] for x in column):
                assert arg == column[0].args[a]  # e.g. the weights, the stage output's offset
            else:
                assert arg.endswith("[patch])") and "arena + " in arg
    params = [t for t in b.tables if t.ctype != "uint32_t"]
    assert params and all(len(t.rows) <= len(b.patches) for t in params)
    # an 8x8 grid has far fewer distinct border/interior shapes than patches
    assert sum(len(t.rows) for t in params) < len(params) * len(b.patches) / 3


# ------------------------------------------------------------------ bit-exact through the tables


@pytest.mark.parametrize("patch", ["2x2@5", "4x3@4", "6x5@1", "3x2@5", "5x4@9", "3x3@6"])
def test_tabled_stage_bit_exact(patch: str) -> None:
    c = compile_model(_stress_model(), Options(patch=patch))
    (b,) = _stages(c)
    assert b.function and not b.fallback and not _PATCH_FN.findall(_c(c))
    _check(_stress_model(), patch)


def test_steps_some_patches_skip_run_under_a_flag() -> None:
    """3x2@5: the middle row's input region is the whole input, so its patches read it without
    the crop the others run first."""
    c = compile_model(_stress_model(), Options(patch="3x2@5"))
    (b,) = _stages(c)
    guarded = [s for s in b.body if s.guard]
    assert guarded and guarded[0] is b.body[0] and b.body[0].op == "TINYC_CROP"
    assert "[in 4 of 6 patches]" in b.body[0].comment
    flags = next(t for t in b.tables if t.cname == b.body[0].guard)
    assert flags.rows == ["1u", "1u", "0u", "0u", "1u", "1u"]
    assert f"  if ({b.body[0].guard}[patch]) {{\n    tinyc_copy_box(" in _c(c)


@pytest.mark.parametrize("patch", ["3x2@5", "4x3@9"])
def test_tabled_stage_bit_exact_with_streamed_input(patch: str) -> None:
    c = compile_model(_stress_model(), Options(patch=patch, patch_input="stream"))
    (b,) = _stages(c)
    assert b.function and not b.fallback
    _check(_stress_model(), patch, options=dict(patch_input="stream"))


def test_shared_model_tabled_stage_bit_exact() -> None:
    model = MODELS / "tflm" / "person_detect.tflite"
    c = compile_model(model, Options(patch="auto"))
    assert _stages(c) and all(b.function and not b.fallback for b in _stages(c))
    assert len(_stages(c)[0].patches) > 4
    _check(model, "auto", n=2)


# ------------------------------------------------------------------ the fallback


def test_fallback_is_one_function_per_patch_and_bit_exact(untabled: None) -> None:
    c = compile_model(_stress_model(), Options(patch="3x2@5"))
    (b,) = _stages(c)
    assert not b.function and b.fallback == "forced by the test" and not b.tables
    text = _c(c)
    assert len(_PATCH_FN.findall(text)) == 6 and not _STAGE_FN.findall(text)
    assert "/* One function per patch: forced by the test. */" in text
    assert f"{b.table}[patch](arena);" in text
    _check(_stress_model(), "3x2@5")


def test_shared_model_with_per_patch_kernel_variants_bit_exact() -> None:
    """kws_ref_model with a 3x2 grid ending at layer #5: the memory planner runs a depthwise layer
    in place (another kernel) in some patches only; each variant runs under its flag."""
    model = MODELS / "mlperf_tiny" / "kws_ref_model.tflite"
    c = compile_model(model, Options(patch="3x2@5"))
    (b,) = _stages(c)
    assert b.function and not b.fallback and len(_STAGE_FN.findall(_c(c))) == 1
    _check(model, "3x2@5", n=3)


def _patches() -> list[emit.Patch]:
    (b,) = _stages(compile_model(_stress_model(), Options(patch="4x3@4")))
    return copy.deepcopy(b.patches)


def test_steps_line_up_across_patches() -> None:
    p = _patches()
    columns, why = emit._columns(p)
    assert not why and len(columns) == len(p[0].steps)
    assert all(x is not None for c in columns for x in c)

    p = _patches()
    del p[1].steps[0]  # patch (0, 1) skips the first step
    columns, why = emit._columns(p)
    assert not why and len(columns) == len(p[0].steps) and columns[0][1] is None
    assert columns[1][1] is p[1].steps[0]

    p = _patches()
    p[4].steps[2].function = "tinyc_other_s8"  # another kernel for that layer in one patch
    columns, why = emit._columns(p)
    assert not why and len(columns) == len(p[0].steps) + 1
    assert sorted(c[4] is not None for c in columns[2:4]) == [False, True]  # each variant in its own column


def test_fallback_reason_names_what_differs() -> None:
    p = _patches()
    k = next(a for a, o in enumerate(p[3].steps[1].arg_offsets) if o is not None)
    p[3].steps[1].args[k], p[3].steps[1].arg_offsets[k] = "NULL", None  # e.g. no scratch in one patch
    assert "not an arena offset to table" in emit._columns(p)[1]

    p = _patches()
    p[2].steps[1].fields = p[2].steps[1].fields[1:]
    assert f"layer #{p[2].steps[1].index}'s {p[2].steps[1].function} takes other params in patch" in emit._columns(p)[1]

    p = _patches()
    p[5].steps[1], p[5].steps[2] = p[5].steps[2], p[5].steps[1]
    assert emit._columns(p)[1].startswith(f"patch ({p[5].row}, {p[5].col}) runs layer #")
    assert "in another order" in emit._columns(p)[1]

    p = _patches()
    p[1].steps[3].args = p[1].steps[3].args[:-1]
    assert "arguments in patch (0, 1)" in emit._columns(p)[1]


# ------------------------------------------------------------------ code size


def _code_bytes(c: Compiled, d: Path) -> tuple[int, int]:
    """(.text, .text + .rodata - weights) of the compiled model source alone: the code the
    generated C adds, as the report's "code (flash)" counts it (kernels left out)."""
    c.write(d)
    src = next(n for n in c.files() if n.endswith(".c"))
    if shutil.which("arm-none-eabi-gcc"):
        cc, size, flags = "arm-none-eabi-gcc", "arm-none-eabi-size", ["-mcpu=cortex-m7", "-mthumb"]
    else:
        cc, size, flags = "gcc", "size", []
    subprocess.run([cc, *flags, "-O2", *WARN_FLAGS, "-Iruntime/include", "-I.", "-c", src, "-o", "model.o"],
                   cwd=d, check=True, capture_output=True)
    out = subprocess.run([size, "-A", "model.o"], cwd=d, check=True, capture_output=True, text=True).stdout
    text = ro = 0
    for name, n in re.findall(r"^\.(text|rodata)\S*\s+(\d+)", out, re.M):
        if name == "text":
            text += int(n)
        else:
            ro += int(n)
    return text, text + ro - c.program.weight_bytes


@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("arm-none-eabi-gcc") is None,
                    reason="no C compiler")
def test_mobilenetv2_patch_code_close_to_layer_by_layer(wv_auto: Compiled, tmp_path: Path) -> None:
    """Measured with arm-none-eabi-gcc 13 -O2 (cortex-m7): .text 21,400 B and code 181,844 B with
    one function per patch, 2,284 B and 59,412 B tabled, 1,836 B and 50,568 B layer by layer."""
    off = compile_model(WV_MOBILENETV2, Options(patch="off"))
    text_off, code_off = _code_bytes(off, tmp_path / "off")
    text_on, code_on = _code_bytes(wv_auto, tmp_path / "auto")
    assert code_on < 1.3 * code_off, (code_on, code_off)
    assert text_on < 1.5 * text_off, (text_on, text_off)


@pytest.mark.skipif(shutil.which("gcc") is None and shutil.which("arm-none-eabi-gcc") is None,
                    reason="no C compiler")
def test_tables_are_much_smaller_than_one_function_per_patch(wv_auto: Compiled, tmp_path: Path,
                                                             untabled: None) -> None:
    per_patch = compile_model(WV_MOBILENETV2, Options(patch="auto"))
    assert _PATCH_FN.findall(_c(per_patch))
    text_pp, code_pp = _code_bytes(per_patch, tmp_path / "per_patch")
    text_on, code_on = _code_bytes(wv_auto, tmp_path / "auto")
    # .text: the tabled stage is one function; code + constants: the packed (int16) depthwise weights are
    # shared by both forms and now a larger part of the total, so the whole shrinks less than the text
    assert text_on * 4 < text_pp and code_on * 1.3 < code_pp, (text_on, text_pp, code_on, code_pp)
