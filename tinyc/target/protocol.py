"""The tinyc framed binary protocol: frame layout, commands and pure encode/decode.

One definition for both sides: the constants here are rendered into the firmware's ``main.c``
(see project.py), so the host and the device cannot drift apart.

Frame (all integers little-endian)::

    0xA5 0x5A | cmd u8 | seq u8 | len u16 | payload[len] | crc32 u32 (zlib/IEEE, over cmd..payload)

Why this shape: the two sync bytes let a receiver find the next frame after noise or a dropped
byte; the length bounds every read; the CRC catches corruption (a UART has no integrity check);
the sequence number lets the host retransmit a request safely, since the device replays its
cached reply for a repeated (seq, crc) instead of executing the command twice (an ``invoke``
may overwrite its own input in place, so re-running it would be wrong).

Replies carry ``cmd | 0x80`` on success, ``ERR`` (code, request cmd, message) when the command
failed, or ``NAK`` (reason) when the request frame itself was damaged: then the host resends.

Slow commands (``invoke``, ``run_file``) are acknowledged first: the device sends an empty
``ACK`` frame with the request's seq as soon as the request frame checks out, then works. The
host therefore waits only its short per-frame timeout to learn whether the request arrived, and
the long inference timeout only once it has: a request lost on the wire (a dropped byte) is
resent after a fraction of a second instead of after the inference timeout.
"""

from __future__ import annotations

import struct
import zlib
from dataclasses import dataclass

SYNC = b"\xA5\x5A"
HEADER = struct.Struct("<BBH")  # cmd, seq, len
CRC = struct.Struct("<I")
OVERHEAD = len(SYNC) + HEADER.size + CRC.size  # 10 bytes
MAX_PAYLOAD = 1024  # firmware buffer size; the device reports its own in INFO
PROTOCOL_VERSION = 2  # 2: ACK before slow commands
INFO_MAGIC = b"TNYC"

# Commands (host -> device)
CMD_INFO = 0x01        # -> InfoReply; also clears the device's reply cache (new session)
CMD_SET_INPUT = 0x02   # index u8, pad[3], offset u32, data
CMD_INVOKE = 0x03      # -> status i32, cycles u32, ticks u32 [, all outputs if they fit]
CMD_GET_OUTPUT = 0x04  # index u8, pad[3], offset u32, length u16 -> data
CMD_STATS = 0x05       # -> StatsReply
CMD_ECHO = 0x06        # -> same payload (link tests, throughput)
CMD_FILE_OPEN = 0x07   # path (QEMU semihosting) -> handle i32
CMD_RUN_FILE = 0x08    # record u32: read all inputs from the open file, invoke, reply as INVOKE
CMD_EXIT = 0x09        # code u8: QEMU exits with it, a board resets

REPLY_BIT = 0x80
REPLY_ACK = 0xEC  # slow request received intact; the reply follows when the work is done
REPLY_ERR = 0xEE
REPLY_NAK = 0xEF

ACKED_COMMANDS = frozenset({CMD_INVOKE, CMD_RUN_FILE})  # the device ACKs these before working

# NAK reasons and ERR codes
NAK_CRC = 1
NAK_LENGTH = 2
ERR_UNKNOWN_CMD = 3
ERR_BAD_ARG = 4
ERR_INVOKE = 5
ERR_UNSUPPORTED = 6

# INFO flags
FLAG_EMULATED = 1
FLAG_DWT = 2
FLAG_TIMER0 = 4
FLAG_SEMIHOSTING = 8

COMMAND_NAMES = {CMD_INFO: "info", CMD_SET_INPUT: "set_input", CMD_INVOKE: "invoke",
                 CMD_GET_OUTPUT: "get_output", CMD_STATS: "stats", CMD_ECHO: "echo",
                 CMD_FILE_OPEN: "file_open", CMD_RUN_FILE: "run_file", CMD_EXIT: "exit"}

INFO_FIXED = struct.Struct("<4sBBBBIIHHIIIII")  # see InfoReply.parse
STATS = struct.Struct("<IiIIII")
INVOKE = struct.Struct("<iII")


def crc32(data: bytes) -> int:
    return zlib.crc32(data) & 0xFFFFFFFF


def encode_frame(cmd: int, seq: int, payload: bytes = b"") -> bytes:
    """One complete frame ready to write to the wire."""
    if len(payload) > 0xFFFF:
        raise ValueError(f"payload of {len(payload)} bytes does not fit a frame")
    body = HEADER.pack(cmd & 0xFF, seq & 0xFF, len(payload)) + payload
    return SYNC + body + CRC.pack(crc32(body))


@dataclass(frozen=True)
class Frame:
    cmd: int
    seq: int
    payload: bytes


class FrameError(Exception):
    """A frame arrived damaged (bad CRC or impossible length): the caller retries."""


