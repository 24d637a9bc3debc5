"""Boards as data: one TOML file per board in ``boards/`` (or a user folder).

Why data and not code: adding a board (memory map, UART pins, flash tool) should not need a
tinyc release. A board lists its memory *regions* (the STM32F746 has DTCM 64K + SRAM1 240K +
SRAM2 16K, not "320K"), so the linker script, the fit check and the per-region report all work
from the same facts.

Search order: the shipped ``boards/`` folder, then each folder in ``$TINYC_BOARDS``
(``os.pathsep``-separated), then ``extra_dirs`` (``--boards-dir``). A later file with the same
board name replaces an earlier one, so a user can override a shipped board.
"""

from __future__ import annotations

import os
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tinyc.errors import BadInput

#: The folder of boards shipped with tinyc (repository root ``boards/``).
BOARDS_DIR = Path(__file__).resolve().parents[2] / "boards"

#: Used when the user gives no ``--board``.
DEFAULT_BOARD = "stm32f746g_disco"

_CPUS = ("cortex-m0plus", "cortex-m3", "cortex-m4", "cortex-m7", "cortex-m33", "cortex-m55", "host")


@dataclass(frozen=True)
class MemoryRegion:
    """One block of memory: a linker MEMORY entry and a line of the per-region report."""

    name: str
    origin: int
    length: int
    kind: str = "ram"  # "ram" | "flash"

    @property
    def end(self) -> int:
        return self.origin + self.length


@dataclass(frozen=True)
class UartConfig:
    """The serial port the validation firmware talks on.

    ``driver`` picks the register-level driver template: ``cmsdk`` (MPS2 / QEMU),
    ``stm32_usart_v1`` (F4: SR/DR), ``stm32_usart_v2`` (F7/H7/L4: ISR/RDR/TDR),
    ``stm32_lpuart`` (v2 layout, BRR = 256 * f / baud).
    ``pins`` are ``"PA9:7"`` (pin, alternate function), TX first. ``enable`` is a list of
    (register address, OR mask) pairs written before the UART is touched (RCC clock gates, ...).
    """

    driver: str = "cmsdk"
    peripheral: str = "UART0"
    base: int = 0x40004000
    pins: tuple[str, ...] = ()
    baud: int = 115200
    clock_hz: int = 0
    gpio_base: int = 0
    gpio_stride: int = 0x400
    gpio_enable: int = 0
    enable: tuple[tuple[int, int], ...] = ()


@dataclass(frozen=True)
class FlashTools:
    """How to program the board: whichever of these tools is installed is used."""

    pyocd_target: str = ""
    openocd_cfg: str = ""
    st_flash: bool = False


@dataclass(frozen=True)
class QemuConfig:
    """For boards that *are* a QEMU machine (``mps2_*``)."""

    machine: str
    timer0: int = 0  # CMSDK TIMER0 base, 0 if the machine has none at a known address
    timer_hz: int = 25_000_000
    preload_addr: int = 0  # external RAM where inputs can be preloaded (fast path)
    preload_bytes: int = 0


