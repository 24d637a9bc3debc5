"""CLI subcommands of the target layer: `tinyc boards`, `tinyc build`, `tinyc flash`.

``add_commands(subparsers)`` is called by tinyc/cli.py. Handlers raise tinyc.errors exceptions
(the CLI maps them to exit codes) and print their results to stdout.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from tinyc.errors import BadInput, CheckFailed
from tinyc.target.boards import Board, flash_bytes, format_board_table, load_boards, sram_bytes


def _boards_dir_arg(p: argparse.ArgumentParser) -> None:
    p.add_argument("--boards-dir", action="append", type=Path, default=[], metavar="DIR",
                   help="extra folder of board .toml files (also $TINYC_BOARDS)")


def add_commands(subparsers) -> None:
    p = subparsers.add_parser("boards", help="list the known boards with CPU, SRAM and flash")
    _boards_dir_arg(p)
    p.add_argument("--json", action="store_true", help="one JSON document")
    p.set_defaults(func=cmd_boards)

    p = subparsers.add_parser("build", help="cross-compile a generated project; print memory per region")
    p.add_argument("dir", type=Path)
    p.add_argument("--emulate", action="store_true", help="build for the QEMU machine with the same CPU")
    p.add_argument("-j", "--jobs", type=int, default=None)
    p.set_defaults(func=cmd_build)

    p = subparsers.add_parser("flash", help="program the board (pyOCD/OpenOCD/st-flash) or start QEMU")
    p.add_argument("dir", type=Path)
    p.add_argument("--board", default=None, help="board name or alias (default: the project's board)")
    p.add_argument("--emulate", action="store_true", help="run under QEMU instead of flashing")
    p.add_argument("--probe", default=None, help="debug probe serial number / unique id")
    p.add_argument("--timeout", type=float, default=3600.0, help="QEMU: stop after this many seconds")
    _boards_dir_arg(p)
    p.set_defaults(func=cmd_flash)


def cmd_boards(args: argparse.Namespace) -> int:
    boards = load_boards(args.boards_dir)
    if args.json:
        print(json.dumps([dict(name=b.name, aliases=list(b.aliases), cpu=b.cpu, fpu=b.fpu, clock_hz=b.clock_hz,
                               sram_bytes=sram_bytes(b), flash_bytes=flash_bytes(b), default=b.default,
                               qemu=b.qemu.machine if b.qemu else None, emulate_with=b.emulate_with or None,
                               regions=[dict(name=r.name, kind=r.kind, origin=r.origin, length=r.length)
                                        for r in b.memory]) for b in boards.values()], indent=2))
    else:
        print(format_board_table(boards))
    return 0


def cmd_build(args: argparse.Namespace) -> int:
    from tinyc.target.build import build_project, format_usage
    from tinyc.target.project import read_project

    meta = read_project(args.dir)
    res = build_project(args.dir, emulate=args.emulate, jobs=args.jobs)
    print(format_usage(res, meta["board"]))
    return 0


def cmd_flash(args: argparse.Namespace) -> int:
    from tinyc.target.flash import flash_board
    from tinyc.target.project import project_boards, read_project

    board, emu = project_boards(read_project(args.dir), args.boards_dir)
    if args.board and not board.named(args.board):
        raise BadInput(f"{args.dir} was generated for {board.name}, not {args.board}; recompile with --board")
    if args.emulate or board.is_emulated:
        return _run_qemu(args.dir, board, emu, args.timeout)
    tool = flash_board(args.dir, board, args.probe)
    print(f"flashed {board.name} with {tool}")
    return 0


def _run_qemu(project: Path, board: Board, emu: Board | None, timeout: float) -> int:
    """Start QEMU with the UART on a local TCP port and keep it running until it exits."""
    from tinyc.target.qemu import start_qemu

    if emu is None:
        raise BadInput(f"board {board.name} has no QEMU equivalent (set emulate_with in {board.source})")
    elf = Path(project) / "build-emu" / "firmware.elf"
    if not elf.exists():
        flag = "" if board.is_emulated else " --emulate"
        raise BadInput(f"{elf} does not exist; run `tinyc build {project}{flag}` first")
    q = start_qemu(elf, emu.qemu.machine, timeout=timeout)
    print(f"QEMU {emu.qemu.machine} running {board.name} firmware; serial port: {q.url} "
          f"(pyserial URL; the guest starts when you connect). Ctrl-C stops it.", flush=True)
    try:
        while q.alive():
            time.sleep(0.2)
        code = q.proc.returncode
    except KeyboardInterrupt:
        code = 0
    finally:
        q.close()
    if code not in (0, None):
        raise CheckFailed(f"QEMU exited with status {code}")
    return 0
