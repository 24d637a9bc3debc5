"""`tinyc validate`: the board (or its emulation) against the TFLM reference on real data.

Flow: compile → firmware project → cross build → start the device(s) → run every input on
the device and on TFLM (in a subprocess) → compare bytes, labels, latency, memory.

Throughput, for the large data sets (1,000 VWW images in well under two minutes on 2 cores):
- the TFLM reference runs once for the whole batch, in one worker process started right after
  the compile, so it overlaps the cross build and the QEMU runs;
- emulated boards take their inputs from one host file through semihosting (~20x faster than
  QEMU's UART; ``serial=True`` forces the UART path real boards use), and several QEMU
  instances (``jobs``) share that file, each running its own records;
- instruction counts come from the QEMU plugin's log, not from one ``stats`` request per input;
- a firmware build is cached by (model, options, board, tinyc sources), so validating the same
  model again, or on a second board, rebuilds nothing it has built before.
"""

from __future__ import annotations

import hashlib
import os
import shutil
import statistics
import sys
import tempfile
import time
import threading
from concurrent.futures import FIRST_EXCEPTION, ThreadPoolExecutor, wait
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import numpy as np

from tinyc.compiler import Compiled, Options, compile_model
from tinyc.errors import BadInput, CheckFailed
from tinyc.target.boards import Board
from tinyc.validate.datasets import Dataset


def accuracy_by_slice(preds: np.ndarray, preds_ref: np.ndarray, labels: np.ndarray,
                      slices: dict[str, np.ndarray]) -> tuple[float, float, dict[str, dict[str, Any]]]:
    """Device and TFLM accuracy overall and per Wake Vision benchmark slice. Each slice carries its
    input count: a 100 % on three images is not a result, and the reader must be able to see that."""
    acc, acc_ref = float((preds == labels).mean()), float((preds_ref == labels).mean())
    per: dict[str, dict[str, Any]] = {}
    for name, mask in slices.items():
        mask = np.asarray(mask, dtype=bool)
        if mask.any():
            per[name] = {"inputs": int(mask.sum()), "accuracy": float((preds[mask] == labels[mask]).mean()),
                         "accuracy_reference": float((preds_ref[mask] == labels[mask]).mean())}
    return acc, acc_ref, per


@dataclass
class ValidationResult:
    model: str
    board: str
    emulated: bool
    inputs: int
    mismatches: int
    first_mismatch: dict[str, Any] | None
    top1_agreement: float
    accuracy: float | None
    accuracy_reference: float | None
    slices: dict[str, dict[str, Any]] = field(default_factory=dict)  # see accuracy_by_slice
    latency: dict[str, Any] = field(default_factory=dict)
    peak_stack_bytes: int | None = None
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    arena_bytes: int | None = None
    data: str = ""  # where the inputs came from
    path: str = ""  # "semihosting file" (QEMU fast path) or "serial"
    jobs: int = 1
    timings: dict[str, float] = field(default_factory=dict)  # seconds per phase (wall)
    first_layer_mismatch: dict[str, Any] | None = None  # localisation of the first mismatch

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.inputs > 0

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "board": self.board, "emulated": self.emulated, "bit_exact": self.bit_exact,
                "inputs": self.inputs, "mismatches": self.mismatches, "first_mismatch": self.first_mismatch,
                "first_layer_mismatch": self.first_layer_mismatch,
                "top1_agreement": self.top1_agreement, "accuracy": self.accuracy,
                "accuracy_reference": self.accuracy_reference, "accuracy_slices": self.slices,
                "latency": self.latency, "peak_stack_bytes": self.peak_stack_bytes, "sram_bytes": self.sram_bytes,
                "flash_bytes": self.flash_bytes, "arena_bytes": self.arena_bytes, "data": self.data,
                "input_path": self.path, "jobs": self.jobs, "timings": self.timings}

    def text(self) -> str:
        lat = self.latency
        unit = "instructions" if "instructions" in lat else ("cycles" if "cycles" in lat else None)
        lines = [f"tinyc validate: {self.model} on {self.board}{' (emulated)' if self.emulated else ''}",
                 f"  bit-exact      {'yes' if self.bit_exact else 'NO'}: {self.inputs - self.mismatches}/{self.inputs} "
                 f"inputs match TFLM byte for byte"]
        if self.first_mismatch:
            fm = self.first_mismatch
            lines.append(f"  first mismatch input {fm['input']} ({fm['name']}), output {fm['output']} element "
                         f"{fm['element']}: device {fm['device']} vs TFLM {fm['reference']}")
        if self.first_layer_mismatch:
            lines.append("  " + layer_mismatch_text(self.first_layer_mismatch))
        lines.append(f"  top-1 agree    {self.top1_agreement * 100:.1f} %")
        if self.accuracy is not None:
            lines.append(f"  accuracy       {self.accuracy * 100:.1f} % (TFLM: {self.accuracy_reference * 100:.1f} %)")
            for k, v in sorted(self.slices.items()):
                lines.append(f"    {k:<28} {v['accuracy'] * 100:5.1f} % (TFLM: {v['accuracy_reference'] * 100:5.1f} %)"
                             f"  n={v['inputs']}")
        if unit:
            lines.append(f"  latency        {lat[unit]:,} {unit}/inference (min {lat['min']:,}, max {lat['max']:,})"
                         + (f"; {lat['source']}" if lat.get("source") else ""))
        for label, v in (("peak stack", self.peak_stack_bytes), ("peak SRAM", self.sram_bytes),
                         ("flash", self.flash_bytes), ("arena", self.arena_bytes)):
            if v is not None:
                lines.append(f"  {label:<14} {v:,} B")
        return "\n".join(lines)


