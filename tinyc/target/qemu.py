"""Run firmware under QEMU with its UART on a local TCP port (see ../shared/EMULATION.md).

Why TCP with ``wait=on``: the guest does not start until the host connects, so nothing the
firmware sends is lost, and pyserial's ``socket://`` URL makes the QEMU board look exactly like
a real serial port to the link code. Every QEMU process gets a wall-clock deadline and is
killed on close or interpreter exit: a polling guest burns a host core forever otherwise.

Instruction counts (QEMU has no cycle counter; see ../shared/EMULATION.md section 4):

* exact: the insncount TCG plugin (``plugins/insncount.c``, built here with the host C compiler)
  counts the instructions between the firmware's ``tinyc_mark_begin``/``tinyc_mark_end``;
* fallback, when the plugin cannot be built or QEMU cannot load it (no host compiler, a QEMU
  built without plugin support or with another plugin API), or when ``TINYC_QEMU_PLUGIN=off``:
  QEMU runs with ``-icount shift=N``, so each guest instruction advances virtual time by exactly
  2**N ns, and the CMSDK TIMER0 ticks the firmware measures around each inference convert to
  instructions: ``ticks * 1e9 / (timer_hz * 2**N)`` (an500: ticks * 40 / 64). This figure is
  derived, not counted: it includes the few instructions between the timer reads and the
  markers, and rounds to the timer's resolution (0.625 instructions at shift=6, 25 MHz). Its
  source is labelled as such (:attr:`QemuProcess.latency_source`), and a warning says why once.

``TINYC_QEMU_PLUGIN``: ``auto`` (default: plugin, else fallback), ``off`` (always the fallback),
``on`` (the plugin or an error).
"""

from __future__ import annotations

import atexit
import hashlib
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

from tinyc.errors import BadInput, CheckFailed

PLUGIN_SOURCE = Path(__file__).parent / "plugins" / "insncount.c"
QEMU = "qemu-system-arm"
PLUGIN_ENV = "TINYC_QEMU_PLUGIN"
DEFAULT_ICOUNT_SHIFT = 6  # 64 ns per instruction: TIMER0 (32 bits, 25 MHz) wraps after 2.7 G instructions
SOURCE_PLUGIN = "qemu insncount plugin (exact)"
_LIVE: set[subprocess.Popen] = set()
_PLUGIN_STATE: dict[tuple[str, str], str | None] = {}  # (qemu, plugin) -> None if it loads, else why not
_WARNED: set[str] = set()
_WARN_LOCK = threading.Lock()


def icount_source(shift: int) -> str:
    """The label of instruction counts derived from TIMER0 ticks under ``-icount shift=N``."""
    return f"qemu -icount shift={shift} + TIMER0 ticks (approximate: derived, not counted)"


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


def plugin_mode() -> str:
    """``TINYC_QEMU_PLUGIN``: auto (default), on or off."""
    v = os.environ.get(PLUGIN_ENV, "auto").strip().lower()
    mode = {"": "auto", "auto": "auto", "on": "on", "1": "on", "yes": "on", "true": "on",
            "off": "off", "0": "off", "no": "off", "false": "off"}.get(v)
    if mode is None:
        raise BadInput(f"{PLUGIN_ENV}={v!r}: use auto, on or off")
    return mode


def plugin_problem(exe: str) -> tuple[Path | None, str | None]:
    """Build the plugin and check that ``exe`` loads it: (plugin, None), or (None, why not).

    The load check runs QEMU once (``-M none``, monitor ``quit``; ~20 ms) per process and plugin:
    a QEMU that cannot load it fails only after its UART waits for the host, which would look
    like a dead board."""
    try:
        so = build_plugin()
    except (BadInput, CheckFailed, OSError, subprocess.SubprocessError) as e:
        return None, f"the insncount plugin could not be built ({e})"
    key = (exe, str(so))
    if key not in _PLUGIN_STATE:
        try:
            r = subprocess.run([exe, "-M", "none", "-display", "none", "-nodefaults", "-S", "-monitor", "stdio",
                                "-plugin", f"{so},start=0,end=0"], input="quit\n", capture_output=True,
                               text=True, timeout=30)
            ok = r.returncode == 0
            why = (r.stderr.strip().splitlines() or [f"exit status {r.returncode}"])[-1]
        except (OSError, subprocess.SubprocessError) as e:
            ok, why = False, str(e)
        _PLUGIN_STATE[key] = None if ok else f"{QEMU} cannot load the insncount plugin ({why})"
    problem = _PLUGIN_STATE[key]
    return (None, problem) if problem else (so, None)


def _warn_once(msg: str) -> None:
    with _WARN_LOCK:  # validate --jobs starts QEMUs from several threads
        if msg in _WARNED:
            return
        _WARNED.add(msg)
    print(f"tinyc: warning: {msg}", file=sys.stderr)


