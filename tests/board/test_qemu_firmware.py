"""Generated firmware, cross-built and run under QEMU, exchanging frames with the host link."""

import socket
import subprocess
import time

import numpy as np
import pytest

from tinyc.errors import CheckFailed
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


@pytest.mark.xfail(strict=False, reason="KNOWN DEFECT (open, issue 5): under heavy CPU load the dropped-byte resync "
                   "can leave the firmware waiting, and 'invoke' gets no reply; passes on an idle machine")
def test_corrupt_frame_against_real_firmware(fake_project):
    """A damaged request reaches the C firmware: it NAKs and the host's retry succeeds."""
    d = fake_project("mps2_an500")
    build_project(d, emulate=True)
    with Device.start(d, expect_hash=HASH, output_dtypes=[np.uint8]) as dev:
        link = dev.link
        orig = link.ser.write
        state = {"n": 0}

        def flaky_write(data):
            state["n"] += 1
            if state["n"] == 1:  # flip a payload bit in the first frame
                data = bytearray(data)
                data[8] ^= 0x10
            elif state["n"] == 3:  # drop a byte: the firmware's 50 ms receive timeout resyncs
                data = bytes(data[:5]) + bytes(data[6:])
            return orig(bytes(data))

        link.ser.write = flaky_write
        x = np.arange(64, dtype=np.uint8)
        link.timeout = 0.5
        (out,) = dev.run([x])
        assert out.tobytes() == sum_model([x.tobytes()])[0]
        assert link.retransmissions >= 1
        t = time.monotonic()
        assert link.echo(b"abc") == b"abc"
        assert time.monotonic() - t < 3


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
