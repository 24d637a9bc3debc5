"""The `tinyc` command line. Exit codes: 0 ok, 1 a check failed, 2 bad input or usage.

Errors print one line (`tinyc: error: ...`) and no traceback unless --debug.
"""

from __future__ import annotations

import argparse
import os
import sys
import time
from pathlib import Path
from typing import Callable, Sequence

import numpy as np

from tinyc import __version__
from tinyc.errors import BadInput, CheckFailed, TinycError
from tinyc.arguments import add_compile_arguments


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> None:  # usage errors exit 2 with one line, as argparse does
        self.print_usage(sys.stderr)
        self.exit(2, f"tinyc: error: {message}\n")


def _add_common(p: argparse.ArgumentParser) -> None:
    p.add_argument("--debug", action="store_true", help="show tracebacks")


def _cmd_compile(args: argparse.Namespace) -> int:
    from tinyc.compiler import Options, compile_model
    from tinyc.report.report import build_report
    from tinyc.report.text import render_text
    from tinyc.arguments import compile_options
    from tinyc.target.boards import get_board

    out = Path(args.output)
    board = get_board(args.board, [Path(d) for d in args.boards_dir])
    t0 = time.perf_counter()
    options = Options(prefix=args.name, alignment=args.align or board.alignment, **compile_options(args))
    trained = None
    if args.train:
        from tinyc.train.commands import train_options
        from tinyc.train.compile import compile_training

        trained = compile_training(args.model, train_options(args, args.classes), options)
        compiled = trained.compiled
    else:
        compiled = compile_model(args.model, options)
    files = compiled.files()
    if out.exists() and not out.is_dir():
        raise BadInput(f"{out} exists and is not a folder")
    if out.exists() and not args.force and any(out.iterdir()):
        clash = [f for f in list(files) + ["runtime", "Makefile", "main.c"] if (out / f).exists()]
        raise BadInput(f"{out}/ is not empty (would overwrite {', '.join(clash[:4]) or 'its contents'}); "
                       f"use --force to replace the generated files")
    written = compiled.write(out)
    if board.cpu != "host":
        from tinyc.target.project import write_firmware_project

        write_firmware_project(out, board, [p.name for p in written if p.suffix == ".c" and p.parent == out],
                               name=compiled.program.name, extra_dirs=[Path(d) for d in args.boards_dir])
    dt = time.perf_counter() - t0
    print(f"tinyc: compiled {compiled.model_file} for {board.name} ({len(compiled.source_graph.ops)} ops, "
          f"{sum(compiled.macs):,} MACs) in {dt:.2f} s -> {out}/")
    if trained is not None:
        from tinyc.train.report import training_report

        print(training_report(trained, board, model=args.model, options=options).text())
        return 0
    rep = build_report(compiled, board)
    print(render_text(rep, max_layers=None if args.verbose else 40))
    if args.strict and rep.fits is False:
        raise CheckFailed(f"{compiled.model_file} does not fit {board.name}: "
                          + "; ".join(rep.advice))
    return 0


def _load_npy(path: str) -> np.ndarray:
    p = Path(path)
    if not p.is_file():
        raise BadInput(f"{p}: no such input file")
    try:
        return np.load(p, allow_pickle=False)
    except Exception as e:
        raise BadInput(f"{p}: not a readable .npy file ({e})") from e


