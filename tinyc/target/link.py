"""Host side of the tinyc serial link: requests, retries, timeouts, model check.

Works on anything pyserial's ``serial_for_url`` opens: ``/dev/ttyACM0``, ``socket://`` (QEMU),
``rfc2217://`` (a board on another machine), ``loop://`` (tests).

Error policy: every failure of the link is a :class:`LinkError`, a subclass of
``tinyc.errors.CheckFailed`` (exit code 1): the command ran, and the check "this board answers
correctly with this model" failed. A port that cannot be opened at all is ``BadInput`` (exit 2:
the user named a wrong port). Every wait is bounded: one request takes at most
``(retries + 1) * timeout`` seconds, whatever the board does.
"""

from __future__ import annotations

import struct
import time
from dataclasses import dataclass

from tinyc.errors import BadInput, CheckFailed
from tinyc.target import protocol as P


class LinkError(CheckFailed):
    """The board did not answer, answered garbage, refused a command, or runs another model."""


@dataclass(frozen=True)
class InvokeResult:
    status: int
    cycles: int
    ticks: int
    outputs: list[bytes] | None  # None if they did not fit the reply: fetch with get_output


class _Retry(Exception):
    """This attempt failed; ``heard`` if the device sent anything (it is alive, maybe busy)."""

    def __init__(self, msg: str, heard: bool = False) -> None:
        super().__init__(msg)
        self.heard = heard


def _preview(b: bytes, n: int = 60) -> str:
    text = b[-n:].decode("ascii", "replace")
    return "".join(c if c.isprintable() else "." for c in text)


