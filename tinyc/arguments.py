"""The compile flags shared by every command that compiles a model (compile, report, validate):
patch-based inference and the input type."""

from __future__ import annotations

import argparse
from typing import Any


def add_compile_arguments(p: argparse.ArgumentParser) -> None:
    p.add_argument("--input-type", choices=("model", "int8"), default="model",
                   help="model (default): inputs as the model declares them; int8: a float32 input that the "
                        "model quantizes first is taken as int8 instead (the QUANTIZE is dropped; scale and zero "
                        "point are in model.h), which saves 3 bytes per input element of SRAM")
    p.add_argument("--patch", default="auto", metavar="MODE",
                   help="patch-based inference for the memory-heavy first stage: auto (default: the split and "
                        "grid with the smallest peak SRAM within the MAC budget, or none when no split helps), "
                        "off, or NxM@LAYER (an NxM grid ending at model op LAYER, the '#' of tinyc report)")
    p.add_argument("--patch-max-overhead", type=float, default=0.10, metavar="FRACTION",
                   help="most extra MACs patches may cost with --patch auto, as a fraction of the model's "
                        "MACs (default 0.10)")
    p.add_argument("--patch-input", choices=("whole", "stream"), default="whole",
                   help="whole (default): the model input sits in the arena, written through <name>_input(); "
                        "stream: the patch stage fetches only the boxes it needs through <name>_read_input(), "
                        "which your application implements (camera, external RAM), so the input never "
                        "occupies SRAM whole")


def compile_options(args: argparse.Namespace) -> dict[str, Any]:
    """Keyword arguments for tinyc.compiler.Options."""
    return {"patch": getattr(args, "patch", "auto"), "patch_max_overhead": getattr(args, "patch_max_overhead", 0.10),
            "patch_input": getattr(args, "patch_input", "whole"), "input_type": getattr(args, "input_type", "model")}
