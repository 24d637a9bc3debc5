"""`tinyc validate MODEL --board B [--emulate] [--port P ...] [--data PATH] [-n N] [--json]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyc.arguments import add_compile_arguments, compile_options
from tinyc.errors import BadInput, CheckFailed


def _cmd_validate(args: argparse.Namespace) -> int:
    from tinyc.compiler import Options, compile_model
    from tinyc.target.boards import get_board
    from tinyc.validate.datasets import load_dataset
    from tinyc.validate.runner import validate

    dirs = [Path(d) for d in args.boards_dir]
    board = get_board(args.board, dirs)
    ports = list(args.port or [])
    if not ports and not (args.emulate or board.is_emulated or board.is_host):
        from tinyc.target.device import find_board_port

        ports = [find_board_port(board)]  # before compiling and building: a missing board fails fast
    compiled = compile_model(args.model, Options(alignment=board.alignment, **compile_options(args)))
    g = compiled.graph  # the inputs the firmware takes (--input-type int8 changes them)
    data = load_dataset(args.data, g.t(g.inputs[0]), args.n, augment=args.augment)
    res = validate(args.model, board, data, emulate=args.emulate, port=ports or None, jobs=args.jobs,
                   serial=args.serial, out=Path(args.output) if args.output else None, quiet=args.json,
                   compiled=compiled, extra_dirs=dirs)
    print(json.dumps(res.to_json(), indent=2) if args.json else res.text())
    if not res.bit_exact:
        raise CheckFailed(f"{res.mismatches} of {res.inputs} inputs differ from TFLM")
    return 0


def _cmd_profile(args: argparse.Namespace) -> int:
    from tinyc.compiler import Options, compile_model
    from tinyc.target.boards import get_board
    from tinyc.validate.profile import profile_on_qemu

    dirs = [Path(d) for d in args.boards_dir]
    board = get_board(args.board, dirs)
    if board.is_host:
        raise BadInput("tinyc profile counts instructions on an emulated Cortex-M board, not on the host: "
                       "pick one with --board (see tinyc boards), e.g. --board stm32f746g_disco --emulate")
    if not (board.is_emulated or args.emulate):
        raise BadInput(f"tinyc profile counts instructions under QEMU: add --emulate to profile on "
                       f"{board.name}'s emulated twin (real boards: tinyc validate reports whole-inference cycles)")
    compiled = compile_model(args.model, Options(alignment=board.alignment, **compile_options(args)))
    prof = profile_on_qemu(compiled, board, extra_dirs=dirs)
    print(json.dumps(prof.to_json(), indent=2) if args.json else prof.text(top=None if args.all else 25))
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    v = sub.add_parser("validate", help="run a model on a board (or its emulation) against TFLM on real data")
    v.add_argument("model")
    v.add_argument("--board", default="stm32f746g_disco")
    v.add_argument("--boards-dir", action="append", default=[], help="extra folder of board .toml files")
    v.add_argument("--emulate", action="store_true", help="run the board's build under QEMU (same CPU, same limits)")
    v.add_argument("--port", action="append",
                   help="serial port of a real board (/dev/ttyACM0, socket://..., rfc2217://...); repeat it to "
                        "split the inputs over several boards flashed with the same firmware; default: the one "
                        "port with the board's USB VID:PID")
    v.add_argument("--data", help="folder of images + labels.csv, Wake Vision .parquet, .npy, or 'random'")
    v.add_argument("-n", type=int, default=None, help="use at most N inputs")
    v.add_argument("--augment", action="store_true",
                   help="an image folder smaller than -n is cycled with seeded random crops/flips/brightness to N")
    v.add_argument("--jobs", type=int, default=1,
                   help="QEMU instances in parallel (emulated boards; real boards run one job per --port)")
    v.add_argument("--serial", action="store_true", help="emulated boards: send inputs over the UART, as real boards")
    v.add_argument("-o", "--output", help="keep the firmware project in this folder")
    v.add_argument("--json", action="store_true", help="print one JSON document")
    add_compile_arguments(v)
    v.set_defaults(func=_cmd_validate)

    pr = sub.add_parser("profile", help="instructions per layer of one inference on an emulated board")
    pr.add_argument("model")
    pr.add_argument("--board", default="stm32f746g_disco")
    pr.add_argument("--boards-dir", action="append", default=[], help="extra folder of board .toml files")
    pr.add_argument("--emulate", action="store_true", help="profile the board's build under QEMU (required for a "
                    "real board: counts come from QEMU's instruction-count plugin)")
    pr.add_argument("--all", action="store_true", help="list every layer in schedule order (default: the 25 "
                    "costliest)")
    pr.add_argument("--json", action="store_true", help="print one JSON document")
    add_compile_arguments(pr)
    pr.set_defaults(func=_cmd_profile)
