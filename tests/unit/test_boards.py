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


# -- schema: every mistake is one BadInput line naming the file and the key -------------------
GOOD = '''name = "b"
cpu = "cortex-m4"
arena_region = "RAM"
[[memory]]
name = "FLASH"
origin = 0x08000000
length = 0x80000
kind = "flash"
[[memory]]
name = "RAM"
origin = 0x20000000
length = 0x20000
kind = "ram"
[qemu]
machine = "mps2-an386"
[usb]
vid_pid = "0483:374b"
'''


@pytest.mark.parametrize("old,new,key,words", [
    ('name = "RAM"\n', '', "memory[1].name", "missing required key"),
    ('machine = "mps2-an386"\n', 'timer0 = 0\n', "qemu.machine", "missing required key"),
    ('length = 0x20000', 'length = "128K"', "memory[1].length", "must be an integer"),
    ('cpu = "cortex-m4"', 'cpu = "cortex-m44"', "cpu", "unknown cpu"),
    ('arena_region = "RAM"\n', 'arena_region = "RAM"\nstack_size = 4096\n', "stack_size", "allowed:"),
    ('kind = "ram"', 'kind = "ram"\nsize = 4', "memory[1].size", "allowed in memory[1]: name, origin"),
    ('origin = 0x20000000', 'origin = 0x08070000', "memory", "overlap"),
    ('arena_region = "RAM"', 'arena_region = "SRAM9"', "arena_region", "no memory region 'SRAM9'"),
    ('arena_region = "RAM"\n', '', "arena_region", "missing required key"),
    ('vid_pid = "0483:374b"', 'vid_pid = "stlink"', "usb.vid_pid", "VID:PID"),
    ('vid_pid = "0483:374b"', 'vid_pid = 1155', "usb.vid_pid", "must be a string"),
    ('cpu = "cortex-m4"', 'cpu = "cortex-m4"\ndefault = "yes"', "default", "must be true or false"),
    ('cpu = "cortex-m4"', 'cpu = "cortex-m4"\naliases = "bb"', "aliases", "must be a list"),
    ('cpu = "cortex-m4"', 'cpu = "cortex-m4"\nflash = "pyocd"', "flash", "must be a table"),
])
def test_board_file_errors_name_file_and_key(tmp_path: Path, old, new, key, words):
    assert old in GOOD
    (tmp_path / "b.toml").write_text(GOOD.replace(old, new, 1))
    with pytest.raises(BadInput) as e:
        load_boards([tmp_path])
    msg = str(e.value)
    assert "\n" not in msg and str(tmp_path / "b.toml") in msg and key in msg and words in msg, msg


def test_good_schema_board_loads(tmp_path: Path):
    (tmp_path / "b.toml").write_text(GOOD)
    b = load_boards([tmp_path])["b"]
    assert b.qemu.machine == "mps2-an386" and b.usb_vid_pid == "0483:374b" and b.data_region == "RAM"


def test_unknown_key_lists_allowed(tmp_path: Path):
    (tmp_path / "b.toml").write_text(GOOD.replace("cpu =", "emulate_whit = \"mps2_an386\"\ncpu =", 1))
    with pytest.raises(BadInput, match=r"unknown key 'emulate_whit' \(allowed: .*emulate_with"):
        load_boards([tmp_path])


@pytest.mark.parametrize("name,aliases,clash", [
    ("b", [], "'b' is already board b"),  # same name in two user folders
    ("stm32f746g_disco", [], "'stm32f746g_disco' is already board stm32f746g_disco"),  # shadows a shipped board
    ("c", ["f746"], "'f746' is already an alias of stm32f746g_disco"),
    ("c", ["b"], "'b' is already board b"),
])
def test_duplicate_name_or_alias_across_folders(tmp_path: Path, name, aliases, clash):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    (tmp_path / "one" / "b.toml").write_text(GOOD)
    (tmp_path / "two" / "c.toml").write_text(GOOD.replace('name = "b"', f"name = {name!r}\naliases = {aliases!r}", 1))
    with pytest.raises(BadInput) as e:
        load_boards([tmp_path / "one", tmp_path / "two"])
    msg = str(e.value)
    assert clash in msg and str(tmp_path / "two" / "c.toml") in msg and "\n" not in msg


def test_same_folder_twice_is_not_a_duplicate(tmp_path: Path, monkeypatch):
    (tmp_path / "b.toml").write_text(GOOD)
    monkeypatch.setenv("TINYC_BOARDS", str(tmp_path))
    assert "b" in load_boards([tmp_path, tmp_path / "."])


# -- shipped boards found without the repository (non-editable install) ------------------------
def test_boards_are_package_data():
    """The boards folder lives inside the package and pyproject ships its TOMLs."""
    import fnmatch
    import tomllib

    import tinyc
    from tinyc.target.boards import BOARDS_DIR

    pkg = Path(tinyc.__file__).parent
    assert BOARDS_DIR == pkg / "boards" and BOARDS_DIR.is_dir()
    repo = pkg.parent
    shipped = sorted(p.name for p in (repo / "boards").glob("*.toml"))
    assert sorted(p.name for p in BOARDS_DIR.glob("*.toml")) == shipped
    patterns = tomllib.loads((repo / "pyproject.toml").read_text())["tool"]["setuptools"]["package-data"]["tinyc"]
    for name in shipped:
        assert any(fnmatch.fnmatch(f"boards/{name}", pat) for pat in patterns), name


def test_installed_copy_finds_its_boards(tmp_path: Path):
    """A copy of the package outside the repository (what a wheel installs) loads every board."""
    import shutil
    import subprocess
    import sys

    import tinyc

    shutil.copytree(Path(tinyc.__file__).parent, tmp_path / "tinyc", ignore=shutil.ignore_patterns("__pycache__"))
    code = "from tinyc.target.boards import load_boards, BOARDS_DIR; print(BOARDS_DIR, len(load_boards()))"
    r = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, capture_output=True, text=True, timeout=60,
                       env={"PYTHONPATH": str(tmp_path), "PATH": "/usr/bin:/bin"})
    assert r.returncode == 0, r.stderr
    assert r.stdout.split() == [str(tmp_path / "tinyc" / "boards"), str(len(load_boards()))]
