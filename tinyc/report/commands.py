"""`tinyc report MODEL --board B [--json] [--plot F] [--strict]`."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from tinyc.errors import BadInput, CheckFailed
from tinyc.arguments import add_compile_arguments


def _cmd_report(args: argparse.Namespace) -> int:
    from tinyc.compiler import Options, compile_model
    from tinyc.report.report import build_report
    from tinyc.report.text import render_text
    from tinyc.arguments import compile_options
    from tinyc.target.boards import get_board

    board = get_board(args.board, [Path(d) for d in args.boards_dir])
    compiled = compile_model(args.model, Options(alignment=board.alignment, **compile_options(args)))
    rep = build_report(compiled, board)
    if args.json:
        print(json.dumps(rep.to_json(), indent=2))
    else:
        print(render_text(rep))
    if args.plot:
        from tinyc.report.plot import plot_timeline

        plot_timeline(compiled, rep, board, Path(args.plot))
    if args.html:
        from tinyc.report.html import render_html

        dest = Path(args.html)
        if dest.exists() and not args.force:
            raise BadInput(f"{dest} exists; use --force to overwrite it")
        dest.write_text(render_html(compiled, rep, board))
    if args.strict and rep.fits is False:
        over = [f"{r.name} by {-r.margin:,} B" for r in rep.regions if r.fits is False]
        raise CheckFailed(f"{compiled.model_file} does not fit {board.name}: over in {', '.join(over)}")
    return 0


def add_commands(sub: argparse._SubParsersAction) -> None:
    r = sub.add_parser("report", help="peak-SRAM report: per-layer timeline, totals, fit on a board")
    r.add_argument("model")
    r.add_argument("--board", default="stm32f746g_disco")
    r.add_argument("--boards-dir", action="append", default=[])
    r.add_argument("--json", action="store_true", help="print the report as one JSON document")
    r.add_argument("--plot", help="draw the memory timeline into FILE.png or FILE.svg")
    r.add_argument("--html", metavar="FILE.html", help="write one self-contained page: totals, fit, patch plan, "
                   "layer table and the timeline")
    r.add_argument("--force", action="store_true", help="overwrite an existing --html file")
    r.add_argument("--strict", action="store_true", help="exit 1 when the model does not fit the board")
    add_compile_arguments(r)
    r.set_defaults(func=_cmd_report)
