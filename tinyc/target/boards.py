"""Boards as data: one TOML file per board in ``boards/`` (or a user folder).

Why data and not code: adding a board (memory map, UART pins, flash tool) should not need a
tinyc release. A board lists its memory *regions* (the STM32F746 has DTCM 64K + SRAM1 240K +
SRAM2 16K, not "320K"), so the linker script, the fit check and the per-region report all work
from the same facts.

Search order: the shipped ``boards/`` folder, then each folder in ``$TINYC_BOARDS``
(``os.pathsep``-separated), then ``extra_dirs`` (``--boards-dir``). A board name or alias may be
defined once over all folders (to change a shipped board, copy it under another name).
Every file is checked against one schema (``_BOARD``): a typo'd key, a wrong type, overlapping
regions or a missing region fail with one line naming the file and the key.
"""

from __future__ import annotations

import os
import re
import tomllib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable

from tinyc.errors import BadInput

_PKG = Path(__file__).resolve().parents[1]
#: The folder of boards shipped with tinyc. ``tinyc/boards`` links to the repository's ``boards/``
#: and is package data, so an installed (non-editable) tinyc has its boards without the
#: repository; a checkout where the link did not survive (no symlinks) falls back to ``boards/``.
BOARDS_DIR = next((d for d in (_PKG / "boards", _PKG.parent / "boards") if d.is_dir()), _PKG / "boards")

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
    def named(self, name: str) -> bool:
        """True if ``name`` is this board's name or an alias (case and -/_ insensitive)."""
        return _key(name) in map(_key, (self.name, *self.aliases))

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


# -- the TOML schema ------------------------------------------------------------------------
# A table is {key: (type, required)}; a type is str/int/bool, a nested table, [T] (a list of T)
# or a tuple (a fixed-length list, e.g. an (address, mask) pair). One schema both checks a file
# and lists the allowed keys when a key is misspelt, so a new key is one line here.
_Spec = object
_MEMORY: dict[str, tuple[_Spec, bool]] = {
    "name": (str, True), "origin": (int, True), "length": (int, True), "kind": (str, False)}
_UART: dict[str, tuple[_Spec, bool]] = {
    "driver": (str, False), "peripheral": (str, False), "base": (int, False), "pins": ([str], False),
    "baud": (int, False), "clock_hz": (int, False), "gpio_base": (int, False), "gpio_stride": (int, False),
    "gpio_enable": (int, False), "enable": ([(int, int)], False)}
_FLASH: dict[str, tuple[_Spec, bool]] = {
    "pyocd_target": (str, False), "openocd_cfg": (str, False), "st_flash": (bool, False)}
_QEMU: dict[str, tuple[_Spec, bool]] = {
    "machine": (str, True), "timer0": (int, False), "timer_hz": (int, False), "preload_addr": (int, False),
    "preload_bytes": (int, False)}
_BOARD: dict[str, tuple[_Spec, bool]] = {
    "name": (str, True), "cpu": (str, True), "aliases": ([str], False), "description": (str, False),
    "family": (str, False), "fpu": (str, False), "float_abi": (str, False), "clock_hz": (int, False),
    "arena_region": (str, False), "data_region": (str, False), "stack_bytes": (int, False),
    "alignment": (int, False), "cycle_counter": (str, False), "emulate_with": (str, False),
    "default": (bool, False), "memory": ([_MEMORY], False), "uart": (_UART, False), "flash": (_FLASH, False),
    "usb": ({"vid_pid": (str, True)}, False), "qemu": (_QEMU, False)}
_TYPE_NAMES = {str: "a string", int: "an integer", bool: "true or false"}
_VID_PID = re.compile(r"[0-9a-fA-F]{4}:[0-9a-fA-F]{4}")


