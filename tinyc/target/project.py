"""Turn a compiled model directory into a complete firmware project for a board.

The compiler has already written ``model.c``/``model.h`` and ``runtime/``; this adds the
board-specific part (startup, linker script from the board's memory regions, UART driver,
validation firmware, Makefile, CMakeLists.txt) from jinja2 templates in ``templates/``.

One project builds two ways: ``make`` for the real board and ``make emulate`` for the QEMU
machine with the same CPU. The emulated build keeps the real board's region *lengths* (so
"fits on an STM32F746" is still checked by the linker) and only moves the region *origins* to
where the QEMU machine has memory, by ``--defsym`` on the symbols the linker script reads.
"""

from __future__ import annotations

import json
import math
import re
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import jinja2

from tinyc.codegen.emit import model_basename
from tinyc.errors import BadInput
from tinyc.target import protocol
from tinyc.target.boards import Board, emulation_board, get_board, read_board_file

TEMPLATES = Path(__file__).parent / "templates"
PLUGINS = Path(__file__).parent / "plugins"
PROJECT_FILE = "tinyc_project.json"

_UART_SOURCES = {"cmsdk": "uart_cmsdk.c", "stm32_usart_v1": "uart_stm32.c",
                 "stm32_usart_v2": "uart_stm32.c", "stm32_lpuart": "uart_stm32.c"}


@dataclass(frozen=True)
class LinkRegion:
    """A linker MEMORY region: one board region, or a run of contiguous ones of the same kind."""

    name: str
    kind: str
    origin: int
    length: int
    members: tuple[str, ...]
    emu_origin: int | None = None

    @property
    def sym(self) -> str:
        return f"__tinyc_origin_{self.name}"

    @property
    def label(self) -> str:
        return "+".join(self.members)


def link_regions(board: Board, emu: Board | None = None) -> list[LinkRegion]:
    """Merge contiguous same-kind regions (DTCM+SRAM1+SRAM2 on the F746) and, for emulation,
    pack them into the QEMU machine's memories keeping their lengths and relative order."""
    runs: list[list] = []
    for r in sorted(board.memory, key=lambda r: (r.kind != "flash", r.origin)):
        if runs and runs[-1][-1].kind == r.kind and runs[-1][-1].end == r.origin:
            runs[-1].append(r)
        else:
            runs.append([r])
    out: list[LinkRegion] = []
    cursor: dict[str, int] = {}
    if emu is not None and emu is not board:
        cursor = {k: emu.regions(k)[0].origin for k in ("flash", "ram")}
        limit = {k: emu.regions(k)[0].end for k in ("flash", "ram")}
    for run in runs:
        name = "_".join(r.name for r in run)
        length = sum(r.length for r in run)
        emu_origin = None
        if cursor:
            kind = run[0].kind
            emu_origin = cursor[kind]
            cursor[kind] += length
            if cursor[kind] > limit[kind]:
                raise BadInput(f"board {board.name}: {kind} regions do not fit the memory of QEMU "
                               f"{emu.qemu.machine}; cannot emulate")
        out.append(LinkRegion(name, run[0].kind, run[0].origin, length, tuple(r.name for r in run), emu_origin))
    return out


def _region_of(runs: list[LinkRegion], member: str) -> LinkRegion:
    for r in runs:
        if member in r.members:
            return r
    raise BadInput(f"no memory region {member!r}")


def _pins(board: Board) -> list[dict]:
    """'PA9:7' -> GPIO port/pin/AF facts for the STM32 UART template."""
    pins = []
    for role, spec in zip(("TX", "RX"), board.uart.pins):
        try:
            pin, af = spec.split(":")
            letter, num = pin[1].upper(), int(pin[2:])
            assert pin[0].upper() == "P" and "A" <= letter <= "K" and 0 <= num < 16
        except (ValueError, AssertionError, IndexError):
            raise BadInput(f"{board.source}: uart pin {spec!r} is not like 'PA9:7' (pin:alternate function)") from None
        port = ord(letter) - ord("A")
        pins.append(dict(name=pin.upper(), role=role, letter=letter, port=port, pin=num, af=int(af),
                         base=board.uart.gpio_base + port * board.uart.gpio_stride))
    return pins


_ER_TYPES = {"int8": ("int8_t", 1), "uint8": ("uint8_t", 1), "int16": ("int16_t", 2), "int32": ("int32_t", 4),
             "float32": ("float", 4)}


def _er_output(header: Path) -> dict | None:
    """Output 0's type and quantization as the model header's comment records them, for the
    EnergyRunner results line (printed dequantized); None if the header records none."""
    m = re.search(r"/\* output 0: (\w+)\[([\d, ]*)\](?:, scale ([-+.\deE]+), zero point (-?\d+))? \*/",
                  header.read_text())
    if m is None or m[1] not in _ER_TYPES:
        return None
    ctype, size = _ER_TYPES[m[1]]
    return dict(dtype=m[1], shape=m[2], ctype=ctype, is_float=m[1] == "float32", scale=m[3] or "1.0",
                zero_point=int(m[4] or 0), nbytes=size * math.prod(int(x) for x in m[2].split(",") if x.strip()))


