"""A whole fine-tuning run on the host: data → compile → accuracy before → epochs → after → export.

What `tinyc train` does, as a function the benchmarks and tests call too."""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from tinyc.compiler import Options
from tinyc.errors import BadInput
from tinyc.train.compile import TrainCompiled, TrainOptions, compile_training, prepare_graph
from tinyc.train.data import LabelledData, load_labelled, shuffled_order, split_holdout
from tinyc.train.export import NewTensorData, export_tflite
from tinyc.train.host import HostTrainer

DEFAULT_EPOCHS = 3


@dataclass
class TrainResult:
    scheme: dict[str, Any]
    updates: list[dict[str, Any]]
    memory: dict[str, Any]
    peak_sram_bytes: int
    peak_sram_how: str
    accuracy_before: float | None
    accuracy_after: float | None
    steps: int
    epochs: int
    learning_rate: float
    qas: bool
    classes: list[str]
    epoch_loss: list[float] = field(default_factory=list)
    epoch_train_accuracy: list[float] = field(default_factory=list)
    seconds_per_step: float = 0.0
    output: str | None = None
    new_head: bool = False
    #: the exported model run by TFLM on the held-out data: its accuracy, and whether every output
    #: byte equals the trained program's (None: not checked, tflite-micro missing or no --output)
    exported_accuracy_tflm: float | None = None
    exported_bit_exact: bool | None = None

    def to_json(self) -> dict[str, Any]:
        return dict(self.__dict__)

    def text(self) -> str:
        acc = (lambda a: "-" if a is None else f"{100 * a:.1f} %")
        lines = [f"scheme: {self.scheme['scheme']} (n_bias_update {self.scheme['n_bias_update']}, weights of conv "
                 f"{self.scheme['manual_weight_idx']} at {self.scheme['weight_update_ratio']})",
                 f"steps: {self.steps} ({self.epochs} epoch(s), lr {self.learning_rate:g}, QAS {'on' if self.qas else 'off'}"
                 f", {1000 * self.seconds_per_step:.1f} ms per step on the host)",
                 f"held-out accuracy: {acc(self.accuracy_before)} before -> {acc(self.accuracy_after)} after",
                 f"training peak SRAM: {self.peak_sram_bytes:,} B ({self.peak_sram_how})"]
        if self.output:
            check = ("" if self.exported_bit_exact is None else
                     f" (TFLM on it: {acc(self.exported_accuracy_tflm)}, "
                     + ("every output byte equal to tinyc's)" if self.exported_bit_exact else "OUTPUTS DIFFER from tinyc's)"))
            lines.append(f"trained model: {self.output}{check}")
        return "\n".join(lines)


