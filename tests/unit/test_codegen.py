"""tinyc.codegen.emit and tinyc.compiler: what the generated C says and that it builds.

The generated files name the model and the tinyc version, every symbol carries the prefix
(so several models share one firmware), constants print as valid C, and neither generated
code nor runtime_c/ ever allocates from the heap.
"""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import REPO
from tests.support.tflite_builder import ModelBuilder
from tinyc import __version__
from tinyc.codegen.emit import RUNTIME_DIR, _array_body, _scalar, c_identifier
from tinyc.compiler import Compiled, Options, compile_model

GCC = shutil.which("gcc")
needs_gcc = pytest.mark.skipif(GCC is None, reason="gcc not installed")
CFLAGS = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O1"]
HEAP = re.compile(r"\b(malloc|calloc|realloc|free|alloca)\s*\(")


def _conv_bytes(out_c: int = 3, seed: int = 0) -> bytes:
    rng = np.random.default_rng(seed)
    b = ModelBuilder()
    x = b.input("x", (1, 5, 5, 2), "int8", 0.1, -1)
    w = b.const("w", rng.integers(-127, 128, (out_c, 3, 3, 2), dtype=np.int8),
                scale=[0.01 + 0.001 * i for i in range(out_c)], zero_point=0)
    bias = b.const("b", rng.integers(-1000, 1000, out_c).astype(np.int32),
                   scale=[0.001 * (1 + i) for i in range(out_c)], zero_point=0)
    y = b.tensor("y", (1, 3, 3, out_c), "int8", 0.2, 3)
    b.op("CONV_2D", [x, w, bias], [y], dict(padding="VALID", fused_activation_function="RELU"))
    b.output(y)
    return b.build()


def _pool_bytes() -> bytes:
    """conv -> average pool: a second kernel family for the two-model firmware."""
    b = ModelBuilder()
    x = b.input("x", (1, 4, 4, 1), "int8", 0.05, 0)
    w = b.const("w", np.full((2, 1, 1, 1), 3, np.int8), scale=0.02, zero_point=0)
    h = b.tensor("h", (1, 4, 4, 2), "int8", 0.1, 0)
    b.op("CONV_2D", [x, w, None], [h], dict(padding="SAME"))
    y = b.tensor("y", (1, 2, 2, 2), "int8", 0.1, 0)
    b.op("AVERAGE_POOL_2D", [h], [y], dict(filter_width=2, filter_height=2, stride_w=2, stride_h=2))
    b.output(y)
    return b.build()


@pytest.fixture(scope="module")
def conv_model(tmp_path_factory: pytest.TempPathFactory) -> Path:
    p = tmp_path_factory.mktemp("models") / "tiny_conv.tflite"
    p.write_bytes(_conv_bytes())
    return p


@pytest.fixture(scope="module")
def default_compiled(conv_model: Path) -> Compiled:
    return compile_model(conv_model)


@pytest.fixture(scope="module")
def kws_compiled(conv_model: Path) -> Compiled:
    return compile_model(conv_model, Options(prefix="kws"))


# ------------------------------------------------------------------ what the files say


def _one(files: dict[str, str], suffix: str) -> tuple[str, str]:
    """(name, text) of the one generated file ending in suffix."""
    found = [(n, t) for n, t in files.items() if n.endswith(suffix)]
    assert len(found) == 1, sorted(files)
    return found[0]


def _c(c: Compiled) -> str:
    return _one(c.files(), ".c")[1]


def _h(c: Compiled) -> str:
    return _one(c.files(), ".h")[1]


def test_one_source_and_one_header(default_compiled: Compiled, kws_compiled: Compiled) -> None:
    for comp in (default_compiled, kws_compiled):
        c_name, c_text = _one(comp.files(), ".c")
        h_name, _ = _one(comp.files(), ".h")
        assert c_name[:-2] == h_name[:-2]
        assert f'#include "{h_name}"' in c_text
    assert set(default_compiled.files()) != set(kws_compiled.files())  # two models can share a folder


def test_generated_files_name_model_and_version(default_compiled: Compiled) -> None:
    for name, text in default_compiled.files().items():
        head = "\n".join(text.splitlines()[:3])
        assert "tiny_conv.tflite" in head, name
        assert f"tinyc {__version__}" in head, name
    assert default_compiled.model_sha256[:16] in _h(default_compiled)


