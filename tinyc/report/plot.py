"""The memory timeline as a picture: bytes live per layer, stacked by tensor, the board's SRAM as a line."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from tinyc.compiler import Compiled
from tinyc.errors import BadInput
from tinyc.report.report import Report


MAX_SERIES = 40


def _series(c: Compiled, steps: int) -> list[tuple[str, list[int]]]:
    """Arena bytes occupied per step for each tensor. Buffers that the planner overlaps (in place,
    overlapped outputs) share bytes: each shared byte is drawn once, for the buffer placed lower,
    so the stack is the real footprint and never rises above the arena. Patch tensors (one per
    patch) are summed into one series and beyond MAX_SERIES the smallest tensors into "other"."""
    plan = c.plan
    per: dict[str, list[int]] = {}
    for s in range(steps):
        live = sorted((b for b in plan.buffers if b.first <= s <= b.last), key=lambda b: (plan.offsets[b.name], b.name))
        covered = 0  # highest byte already drawn at this step
        for b in live:
            lo, hi = plan.offsets[b.name], plan.offsets[b.name] + b.size
            own = max(0, hi - max(lo, covered))
            covered = max(covered, hi)
            key = "patch tensors" if "@" in b.name else ("scratch" if b.name.startswith("scratch") else b.name)
            per.setdefault(key, [0] * steps)[s] += own
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
    ax.axhline(rep.arena.bytes or 0, color="black", linewidth=0.8, label=f"arena {rep.arena.bytes:,} B")
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
