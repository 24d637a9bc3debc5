"""Where the shared, read-only models and data live (see tinyc/shared_data.py)."""

from __future__ import annotations

from pathlib import Path

from tinyc.shared_data import REPO, shared_dir

SHARED = shared_dir()
MODELS = SHARED / "models"
DATA = SHARED / "data"

__all__ = ["REPO", "SHARED", "MODELS", "DATA", "all_models"]


def all_models() -> list[Path]:
    return sorted(MODELS.glob("*/*.tflite"))
