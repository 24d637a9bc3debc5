"""The training compiler driver: model → (new head) → backward graph → one memory plan → C.

    read → validate → passes → [new N-way head] → train/graph.build (scheme) →
    lower + plan the inference (trained ops marked) → lower + plan the training step →
    one C program: invoke() and <prefix>_train_step() sharing the arena
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from tinyc.codegen.emit import TrainPart, build_program
from tinyc.compiler import Compiled, Options, load_model, lower
from tinyc.errors import BadInput
from tinyc.frontend.tflite_reader import read_tflite
from tinyc.frontend.validate import validate
from tinyc.ir import Graph
from tinyc.memory.plan import MemoryPlan, plan_memory
from tinyc.passes import int8_input
from tinyc.passes.manager import run_passes
from tinyc.schedule.search import PatchRequest, search
from tinyc.train import graph as tgraph
from tinyc.train.head import new_head
from tinyc.train.scheme import Scheme, parse

DEFAULT_LR = 0.02
ROUNDINGS = ("accumulate", "stochastic")


@dataclass(frozen=True)
class TrainOptions:
    """What to train and how. update: --update text; classes: a fresh N-way head (None: keep the
    model's); qas: quantization-aware scaling; momentum: SGD momentum (0: none, no buffers)."""

    update: str | None = None
    classes: int | None = None
    qas: bool = True
    momentum: float = 0.0
    learning_rate: float = DEFAULT_LR
    rounding: str = "accumulate"  # "accumulate": an int16 residual per trained element; "stochastic": none

    def __post_init__(self) -> None:
        if self.rounding not in ROUNDINGS:
            raise BadInput(f"--rounding {self.rounding!r}: expected one of {', '.join(ROUNDINGS)}")
        if not 0 <= self.momentum < 1:
            raise BadInput(f"--momentum {self.momentum}: must be in [0, 1)")


@dataclass(frozen=True)
class MemoryFigures:
    """Training peak SRAM, by part (bytes)."""

    arena: int  # the training step's plan (saved activations, masks, gradients, scratch)
    inference_arena: int
    params: int  # trained weights and biases copied to SRAM
    state: int  # update residuals + momentum
    masks: int  # 1-bit activation masks (inside the arena, shown apart)
    saved: int  # kept input channels of partial updates (inside the arena)

    @property
    def sram(self) -> int:
        """Arena (the larger of training and inference) + parameters + state; stack and other
        static data are added by the report when measured."""
        return max(self.arena, self.inference_arena) + self.params + self.state + 16  # + SGD settings, generator

    def to_json(self) -> dict[str, Any]:
        return {"arena_bytes": self.arena, "inference_arena_bytes": self.inference_arena,
                "trained_param_bytes": self.params, "update_state_bytes": self.state, "mask_bytes": self.masks,
                "saved_channel_bytes": self.saved, "sram_bytes_without_stack": self.sram}


@dataclass(frozen=True)
class TrainCompiled:
    compiled: Compiled  # the C program (invoke + train_step) and the inference plan
    train: tgraph.TrainGraph
    calls: tuple
    plan: MemoryPlan
    memory: MemoryFigures
    head_shapes: dict[int, tuple[int, ...]] = field(default_factory=dict)  # new shapes for export (--classes)
    head_quant: dict[int, tuple[float, int]] = field(default_factory=dict)  # new activation quantization (--classes)
    model: Graph | None = None  # the model layer by layer, weights whole (the float reference, export)
    options: TrainOptions = TrainOptions()

    @property
    def classes(self) -> int:
        return self.train.graph.t(self.train.logits).size

    @property
    def scheme(self) -> Scheme:
        return self.train.scheme


def prepare_graph(model: str | Path | bytes, options: Options, classes: int | None
                  ) -> tuple[bytes, str, Graph, Graph, tuple[dict[int, tuple[int, ...]], dict[int, tuple[float, int]]]]:
    """(model bytes, display name, graph as read, graph after passes and new head, (new shapes,
    new activation quantization) for export)."""
    data, display = load_model(model)
    src = read_tflite(data=data, name=Path(display).stem)
    validate(src)
    if options.input_type not in int8_input.INPUT_TYPES:
        raise BadInput(f"--input-type {options.input_type!r}: expected one of {', '.join(int8_input.INPUT_TYPES)}")
    g = run_passes(int8_input.run(src) if options.input_type == "int8" else src)
    shapes: dict[int, tuple[int, ...]] = {}
    quant: dict[int, tuple[float, int]] = {}
    if classes is not None:
        _, _, clf = tgraph.find_logits(g)
        if g.t(clf.outputs[0]).shape[-1] != classes:
            g, shapes, quant = new_head(g, classes)
    return data, display, src, g, (shapes, quant)


def build_train_graph(g: Graph, topts: TrainOptions) -> tgraph.TrainGraph:
    convs, _ = tgraph.conv_layers(g)
    scheme = parse(topts.update, len(convs), g, convs)
    return tgraph.build(g, scheme, qas=topts.qas, momentum=topts.momentum > 0,
                       residuals=topts.rounding == "accumulate")


def patched_forward(tg: tgraph.TrainGraph, options: Options) -> Graph | None:
    """The forward with its memory-heavy first stage run patch by patch (MCUNetV2), when the patch
    search finds a stage that ends before every layer that runs backward; None otherwise. The search
    minimises the inference arena: the training step's forward below the deepest updated layer
    keeps nothing for backward, so its peak there is the inference's."""
    if options.patch == "off":
        return None
    g = tg.model
    calls, macs = lower(g)
    plan = plan_memory(g, calls, alignment=options.alignment, search_seconds=0)
    request = PatchRequest.parse(options.patch, options.patch_max_overhead, "whole")
    outcome = search(g, macs, plan.live_per_step, plan.arena_bytes, request,
                     lambda pg: plan_memory(pg, lower(pg)[0], alignment=options.alignment, search_seconds=0,
                                            fast_kernels=False).arena_bytes)
    if outcome.patched is None:
        return None
    pg = outcome.patched.graph
    in_stage = {op.index for op in pg.ops if "patch" in op.attrs}
    if in_stage & (set(tg.updates) | set(tg.active)):
        return None  # the stage reaches layers that train: layer by layer
    return pg


def memory_figures(tg: tgraph.TrainGraph, plan: MemoryPlan, inference_arena: int) -> MemoryFigures:
    params = sum(tg.forward.t(n).nbytes for n in tg.trained)
    state = sum(count * {"int16_t": 2, "float": 4}.get(ctype, 4) for ctype, count in tg.states.values())
    masks = sum(tg.graph.t(n).nbytes for n in tg.graph.tensors if n.startswith("train/mask"))
    saved = sum(tg.graph.t(n).nbytes for n in tg.graph.tensors if n.startswith("train/xsel"))
    return MemoryFigures(arena=plan.arena_bytes, inference_arena=inference_arena, params=params, state=state,
                         masks=masks, saved=saved)


def plan_training(tg: tgraph.TrainGraph, alignment: int = 4, search_seconds: float = 2.0) -> tuple[tuple, MemoryPlan]:
    calls, _ = lower(tg.graph)
    plan = plan_memory(tg.graph, calls, alignment=alignment, search_seconds=search_seconds)
    return tuple(plan.calls or calls), plan


def compile_training(model: str | Path | bytes, topts: TrainOptions = TrainOptions(),
                     options: Options = Options(), search_seconds: float = 2.0) -> TrainCompiled:
    if options.patch_input == "stream":
        raise BadInput("--patch-input stream is not supported with training: the training step keeps the input "
                       "in the arena")
    data, display, src, g, (shapes, head_quant) = prepare_graph(model, options, topts.classes)
    tg = build_train_graph(g, topts)
    model_graph = tg.model
    t_calls, t_plan = plan_training(tg, options.alignment, search_seconds)
    pg = patched_forward(tg, options)
    if pg is not None:  # keep the patch-based forward when it lowers the training step's peak
        ptg = tgraph.build(pg, tg.scheme, qas=topts.qas, momentum=topts.momentum > 0,
                           residuals=topts.rounding == "accumulate",
                           layers=(list(tg.convs), tg.updates))
        p_calls, p_plan = plan_training(ptg, options.alignment, search_seconds)
        if p_plan.arena_bytes < t_plan.arena_bytes:
            tg, t_calls, t_plan = ptg, p_calls, p_plan
    fwd = tg.forward
    calls, macs = lower(fwd)
    plan = plan_memory(fwd, calls, alignment=options.alignment, strategy=options.allocator,
                       search_seconds=search_seconds)
    calls = plan.calls or calls
    t_macs = tuple(int(op.attrs.get("macs", 0)) for op in tg.graph.ops)
    sha = hashlib.sha256(data + repr((topts, options)).encode()).hexdigest()
    part = TrainPart(graph=tg.graph, calls=t_calls, plan=t_plan, macs=t_macs, trained=tg.trained, label=tg.label,
                     loss=tg.loss, pred=tg.pred, learning_rate=topts.learning_rate, momentum=topts.momentum,
                     qas=topts.qas, scheme=tg.scheme.describe(), classes=tg.graph.t(tg.logits).size)
    prog = build_program(fwd, calls, plan, macs, prefix=options.prefix, model_file=display, model_sha256=sha,
                         train=part)
    compiled = Compiled(source_graph=src, graph=fwd, calls=tuple(calls), macs=tuple(macs), plan=plan, program=prog,
                        model_sha256=sha, model_file=display)
    return TrainCompiled(compiled=compiled, train=tg, calls=t_calls, plan=t_plan,
                         memory=memory_figures(tg, t_plan, plan.arena_bytes), head_shapes=shapes, head_quant=head_quant,
                         options=topts, model=model_graph)