def _env() -> jinja2.Environment:
    env = jinja2.Environment(loader=jinja2.FileSystemLoader(str(TEMPLATES)), undefined=jinja2.StrictUndefined,
                             keep_trailing_newline=True, trim_blocks=False)
    env.filters["basename"] = lambda p: Path(p).name
    return env


def write_firmware_project(out_dir: Path, board: Board, model_sources: list[str], name: str = "tinyc",
                           extra_dirs: Iterable[Path] = ()) -> None:
    """Add the board part of a firmware project to ``out_dir`` (model sources already there).

    ``extra_dirs``: board folders (``--boards-dir``) where the board's QEMU twin may be; the
    board's own folder is always searched. The board files used are recorded in the project so
    build, flash and validate find them without the folders (see :func:`project_boards`)."""
    out_dir = Path(out_dir)
    if board.is_host:
        raise BadInput("board 'host' has no firmware project: use `tinyc run` for the host")
    header = model_basename(name) + ".h"
    if not (out_dir / header).exists():
        raise BadInput(f"{out_dir}: no {header} (run `tinyc compile` first)")
    if board.uart.driver not in _UART_SOURCES:
        raise BadInput(f"{board.source}: unknown uart driver {board.uart.driver!r} "
                       f"(known: {', '.join(sorted(_UART_SOURCES))})")
    # a board without a QEMU twin still gets a project, only no `make emulate`; a twin that is
    # named but cannot be found is an error (a typo in emulate_with must not pass silently)
    emu = emulation_board(board, extra_dirs) if board.is_emulated or board.emulate_with else None
    runs = link_regions(board, emu)
    flash = next(r for r in runs if r.kind == "flash")
    arena = _region_of(runs, board.arena_region)
    data = _region_of(runs, board.data_region or board.arena_region)
    defsyms = [f"-Wl,--defsym={r.sym}=0x{r.emu_origin:08X}" for r in runs if r.emu_origin is not None]
    ctx = dict(board=board, emu=emu, name=name, header=header, NAME=name.upper(), runs=runs, flash=flash.name,
               arena=arena.name, data=data.name, arena_align=max(16, board.alignment),
               model_sources=list(model_sources), board_uart=_UART_SOURCES[board.uart.driver],
               emu_defsyms=defsyms, consts=protocol.c_constants(), pins=_pins(board) if board.uart.pins else [],
               er_output=_er_output(out_dir / header))
    env = _env()
    rendered = {
        "tinyc_board.h": "tinyc_board.h.j2", "main.c": "main.c.j2", "tinyc.ld": "tinyc.ld.j2",
        "Makefile": "Makefile.j2", "CMakeLists.txt": "CMakeLists.txt.j2",
    }
    if board.uart.driver.startswith("stm32"):
        rendered["uart_stm32.c"] = "uart_stm32.c.j2"
    for dst, tpl in rendered.items():
        (out_dir / dst).write_text(env.get_template(tpl).render(**ctx))
    for f in ("startup.c", "tinyc_fw.h", "uart_cmsdk.c"):
        shutil.copyfile(TEMPLATES / f, out_dir / f)
    meta = dict(board=board.name, emulate_with=emu.name if emu else None, board_file=_abs(board.source),
                emulate_with_file=_abs(emu.source) if emu else None, name=name,
                model_sources=list(model_sources), stack_bytes=board.stack_bytes,
                regions=[dict(name=r.name, kind=r.kind, origin=r.origin, length=r.length, members=list(r.members),
                              emu_origin=r.emu_origin) for r in runs],
                board_regions=[dict(name=m.name, kind=m.kind, origin=m.origin, length=m.length) for m in board.memory])
    (out_dir / PROJECT_FILE).write_text(json.dumps(meta, indent=2) + "\n")


def _abs(source: str) -> str | None:
    return str(Path(source).resolve()) if source else None


def read_project(out_dir: Path) -> dict:
    """The metadata written with the project (board, regions) for build/flash/validate."""
    p = Path(out_dir) / PROJECT_FILE
    if not p.exists():
        raise BadInput(f"{out_dir}: not a tinyc firmware project (no {PROJECT_FILE}); run `tinyc compile --board B`")
    return json.loads(p.read_text())


def is_qemu_project(meta: dict) -> bool:
    """True if the project's board is itself a QEMU machine (it is its own twin): its firmware
    is always the emulated build, in ``build-emu/``."""
    return meta.get("emulate_with") == meta["board"]


def project_boards(meta: dict, extra_dirs: Iterable[Path] = ()) -> tuple[Board, Board | None]:
    """The board a project was generated for and its QEMU twin (None if it has none).

    Read from the board files recorded at compile time while they exist, so `tinyc build/flash
    DIR` of a project made with a ``--boards-dir`` board needs no folder again; looked up by name
    otherwise (a project from before files were recorded, or a moved file)."""
    def one(name: str, file: str | None) -> Board:
        if file and Path(file).is_file():
            return read_board_file(Path(file))
        return get_board(name, extra_dirs)

    board = one(meta["board"], meta.get("board_file"))
    emu = one(meta["emulate_with"], meta.get("emulate_with_file")) if meta.get("emulate_with") else None
    return board, emu