def _check(v: object, spec: _Spec, key: str, src: Path) -> None:
    """Raise one BadInput line naming ``src`` and ``key`` if ``v`` does not match ``spec``."""
    if isinstance(spec, dict):
        if not isinstance(v, dict):
            raise BadInput(f"{src}: {key} must be a table")
        where = f"{key}." if key else ""
        for k in v:
            if k not in spec:
                raise BadInput(f"{src}: unknown key {where + k!r} (allowed{' in ' + key if key else ''}: "
                               f"{', '.join(spec)})")
        for k, (sub, required) in spec.items():
            if k in v:
                _check(v[k], sub, where + k, src)
            elif required:
                raise BadInput(f"{src}: missing required key {where + k!r}")
    elif isinstance(spec, list):
        if not isinstance(v, list):
            raise BadInput(f"{src}: {key} must be a list")
        for i, item in enumerate(v):
            _check(item, spec[0], f"{key}[{i}]", src)
    elif isinstance(spec, tuple):
        if not isinstance(v, list) or len(v) != len(spec):
            raise BadInput(f"{src}: {key} must be a list of {len(spec)} values")
        for i, (item, sub) in enumerate(zip(v, spec)):
            _check(item, sub, f"{key}[{i}]", src)
    elif not isinstance(v, spec) or (spec is int and isinstance(v, bool)):
        raise BadInput(f"{src}: {key} must be {_TYPE_NAMES[spec]}, got {v!r}")


def _check_facts(b: Board, src: Path) -> None:
    """What the types cannot say: known CPU, region kinds, no overlap, named regions exist."""
    if b.cpu not in _CPUS:
        raise BadInput(f"{src}: cpu: unknown cpu {b.cpu!r} (known: {', '.join(_CPUS)})")
    if b.usb_vid_pid and not _VID_PID.fullmatch(b.usb_vid_pid):
        raise BadInput(f"{src}: usb.vid_pid {b.usb_vid_pid!r} is not like '0483:374b' (hex VID:PID)")
    names = [r.name for r in b.memory]
    for i, r in enumerate(b.memory):
        if r.kind not in ("ram", "flash"):
            raise BadInput(f"{src}: memory[{i}].kind must be 'ram' or 'flash', got {r.kind!r}")
        if r.length <= 0 or r.origin < 0:
            raise BadInput(f"{src}: memory[{i}] ({r.name}): origin must be >= 0 and length > 0")
        if names.count(r.name) > 1:
            raise BadInput(f"{src}: memory[{i}].name: region {r.name!r} is listed twice")
    regions = sorted(b.memory, key=lambda r: r.origin)
    for lo, hi in zip(regions, regions[1:]):
        if hi.origin < lo.end:
            raise BadInput(f"{src}: memory: regions {lo.name} (0x{lo.origin:08X}-0x{lo.end:08X}) and {hi.name} "
                           f"(0x{hi.origin:08X}-0x{hi.end:08X}) overlap")
    if b.is_host:
        return
    if not b.regions("flash") or not b.regions("ram"):
        raise BadInput(f"{src}: memory: a target board needs at least one 'flash' and one 'ram' region")
    for key, name in (("arena_region", b.arena_region), ("data_region", b.data_region)):
        if not name:
            raise BadInput(f"{src}: missing required key {key!r} (the RAM region that holds the arena)")
        if name not in names:
            raise BadInput(f"{src}: {key}: no memory region {name!r} (has {', '.join(names)})")
        if b.region(name).kind != "ram":
            raise BadInput(f"{src}: {key}: region {name!r} is not RAM")


