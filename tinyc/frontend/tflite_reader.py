"""Read a .tflite flatbuffer (with the `tflite` schema package) into the IR.

Everything the rest of the compiler needs is copied out of the flatbuffer here, so no later
stage touches flatbuffer objects. Validation that is about the file (corrupt, truncated,
several subgraphs, unknown dtypes) happens here; validation about what an op supports is
asked of the op modules (frontend/validate.py).
"""

from __future__ import annotations

import hashlib
import importlib
import re
from pathlib import Path
from typing import Any

import numpy as np
import tflite
from tflite.BuiltinOperator import BuiltinOperator
from tflite.BuiltinOptions import BuiltinOptions

from tinyc.errors import BadInput
from tinyc.ir import Graph, Op, QuantParams, Tensor

_OP_NAMES = {v: k for k, v in vars(BuiltinOperator).items() if not k.startswith("_")}
_OPTION_NAMES = {v: k for k, v in vars(BuiltinOptions).items() if not k.startswith("_")}
_DTYPES = {0: "float32", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16", 9: "int8"}
_TYPE_NAMES = {v: k for k, v in vars(tflite.TensorType).items() if not k.startswith("_")}
_ENUM_FIELDS = {
    "padding": {0: "SAME", 1: "VALID"},
    "fused_activation_function": {0: "NONE", 1: "RELU", 2: "RELU_N1_TO_1", 3: "RELU6", 4: "TANH",
                                  5: "SIGN_BIT", 6: "SIGMOID"},
}
_SKIP_METHODS = {"Init"}


def model_hash(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def _snake(name: str) -> str:
    return re.sub(r"(?<!^)(?=[A-Z])", "_", name).lower()


def _options(op: Any) -> dict[str, Any]:
    """Every field of the op's BuiltinOptions table as a dict of plain Python values."""
    otype = op.BuiltinOptionsType()
    if otype == 0 or op.BuiltinOptions() is None:
        return {}
    cname = _OPTION_NAMES.get(otype)
    if cname is None:
        return {}
    cls = getattr(importlib.import_module(f"tflite.{cname}"), cname)
    tab = op.BuiltinOptions()
    obj = cls()
    obj.Init(tab.Bytes, tab.Pos)
    out: dict[str, Any] = {}
    for meth in dir(cls):
        if meth.startswith("_") or meth in _SKIP_METHODS or meth.startswith("GetRootAs") or \
                meth.endswith("BufferHasIdentifier") or meth.endswith("IsNone") or \
                meth.endswith("Length") or meth.endswith("AsNumpy"):
            continue
        fn = getattr(obj, meth)
        if not callable(fn):
            continue
        try:
            if hasattr(obj, meth + "AsNumpy"):
                val: Any = tuple(int(v) for v in np.atleast_1d(getattr(obj, meth + "AsNumpy")()))
                if getattr(obj, meth + "IsNone")():
                    val = ()
            else:
                val = fn()
        except TypeError:
            continue
        key = _snake(meth)
        if key in _ENUM_FIELDS:
            val = _ENUM_FIELDS[key].get(val, f"UNKNOWN_{val}")
        out[key] = val
    return out


def _quant(t: Any, rank: int, tname: str) -> QuantParams | None:
    q = t.Quantization()
    if q is None or q.ScaleLength() == 0:
        return None
    scale = tuple(float(s) for s in q.ScaleAsNumpy())
    zps = tuple(int(z) for z in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,) * len(scale)
    if len(zps) == 1 and len(scale) > 1:
        zps = zps * len(scale)
    axis = int(q.QuantizedDimension())
    if len(scale) == 1 or (rank <= 1 and not 0 <= axis < max(rank, 1)):
        # TFLM never reads quantized_dimension of per-tensor parameters nor of biases
        # (person_detect.tflite carries 3 on its rank-1 biases); so do we.
        axis = 0
    elif not 0 <= axis < max(rank, 1):
        raise BadInput(f"tensor {tname}: quantized_dimension {axis} is out of range for rank {rank}")
    if len(zps) != len(scale):
        raise BadInput(f"tensor {tname}: {len(scale)} scales but {len(zps)} zero points")
    return QuantParams(scale=scale, zero_point=zps, axis=axis)


def read_tflite(path: str | Path | None = None, data: bytes | None = None, name: str | None = None) -> Graph:
    """Parse a model file (or bytes) into a Graph; any malformation becomes a one-line BadInput."""
    if data is None:
        if path is None:
            raise BadInput("no model given")
        p = Path(path)
        if not p.is_file():
            raise BadInput(f"{p}: no such model file")
        data = p.read_bytes()
        name = name or p.stem
    name = re.sub(r"[^A-Za-z0-9_]", "_", name or "model")
    if len(data) < 8 or data[4:8] != b"TFL3":
        raise BadInput(f"{path or name}: not a TFLite model (no 'TFL3' flatbuffer identifier; "
                       f"{len(data)} bytes)")
    try:
        return _read(data, name)
    except BadInput:
        raise
    except Exception as e:  # the flatbuffer library raises anything on truncated/corrupt input
        raise BadInput(f"{path or name}: corrupt or truncated TFLite flatbuffer "
                       f"({type(e).__name__}: {e})") from e


def _read(data: bytes, name: str) -> Graph:
    model = tflite.Model.GetRootAsModel(data, 0)
    if model.SubgraphsLength() < 1:
        raise BadInput(f"{name}: the model has no subgraph")
    sg = model.Subgraphs(0)
    buffers = [model.Buffers(i) for i in range(model.BuffersLength())]
    tensors: dict[str, Tensor] = {}
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        tname = f"t{i}"
        label = (t.Name() or b"").decode("utf-8", "replace")
        ttype = t.Type()
        if ttype not in _DTYPES:
            raise BadInput(f"tensor #{i} '{label}': dtype {_TYPE_NAMES.get(ttype, ttype)} is not supported "
                           f"(supported: {', '.join(sorted(_DTYPES.values()))})")
        dtype = _DTYPES[ttype]
        shape = tuple(int(s) for s in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        if any(s < 0 for s in shape) or (t.ShapeSignatureLength() and any(
                s < 0 for s in t.ShapeSignatureAsNumpy()[1:])):
            raise BadInput(f"tensor #{i} '{label}': dynamic shape {list(shape)} is not supported")
        arr = None
        b = t.Buffer()
        if 0 < b < len(buffers):
            buf = buffers[b]
            raw: bytes | None = None
            if buf.Offset() > 1:
                raw = data[buf.Offset(): buf.Offset() + buf.Size()]
            elif buf.DataLength():
                raw = buf.DataAsNumpy().tobytes()
            if raw:
                need = int(np.prod(shape, dtype=np.int64)) * np.dtype(_np_dtype(dtype)).itemsize
                if len(raw) != need:
                    raise BadInput(f"tensor #{i} '{label}': buffer holds {len(raw)} bytes, shape "
                                   f"{list(shape)} {dtype} needs {need}")
                arr = np.frombuffer(raw, dtype=_np_dtype(dtype)).reshape(shape).copy()
                arr.setflags(write=False)
        tensors[tname] = Tensor(name=tname, shape=shape, dtype=dtype, quant=_quant(t, len(shape), label),
                                data=arr, index=i, label=label)
    ops = []
    for i in range(sg.OperatorsLength()):
        op = sg.Operators(i)
        oc = model.OperatorCodes(op.OpcodeIndex())
        code = max(oc.BuiltinCode(), oc.DeprecatedBuiltinCode())
        kind = _OP_NAMES.get(code, f"BUILTIN_{code}")
        if kind == "CUSTOM":
            kind = "CUSTOM:" + (oc.CustomCode() or b"?").decode("utf-8", "replace")
        ins = tuple(None if j < 0 else f"t{j}" for j in op.InputsAsNumpy()) if op.InputsLength() else ()
        outs = tuple(f"t{j}" for j in op.OutputsAsNumpy()) if op.OutputsLength() else ()
        for n in ins + outs:
            if n is not None and n not in tensors:
                raise BadInput(f"op #{i} {kind}: refers to tensor {n[1:]} which does not exist")
        ops.append(Op(kind=kind, inputs=ins, outputs=outs, attrs=_options(op), index=i))
    g_in = tuple(f"t{j}" for j in sg.InputsAsNumpy()) if sg.InputsLength() else ()
    g_out = tuple(f"t{j}" for j in sg.OutputsAsNumpy()) if sg.OutputsLength() else ()
    if not g_in or not g_out:
        raise BadInput(f"{name}: the model declares no inputs or no outputs")
    return Graph(name=name, tensors=tensors, ops=tuple(ops), inputs=g_in, outputs=g_out)


def _np_dtype(dtype: str) -> str:
    return {"bool": "uint8"}.get(dtype, dtype)
