"""Training steps for the shared classifiers: every plan verified, small models stepped under
ASan/UBSan, update schemes, the exported model bit-exact between tinyc and TFLM, the CLI."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from tests.support.paths import DATA, MODELS
from tinyc.compiler import Options
from tinyc.errors import BadInput, UnsupportedError
from tinyc.train.compile import TrainOptions, compile_training
from tinyc.train.host import HostTrainer
from tinyc.train.session import export_trained

CLASSIFIERS = ["mlperf_tiny/vww_96_int8.tflite", "mlperf_tiny/kws_ref_model.tflite",
               "mlperf_tiny/pretrainedResnet_quant.tflite", "tflm/person_detect.tflite",
               "tflm/person_detect_qdimfix.tflite", "tflm/micro_speech_quantized.tflite", "hanlab/vww.tflite",
               "hanlab/mcunet-320kb-1mb_imagenet.tflite", "hanlab/mcunetv2_large.tflite",
               "wake_vision/wv_quality_mcunet-320kb-1mb_vww.tflite", "wake_vision/wv_quality_mobilenetv2.tflite"]
SMALL = {"mlperf_tiny/vww_96_int8.tflite", "mlperf_tiny/kws_ref_model.tflite", "tflm/micro_speech_quantized.tflite",
         "mlperf_tiny/pretrainedResnet_quant.tflite"}


def _model(name: str) -> Path:
    p = MODELS / name
    if not p.is_file():
        pytest.skip(f"shared model {name} not found")
    return p


def _random_inputs(tc, n: int, seed: int = 0) -> np.ndarray:
    g = tc.compiled.graph
    t = g.t(g.inputs[0])
    rng = np.random.default_rng(seed)
    if t.dtype == "float32":
        return rng.uniform(-1, 1, size=(n, *t.shape)).astype(np.float32)
    lo, hi = (0, 256) if t.dtype == "uint8" else (-128, 128)
    return rng.integers(lo, hi, size=(n, *t.shape)).astype(t.dtype)


@pytest.mark.parametrize("name", CLASSIFIERS)
def test_every_classifier_compiles_a_training_step(name: str, tmp_path: Path) -> None:
    path = _model(name)
    opts = Options(input_type="int8") if name.startswith("hanlab") else Options()
    sparse = tmp_path / "scheme.toml"
    sparse.write_text("n_bias_update = 1\nmanual_weight_idx = [0]\nweight_update_ratio = [0.25]\n")
    figures = {}
    for update in ("full", "bias", "classifier", "last:1", "auto", f"sparse:{sparse}"):
        tc = compile_training(path, TrainOptions(update=update, classes=5), opts, search_seconds=0)
        figures[update] = tc.memory.sram
        assert tc.classes == 5
        assert tc.plan.arena_bytes >= tc.plan.lower_bound_bytes  # the plan passed the verifier
    assert figures["full"] >= figures["auto"] > 0
    assert figures["classifier"] <= figures["last:1"]
    if name in SMALL:  # a few steps of every scheme's C under the sanitizers
        for update in ("full", "bias", f"sparse:{sparse}"):
            tc = compile_training(path, TrainOptions(update=update, classes=5), opts, search_seconds=0)
            tr = HostTrainer(tc, sanitize=True, workdir=tmp_path / update.replace(":", "_").replace("/", "_")[:40])
            log = tr.train([_random_inputs(tc, 3)], np.array([0, 3, 4]), lr=0.05)
            assert np.all(np.isfinite(log.losses))


def test_training_changes_what_the_scheme_trains_and_nothing_else(tmp_path: Path) -> None:
    path = _model("mlperf_tiny/vww_96_int8.tflite")
    tc = compile_training(path, TrainOptions(update="last:2"), search_seconds=0)
    tr = HostTrainer(tc, workdir=tmp_path / "b")
    before = tr.parameters()
    tr.train([_random_inputs(tc, 8)], np.arange(8) % 2, lr=0.05)
    after = tr.parameters()
    assert set(before) == set(tc.train.trained)
    assert any(not np.array_equal(before[k], after[k]) for k in before)
    frozen = [n for n, t in tc.compiled.graph.tensors.items() if t.is_const and n not in tc.train.trained]
    assert frozen  # frozen weights stay const in flash: not in the training state at all


@pytest.mark.parametrize("scheme", ["last:3", '{"n_bias_update": 5, "manual_weight_idx": [22, 23, 26], '
                                              '"weight_update_ratio": [0.25, 0.5, 0.125]}'])
def test_exported_model_is_bit_exact_between_tinyc_and_tflm(scheme: str, tmp_path: Path) -> None:
    """Also for weights split into trained and frozen parts (their own forward kernels): the
    trained program's invoke() equals TFLM on the exported model."""
    from tinyc.api import run_on_host
    from tinyc.validate.reference import run_tflm

    path = _model("mlperf_tiny/vww_96_int8.tflite")
    if scheme.startswith("{"):
        (tmp_path / "s.json").write_text(scheme)
        scheme = f"sparse:{tmp_path / 's.json'}"
    tc = compile_training(path, TrainOptions(update=scheme, classes=10), search_seconds=0)
    assert scheme == "last:3" or tc.train.splits
    tr = HostTrainer(tc, workdir=tmp_path / "b")
    x = _random_inputs(tc, 24, seed=3)
    tr.train([x], np.arange(24) % 10, lr=0.1)
    trained = tr.evaluate([x[:6]])
    out = export_trained(tc, path.read_bytes(), tr)
    exported = tmp_path / "trained.tflite"
    exported.write_bytes(out)
    ref = run_tflm(out, [x[:6]])[0]
    ours = run_on_host(out, [x[:6]])[0]
    assert ref.shape == (6, 1, 10)
    assert np.array_equal(ref, ours)  # tinyc on the exported model == TFLM
    assert np.array_equal(ref.reshape(trained.shape), trained)  # == the trained program's own invoke()


