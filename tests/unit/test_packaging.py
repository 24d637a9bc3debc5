"""A wheel of tinyc works outside the repository: templates, boards and the C runtime ship in it."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

from tests.support.paths import MODELS
from tinyc.target.host import WARN_FLAGS

REPO = Path(__file__).resolve().parents[2]


@pytest.mark.slow
def test_a_wheel_compiles_and_ships_the_runtime(tmp_path: Path) -> None:
    r = subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", str(REPO), "-w", str(tmp_path / "w")],
                       capture_output=True, text=True, timeout=600)
    assert r.returncode == 0, r.stderr[-2000:]
    (wheel,) = (tmp_path / "w").glob("tinyc-*.whl")
    site = tmp_path / "site"
    zipfile.ZipFile(wheel).extractall(site)
    shipped = {p.name for p in (REPO / "runtime_c").rglob("*") if p.suffix in (".c", ".h")}
    assert shipped and shipped == {p.name for p in (site / "tinyc" / "runtime_c").rglob("*") if p.is_file()}
    assert len(list((site / "tinyc" / "boards").glob("*.toml"))) == len(list((REPO / "boards").glob("*.toml")))

    out = tmp_path / "out"
    code = ("import sys, tinyc; from tinyc.cli import main; print(tinyc.__file__, file=sys.stderr); "
            f"sys.exit(main(['compile', {str(MODELS / 'tflm/hello_world_int8.tflite')!r}, '--board', 'mps2_an386', "
            f"'-o', {str(out)!r}]))")
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=120,
                       env={"PYTHONPATH": str(site), "PATH": "/usr/bin:/bin", "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr[-2000:]
    assert r.stderr.strip().splitlines()[0] == str(site / "tinyc" / "__init__.py")
    assert (out / "Makefile").is_file() and (out / "runtime" / "src" / "fully_connected.c").is_file()
    # the model and the runtime the wheel copied compile on their own
    srcs = ["model.c", *(str(p.relative_to(out)) for p in (out / "runtime" / "src").glob("*.c"))]
    r = subprocess.run(["gcc", *WARN_FLAGS, "-Iruntime/include", "-I.", "-c", *srcs], cwd=out,
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
