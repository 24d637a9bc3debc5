"""Training benchmarks: peak SRAM of a training step per update scheme, host time per step, and
transfer learning on CIFAR-10 (vww_96_int8 fine-tuned from person/no-person to 10 classes).

    python benchmarks/training.py memory          # the table of schemes for the shared CNNs
    python benchmarks/training.py transfer [--epochs E] [--n N]
    python benchmarks/training.py imagenet [--epochs E] [--n N]   # mcunet-320kb ImageNet -> CIFAR-10 (slow)
    python benchmarks/training.py                 # memory and transfer

Peak SRAM is the planned figure on the STM32F746 (arena + trained parameters + update state;
stack and other static data come from `tinyc train --json` / the report: a few hundred bytes).
"Without reordering" adds every weight gradient materialised before its update (TTE's "sparse"
column against "sparse + reorder"); tinyc always reorders. TTE's figures for orientation
(MCUNet-5FPS, 128x128): full 3,650 KB -> sparse 560 KB -> sparse + reorder 173 KB.
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import numpy as np

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from tests.support.paths import DATA, MODELS  # noqa: E402
from tinyc.compiler import Options  # noqa: E402
from tinyc.train.compile import TrainOptions, compile_training  # noqa: E402
from tinyc.train.host import HostTrainer  # noqa: E402
from tinyc.train.report import no_reorder_bytes  # noqa: E402

HERE = Path(__file__).resolve().parent
MODELS_TABLE = [
    ("mlperf_tiny/vww_96_int8.tflite", Options(), "auto"),
    ("tflm/person_detect.tflite", Options(), "auto"),
    ("mlperf_tiny/kws_ref_model.tflite", Options(), "auto"),
    ("hanlab/vww.tflite", Options(input_type="int8"), f"sparse:{HERE / 'schemes' / 'hanlab_vww.toml'}"),
    ("wake_vision/wv_quality_mcunet-320kb-1mb_vww.tflite", Options(), f"sparse:{HERE / 'schemes' / 'wv_mcunet.toml'}"),
    ("hanlab/mcunet-320kb-1mb_imagenet.tflite", Options(), "auto"),
]


def _kb(b: int) -> str:
    return f"{b / 1024:,.1f}"


def step_ms(tc, steps: int = 10) -> float:
    g = tc.compiled.graph
    t = g.t(g.inputs[0])
    rng = np.random.default_rng(0)
    lo, hi = (0, 256) if t.dtype == "uint8" else (-128, 128)
    x = rng.integers(lo, hi, size=(steps, *t.shape)).astype(t.dtype)
    tr = HostTrainer(tc)
    t0 = time.perf_counter()
    tr.train([x], np.arange(steps) % tc.classes, lr=0.01)
    return (time.perf_counter() - t0) / steps * 1000


def memory_table(rounding: str = "accumulate") -> None:
    print(f"training peak SRAM (KB, planned, stm32f746 alignment; rounding: {rounding})")
    hdr = (f"{'model':<44} {'full':>9} {'full no-reorder':>15} {'bias':>8} {'last-2-blocks':>13} {'sparse':>8} "
           f"{'full/sparse':>11} {'no-reorder/sparse':>17} {'patch':>5} {'ms/step':>8}  sparse scheme")
    print(hdr)
    print("-" * len(hdr))
    for name, opts, sparse in MODELS_TABLE:
        path = MODELS / name
        if not path.is_file():
            print(f"{name:<44} (not found)")
            continue
        fig = {}
        for label, upd in (("full", "full"), ("bias", "bias"), ("last", "last:6"), ("sparse", sparse)):
            fig[label] = compile_training(path, TrainOptions(update=upd, rounding=rounding), opts, search_seconds=0)
        full, sp = fig["full"], fig["sparse"]
        ms = step_ms(sp)
        print(f"{name:<44} {_kb(full.memory.sram):>9} {_kb(no_reorder_bytes(full)):>15} {_kb(fig['bias'].memory.sram):>8} "
              f"{_kb(fig['last'].memory.sram):>13} {_kb(sp.memory.sram):>8} {full.memory.sram / sp.memory.sram:>10.1f}x "
              f"{no_reorder_bytes(full) / sp.memory.sram:>16.1f}x {'yes' if sp.train.patched else 'no':>5} {ms:>8.1f}  "
              f"{sp.scheme.describe()}")


def _transfer_run(model: Path, update: str, lr: float, epochs: int, n: int | None, qas: bool = True,
                  options: Options = Options(), output: Path | None = None) -> tuple[float, float, dict]:
    from tinyc.train.session import train_on_host

    r = train_on_host(model, DATA / "cifar10" / "train", eval_data=DATA / "cifar10" / "test", update=update,
                      epochs=epochs, lr=lr, qas=qas, n=n, progress=True, options=options, output=output, force=True)
    return r.accuracy_before or 0.0, r.accuracy_after or 0.0, r.to_json()


def _float_reference(model: Path, update: str, lr: float, epochs: int, n: int | None) -> float:
    """The same scheme's update mask trained in float64 (tinyc.train.reference)."""
    from tqdm import tqdm

    from tinyc.train.data import load_labelled, shuffled_order
    from tinyc.train.graph import update_masks
    from tinyc.train.reference import FloatNet, float_accuracy, float_finetune

    tc = compile_training(model, TrainOptions(update=update, classes=10), search_seconds=0)
    g = tc.compiled.graph
    t = g.t(g.inputs[0])
    train = load_labelled(DATA / "cifar10" / "train", t)
    test = load_labelled(DATA / "cifar10" / "test", t, classes=train.classes)
    if n is not None:
        keep = np.random.default_rng(0).permutation(len(train))[:n]
        train.inputs, train.labels = train.inputs[keep], train.labels[keep]
    real = lambda q: (q.astype(np.float64) - t.quant.zp) * t.quant.s  # noqa: E731
    net = FloatNet(g, tc.train.logits, tc.train.beta)
    order = shuffled_order(len(train), epochs, 0)
    bar = tqdm(total=len(order), desc="float reference", unit="step")
    float_finetune(net, update_masks(tc.train), real(train.inputs.reshape(len(train), *t.shape)), train.labels,
                   order, lr, progress=lambda k: bar.update(1))
    bar.close()
    return float_accuracy(net, real(test.inputs.reshape(len(test), *t.shape)), test.labels)


