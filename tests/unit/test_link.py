"""The host link against a simulated board: every failure is a clear LinkError, never a hang."""

import time

import pytest
import serial

from tinyc.errors import BadInput, CheckFailed
from tinyc.target.link import Link, LinkError
from tinyc.target.simulator import SimulatedBoard, sum_model

TIMEOUT = 0.2  # per attempt; the simulated board answers in microseconds
DATA = bytes(range(64))


def make(board=None, **kw):
    board = board or SimulatedBoard()
    return board, Link(board, timeout=TIMEOUT, invoke_timeout=TIMEOUT, retries=kw.pop("retries", 3), name="sim", **kw)


def bounded(fn, limit):
    t = time.monotonic()
    try:
        return fn()
    finally:
        assert time.monotonic() - t < limit, "took too long: a wait is not bounded"


def test_happy_path():
    board, link = make()
    info = link.connect(expect_hash=0x1234ABCD, expect_arena=256)
    assert info.input_bytes == (64,) and info.board == "simulated"
    outs, r = link.run([DATA])
    assert outs == sum_model([DATA]) and r.status == 0
    assert link.stats().invokes == 1
    assert link.retransmissions == 0


def test_chunked_input_and_output():
    board = SimulatedBoard(input_bytes=(3000,), output_bytes=(2500,),
                           model=lambda ins: [bytes(reversed(ins[0][:2500]))])
    board, link = make(board)
    link.connect()
    data = bytes((i * 7) & 0xFF for i in range(3000))
    outs, r = link.run([data])
    assert r.outputs is None  # too big for the invoke reply, fetched in chunks
    assert outs == [bytes(reversed(data[:2500]))]
    assert board.executed["set_input"] == 3 and board.executed["get_output"] == 3


def test_corrupted_request_is_resent():
    board, link = make()
    link.connect()
    board.corrupt_requests = 1
    outs, _ = link.run([DATA])
    assert outs == sum_model([DATA]) and link.retransmissions == 1


def test_corrupted_reply_is_replayed_not_reexecuted():
    board, link = make()
    link.connect()
    link.set_input(0, DATA)
    board.corrupt_replies = 1
    r = link.invoke()
    assert r.outputs == sum_model([DATA])
    assert board.executed["invoke"] == 1 and link.retransmissions == 1


def test_dropped_byte_in_request():
    board, link = make()
    link.connect()
    board.drop_request_bytes = 1
    outs, _ = bounded(lambda: link.run([DATA]), 4 * TIMEOUT)
    assert outs == sum_model([DATA]) and link.retransmissions == 1


def test_lost_invoke_request_is_resent_after_the_short_timeout():
    """No ACK within the per-frame timeout: resend now, not after the (long) inference timeout."""
    board = SimulatedBoard()
    link = Link(board, timeout=TIMEOUT, invoke_timeout=30.0, name="sim")
    link.connect()
    link.set_input(0, DATA)
    board.drop_request_bytes = 1
    r = bounded(link.invoke, 4 * TIMEOUT)
    assert r.outputs == sum_model([DATA]) and link.retransmissions == 1
    assert board.executed["invoke"] == 1


def test_acknowledged_slow_invoke_is_waited_for_not_resent():
    board = SimulatedBoard()
    link = Link(board, timeout=TIMEOUT, invoke_timeout=5.0, name="sim")
    link.connect()
    link.set_input(0, DATA)
    board.invoke_seconds = 3 * TIMEOUT  # longer than the per-frame timeout
    r = bounded(link.invoke, 2.0)
    assert r.outputs == sum_model([DATA])
    assert link.retransmissions == 0 and board.executed["invoke"] == 1


def test_silent_board_fails_fast_even_with_a_long_invoke_timeout():
    board = SimulatedBoard()
    link = Link(board, timeout=TIMEOUT, invoke_timeout=60.0, retries=2, name="sim")
    link.connect()
    board.silent = True
    with pytest.raises(LinkError, match=r"no valid reply to 'invoke' after 3 attempts of 0.2 s for an ACK \(no ACK\)"):
        bounded(link.invoke, 3 * TIMEOUT + 0.5)


def test_dropped_byte_in_reply():
    board, link = make()
    link.connect()
    board.drop_reply_bytes = 1
    assert bounded(lambda: link.echo(b"0123456789"), 4 * TIMEOUT) == b"0123456789"
    assert link.retransmissions == 1 and board.executed["echo"] == 1


def test_board_never_answers():
    board, link = make(retries=2)
    board.silent = True
    with pytest.raises(LinkError, match="no valid reply to 'info' after 3 attempts") as e:
        bounded(link.connect, 3 * TIMEOUT + 0.5)
    assert isinstance(e.value, CheckFailed) and "\n" not in str(e.value)


def test_other_model():
    board, link = make(SimulatedBoard(model_hash=0xCAFEF00D))
    with pytest.raises(LinkError, match="runs another model.*cafef00d.*1234abcd"):
        link.connect(expect_hash=0x1234ABCD)


def test_other_arena():
    board, link = make(SimulatedBoard(arena_bytes=512))
    with pytest.raises(LinkError, match="arena is 512 bytes"):
        link.connect(expect_hash=0x1234ABCD, expect_arena=256)


def test_loopback_port_is_not_a_board():
    ser = serial.serial_for_url("loop://", timeout=0.05)
    link = Link(ser, timeout=TIMEOUT, name="loop://")
    with pytest.raises(LinkError, match="echoes our own requests"):
        bounded(link.info, 1.0)


def test_one_garbled_reply_is_retried():
    board, link = make()
    board.raw_reply = b"\x00\xff line noise"
    assert link.connect().board == "simulated" and link.retransmissions == 1


def test_garbage_only():
    board, link = make(retries=1)
    board.garble = b"\x00\xff garbage at the wrong baud rate \x13"
    with pytest.raises(LinkError, match="unframed bytes: .*garbage"):
        bounded(link.info, 2 * TIMEOUT + 0.5)


def test_firmware_crash_text():
    board, link = make()
    link.connect()
    board.raw_reply = b"tinyc-fault: HardFault CFSR=0x00010000 HFSR=0x40000000\n"
    with pytest.raises(LinkError, match="crashed: tinyc-fault: HardFault CFSR=0x00010000"):
        bounded(link.invoke, 1.0)


def test_firmware_error_reply():
    board, link = make()
    link.connect()
    with pytest.raises(LinkError, match="rejected '0x55'"):
        link.request(0x55)  # unknown command -> ERR
    with pytest.raises(BadInput, match="needs 64 bytes"):
        link.set_input(0, b"short")


def test_bad_port_is_bad_input():
    with pytest.raises(BadInput, match="cannot open serial port"):
        Link.open("/dev/does-not-exist-tinyc")
