"""Where the team's shared, read-only models and data live (tests, benchmarks, the demo).

$TINYC_SHARED wins; otherwise the first `shared/` folder with a `models/` inside, looking next
to the repository and then in /work (where the workplace keeps it).
"""

from __future__ import annotations

import os
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def shared_dir() -> Path:
    env = os.environ.get("TINYC_SHARED")
    if env:
        return Path(env)
    for cand in (REPO.parent / "shared", REPO.parent.parent / "shared", Path("/work/shared")):
        if (cand / "models").is_dir():
            return cand
    return REPO.parent / "shared"