def accuracy(outputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 over the last axis of output 0 (the class scores)."""
    pred = outputs.reshape(len(labels), -1).argmax(axis=1)
    return float((pred == labels).mean()) if len(labels) else 0.0


def export_trained(tc: TrainCompiled, model_bytes: bytes, trainer: HostTrainer) -> bytes:
    """The source model with the trained parameters (and a new head's shapes) written in."""
    from tinyc.train.graph import join_split

    g = tc.model
    updates = []
    for name, arr in join_split(tc.train, trainer.parameters()).items():
        t = g.t(name)
        if t.index < 0:
            continue
        new_q = t.index in tc.head_shapes
        updates.append(NewTensorData(index=t.index, data=arr,
                                     scale=tuple(t.quant.scale) if new_q and t.quant else None,
                                     zero_point=tuple(t.quant.zero_point) if new_q and t.quant else None))
    reshape = {i: s for i, s in tc.head_shapes.items() if i not in {u.index for u in updates}}
    return export_tflite(model_bytes, updates, reshape, tc.head_quant)


def train_on_host(model: str | Path, data: str | Path, *, eval_data: str | Path | None = None,
                  classes: int | None = None, update: str | None = None, epochs: int = DEFAULT_EPOCHS,
                  lr: float | None = None, qas: bool = True, momentum: float = 0.0, n: int | None = None,
                  seed: int = 0, output: Path | None = None, force: bool = False, progress: bool = True,
                  options: Options = Options(), sanitize: bool = False, rounding: str = "accumulate",
                  board: Any = None) -> TrainResult:
    from tinyc.train.compile import DEFAULT_LR

    if epochs < 0:
        raise BadInput(f"--epochs {epochs}: must be >= 0")
    if output is not None and output.exists() and not force:
        raise BadInput(f"{output} exists; use --force to overwrite it")
    lr = DEFAULT_LR if lr is None else lr
    if not lr >= 0:
        raise BadInput(f"--lr {lr}: must be >= 0")
    model_bytes, _, _, g0, _ = prepare_graph(model, options, None)
    # bad options fail before the data is decoded
    TrainOptions(update=update, qas=qas, momentum=momentum, learning_rate=lr, rounding=rounding)
    from tinyc.train.graph import conv_layers
    from tinyc.train.scheme import parse

    convs, _ = conv_layers(g0)
    parse(update, len(convs), g0, convs)
    t_in = g0.t(g0.inputs[0])
    train_set = load_labelled(data, t_in, progress=progress)
    if eval_data is not None:
        held = load_labelled(eval_data, t_in, classes=train_set.classes, progress=progress)
    else:
        train_set, held = split_holdout(train_set, 0.2, seed)
    if n is not None:
        order = np.random.default_rng(seed).permutation(len(train_set))[:n]
        train_set = LabelledData(train_set.inputs[order], train_set.labels[order], train_set.classes, train_set.source)
    n_classes = len(train_set.classes)
    if classes is not None and classes != n_classes:
        raise BadInput(f"--classes {classes} but the training data has {n_classes} classes ({', '.join(train_set.classes[:5])}...)")
    tc = compile_training(model, TrainOptions(update=update, classes=n_classes, qas=qas, momentum=momentum,
                                              learning_rate=lr, rounding=rounding), options)
    trainer = HostTrainer(tc, sanitize=sanitize)
    x_held = held.inputs.reshape(len(held), *t_in.shape)
    before = accuracy(trainer.evaluate([x_held]), held.labels) if len(held) else None
    order = shuffled_order(len(train_set), epochs, seed) if epochs else np.zeros(0, np.int64)
    x_train = train_set.inputs.reshape(len(train_set), *t_in.shape)
    epoch_loss, epoch_acc = [], []
    t0 = time.perf_counter()
    bar = _bar(len(order), progress)
    for e in range(epochs):
        idx = order[e * len(train_set):(e + 1) * len(train_set)]
        log = trainer.train([x_train[idx]], train_set.labels[idx], lr,
                            progress=(lambda k, e=e: bar.update(1) if bar else None))
        epoch_loss.append(float(log.losses.mean()))
        epoch_acc.append(float((log.predictions == train_set.labels[idx]).mean()))
        if bar:
            bar.set_postfix(epoch=e + 1, loss=f"{epoch_loss[-1]:.3f}", acc=f"{100 * epoch_acc[-1]:.1f}%")
    if bar:
        bar.close()
    dt = time.perf_counter() - t0
    held_out = trainer.evaluate([x_held]) if len(held) else None
    after = accuracy(held_out, held.labels) if held_out is not None else None
    out_name = None
    tflm_acc = bit_exact = None
    if output is not None:
        exported = export_trained(tc, model_bytes, trainer)
        output.write_bytes(exported)
        out_name = str(output)
        if held_out is not None:
            tflm_acc, bit_exact = _check_export(exported, tc, x_held, held_out, held.labels)
    peak, how = peak_sram(tc, board)
    from tinyc.train.graph import describe_updates

    return TrainResult(scheme=tc.scheme.to_json(), updates=describe_updates(tc.train), memory=tc.memory.to_json(),
                       peak_sram_bytes=peak, peak_sram_how=how, accuracy_before=before, accuracy_after=after,
                       steps=len(order), epochs=epochs, learning_rate=lr, qas=qas, classes=train_set.classes,
                       epoch_loss=epoch_loss, epoch_train_accuracy=epoch_acc,
                       seconds_per_step=dt / max(1, len(order)), output=out_name,
                       new_head=bool(tc.head_shapes), exported_accuracy_tflm=tflm_acc, exported_bit_exact=bit_exact)


def _check_export(exported: bytes, tc: TrainCompiled, x: np.ndarray, ours: np.ndarray,
                  labels: np.ndarray) -> tuple[float | None, bool | None]:
    """TFLM (the golden reference) on the exported model over the held-out inputs: its accuracy and
    whether its outputs equal the trained program's byte for byte. (None, None) without tflite-micro."""
    try:
        import tflite_micro  # noqa: F401
    except ImportError:
        return None, None
    from tinyc.validate.reference import run_tflm

    ref = run_tflm(exported, [_reference_batch(tc, x)])[0]
    return accuracy(ref, labels), bool(np.array_equal(ref.reshape(ours.shape), ours))


def _reference_batch(tc: TrainCompiled, x: np.ndarray) -> np.ndarray:
    """What TFLM takes for the inputs the compiled program takes (--input-type int8 changes them)."""
    return tc.compiled.reference_inputs([x])[0]


def peak_sram(tc: TrainCompiled, board: Any = None) -> tuple[int, str]:
    """Training peak SRAM on `board` (default the STM32F746) = arena + static data (trained
    parameters, update state, everything else the objects hold, read off arm-none-eabi-gcc's
    objects) + the deepest stack of train_step (its call graph); the planned figures without the
    stack when the cross compiler is missing or the board is the host."""
    from tinyc.report.report import cross_compile_sizes
    from tinyc.target.boards import get_board

    board = board or get_board(None)
    cpu = board.cpu
    sizes = (None if cpu == "host" else
             cross_compile_sizes(tc.compiled, cpu, board.fpu, board.float_abi, entry="train_step"))
    arena = tc.compiled.program.arena_bytes
    if sizes is None:
        return tc.memory.sram, "planned arena + trained parameters + update state; stack not measured"
    return arena + sizes.static_data + sizes.stack, \
        (f"{board.name}: arena {arena:,} + static data {sizes.static_data:,} (compiled) + stack {sizes.stack:,} "
         "(call graph)")


def _bar(total: int, on: bool) -> Any:
    if not on or total == 0:
        return None
    from tqdm import tqdm

    return tqdm(total=total, unit="step", desc="training", leave=True)
