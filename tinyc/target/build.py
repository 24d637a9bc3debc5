"""`tinyc build DIR`: run the generated Makefile and report memory use per board region.

Why per *board* region and not per linker region: the linker script merges contiguous blocks
(DTCM+SRAM1+SRAM2) so an arena may span them, and GNU ld's ``--print-memory-usage`` then
reports one line for all three. We read the section addresses of the ELF and split them over
the board's own regions, so the report says what landed in DTCM and what in SRAM1.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from dataclasses import dataclass
from pathlib import Path

from tinyc.errors import BadInput, CheckFailed
from tinyc.target.project import is_qemu_project, read_project

_OVERFLOW = re.compile(r"region [`'](\w+)' overflowed by (\d+) bytes")
_ASSERT = re.compile(r"(tinyc: does not fit:[^\n]*)")


@dataclass(frozen=True)
class RegionUse:
    name: str
    kind: str
    used: int
    size: int

    @property
    def percent(self) -> float:
        return 100.0 * self.used / self.size if self.size else 0.0


@dataclass(frozen=True)
class BuildResult:
    elf: Path
    emulate: bool
    regions: list[RegionUse]
    log: str

    def region(self, name: str) -> RegionUse:
        return next(r for r in self.regions if r.name == name)

    @property
    def flash_bytes(self) -> int:
        return sum(r.used for r in self.regions if r.kind == "flash")

    @property
    def static_ram_bytes(self) -> int:
        """Linked RAM: arena + data + bss + reserved stack (the stack's *peak* is measured at run time)."""
        return sum(r.used for r in self.regions if r.kind == "ram")


def require_tool(name: str) -> str:
    exe = shutil.which(name)
    if exe is None:
        raise BadInput(f"{name} not found; install the Arm GNU toolchain "
                       f"(Debian/Ubuntu: apt-get install gcc-arm-none-eabi libnewlib-arm-none-eabi)")
    return exe


def _human(n: int) -> str:
    return f"{n} B" if n < 10 * 1024 else f"{n / 1024:.1f} KB"


def build_project(out_dir: Path, *, emulate: bool = False, jobs: int | None = None, timeout: float = 600,
                  make_vars: dict[str, str] | None = None) -> BuildResult:
    """Build the firmware (``make`` or ``make emulate``; always the latter for a QEMU board, see
    :func:`is_qemu_project`); a region overflow is CheckFailed.
    ``make_vars``: extra make variables, e.g. ``{"EXTRA_CFLAGS": "-DX=1"}`` (values without
    shell quoting: the Makefile passes them to the compiler as words)."""
    out_dir = Path(out_dir)
    meta = read_project(out_dir)
    require_tool("arm-none-eabi-gcc")
    make = shutil.which("make")
    if make is None:
        raise BadInput("make not found; install it (apt-get install make)")
    if emulate and not meta.get("emulate_with"):
        raise BadInput(f"board {meta['board']} has no QEMU equivalent; cannot --emulate")
    # A QEMU board (its own twin) only ever runs under QEMU: build the one folder that flash,
    # validate and Device use (build-emu/), not a build/ that nothing would run.
    emulate = emulate or is_qemu_project(meta)
    target = "emulate" if emulate else "all"
    cmd = [make, "-C", str(out_dir), f"-j{jobs or os.cpu_count() or 1}", target]
    cmd += [f"{k}={v}" for k, v in (make_vars or {}).items()]
    try:
        r = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout)
    except subprocess.TimeoutExpired:
        raise CheckFailed(f"building {out_dir} took longer than {timeout:g} s") from None
    log = r.stdout + r.stderr
    if r.returncode != 0:
        raise _build_error(log, meta, out_dir)
    elf = out_dir / ("build-emu" if emulate else "build") / "firmware.elf"
    return BuildResult(elf, emulate, region_usage(elf, meta, emulate), log)


def _build_error(log: str, meta: dict, out_dir: Path) -> Exception:
    over = _OVERFLOW.findall(log)
    if over:
        labels = {r["name"]: r for r in meta["regions"]}
        parts = []
        for name, n in dict(over).items():
            r = labels.get(name)
            what = f"{r['kind'].upper()} region {'+'.join(r['members'])} ({_human(r['length'])})" if r else name
            parts.append(f"{what} overflowed by {int(n)} bytes")
        return CheckFailed(f"tinyc: does not fit on {meta['board']}: " + "; ".join(parts))
    m = _ASSERT.search(log)
    if m:
        return CheckFailed(m.group(1).strip())
    errors = [l for l in log.splitlines() if "error" in l.lower()]
    first = errors[0] if errors else (log.strip().splitlines() or ["?"])[-1]
    return CheckFailed(f"building {out_dir} failed: {first.strip()}")


def _sections(elf: Path) -> list[tuple[str, int, int, int, bool, bool]]:
    """(name, size, vma, lma, alloc, load) from objdump -h."""
    objdump = require_tool("arm-none-eabi-objdump")
    out = subprocess.run([objdump, "-h", str(elf)], capture_output=True, text=True, timeout=60, check=True).stdout
    lines = out.splitlines()
    secs = []
    for i, line in enumerate(lines):
        parts = line.split()
        if len(parts) >= 7 and parts[0].isdigit():
            flags = lines[i + 1] if i + 1 < len(lines) else ""
            secs.append((parts[1], int(parts[2], 16), int(parts[3], 16), int(parts[4], 16), "ALLOC" in flags, "LOAD" in flags))
    return secs


def region_usage(elf: Path, meta: dict, emulate: bool = False) -> list[RegionUse]:
    """Bytes used in each board region, from the ELF's section addresses."""
    # emulated builds are loaded elsewhere: map an address back to the board's address map
    shifts = []
    for r in meta["regions"]:
        origin = r["emu_origin"] if emulate and r.get("emu_origin") is not None else r["origin"]
        shifts.append((origin, origin + r["length"], r["origin"] - origin))

    def to_board(a: int) -> int:
        for lo, hi, d in shifts:
            if lo <= a < hi or a == hi:
                return a + d
        return a

    used = {b["name"]: 0 for b in meta["board_regions"]}
    ranges = []
    for name, size, vma, lma, alloc, load in _sections(elf):
        if not alloc or size == 0:
            continue
        ranges.append((to_board(vma), size))
        if load and lma != vma:
            ranges.append((to_board(lma), size))  # initialised data: its copy in flash
    for start, size in ranges:
        for b in meta["board_regions"]:
            lo, hi = max(start, b["origin"]), min(start + size, b["origin"] + b["length"])
            if hi > lo:
                used[b["name"]] += hi - lo
    return [RegionUse(b["name"], b["kind"], used[b["name"]], b["length"]) for b in meta["board_regions"]]


def format_usage(res: BuildResult, board: str) -> str:
    rows = [("REGION", "KIND", "USED", "SIZE", "USE")]
    for r in res.regions:
        rows.append((r.name, r.kind, _human(r.used), _human(r.size), f"{r.percent:.1f}%"))
    w = [max(len(x[i]) for x in rows) for i in range(5)]
    lines = [f"{res.elf} ({board}{', emulated' if res.emulate else ''})"]
    lines += ["  " + "  ".join(c.rjust(w[i]) if i >= 2 else c.ljust(w[i]) for i, c in enumerate(row)) for row in rows]
    lines.append(f"  flash {_human(res.flash_bytes)}, static RAM {_human(res.static_ram_bytes)} "
                 f"(arena + data + bss + reserved stack; peak stack is measured on the device)")
    return "\n".join(lines)
