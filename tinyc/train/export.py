"""Write trained weights back into a .tflite file.

Two ways, chosen from what changes:

* **Patch in place** (the common case: the same model with retrained weights and biases). Every
  updated tensor keeps its dtype, shape and quantization, so its new bytes are written over the
  old ones in a copy of the flatbuffer. The length does not change, every offset stays valid and
  the file is byte-identical except for those bytes.
* **Rebuild** (a new classifier head: weights [N, F] or [N, 1, 1, F], bias [N], N per-channel
  scales, and the activations downstream of the head given new shapes through ``reshape``). The
  model is unpacked with the TFLite schema's object API (``schema_py_generated`` from the
  ``tflite-micro`` package, else from ``ai-edge-litert``), edited and packed again with 16-byte
  aligned buffers. RESHAPE ops whose output gets a new shape have their ``new_shape`` option and
  their shape constant rewritten to match. A changed tensor shared by several tensors (the
  converter deduplicates identical buffers) also takes this path: it gets a buffer of its own.

Before returning, a rebuilt model is checked: shapes around every op that touches a changed tensor
must still agree (so a forgotten ``reshape`` entry is an error here, not memory corruption on the
device), and the result must parse with tinyc's reader.
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass
from types import ModuleType
from typing import Any, Mapping, Sequence

import flatbuffers
import numpy as np
import tflite

from tinyc.errors import BadInput

__all__ = ["NewTensorData", "export_tflite"]

# TFLite TensorType -> numpy dtype (the ones whose bytes we know how to write)
_NP_TYPES = {0: "float32", 1: "float16", 2: "int32", 3: "uint8", 4: "int64", 6: "bool", 7: "int16",
             9: "int8", 10: "float64", 12: "uint64", 15: "uint32", 16: "uint16"}
_SCHEMA_MODULES = ("tflite_micro.tensorflow.lite.micro.python.schema_py_generated",
                   "ai_edge_litert.schema_py_generated")
_BUFFER_ALIGN = 16  # what the TFLite converter uses; int32/float data stay aligned on the device

# Ops whose output has the shape of their (first) input.
_SAME_SHAPE_OPS = {"SOFTMAX", "LOG_SOFTMAX", "DEQUANTIZE", "QUANTIZE", "LOGISTIC", "TANH", "RELU",
                   "RELU6", "RELU_N1_TO_1", "HARD_SWISH", "LEAKY_RELU", "PRELU", "ABS", "NEG"}
# Ops that only reinterpret the element order: sizes must agree.
_SAME_SIZE_OPS = {"RESHAPE", "SQUEEZE", "EXPAND_DIMS"}


@dataclass(frozen=True)
class NewTensorData:
    """A constant tensor whose contents (and maybe shape or quantization) change.

    index: the tensor's index in subgraph 0 of the source model (tinyc IR ``Tensor.index``).
    data: the new contents, of the tensor's dtype (int8 weights, int32 biases). A shape other
    than the tensor's is a new shape (same rank); a flat array of the tensor's size is taken
    in the tensor's shape.
    scale, zero_point: new quantization parameters (None: keep the old ones; zero points of a
    per-channel tensor whose channel count changes are broadcast when they were all equal).
    """

    index: int
    data: np.ndarray
    scale: tuple[float, ...] | None = None
    zero_point: tuple[int, ...] | None = None


@dataclass(frozen=True)
class _TensorInfo:
    """What the source flatbuffer says about one tensor of subgraph 0."""

    index: int
    label: str
    shape: tuple[int, ...]
    dtype: str
    buffer: int
    data_pos: int  # where the buffer's data vector starts in the file (-1: no data)
    data_len: int
    outside: bool  # the data lives outside the flatbuffer (Buffer.offset/size, external buffer)
    sparse: bool
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int

    @property
    def what(self) -> str:
        return f"tensor #{self.index} '{self.label}'"


@dataclass(frozen=True)
class _Change:
    """One validated update: the new data in its final shape and the quantization to write."""

    info: _TensorInfo
    data: np.ndarray
    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int  # the quantized dimension to write

    @property
    def new_shape(self) -> bool:
        return tuple(self.data.shape) != self.info.shape

    @property
    def new_quant(self) -> bool:
        old = (tuple(np.float32(self.info.scale)), self.info.zero_point)
        return (tuple(np.float32(self.scale)), self.zero_point) != old


def export_tflite(source: bytes, updates: Sequence[NewTensorData],
                  reshape: Mapping[int, tuple[int, ...]] = {},
                  requantize: Mapping[int, tuple[float, int]] = {}) -> bytes:
    """The .tflite bytes of `source` with `updates` written in; `reshape` gives activations new shapes.

    Raises BadInput (one clear line) on a dtype or size that does not fit, a tensor that is not a
    constant, data stored outside the flatbuffer, or shapes left inconsistent by the change.
    """
    src = bytes(source)
    if len(src) < 8 or src[4:8] != b"TFL3":
        raise BadInput(f"not a TFLite model (no 'TFL3' flatbuffer identifier; {len(src)} bytes)")
    try:
        infos, buffer_users, offset_buffers = _scan(src)
    except BadInput:
        raise
    except Exception as e:  # the flatbuffer library raises anything on corrupt input
        raise BadInput(f"corrupt or truncated TFLite flatbuffer ({type(e).__name__}: {e})") from e
    changes = _check_updates(infos, updates)
    shapes = _check_reshape(infos, changes, reshape)
    structural = bool(shapes) or bool(requantize) or any(c.new_shape or c.new_quant for c in changes)
    shared = [c for c in changes if _shared(c, changes, buffer_users)]
    if not structural and not shared:
        return _patch(src, changes)
    if offset_buffers:
        raise BadInput(f"the model keeps {offset_buffers} buffer(s) outside the flatbuffer (the >2 GB "
                       f"layout); rebuilding it (new shapes, quantization or an unshared buffer) is not "
                       f"supported")
    out = _rebuild(src, changes, shapes, {c.info.index for c in shared}, requantize)
    _check_result(src, out, changes, shapes)
    return out


# ---------------------------------------------------------------------------------------------
# reading the source


def _scan(src: bytes) -> tuple[list[_TensorInfo], dict[int, list[tuple[int, int]]], int]:
    """Tensor facts of subgraph 0, who uses each buffer ((subgraph, tensor) pairs), and how many
    buffers keep their data outside the flatbuffer."""
    model = tflite.Model.GetRootAsModel(src, 0)
    if model.SubgraphsLength() < 1:
        raise BadInput("the model has no subgraph")
    nbuf = model.BuffersLength()
    buffers = [model.Buffers(i) for i in range(nbuf)]
    offset_buffers = sum(1 for b in buffers if b.Offset() > 1)
    users: dict[int, list[tuple[int, int]]] = {}
    for s in range(model.SubgraphsLength()):
        sg = model.Subgraphs(s)
        for i in range(sg.TensorsLength()):
            users.setdefault(sg.Tensors(i).Buffer(), []).append((s, i))
    sg = model.Subgraphs(0)
    infos = []
    for i in range(sg.TensorsLength()):
        t = sg.Tensors(i)
        label = (t.Name() or b"").decode("utf-8", "replace")
        shape = tuple(int(v) for v in t.ShapeAsNumpy()) if t.ShapeLength() else ()
        b = t.Buffer()
        pos, length, outside = -1, 0, False
        if 0 < b < nbuf:
            buf = buffers[b]
            outside = buf.Offset() > 1
            o = buf._tab.Offset(4)  # Buffer.data
            if o:
                pos, length = buf._tab.Vector(o), buf._tab.VectorLen(o)
        ext = t._tab.Offset(24)  # Tensor.external_buffer (newer schemas)
        if ext and t._tab.Get(flatbuffers.number_types.Uint32Flags, ext + t._tab.Pos):
            outside = True
        q = t.Quantization()
        scale: tuple[float, ...] = ()
        zps: tuple[int, ...] = ()
        axis = 0
        if q is not None and q.ScaleLength():
            scale = tuple(float(v) for v in q.ScaleAsNumpy())
            zps = tuple(int(v) for v in q.ZeroPointAsNumpy()) if q.ZeroPointLength() else (0,) * len(scale)
            axis = int(q.QuantizedDimension())
        infos.append(_TensorInfo(index=i, label=label, shape=shape, dtype=_NP_TYPES.get(t.Type(), f"type{t.Type()}"),
                                 buffer=b, data_pos=pos, data_len=length, outside=outside,
                                 sparse=t.Sparsity() is not None, scale=scale, zero_point=zps, axis=axis))
    return infos, users, offset_buffers


def _check_updates(infos: list[_TensorInfo], updates: Sequence[NewTensorData]) -> list[_Change]:
    changes: list[_Change] = []
    seen: set[int] = set()
    for u in updates:
        if not isinstance(u, NewTensorData):
            raise BadInput(f"updates must be NewTensorData, got {type(u).__name__}")
        if not 0 <= u.index < len(infos):
            raise BadInput(f"tensor #{u.index} does not exist (subgraph 0 has {len(infos)} tensors)")
        if u.index in seen:
            raise BadInput(f"tensor #{u.index} is updated twice")
        seen.add(u.index)
        info = infos[u.index]
        if info.outside:
            raise BadInput(f"{info.what}: its data lives outside the flatbuffer (Buffer offset/size or an "
                           f"external buffer, the >2 GB layout); writing it back is not supported")
        if info.buffer <= 0 or info.data_pos < 0 or info.data_len == 0:
            raise BadInput(f"{info.what} is not a constant (it has no data in the file); only constant "
                           f"tensors (weights, biases) can be given new contents")
        if info.sparse:
            raise BadInput(f"{info.what} is stored sparse; writing sparse tensors back is not supported")
        if info.dtype not in ("float16", "float32", "float64", "int8", "int16", "int32", "int64", "uint8",
                              "uint16", "uint32", "uint64", "bool"):
            raise BadInput(f"{info.what}: dtype {info.dtype} cannot be written back")
        data = np.asarray(u.data)
        want = np.dtype("uint8" if info.dtype == "bool" else info.dtype)
        if data.dtype != want and not (info.dtype == "bool" and data.dtype == np.bool_):
            raise BadInput(f"{info.what}: new data is {data.dtype}, the tensor is {info.dtype} "
                           f"{list(info.shape)}")
        old_size = int(np.prod(info.shape, dtype=np.int64))
        if data.shape != info.shape:
            if data.ndim == 1 and data.size == old_size:
                data = data.reshape(info.shape)
            elif data.ndim != len(info.shape):
                raise BadInput(f"{info.what}: new data has shape {list(data.shape)} ({data.size} values), the "
                               f"tensor is {info.dtype} {list(info.shape)} ({old_size} values); a new shape must "
                               f"keep the rank {len(info.shape)}")
            elif data.size == 0:
                raise BadInput(f"{info.what}: new data shape {list(data.shape)} is empty")
        scale = tuple(float(s) for s in u.scale) if u.scale is not None else info.scale
        if u.zero_point is not None:
            zps = tuple(int(z) for z in u.zero_point)
        elif len(info.zero_point) == len(scale):
            zps = info.zero_point
        elif info.zero_point and len(set(info.zero_point)) == 1:
            zps = (info.zero_point[0],) * len(scale)
        else:
            raise BadInput(f"{info.what}: {len(scale)} new scales but {len(info.zero_point)} old zero points "
                           f"that differ; give zero_point too")
        if len(zps) == 1 and len(scale) > 1:
            zps = zps * len(scale)
        if u.scale is not None:
            if not scale or not all(np.isfinite(s) and s > 0 for s in scale):
                raise BadInput(f"{info.what}: scales must be positive and finite, got {list(scale)[:8]}")
        if len(zps) != len(scale):
            raise BadInput(f"{info.what}: {len(scale)} scales but {len(zps)} zero points")
        axis = info.axis
        if data.ndim <= 1 and not 0 <= axis < max(data.ndim, 1):
            axis = 0  # TFLM ignores quantized_dimension of biases (person_detect's say 3); so do we
        if len(scale) > 1:
            if not 0 <= axis < data.ndim or data.shape[axis] != len(scale):
                have = data.shape[axis] if 0 <= axis < data.ndim else "no"
                raise BadInput(f"{info.what}: {len(scale)} per-channel scales but the new data {list(data.shape)} "
                               f"has {have} channels along quantized dimension {axis}"
                               + ("; give new scales (scale=...)" if u.scale is None else ""))
        data = np.array(data, dtype=want.newbyteorder("<"), order="C")  # (keeps a scalar 0-d)
        if tuple(data.shape) == info.shape and data.nbytes != info.data_len:
            raise BadInput(f"{info.what}: the file's buffer holds {info.data_len} bytes, {info.dtype} "
                           f"{list(info.shape)} needs {data.nbytes}")
        changes.append(_Change(info=info, data=data, scale=scale, zero_point=zps, axis=axis))
    return changes


def _check_reshape(infos: list[_TensorInfo], changes: list[_Change],
                   reshape: Mapping[int, tuple[int, ...]]) -> dict[int, tuple[int, ...]]:
    """The activations whose shape really changes: index -> new shape."""
    by_index = {c.info.index: c for c in changes}
    out: dict[int, tuple[int, ...]] = {}
    for idx, shape in reshape.items():
        if not isinstance(idx, (int, np.integer)) or not 0 <= int(idx) < len(infos):
            raise BadInput(f"reshape: tensor #{idx} does not exist (subgraph 0 has {len(infos)} tensors)")
        info = infos[int(idx)]
        try:
            new = tuple(int(s) for s in shape)
        except (TypeError, ValueError):
            raise BadInput(f"reshape: {info.what}: {shape!r} is not a shape") from None
        if any(s <= 0 for s in new):
            raise BadInput(f"reshape: {info.what}: shape {list(new)} must have positive dimensions")
        if info.index in by_index:
            if new != tuple(by_index[info.index].data.shape):
                raise BadInput(f"reshape: {info.what}: shape {list(new)} differs from its new data's "
                               f"{list(by_index[info.index].data.shape)}")
            continue
        if info.data_len > 0 or info.outside:
            raise BadInput(f"reshape: {info.what} is a constant; give its new contents with NewTensorData")
        if new != info.shape:
            out[info.index] = new
    return out


def _shared(c: _Change, changes: list[_Change], users: dict[int, list[tuple[int, int]]]) -> bool:
    """True when another tensor reads c's buffer and would not end up with the same bytes."""
    same = {x.info.index for x in changes if x.info.buffer == c.info.buffer and
            x.data.tobytes() == c.data.tobytes() and x.data.shape == c.data.shape}
    return any(s != 0 or i not in same for s, i in users.get(c.info.buffer, []))


