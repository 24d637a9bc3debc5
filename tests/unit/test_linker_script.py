"""Linker script and project generation from board regions (no toolchain needed)."""

import re
import shutil
from pathlib import Path

import pytest

from tinyc.errors import BadInput
from tinyc.target.boards import get_board
from tinyc.target.project import link_regions, read_project, write_firmware_project

FAKE = Path(__file__).parents[1] / "board" / "fake_model"


def project(tmp_path, board):
    d = tmp_path / board
    shutil.copytree(FAKE, d)
    write_firmware_project(d, get_board(board), ["model.c"])
    return d


def test_f746_contiguous_ram_is_one_linker_region():
    runs = link_regions(get_board("stm32f746g_disco"), get_board("mps2_an500"))
    assert [(r.name, r.origin, r.length, r.emu_origin) for r in runs] == [
        ("FLASH", 0x08000000, 0x100000, 0x0), ("DTCM_SRAM1_SRAM2", 0x20000000, 320 * 1024, 0x20000000)]


def test_h743_regions_packed_for_qemu():
    runs = link_regions(get_board("nucleo_h743zi"), get_board("mps2_an500"))
    ram = [r for r in runs if r.kind == "ram"]
    assert [r.name for r in ram] == ["DTCM", "AXI_SRAM", "SRAM1_SRAM2_SRAM3", "SRAM4"]
    # lengths kept, origins packed into the machine's 4 MB at 0x20000000, order kept
    assert ram[1].emu_origin == 0x20000000 + 128 * 1024 and ram[1].length == 512 * 1024
    assert ram[-1].emu_origin + ram[-1].length <= 0x20400000


def test_linker_script_content(tmp_path):
    d = project(tmp_path, "nucleo_h743zi")
    ld = (d / "tinyc.ld").read_text()
    assert "AXI_SRAM (rwx) : ORIGIN = __tinyc_origin_AXI_SRAM, LENGTH = 0x80000" in ld
    assert re.search(r"\.tinyc_arena \(NOLOAD\).*?\} > AXI_SRAM", ld, re.S)
    assert re.search(r"\.stack \(NOLOAD\).*?\} > DTCM", ld, re.S)
    assert "tinyc: does not fit" in ld
    mk = (d / "Makefile").read_text()
    assert "--defsym=__tinyc_origin_FLASH=0x00000000" in mk and "--defsym=__tinyc_origin_AXI_SRAM=0x20020000" in mk
    assert "-mcpu=cortex-m7" in mk and "-Wall -Wextra -Werror" in mk and "--print-memory-usage" in mk
    assert "-fstack-usage" in mk and "uart_stm32.c" in mk
    for f in ("main.c", "startup.c", "tinyc_board.h", "uart_cmsdk.c", "uart_stm32.c", "CMakeLists.txt"):
        assert (d / f).exists()
    assert read_project(d)["emulate_with"] == "mps2_an500"


def test_qemu_board_project(tmp_path):
    d = project(tmp_path, "mps2_an505")
    assert "0x50200000" in (d / "tinyc_board.h").read_text()
    assert not (d / "uart_stm32.c").exists()


def test_host_and_missing_model(tmp_path):
    with pytest.raises(BadInput, match="host"):
        write_firmware_project(tmp_path, get_board("host"), ["model.c"])
    with pytest.raises(BadInput, match="no model.h"):
        write_firmware_project(tmp_path, get_board("mps2_an500"), ["model.c"])
    with pytest.raises(BadInput, match="not a tinyc firmware project"):
        read_project(tmp_path)
