"""The report as text: the per-layer timeline, then the totals with their provenance, then the fit."""

from __future__ import annotations

from tinyc.report.report import Report


def _shape(shapes: list[list[int]]) -> str:
    return " ".join("x".join(map(str, s)) or "scalar" for s in shapes)


def render_text(rep: Report, max_layers: int | None = None) -> str:
    lines = [f"tinyc peak-SRAM report: {rep.model} on {rep.board}", ""]
    hdr = f"{'#':>4} {'op':<22} {'input':<16} {'output':<16} {'MACs':>13} {'live B':>10} {'arena HW':>10}"
    lines += [hdr, "-" * len(hdr)]
    rows = rep.layers if max_layers is None else rep.layers[:max_layers]
    for r in rows:
        mark = "  <- peak" if r.is_peak else ""
        lines.append(f"{r.index:>4} {r.op[:22]:<22} {_shape(r.inputs)[:16]:<16} {_shape(r.outputs)[:16]:<16} "
                     f"{r.macs:>13,} {r.live_bytes:>10,} {r.high_water_bytes:>10,}{mark}")
    if max_layers is not None and len(rep.layers) > max_layers:
        lines.append(f"     ... {len(rep.layers) - max_layers} more layers (tinyc report shows all)")
    peak = rep.peak_layer
    lb = rep.lower_bound.bytes or 0
    gap = (rep.arena.bytes or 0) / lb - 1 if lb else 0.0

    def fig(label: str, f, extra: str = "") -> str:
        val = f"{f.bytes:,} B" if f.bytes is not None else "n/a"
        return f"  {label:<20} {val:>14}  ({f.how}){extra}"

    lines += ["", "Totals"]
    lines.append(fig("activation arena", rep.arena, f", planner {rep.planner}, {gap * 100:.1f} % above lower bound"
                     + (f"; peak at layer #{peak.index} {peak.op}" if peak else "")))
    lines.append(fig("  lower bound", rep.lower_bound, " = largest live set"))
    lines.append(fig("  of which scratch", rep.scratch))
    lines.append(f"  {'  of which model I/O':<20} {rep.io_bytes:>12,} B  (inside the arena, always counted)")
    lines.append(fig("runtime static data", rep.static_data))
    lines.append(fig("stack", rep.stack))
    lines.append(f"  {'peak SRAM':<20} {rep.peak_sram_bytes:>12,} B  (arena + static data + stack)")
    lines.append(fig("weights (flash)", rep.weights))
    lines.append(fig("code (flash)", rep.code))
    lines.append(f"  {'flash':<20} {rep.flash_bytes:>12,} B")
    if rep.regions:
        lines += ["", f"Board {rep.board}"]
        for r in rep.regions:
            verdict = "fits" if r.fits else "DOES NOT FIT"
            lines.append(f"  {r.name:<20} {r.used:>12,} / {r.capacity:,} B  {verdict}, margin {r.margin:+,} B")
        for a in rep.advice:
            lines.append(f"  -> {a}")
    return "\n".join(lines)
