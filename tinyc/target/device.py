"""A validation device: a board on a serial port, or a QEMU instance, behind one interface.

``tinyc validate`` only needs ``info()``, ``run(inputs)`` and ``stats()``; whether the bytes
travel over /dev/ttyACM0 or a QEMU socket is decided once, here.

Example::

    with Device.start(Path("out"), emulate=True, expect_hash=0x1234abcd) as dev:
        outs = dev.run([x])            # list of numpy arrays
        print(dev.stats())             # instructions (QEMU) or cycles (DWT), peak stack
"""

from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path
from typing import Iterable

import numpy as np

from tinyc.errors import BadInput
from tinyc.target import protocol as P
from tinyc.target.boards import Board
from tinyc.target.link import Link, LinkError
from tinyc.target.project import project_boards, read_project
from tinyc.target.qemu import QemuProcess, open_serial, start_qemu


@dataclass(frozen=True)
class DeviceStats:
    """Measurements of the last inference and the run so far."""

    invokes: int
    instructions: int | None  # QEMU insncount plugin: exact, deterministic
    cycles: int | None  # DWT CYCCNT on a real board (None in QEMU, where it reads 0)
    timer_ticks: int  # CMSDK TIMER0 ticks (meaningful with -icount only)
    peak_stack_bytes: int  # stack painting high-water mark
    stack_bytes: int
    instructions_source: str | None = None  # QemuProcess.latency_source: plugin (exact) or -icount (approximate)


class Device:
    """A tinyc firmware reachable through a :class:`Link`, optionally owning its QEMU process."""

    def __init__(self, link: Link, qemu: QemuProcess | None = None,
                 output_dtypes: list[np.dtype] | None = None, output_shapes: list[tuple[int, ...]] | None = None) -> None:
        self.link = link
        self.qemu = qemu
        self.output_dtypes = output_dtypes
        self.output_shapes = output_shapes
        self._info: P.InfoReply | None = None
        self._file_inputs: Path | None = None
        self._tmpdir: Path | None = None  # ours to delete on close

    # -- construction -------------------------------------------------------------------------
    @classmethod
    def start(cls, project_dir: Path, *, emulate: bool = False, port: str | None = None,
              expect_hash: int | None = None, expect_arena: int | None = None, count_instructions: bool = True,
              timeout: float = 2.0, invoke_timeout: float = 60.0, qemu_timeout: float = 3600.0,
              extra_dirs: Iterable[Path] = (), **kw) -> "Device":
        """Start QEMU for an emulated/QEMU board, or open ``port`` for a real board.

        The firmware must already be built (``tinyc build``, ``build_project``). The board comes
        from the project (its recorded board file; ``extra_dirs`` only for older projects).
        """
        board, emu = project_boards(read_project(project_dir), extra_dirs)
        qemu = None
        if port is None and (emulate or board.is_emulated):
            if emu is None:
                raise BadInput(f"board {board.name} has no QEMU equivalent (set emulate_with in {board.source})")
            elf = Path(project_dir) / "build-emu" / "firmware.elf"
            if not elf.exists():
                raise BadInput(f"{elf} does not exist; run `tinyc build {project_dir} --emulate` first")
            qemu = start_qemu(elf, emu.qemu.machine, count_instructions=count_instructions, timeout=qemu_timeout)
            try:
                ser = open_serial(qemu)
            except Exception:
                qemu.close()
                raise
            link = Link(ser, timeout=timeout, invoke_timeout=invoke_timeout, name=f"QEMU {emu.qemu.machine}")
        elif port is None:
            raise BadInput(f"board {board.name} is real hardware: give its serial port (--port /dev/ttyACM0) "
                           f"or use --emulate")
        else:
            link = Link.open(port, baudrate=board.uart.baud, timeout=timeout, invoke_timeout=invoke_timeout)
        dev = cls(link, qemu, **kw)
        try:
            dev._info = link.connect(expect_hash, expect_arena)
        except BaseException:
            dev.close()
            raise
        return dev

    def close(self) -> None:
        """Stop QEMU (politely, then by force) and close the port."""
        if self.qemu is not None and self.qemu.alive():
            try:
                self.link.timeout, self.link.retries = 0.5, 0
                self.link.exit(0)
                self.qemu.wait(2)
            except Exception:
                pass
        self.link.close()
        if self.qemu is not None:
            self.qemu.close()
        if self._tmpdir is not None:
            shutil.rmtree(self._tmpdir, ignore_errors=True)
            self._tmpdir = None

    def __enter__(self) -> "Device":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- the validation interface ---------------------------------------------------------------
    def info(self) -> P.InfoReply:
        if self._info is None:
            self._info = self.link.info()
        return self._info

    def _outputs(self, raw: list[bytes]) -> list[np.ndarray]:
        outs = []
        for i, b in enumerate(raw):
            dt = np.dtype(self.output_dtypes[i]) if self.output_dtypes else np.dtype(np.int8)
            a = np.frombuffer(b, dtype=dt).copy()
            if self.output_shapes:
                a = a.reshape(self.output_shapes[i])
            outs.append(a)
        return outs

    def run(self, inputs: list[np.ndarray]) -> list[np.ndarray]:
        """One inference over the serial path (the path real boards use)."""
        raw, _ = self.link.run([np.ascontiguousarray(x).tobytes() for x in inputs])
        return self._outputs(raw)

    # -- fast path (QEMU only): inputs from a host file via semihosting ------------------------
    def load_inputs_file(self, batches: list[list[np.ndarray]], path: Path | None = None) -> Path:
        """Write all inputs to one file the emulated firmware reads itself (no UART transfer)."""
        if self.qemu is None:
            raise BadInput("the file input path exists only for emulated boards; real boards use the serial path")
        if path is None:
            self._tmpdir = Path(tempfile.mkdtemp(prefix="tinyc-inputs-"))
            path = self._tmpdir / "inputs.bin"
        write_inputs_file(path, batches, self.info().input_bytes)
        return self.use_inputs_file(path)

    def use_inputs_file(self, path: Path) -> Path:
        """Read inputs from an existing file of records (see :func:`write_inputs_file`); several
        QEMU instances can share one file."""
        if self.qemu is None:
            raise BadInput("the file input path exists only for emulated boards; real boards use the serial path")
        self.link.open_input_file(str(Path(path).resolve()))
        self._file_inputs = Path(path)
        return Path(path)

    def run_file(self, record: int) -> list[np.ndarray]:
        """Run record ``record`` of the file given to :meth:`load_inputs_file`."""
        r = self.link.run_file(record)
        self.qemu.note_ticks(r.ticks)  # the -icount fallback's instruction counts (ignored with the plugin)
        if r.outputs is None:
            raw = [self.link.get_output(i) for i in range(len(self.info().output_bytes))]
        else:
            raw = r.outputs
        return self._outputs(raw)

    def stats(self) -> DeviceStats:
        s = self.link.stats()
        instructions = self.qemu.last_instructions(s.ticks) if self.qemu is not None else None
        has_dwt = bool(self.info().flags & P.FLAG_DWT)
        return DeviceStats(s.invokes, instructions, s.cycles if has_dwt else None, s.ticks,
                           s.stack_used_bytes, s.stack_bytes, self.qemu.latency_source if self.qemu else None)