def layer_mismatch_text(m: dict[str, Any]) -> str:
    """One line naming the first layer whose output differs (see tinyc/validate/localize.py)."""
    if m.get("layer") is None:
        return f"layer dumps: {m.get('note', 'every layer matches TFLM')} ({m.get('where', '?')})"
    stage = f" (in the patch stage of {m['patch_stage']})" if m.get("patch_stage") else ""
    name = m["tensor"] if len(m["tensor"]) <= 48 else "..." + m["tensor"][-45:]
    return (f"first differing layer: #{m['layer']} {m['op']}{stage} -> tensor {m['tflite_tensor']} '{name}' "
            f"{m['shape']}: {m['differing']:,} of {m['elements']:,} values differ, max |diff| "
            f"{m['max_abs_diff']}, first at {m['first_element']}: device {m['device']} vs TFLM "
            f"{m['reference']} ({m['where']})")


# --------------------------------------------------------------------------- firmware
_TOOLCHAIN: str | None = None


def _toolchain() -> str:
    """The cross compiler's version line: a different compiler makes a different firmware."""
    global _TOOLCHAIN
    if _TOOLCHAIN is None:
        import subprocess

        try:
            r = subprocess.run(["arm-none-eabi-gcc", "--version"], capture_output=True, text=True, timeout=30)
            _TOOLCHAIN = (r.stdout.splitlines() or [""])[0]
        except (OSError, subprocess.TimeoutExpired):
            _TOOLCHAIN = ""
    return _TOOLCHAIN


def _project_key(d: Path, emulate: bool) -> str:
    """Hash of every file of a written project (sources, linker script, Makefile, metadata),
    the build target and the toolchain: equal keys build equal firmware."""
    h = hashlib.sha256(f"{emulate}|{_toolchain()}".encode())
    for f in sorted(p for p in d.rglob("*") if p.is_file()):
        h.update(str(f.relative_to(d)).encode() + b"\0")
        h.update(f.read_bytes())
    return h.hexdigest()[:20] + ("-emu" if emulate else "")


CACHE_KEEP = 48  # firmware builds kept in the cache (least recently used go first)


def _evict(root: Path, keep: int = CACHE_KEEP) -> None:
    now = time.time()
    entries = []
    for p in root.iterdir():
        try:
            mtime = p.stat().st_mtime
        except FileNotFoundError:  # another process evicted it first
            continue
        if p.name.startswith("build."):  # a build in progress, or left by a killed run
            if now - mtime > 3600:
                shutil.rmtree(p, ignore_errors=True)
            continue
        entries.append((mtime, p))
    entries.sort(reverse=True)
    for _, p in entries[keep:]:
        if p.is_dir():
            shutil.rmtree(p, ignore_errors=True)
        else:
            p.unlink(missing_ok=True)