# ---------------------------------------------------------------------------------------------
# patch in place


def _patch(src: bytes, changes: list[_Change]) -> bytes:
    out = bytearray(src)
    for c in changes:
        raw = c.data.tobytes()
        if len(raw) != c.info.data_len or c.info.data_pos + len(raw) > len(out):
            raise BadInput(f"{c.info.what}: the file's buffer holds {c.info.data_len} bytes, the new data "
                           f"{len(raw)}")
        out[c.info.data_pos: c.info.data_pos + len(raw)] = raw
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# rebuild with the object API


def _schema() -> ModuleType:
    for name in _SCHEMA_MODULES:
        try:
            return importlib.import_module(name)
        except ImportError:
            continue
    raise BadInput("changing tensor shapes or quantization rebuilds the model with the TFLite schema's "
                   "object API, which needs the tflite-micro package (pip install tflite-micro) or "
                   "ai-edge-litert")


def _rebuild(src: bytes, changes: list[_Change], shapes: dict[int, tuple[int, ...]],
             unshare: set[int], requantize: Mapping[int, tuple[float, int]] = {}) -> bytes:
    schema = _schema()
    model = schema.ModelT.InitFromObj(schema.Model.GetRootAs(src, 0))
    for sg in model.subgraphs or []:
        for op in sg.operators or []:
            if getattr(op, "largeCustomOptionsOffset", 0):
                raise BadInput("the model keeps custom options outside the flatbuffer (the >2 GB layout); "
                               "rebuilding it is not supported")
    sg = model.subgraphs[0]
    written = {c.info.index for c in changes}
    for c in changes:
        t = sg.tensors[c.info.index]
        _set_data(schema, model, t, c.data, new_buffer=c.info.index in unshare)
        _set_shape(t, tuple(c.data.shape))
        if c.new_quant:
            q = t.quantization or schema.QuantizationParametersT()
            q.scale = np.array(c.scale, dtype=np.float32)
            q.zeroPoint = np.array(c.zero_point, dtype=np.int64)
            q.quantizedDimension = c.axis
            if q.min is not None and len(q.min) != len(c.scale):
                q.min = q.max = None
            t.quantization = q
    for i, shape in shapes.items():
        _set_shape(sg.tensors[i], shape)
    for i, (scale, zp) in requantize.items():  # an activation's new per-tensor quantization (a new head's logits)
        if not 0 <= i < len(sg.tensors):
            raise BadInput(f"tensor index {i} is out of range (the model has {len(sg.tensors)} tensors)")
        q = schema.QuantizationParametersT()
        q.scale = np.array([scale], dtype=np.float32)
        q.zeroPoint = np.array([zp], dtype=np.int64)
        q.quantizedDimension = 0
        sg.tensors[i].quantization = q
    new_shapes = {**{c.info.index: tuple(c.data.shape) for c in changes}, **shapes}
    _fix_reshape_ops(schema, model, sg, new_shapes, written)
    return _pack(schema, model)


