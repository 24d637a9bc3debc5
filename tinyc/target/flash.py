"""`tinyc flash`: program a real board with whichever tool is installed, or start QEMU.

Order of preference: pyOCD (pip-installable, knows every STM32 by target name), OpenOCD,
st-flash. We never bundle a tool: if none is installed the error names what to install.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

from tinyc.errors import BadInput, CheckFailed
from tinyc.target.boards import Board


def flash_commands(project_dir: Path, board: Board, probe: str | None = None) -> list[list[str]]:
    """Candidate command lines, best first, for the tools this board supports."""
    build = Path(project_dir) / "build"
    cmds = []
    if board.flash.pyocd_target:
        c = ["pyocd", "flash", "-t", board.flash.pyocd_target]
        if probe:
            c += ["-u", probe]
        cmds.append(c + [str(build / "firmware.hex")])
    if board.flash.openocd_cfg:
        c = ["openocd", "-f", board.flash.openocd_cfg]
        if probe:
            c += ["-c", f"adapter serial {probe}"]
        cmds.append(c + ["-c", f"program {build / 'firmware.elf'} verify reset exit"])
    if board.flash.st_flash:
        flash = board.regions("flash")[0]
        c = ["st-flash", "--reset"]
        if probe:
            c += ["--serial", probe]
        cmds.append(c + ["write", str(build / "firmware.bin"), f"0x{flash.origin:08x}"])
    return cmds


def flash_board(project_dir: Path, board: Board, probe: str | None = None, timeout: float = 180) -> str:
    """Program the board with the first installed tool that succeeds; returns its name.
    BadInput if no tool is installed, CheckFailed with every tool's last line if all fail."""
    if board.is_emulated or board.is_host:
        raise BadInput(f"board {board.name} is not flashable hardware (use --emulate / QEMU)")
    if not (Path(project_dir) / "build" / "firmware.elf").exists():
        raise BadInput(f"{project_dir}/build/firmware.elf does not exist; run `tinyc build {project_dir}` first")
    cmds = flash_commands(project_dir, board, probe)
    available = [c for c in cmds if shutil.which(c[0])]
    if not available:
        names = ", ".join(dict.fromkeys(c[0] for c in cmds)) or "none configured"
        raise BadInput(f"no flash tool found for {board.name}; install one of: {names} "
                       f"(e.g. `pip install pyocd`, or apt-get install openocd / stlink-tools)")
    failures = []
    for cmd in available:  # a tool that cannot reach the probe (driver, udev rule) may not stop the next
        try:
            r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
        except subprocess.TimeoutExpired:
            failures.append(f"{cmd[0]} did not finish within {timeout:g} s")
            continue
        if r.returncode == 0:
            return cmd[0]
        last = (r.stderr or r.stdout).strip().splitlines()[-1:] or ["no output"]
        failures.append(f"{cmd[0]}: {last[0]}")
    raise CheckFailed(f"flashing {board.name} failed (is the board connected?): " + "; ".join(failures))
