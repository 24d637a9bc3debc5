"""Golden reference outputs from TFLM and LiteRT (reference kernels), run out of process.

Why a subprocess: LiteRT (and occasionally TFLM) abort() the whole process on
some malformed or unsupported models, which would kill the pytest run.  Each
call starts ONE worker that loads the model once and runs the whole batch
sample by sample, so the per-sample cost stays the interpreter's, not Python
start-up's.  Arrays travel through ``.npy`` files in a temp directory.

Batch convention: for every model input of shape S the caller passes an array
of shape ``(N, *S)`` (e.g. ``(N, 1, 96, 96, 1)`` for a ``(1, 96, 96, 1)``
input); every returned output has shape ``(N, *output_shape)``.

This file is also the worker script: ``python reference.py <mode> ...``.
"""

from __future__ import annotations

import os
import re
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Sequence, Union

import numpy as np

__all__ = [
    "run_tflm",
    "run_litert_ref",
    "run_many",
    "tflm_arena_bytes",
    "tflm_tensors",
    "tflm_arena_stats",
    "model_io_specs",
    "ReferenceRunError",
    "ReferenceCrashed",
    "ReferenceFailed",
    "ReferenceTimeout",
    "DEFAULT_TIMEOUT_S",
    "DEFAULT_TFLM_ARENA",
]

ModelLike = Union[str, os.PathLike, bytes, bytearray]

DEFAULT_TIMEOUT_S = 300.0
# The TFLM wrapper's default arena (10x model size) is too small for tiny test
# models; the arena is malloc'ed and never touched beyond what is used, so a big
# one costs nothing.  The planned ("head") size does not depend on it.
DEFAULT_TFLM_ARENA = 256 << 20

_EXIT_PY_ERROR = 3  # worker caught a Python exception (bad model, kernel error, ...)
_STDERR_TAIL = 4000


class ReferenceRunError(RuntimeError):
    """Base class: the reference worker did not produce outputs."""

    def __init__(self, message: str, returncode: int | None = None, stderr: str = "") -> None:
        self.returncode = returncode
        self.stderr_tail = stderr[-_STDERR_TAIL:]
        super().__init__(f"{message} (returncode={returncode})\n--- worker stderr tail ---\n"
                         f"{self.stderr_tail}")


class ReferenceCrashed(ReferenceRunError):
    """The worker process died (signal, abort(), segfault, or unexpected exit code)."""


class ReferenceTimeout(ReferenceCrashed):
    """The worker exceeded its timeout and was killed."""


class ReferenceFailed(ReferenceRunError):
    """The worker raised a Python exception (e.g. interpreter refused the model)."""


# --------------------------------------------------------------------------- model parsing
_NP_OF_TFLITE_TYPE = {0: np.float32, 2: np.int32, 3: np.uint8, 4: np.int64, 6: np.bool_,
                      7: np.int16, 9: np.int8, 10: np.float64, 16: np.uint16, 15: np.uint32}


def _model_bytes(model: ModelLike) -> bytes:
    if isinstance(model, (bytes, bytearray)):
        return bytes(model)
    return Path(model).read_bytes()