def _set_shape(t: Any, shape: tuple[int, ...]) -> None:
    old = tuple(int(v) for v in (t.shape if t.shape is not None else ()))
    if shape == old:
        return
    t.shape = np.array(shape, dtype=np.int32)
    sig = t.shapeSignature
    if sig is not None and len(sig):
        keep = len(sig) == len(shape)
        t.shapeSignature = np.array([-1 if keep and int(s) == -1 else n for s, n in zip(sig, shape)]
                                    if keep else shape, dtype=np.int32)


def _set_data(schema: ModuleType, model: Any, t: Any, data: np.ndarray, new_buffer: bool) -> None:
    raw = np.frombuffer(data.tobytes(), dtype=np.uint8)
    if new_buffer:
        model.buffers.append(schema.BufferT())
        t.buffer = len(model.buffers) - 1
    b = model.buffers[t.buffer]
    b.data, b.offset, b.size = raw, 0, 0


def _fix_reshape_ops(schema: ModuleType, model: Any, sg: Any, new_shapes: dict[int, tuple[int, ...]],
                     written: set[int]) -> None:
    """RESHAPE ops whose output changes shape: their new_shape option and their shape constant
    (when not given by the caller) follow the new output shape, -1 entries kept where the rank is."""
    reshape_code = schema.BuiltinOperator.RESHAPE
    users: dict[int, int] = {}
    for s in model.subgraphs:
        for t in s.tensors or []:
            users[t.buffer] = users.get(t.buffer, 0) + 1
    for op in sg.operators or []:
        oc = model.operatorCodes[op.opcodeIndex]
        if max(oc.builtinCode, oc.deprecatedBuiltinCode) != reshape_code or op.outputs is None or not len(op.outputs):
            continue
        out = int(op.outputs[0])
        if out not in new_shapes:
            continue
        new = new_shapes[out]
        opts = op.builtinOptions
        if opts is not None and getattr(opts, "newShape", None) is not None and len(opts.newShape):
            opts.newShape = np.array(_shape_spec(opts.newShape, new), dtype=np.int32)
        if op.inputs is None or len(op.inputs) < 2 or int(op.inputs[1]) < 0 or int(op.inputs[1]) in written:
            continue
        st = sg.tensors[int(op.inputs[1])]
        buf = model.buffers[st.buffer] if 0 < st.buffer < len(model.buffers) else None
        if buf is None or buf.data is None or not len(buf.data):
            continue  # a shape computed at run time
        dtype = np.dtype(_NP_TYPES.get(st.type, "int32")).newbyteorder("<")
        if dtype.kind != "i":
            continue
        old_spec = np.frombuffer(np.asarray(buf.data, dtype=np.uint8).tobytes(), dtype=dtype)
        spec = np.array(_shape_spec(old_spec, new), dtype=dtype)
        if old_spec.shape == spec.shape and np.array_equal(old_spec, spec):
            continue
        raw = np.frombuffer(spec.tobytes(), dtype=np.uint8)
        if users.get(st.buffer, 0) > 1:
            model.buffers.append(schema.BufferT())
            st.buffer = len(model.buffers) - 1
            buf = model.buffers[-1]
        buf.data, buf.offset, buf.size = raw, 0, 0
        _set_shape(st, (len(spec),))