def test_header_declares_arena_and_api(default_compiled: Compiled) -> None:
    h = _h(default_compiled)
    m = re.search(r"#define TINYC_ARENA_BYTES (\d+)u", h)
    assert m and int(m.group(1)) == default_compiled.plan.arena_bytes > 0
    for decl in ("int tinyc_invoke(void);", "void *tinyc_input(int i);", "void *tinyc_output(int i);",
                 "#define TINYC_NUM_INPUTS 1u", "#define TINYC_NUM_OUTPUTS 1u"):
        assert decl in h
    assert "static uint8_t tinyc_arena[TINYC_ARENA_BYTES]" in _c(default_compiled)


def test_prefix_applies_to_every_symbol(kws_compiled: Compiled) -> None:
    h, c = _h(kws_compiled), _c(kws_compiled)
    assert "int kws_invoke(void);" in h and "#define KWS_ARENA_BYTES" in h and "KWS_MODEL_H" in h
    # Every file-scope definition in model.c starts with the prefix.
    defs = re.findall(r"^(?:static\s+)?(?:const\s+)?[A-Za-z_][\w ]*?[\s*]+([A-Za-z_]\w*)\s*[\[(=]", c, re.M)
    assert defs, "no definitions found"
    assert all(d.startswith("kws_") for d in defs), [d for d in defs if not d.startswith("kws_")]
    assert not re.search(r"\bTINYC_[A-Z_]+\b", h + c)
    assert not re.search(r"\btinyc_(invoke|input|output|arena|p\d)", h + c)


@pytest.mark.parametrize("raw, want", [("kws", "kws"), ("kws-v2", "kws_v2"), ("2nd", "m_2nd"), ("a.b c", "a_b_c")])
def test_c_identifier(raw: str, want: str) -> None:
    assert c_identifier(raw) == want


def test_odd_prefix_becomes_a_c_identifier(conv_model: Path) -> None:
    comp = compile_model(conv_model, Options(prefix="Wake-Word"))
    assert all(name.startswith("wake_word") for name in comp.files())
    assert "int wake_word_invoke(void);" in _h(comp)
    assert "#define WAKE_WORD_ARENA_BYTES" in _h(comp)


# ------------------------------------------------------------------ C literals


def test_int32_min_literals() -> None:
    body = _array_body(np.array([-2147483648, 2147483647, 0, -1], np.int32))
    assert "(-2147483647 - 1)" in body and "-2147483648" not in body
    assert _scalar(-2147483648) == "(-2147483647 - 1)"
    assert _scalar(np.int32(-2147483648)) == "(-2147483647 - 1)"
    assert _scalar(2147483647) == "2147483647"
    assert _scalar(True) == "1" and _scalar(np.int8(-5)) == "-5"


def test_float_literals() -> None:
    assert _scalar(np.float32(0.5)) == "0.5f"
    assert _scalar(np.float32(3.0)) == "3.0f"
    assert _array_body(np.array([1.0, -2.5e-8], np.float32)).strip().rstrip(",").split(", ")[0] == "1.0f"


@needs_gcc
def test_int32_min_literal_compiles_to_int32_min(tmp_path: Path) -> None:
    arr = np.array([-2147483648, 7, 2147483647], np.int32)
    src = tmp_path / "lit.c"
    src.write_text(
        "#include <stdint.h>\n#include <stdio.h>\n"
        f"static const int32_t a[3] = {{\n{_array_body(arr)}\n}};\n"
        f"static const int32_t s = {_scalar(-2147483648)};\n"
        'int main(void) { printf("%ld %ld %ld %ld\\n", (long)a[0], (long)a[1], (long)a[2], (long)s);'
        " return a[0] == INT32_MIN && s == INT32_MIN ? 0 : 1; }\n")
    exe = tmp_path / "lit"
    subprocess.run([GCC, *CFLAGS, "-pedantic", str(src), "-o", str(exe)], check=True, capture_output=True)
    r = subprocess.run([str(exe)], capture_output=True, text=True)
    assert r.returncode == 0 and r.stdout.split() == ["-2147483648", "7", "2147483647", "-2147483648"]


# ------------------------------------------------------------------ two models in one program

MAIN_C = r"""
#include <stdio.h>
#include <string.h>
#include "KWS_H"
#include "VWW_H"

int main(void) {
  memset(kws_input(0), 1, kws_input_bytes(0));
  memset(vww_input(0), 2, vww_input_bytes(0));
  if (kws_input(1) != NULL || vww_output(1) != NULL || kws_output_bytes(-1) != 0u) return 3;
  if (kws_invoke() != 0 || vww_invoke() != 0) return 2;
  const int8_t *a = (const int8_t *)kws_output(0);
  const int8_t *b = (const int8_t *)vww_output(0);
  printf("%u %u %u %u %d %d\n", (unsigned)KWS_ARENA_BYTES, (unsigned)VWW_ARENA_BYTES,
         kws_output_bytes(0), vww_output_bytes(0), a[0], b[0]);
  return 0;
}
"""


