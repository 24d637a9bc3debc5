"""Boards as data: loading, aliases, errors, user folders."""

from pathlib import Path

import pytest

from tinyc.errors import BadInput
from tinyc.target.boards import (DEFAULT_BOARD, emulation_board, flash_bytes, format_board_table,
                                 get_board, load_boards, sram_bytes)

REQUIRED = ["stm32f746g_disco", "nucleo_f767zi", "nucleo_h743zi", "nucleo_l4r5zi", "stm32f412g_disco",
            "mps2_an500", "mps2_an386", "mps2_an505", "host"]


def test_all_required_boards_load():
    boards = load_boards()
    for name in REQUIRED:
        assert name in boards


def test_f746_regions_not_one_number():
    b = get_board("stm32f746")
    assert b.name == "stm32f746g_disco" and b.default
    assert [(r.name, r.origin, r.length) for r in b.regions("ram")] == [
        ("DTCM", 0x20000000, 64 * 1024), ("SRAM1", 0x20010000, 240 * 1024), ("SRAM2", 0x2004C000, 16 * 1024)]
    assert sram_bytes(b) == 320 * 1024
    assert flash_bytes(b) == 1024 * 1024
    assert b.region("FLASH").origin == 0x08000000
    assert b.cflags == ["-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard"]


def test_default_board():
    assert get_board(None).name == DEFAULT_BOARD


@pytest.mark.parametrize("alias,name", [("STM32F746", "stm32f746g_disco"), ("an500", "mps2_an500"),
                                        ("qemu-m4", "mps2_an386"), ("h743", "nucleo_h743zi")])
def test_aliases(alias, name):
    assert get_board(alias).name == name


def test_unknown_board_lists_known():
    with pytest.raises(BadInput) as e:
        get_board("arduino_uno")
    msg = str(e.value)
    assert "arduino_uno" in msg and "stm32f746g_disco" in msg and "\n" not in msg


def test_emulation_pairs():
    for real, emu in [("stm32f746g_disco", "mps2_an500"), ("nucleo_f767zi", "mps2_an500"),
                      ("nucleo_h743zi", "mps2_an500"), ("nucleo_l4r5zi", "mps2_an386"),
                      ("stm32f412g_disco", "mps2_an386")]:
        b = get_board(real)
        e = emulation_board(b)
        assert e.name == emu and e.cpu == b.cpu and e.qemu is not None
    assert emulation_board(get_board("mps2_an505")).qemu.machine == "mps2-an505"


def test_user_board_dir_env(tmp_path: Path, monkeypatch):
    (tmp_path / "myboard.toml").write_text(
        'name = "my_board"\naliases = ["mine"]\ncpu = "cortex-m4"\narena_region = "RAM"\n'
        '[[memory]]\nname = "FLASH"\norigin = 0x08000000\nlength = 0x80000\nkind = "flash"\n'
        '[[memory]]\nname = "RAM"\norigin = 0x20000000\nlength = 0x20000\nkind = "ram"\n')
    monkeypatch.setenv("TINYC_BOARDS", str(tmp_path))
    b = get_board("mine")
    assert b.name == "my_board" and sram_bytes(b) == 128 * 1024
    assert "my_board" in format_board_table(load_boards())


def test_extra_dir_and_bad_file(tmp_path: Path):
    (tmp_path / "bad.toml").write_text('name = "x"\ncpu = "cortex-m99"\n')
    with pytest.raises(BadInput, match="unknown cpu"):
        load_boards([tmp_path])
    with pytest.raises(BadInput, match="does not exist"):
        load_boards([tmp_path / "nope"])


def test_missing_arena_region(tmp_path: Path):
    (tmp_path / "b.toml").write_text(
        'name = "b"\ncpu = "cortex-m4"\narena_region = "CCM"\n'
        '[[memory]]\nname = "FLASH"\norigin = 0\nlength = 1024\nkind = "flash"\n'
        '[[memory]]\nname = "RAM"\norigin = 0x20000000\nlength = 1024\n')
    with pytest.raises(BadInput, match="no memory region 'CCM'"):
        load_boards([tmp_path])


def test_table_lists_cpu_sram_flash():
    t = format_board_table(load_boards())
    line = next(l for l in t.splitlines() if l.startswith("stm32f746g_disco"))
    assert "cortex-m7" in line and "320 KB" in line and "1 MB" in line