def _shape_spec(old: Sequence[int], new: tuple[int, ...]) -> list[int]:
    old = [int(v) for v in old]
    if len(old) == len(new):
        return [-1 if o == -1 else n for o, n in zip(old, new)]
    return list(new)


def _pack(schema: ModuleType, model: Any) -> bytes:
    class AlignedBuffer(schema.BufferT):  # type: ignore[misc,name-defined]
        """A BufferT whose data vector starts on a 16-byte boundary, as the converter writes it."""

        def Pack(self, builder: Any) -> int:
            data = None
            if self.data is not None:
                raw = np.asarray(self.data, dtype=np.uint8).tobytes()
                builder.StartVector(1, len(raw), _BUFFER_ALIGN)
                builder.head = builder.head - len(raw)
                builder.Bytes[builder.head: builder.head + len(raw)] = raw
                builder.vectorNumElems = len(raw)
                data = builder.EndVector()
            schema.BufferStart(builder)
            if data is not None:
                schema.BufferAddData(builder, data)
            schema.BufferAddOffset(builder, self.offset)
            schema.BufferAddSize(builder, self.size)
            return schema.BufferEnd(builder)

    aligned = []
    for b in model.buffers or []:
        a = AlignedBuffer()
        a.data, a.offset, a.size = b.data, b.offset, b.size
        aligned.append(a)
    model.buffers = aligned
    size = sum(len(b.data) for b in aligned if b.data is not None)
    builder = flatbuffers.Builder(size + (1 << 16))
    builder.Finish(model.Pack(builder), file_identifier=b"TFL3")
    return bytes(builder.Output())


