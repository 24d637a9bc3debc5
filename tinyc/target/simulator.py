"""A board in Python: a pyserial-like object that answers the tinyc protocol like the firmware.

Why: the host link's hard cases (a corrupted frame, a dropped byte, a board that never answers,
a firmware from another model) must be tested fast and deterministically, without QEMU. The
device logic mirrors ``templates/main.c.j2``: NAK on a bad CRC, replay of the cached reply for a
repeated (seq, crc), an ACK before slow commands, a 100 ms inter-byte timeout that drops a
partial frame.

Fault injection knobs are plain counters: set ``corrupt_requests = 1`` and the next request
frame gets one byte flipped on its way in, and so on.
"""

from __future__ import annotations

import struct
import threading
import time
from collections import Counter
from typing import Callable

from tinyc.target import protocol as P


def sum_model(inputs: list[bytes]) -> list[bytes]:
    """The fake model of the test fixtures: sum (low, high), xor, weights."""
    data = inputs[0]
    s = sum(data)
    x = 0
    for b in data:
        x ^= b
    return [bytes([s & 0xFF, x, (s >> 8) & 0xFF, 5])]


class SimulatedBoard:
    RX_TIMEOUT = 0.1

    def __init__(self, *, model_hash: int = 0x1234ABCD, arena_bytes: int = 256, input_bytes: tuple[int, ...] = (64,),
                 output_bytes: tuple[int, ...] = (4,), model: Callable[[list[bytes]], list[bytes]] = sum_model,
                 max_payload: int = P.MAX_PAYLOAD, board: str = "simulated") -> None:
        self.info = P.InfoReply(P.PROTOCOL_VERSION, 0, model_hash, arena_bytes, max_payload, 0x411FC272, 16384,
                                25_000_000, tuple(input_bytes), tuple(output_bytes), board)
        self.model = model
        self.inputs = [bytearray(n) for n in input_bytes]
        self.outputs = [bytes(n) for n in output_bytes]
        self.timeout: float | None = 0.05
        self.is_open = True
        self.executed: Counter[str] = Counter()
        # fault injection
        self.silent = False
        self.corrupt_requests = 0
        self.drop_request_bytes = 0
        self.corrupt_replies = 0
        self.drop_reply_bytes = 0
        self.raw_reply: bytes | None = None  # replace the next reply by these bytes
        self.garble: bytes | None = None  # replace every reply by these bytes (wrong baud rate)
        self.invoke_seconds = 0.0  # a slow model: the invoke reply comes this long after the ACK
        self._out = bytearray()
        self._parser = P.FrameParser(max_payload)
        self._last_rx = 0.0
        self._last: tuple[int, int] | None = None  # (seq, crc) of the last executed request
        self._last_reply = b""
        self._lock = threading.Lock()
        self.invokes = 0

    # -- pyserial surface -------------------------------------------------------------------
    def write(self, data: bytes) -> int:
        data = bytearray(data)
        if self.corrupt_requests and len(data) > 6:
            self.corrupt_requests -= 1
            data[6] ^= 0x40
        if self.drop_request_bytes and len(data) > 6:
            self.drop_request_bytes -= 1
            del data[5]
        if self.silent:
            return len(data)
        now = time.monotonic()
        if now - self._last_rx > self.RX_TIMEOUT:
            self._parser = P.FrameParser(self.info.max_payload)  # partial frame timed out
        self._last_rx = now
        for item in self._parser.feed(bytes(data)):
            self._handle(item)
        return len(data)

    def read(self, n: int = 1) -> bytes:
        deadline = time.monotonic() + (self.timeout or 0)
        while True:
            with self._lock:
                if self._out:
                    chunk = bytes(self._out[:n])
                    del self._out[:n]
                    return chunk
            if time.monotonic() >= deadline:
                return b""
            time.sleep(0.001)

    @property
    def in_waiting(self) -> int:
        return len(self._out)

    def flush(self) -> None:
        pass

    def reset_input_buffer(self) -> None:
        with self._lock:
            self._out.clear()

    def close(self) -> None:
        self.is_open = False

    # -- device -----------------------------------------------------------------------------
    def _send(self, frame: bytes, ack: bool = False) -> None:
        out = bytearray(frame)
        if self.garble is not None:
            out = bytearray(self.garble)
        elif self.raw_reply is not None and not ack:  # a crash happens during the work, after the ACK
            out, self.raw_reply = bytearray(self.raw_reply), None
        elif self.corrupt_replies:
            self.corrupt_replies -= 1
            out[-5] ^= 0x01
        elif self.drop_reply_bytes:
            self.drop_reply_bytes -= 1
            del out[len(out) // 2]
        with self._lock:
            self._out += out

    def _handle(self, item: P.Frame | P.FrameError) -> None:
        if isinstance(item, P.FrameError):
            self._last = None
            self._send(P.encode_frame(P.REPLY_NAK, 0, bytes([P.NAK_CRC])))
            return
        crc = P.crc32(P.HEADER.pack(item.cmd, item.seq, len(item.payload)) + item.payload)
        if item.cmd != P.CMD_INFO and self._last == (item.seq, crc):
            self._send(self._last_reply)  # replay, do not execute twice
            return
        if item.cmd in P.ACKED_COMMANDS:
            self._send(P.encode_frame(P.REPLY_ACK, item.seq), ack=True)
        rcmd, payload = self._dispatch(item.cmd, item.payload)
        reply = P.encode_frame(rcmd, item.seq, payload)
        self._last = None if item.cmd == P.CMD_INFO else (item.seq, crc)
        self._last_reply = reply
        if item.cmd == P.CMD_INVOKE and self.invoke_seconds > 0:
            t = threading.Timer(self.invoke_seconds, self._send, args=(reply,))
            t.daemon = True
            t.start()
            return
        self._send(reply)

    def _err(self, code: int, cmd: int, msg: str) -> tuple[int, bytes]:
        return P.REPLY_ERR, bytes([code, cmd]) + msg.encode()

    def _dispatch(self, cmd: int, p: bytes) -> tuple[int, bytes]:
        self.executed[P.COMMAND_NAMES.get(cmd, hex(cmd))] += 1
        ok = cmd | P.REPLY_BIT
        if cmd == P.CMD_INFO:
            return ok, self.info.encode()
        if cmd == P.CMD_SET_INPUT:
            idx, off = struct.unpack_from("<BxxxI", p)
            data = p[8:]
            if idx >= len(self.inputs) or off + len(data) > len(self.inputs[idx]):
                return self._err(P.ERR_BAD_ARG, cmd, "bad argument")
            self.inputs[idx][off:off + len(data)] = data
            return ok, b""
        if cmd == P.CMD_INVOKE:
            self.invokes += 1
            self.outputs = self.model([bytes(b) for b in self.inputs])
            body = b"".join(self.outputs)
            if len(body) > self.info.max_payload - 12:
                body = b""
            return ok, P.INVOKE.pack(0, 0, 0) + body
        if cmd == P.CMD_GET_OUTPUT:
            idx, off, n = struct.unpack("<BxxxIH", p)
            return ok, self.outputs[idx][off:off + n]
        if cmd == P.CMD_STATS:
            return ok, P.STATS.pack(self.invokes, 0, 0, 0, 512, 16384)
        if cmd == P.CMD_ECHO:
            return ok, p
        if cmd == P.CMD_EXIT:
            return ok, b""
        return self._err(P.ERR_UNKNOWN_CMD, cmd, "unknown command")
