"""Generated firmware, cross-built and run under QEMU, exchanging frames with the host link."""

import re
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


# The MLPerf Tiny runner's own patterns (mlcommons/tiny benchmark/runner: device_under_test.py,
# script.py): it splits the UART stream at '\n', drops '\r', and matches whole lines.
ER_NAME = re.compile(r"^m-(name)-dut-\[([^]]+)]$")
ER_PROFILE = re.compile(r"^m-(model|profile)-\[([^]]+)]$")
ER_LAP = re.compile(r"^m-lap-us-([0-9]+)$")
ER_RESULTS = re.compile(r"^m-results-\[([^]]+)\]$")
ER_CHUNK = 31  # bytes per `db HEX%` line, as the runner sends them (26 with a power manager)


@pytest.fixture(scope="module")
def ad01_energyrunner(tmp_path_factory):
    """MLPerf Tiny's anomaly-detection model (640 int8 in, 640 int8 out, scale 0.364, zero point
    96: negative and positive results) as the emulated F746 firmware, model id set at build."""
    from tinyc.compiler import Options, compile_model
    from tinyc.target.boards import get_board
    from tinyc.target.project import write_firmware_project
    from tests.support.paths import MODELS

    model = MODELS / "mlperf_tiny" / "ad01_int8.tflite"
    board = get_board("stm32f746g_disco")
    compiled = compile_model(model, Options(alignment=board.alignment))
    d = tmp_path_factory.mktemp("er") / "ad01"
    written = compiled.write(d)
    write_firmware_project(d, board, [p.name for p in written if p.suffix == ".c" and p.parent == d],
                           name=compiled.program.name)
    res = build_project(d, emulate=True, make_vars={"EXTRA_CFLAGS": "-DTINYC_ER_MODEL_ID=ad01"})
    return model, res.elf


def test_energyrunner_text_protocol(ad01_energyrunner):
    """The exact exchange the MLPerf Tiny runner has with a DUT in performance mode, checked with
    the runner's regexes; the results line against TFLM's output for the same input."""
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.target.qemu import open_serial, start_qemu
    from tinyc.validate.reference import run_tflm

    model, elf = ad01_energyrunner
    g = read_tflite(str(model))
    tin, tout = g.t(g.inputs[0]), g.t(g.outputs[0])
    rng = np.random.default_rng(7)
    xs = [rng.integers(-128, 128, tin.shape, dtype=np.int8) for _ in range(2)]
    ref = run_tflm(model, [np.stack(xs)])[0]
    expect = [(r.astype(np.float64).ravel() - tout.quant.zp) * tout.quant.s for r in ref]

    with start_qemu(elf, "mps2-an500", count_instructions=False, timeout=120) as q:
        ser = open_serial(q, read_timeout=10)

        def reply(c: str | None) -> list[str]:
            if c is not None:
                ser.write(c.encode())
            raw = ser.read_until(b"m-ready\r\n").decode()
            assert raw.endswith("m-ready\r\n"), f"{c!r}: no m-ready: {raw!r}"
            assert raw.count("\n") == raw.count("\r\n"), f"{c!r}: a line not ended by \\r\\n: {raw!r}"
            return raw.replace("\r", "").split("\n")[:-1]

        def load(x: np.ndarray) -> None:
            data = x.tobytes()
            assert reply(f"db load {len(data)}%") == [f"m-[Expecting {len(data)} bytes]", "m-ready"]
            for i in range(0, len(data), ER_CHUNK):
                last = i + ER_CHUNK >= len(data)
                assert reply("db " + data[i:i + ER_CHUNK].hex() + "%") == (["m-load-done"] if last else []) + ["m-ready"]

        def infer(n: int, w: int) -> tuple[list[int], list[float]]:
            lines = reply(f"infer {n} {w}%")
            laps = [int(m[1]) for m in map(ER_LAP.match, lines) if m]
            results = [m[1] for m in map(ER_RESULTS.match, lines) if m]
            assert len(laps) == 2 and laps[0] <= laps[1], lines
            assert len(results) == 1, lines
            # the order the runner (and EEMBC's reference firmware) uses
            assert lines == [f"m-warmup-start-{w}", "m-warmup-done", f"m-infer-start-{n}", f"m-lap-us-{laps[0]}",
                             f"m-lap-us-{laps[1]}", "m-infer-done", f"m-results-[{results[0]}]", "m-ready"]
            return laps, [float(v) for v in results[0].split(",")]

        assert reply(None) == ["m-timestamp-mode-performance", "m-ready"]  # boot banner
        name = [m for m in map(ER_NAME.match, reply("name%")) if m]
        assert [m[2] for m in name] == ["tinyc stm32f746g_disco"]
        profile = {m[1]: m[2] for m in map(ER_PROFILE.match, reply("profile%")) if m}
        assert profile == {"profile": "ulp-mlperf", "model": "ad01"}

        all_laps = []
        for x, want in zip(xs, expect):
            load(x)
            laps, got = infer(3, 1)
            all_laps += laps
            assert len(got) == tout.nbytes
            assert np.abs(np.array(got) - want).max() <= 0.0005 + 1e-9
            assert all(re.fullmatch(r"-?\d+\.\d{3}", v) for v in reply("results%")[0][11:-1].split(","))
            (again,) = [m[1] for m in map(ER_RESULTS.match, reply("results%")) if m]
            assert [float(v) for v in again.split(",")] == got
        assert all_laps == sorted(all_laps) and all_laps[1] > all_laps[0]  # microseconds since boot
        (ts,) = [int(m[1]) for m in map(ER_LAP.match, reply("timestamp%")) if m]
        assert ts >= all_laps[-1]

        # errors: one "e-[...]" line, then m-ready; nothing loaded by a bad line
        def error(c: str) -> str:
            lines = reply(c)
            assert len(lines) == 2 and lines[0].startswith("e-[") and lines[0].endswith("]"), (c, lines)
            return lines[0]

        assert "db" in error("db 0g%")  # not hex
        assert "db" in error("db 012%")  # odd number of digits
        assert reply("db load 4%") == ["m-[Expecting 4 bytes]", "m-ready"]
        assert "only 4 more" in error("db 0102030405%")  # too many bytes: the line is refused whole
        assert reply("db 01020304%") == ["m-load-done", "m-ready"]
        assert "db" in error("db 05%")  # nothing more expected
        assert "db load" in error(f"db load {tin.nbytes + 1}%")
        assert "infer" in error("infer 1 0%")  # the failed load left no input
        assert "unknown command" in error("bogus%")
        load(xs[0])
        _, got = infer(1, 0)
        assert np.abs(np.array(got) - expect[0]).max() <= 0.0005 + 1e-9
        # infer again without a new load: the same results, or a refusal if the model reused the
        # input's memory (never results computed from an overwritten input)
        lines = reply("infer 1 0%")
        if lines[0].startswith("e-["):
            assert "overwrote the input" in lines[0] and len(lines) == 2
        else:
            (res,) = [m[1] for m in map(ER_RESULTS.match, lines) if m]
            assert [float(v) for v in res.split(",")] == got
