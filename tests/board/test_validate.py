"""`tinyc validate` end to end under QEMU: the benchmark's code path at small scale, the serial
path real boards use, and more QEMU instances than cores."""

from __future__ import annotations

import importlib.util
import json

import numpy as np
import pytest

from tests.support.faults import corrupt_bias, first_step_of
from tests.support.paths import DATA, MODELS, REPO
from tinyc.compiler import Options, compile_model
from tinyc.cli import main as tinyc
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.target.boards import get_board
from tinyc.validate.datasets import load_dataset
from tinyc.errors import CheckFailed
from tinyc.validate.runner import prepare_firmware, validate

pytestmark = pytest.mark.board
VWW = MODELS / "mlperf_tiny" / "vww_96_int8.tflite"
KWS = MODELS / "mlperf_tiny" / "kws_ref_model.tflite"


def _benchmark():
    spec = importlib.util.spec_from_file_location("bench_validate", REPO / "benchmarks" / "validate.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_benchmark_code_path_on_20_inputs():
    """benchmarks/validate.py's own run() (fresh build, augmented Wake Vision images, 2 QEMUs)."""
    bench = _benchmark()
    res, wall = bench.run(n=20, jobs=2)
    assert res.bit_exact and res.inputs == 20 and res.mismatches == 0
    assert res.jobs == 2 and res.path == "semihosting file" and res.emulated
    assert "cycled to 20" in res.data
    assert res.accuracy is not None and res.top1_agreement == 1.0
    lat = res.latency
    assert lat["min"] <= lat["instructions"] <= lat["max"] and lat["instructions"] > 1_000_000
    assert 0 < res.peak_stack_bytes < get_board("stm32f746g_disco").stack_bytes
    assert set(res.timings) >= {"compile_build", "device", "reference", "total"}
    text = bench.table(res, wall)
    for row in ("inputs", "wall seconds", "inputs/s", "bit-exact", "mismatches", "instructions/inference",
                "accuracy"):
        assert row in text, row


def test_serial_path_agrees_with_file_path():
    """The UART path (what a real board uses) and the semihosting fast path give the same bytes."""
    g = read_tflite(str(KWS))
    data = load_dataset("random", g.t(g.inputs[0]), 3)
    board = get_board("stm32f746g_disco")
    fast = validate(KWS, board, data, emulate=True, jobs=1, quiet=True)
    slow = validate(KWS, board, data, emulate=True, jobs=1, serial=True, quiet=True)
    assert fast.path == "semihosting file" and slow.path == "serial"
    assert fast.bit_exact and slow.bit_exact
    assert fast.latency["instructions"] == slow.latency["instructions"]


def test_more_qemu_instances_than_cores(capsys):
    """--jobs 3 on a 2-core machine: every input is run exactly once, results in input order."""
    rc = tinyc(["validate", str(KWS), "--board", "mps2_an386", "--data", "random", "-n", "7", "--jobs", "3",
                "--json"])
    doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["bit_exact"] and doc["inputs"] == 7 and doc["jobs"] == 3
    assert doc["latency"]["instructions"] > 0 and doc["accuracy"] is None


def test_folder_smaller_than_n_is_augmented_only_when_asked():
    g = read_tflite(str(VWW))
    t = g.t(g.inputs[0])
    plain = load_dataset(str(DATA / "wake_vision_test_128"), t, 25)
    aug = load_dataset(str(DATA / "wake_vision_test_128"), t, 25, augment=True)
    assert len(plain.inputs) == 10 and len(aug.inputs) == 25
    assert np.array_equal(aug.inputs[:10], plain.inputs)  # the first pass is the images themselves
    assert not np.array_equal(aug.inputs[10], aug.inputs[0])
    assert list(aug.labels[10:20]) == list(plain.labels)
    again = load_dataset(str(DATA / "wake_vision_test_128"), t, 25, augment=True)
    assert np.array_equal(again.inputs, aug.inputs)  # seeded


def test_firmware_build_cache(tmp_path, monkeypatch):
    """Keyed by the generated project's files: a second prepare reuses the build, another board
    builds anew, and a build that does not fit is remembered with its message."""
    monkeypatch.setenv("TINYC_CACHE", str(tmp_path))
    an500, an386 = get_board("mps2_an500"), get_board("mps2_an386")
    c, d1, b1 = prepare_firmware(KWS, an500, True)
    _, d2, b2 = prepare_firmware(KWS, an500, True, compiled=c)
    _, d3, b3 = prepare_firmware(KWS, an386, True, compiled=c)
    assert d1 == d2 != d3 and d1.parent == tmp_path / "firmware"
    assert b1.log != "(cached build)" and b2.log == "(cached build)" and b3.log != "(cached build)"
    assert b2.flash_bytes == b1.flash_bytes and b2.elf.is_file()
    tiny = tmp_path / "boards"
    tiny.mkdir()
    toml = (REPO / "boards" / "stm32f746g_disco.toml").read_text()
    toml = (toml.replace('name = "stm32f746g_disco"', 'name = "tiny_m7"').replace("default = true", "default = false")
            .replace('aliases = ["stm32f746", "f746", "stm32f746g"]', "aliases = []")
            .replace("length = 0x10000", "length = 0x1000"))  # DTCM 4 KB: too small for KWS' arena
    (tiny / "tiny_m7.toml").write_text(toml)
    board = get_board("tiny_m7", [tiny])
    for _ in range(2):
        with pytest.raises(CheckFailed, match=r"^tinyc: does not fit on tiny_m7: RAM region DTCM \(4096 B\) "
                                              r"overflowed by \d+ bytes$"):
            prepare_firmware(KWS, board, True)
    assert len(list((tmp_path / "firmware").glob("*.does-not-fit"))) == 1


def test_mismatch_on_the_device_is_localised_to_its_layer():
    """A firmware with one wrong bias: validate reports the mismatch, then a debug build of that
    firmware dumps every layer under QEMU (semihosting) and names the corrupted layer."""
    board = get_board("mps2_an500")
    c = compile_model(KWS, Options(alignment=board.alignment))
    step = first_step_of(c, "DEPTHWISE_CONV_2D", 1)
    g = c.graph
    data = load_dataset("random", g.t(g.inputs[0]), 2)
    res = validate(KWS, board, data, compiled=corrupt_bias(c, step), quiet=True)
    assert not res.bit_exact and res.mismatches >= 1 and res.first_mismatch["input"] == 0
    m = res.first_layer_mismatch
    assert m["step"] == step and m["layer"] == g.ops[step].index and m["op"] == "DEPTHWISE_CONV_2D"
    assert m["where"].startswith("QEMU") and m["input"] == 0 and m["differing"] > 0
    assert f"first differing layer: #{g.ops[step].index} DEPTHWISE_CONV_2D" in res.text()
    assert json.loads(json.dumps(res.to_json()))["first_layer_mismatch"]["step"] == step


def test_a_failing_device_stops_the_other_jobs(monkeypatch):
    """One QEMU instance fails: the error comes back at once, the other job stops early."""
    import threading
    import time

    from tinyc.target.device import Device
    from tinyc.target.link import LinkError

    calls: dict[str, int] = {}
    real = Device.run_file

    def run_file(self, record):
        me = threading.current_thread().name
        calls[me] = calls.get(me, 0) + 1
        time.sleep(0.05)
        if record == 2:
            raise LinkError("injected: the board stopped answering")
        return real(self, record)

    monkeypatch.setattr(Device, "run_file", run_file)
    g = read_tflite(str(KWS))
    data = load_dataset("random", g.t(g.inputs[0]), 40)
    with pytest.raises(LinkError, match="injected"):
        validate(KWS, get_board("mps2_an500"), data, jobs=2, quiet=True)
    assert len(calls) == 2 and min(calls.values()) <= 2 and max(calls.values()) < 10, calls


def test_wake_vision_parquet_shard_reports_accuracy_per_slice(tmp_path, capsys):
    """A shard laid out like Wake Vision's on Hugging Face (image struct, person, 0/1 benchmark
    columns) validates bit-exact with accuracy per slice, device and TFLM, each with its size."""
    import io

    import pyarrow as pa
    import pyarrow.parquet as pq
    from PIL import Image

    pngs = sorted((DATA / "wake_vision_test_128").glob("*.png"))
    images = []
    for p in pngs:
        buf = io.BytesIO()
        Image.open(p).convert("RGB").save(buf, format="JPEG", quality=90)
        images.append({"bytes": buf.getvalue(), "path": p.name})
    person = [0 if "no_person" in p.name else 1 for p in pngs]
    far = [k % 2 for k in range(len(pngs))]
    table = pa.table({"image": pa.array(images, pa.struct([("bytes", pa.binary()), ("path", pa.string())])),
                      "person": person, "far": far, "near": [1 - f for f in far],
                      "filename": [p.name for p in pngs]})
    shard = tmp_path / "wv-test-00000.parquet"
    pq.write_table(table, shard)
    assert tinyc(["validate", str(VWW), "--board", "mps2_an500", "--data", str(shard), "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["bit_exact"] and doc["inputs"] == len(pngs)
    sl = doc["accuracy_slices"]
    assert set(sl) == {"far", "near"}
    assert sl["far"]["inputs"] + sl["near"]["inputs"] == len(pngs)
    # bit-exact outputs: the device's accuracy equals TFLM's on every slice
    assert all(v["accuracy"] == v["accuracy_reference"] for v in sl.values())
    weighted = sum(v["accuracy"] * v["inputs"] for v in sl.values()) / len(pngs)
    assert abs(weighted - doc["accuracy"]) < 1e-9


def test_cli_exits_1_with_one_line_when_outputs_differ(monkeypatch, capsys):
    """`tinyc validate` exit code 1 (a check failed) on a mismatch, the report still printed."""
    import tinyc.compiler as compiler

    real = compiler.compile_model

    def wrong(*a, **k):
        c = real(*a, **k)
        return corrupt_bias(c, first_step_of(c, "DEPTHWISE_CONV_2D", 1))

    monkeypatch.setattr(compiler, "compile_model", wrong)
    rc = tinyc(["validate", str(KWS), "--board", "mps2_an500", "--data", "random", "-n", "2", "--json"])
    out, err = capsys.readouterr()
    assert rc == 1
    doc = json.loads(out)
    assert doc["bit_exact"] is False and doc["mismatches"] >= 1
    assert err.strip().count("\n") == 0 and "differ from TFLM" in err


def test_inputs_are_split_over_several_boards_by_port(tmp_path, capsys):
    """Two boards flashed with the same firmware, reached as serial ports (here two QEMU instances
    behind socket://, exactly what a real board's /dev/ttyACM* is to the link): each takes a share,
    all outputs bit-exact; a port named twice is refused."""
    from tinyc.target.qemu import start_qemu

    proj = tmp_path / "fw"
    assert tinyc(["compile", str(KWS), "--board", "mps2_an500", "-o", str(proj)]) == 0
    assert tinyc(["build", str(proj)]) == 0
    capsys.readouterr()
    elf = proj / "build-emu" / "firmware.elf"
    with start_qemu(elf, "mps2-an500", count_instructions=False, timeout=120) as q1, \
            start_qemu(elf, "mps2-an500", count_instructions=False, timeout=120) as q2:
        rc = tinyc(["validate", str(KWS), "--board", "mps2_an500", "--data", "random", "-n", "5",
                    "--port", q1.url, "--port", q2.url, "--json"])
        doc = json.loads(capsys.readouterr().out)
    assert rc == 0 and doc["bit_exact"] and doc["inputs"] == 5 and doc["jobs"] == 2
    assert doc["input_path"] == "serial"
    assert tinyc(["validate", str(KWS), "--board", "mps2_an500", "--data", "random", "-n", "2",
                  "--port", "socket://127.0.0.1:9", "--port", "socket://127.0.0.1:9"]) == 2
    assert "given twice" in capsys.readouterr().err
