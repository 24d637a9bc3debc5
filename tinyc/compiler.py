"""The compiler driver: it *is* the pipeline of DESIGN.md, one stage per call.

    read → validate → passes → lower (ops → kernel calls) → plan memory → C program
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from pathlib import Path
from typing import Sequence

import numpy as np

from tinyc.codegen.emit import CProgram, build_program, copy_runtime, render
from tinyc.errors import BadInput, InternalError
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.frontend.validate import validate
from tinyc.ir import Graph
from tinyc.memory.plan import MemoryPlan, plan_memory
from tinyc.ops.base import KernelCall
from tinyc.ops.registry import lookup
from tinyc.passes import int8_input
from tinyc.passes.manager import run_passes
from tinyc.schedule.search import Outcome, PatchRequest, search


@dataclass(frozen=True)
class Options:
    """Compiler behaviour, kept apart from board facts (Vela's CompilerOptions)."""

    prefix: str = "tinyc"
    alignment: int = 4
    allocator: str | None = None  # None: try every registered allocator, keep the best
    patch: str = "auto"  # patch-based inference: "auto", "off" or "NxM@LAYER"
    patch_max_overhead: float = 0.10  # extra MACs patches may cost, as a fraction of the model's
    patch_input: str = "whole"  # "stream": the patch stage reads its model input through read_input()
    input_type: str = "model"  # "int8": drop a float32 input's QUANTIZE, the application writes int8


@dataclass(frozen=True)
class Compiled:
    """Everything one compile produced; the report and the targets read from it."""

    source_graph: Graph  # the model as read, before any pass (its inputs are what TFLM takes)
    graph: Graph
    calls: tuple[KernelCall, ...]
    macs: tuple[int, ...]
    plan: MemoryPlan
    program: CProgram
    model_sha256: str
    model_file: str
    patch: Outcome | None = None  # the patch-based schedule search (None: not run)

    def reference_inputs(self, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
        """What the unchanged model (TFLM) takes for `inputs` given to the compiled program: they
        differ only where --input-type int8 made a float32 input int8."""
        return int8_input.reference_inputs(self.source_graph, self.graph, inputs)

    def files(self) -> dict[str, str]:
        return render(self.program)

    def write(self, out_dir: Path) -> list[Path]:
        """Write the model sources and the runtime they need into out_dir."""
        out_dir.mkdir(parents=True, exist_ok=True)
        written = []
        for name, text in self.files().items():
            (out_dir / name).write_text(text)
            written.append(out_dir / name)
        written += copy_runtime(out_dir, self.program.sources)
        return written


def load_model(model: str | Path | bytes) -> tuple[bytes, str]:
    """The model's bytes and a display name."""
    if isinstance(model, (bytes, bytearray)):
        return bytes(model), "model"
    p = Path(model)
    if not p.is_file():
        raise BadInput(f"{p}: no such model file")
    return p.read_bytes(), p.name


def lower(g: Graph) -> tuple[tuple[KernelCall, ...], tuple[int, ...]]:
    calls, macs = [], []
    for op in g.ops:
        mod = lookup(op.kind)
        if mod is None:
            raise InternalError(f"{op.label} survived validation without an op module")
        calls.append(mod.lower(op, g))
        macs.append(int(mod.macs(op, g)))
    return tuple(calls), tuple(macs)


def compile_model(model: str | Path | bytes, options: Options = Options()) -> Compiled:
    data, display = load_model(model)
    sha = hashlib.sha256(data).hexdigest()
    src = read_tflite(data=data, name=Path(display).stem)
    validate(src)
    if options.input_type not in int8_input.INPUT_TYPES:
        raise BadInput(f"--input-type {options.input_type!r}: expected one of {', '.join(int8_input.INPUT_TYPES)}")
    g = run_passes(int8_input.run(src) if options.input_type == "int8" else src)
    request = PatchRequest.parse(options.patch, options.patch_max_overhead, options.patch_input)
    calls, macs = lower(g)
    plan = plan_memory(g, calls, alignment=options.alignment, strategy=options.allocator)
    calls = plan.calls or calls  # with the in-place kernel variants the plan chose
    outcome = search(g, macs, plan.live_per_step, plan.arena_bytes, request,
                     # candidates are compared without the local search (it only shrinks the winner)
                     lambda pg: plan_memory(pg, lower(pg)[0], alignment=options.alignment,
                                            strategy=options.allocator, search_seconds=0,
                                            fast_kernels=False).arena_bytes)
    if outcome.patched is not None:
        g = outcome.patched.graph
        calls, macs = lower(g)
        plan = plan_memory(g, calls, alignment=options.alignment, strategy=options.allocator)
        calls = plan.calls or calls
    prog = build_program(g, calls, plan, macs, prefix=options.prefix, model_file=display, model_sha256=sha)
    return Compiled(source_graph=src, graph=g, calls=calls, macs=macs, plan=plan, program=prog,
                    model_sha256=sha, model_file=display, patch=outcome)