# ---------------------------------------------------------------------------------------------
# checking the result


def _check_result(src: bytes, out: bytes, changes: list[_Change], shapes: dict[int, tuple[int, ...]]) -> None:
    """Shapes around every op touching a changed tensor must agree, and tinyc must read the file
    (when it reads the source: a model tinyc cannot read is checked no further)."""
    from tinyc.frontend.tflite_reader import read_tflite

    try:
        g = read_tflite(data=out, name="exported")
    except BadInput as e:
        try:
            read_tflite(data=src, name="source")
        except BadInput:
            return
        raise BadInput(f"the exported model does not read back: {e}") from None
    changed = {f"t{c.info.index}" for c in changes if c.new_shape} | {f"t{i}" for i in shapes}
    if not changed:
        return
    for op in g.ops:
        names = [n for n in op.inputs + op.outputs if n is not None]
        if not changed.intersection(names):
            continue
        problem = _shape_problem(op.kind, [g.t(n).shape if n else None for n in op.inputs],
                                 [g.t(n).shape for n in op.outputs])
        if problem:
            involved = ", ".join(f"#{g.t(n).index} {list(g.t(n).shape)}" for n in names)
            raise BadInput(f"after the change, op #{op.index} {op.kind} has inconsistent shapes: {problem} "
                           f"(tensors {involved}); give every activation downstream of the change its new "
                           f"shape in reshape")