def _cmd_run(args: argparse.Namespace) -> int:
    from tinyc.arguments import compile_options
    from tinyc.compiler import Options, compile_model
    from tinyc.target.host import run_host

    options = Options(**compile_options(args))
    compiled = compile_model(args.model, options)
    g = compiled.graph
    if len(g.inputs) == 1:
        xs = [_load_npy(args.input)]
    else:
        if not args.input.endswith(".npz"):
            raise BadInput(f"the model has {len(g.inputs)} inputs: give them as an .npz with arrays in input order")
        z = np.load(args.input)
        xs = [z[k] for k in z.files]
    fixed = []
    for k, (x, name) in enumerate(zip(xs, g.inputs)):
        t = g.t(name)
        if x.dtype != np.dtype(t.dtype):
            raise BadInput(f"input {k}: {args.input} holds {x.dtype}, the model input is {t.dtype}{list(t.shape)}")
        if x.shape == tuple(t.shape) or (x.size == t.size and x.shape[:1] != (1,) and x.ndim < len(t.shape)):
            x = x.reshape((1, *t.shape))
        if x.size % t.size or (x.ndim >= 1 and int(np.prod(x.shape[1:])) != t.size):
            raise BadInput(f"input {k}: shape {list(x.shape)} is not a batch of {list(t.shape)} "
                           f"(leading axis = batch)")
        fixed.append(x)
    outs = run_host(args.model, fixed, options=options, sanitize=args.sanitize)
    dest = Path(args.output)
    if dest.exists() and not args.force:
        raise BadInput(f"{dest} exists; use --force to overwrite it")
    if dest.suffix == ".npz":
        np.savez(dest, **{f"output_{i}": o for i, o in enumerate(outs)})
    else:
        np.save(dest, outs[0])
    print(f"tinyc: ran {fixed[0].shape[0]} input(s) -> {dest}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    p = _Parser(prog="tinyc", description="int8 TFLite models to static-memory C for microcontrollers")
    p.add_argument("--version", action="version", version=f"tinyc {__version__}")
    sub = p.add_subparsers(dest="command", metavar="COMMAND", parser_class=_Parser)

    c = sub.add_parser("compile", help="compile a model into a C project")
    c.add_argument("model")
    c.add_argument("--board", default="stm32f746g_disco", help="target board (default: stm32f746g_disco; "
                   "`host` for a plain C library); see `tinyc boards`")
    c.add_argument("-o", "--output", default="out", help="output folder (default: out/)")
    c.add_argument("--name", default="tinyc", help="C symbol prefix, so several models can share a firmware")
    c.add_argument("--align", type=int, default=0, help="arena buffer alignment in bytes (default: the board's)")
    c.add_argument("--strict", action="store_true", help="exit 1 when the model does not fit the board")
    c.add_argument("-v", "--verbose", action="store_true", help="print every layer of the report")
    c.add_argument("--boards-dir", action="append", default=[], help="extra folder of board .toml files")
    c.add_argument("--force", action="store_true", help="overwrite existing files in the output folder")
    add_compile_arguments(c)
    c.add_argument("--train", action="store_true", help="also compile a training step: <name>_train_step(label) "
                   "and the training report (see tinyc train)")
    c.add_argument("--classes", type=int, default=None, help="with --train: a fresh N-way classifier head")
    from tinyc.train.commands import add_train_arguments

    add_train_arguments(c)
    _add_common(c)
    c.set_defaults(func=_cmd_compile)

    r = sub.add_parser("run", help="run the generated C on the host over a batch of inputs")
    r.add_argument("model")
    r.add_argument("--input", required=True, help=".npy with a leading batch axis (.npz for several inputs)")
    r.add_argument("--output", required=True, help=".npy (output 0) or .npz (every output)")
    r.add_argument("--sanitize", action="store_true", help="build with AddressSanitizer and UBSan")
    r.add_argument("--force", action="store_true", help="overwrite the output file")
    add_compile_arguments(r)
    _add_common(r)
    r.set_defaults(func=_cmd_run)

    for register in _extensions():
        register(sub)
    for sp in sub.choices.values():
        if not any(a.dest == "debug" for a in sp._actions):
            _add_common(sp)
    return p


def _extensions() -> list[Callable[[argparse._SubParsersAction], None]]:
    """Subcommands that live with their stage (boards/build/flash in target/, report, validate)."""
    found = []
    for mod, fn in (("tinyc.target.commands", "add_commands"), ("tinyc.report.commands", "add_commands"),
                    ("tinyc.validate.commands", "add_commands"), ("tinyc.train.commands", "add_commands")):
        try:
            m = __import__(mod, fromlist=[fn])
        except ImportError:
            continue
        found.append(getattr(m, fn))
    return found


def main(argv: Sequence[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    try:
        return int(args.func(args) or 0)
    except TinycError as e:
        if args.debug:
            raise
        print(f"tinyc: error: {e}".splitlines()[0] if "\n" in str(e) and not args.debug else f"tinyc: error: {e}",
              file=sys.stderr)
        return e.exit_code
    except KeyboardInterrupt:
        print("tinyc: interrupted", file=sys.stderr)
        return 130
    except BrokenPipeError:  # `tinyc report ... | head`: the reader left, nothing is wrong
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())  # no second error at exit
        return 0


if __name__ == "__main__":
    sys.exit(main())
