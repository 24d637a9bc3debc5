"""User boards (``--boards-dir`` / ``$TINYC_BOARDS``) through compile, build, flash and validate;
the build folder of QEMU boards; finding a real board's serial port by USB VID:PID."""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest

from tests.support.paths import MODELS
from tinyc.cli import main as tinyc
from tinyc.target.boards import BOARDS_DIR, get_board
from tinyc.target.project import project_boards, read_project

MODEL = MODELS / "tflm" / "hello_world_int8.tflite"
needs_gcc = pytest.mark.skipif(shutil.which("arm-none-eabi-gcc") is None or shutil.which("make") is None,
                               reason="needs arm-none-eabi-gcc and make")


def user_board(folder: Path, shipped: str, name: str, **set_keys: str) -> Path:
    """A copy of a shipped board under another name (no aliases, not the default, no twin
    unless ``emulate_with`` is given) in ``folder``."""
    folder.mkdir(parents=True, exist_ok=True)
    top, tables = (BOARDS_DIR / f"{shipped}.toml").read_text().split("\n[", 1)
    top = re.sub(r"(?m)^(name|aliases|default|emulate_with)\s*=.*$", "", top)
    head = f"name = {name!r}\n" + "".join(f"{k} = {v!r}\n" for k, v in set_keys.items())
    path = folder / f"{name}.toml"
    path.write_text(head + top + "\n[" + tables)
    return path


def compile_for(board: str, out: Path, *dirs: Path) -> int:
    extra = [a for d in dirs for a in ("--boards-dir", str(d))]
    return tinyc(["compile", str(MODEL), "--board", board, *extra, "-o", str(out)])


# -- a real part without a QEMU twin ----------------------------------------------------------
def test_real_user_board_without_twin_compiles(tmp_path: Path, capsys):
    path = user_board(tmp_path / "boards", "stm32f746g_disco", "myboard")
    out = tmp_path / "out"
    assert compile_for("myboard", out, tmp_path / "boards") == 0
    meta = read_project(out)
    assert meta["board"] == "myboard" and meta["emulate_with"] is None
    assert meta["board_file"] == str(path.resolve())
    header = (out / "tinyc_board.h").read_text()
    assert "#error" in header and "no QEMU twin" in header  # only in the TINYC_EMULATED branch
    board, emu = project_boards(meta)  # no folders: the recorded file
    assert board.name == "myboard" and emu is None


def test_flash_finds_the_recorded_board_file(tmp_path: Path, capsys):
    user_board(tmp_path / "boards", "stm32f746g_disco", "myboard")
    out = tmp_path / "out"
    assert compile_for("myboard", out, tmp_path / "boards") == 0
    capsys.readouterr()
    assert tinyc(["flash", str(out)]) == 2  # not built yet: but the board was found
    err = capsys.readouterr().err
    assert "unknown board" not in err and "firmware.elf does not exist" in err
    assert tinyc(["flash", str(out), "--board", "f746"]) == 2
    assert "generated for myboard, not f746" in capsys.readouterr().err


@needs_gcc
def test_real_user_board_builds_and_refuses_emulation(tmp_path: Path, capsys):
    user_board(tmp_path / "boards", "stm32f746g_disco", "myboard")
    out = tmp_path / "out"
    assert compile_for("myboard", out, tmp_path / "boards") == 0
    assert tinyc(["build", str(out)]) == 0 and (out / "build" / "firmware.elf").is_file()
    capsys.readouterr()
    assert tinyc(["build", str(out), "--emulate"]) == 2
    assert "no QEMU equivalent" in capsys.readouterr().err
    r = subprocess.run(["make", "-C", str(out), "emulate"], capture_output=True, text=True, timeout=300)
    assert r.returncode != 0 and "board myboard has no QEMU twin" in r.stdout + r.stderr


# -- QEMU twins in user folders ---------------------------------------------------------------
def test_twin_in_the_same_or_another_user_folder(tmp_path: Path):
    user_board(tmp_path / "qemu", "mps2_an386", "myqemu")
    user_board(tmp_path / "a", "stm32f412g_disco", "near", emulate_with="myqemu2")
    user_board(tmp_path / "a", "mps2_an386", "myqemu2")
    user_board(tmp_path / "b", "stm32f412g_disco", "far", emulate_with="myqemu")
    assert compile_for("near", tmp_path / "near", tmp_path / "a") == 0
    assert read_project(tmp_path / "near")["emulate_with"] == "myqemu2"
    assert compile_for("far", tmp_path / "far", tmp_path / "b", tmp_path / "qemu") == 0
    meta = read_project(tmp_path / "far")
    assert meta["emulate_with_file"] == str((tmp_path / "qemu" / "myqemu.toml").resolve())
    board, emu = project_boards(meta)
    assert (board.name, emu.name, emu.qemu.machine) == ("far", "myqemu", "mps2-an386")


def test_misspelt_twin_is_an_error_not_a_missing_twin(tmp_path: Path, capsys):
    user_board(tmp_path / "a", "stm32f412g_disco", "b1", emulate_with="mps2_an38")
    assert compile_for("b1", tmp_path / "out", tmp_path / "a") == 2
    assert "unknown board 'mps2_an38'" in capsys.readouterr().err