@dataclass(frozen=True)
class Board:
    """Everything tinyc knows about a target. Immutable: read once, passed around."""

    name: str
    cpu: str
    aliases: tuple[str, ...] = ()
    description: str = ""
    family: str = ""
    fpu: str = "none"
    float_abi: str = "soft"
    clock_hz: int = 0
    memory: tuple[MemoryRegion, ...] = ()
    arena_region: str = ""
    data_region: str = ""  # .data/.bss/stack; defaults to the arena's region
    stack_bytes: int = 8192
    alignment: int = 4
    uart: UartConfig = field(default_factory=UartConfig)
    cycle_counter: str = "none"  # "dwt" | "none"
    flash: FlashTools = field(default_factory=FlashTools)
    usb_vid_pid: str = ""
    qemu: QemuConfig | None = None
    emulate_with: str = ""  # name of the QEMU board with the same CPU
    default: bool = False
    source: str = ""  # file it was read from, for error messages

    # -- derived facts -------------------------------------------------------------------
    @property
    def is_host(self) -> bool:
        return self.cpu == "host"

    @property
    def is_emulated(self) -> bool:
        """True if this board is itself a QEMU machine."""
        return self.qemu is not None

    def region(self, name: str) -> MemoryRegion:
        for r in self.memory:
            if r.name == name:
                return r
        raise BadInput(f"board {self.name}: no memory region {name!r} (has {', '.join(r.name for r in self.memory)})")

    def regions(self, kind: str) -> list[MemoryRegion]:
        return [r for r in self.memory if r.kind == kind]

    @property
    def cflags(self) -> list[str]:
        """Code-generation flags for arm-none-eabi-gcc (empty for the host)."""
        if self.is_host:
            return []
        flags = [f"-mcpu={self.cpu}", "-mthumb"]
        if self.fpu and self.fpu != "none":
            flags += [f"-mfpu={self.fpu}", f"-mfloat-abi={self.float_abi}"]
        else:
            flags += ["-mfloat-abi=soft"]
        return flags


def _int(v: object, what: str, src: Path) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise BadInput(f"{src}: {what} must be an integer, got {v!r}")
    return v


def board_from_dict(d: dict, src: Path) -> Board:
    """Build a Board from parsed TOML, with one-line errors naming the file and key."""
    try:
        name = d["name"]
        cpu = d["cpu"]
    except KeyError as e:
        raise BadInput(f"{src}: missing required key {e.args[0]!r}") from None
    if cpu not in _CPUS:
        raise BadInput(f"{src}: unknown cpu {cpu!r} (known: {', '.join(_CPUS)})")
    memory = []
    for m in d.get("memory", []):
        kind = m.get("kind", "ram")
        if kind not in ("ram", "flash"):
            raise BadInput(f"{src}: memory region {m.get('name')!r}: kind must be 'ram' or 'flash'")
        memory.append(MemoryRegion(str(m["name"]), _int(m["origin"], "origin", src),
                                   _int(m["length"], "length", src), kind))
    u = d.get("uart", {})
    uart = UartConfig(
        driver=u.get("driver", "cmsdk"), peripheral=u.get("peripheral", "UART0"),
        base=u.get("base", 0x40004000), pins=tuple(u.get("pins", ())), baud=u.get("baud", 115200),
        clock_hz=u.get("clock_hz", 0), gpio_base=u.get("gpio_base", 0),
        gpio_stride=u.get("gpio_stride", 0x400), gpio_enable=u.get("gpio_enable", 0),
        enable=tuple((int(a), int(b)) for a, b in u.get("enable", ())))
    f = d.get("flash", {})
    flash = FlashTools(f.get("pyocd_target", ""), f.get("openocd_cfg", ""), bool(f.get("st_flash", False)))
    q = d.get("qemu")
    qemu = None
    if q is not None:
        qemu = QemuConfig(machine=q["machine"], timer0=q.get("timer0", 0), timer_hz=q.get("timer_hz", 25_000_000),
                          preload_addr=q.get("preload_addr", 0), preload_bytes=q.get("preload_bytes", 0))
    board = Board(
        name=name, cpu=cpu, aliases=tuple(d.get("aliases", ())), description=d.get("description", ""),
        family=d.get("family", ""), fpu=d.get("fpu", "none"), float_abi=d.get("float_abi", "soft"),
        clock_hz=d.get("clock_hz", 0), memory=tuple(memory), arena_region=d.get("arena_region", ""),
        data_region=d.get("data_region", d.get("arena_region", "")), stack_bytes=d.get("stack_bytes", 8192),
        alignment=d.get("alignment", 4), uart=uart, cycle_counter=d.get("cycle_counter", "none"),
        flash=flash, usb_vid_pid=d.get("usb", {}).get("vid_pid", ""), qemu=qemu,
        emulate_with=d.get("emulate_with", ""), default=bool(d.get("default", False)), source=str(src))
    if not board.is_host:
        if not board.regions("flash") or not board.regions("ram"):
            raise BadInput(f"{src}: a target board needs at least one 'flash' and one 'ram' memory region")
        board.region(board.arena_region)
        board.region(board.data_region)
        if board.region(board.arena_region).kind != "ram":
            raise BadInput(f"{src}: arena_region {board.arena_region!r} is not RAM")
    return board