def _elf(d: Path, emulate: bool) -> Path:
    return d / ("build-emu" if emulate else "build") / "firmware.elf"


def prepare_firmware(model: str | Path, board: Board, emulate: bool, out: Path | None = None,
                     compiled: Compiled | None = None,
                     extra_dirs: Sequence[Path] = ()) -> tuple[Compiled, Path, Any]:
    """Compile, write the firmware project and build it; returns (compiled, project dir, BuildResult).

    With ``out`` the project is written there and built (make is incremental). Without, it is
    built in the tinyc cache under a key over the project's own files (so a change anywhere in
    tinyc that alters the generated firmware makes a new build, and one that does not reuses the
    old): a cached build is used as is, and a build that did not fit is remembered with its
    link-time message.
    """
    from tinyc.target.build import BuildResult, build_project, region_usage
    from tinyc.target.host import cache_dir
    from tinyc.target.project import read_project, write_firmware_project

    if compiled is None:
        compiled = compile_model(model, Options(alignment=board.alignment))
    emulate = emulate or board.is_emulated  # a QEMU board's only build is build-emu/ (build_project agrees)

    def write(d: Path) -> None:
        written = compiled.write(d)
        write_firmware_project(d, board, [p.name for p in written if p.suffix == ".c" and p.parent == d],
                               name=compiled.program.name, extra_dirs=extra_dirs)

    if out is not None:
        write(out)
        return compiled, out, build_project(out, emulate=emulate)

    root = cache_dir() / "firmware"
    root.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix="build.", dir=root))
    try:
        write(tmp)
        key = _project_key(tmp, emulate)
        d, failed = root / key, root / f"{key}.does-not-fit"
        if failed.is_file():
            raise CheckFailed(failed.read_text().strip())
        log = "(cached build)"
        if not _elf(d, emulate).is_file():
            log = ""
            try:
                build_project(tmp, emulate=emulate)
            except CheckFailed as e:
                if str(e).startswith("tinyc: does not fit"):
                    failed.write_text(str(e) + "\n")
                raise
            if d.exists() and not _elf(d, emulate).is_file():
                shutil.rmtree(d, ignore_errors=True)  # a leftover without firmware
            try:
                os.replace(tmp, d)  # atomic; a concurrent builder of the same key may have won
            except OSError:
                if not _elf(d, emulate).is_file():
                    raise
            _evict(root)
        else:
            os.utime(d)  # recently used
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    elf = _elf(d, emulate)
    return compiled, d, BuildResult(elf, emulate, region_usage(elf, read_project(d), emulate), log)


# --------------------------------------------------------------------------- device runs
@dataclass
class _JobResult:
    outputs: list[list[np.ndarray]]
    latency: list[int]
    peak_stack: int | None
    source: str | None = None  # where latency comes from (QemuProcess.latency_source, or DWT)


def _run_device(project: Path, compiled: Compiled, records: list[int], xs: np.ndarray, emulate: bool,
                port: str | None, serial: bool, inputs_file: Path | None, progress: Any,
                stop: threading.Event) -> _JobResult:
    """Run ``records`` (indexes into ``xs``) on one device: a QEMU instance or the board.
    Stops early when ``stop`` is set (another job failed: the run is lost anyway)."""
    from tinyc.target.device import Device

    g = compiled.graph
    dtypes = [np.dtype(g.t(o).dtype) for o in g.outputs]
    shapes = [tuple(g.t(o).shape) for o in g.outputs]
    outs: list[list[np.ndarray]] = []
    lat: list[int] = []
    with Device.start(project, emulate=emulate, port=port, expect_hash=int(compiled.model_sha256[:8], 16),
                      expect_arena=compiled.plan.arena_bytes, output_dtypes=dtypes, output_shapes=shapes) as dev:
        if dev.qemu is not None and not serial and inputs_file is not None:
            dev.use_inputs_file(inputs_file)
            for i in records:
                if stop.is_set():
                    break
                outs.append(dev.run_file(i))
                progress.update(1)
            lat = dev.qemu.instruction_counts()  # one per invoke: the plugin's, or derived from -icount
            if len(lat) != len(records):
                lat = []
            st = dev.stats()
        else:
            st = None
            for i in records:
                if stop.is_set():
                    break
                outs.append(dev.run([xs[i]]))
                st = dev.stats()
                v = st.instructions if st.instructions is not None else st.cycles
                if v is not None:
                    lat.append(int(v))
                progress.update(1)
        peak = st.peak_stack_bytes if st is not None else None
        source = dev.qemu.latency_source if dev.qemu is not None else "DWT CYCCNT"
    return _JobResult(outs, lat, peak, source)


