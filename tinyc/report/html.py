"""The report as one self-contained HTML page: totals, fit, patch plan, the layer table and the
memory timeline inlined as SVG (no external files, so it can be attached to a ticket)."""

from __future__ import annotations

import html
import tempfile
from pathlib import Path
from typing import Any

from tinyc.compiler import Compiled
from tinyc.report.plot import plot_timeline
from tinyc.report.report import Report
from tinyc.report.text import _collapse_patches, render_text

_STYLE = """body{font-family:system-ui,sans-serif;margin:2em;color:#222}table{border-collapse:collapse;font-size:13px}
td,th{padding:2px 8px;border-bottom:1px solid #ddd;text-align:right}td.l,th.l{text-align:left}
tr.peak{background:#ffe9a8}.bad{color:#b00020;font-weight:bold}.ok{color:#137333}pre{background:#f6f6f6;padding:1em}"""


def render_html(c: Compiled, rep: Report, board: Any) -> str:
    with tempfile.TemporaryDirectory(prefix="tinyc-html") as td:
        svg_path = Path(td) / "timeline.svg"
        plot_timeline(c, rep, board, svg_path)
        svg = svg_path.read_text()
    svg = svg[svg.find("<svg"):]
    e = html.escape
    fits = rep.fits
    verdict = {True: "<span class=ok>fits</span>", False: "<span class=bad>does not fit</span>",
               None: "no board limits (host)" if not rep.regions else "fits what is known (toolchain missing)"}[fits]
    rows = []
    for r, n in _collapse_patches(rep.layers):
        op = r.op if n == 1 else f"{r.op} ×{n}"
        shapes = " ".join("x".join(map(str, s)) for s in r.inputs), " ".join("x".join(map(str, s)) for s in r.outputs)
        rows.append(f"<tr{' class=peak' if r.is_peak else ''}><td>{r.index}</td><td class=l>{e(op)}</td>"
                    f"<td class=l>{e(shapes[0])}</td><td class=l>{e(shapes[1])}</td><td>{r.macs:,}</td>"
                    f"<td>{r.live_bytes:,}</td><td>{r.high_water_bytes:,}</td></tr>")
    totals = render_text(rep).split("\nTotals", 1)[1]
    return f"""<!doctype html>
<html><head><meta charset="utf-8"><title>tinyc report: {e(rep.model)} on {e(rep.board)}</title>
<style>{_STYLE}</style></head><body>
<h1>{e(rep.model)} on {e(rep.board)}: peak SRAM {rep.peak_sram_bytes:,} B, {verdict}</h1>
<p>arena {rep.arena.bytes:,} B (lower bound {rep.lower_bound.bytes:,} B), flash {rep.flash_bytes:,} B.</p>
{svg}
<h2>Totals, patch plan and fit</h2>
<pre>Totals{e(totals)}</pre>
<h2>Layers</h2>
<table><tr><th>#</th><th class=l>op</th><th class=l>input</th><th class=l>output</th><th>MACs</th>
<th>live B</th><th>arena high-water</th></tr>
{''.join(rows)}
</table>
</body></html>
"""