def machine_timer(machine: str) -> tuple[int, int] | None:
    """(TIMER0 base, its clock in Hz) of a QEMU machine, from the built-in board files; None if
    no board of that machine has a TIMER0 (mps2-an505: the fallback has no timer to read)."""
    from tinyc.target.boards import load_boards

    for b in load_boards().values():
        if b.qemu is not None and b.qemu.machine == machine and b.qemu.timer0:
            return b.qemu.timer0, b.qemu.timer_hz
    return None


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
    #: where instruction counts come from: SOURCE_PLUGIN, icount_source(shift), or None (no counts)
    latency_source: str | None = None
    icount_shift: int | None = None
    timer_hz: int | None = None  # TIMER0 clock, for the -icount fallback
    _ticks: list[int] = field(default_factory=list, repr=False)

    @property
    def url(self) -> str:
        return f"socket://127.0.0.1:{self.port}"

    def alive(self) -> bool:
        return self.proc.poll() is None

    @property
    def exact_instructions(self) -> bool:
        """True when the counts come from the plugin; False for the -icount fallback or none."""
        return self.insn_file is not None

    def instructions_from_ticks(self, ticks: int) -> int | None:
        """TIMER0 ticks of one inference -> instructions (``-icount`` fallback only, else None)."""
        if self.exact_instructions or self.icount_shift is None or not self.timer_hz:
            return None
        return round(ticks * 1_000_000_000 / (self.timer_hz * (1 << self.icount_shift)))

    def note_ticks(self, ticks: int) -> None:
        """Record the TIMER0 ticks the firmware reported for one invoke (the fallback's input;
        the device layer calls this for every invoke reply). Ignored when the plugin counts."""
        if self.instructions_from_ticks(ticks) is not None:
            self._ticks.append(int(ticks))

    def instruction_counts(self) -> list[int]:
        """All instruction counts so far, one per invoke: the plugin's marker-to-marker counts,
        or in the fallback the ones derived from the ticks given to :meth:`note_ticks`."""
        if self.insn_file is None:
            return [self.instructions_from_ticks(t) for t in self._ticks]
        if not self.insn_file.exists():
            return []
        return [int(x) for x in self.insn_file.read_text().split()]

    def last_instructions(self, ticks: int | None = None) -> int | None:
        """The last invoke's instructions; in the fallback, from ``ticks`` (the TIMER0 ticks the
        firmware's STATS reply gives for its last invoke) when given, else the last noted."""
        if ticks is not None and not self.exact_instructions:
            return self.instructions_from_ticks(ticks)
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
               timeout: float = 600.0, extra_args: list[str] = (), plugin: str | None = None,
               timer_hz: int | None = None) -> QemuProcess:
    """Start ``elf`` on QEMU ``machine``; the UART waits for a client on ``.url``.

    ``count_instructions`` loads the insncount plugin (exact instructions per invoke) or, when
    it cannot be built or loaded, runs with ``-icount`` so the TIMER0 ticks the firmware reports
    convert to instructions (see the module doc; ``.latency_source`` says which).
    ``plugin``: auto, on or off (default: ``$TINYC_QEMU_PLUGIN``, else auto).
    ``icount_shift`` adds ``-icount shift=N`` in any case (the fallback's default is 6).
    ``timer_hz``: TIMER0's clock (default: from the built-in board of ``machine``).
    ``timeout`` is a hard wall-clock limit after which the process is killed.
    """
    exe = require_qemu()
    elf = Path(elf)
    if not elf.exists():
        raise BadInput(f"{elf} does not exist (run `tinyc build` first)")
    mode = plugin_mode() if plugin is None else plugin
    if mode not in ("auto", "on", "off"):
        raise BadInput(f"plugin={mode!r}: use auto, on or off")
    workdir = Path(tempfile.mkdtemp(prefix="tinyc-qemu-"))
    port = free_port()
    args = [exe, "-M", machine, "-display", "none", "-monitor", "none", "-nodefaults",
            "-semihosting-config", "enable=on,target=native",
            "-serial", f"tcp:127.0.0.1:{port},server=on,wait=on,nodelay=on", "-kernel", str(elf)]
    insn_file = source = None
    if count_instructions:
        so, problem = (None, f"{PLUGIN_ENV}=off") if mode == "off" else plugin_problem(exe)
        if so is not None:
            begin = symbol_address(elf, "tinyc_mark_begin")
            end = symbol_address(elf, "tinyc_mark_end")
            insn_file = workdir / "insns.txt"
            args += ["-plugin", f"{so},start={begin:#x},end={end:#x},out={insn_file}", "-d", "plugin"]
            source = SOURCE_PLUGIN
        elif mode == "on":
            shutil.rmtree(workdir, ignore_errors=True)
            raise CheckFailed(f"{problem}; {PLUGIN_ENV}=on asks for exact instruction counts")
        else:
            timer = machine_timer(machine)
            if timer_hz is None and timer is not None:
                timer_hz = timer[1]
            if timer_hz:
                icount_shift = DEFAULT_ICOUNT_SHIFT if icount_shift is None else icount_shift
                source = icount_source(icount_shift)
                _warn_once(f"{problem}: instructions per inference are derived from -icount shift={icount_shift} "
                           f"and TIMER0 ticks (approximate; exact counts need the plugin)")
            else:
                _warn_once(f"{problem}, and QEMU {machine} has no TIMER0 for the -icount fallback: "
                           f"no instruction counts")
    if icount_shift is not None:
        args += ["-icount", f"shift={icount_shift}"]
    args += list(extra_args)
    log = open(workdir / "qemu.log", "w")
    proc = subprocess.Popen(args, stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)
    log.close()
    _LIVE.add(proc)
    q = QemuProcess(proc, port, machine, workdir, insn_file, time.monotonic() + timeout, latency_source=source,
                    icount_shift=icount_shift, timer_hz=timer_hz)
    _arm_watchdog(q, timeout)
    return q


def _arm_watchdog(q: QemuProcess, timeout: float) -> None:
    """Kill QEMU after ``timeout`` seconds even if the caller hangs somewhere else."""
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
