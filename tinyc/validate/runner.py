"""`tinyc validate`: the board (or its emulation) against the TFLM reference on real data.

Flow: compile → firmware project → cross build → start the device(s) → run every input on
the device and on TFLM (in a subprocess) → compare bytes, labels, latency, memory.
Emulated boards take their inputs through a file (semihosting), which is ~20x faster than
QEMU's UART; `serial=True` forces the UART path that real boards use.
"""

from __future__ import annotations

import hashlib
import shutil
import statistics
import sys
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyc.compiler import Compiled, Options, compile_model
from tinyc.errors import BadInput
from tinyc.target.boards import Board
from tinyc.validate.datasets import Dataset


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
    slices: dict[str, float] = field(default_factory=dict)
    latency: dict[str, Any] = field(default_factory=dict)
    peak_stack_bytes: int | None = None
    sram_bytes: int | None = None
    flash_bytes: int | None = None
    arena_bytes: int | None = None

    @property
    def bit_exact(self) -> bool:
        return self.mismatches == 0 and self.inputs > 0

    def to_json(self) -> dict[str, Any]:
        return {"model": self.model, "board": self.board, "emulated": self.emulated, "bit_exact": self.bit_exact,
                "inputs": self.inputs, "mismatches": self.mismatches, "first_mismatch": self.first_mismatch,
                "top1_agreement": self.top1_agreement, "accuracy": self.accuracy,
                "accuracy_reference": self.accuracy_reference, "accuracy_slices": self.slices,
                "latency": self.latency, "peak_stack_bytes": self.peak_stack_bytes, "sram_bytes": self.sram_bytes,
                "flash_bytes": self.flash_bytes, "arena_bytes": self.arena_bytes}

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
        lines.append(f"  top-1 agree    {self.top1_agreement * 100:.1f} %")
        if self.accuracy is not None:
            lines.append(f"  accuracy       {self.accuracy * 100:.1f} % (TFLM: {self.accuracy_reference * 100:.1f} %)")
            for k, v in sorted(self.slices.items()):
                lines.append(f"    {k:<28} {v * 100:.1f} %")
        if unit:
            lines.append(f"  latency        {lat[unit]:,} {unit}/inference (min {lat['min']:,}, max {lat['max']:,})")
        for label, v in (("peak stack", self.peak_stack_bytes), ("peak SRAM", self.sram_bytes),
                         ("flash", self.flash_bytes), ("arena", self.arena_bytes)):
            if v is not None:
                lines.append(f"  {label:<14} {v:,} B")
        return "\n".join(lines)


def _project_dir(compiled: Compiled, board: Board, out: Path | None) -> Path:
    if out is not None:
        return out
    from tinyc.target.host import cache_dir

    key = hashlib.sha256(f"{compiled.model_sha256}:{board.name}:{compiled.program.name}".encode()).hexdigest()[:16]
    return cache_dir() / "projects" / key


def prepare_firmware(model: str | Path, board: Board, emulate: bool, out: Path | None = None) -> tuple[Compiled, Path, Any]:
    """Compile, write the firmware project and build it; returns (compiled, project dir, BuildResult)."""
    from tinyc.target.build import build_project
    from tinyc.target.project import write_firmware_project

    compiled = compile_model(model, Options(alignment=board.alignment))
    d = _project_dir(compiled, board, out)
    if d.exists() and out is None:
        shutil.rmtree(d)
    written = compiled.write(d)
    write_firmware_project(d, board, [p.name for p in written if p.suffix == ".c" and p.parent == d],
                           name=compiled.program.name)
    return compiled, d, build_project(d, emulate=emulate)