def _board_dirs(extra_dirs: Iterable[Path]) -> list[Path]:
    dirs = [BOARDS_DIR]
    env = os.environ.get("TINYC_BOARDS", "")
    dirs += [Path(p) for p in env.split(os.pathsep) if p]
    dirs += [Path(p) for p in extra_dirs]
    return dirs


def load_boards(extra_dirs: Iterable[Path] = ()) -> dict[str, Board]:
    """All boards by canonical name. Later folders override earlier ones (see module doc)."""
    boards: dict[str, Board] = {}
    for d in _board_dirs(extra_dirs):
        if not d.is_dir():
            if d != BOARDS_DIR:
                raise BadInput(f"boards folder {d} does not exist")
            continue
        for path in sorted(d.glob("*.toml")):
            try:
                data = tomllib.loads(path.read_text())
            except tomllib.TOMLDecodeError as e:
                raise BadInput(f"{path}: not valid TOML: {e}") from None
            b = board_from_dict(data, path)
            boards[b.name] = b
    return boards


def get_board(name: str | None, extra_dirs: Iterable[Path] = ()) -> Board:
    """Look a board up by name or alias (case-insensitive); None means the default board."""
    boards = load_boards(extra_dirs)
    if name is None:
        name = DEFAULT_BOARD
    key = name.lower().replace("-", "_")
    if key in boards:
        return boards[key]
    for b in boards.values():
        if key in (a.lower().replace("-", "_") for a in b.aliases):
            return b
    raise BadInput(f"unknown board {name!r}; known boards: {', '.join(sorted(boards))}")


def emulation_board(board: Board, extra_dirs: Iterable[Path] = ()) -> Board:
    """The QEMU board that runs ``board``'s firmware for ``--emulate``."""
    if board.is_emulated:
        return board
    if not board.emulate_with:
        raise BadInput(f"board {board.name} has no QEMU equivalent (set emulate_with in {board.source})")
    return get_board(board.emulate_with, extra_dirs)


def sram_bytes(board: Board) -> int:
    """Total on-chip RAM over all 'ram' regions."""
    return sum(r.length for r in board.regions("ram"))


def flash_bytes(board: Board) -> int:
    return sum(r.length for r in board.regions("flash"))


def _kib(n: int) -> str:
    if n == 0:
        return "-"
    if n % (1024 * 1024) == 0:
        return f"{n // (1024 * 1024)} MB"
    return f"{n / 1024:g} KB"


def format_board_table(boards: dict[str, Board]) -> str:
    """The text ``tinyc boards`` prints: one line per board with CPU, SRAM (with regions), flash."""
    rows = [("BOARD", "ALIASES", "CPU", "SRAM", "FLASH", "RUNS ON")]
    for b in sorted(boards.values(), key=lambda b: (b.is_host, b.is_emulated, b.name)):
        ram = b.regions("ram")
        sram = _kib(sram_bytes(b))
        if len(ram) > 1:
            sram += " (" + " + ".join(f"{r.name} {_kib(r.length)}" for r in ram) + ")"
        runs = "host gcc" if b.is_host else (f"qemu {b.qemu.machine}" if b.qemu else
                                              f"board; --emulate: {b.emulate_with or '-'}")
        name = b.name + (" *" if b.default else "")
        rows.append((name, ",".join(b.aliases), b.cpu, sram, _kib(flash_bytes(b)), runs))
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    lines = ["  ".join(c.ljust(w) for c, w in zip(r, widths)).rstrip() for r in rows]
    return "\n".join(lines) + "\n(* = default board)"
