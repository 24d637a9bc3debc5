"""The report as text: the per-layer timeline, then the totals with their provenance, then the fit."""

from __future__ import annotations

from tinyc.report.report import LayerRow, Report


def _collapse_patches(rows: list[LayerRow]) -> list[tuple[LayerRow, int]]:
    """One row per op of a patch stage (MACs summed, bytes the worst patch), with its patch count."""
    out: list[tuple[LayerRow, int]] = []
    stage: dict[tuple[int, str, str], int] = {}
    for r in rows:
        if r.patch is None:
            stage = {}
            out.append((r, 1))
            continue
        key = (r.index, r.op, str(r.outputs))
        if r.patch == (0, 0) and r.op != "TINYC_CROP" and key in stage:
            stage = {}
        k = next((i for kk, i in stage.items() if kk[:2] == key[:2]), None) if r.patch != (0, 0) else None
        if k is None:
            stage[key] = len(out)
            out.append((r, 1))
        else:
            prev, n = out[k]
            out[k] = (LayerRow(**{**prev.__dict__, "macs": prev.macs + r.macs,
                                  "live_bytes": max(prev.live_bytes, r.live_bytes),
                                  "high_water_bytes": max(prev.high_water_bytes, r.high_water_bytes),
                                  "is_peak": prev.is_peak or r.is_peak}), n + 1)
    return out


def _shape(shapes: list[list[int]]) -> str:
    return " ".join("x".join(map(str, s)) or "scalar" for s in shapes)


def render_text(rep: Report, max_layers: int | None = None) -> str:
    lines = [f"tinyc peak-SRAM report: {rep.model} on {rep.board}", ""]
    hdr = f"{'#':>4} {'op':<22} {'input':<16} {'output':<16} {'MACs':>13} {'live B':>10} {'arena HW':>10}"
    lines += [hdr, "-" * len(hdr)]
    collapsed = _collapse_patches(rep.layers)
    rows = collapsed if max_layers is None else collapsed[:max_layers]
    for r, n in rows:
        mark = "  <- peak" if r.is_peak else ""
        op = r.op if n == 1 else f"{r.op} x{n}"
        shapes = (_shape(r.inputs), _shape(r.outputs)) if n == 1 else (_shape(r.inputs) + "*", _shape(r.outputs) + "*")
        lines.append(f"{r.index:>4} {op[:22]:<22} {shapes[0][:16]:<16} {shapes[1][:16]:<16} "
                     f"{r.macs:>13,} {r.live_bytes:>10,} {r.high_water_bytes:>10,}{mark}")
    if max_layers is not None and len(collapsed) > max_layers:
        lines.append(f"     ... {len(collapsed) - max_layers} more layers (tinyc report shows all)")
    if any(n > 1 for _, n in collapsed):
        lines.append("     x N: the layer runs once per patch; * shapes of the first patch; MACs summed over "
                     "patches, bytes of the worst patch")
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
    if rep.streamed_input_bytes:
        lines.append(f"  {'streamed input':<20} {rep.streamed_input_bytes:>12,} B  (not in SRAM: your application's "
                     "<name>_read_input() fetches the boxes from a camera, external RAM or flash; with "
                     "<NAME>_READ_INPUT_BUFFER tinyc's buffer reader holds it instead, adding these bytes)")
    if rep.input_note:
        lines.append(f"  {'model input':<20} {rep.input_note}")
    lines.append(fig("runtime static data", rep.static_data))
    lines.append(fig("stack", rep.stack))
    lines.append(f"  {'peak SRAM':<20} {rep.peak_sram_bytes:>12,} B  (arena + static data + stack)")
    lines.append(fig("weights (flash)", rep.weights))
    lines.append(fig("code (flash)", rep.code))
    lines.append(f"  {'flash':<20} {rep.flash_bytes:>12,} B")
    lines += ["", "Patch-based inference"]
    pt = rep.patch
    if pt.get("grid"):
        regions = pt.get("regions", [])
        sizes = sorted({(r["output"][1] - r["output"][0], r["output"][3] - r["output"][2]) for r in regions})
        ins = sorted({(b[1] - b[0], b[3] - b[2]) for r in regions for b in r["inputs"].values()})
        lines.append(f"  layers up to #{pt['split']} ({pt['split_op']}) run as a {pt['grid'][0]}x{pt['grid'][1]} grid "
                     f"of patches, +{pt['mac_overhead'] * 100:.1f} % MACs (halo recomputation), model input "
                     + ("streamed per patch" if pt.get("input") == "stream" else "kept whole in the arena"))
        lines.append(f"  patch output regions {', '.join(f'{h}x{w}' for h, w in sizes)}; input regions "
                     f"{', '.join(f'{h}x{w}' for h, w in ins) or '-'} (rows x cols)")
    else:
        lines.append("  none: layer-by-layer execution" + (" (--patch off)" if pt.get("mode") == "off" else
                                                           " (no split lowers the peak within the MAC budget)"))
    lines.append(f"  peak SRAM {rep.peak_sram_bytes:,} B with this plan, {rep.peak_sram_without_patches:,} B "
                 "layer by layer")
    if pt.get("grid") and rep.peak_sram_bytes > rep.peak_sram_without_patches:
        lines.append(f"  warning: this forced plan needs {rep.peak_sram_bytes - rep.peak_sram_without_patches:,} B more "
                     "than layer by layer; --patch auto would not pick it")
    for a in pt.get("alternatives", [])[:3]:
        size = f"arena {a['arena_bytes']:,} B" if a.get("arena_bytes") is not None else \
            f"estimated arena {a['estimate_bytes']:,} B"
        lines.append(f"  also considered: {a['grid'][0]}x{a['grid'][1]} up to #{a['split']}, {size}, "
                     f"+{a['mac_overhead'] * 100:.1f} % MACs")
    if rep.regions:
        lines += ["", f"Board {rep.board}"]
        for r in rep.regions:
            verdict = {True: "fits", False: "DOES NOT FIT",
                       None: "fits what is known (stack, static data or code unknown without arm-none-eabi-gcc)"
                       }[r.fits]
            lines.append(f"  {r.name:<20} {r.used:>12,} / {r.capacity:,} B  {verdict}, margin {r.margin:+,} B")
        for a in rep.advice:
            lines.append(f"  -> {a}")
    return "\n".join(lines)
