"""`tinyc profile`: per-layer instruction counts on an emulated board add up to the whole
inference that `tinyc validate` counts, one row per step and one per patch stage."""

from __future__ import annotations

import json

import pytest

from tests.board.test_dsp_kernels import _odd_model
from tests.support.paths import MODELS
from tinyc.cli import main
from tinyc.compiler import Options, compile_model
from tinyc.target.boards import get_board
from tinyc.validate.datasets import random_dataset
from tinyc.validate.localize import hook_steps
from tinyc.validate.profile import profile_on_qemu
from tinyc.validate.runner import validate

pytestmark = pytest.mark.board


@pytest.mark.parametrize("patch", ["off", "2x2@6"])
def test_layers_add_up_to_the_whole_inference(tmp_path, patch: str) -> None:
    m = tmp_path / "odd.tflite"
    m.write_bytes(_odd_model())
    board = get_board("mps2_an386")
    c = compile_model(m, Options(patch=patch, alignment=board.alignment))
    x = random_dataset(c.graph.t(c.graph.inputs[0]), 1, seed=2)
    prof = profile_on_qemu(c, board, x.inputs[0])
    whole = validate(m, board, x, emulate=True, quiet=True, compiled=c).latency["instructions"]
    assert len(prof.layers) == len(hook_steps(c)) and all(t.instructions > 0 for t in prof.layers)
    assert sum(t.macs for t in prof.layers) == sum(c.macs)
    hooks = len(prof.layers)
    assert whole <= prof.total <= whole + 20 * hooks  # only the hook calls themselves are added
    stages = [t for t in prof.layers if t.label.startswith("patch stage")]
    assert (len(stages) == 1 and "(2x2)" in stages[0].label) if patch != "off" else not stages


def test_cli_profile_json_and_its_errors(capsys) -> None:
    model = str(MODELS / "mlperf_tiny/kws_ref_model.tflite")
    assert main(["profile", model, "--emulate", "--json"]) == 0
    doc = json.loads(capsys.readouterr().out)
    assert doc["instructions"] == sum(r["instructions"] for r in doc["layers"]) + doc["after_last_layer"]
    assert doc["layers"][0]["layer"].startswith("#") and doc["layers"][0]["instructions_per_mac"] > 0
    assert main(["profile", model]) == 2  # a real board: counts come from QEMU
    assert "add --emulate" in capsys.readouterr().err
    assert main(["profile", model, "--board", "host"]) == 2
    assert "emulated Cortex-M board, not on the host" in capsys.readouterr().err