@needs_gcc
def test_two_prefixed_models_link_into_one_program(tmp_path: Path) -> None:
    kws = compile_model(_conv_bytes(), Options(prefix="kws"))
    vww = compile_model(_pool_bytes(), Options(prefix="vww"))
    kws.write(tmp_path)
    vww.write(tmp_path)
    (tmp_path / "main.c").write_text(MAIN_C.replace("KWS_H", _one(kws.files(), ".h")[0])
                                     .replace("VWW_H", _one(vww.files(), ".h")[0]))
    runtime = sorted(set(kws.program.sources) | set(vww.program.sources))
    assert "conv.c" in runtime and "pooling.c" in runtime
    exe = tmp_path / "both"
    cmd = [GCC, *CFLAGS, "-I", str(tmp_path), "-I", str(tmp_path / "runtime" / "include"),
           str(tmp_path / _one(kws.files(), ".c")[0]), str(tmp_path / _one(vww.files(), ".c")[0]),
           str(tmp_path / "main.c"),
           *[str(tmp_path / "runtime" / "src" / s) for s in runtime], "-o", str(exe)]
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    run = subprocess.run([str(exe)], capture_output=True, text=True, timeout=10)
    assert run.returncode == 0, run.stdout + run.stderr
    ka, va, kb, vb, _, _ = (int(v) for v in run.stdout.split())
    assert (ka, va) == (kws.plan.arena_bytes, vww.plan.arena_bytes)
    assert (kb, vb) == (1 * 3 * 3 * 3, 1 * 2 * 2 * 2)


@needs_gcc
def test_object_file_exports_only_prefixed_symbols(tmp_path: Path, kws_compiled: Compiled) -> None:
    kws_compiled.write(tmp_path)
    obj = tmp_path / "kws.o"
    r = subprocess.run([GCC, *CFLAGS, "-c", "-I", str(tmp_path / "runtime" / "include"),
                        str(tmp_path / _one(kws_compiled.files(), ".c")[0]), "-o", str(obj)],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    nm = shutil.which("nm")
    if nm is None:
        pytest.skip("nm not installed")
    out = subprocess.run([nm, "--defined-only", str(obj)], capture_output=True, text=True, check=True).stdout
    symbols = [line.split()[-1] for line in out.splitlines() if line.strip()]
    named = [s for s in symbols if not s.startswith(".")]
    assert named and all(s.startswith("kws_") for s in named), named


def test_cli_name_option_prefixes_output(tmp_path: Path, conv_model: Path) -> None:
    out = tmp_path / "out"
    r = subprocess.run([sys.executable, "-m", "tinyc.cli", "compile", str(conv_model), "--board", "host",
                        "--name", "kws", "-o", str(out)], capture_output=True, text=True, cwd=REPO, timeout=60)
    assert r.returncode == 0, r.stderr
    headers = [p for p in out.glob("*.h")]
    assert len(headers) == 1 and headers[0].name.startswith("kws"), headers
    assert len(list(out.glob("kws*.c"))) == 1
    assert "int kws_invoke(void);" in headers[0].read_text()
    assert (out / "runtime" / "src" / "conv.c").is_file()


# ------------------------------------------------------------------ static memory only


def test_no_heap_in_generated_code(default_compiled: Compiled) -> None:
    for name, text in default_compiled.files().items():
        assert not HEAP.search(text), name


def test_no_heap_in_runtime() -> None:
    files = sorted(RUNTIME_DIR.rglob("*.[ch]"))
    assert files, f"no C sources under {RUNTIME_DIR}"
    offenders = [f"{p.relative_to(RUNTIME_DIR)}: {m.group(0)}" for p in files
                 for m in [HEAP.search(_strip_comments(p.read_text()))] if m]
    assert not offenders, offenders


def _strip_comments(c: str) -> str:
    return re.sub(r"/\*.*?\*/|//[^\n]*", "", c, flags=re.S)


def test_compiler_stages_are_recorded(default_compiled: Compiled) -> None:
    c = default_compiled
    assert [op.kind for op in c.graph.ops] == ["CONV_2D"]
    assert len(c.calls) == len(c.macs) == 1 and c.macs[0] == 3 * 3 * 3 * 3 * 3 * 2
    assert c.program.total_macs == sum(c.macs)
    assert c.model_file == "tiny_conv.tflite" and len(c.model_sha256) == 64
    assert c.program.arena_bytes == c.plan.arena_bytes
