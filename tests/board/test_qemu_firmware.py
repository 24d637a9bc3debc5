"""Generated firmware, cross-built and run under QEMU, exchanging frames with the host link."""

import time

import numpy as np
import pytest

from tinyc.errors import CheckFailed
from tinyc.target import protocol as P
from tinyc.target.build import build_project
from tinyc.target.device import Device
from tinyc.target.link import LinkError
from tinyc.target.simulator import sum_model

pytestmark = pytest.mark.board
HASH = 0x1234ABCD


def _check_device(dev: Device):
    info = dev.info()
    assert info.model_hash == HASH and info.arena_bytes == 256 and info.input_bytes == (64,)
    rng = np.random.default_rng(0)
    for _ in range(5):
        x = rng.integers(0, 256, 64, dtype=np.uint8)
        (out,) = dev.run([x])
        assert out.tobytes() == sum_model([x.tobytes()])[0]
    st = dev.stats()
    assert st.invokes == 5
    assert st.instructions is not None and 100 < st.instructions < 10_000  # insncount plugin
    assert 0 < st.peak_stack_bytes < st.stack_bytes  # stack painting


@pytest.mark.parametrize("board,emulate", [("mps2_an500", False), ("mps2_an386", False),
                                           ("stm32f746g_disco", True), ("nucleo_h743zi", True),
                                           ("nucleo_l4r5zi", True), ("mps2_an505", False)])
def test_build_and_run(fake_project, board, emulate):
    d = fake_project(board)
    res = build_project(d, emulate=True)
    assert res.elf.exists() and res.flash_bytes > 0
    with Device.start(d, emulate=emulate, expect_hash=HASH, output_dtypes=[np.uint8]) as dev:
        _check_device(dev)
        assert dev.info().board == board and dev.info().emulated


@pytest.mark.parametrize("board", ["stm32f746g_disco", "nucleo_f767zi", "nucleo_h743zi", "nucleo_l4r5zi",
                                   "stm32f412g_disco"])
def test_real_board_build_is_warning_free(fake_project, board):
    """The STM32 USART drivers only need to compile (no board here), with -Werror."""
    d = fake_project(board)
    res = build_project(d)
    assert (d / "build" / "firmware.bin").exists()
    assert res.region("FLASH").used > 0


def test_region_report_splits_merged_ram(fake_project):
    d = fake_project("stm32f746g_disco", arena=100_000)
    res = build_project(d, emulate=True)
    # the arena starts in DTCM (64K) and spills into SRAM1: both are reported
    assert res.region("DTCM").used == 64 * 1024
    assert res.region("SRAM1").used > 100_000 - 64 * 1024


def test_oversize_arena_fails_at_link_time(fake_project):
    d = fake_project("stm32f746g_disco", arena=330_000)
    with pytest.raises(CheckFailed, match=r"tinyc: does not fit on stm32f746g_disco: RAM region "
                                          r"DTCM\+SRAM1\+SRAM2 \(320.0 KB\) overflowed by \d+ bytes"):
        build_project(d, emulate=True)


def test_other_model_refused(fake_project):
    d = fake_project("mps2_an500")
    build_project(d, emulate=True)
    with pytest.raises(LinkError, match="runs another model"):
        Device.start(d, expect_hash=0xCAFEF00D)


def test_file_fast_path_matches_serial(fake_project, tmp_path):
    d = fake_project("stm32f746g_disco")
    build_project(d, emulate=True)
    rng = np.random.default_rng(1)
    xs = [[rng.integers(0, 256, 64, dtype=np.uint8)] for _ in range(50)]
    with Device.start(d, emulate=True, expect_hash=HASH, output_dtypes=[np.uint8]) as dev:
        dev.load_inputs_file(xs, tmp_path / "in.bin")
        fast = [dev.run_file(i)[0] for i in range(len(xs))]
        slow = [dev.run(x)[0] for x in xs[:10]]
    for a, b in zip(fast, slow):
        assert np.array_equal(a, b)
    assert [f.tobytes() for f in fast] == [sum_model([x[0].tobytes()])[0] for x in xs]


def _invoke_seq(want, used: set[int]) -> int:
    """An unused sequence number whose INVOKE frame's CRC bytes have property ``want`` (a repeated
    (seq, crc) would be taken for a retransmission and answered from the reply cache)."""
    seq = next(s for s in range(256) if s not in used and want(P.encode_frame(P.CMD_INVOKE, s)[6:]))
    used.add(seq)
    return seq


