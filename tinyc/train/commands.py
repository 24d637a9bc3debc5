"""`tinyc train MODEL --data DIR [--classes N] [--update ...] [--epochs E] [--lr X] [-o trained.tflite]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from typing import TYPE_CHECKING

from tinyc.arguments import add_compile_arguments, compile_options

if TYPE_CHECKING:
    from tinyc.train.compile import TrainOptions


def add_train_arguments(p: argparse.ArgumentParser) -> None:
    """What to train and how: shared by `tinyc train` and `tinyc compile --train`."""
    from tinyc.train.compile import DEFAULT_LR, ROUNDINGS

    p.add_argument("--update", default=None, metavar="SCHEME",
                   help="what to train: classifier | bias | last:K | full | sparse:FILE (TOML/JSON with "
                        "n_bias_update, manual_weight_idx, weight_update_ratio) | auto (default)")
    p.add_argument("--lr", type=float, default=None, help=f"learning rate (default {DEFAULT_LR})")
    p.add_argument("--momentum", type=float, default=0.0, help="SGD momentum (default 0: none, no momentum buffers)")
    p.add_argument("--no-qas", action="store_true", help="turn quantization-aware scaling off (ablation)")
    p.add_argument("--rounding", choices=ROUNDINGS, default="accumulate",
                   help="accumulate (default): a 2-byte residual per trained element keeps what rounding to "
                        "int8 drops; stochastic: unbiased random rounding, no memory per element")


def train_options(args: argparse.Namespace, classes: int | None) -> "TrainOptions":
    from tinyc.train.compile import DEFAULT_LR, TrainOptions

    return TrainOptions(update=args.update, classes=classes, qas=not args.no_qas, momentum=args.momentum,
                        learning_rate=DEFAULT_LR if args.lr is None else args.lr, rounding=args.rounding)


def _cmd_train(args: argparse.Namespace) -> int:
    from tinyc.compiler import Options
    from tinyc.target.boards import get_board
    from tinyc.train.session import train_on_host

    board = get_board(args.board, [Path(d) for d in args.boards_dir])
    res = train_on_host(args.model, args.data, eval_data=args.eval_data, classes=args.classes, update=args.update,
                        epochs=args.epochs, lr=args.lr, qas=not args.no_qas, momentum=args.momentum, n=args.n,
                        seed=args.seed, output=Path(args.output) if args.output else None, force=args.force,
                        progress=not args.json, options=Options(alignment=board.alignment, **compile_options(args)),
                        rounding=args.rounding, board=board)
    print(json.dumps(res.to_json(), indent=2) if args.json else res.text())
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    from tinyc.train.session import DEFAULT_EPOCHS

    t = sub.add_parser("train", help="fine-tune a model on labelled data (the generated training step, on the host)")
    t.add_argument("model")
    t.add_argument("--data", required=True, help="training data: a folder with one sub-folder of images per class, "
                   "a Wake Vision folder (images + labels CSV), or a .npz with x and y")
    t.add_argument("--eval-data", help="held-out data in the same classes (default: a stratified 20 %% of --data)")
    t.add_argument("--classes", type=int, help="number of classes (default: the data's; a model whose head has "
                   "another count gets a fresh N-way classifier)")
    add_train_arguments(t)
    t.add_argument("--epochs", type=int, default=DEFAULT_EPOCHS, help=f"passes over the data (default {DEFAULT_EPOCHS})")
    t.add_argument("-n", type=int, default=None, help="train on N samples (after a seeded shuffle)")
    t.add_argument("--seed", type=int, default=0, help="shuffle and split seed (default 0)")
    t.add_argument("-o", "--output", help="write the trained model here (.tflite, same structure and quantization)")
    t.add_argument("--force", action="store_true", help="overwrite --output")
    t.add_argument("--json", action="store_true", help="print one JSON document")
    t.add_argument("--board", default="stm32f746g_disco", help="the board whose peak SRAM is reported (training "
                   "runs on the host here; default stm32f746g_disco)")
    t.add_argument("--boards-dir", action="append", default=[], help="extra folder of board .toml files")
    add_compile_arguments(t)
    t.set_defaults(func=_cmd_train)
