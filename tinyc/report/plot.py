"""The memory timeline as a picture: bytes live per layer, stacked by tensor, the board's SRAM as a line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinyc.compiler import Compiled
from tinyc.errors import BadInput
from tinyc.report.report import Report


MAX_SERIES = 40


def _series(c: Compiled, steps: int) -> list[tuple[str, list[int]]]:
    """Bytes per step for each tensor; patch tensors (one per patch) are summed into one series and
    beyond MAX_SERIES the smallest tensors into "other", so the picture stays readable."""
    per: dict[str, list[int]] = {}
    for b in sorted(c.plan.buffers, key=lambda b: (b.first, b.name)):
        key = "patch tensors" if "@" in b.name else ("scratch" if b.name.startswith("scratch") else b.name)
        row = per.setdefault(key, [0] * steps)
        for s in range(max(b.first, 0), min(b.last, steps - 1) + 1):
            row[s] += b.size
    items = sorted(per.items(), key=lambda kv: -max(kv[1], default=0))
    if len(items) > MAX_SERIES:
        rest = [sum(col) for col in zip(*(v for _, v in items[MAX_SERIES - 1:]))]
        items = items[:MAX_SERIES - 1] + [("other", rest)]
    return items


def plot_timeline(c: Compiled, rep: Report, board: Any, dest: Path) -> None:
    if dest.suffix.lower() not in (".png", ".svg"):
        raise BadInput(f"{dest}: --plot writes .png or .svg")
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    steps = len(c.graph.ops)
    fig, ax = plt.subplots(figsize=(min(max(6, steps * 0.12), 24), 4))
    series = _series(c, steps)
    if series:
        ax.stackplot(range(steps), *[v for _, v in series], step="mid", linewidth=0)
    ram = next((r.capacity for r in rep.regions if r.kind == "ram"), None)
    if ram:
        ax.axhline(ram, color="red", linestyle="--", label=f"{rep.board} SRAM {ram:,} B")
        ax.legend(loc="upper right")
    ax.set_xlabel("layer (schedule step" + (", patch layers once per patch)" if rep.patch.get("grid") else ")"))
    ax.set_ylabel("bytes live")
    ax.set_title(f"{rep.model}: arena {rep.arena.bytes:,} B, peak SRAM {rep.peak_sram_bytes:,} B")
    fig.tight_layout()
    fig.savefig(dest)
    plt.close(fig)
