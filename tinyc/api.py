"""The Python API: what tests, benchmarks and other tools call instead of the CLI."""

from __future__ import annotations

from pathlib import Path
from typing import Sequence

import numpy as np

from tinyc.compiler import Compiled, Options, compile_model
from tinyc.target.host import run_host

__all__ = ["Options", "Compiled", "compile_model", "run_on_host"]


def run_on_host(model: str | Path | bytes, inputs: Sequence[np.ndarray], options: Options = Options(),
                sanitize: bool = True) -> list[np.ndarray]:
    """Compile `model`, build the generated C for the host (AddressSanitizer + UBSan by default,
    so a kernel that reads out of bounds fails the run) and run it on a batch.

    inputs[i] has shape (N, *model_input_i.shape); the result is one array per model output
    shaped (N, *model_output.shape).
    """
    return run_host(model, inputs, options=options, sanitize=sanitize)