def model_io_specs(model: ModelLike) -> tuple[list[tuple[tuple[int, ...], np.dtype]],
                                              list[tuple[tuple[int, ...], np.dtype]]]:
    """(inputs, outputs) of subgraph 0 as lists of (shape, numpy dtype), read from the flatbuffer."""
    import importlib

    Model = importlib.import_module("tflite.Model").Model
    buf = _model_bytes(model)
    sg = Model.GetRootAs(buf, 0).Subgraphs(0)

    def spec(ti: int) -> tuple[tuple[int, ...], np.dtype]:
        t = sg.Tensors(ti)
        shape = tuple(int(d) for d in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        return shape, np.dtype(_NP_OF_TFLITE_TYPE.get(t.Type(), np.uint8))

    ins = [spec(int(sg.Inputs(i))) for i in range(sg.InputsLength())]
    outs = [spec(int(sg.Outputs(i))) for i in range(sg.OutputsLength())]
    return ins, outs


# --------------------------------------------------------------------------- parent side
def _prepare_inputs(specs: list[tuple[tuple[int, ...], np.dtype]],
                    inputs: Sequence[np.ndarray]) -> tuple[list[np.ndarray], int]:
    """Check shapes (N, *input_shape) and dtypes; lossless casts only."""
    if len(inputs) != len(specs):
        raise ValueError(f"model has {len(specs)} inputs, got {len(inputs)} arrays")
    out: list[np.ndarray] = []
    n: int | None = None
    for i, (x, (shape, dtype)) in enumerate(zip(inputs, specs)):
        x = np.asarray(x)
        if x.shape[1:] != shape:
            raise ValueError(f"input {i}: expected shape (N, *{shape}), got {x.shape}")
        if n is None:
            n = x.shape[0]
        elif x.shape[0] != n:
            raise ValueError(f"input {i}: batch {x.shape[0]} != {n}")
        if x.dtype != dtype:
            cast = x.astype(dtype)
            if not np.array_equal(cast, x):
                raise ValueError(f"input {i}: values not representable as {dtype} (got {x.dtype})")
            x = cast
        out.append(np.ascontiguousarray(x))
    return out, int(n or 0)


def _run_worker(args: list[str], timeout: float, what: str) -> subprocess.CompletedProcess:
    cmd = [sys.executable, "-u", os.path.abspath(__file__), *args]
    try:
        proc = subprocess.run(cmd, capture_output=True, timeout=timeout, text=True,
                              errors="replace", stdin=subprocess.DEVNULL)
    except subprocess.TimeoutExpired as e:
        err = e.stderr.decode(errors="replace") if isinstance(e.stderr, bytes) else (e.stderr or "")
        raise ReferenceTimeout(f"{what}: worker timed out after {timeout:g} s", None, err) from None
    if proc.returncode == _EXIT_PY_ERROR:
        raise ReferenceFailed(f"{what}: worker raised", proc.returncode, proc.stderr)
    if proc.returncode != 0:
        sig = ""
        if proc.returncode < 0:
            sig = f" by signal {-proc.returncode}"
        raise ReferenceCrashed(f"{what}: worker died{sig}", proc.returncode, proc.stderr)
    return proc


def _stage_job(job_dir: str, buf: bytes, arrays: list[np.ndarray], n_out: int) -> None:
    """Write one job (model + inputs + output count) where the worker expects it."""
    os.makedirs(job_dir, exist_ok=True)
    Path(job_dir, "model.tflite").write_bytes(buf)
    for i, a in enumerate(arrays):
        np.save(os.path.join(job_dir, f"in_{i}.npy"), a)
    Path(job_dir, "counts").write_text(f"{len(arrays)} {n_out}")


def _load_outputs(job_dir: str, n_out: int) -> list[np.ndarray]:
    return [np.load(os.path.join(job_dir, f"out_{i}.npy")) for i in range(n_out)]


def _run(backend: str, model: ModelLike, inputs: Sequence[np.ndarray], timeout: float,
         arena_size: int) -> list[np.ndarray]:
    buf = _model_bytes(model)
    in_specs, out_specs = model_io_specs(buf)
    arrays, n = _prepare_inputs(in_specs, inputs)
    if n == 0:
        return [np.zeros((0, *s), dtype=d) for s, d in out_specs]
    with tempfile.TemporaryDirectory(prefix="tinyc_ref_") as tmp:
        _stage_job(tmp, buf, arrays, len(out_specs))
        _run_worker(["run", backend, str(arena_size), tmp], timeout, f"{backend} reference")
        return _load_outputs(tmp, len(out_specs))


def run_many(backend: str, jobs: Sequence[tuple[ModelLike, Sequence[np.ndarray]]], *,
             timeout: float = DEFAULT_TIMEOUT_S, arena_size: int = DEFAULT_TFLM_ARENA
             ) -> list[list[np.ndarray] | ReferenceRunError]:
    """Run many (model, inputs) jobs in ONE worker; backend is "tflm" or "litert".

    For suites of tiny single-op models, where interpreter start-up (~0.5 s) would
    dominate.  Returns, per job, its outputs or the ReferenceRunError it caused.
    Jobs run in order, so if the worker dies the job it was on gets the
    ReferenceCrashed and a fresh worker continues with the rest.  Input validation errors
    (ValueError) are raised immediately.
    """
    if backend not in ("tflm", "litert"):
        raise ValueError(f"unknown backend {backend!r}")
    staged = []
    for model, inputs in jobs:
        buf = _model_bytes(model)
        in_specs, out_specs = model_io_specs(buf)
        arrays, n = _prepare_inputs(in_specs, inputs)
        staged.append((buf, arrays, n, out_specs))
    results: list[list[np.ndarray] | ReferenceRunError | None] = [None] * len(staged)
    with tempfile.TemporaryDirectory(prefix="tinyc_ref_") as tmp:
        dirs: list[str] = []
        for j, (buf, arrays, n, out_specs) in enumerate(staged):
            if n == 0:
                results[j] = [np.zeros((0, *s), dtype=d) for s, d in out_specs]
                continue
            d = os.path.join(tmp, f"job_{j}")
            _stage_job(d, buf, arrays, len(out_specs))
            dirs.append(d)
        pending = list(dirs)
        while pending:
            try:
                _run_worker(["run", backend, str(arena_size), *pending], timeout,
                            f"{backend} reference")
                crash: ReferenceRunError | None = None
            except ReferenceRunError as e:
                crash = e
            # Jobs run in order: those with a marker finished; the first without one
            # is the one the worker died on (only possible if crash is set).
            still: list[str] = []
            blamed = crash is None
            for d in pending:
                if Path(d, "done").exists() or Path(d, "error.txt").exists():
                    continue
                if not blamed:
                    results[int(d.rsplit("_", 1)[1])] = crash
                    blamed = True
                    continue
                still.append(d)
            if crash is None:
                break
            pending = still
        for j, (buf, arrays, n, out_specs) in enumerate(staged):
            if results[j] is not None:
                continue
            d = os.path.join(tmp, f"job_{j}")
            err = Path(d, "error.txt")
            if err.exists():
                results[j] = ReferenceFailed(f"{backend} reference: job {j} raised", _EXIT_PY_ERROR,
                                             err.read_text())
            else:
                results[j] = _load_outputs(d, len(out_specs))
    return results  # type: ignore[return-value]


def run_tflm(model: ModelLike, inputs: Sequence[np.ndarray], *, timeout: float = DEFAULT_TIMEOUT_S,
             arena_size: int = DEFAULT_TFLM_ARENA) -> list[np.ndarray]:
    """Run a batch through the tflite-micro Python interpreter (reference kernels) in a worker."""
    return _run("tflm", model, inputs, timeout, arena_size)


def run_litert_ref(model: ModelLike, inputs: Sequence[np.ndarray], *,
                   timeout: float = DEFAULT_TIMEOUT_S) -> list[np.ndarray]:
    """Run a batch through LiteRT with the BUILTIN_REF op resolver in a worker."""
    return _run("litert", model, inputs, timeout, 0)


def tflm_tensors(model: ModelLike, inputs: Sequence[np.ndarray], indices: Sequence[int], *,
                 timeout: float = DEFAULT_TIMEOUT_S, arena_size: int = DEFAULT_TFLM_ARENA) -> dict[int, np.ndarray]:
    """Every tensor in ``indices`` (subgraph 0) after one TFLM inference on ``inputs`` (one
    sample per model input, shaped like the input), with all intermediate tensors preserved:
    the golden layer outputs for localising a mismatch. Tensors TFLM does not keep are absent."""
    import importlib

    buf = _model_bytes(model)
    in_specs, _ = model_io_specs(buf)
    arrays, _ = _prepare_inputs(in_specs, [np.asarray(x)[None] for x in inputs])
    count = importlib.import_module("tflite.Model").Model.GetRootAs(buf, 0).Subgraphs(0).TensorsLength()
    indices = [int(i) for i in indices if 0 <= int(i) < count]  # TFLM segfaults on others
    with tempfile.TemporaryDirectory(prefix="tinyc_ref_") as tmp:
        _stage_job(tmp, buf, arrays, 0)
        Path(tmp, "indices").write_text(" ".join(str(int(i)) for i in indices))
        _run_worker(["tensors", str(arena_size), tmp], timeout, "tflm tensors")
        out = {}
        for i in indices:
            f = Path(tmp, f"tensor_{int(i)}.npy")
            if f.exists():
                out[int(i)] = np.load(f)
        return out


_ALLOC_RE = re.compile(r"Arena allocation (total|head|tail) (\d+) bytes")


def tflm_arena_stats(model: ModelLike, *, timeout: float = DEFAULT_TIMEOUT_S,
                     arena_size: int = DEFAULT_TFLM_ARENA) -> dict[str, int]:
    """TFLM RecordingMicroAllocator totals: {'total', 'head', 'tail'} in bytes.

    head = non-persistent (planned activations + scratch), tail = persistent.
    The wrapper only prints these to stderr (C level), so the worker prints and
    we parse its captured stderr.
    """
    buf = _model_bytes(model)
    with tempfile.TemporaryDirectory(prefix="tinyc_ref_") as tmp:
        model_path = os.path.join(tmp, "model.tflite")
        Path(model_path).write_bytes(buf)
        proc = _run_worker(["arena", model_path, str(arena_size)], timeout, "tflm arena")
    stats = {k: int(v) for k, v in _ALLOC_RE.findall(proc.stderr)}
    if set(stats) != {"total", "head", "tail"}:
        raise ReferenceFailed("tflm arena: could not parse allocator report", 0, proc.stderr)
    return stats


def tflm_arena_bytes(model: ModelLike, **kwargs: float) -> int:
    """Non-persistent ("head") arena bytes TFLM plans for this model (x86-64 build)."""
    return tflm_arena_stats(model, **kwargs)["head"]  # type: ignore[arg-type]


# --------------------------------------------------------------------------- worker side
def _worker_job(backend: str, arena_size: int, job_dir: str) -> None:
    """Run one staged job: every sample through one interpreter instance."""
    n_in, n_out = (int(v) for v in Path(job_dir, "counts").read_text().split())
    model_path = os.path.join(job_dir, "model.tflite")
    xs = [np.load(os.path.join(job_dir, f"in_{i}.npy")) for i in range(n_in)]
    n = xs[0].shape[0]
    results: list[list[np.ndarray]] = [[] for _ in range(n_out)]
    if backend == "tflm":
        from tflite_micro.python.tflite_micro import runtime

        ip = runtime.Interpreter.from_file(model_path, arena_size=arena_size)
        for s in range(n):
            # reset() costs microseconds and makes stateful models (variables) per-sample.
            ip.reset()
            for i, x in enumerate(xs):
                ip.set_input(x[s], i)
            ip.invoke()
            for o in range(n_out):
                results[o].append(np.array(ip.get_output(o), copy=True))
    elif backend == "litert":
        from ai_edge_litert.interpreter import Interpreter, OpResolverType

        it = Interpreter(model_path=model_path,
                         experimental_op_resolver_type=OpResolverType.BUILTIN_REF)
        it.allocate_tensors()
        in_idx = [d["index"] for d in it.get_input_details()]
        out_idx = [d["index"] for d in it.get_output_details()]
        for s in range(n):
            for i, x in enumerate(xs):
                it.set_tensor(in_idx[i], x[s])
            it.invoke()
            for o in range(n_out):
                results[o].append(np.array(it.get_tensor(out_idx[o]), copy=True))
    else:
        raise ValueError(f"unknown backend {backend!r}")
    for o in range(n_out):
        np.save(os.path.join(job_dir, f"out_{o}.npy"), np.stack(results[o]))
    Path(job_dir, "done").touch()


def _worker_run(backend: str, arena_size: int, job_dirs: list[str]) -> None:
    """Run jobs in order; a Python error is recorded per job, a single job fails fast."""
    import traceback

    if len(job_dirs) == 1:
        _worker_job(backend, arena_size, job_dirs[0])
        return
    for d in job_dirs:
        try:
            _worker_job(backend, arena_size, d)
        except Exception:
            Path(d, "error.txt").write_text(traceback.format_exc())


def _worker_tensors(arena_size: int, job_dir: str) -> None:
    from tflite_micro.python.tflite_micro import runtime

    n_in = int(Path(job_dir, "counts").read_text().split()[0])
    ip = runtime.Interpreter.from_file(os.path.join(job_dir, "model.tflite"), arena_size=arena_size,
                                       intrepreter_config=runtime.InterpreterConfig.kPreserveAllTensors)
    for i in range(n_in):
        ip.set_input(np.load(os.path.join(job_dir, f"in_{i}.npy"))[0], i)
    ip.invoke()
    for idx in (int(v) for v in Path(job_dir, "indices").read_text().split()):
        try:
            t = ip.GetTensor(idx, 0)
        except Exception:  # an index TFLM does not expose: the caller skips it
            continue
        data = t.get("tensor_data") if isinstance(t, dict) else t
        if data is not None:
            np.save(os.path.join(job_dir, f"tensor_{idx}.npy"), np.array(data, copy=True))


def _worker_arena(model_path: str, arena_size: int) -> None:
    from tflite_micro.python.tflite_micro import runtime

    sys.stderr.flush()
    ip = runtime.Interpreter.from_file(model_path, arena_size=arena_size)
    ip.print_allocations()  # allocation happens at construction; no invoke needed


def _worker_main(argv: list[str]) -> int:
    import traceback

    try:
        if argv[0] == "run":
            _worker_run(argv[1], int(argv[2]), argv[3:])
        elif argv[0] == "tensors":
            _worker_tensors(int(argv[1]), argv[2])
        elif argv[0] == "arena":
            _worker_arena(argv[1], int(argv[2]))
        elif argv[0] == "abort":  # test hook: simulate a native crash
            os.abort()
        else:
            raise ValueError(f"unknown worker mode {argv[0]!r}")
    except Exception:
        traceback.print_exc()
        sys.stderr.flush()
        return _EXIT_PY_ERROR
    return 0


if __name__ == "__main__":
    sys.exit(_worker_main(sys.argv[1:]))