def _shape_problem(kind: str, ins: list[tuple[int, ...] | None], outs: list[tuple[int, ...]]) -> str:
    size = lambda s: int(np.prod(s, dtype=np.int64)) if s else 1  # noqa: E731
    if not ins or ins[0] is None or not outs:
        return ""
    x, y = ins[0], outs[0]
    if kind in _SAME_SHAPE_OPS:
        return "" if x == y else f"output {list(y)} differs from input {list(x)}"
    if kind in _SAME_SIZE_OPS:
        return "" if size(x) == size(y) else f"output has {size(y)} values, input {size(x)}"
    if kind in ("FULLY_CONNECTED", "CONV_2D", "DEPTHWISE_CONV_2D") and len(ins) > 1 and ins[1]:
        w = ins[1]
        units = w[-1] if kind == "DEPTHWISE_CONV_2D" else w[0]
        if y and y[-1] != units:
            return f"{units} output channels in the weights, {y[-1]} in the output"
        if len(ins) > 2 and ins[2] is not None and size(ins[2]) != units:
            return f"{size(ins[2])} biases for {units} output channels"
        if kind == "FULLY_CONNECTED" and size(x) * units != size(y) * w[-1]:
            return f"input {list(x)} does not give {size(y) // max(units, 1)} rows of {w[-1]} features"
        if kind == "CONV_2D" and x and x[-1] != w[-1]:
            return f"input has {x[-1]} channels, the weights {w[-1]}"
    return ""