# -- QEMU boards build where flash and validate look ------------------------------------------
@needs_gcc
def test_build_of_a_qemu_board_is_the_emulated_build(tmp_path: Path, capsys):
    from tinyc.target.build import build_project

    out = tmp_path / "out"
    assert compile_for("mps2_an386", out) == 0
    capsys.readouterr()
    assert tinyc(["build", str(out)]) == 0
    assert "build-emu/firmware.elf" in capsys.readouterr().out
    assert (out / "build-emu" / "firmware.elf").is_file() and not (out / "build").exists()
    assert build_project(out).elf == build_project(out, emulate=True).elf == out / "build-emu" / "firmware.elf"


# -- USB VID:PID port discovery ---------------------------------------------------------------
def _ports(monkeypatch, *ports: tuple[str, int | None, int | None]) -> None:
    from serial.tools import list_ports

    fake = [SimpleNamespace(device=d, vid=v, pid=p) for d, v, p in ports]
    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: fake)


def _no_compile(monkeypatch) -> list:
    """Record the port validate() is given; fail if anything is compiled before the port is known."""
    import tinyc.compiler
    import tinyc.validate.runner
    from tinyc.errors import BadInput

    seen: list = []

    def fake_validate(model, board, data, **kw):
        seen.append(kw["port"])
        raise BadInput("stopped by the test")

    monkeypatch.setattr(tinyc.validate.runner, "validate", fake_validate)
    real = tinyc.compiler.compile_model

    def compile_model(*a, **k):
        seen.append("compiled")
        return real(*a, **k)

    monkeypatch.setattr(tinyc.compiler, "compile_model", compile_model)
    return seen


ST_LINK = 0x0483, 0x374B
OTHER = ("/dev/ttyACM0", 0x1366, 0x1015)
VALIDATE = ["validate", str(MODEL), "--board", "stm32f746g_disco", "--data", "random", "-n", "1"]


def test_port_found_by_vid_pid(monkeypatch, capsys):
    _ports(monkeypatch, OTHER, ("/dev/ttyACM1", *ST_LINK), ("/dev/ttyS0", None, None))
    seen = _no_compile(monkeypatch)
    assert tinyc(VALIDATE) == 2
    assert seen == ["compiled", ["/dev/ttyACM1"]]
    assert "stopped by the test" in capsys.readouterr().err


@pytest.mark.parametrize("ports,words", [
    ([OTHER, ("/dev/ttyS0", None, None)], "no serial port matches"),
    ([("/dev/ttyACM1", *ST_LINK), ("/dev/ttyACM2", *ST_LINK)], "2 serial ports match"),
])
def test_port_missing_or_ambiguous_fails_before_compiling(monkeypatch, capsys, ports, words):
    _ports(monkeypatch, *ports)
    seen = _no_compile(monkeypatch)
    assert tinyc(VALIDATE) == 2
    err = capsys.readouterr().err.strip()
    assert seen == [] and "\n" not in err
    assert words in err and "0483:374b" in err and "--port" in err
    for device, _, _ in ports:
        assert device in err  # every port seen is listed


def test_port_given_or_emulated_skips_discovery(monkeypatch):
    from serial.tools import list_ports

    monkeypatch.setattr(list_ports, "comports", lambda *a, **k: pytest.fail("port lookup"))
    seen = _no_compile(monkeypatch)
    assert tinyc(VALIDATE + ["--port", "socket://localhost:1"]) == 2
    assert tinyc(VALIDATE + ["--emulate"]) == 2
    assert seen == ["compiled", ["socket://localhost:1"], "compiled", None]


def test_board_without_usb_id_asks_for_port(tmp_path: Path, monkeypatch, capsys):
    path = user_board(tmp_path, "stm32f746g_disco", "nousb")
    path.write_text(re.sub(r"\[usb\]\nvid_pid.*\n", "", path.read_text()))
    _ports(monkeypatch, OTHER)
    seen = _no_compile(monkeypatch)
    assert tinyc(["validate", str(MODEL), "--board", "nousb", "--boards-dir", str(tmp_path), "--data", "random"]) == 2
    assert seen == [] and "no [usb] vid_pid" in capsys.readouterr().err


# -- end to end under QEMU ---------------------------------------------------------------------
@pytest.mark.board
def test_validate_user_qemu_board_bit_exact(tmp_path: Path, capsys):
    user_board(tmp_path / "boards", "mps2_an386", "myqemu")
    assert tinyc(["validate", str(MODEL), "--board", "myqemu", "--boards-dir", str(tmp_path / "boards"),
                  "--data", "random", "-n", "2", "--json", "-o", str(tmp_path / "out")]) == 0
    res = json.loads(capsys.readouterr().out)
    assert res["bit_exact"] is True and res["inputs"] == 2 and res["mismatches"] == 0
    assert (tmp_path / "out" / "build-emu" / "firmware.elf").is_file()
    assert get_board("myqemu", [tmp_path / "boards"]).qemu.machine == "mps2-an386"