def find_board_port(board: Board) -> str:
    """The serial port of the one connected ``board``, found by its USB VID:PID (``[usb]``).

    Why exactly one: with two matching boards attached, picking the first would validate
    whichever the OS listed first. The error lists every port seen so the user can pass --port.
    """
    from serial.tools import list_ports

    if not board.usb_vid_pid:
        raise BadInput(f"board {board.name} has no [usb] vid_pid in {board.source}: give its serial port "
                       f"(--port /dev/ttyACM0) or use --emulate")
    vid, pid = (int(x, 16) for x in board.usb_vid_pid.split(":"))
    ports = sorted(list_ports.comports(), key=lambda p: p.device)
    found = [p.device for p in ports if p.vid == vid and p.pid == pid]
    if len(found) == 1:
        return found[0]
    seen = ", ".join(f"{p.device} ({p.vid:04x}:{p.pid:04x})" if p.vid is not None else p.device
                     for p in ports) or "none"
    what = f"{len(found)} serial ports match" if found else "no serial port matches"
    raise BadInput(f"{what} board {board.name}'s USB ID {board.usb_vid_pid} (ports seen: {seen}); "
                   f"pass --port PORT (or --emulate)")


def write_inputs_file(path: Path, batches: list[list[np.ndarray]], input_bytes: tuple[int, ...]) -> None:
    """One record per inference: every model input's bytes, in input order, back to back."""
    with open(path, "wb") as f:
        for inputs in batches:
            for i, x in enumerate(inputs):
                b = np.ascontiguousarray(x).tobytes()
                if len(b) != input_bytes[i]:
                    raise BadInput(f"input {i} has {len(b)} bytes, the model takes {input_bytes[i]}")
                f.write(b)


__all__ = ["Device", "DeviceStats", "LinkError", "find_board_port", "write_inputs_file"]