def _compare(dev_out: list[list[np.ndarray]], ref: list[np.ndarray], data: Dataset) -> tuple[int, dict | None, int]:
    mismatches, first, agree = 0, None, 0
    for i, got in enumerate(dev_out):
        bad = False
        for k, r in enumerate(ref):
            a, b = np.asarray(got[k]).reshape(r[i].shape), r[i]
            if not np.array_equal(a, b):
                bad = True
                if first is None:
                    e = tuple(int(v) for v in np.argwhere(a != b)[0])
                    first = {"input": i, "name": data.names[i] if i < len(data.names) else str(i), "output": k,
                             "element": list(e), "device": a[e].item(), "reference": b[e].item()}
        mismatches += bad
        agree += int(np.argmax(got[0])) == int(np.argmax(ref[0][i]))
    return mismatches, first, agree


def validate(model: str | Path, board: Board, data: Dataset, *, emulate: bool = False,
             port: str | Sequence[str] | None = None,
             jobs: int = 1, serial: bool = False, out: Path | None = None, quiet: bool = False,
             localize: bool = True, compiled: Compiled | None = None,
             extra_dirs: Sequence[Path] = ()) -> ValidationResult:
    """Run ``data`` on the board (or its QEMU emulation) and on TFLM; compare everything.

    ``localize``: on a mismatch, rerun the first differing input through a debug build that dumps
    every layer (the same firmware under QEMU for an emulated board, else the generated C on the
    host), compare with TFLM's intermediate tensors and name the first layer that differs.
    ``port``: a real board's serial port, or several (boards flashed with the same firmware): the
    inputs are split over them, one job per port.
    ``compiled``: the model already compiled for this board's options.
    ``extra_dirs``: the user's board folders (``--boards-dir``), where the board's QEMU twin may be.
    """
    from tqdm import tqdm

    from tinyc.target.device import write_inputs_file
    from tinyc.validate.reference import ReferenceRunError, run_tflm

    t_start = time.perf_counter()
    xs = np.asarray(data.inputs)
    if len(xs) == 0:
        raise BadInput("no inputs to validate")
    if compiled is None:
        compiled = compile_model(model, Options(alignment=board.alignment))
    g = compiled.graph
    if len(g.inputs) != 1:
        raise BadInput(f"validate feeds one input per inference; the model has {len(g.inputs)}")
    timings: dict[str, float] = {}
    # The reference needs ~15 ms per VWW input on one core: start it now, it overlaps the build
    # and the device runs. Not `with`: a build that does not fit must not wait for it.
    ref_pool = ThreadPoolExecutor(max_workers=1, thread_name_prefix="tinyc-reference")

    def reference() -> tuple[list[np.ndarray], float]:
        t = time.perf_counter()
        # bounded, but by the batch: TFLM's reference kernels take up to ~2 s per input on the big models
        return (run_tflm(str(model), compiled.reference_inputs([xs]), timeout=300 + 5 * len(xs)),
                time.perf_counter() - t)

    ref_future = ref_pool.submit(reference)
    ref_pool.shutdown(wait=False)
    ports: list[str] = [port] if isinstance(port, str) else list(port or [])
    if len(set(ports)) != len(ports):
        raise BadInput(f"a serial port is given twice: {', '.join(ports)}")
    on_qemu = not ports and (emulate or board.is_emulated)
    compiled, project, build = prepare_firmware(model, board, on_qemu, out, compiled=compiled,
                                                extra_dirs=extra_dirs)
    timings["compile_build"] = time.perf_counter() - t_start

    jobs = max(1, min(jobs, len(xs))) if on_qemu else max(1, min(len(ports), len(xs)))
    fast = on_qemu and not serial
    chunks = [list(range(k, len(xs), jobs)) for k in range(jobs)]
    progress = tqdm(total=len(xs), desc="validate", unit="input", disable=quiet or not sys.stderr.isatty(),
                    file=sys.stderr)
    t_dev = time.perf_counter()
    with tempfile.TemporaryDirectory(prefix="tinyc-validate-") as tmp:
        inputs_file = None
        if fast:
            inputs_file = Path(tmp) / "inputs.bin"
            write_inputs_file(inputs_file, [[x] for x in xs], (int(xs[0].nbytes),))
        stop = threading.Event()
        with ThreadPoolExecutor(max_workers=jobs, thread_name_prefix="tinyc-device") as pool:
            futs = [pool.submit(_run_device, project, compiled, c, xs, emulate, ports[k] if ports else None, serial,
                                inputs_file, progress, stop) for k, c in enumerate(chunks)]
            done, _ = wait(futs, return_when=FIRST_EXCEPTION)
            if any(f.exception() is not None for f in done):
                stop.set()  # one device failed: the others stop after their current input
            results = [f.result() for f in futs]
    progress.close()
    timings["device"] = time.perf_counter() - t_dev
    t_wait = time.perf_counter()
    try:
        ref, timings["reference"] = ref_future.result()
    except ReferenceRunError as e:
        raise CheckFailed(f"the TFLM reference could not run {Path(model).name}: "
                          f"{str(e).splitlines()[0]}") from None
    timings["reference_wait"] = time.perf_counter() - t_wait

    dev_out: list[list[np.ndarray]] = [[] for _ in range(len(xs))]
    lat: list[int] = []
    peak_stack = 0
    for c, r in zip(chunks, results):
        for i, o in zip(c, r.outputs):
            dev_out[i] = o
        lat += r.latency
        peak_stack = max(peak_stack, r.peak_stack or 0)
    mismatches, first, agree = _compare(dev_out, ref, data)

    layer = None
    if first is not None and localize:
        from tinyc.validate.localize import localize_mismatch

        t = time.perf_counter()
        try:
            layer = localize_mismatch(model, compiled, xs[first["input"]], project=project, on_qemu=on_qemu)
            layer["input"] = first["input"]
        except Exception as e:  # localisation is a diagnosis aid: never hide the mismatch itself
            layer = {"layer": None, "note": f"could not localise ({type(e).__name__}: {e})"}
        timings["localize"] = time.perf_counter() - t

    n = len(xs)
    acc = acc_ref = None
    slices: dict[str, dict[str, Any]] = {}
    if data.labels is not None:
        preds = np.array([int(np.argmax(o[0])) for o in dev_out])
        preds_ref = np.array([int(np.argmax(ref[0][i])) for i in range(n)])
        acc, acc_ref, slices = accuracy_by_slice(preds, preds_ref, np.asarray(data.labels), data.slices)
    latency: dict[str, Any] = {}
    if lat:
        unit = "instructions" if on_qemu else "cycles"
        latency = {unit: int(statistics.median(lat)), "min": min(lat), "max": max(lat),
                   "source": results[0].source}
    sram = build.static_ram_bytes - board.stack_bytes + peak_stack if peak_stack else build.static_ram_bytes
    timings["total"] = time.perf_counter() - t_start
    return ValidationResult(model=compiled.model_file, board=board.name, emulated=on_qemu,
                            inputs=n, mismatches=mismatches, first_mismatch=first, top1_agreement=agree / n,
                            accuracy=acc, accuracy_reference=acc_ref, slices=slices, latency=latency,
                            peak_stack_bytes=peak_stack or None, sram_bytes=sram, flash_bytes=build.flash_bytes,
                            arena_bytes=compiled.plan.arena_bytes, data=data.source,
                            path="semihosting file" if fast else "serial", jobs=jobs, timings=timings,
                            first_layer_mismatch=layer)