def _run_device(project: Path, compiled: Compiled, xs: list[np.ndarray], emulate: bool, port: str | None,
                serial: bool, progress: Any) -> tuple[list[list[np.ndarray]], list[int], int | None]:
    from tinyc.target.device import Device

    g = compiled.graph
    dtypes = [np.dtype(g.t(o).dtype) for o in g.outputs]
    shapes = [tuple(g.t(o).shape) for o in g.outputs]
    outs: list[list[np.ndarray]] = []
    lat: list[int] = []
    peak_stack = None
    with Device.start(project, emulate=emulate, port=port, expect_hash=int(compiled.model_sha256[:8], 16),
                      output_dtypes=dtypes, output_shapes=shapes) as dev:
        fast = dev.qemu is not None and not serial
        if fast:
            dev.load_inputs_file([[x] for x in xs])
        for i, x in enumerate(xs):
            outs.append(dev.run_file(i) if fast else dev.run([x]))
            st = dev.stats()
            v = st.instructions if st.instructions is not None else st.cycles
            if v is not None:
                lat.append(int(v))
            peak_stack = st.peak_stack_bytes
            progress.update(1)
    return outs, lat, peak_stack


def validate(model: str | Path, board: Board, data: Dataset, *, emulate: bool = False, port: str | None = None,
             jobs: int = 1, serial: bool = False, out: Path | None = None, quiet: bool = False) -> ValidationResult:
    from tqdm import tqdm

    from tinyc.validate.reference import run_tflm

    compiled, project, build = prepare_firmware(model, board, emulate, out)
    g = compiled.graph
    if len(g.inputs) != 1:
        raise BadInput(f"validate feeds one input per inference; the model has {len(g.inputs)}")
    xs = list(data.inputs)
    if not xs:
        raise BadInput("no inputs to validate")
    ref = run_tflm(str(model), [data.inputs])
    jobs = max(1, min(jobs, len(xs))) if (emulate or board.qemu is not None) else 1
    chunks = [list(range(k, len(xs), jobs)) for k in range(jobs)]
    progress = tqdm(total=len(xs), desc="validate", unit="input", disable=quiet or not sys.stderr.isatty(),
                    file=sys.stderr)
    with ThreadPoolExecutor(max_workers=jobs) as pool:
        futs = [pool.submit(_run_device, project, compiled, [xs[i] for i in c], emulate, port, serial, progress)
                for c in chunks]
        results = [f.result() for f in futs]
    progress.close()
    dev_out: list[list[np.ndarray] | None] = [None] * len(xs)
    lat: list[int] = []
    peak_stack = 0
    for c, (outs, l, ps) in zip(chunks, results):
        for i, o in zip(c, outs):
            dev_out[i] = o
        lat += l
        peak_stack = max(peak_stack, ps or 0)
    mismatches, first = 0, None
    agree, correct, correct_ref = 0, 0, 0
    for i in range(len(xs)):
        got = dev_out[i]
        assert got is not None
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
        top_dev, top_ref = int(np.argmax(got[0])), int(np.argmax(ref[0][i]))
        agree += top_dev == top_ref
        if data.labels is not None:
            correct += top_dev == int(data.labels[i])
            correct_ref += top_ref == int(data.labels[i])
    n = len(xs)
    acc = correct / n if data.labels is not None else None
    slices = {}
    if data.labels is not None:
        preds = np.array([int(np.argmax(o[0])) for o in dev_out if o is not None])
        for name, mask in data.slices.items():
            if mask.any():
                slices[name] = float((preds[mask] == data.labels[mask]).mean())
    latency: dict[str, Any] = {}
    if lat:
        unit = "instructions" if (emulate or board.qemu is not None) else "cycles"
        latency = {unit: int(statistics.median(lat)), "min": min(lat), "max": max(lat)}
    reserved_stack = board.stack_bytes
    sram = build.static_ram_bytes - reserved_stack + peak_stack if peak_stack else build.static_ram_bytes
    return ValidationResult(model=compiled.model_file, board=board.name, emulated=emulate or board.qemu is not None,
                            inputs=n, mismatches=mismatches, first_mismatch=first, top1_agreement=agree / n,
                            accuracy=acc, accuracy_reference=(correct_ref / n if acc is not None else None),
                            slices=slices, latency=latency, peak_stack_bytes=peak_stack or None, sram_bytes=sram,
                            flash_bytes=build.flash_bytes, arena_bytes=compiled.plan.arena_bytes)
