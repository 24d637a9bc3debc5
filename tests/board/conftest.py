"""Board tests: build real firmware with arm-none-eabi-gcc and run it under QEMU (slow)."""

import shutil
from pathlib import Path

import pytest

FAKE_MODEL = Path(__file__).parent / "fake_model"


def pytest_configure(config):
    config.addinivalue_line("markers", "board: builds firmware and runs it under QEMU (slow; needs "
                                       "gcc-arm-none-eabi and qemu-system-arm)")


def pytest_collection_modifyitems(config, items):
    missing = [t for t in ("arm-none-eabi-gcc", "qemu-system-arm", "make") if shutil.which(t) is None]
    if missing:
        skip = pytest.mark.skip(reason=f"not installed: {', '.join(missing)}")
        for item in items:
            if "board" in item.keywords:
                item.add_marker(skip)


@pytest.fixture
def fake_project(tmp_path):
    """Copy the fake model (follows the compiler's model.h contract) into a fresh project dir."""
    from tinyc.target.boards import get_board
    from tinyc.target.project import write_firmware_project

    def make(board: str, arena: int | None = None) -> Path:
        d = tmp_path / board
        shutil.copytree(FAKE_MODEL, d)
        if arena is not None:
            h = d / "model.h"
            h.write_text(h.read_text().replace("#define TINYC_FAKE_ARENA 256u", f"#define TINYC_FAKE_ARENA {arena}u"))
        write_firmware_project(d, get_board(board), ["model.c"])
        return d

    return make