# Dropping byte 5 (length high byte) shifts the CRC into the header; what the firmware then does
# depends on the CRC bytes, so each case pins a sequence number that produces it:
DROP_CASES = {
    # length = crc0 * 256 <= MAX_PAYLOAD: the firmware waits for payload that never comes
    "partial-frame-wait": (5, lambda c: c[0] <= 4),
    # length too big -> NAK; a CRC byte in 'a'..'z' then opened an EnergyRunner text command
    "text-swallow": (5, lambda c: c[0] > 4 and any(0x61 <= b <= 0x7A for b in c[1:]) and 0x25 not in c[1:]),
    # a stray sync byte in the tail
    "stray-sync": (5, lambda c: c[0] > 4 and 0xA5 in c[1:]),
    "first-sync-byte": (0, lambda c: True),
    "second-sync-byte": (1, lambda c: True),
    "command-byte": (2, lambda c: True),
    "last-crc-byte": (9, lambda c: True),
}


def test_damaged_requests_against_real_firmware(fake_project):
    """Bit flips and dropped bytes reach the C firmware: it NAKs or times the partial frame out,
    and the host resends after its short per-frame timeout (the ACK says whether an invoke
    arrived), so each recovery takes about one timeout, never the inference timeout."""
    d = fake_project("mps2_an500")
    build_project(d, emulate=True)
    with Device.start(d, expect_hash=HASH, output_dtypes=[np.uint8], timeout=0.5, invoke_timeout=20,
                      qemu_timeout=120) as dev:
        link = dev.link
        orig = link.ser.write
        faults: list = []

        def flaky_write(data):
            if faults:
                data = faults.pop(0)(bytearray(data))
            return orig(bytes(data))

        link.ser.write = flaky_write
        x = np.arange(64, dtype=np.uint8)
        expected = sum_model([x.tobytes()])[0]

        def flip(f):
            f[8] ^= 0x10
            return f

        def drop_at(i):
            return lambda f: f[:i] + f[i + 1:]

        # a flipped payload bit (NAK), then a byte dropped from the long set_input frame (timeout)
        for fault in (flip, drop_at(40)):
            faults.append(fault)
            before, t = link.retransmissions, time.monotonic()
            (out,) = dev.run([x])
            assert out.tobytes() == expected
            assert link.retransmissions == before + 1 and time.monotonic() - t < 5

        link.set_input(0, x.tobytes())
        used = {link._seq}
        for case, (pos, want) in DROP_CASES.items():
            link._seq = (_invoke_seq(want, used) - 1) & 0xFF
            faults.append(drop_at(pos))
            before, t = link.retransmissions, time.monotonic()
            r = link.invoke()
            took = time.monotonic() - t
            assert r.outputs[0] == expected, case
            assert link.retransmissions >= before + 1, case
            assert took < 5, f"{case}: recovery took {took:.1f} s"
        assert link.echo(b"abc") == b"abc"
        assert link.stats().invokes == 2 + len(DROP_CASES)  # each resent invoke ran once


def test_partial_text_command_does_not_block_frames(fake_project):
    """Half an EnergyRunner command (no '%') must not swallow the binary frames that follow."""
    d = fake_project("mps2_an500")
    build_project(d, emulate=True)
    with Device.start(d, expect_hash=HASH, timeout=0.5, qemu_timeout=60) as dev:
        dev.link.ser.write(b"db load 6")
        t = time.monotonic()
        assert dev.link.echo(b"abc") == b"abc"
        assert dev.link.retransmissions == 0 and time.monotonic() - t < 2


def test_energyrunner_text_protocol(fake_project):
    from tinyc.target.qemu import open_serial, start_qemu

    d = fake_project("mps2_an500")
    res = build_project(d, emulate=True)
    with start_qemu(res.elf, "mps2-an500", count_instructions=False, timeout=60) as q:
        ser = open_serial(q, read_timeout=2)

        def cmd(c: str) -> str:
            ser.write(c.encode())
            return ser.read_until(b"m-ready\r\n").decode()

        assert "m-name-dut-[tinyc mps2_an500]" in cmd("name%")
        assert "m-model-[tinyc-" in cmd("profile%")
        assert "Expecting 64 bytes" in cmd("db load 64%")
        data = bytes(range(64))
        out = cmd("db " + data[:32].hex() + "%") + cmd("db " + data[32:].hex() + "%")
        assert "m-load-done" in out
        out = cmd("infer 3 1%")
        assert "m-warmup-done" in out and "m-infer-done" in out and "m-lap-us-" in out
        exp = sum_model([data])[0]
        expected = ",".join(str(b - 256 if b > 127 else b) for b in exp)
        assert f"m-results-[{expected}]" in cmd("results%")
        assert "e-[unknown command" in cmd("bogus%")
