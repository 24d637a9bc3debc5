"""Run firmware under QEMU with its UART on a local TCP port (see ../shared/EMULATION.md).

Why TCP with ``wait=on``: the guest does not start until the host connects, so nothing the
firmware sends is lost, and pyserial's ``socket://`` URL makes the QEMU board look exactly like
a real serial port to the link code. Every QEMU process gets a wall-clock deadline and is
killed on close or interpreter exit: a polling guest burns a host core forever otherwise.
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import socket
import subprocess
import tempfile
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinyc.errors import BadInput, CheckFailed

PLUGIN_SOURCE = Path(__file__).parent / "plugins" / "insncount.c"
QEMU = "qemu-system-arm"
_LIVE: set[subprocess.Popen] = set()


def cache_dir() -> Path:
    d = Path(os.environ.get("XDG_CACHE_HOME", Path.home() / ".cache")) / "tinyc"
    d.mkdir(parents=True, exist_ok=True)
    return d


def require_qemu() -> str:
    exe = shutil.which(QEMU)
    if exe is None:
        raise BadInput(f"{QEMU} not found; install it (Debian/Ubuntu: apt-get install qemu-system-arm)")
    return exe


def build_plugin() -> Path:
    """Compile insncount.so with the host C compiler, cached by source hash."""
    src = PLUGIN_SOURCE.read_bytes()
    tag = hashlib.sha256(src).hexdigest()[:12]
    so = cache_dir() / f"insncount-{tag}.so"
    if so.exists():
        return so
    cc = shutil.which("gcc") or shutil.which("cc")
    if cc is None:
        raise BadInput("building the QEMU insncount plugin needs a host C compiler (apt-get install gcc)")
    tmp = so.with_suffix(f".{os.getpid()}.tmp")
    r = subprocess.run([cc, "-O2", "-shared", "-fPIC", "-o", str(tmp), str(PLUGIN_SOURCE)],
                       capture_output=True, text=True, timeout=60)
    if r.returncode != 0:
        raise CheckFailed(f"building the insncount plugin failed: {r.stderr.strip().splitlines()[-1:]}")
    tmp.replace(so)  # atomic: parallel builders do not see half a file
    return so


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def symbol_address(elf: Path, symbol: str) -> int:
    """Address of a symbol via arm-none-eabi-nm (no ELF library needed)."""
    nm = shutil.which("arm-none-eabi-nm")
    if nm is None:
        raise BadInput("arm-none-eabi-nm not found; install gcc-arm-none-eabi")
    out = subprocess.run([nm, str(elf)], capture_output=True, text=True, timeout=30, check=True).stdout
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[2] == symbol:
            return int(parts[0], 16)
    raise BadInput(f"{elf}: no symbol {symbol} (not a tinyc firmware?)")


@dataclass
class QemuProcess:
    """A running QEMU; use as a context manager or call close()."""

    proc: subprocess.Popen
    port: int
    machine: str
    workdir: Path
    insn_file: Path | None = None
    deadline: float = 0.0
    _insn_read: int = field(default=0, repr=False)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    def instruction_counts(self) -> list[int]:
        """All marker-to-marker instruction counts so far (one per invoke), from the plugin."""
        if self.insn_file is None or not self.insn_file.exists():
            return []
        return [int(x) for x in self.insn_file.read_text().split()]

    def last_instructions(self) -> int | None:
        counts = self.instruction_counts()
        return counts[-1] if counts else None

    def output(self) -> str:
        """QEMU's stderr so far (after exit), for error messages."""
        p = self.workdir / "qemu.log"
        return p.read_text(errors="replace") if p.exists() else ""

    def wait(self, timeout: float) -> int:
        try:
            return self.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            self.close()
            raise CheckFailed(f"QEMU {self.machine} did not exit within {timeout:g} s; killed") from None

    def close(self) -> None:
        if self.proc.poll() is None:
            self.proc.kill()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                pass
        _LIVE.discard(self.proc)
        shutil.rmtree(self.workdir, ignore_errors=True)

    def __enter__(self) -> "QemuProcess":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()


def start_qemu(elf: Path, machine: str, *, count_instructions: bool = True, icount_shift: int | None = None,
               timeout: float = 600.0, extra_args: list[str] = ()) -> QemuProcess:
    """Start ``elf`` on QEMU ``machine``; the UART waits for a client on ``.url``.

    ``count_instructions`` loads the insncount plugin (exact instructions per invoke);
    ``icount_shift`` adds ``-icount shift=N`` so TIMER0 ticks convert to instructions (fallback).
    ``timeout`` is a hard wall-clock limit after which the process is killed.
    """
    exe = require_qemu()
    elf = Path(elf)
    if not elf.exists():
        raise BadInput(f"{elf} does not exist (run `tinyc build` first)")
    workdir = Path(tempfile.mkdtemp(prefix="tinyc-qemu-"))
    port = free_port()
    args = [exe, "-M", machine, "-display", "none", "-monitor", "none", "-nodefaults",
            "-semihosting-config", "enable=on,target=native",
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", "-kernel", str(elf)]
    insn_file = None
    if count_instructions:
        so = build_plugin()
        begin = symbol_address(elf, "tinyc_mark_begin")
        end = symbol_address(elf, "tinyc_mark_end")
        insn_file = workdir / "insns.txt"
        args += ["-plugin", f"{so},start={begin:#x},end={end:#x},out={insn_file}", "-d", "plugin"]
    if icount_shift is not None:
        args += ["-icount", f"shift={icount_shift}"]
    args += list(extra_args)
    log = open(workdir / "qemu.log", "w")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    _LIVE.add(proc)
    q = QemuProcess(proc, port, machine, workdir, insn_file, time.monotonic() + timeout)
    _arm_watchdog(q, timeout)
    return q


def _arm_watchdog(q: QemuProcess, timeout: float) -> None:
    """Kill QEMU after ``timeout`` seconds even if the caller hangs somewhere else."""
    import threading

    def watch() -> None:
        try:
            q.proc.wait(timeout)
        except subprocess.TimeoutExpired:
            q.proc.kill()

    threading.Thread(target=watch, daemon=True, name=f"qemu-watchdog-{q.port}").start()


def open_serial(q: QemuProcess, connect_timeout: float = 10.0, read_timeout: float = 0.05):
    """Connect pyserial to QEMU's UART, retrying until QEMU listens. Fails fast if QEMU died.

    The connection itself is the probe: QEMU accepts one client, and it must be us.
    """
    import serial

    deadline = time.monotonic() + connect_timeout
    last = ""
    while time.monotonic() < deadline:
        if not q.alive():
            raise CheckFailed(f"QEMU {q.machine} exited with status {q.proc.returncode} before the UART "
                              f"was connected: {q.output().strip()[-300:]}")
        try:
            return serial.serial_for_url(q.url, timeout=read_timeout, write_timeout=5)
        except (serial.SerialException, OSError) as e:
            last = str(e)
            time.sleep(0.01)
    raise CheckFailed(f"QEMU {q.machine} did not open its UART port within {connect_timeout:g} s ({last})")


@atexit.register
def _kill_all() -> None:
    for p in list(_LIVE):
        if p.poll() is None:
            p.kill()
