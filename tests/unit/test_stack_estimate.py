"""The stack estimate follows gcc's call graph: helper chains, the patch tables' indirect calls and
library calls, instead of the largest single frame."""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

from tinyc.errors import TinycError
from tinyc.report.stack import LIBRARY_CALL_BYTES, CallGraph

pytestmark = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None, reason="needs arm-none-eabi-gcc")

KERNEL = r"""
#include <string.h>
static int __attribute__((noinline)) dot(const signed char *a, int n) {
  volatile int acc[8]; acc[0] = 0; for (int i = 0; i < n; ++i) acc[0] += a[i]; return acc[0];
}
static int __attribute__((noinline)) pixel(const signed char *a, int n) {
  volatile signed char tmp[40]; memcpy((void *)tmp, a, 40); return dot((const signed char *)tmp, n);
}
int k_conv(const signed char *a, int n) { volatile int keep[4]; keep[0] = pixel(a, n); return keep[0]; }
int k_small(const signed char *a) { return a[0]; }
"""
MODEL = r"""
int k_conv(const signed char *a, int n);
int k_small(const signed char *a);
static signed char arena[64];
static void __attribute__((noinline)) patch0(signed char *ar) { volatile int f[30]; f[0] = k_conv(ar, 3); ar[0] = (signed char)f[0]; }
static void __attribute__((noinline)) patch1(signed char *ar) { ar[1] = (signed char)k_small(ar); }
static void (*const table[2])(signed char *) = { patch0, patch1 };
int m_invoke(void) { for (int p = 0; p < 2; ++p) table[p](arena); return arena[0]; }
"""


def _graph(tmp_path: Path, model: str = MODEL) -> CallGraph:
    (tmp_path / "kernel.c").write_text(KERNEL)
    (tmp_path / "model.c").write_text(model)
    subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-O2", "-fcallgraph-info=su", "-c",
                    "kernel.c", "model.c"], cwd=tmp_path, check=True)
    return CallGraph.read(sorted(tmp_path.glob("*.ci")))


def test_worst_chain_goes_through_the_indirect_call_and_the_helpers(tmp_path: Path) -> None:
    g = _graph(tmp_path)
    f = g.frame
    patch0 = next(k for k in f if k.endswith("patch0"))
    pixel = next(k for k in f if k.split(":")[-1].startswith("pixel"))
    dot = next(k for k in f if k.split(":")[-1].startswith("dot"))
    want = f["m_invoke"] + f[patch0] + f["k_conv"] + f[pixel] + max(f[dot], LIBRARY_CALL_BYTES)
    assert g.worst("m_invoke") == want
    # more than invoke plus the largest single frame, the old estimate
    assert want > f["m_invoke"] + max(v for k, v in f.items() if k != "m_invoke")


def test_recursion_is_refused(tmp_path: Path) -> None:
    g = _graph(tmp_path, "int m_invoke(int n) { volatile int x[4]; x[0] = n; return n ? m_invoke(n - 1) + x[0] : 0; }\n")
    if "m_invoke" in g.calls.get("m_invoke", set()):
        with pytest.raises(TinycError, match="recursion"):
            g.worst("m_invoke")
    else:  # gcc turned the recursion into a loop: nothing unbounded is left
        assert g.worst("m_invoke") == g.frame["m_invoke"]
