"""The memory timeline as a picture: bytes live per layer, stacked by tensor, the board's SRAM as a line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinyc.compiler import Compiled
from tinyc.errors import BadInput
from tinyc.report.report import Report


def plot_timeline(c: Compiled, rep: Report, board: Any, dest: Path) -> None:
    if dest.suffix.lower() not in (".png", ".svg"):
        raise BadInput(f"{dest}: --plot writes .png or .svg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(c.graph.ops)
    fig, ax = plt.subplots(figsize=(max(6, steps * 0.12), 4))
    bottom = [0] * steps
    for b in sorted(c.plan.buffers, key=lambda b: (b.first, b.name)):
        h = [b.size if b.first <= s <= b.last else 0 for s in range(steps)]
        ax.bar(range(steps), h, bottom=bottom, width=0.9, linewidth=0)
        bottom = [x + y for x, y in zip(bottom, h)]
    ram = next((r.capacity for r in rep.regions if r.kind == "ram"), None)
    if ram:
        ax.axhline(ram, color="red", linestyle="--", label=f"{rep.board} SRAM {ram:,} B")
        ax.legend(loc="upper right")
    ax.set_xlabel("layer (schedule step)")
    ax.set_ylabel("bytes live")
    ax.set_title(f"{rep.model}: arena {rep.arena.bytes:,} B, peak SRAM {rep.peak_sram_bytes:,} B")
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)