class Link:
    """A request/response session with a tinyc firmware.

    ``timeout`` bounds each wait for a reply, ``invoke_timeout`` the wait for an inference.
    A corrupt or missing reply makes the host resend the same frame (same sequence number);
    the firmware then replays its cached reply instead of executing the command again.
    """

    def __init__(self, ser, *, timeout: float = 2.0, invoke_timeout: float = 60.0, retries: int = 3,
                 name: str = "device") -> None:
        self.ser = ser
        self.timeout = timeout
        self.invoke_timeout = invoke_timeout
        self.retries = retries
        self.name = name
        self.max_payload = P.MAX_PAYLOAD
        self.info_reply: P.InfoReply | None = None
        self.retransmissions = 0
        self._seq = int.from_bytes(__import__("os").urandom(1), "little")
        self._parser = P.FrameParser()

    # -- opening ----------------------------------------------------------------------------
    @classmethod
    def open(cls, url: str, baudrate: int = 115200, **kw) -> "Link":
        import serial

        try:
            ser = serial.serial_for_url(url, baudrate=baudrate, timeout=0.05, write_timeout=5)
        except (serial.SerialException, ValueError, OSError) as e:
            raise BadInput(f"cannot open serial port {url}: {e}") from None
        return cls(ser, name=url, **kw)

    def close(self) -> None:
        try:
            self.ser.close()
        except Exception:  # closing a dead socket must not hide the real error
            pass

    def __enter__(self) -> "Link":
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    # -- core -------------------------------------------------------------------------------
    def _next_seq(self) -> int:
        self._seq = (self._seq + 1) & 0xFF
        return self._seq

    def request(self, cmd: int, payload: bytes = b"", timeout: float | None = None) -> bytes:
        """Send one command and return the reply payload, retrying damaged exchanges.

        ``timeout`` (default: the link's) bounds the wait for the reply. For a command the device
        acknowledges first (``protocol.ACKED_COMMANDS``), only the short link timeout is spent
        waiting for the ACK; ``timeout`` starts counting once the device has said it got the
        request, so a request lost on the wire is resent quickly even when ``timeout`` is long.
        """
        name = P.COMMAND_NAMES.get(cmd, hex(cmd))
        seq = self._next_seq()
        frame = P.encode_frame(cmd, seq, payload)
        wait = self.timeout if timeout is None else timeout
        acked = cmd in P.ACKED_COMMANDS
        heard = False  # the device sent something for this request: it may be busy working on it
        problems: list[str] = []
        for attempt in range(self.retries + 1):
            if attempt:
                self.retransmissions += 1
                self._resync()
            try:
                self.ser.write(frame)
                self.ser.flush()
            except Exception as e:  # serial.SerialException, socket errors
                raise LinkError(f"{self.name}: writing to the port failed: {e}") from None
            first_wait = min(self.timeout, wait) if acked and not heard else wait
            try:
                reply = self._read_reply(cmd, seq, first_wait, wait if acked else None)
            except _Retry as e:
                heard = heard or e.heard
                problems.append(str(e))
                continue
            if reply.cmd == P.REPLY_NAK:
                problems.append("device reported a damaged request (NAK)")
                continue
            if reply.cmd == P.REPLY_ERR:
                code = reply.payload[0] if reply.payload else 0
                msg = reply.payload[2:].decode("ascii", "replace")
                raise LinkError(f"{self.name}: the firmware rejected '{name}': {msg} (code {code})")
            if reply.cmd != (cmd | P.REPLY_BIT):
                raise LinkError(f"{self.name}: reply to '{name}' has command {reply.cmd:#04x}, "
                                f"expected {cmd | P.REPLY_BIT:#04x}: not a tinyc firmware of this version?")
            return reply.payload
        detail = "; ".join(dict.fromkeys(problems))
        waits = f"{wait:g} s" if not acked or wait <= self.timeout else f"{self.timeout:g} s for an ACK"
        raise LinkError(f"{self.name}: no valid reply to '{name}' after {self.retries + 1} attempts of "
                        f"{waits} ({detail}). Is the board connected, flashed with tinyc firmware, "
                        f"and is this its port?")

    def _resync(self) -> None:
        """Before a retransmission: drop whatever half-frame is still arriving."""
        try:
            self.ser.reset_input_buffer()
        except Exception:
            pass
        self._parser = P.FrameParser()

    def _read_reply(self, cmd: int, seq: int, wait: float, after_ack: float | None = None) -> P.Frame:
        """The reply frame to (cmd, seq) within ``wait`` seconds; an ACK extends the wait to
        ``after_ack`` seconds from its arrival."""
        deadline = time.monotonic() + wait
        while True:
            now = time.monotonic()
            if now >= deadline:
                noise = self._parser.take_noise()
                if noise:
                    raise _Retry(f"no reply frame, only unframed bytes: '{_preview(noise)}'", heard=True)
                raise _Retry("no answer" if after_ack is None else "no ACK")
            try:
                n = max(1, getattr(self.ser, "in_waiting", 0) or 0)
                data = self.ser.read(min(n, 65536))
            except Exception as e:
                raise LinkError(f"{self.name}: reading from the port failed: {e}") from None
            if not data:
                continue
            for item in self._parser.feed(data):
                if isinstance(item, P.FrameError):
                    raise _Retry(f"corrupt reply ({item})", heard=True)
                if item.cmd == cmd and item.seq == seq:
                    raise LinkError(f"{self.name}: the port echoes our own requests back; "
                                    f"this is a loopback, not a tinyc firmware")
                if item.seq != seq:
                    continue  # a stale reply to an earlier attempt
                if item.cmd == P.REPLY_ACK:
                    if after_ack is not None:
                        deadline = max(deadline, time.monotonic() + after_ack)
                    continue
                return item
            noise = bytes(self._parser.noise)
            if b"tinyc-fault" in noise:
                time.sleep(0.05)
                rest = self.ser.read(4096) or b""
                text = (noise + rest).decode("ascii", "replace")
                line = text[text.index("tinyc-fault"):].splitlines()[0]
                raise LinkError(f"{self.name}: the firmware crashed: {line}")
            if len(noise) > 4096:
                raise LinkError(f"{self.name}: garbled link, {len(noise)} bytes without a frame "
                                f"(wrong baud rate or not a tinyc firmware?): '{_preview(noise)}'")

    # -- commands ---------------------------------------------------------------------------
    def info(self) -> P.InfoReply:
        try:
            info = P.InfoReply.parse(self.request(P.CMD_INFO))
        except P.FrameError as e:
            raise LinkError(f"{self.name}: {e}") from None
        if info.version != P.PROTOCOL_VERSION:
            raise LinkError(f"{self.name}: firmware speaks protocol v{info.version}, this tinyc v{P.PROTOCOL_VERSION}; "
                            f"rebuild and reflash")
        self.info_reply = info
        self.max_payload = min(info.max_payload, P.MAX_PAYLOAD)
        return info

    def connect(self, expect_hash: int | None = None, expect_arena: int | None = None) -> P.InfoReply:
        """Say hello and refuse a firmware built from another model."""
        info = self.info()
        if expect_hash is not None and info.model_hash != expect_hash:
            raise LinkError(f"{self.name}: the board runs another model (hash {info.model_hash:08x}, "
                            f"expected {expect_hash:08x}); rebuild and flash this model's firmware")
        if expect_arena is not None and info.arena_bytes != expect_arena:
            raise LinkError(f"{self.name}: the firmware's arena is {info.arena_bytes} bytes, this compile plans "
                            f"{expect_arena}; rebuild and flash")
        return info

    def _info(self) -> P.InfoReply:
        return self.info_reply or self.info()

    def set_input(self, index: int, data: bytes) -> None:
        info = self._info()
        if not 0 <= index < len(info.input_bytes):
            raise BadInput(f"input {index} does not exist (model has {len(info.input_bytes)})")
        if len(data) != info.input_bytes[index]:
            raise BadInput(f"input {index} needs {info.input_bytes[index]} bytes, got {len(data)}")
        chunk = self.max_payload - 8
        for off in range(0, len(data), chunk):
            self.request(P.CMD_SET_INPUT, struct.pack("<BxxxI", index, off) + data[off:off + chunk])

    def invoke(self) -> InvokeResult:
        info = self._info()
        p = self.request(P.CMD_INVOKE, timeout=self.invoke_timeout)
        return self._invoke_result(p, info)

    def _invoke_result(self, p: bytes, info: P.InfoReply) -> InvokeResult:
        if len(p) < P.INVOKE.size:
            raise LinkError(f"{self.name}: short invoke reply ({len(p)} bytes)")
        status, cycles, ticks = P.INVOKE.unpack_from(p)
        outputs = None
        body = p[P.INVOKE.size:]
        if body:
            if len(body) != sum(info.output_bytes):
                raise LinkError(f"{self.name}: invoke returned {len(body)} output bytes, expected {sum(info.output_bytes)}")
            outputs, off = [], 0
            for n in info.output_bytes:
                outputs.append(body[off:off + n])
                off += n
        if status != 0:
            raise LinkError(f"{self.name}: invoke failed on the device with status {status}")
        return InvokeResult(status, cycles, ticks, outputs)

    def get_output(self, index: int) -> bytes:
        info = self._info()
        total = info.output_bytes[index]
        out = bytearray()
        while len(out) < total:
            n = min(self.max_payload, total - len(out))
            out += self.request(P.CMD_GET_OUTPUT, struct.pack("<BxxxIH", index, len(out), n))
        return bytes(out)

    def run(self, inputs: list[bytes]) -> tuple[list[bytes], InvokeResult]:
        """Set all inputs, invoke, fetch all outputs."""
        for i, data in enumerate(inputs):
            self.set_input(i, data)
        r = self.invoke()
        outs = r.outputs if r.outputs is not None else [self.get_output(i) for i in range(len(self._info().output_bytes))]
        return outs, r

    def stats(self) -> P.StatsReply:
        try:
            return P.StatsReply.parse(self.request(P.CMD_STATS))
        except P.FrameError as e:
            raise LinkError(f"{self.name}: {e}") from None

    def echo(self, payload: bytes) -> bytes:
        return self.request(P.CMD_ECHO, payload)

    def open_input_file(self, path: str) -> None:
        """QEMU fast path: the firmware reads inputs from a host file through semihosting."""
        p = self.request(P.CMD_FILE_OPEN, path.encode())
        (handle,) = struct.unpack("<i", p)
        if handle < 0:
            raise LinkError(f"{self.name}: the emulated firmware could not open {path} via semihosting")

    def run_file(self, record: int) -> InvokeResult:
        """Run record ``record`` of the open input file; outputs come back in the reply."""
        p = self.request(P.CMD_RUN_FILE, struct.pack("<I", record), timeout=self.invoke_timeout)
        return self._invoke_result(p, self._info())

    def exit(self, code: int = 0) -> None:
        """Ask the firmware to stop (QEMU exits with ``code``; a board resets)."""
        self.request(P.CMD_EXIT, bytes([code & 0xFF]))