def decode_frame(data: bytes) -> Frame:
    """Decode exactly one frame (with its sync bytes). Raises FrameError if damaged."""
    if len(data) < OVERHEAD or data[:2] != SYNC:
        raise FrameError("short frame or missing sync")
    cmd, seq, n = HEADER.unpack_from(data, 2)
    if len(data) != OVERHEAD + n:
        raise FrameError(f"length field says {n} payload bytes, frame has {len(data) - OVERHEAD}")
    body = data[2:2 + HEADER.size + n]
    (crc,) = CRC.unpack_from(data, 2 + HEADER.size + n)
    if crc != crc32(body):
        raise FrameError("CRC mismatch")
    return Frame(cmd, seq, bytes(data[2 + HEADER.size:2 + HEADER.size + n]))


class FrameParser:
    """Incremental decoder for a byte stream: feed bytes, collect frames and damage reports.

    Bytes before a sync pattern are kept as ``noise`` (a crashed firmware prints its fault text
    there, which makes a much better error message than "bad frame").
    """

    def __init__(self, max_payload: int = 0xFFFF) -> None:
        self.buf = bytearray()
        self.noise = bytearray()
        self.max_payload = max_payload

    def feed(self, data: bytes) -> list[Frame | FrameError]:
        self.buf += data
        out: list[Frame | FrameError] = []
        while True:
            i = self.buf.find(SYNC)
            if i < 0:
                keep = 1 if self.buf[-1:] == SYNC[:1] else 0
                self.noise += self.buf[:len(self.buf) - keep]
                del self.buf[:len(self.buf) - keep]
                return out
            self.noise += self.buf[:i]
            del self.buf[:i]
            if len(self.buf) < 2 + HEADER.size:
                return out
            _, _, n = HEADER.unpack_from(self.buf, 2)
            if n > self.max_payload:
                out.append(FrameError(f"impossible length {n}"))
                del self.buf[:2]  # skip this sync, look for the next one
                continue
            if len(self.buf) < OVERHEAD + n:
                return out
            raw = bytes(self.buf[:OVERHEAD + n])
            try:
                out.append(decode_frame(raw))
                del self.buf[:OVERHEAD + n]
            except FrameError as e:
                out.append(e)
                del self.buf[:2]

    def take_noise(self) -> bytes:
        n = bytes(self.noise)
        self.noise.clear()
        return n


@dataclass(frozen=True)
class InfoReply:
    """What the firmware says about itself on connect: enough to refuse a wrong model."""

    version: int
    flags: int
    model_hash: int
    arena_bytes: int
    max_payload: int
    cpuid: int
    stack_bytes: int
    tick_hz: int
    input_bytes: tuple[int, ...]
    output_bytes: tuple[int, ...]
    board: str

    @property
    def emulated(self) -> bool:
        return bool(self.flags & FLAG_EMULATED)

    @classmethod
    def parse(cls, p: bytes) -> "InfoReply":
        if len(p) < INFO_FIXED.size or p[:4] != INFO_MAGIC:
            raise FrameError("INFO reply is not from a tinyc firmware")
        (_, version, flags, nin, nout, mhash, arena, maxp, _res, cpuid, stack, tick_hz, _a, _b) = \
            INFO_FIXED.unpack_from(p)
        off = INFO_FIXED.size
        sizes = struct.unpack_from(f"<{nin + nout}I", p, off)
        off += 4 * (nin + nout)
        return cls(version, flags, mhash, arena, maxp, cpuid, stack, tick_hz,
                   tuple(sizes[:nin]), tuple(sizes[nin:]), p[off:].decode("ascii", "replace"))

    def encode(self) -> bytes:
        """Device side (used by the simulated board)."""
        return (INFO_FIXED.pack(INFO_MAGIC, self.version, self.flags, len(self.input_bytes),
                                len(self.output_bytes), self.model_hash, self.arena_bytes, self.max_payload,
                                0, self.cpuid, self.stack_bytes, self.tick_hz, 0, 0)
                + struct.pack(f"<{len(self.input_bytes) + len(self.output_bytes)}I",
                              *self.input_bytes, *self.output_bytes)
                + self.board.encode())


@dataclass(frozen=True)
class StatsReply:
    invokes: int
    last_status: int
    cycles: int  # DWT CYCCNT over the last invoke; 0 where there is none (QEMU)
    ticks: int  # TIMER0 ticks over the last invoke (QEMU -icount fallback)
    stack_used_bytes: int  # painted-stack high-water mark since reset
    stack_bytes: int

    @classmethod
    def parse(cls, p: bytes) -> "StatsReply":
        if len(p) != STATS.size:
            raise FrameError(f"STATS reply has {len(p)} bytes, expected {STATS.size}")
        return cls(*STATS.unpack(p))


def c_constants() -> dict[str, int]:
    """The protocol constants as C macros for the firmware template."""
    g = globals()
    names = [k for k in g if k.startswith(("CMD_", "REPLY_", "NAK_", "ERR_", "FLAG_"))]
    return {f"TP_{k}": int(g[k]) for k in sorted(names)} | {
        "TP_MAX_PAYLOAD": MAX_PAYLOAD, "TP_PROTOCOL_VERSION": PROTOCOL_VERSION}