def transfer(epochs: int, n: int | None, lr: float, sparse: str) -> None:
    import tempfile

    model = MODELS / "mlperf_tiny/vww_96_int8.tflite"
    rows = []
    exported = ""
    for label, upd, qas in (("classifier only", "classifier", True), ("bias + classifier", "bias", True),
                            ("sparse", sparse, True), ("sparse, QAS off", sparse, False)):
        with tempfile.TemporaryDirectory() as td:
            out = Path(td) / "trained.tflite" if label == "sparse" else None
            before, after, doc = _transfer_run(model, upd, lr, epochs, n, qas, output=out)
        if out is not None and doc.get("exported_bit_exact") is not None:
            exported = (f"exported sparse model on TFLM: {100 * doc['exported_accuracy_tflm']:.2f} %, outputs "
                        + ("byte for byte equal to tinyc's" if doc["exported_bit_exact"] else "DIFFERENT from tinyc's"))
        rows.append((label, upd, before, after, doc["peak_sram_bytes"], doc["seconds_per_step"]))
        print(f"  {label:<20} {100 * after:6.2f} %", flush=True)
    ref = _float_reference(model, sparse, lr, epochs, n)
    print(f"\nvww_96_int8 (person detector) fine-tuned to CIFAR-10 at 96x96: {epochs} epoch(s), lr {lr}, "
          f"{n or 5000} training images, 2,000 test images")
    print(f"{'update':<22} {'scheme':<40} {'before':>7} {'after':>7} {'peak SRAM':>11} {'ms/step':>8}")
    for label, upd, before, after, peak, sec in rows:
        print(f"{label:<22} {upd[:40]:<40} {100 * before:6.2f}% {100 * after:6.2f}% {peak:>11,} {1000 * sec:>8.1f}")
    print(f"{'float reference':<22} {'same update mask, float64 SGD':<40} {'':>7} {100 * ref:6.2f}%")
    if exported:
        print(exported)


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("what", nargs="?", default="all", choices=("all", "memory", "transfer", "imagenet"))
    ap.add_argument("--epochs", type=int, default=6)
    ap.add_argument("--n", type=int, default=None)
    ap.add_argument("--lr", type=float, default=0.02)
    ap.add_argument("--sparse", default=f"sparse:{HERE / 'schemes' / 'vww96_cifar.toml'}")
    ap.add_argument("--rounding", default="accumulate")
    a = ap.parse_args()
    if a.what in ("all", "memory"):
        memory_table(a.rounding)
        print()
    if a.what in ("all", "transfer"):
        transfer(a.epochs, a.n, a.lr, a.sparse)
    if a.what == "imagenet":
        model = MODELS / "hanlab/mcunet-320kb-1mb_imagenet.tflite"
        for label, upd in (("classifier only", "classifier"), ("sparse", "auto")):
            before, after, doc = _transfer_run(model, upd, a.lr, a.epochs, a.n)
            print(f"mcunet-320kb ImageNet -> CIFAR-10 {label}: {100 * before:.2f} % -> {100 * after:.2f} %")


if __name__ == "__main__":
    main()