def board_from_dict(d: dict, src: Path) -> Board:
    """Build a Board from parsed TOML, with one-line errors naming the file and key."""
    _check(d, _BOARD, "", src)
    memory = tuple(MemoryRegion(m["name"], m["origin"], m["length"], m.get("kind", "ram"))
                   for m in d.get("memory", []))
    u = d.get("uart", {})
    uart = UartConfig(**{k: v for k, v in u.items() if k not in ("pins", "enable")},
                      pins=tuple(u.get("pins", ())), enable=tuple(tuple(e) for e in u.get("enable", ())))
    q = d.get("qemu")
    scalars = {k: v for k, v in d.items() if not isinstance(_BOARD[k][0], (dict, list))}
    scalars.setdefault("data_region", d.get("arena_region", ""))
    board = Board(**scalars, aliases=tuple(d.get("aliases", ())), memory=memory, uart=uart,
                  flash=FlashTools(**d.get("flash", {})), usb_vid_pid=d.get("usb", {}).get("vid_pid", ""),
                  qemu=QemuConfig(**q) if q is not None else None, source=str(src))
    _check_facts(board, src)
    return board


def read_board_file(path: Path) -> Board:
    """One board file, checked (used directly for the board file a project recorded)."""
    try:
        data = tomllib.loads(Path(path).read_text())
    except tomllib.TOMLDecodeError as e:
        raise BadInput(f"{path}: not valid TOML: {e}") from None
    except OSError as e:
        raise BadInput(f"{path}: cannot read board file ({e.strerror})") from None
    return board_from_dict(data, Path(path))


def _board_dirs(extra_dirs: Iterable[Path]) -> list[Path]:
    """Shipped, then $TINYC_BOARDS, then ``extra_dirs``; a folder named twice is read once."""
    env = os.environ.get("TINYC_BOARDS", "")
    dirs = [BOARDS_DIR] + [Path(p) for p in env.split(os.pathsep) if p] + [Path(p) for p in extra_dirs]
    seen: dict[Path, Path] = {}
    for d in dirs:
        seen.setdefault(d.resolve(), d)
    return list(seen.values())


def _key(name: str) -> str:
    return name.lower().replace("-", "_")


def load_boards(extra_dirs: Iterable[Path] = ()) -> dict[str, Board]:
    """All boards by canonical name, from every folder (see module doc).

    A name or alias defined twice is an error, never a silent pick: which file won would depend
    on the folder order, and a project compiled for one would build for the other."""
    boards: dict[str, Board] = {}
    owner: dict[str, Board] = {}  # every name and alias -> the board that claims it
    for d in _board_dirs(extra_dirs):
        if not d.is_dir():
            if d != BOARDS_DIR:
                raise BadInput(f"boards folder {d} does not exist")
            continue
        for path in sorted(d.glob("*.toml")):
            b = read_board_file(path)
            for k in dict.fromkeys(map(_key, (b.name, *b.aliases))):
                if k in owner:
                    o = owner[k]
                    raise BadInput(f"{path}: {'name' if k == _key(b.name) else 'aliases'}: {k!r} is already "
                                   f"{'board ' + o.name if k == _key(o.name) else 'an alias of ' + o.name} "
                                   f"in {o.source}; rename one of them")
                owner[k] = b
            boards[b.name] = b
    return boards


def get_board(name: str | None, extra_dirs: Iterable[Path] = ()) -> Board:
    """Look a board up by name or alias (case-insensitive); None means the default board."""
    boards = load_boards(extra_dirs)
    if name is None:
        name = DEFAULT_BOARD
    for b in boards.values():
        if b.named(name):
            return b
    raise BadInput(f"unknown board {name!r}; known boards: {', '.join(sorted(boards))}")


def emulation_board(board: Board, extra_dirs: Iterable[Path] = ()) -> Board:
    """The QEMU board that runs ``board``'s firmware for ``--emulate``.

    The board's own folder is searched too: a user board names its twin from the folder it was
    read from, and callers that only hold the Board (project writing, a recorded board file)
    need no list of folders for that."""
    if board.is_emulated:
        return board
    if not board.emulate_with:
        raise BadInput(f"board {board.name} has no QEMU equivalent (set emulate_with in {board.source})")
    own = [Path(board.source).parent] if board.source else []
    return get_board(board.emulate_with, [*extra_dirs, *own])


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
