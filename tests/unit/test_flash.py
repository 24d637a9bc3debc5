"""`tinyc flash` on a real board: the tools' command lines, the probe id, falling through to the
next installed tool, and clear errors (fake pyocd/openocd/st-flash on PATH, no board needed)."""

from __future__ import annotations

import os
import stat
from pathlib import Path

import pytest

from tinyc.errors import BadInput, CheckFailed
from tinyc.target.boards import get_board
from tinyc.target.flash import flash_board, flash_commands

F746 = get_board("stm32f746g_disco")


def _tool(bin_dir: Path, name: str, rc: int, message: str, log: Path) -> None:
    script = bin_dir / name
    script.write_text(f"#!/bin/sh\necho \"{name} $*\" >> {log}\necho '{message}' >&2\nexit {rc}\n")
    script.chmod(script.stat().st_mode | stat.S_IEXEC)


@pytest.fixture
def project(tmp_path: Path) -> Path:
    d = tmp_path / "fw"
    (d / "build").mkdir(parents=True)
    for f in ("firmware.elf", "firmware.hex", "firmware.bin"):
        (d / "build" / f).write_bytes(b"\0")
    return d


@pytest.fixture
def path_only(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    monkeypatch.setenv("PATH", f"{bin_dir}{os.pathsep}/usr/bin:/bin")
    return bin_dir


def test_command_lines_carry_target_probe_and_flash_origin(project: Path) -> None:
    cmds = flash_commands(project, F746, probe="0669FF3530")
    assert [c[0] for c in cmds] == ["pyocd", "openocd", "st-flash"]
    assert cmds[0][:4] == ["pyocd", "flash", "-t", "stm32f746xg"] and "-u" in cmds[0] and "0669FF3530" in cmds[0]
    assert cmds[0][-1].endswith("build/firmware.hex")
    assert "board/stm32f7discovery.cfg" in cmds[1] and "adapter serial 0669FF3530" in cmds[1]
    assert cmds[2][-2:] == [str(project / "build" / "firmware.bin"), "0x08000000"]


def test_falls_through_to_the_next_installed_tool(project: Path, path_only: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    _tool(path_only, "pyocd", 1, "No connected debug probes", log)
    _tool(path_only, "openocd", 0, "** Verified OK **", log)
    assert flash_board(project, F746) == "openocd"
    assert [line.split()[0] for line in log.read_text().splitlines()] == ["pyocd", "openocd"]


def test_every_tool_failing_names_each_failure(project: Path, path_only: Path, tmp_path: Path) -> None:
    log = tmp_path / "calls.log"
    _tool(path_only, "pyocd", 1, "No connected debug probes", log)
    _tool(path_only, "st-flash", 2, "No ST-Link devices found", log)
    with pytest.raises(CheckFailed, match=r"pyocd: No connected debug probes; st-flash: No ST-Link devices found"):
        flash_board(project, F746)


def test_no_tool_installed_says_what_to_install(project: Path, path_only: Path) -> None:
    with pytest.raises(BadInput, match="no flash tool found for stm32f746g_disco; install one of: pyocd, openocd"):
        flash_board(project, F746)


def test_unbuilt_project_and_qemu_board_are_refused(tmp_path: Path) -> None:
    with pytest.raises(BadInput, match="run `tinyc build"):
        flash_board(tmp_path, F746)
    with pytest.raises(BadInput, match="not flashable hardware"):
        flash_board(tmp_path, get_board("mps2_an500"))
