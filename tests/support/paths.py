"""Where the shared, read-only models and data live (next to the repository by default)."""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("TINYC_SHARED", REPO.parent / "shared"))
MODELS = SHARED / "models"
DATA = SHARED / "data"


def all_models() -> list[Path]:
    return sorted(MODELS.glob("*/*.tflite"))