def test_scheme_errors_are_clear(tmp_path: Path) -> None:
    path = _model("mlperf_tiny/vww_96_int8.tflite")
    bad = tmp_path / "s.json"
    for text, msg in (('{"manual_weight_idx": [99]}', "outside"), ('{"n_bias_update": -1}', "outside"),
                      ('{"manual_weight_idx": [1], "weight_update_ratio": [2]}', "(0, 1]"),
                      ('{"bogus": 1}', "unknown key"), ("not json {", "not valid")):
        bad.write_text(text)
        with pytest.raises(BadInput, match=msg if msg[0] != "(" else r"\(0, 1\]"):
            compile_training(path, TrainOptions(update=f"sparse:{bad}"), search_seconds=0)
    for spec in ("last:0", "last:x", "everything", f"sparse:{tmp_path / 'missing.toml'}"):
        with pytest.raises(BadInput):
            compile_training(path, TrainOptions(update=spec), search_seconds=0)


def test_an_op_without_backward_on_the_path_is_named() -> None:
    path = _model("hanlab/detection.tflite")
    with pytest.raises((UnsupportedError, BadInput)) as e:
        compile_training(path, TrainOptions(update="full"), Options(input_type="int8"), search_seconds=0)
    assert "op #" in str(e.value)


def test_cli_train_json_and_no_overwrite(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tinyc.cli import main

    path = _model("mlperf_tiny/vww_96_int8.tflite")
    data = DATA / "cifar10" / "test"
    if not data.is_dir():
        pytest.skip("cifar10 data not found")
    out = tmp_path / "trained.tflite"
    rc = main(["train", str(path), "--data", str(data), "-n", "40", "--epochs", "1", "--update", "bias",
               "-o", str(out), "--json"])
    assert rc == 0
    doc = json.loads(capsys.readouterr().out)
    for key in ("scheme", "peak_sram_bytes", "accuracy_before", "accuracy_after", "steps"):
        assert key in doc
    assert doc["steps"] == 40 and doc["scheme"]["n_bias_update"] > 0 and out.is_file()
    size = out.stat().st_size
    rc = main(["train", str(path), "--data", str(data), "-n", "10", "--epochs", "1", "-o", str(out)])
    assert rc == 2 and out.stat().st_size == size  # never overwrites without --force
    assert "exists" in capsys.readouterr().err
    assert main(["train", str(path), "--data", str(tmp_path / "nowhere")]) == 2


def test_compile_train_writes_a_project_that_cross_compiles_warning_free(tmp_path: Path,
                                                                        capsys: pytest.CaptureFixture) -> None:
    """`tinyc compile --train` for the F746: the report's training section, and the generated C
    (split weights, stochastic rounding) built for a Cortex-M7 with -Werror."""
    import shutil
    import subprocess

    from tinyc.cli import main

    path = _model("mlperf_tiny/vww_96_int8.tflite")
    scheme = tmp_path / "s.toml"
    scheme.write_text("n_bias_update = 4\nmanual_weight_idx = [24, 26]\nweight_update_ratio = [0.25, 0.5]\n")
    out = tmp_path / "fw"
    assert main(["compile", str(path), "--train", "--classes", "4", "--update", f"sparse:{scheme}",
                 "--rounding", "stochastic", "-o", str(out)]) == 0
    text = capsys.readouterr().out
    assert "training peak SRAM by part" in text and "stm32f746g_disco" in text and "full" in text
    header = (out / "model.h").read_text()
    assert "float tinyc_train_step(int32_t label);" in header and "TINYC_NUM_CLASSES 4u" in header
    if shutil.which("arm-none-eabi-gcc") is None:
        pytest.skip("arm-none-eabi-gcc not installed")
    srcs = ["model.c"] + [str(p.relative_to(out)) for p in (out / "runtime" / "src").glob("*.c")]
    r = subprocess.run(["arm-none-eabi-gcc", "-mcpu=cortex-m7", "-mthumb", "-mfpu=fpv5-sp-d16", "-mfloat-abi=hard",
                        "-std=c99", "-O2", "-ffp-contract=off", "-Wall", "-Wextra", "-Werror", "-Iruntime/include",
                        "-I.", "-c", *srcs], cwd=out, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr[-3000:]


def test_scheme_json_round_trips_through_sparse_file(tmp_path: Path) -> None:
    """--json prints the scheme in the form sparse:FILE reads: the same updates again."""
    path = _model("mlperf_tiny/vww_96_int8.tflite")
    tc = compile_training(path, TrainOptions(update="auto"), search_seconds=0)
    f = tmp_path / "scheme.json"
    f.write_text(json.dumps(tc.scheme.to_json()))
    again = compile_training(path, TrainOptions(update=f"sparse:{f}"), search_seconds=0)
    assert again.train.updates == tc.train.updates
    assert again.memory == tc.memory


def test_new_head_starts_at_chance_with_a_wide_logit_range() -> None:
    from tinyc.train.compile import prepare_graph

    path = _model("hanlab/vww.tflite")
    _, _, _, g, (shapes, quant) = prepare_graph(path, Options(input_type="int8"), 7)
    from tinyc.train.graph import find_logits

    logits, _, clf = find_logits(g)
    w = g.t(clf.inputs[1])
    assert w.shape[0] == 7 and not w.data.any() and len(w.quant.scale) == 7
    assert g.t(logits).shape[-1] == 7 and g.t(logits).quant.s * 255 >= 30  # logits over about +-16
    assert g.t(g.outputs[0]).shape[-1] == 7  # DEQUANTIZE's output follows
    assert shapes and quant


def test_split_fully_connected_forward_is_bit_exact(tmp_path: Path) -> None:
    """FULLY_CONNECTED layers training some input features (ad01's stack of FC layers): the split
    forward kernel equals TFLM on the exported model."""
    from tinyc.api import run_on_host
    from tinyc.validate.reference import run_tflm

    path = _model("mlperf_tiny/ad01_int8.tflite")
    (tmp_path / "s.json").write_text('{"n_bias_update": 3, "manual_weight_idx": [6, 7, 8], '
                                     '"weight_update_ratio": [0.25, 0.5, 0.125]}')
    tc = compile_training(path, TrainOptions(update=f"sparse:{tmp_path / 's.json'}"), search_seconds=0)
    assert len(tc.train.splits) == 3
    tr = HostTrainer(tc, sanitize=True, workdir=tmp_path / "b")
    x = _random_inputs(tc, 6, seed=1)
    tr.train([x], np.arange(6) * 97 % tc.classes, lr=0.5)
    out = export_trained(tc, path.read_bytes(), tr)
    ours = tr.evaluate([x])
    assert np.array_equal(run_tflm(out, [x])[0].reshape(ours.shape), ours)
    assert np.array_equal(run_on_host(out, [x])[0].reshape(ours.shape), ours)


def test_cli_bad_training_arguments_are_one_line_errors(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    from tinyc.cli import main

    path = _model("mlperf_tiny/vww_96_int8.tflite")
    data = DATA / "cifar10" / "test"
    if not data.is_dir():
        pytest.skip("cifar10 data not found")
    for extra, msg in ((["--classes", "3"], "has 10 classes"), (["--momentum", "1.5"], "--momentum"),
                       (["--epochs", "-1"], "--epochs"), (["--lr", "-0.1"], "--lr"),
                       (["--update", "last:0"], "K must be")):
        assert main(["train", str(path), "--data", str(data), "-n", "10", *extra]) == 2, extra
        err = capsys.readouterr().err.strip().split("\r")[-1]  # after the data's progress bar, if any
        assert err.startswith("tinyc: error:") and msg in err and "\n" not in err, (extra, err)
