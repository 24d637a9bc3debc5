"""Frame encoding and decoding (pure functions, no I/O)."""

import re
import struct

import pytest

from tinyc.target import protocol as P
from tinyc.target.project import TEMPLATES


def test_roundtrip():
    f = P.encode_frame(P.CMD_ECHO, 7, b"hello")
    assert f[:2] == P.SYNC and len(f) == P.OVERHEAD + 5
    assert P.decode_frame(f) == P.Frame(P.CMD_ECHO, 7, b"hello")


def test_crc_detects_any_single_bit_flip():
    f = P.encode_frame(P.CMD_SET_INPUT, 1, bytes(range(40)))
    for i in range(2, len(f)):
        for bit in (0, 3, 7):
            bad = bytearray(f)
            bad[i] ^= 1 << bit
            with pytest.raises(P.FrameError):
                P.decode_frame(bytes(bad))


def test_parser_split_noise_and_resync():
    f1 = P.encode_frame(P.CMD_INFO | P.REPLY_BIT, 1, b"abc")
    f2 = P.encode_frame(P.CMD_STATS | P.REPLY_BIT, 2, b"")
    bad = bytearray(P.encode_frame(P.CMD_ECHO, 3, b"xyz"))
    bad[-1] ^= 0xFF
    stream = b"boot noise\xa5" + f1 + bytes(bad) + f2
    p = P.FrameParser()
    items = []
    for i in range(len(stream)):  # byte by byte: a UART
        items += p.feed(stream[i:i + 1])
    frames = [x for x in items if isinstance(x, P.Frame)]
    errors = [x for x in items if isinstance(x, P.FrameError)]
    assert [f.seq for f in frames] == [1, 2]
    assert len(errors) == 1
    assert b"boot noise" in bytes(p.noise)


def test_parser_rejects_impossible_length():
    p = P.FrameParser(max_payload=1024)
    items = p.feed(P.SYNC + struct.pack("<BBH", 1, 1, 60000) + b"\x00" * 8)
    assert isinstance(items[0], P.FrameError)


def test_info_roundtrip():
    info = P.InfoReply(1, P.FLAG_EMULATED, 0xDEADBEEF, 1234, 1024, 0x411FC272, 16384, 25_000_000,
                       (27648,), (2, 4), "stm32f746g_disco")
    back = P.InfoReply.parse(info.encode())
    assert back == info and back.emulated


def test_info_rejects_foreign_payload():
    with pytest.raises(P.FrameError, match="not from a tinyc firmware"):
        P.InfoReply.parse(b"HELLO WORLD" * 5)


def test_firmware_uses_the_same_constants():
    """main.c gets its constants rendered from protocol.py; check none is hard-coded differently."""
    consts = P.c_constants()
    assert consts["TP_CMD_INFO"] == P.CMD_INFO and consts["TP_MAX_PAYLOAD"] == P.MAX_PAYLOAD
    src = (TEMPLATES / "main.c.j2").read_text()
    used = set(re.findall(r"\bTP_[A-Z0-9_]+", src))
    assert used <= set(consts), used - set(consts)
