"""Build small (quantized) TFLite flatbuffers in-process, without TensorFlow.

Tests need tiny single-op or few-op models with exact control over shapes,
quantization parameters and options; the converter can't give us that (and
isn't installed), so we emit the flatbuffer directly through the generated
builder functions of the ``tflite`` package.

Example::

    b = ModelBuilder()
    x = b.input("x", shape=(1, 8, 8, 3), dtype="int8", scale=0.05, zero_point=-3)
    w = b.const("w", w_int8, scale=[...], zero_point=0, quantized_dimension=0)
    y = b.tensor("y", shape=(1, 8, 8, 4), dtype="int8", scale=0.1, zero_point=2)
    b.op("CONV_2D", inputs=[x, w, None], outputs=[y], options=dict(padding="SAME"))
    b.output(y)
    model_bytes = b.build()

Tensor handles are plain ``int`` tensor indices (``None`` in an op's input
list means "optional input absent" and is written as index -1).
"""

from __future__ import annotations

import importlib
from dataclasses import dataclass, field
from types import ModuleType
from typing import Any, Iterable, Sequence

import flatbuffers
import numpy as np

__all__ = ["ModelBuilder", "DTYPES", "SUPPORTED_OPS"]


def _mod(name: str) -> ModuleType:
    """Import a generated schema module (``tflite.X`` attributes are classes, not modules)."""
    return importlib.import_module(f"tflite.{name}")


_TensorType = _mod("TensorType").TensorType
_BuiltinOperator = _mod("BuiltinOperator").BuiltinOperator
_BuiltinOptions = _mod("BuiltinOptions").BuiltinOptions

# dtype name -> (TensorType enum value, numpy dtype)
DTYPES: dict[str, tuple[int, np.dtype]] = {
    "int8": (_TensorType.INT8, np.dtype(np.int8)),
    "uint8": (_TensorType.UINT8, np.dtype(np.uint8)),
    "int16": (_TensorType.INT16, np.dtype(np.int16)),
    "int32": (_TensorType.INT32, np.dtype(np.int32)),
    "int64": (_TensorType.INT64, np.dtype(np.int64)),
    "float32": (_TensorType.FLOAT32, np.dtype(np.float32)),
    "bool": (_TensorType.BOOL, np.dtype(np.bool_)),
}

# Option name -> enum class, so options may be given as strings ("SAME", "RELU", "int32").
_ENUM_OPTIONS: dict[str, Any] = {
    "padding": _mod("Padding").Padding,
    "fused_activation_function": _mod("ActivationFunctionType").ActivationFunctionType,
    "out_type": _TensorType,
    "quantized_bias_type": _TensorType,
    "weights_format": _mod("FullyConnectedOptionsWeightsFormat").FullyConnectedOptionsWeightsFormat,
}


@dataclass(frozen=True)
class _OpSpec:
    """How one builtin op is written: its options table (or None) and option defaults."""

    table: str | None
    defaults: dict[str, Any] = field(default_factory=dict)


_CONV_DEFAULTS = dict(padding="SAME", stride_w=1, stride_h=1, dilation_w_factor=1,
                      dilation_h_factor=1, fused_activation_function="NONE")
_POOL_DEFAULTS = dict(padding="VALID", stride_w=1, stride_h=1, filter_width=1,
                      filter_height=1, fused_activation_function="NONE")
_ACT_ONLY = dict(fused_activation_function="NONE")

# Defaults are the values a converter would write (schema defaults of 0 for strides,
# dilations, depth_multiplier or beta make TFLM divide by zero or output garbage).
SUPPORTED_OPS: dict[str, _OpSpec] = {
    "CONV_2D": _OpSpec("Conv2DOptions", _CONV_DEFAULTS),
    "DEPTHWISE_CONV_2D": _OpSpec("DepthwiseConv2DOptions", {**_CONV_DEFAULTS, "depth_multiplier": 1}),
    "FULLY_CONNECTED": _OpSpec("FullyConnectedOptions", dict(
        fused_activation_function="NONE", keep_num_dims=False, weights_format="DEFAULT")),
    "ADD": _OpSpec("AddOptions", _ACT_ONLY),
    "SUB": _OpSpec("SubOptions", _ACT_ONLY),
    "MUL": _OpSpec("MulOptions", _ACT_ONLY),
    "DIV": _OpSpec("DivOptions", _ACT_ONLY),
    "AVERAGE_POOL_2D": _OpSpec("Pool2DOptions", _POOL_DEFAULTS),
    "MAX_POOL_2D": _OpSpec("Pool2DOptions", _POOL_DEFAULTS),
    "MEAN": _OpSpec("ReducerOptions", dict(keep_dims=False)),
    "SUM": _OpSpec("ReducerOptions", dict(keep_dims=False)),
    "REDUCE_MAX": _OpSpec("ReducerOptions", dict(keep_dims=False)),
    "PAD": _OpSpec("PadOptions"),
    "PADV2": _OpSpec("PadV2Options"),
    "RESHAPE": _OpSpec("ReshapeOptions"),  # new_shape defaults to the output tensor's shape
    "SOFTMAX": _OpSpec("SoftmaxOptions", dict(beta=1.0)),
    "CONCATENATION": _OpSpec("ConcatenationOptions", dict(axis=0, fused_activation_function="NONE")),
    "QUANTIZE": _OpSpec("QuantizeOptions"),
    "DEQUANTIZE": _OpSpec("DequantizeOptions"),
    "HARD_SWISH": _OpSpec("HardSwishOptions"),
    "LOGISTIC": _OpSpec(None),
    "TANH": _OpSpec(None),
    "RELU": _OpSpec(None),
    "RELU6": _OpSpec(None),
    "RELU_N1_TO_1": _OpSpec(None),
    "LEAKY_RELU": _OpSpec("LeakyReluOptions", dict(alpha=0.2)),
    "MAXIMUM": _OpSpec("MaximumMinimumOptions"),
    "MINIMUM": _OpSpec("MaximumMinimumOptions"),
    "TRANSPOSE": _OpSpec("TransposeOptions"),
    "STRIDED_SLICE": _OpSpec("StridedSliceOptions", dict(
        begin_mask=0, end_mask=0, ellipsis_mask=0, new_axis_mask=0, shrink_axis_mask=0, offset=False)),
    "RESIZE_NEAREST_NEIGHBOR": _OpSpec("ResizeNearestNeighborOptions", dict(
        align_corners=False, half_pixel_centers=False)),
    "RESIZE_BILINEAR": _OpSpec("ResizeBilinearOptions", dict(
        align_corners=False, half_pixel_centers=False)),
    "PACK": _OpSpec("PackOptions", dict(axis=0)),  # values_count defaults to len(inputs)
    "UNPACK": _OpSpec("UnpackOptions", dict(axis=0)),  # num defaults to len(outputs)
    "SHAPE": _OpSpec("ShapeOptions", dict(out_type="INT32")),
    "SQUEEZE": _OpSpec("SqueezeOptions"),
    "SPLIT": _OpSpec("SplitOptions"),  # num_splits defaults to len(outputs)
}


def _camel(snake: str) -> str:
    return "".join(part[:1].upper() + part[1:] for part in snake.split("_"))


@dataclass
class _Tensor:
    name: str
    shape: tuple[int, ...]
    dtype: str
    scale: list[float] | None
    zero_point: list[int] | None
    quantized_dimension: int
    data: bytes | None  # None -> activation (buffer 0); bytes -> constant buffer
    is_variable: bool = False


@dataclass
class _Op:
    name: str
    inputs: list[int]
    outputs: list[int]
    options: dict[str, Any]
    version: int


class ModelBuilder:
    """Accumulate tensors and ops of one subgraph, then serialize with :meth:`build`."""

    def __init__(self, description: str = "tinyc tests.support.tflite_builder") -> None:
        self.description = description
        self.tensors: list[_Tensor] = []
        self.ops: list[_Op] = []
        self.inputs: list[int] = []
        self.outputs: list[int] = []

    # ------------------------------------------------------------------ tensors
    def _add_tensor(self, name: str, shape: Sequence[int], dtype: str, scale: Any,
                    zero_point: Any, quantized_dimension: int, data: bytes | None,
                    is_variable: bool = False) -> int:
        if dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}; expected one of {sorted(DTYPES)}")
        shape = tuple(int(d) for d in shape)
        scales: list[float] | None = None
        zps: list[int] | None = None
        if scale is not None:
            scales = [float(s) for s in np.atleast_1d(np.asarray(scale, dtype=np.float64))]
            if zero_point is None:
                zero_point = 0
            zps = [int(z) for z in np.atleast_1d(np.asarray(zero_point, dtype=np.int64))]
            if len(zps) == 1 and len(scales) > 1:
                zps = zps * len(scales)
            if len(zps) != len(scales):
                raise ValueError(f"{name}: {len(scales)} scales but {len(zps)} zero points")
            if len(scales) > 1:
                if not 0 <= quantized_dimension < len(shape):
                    raise ValueError(f"{name}: quantized_dimension {quantized_dimension} out of range")
                if shape[quantized_dimension] != len(scales):
                    raise ValueError(f"{name}: {len(scales)} scales but dim {quantized_dimension} "
                                     f"has size {shape[quantized_dimension]}")
        elif zero_point is not None:
            raise ValueError(f"{name}: zero_point given without scale")
        self.tensors.append(_Tensor(name, shape, dtype, scales, zps, int(quantized_dimension),
                                    data, is_variable))
        return len(self.tensors) - 1

    def input(self, name: str, shape: Sequence[int], dtype: str = "int8",
              scale: float | Sequence[float] | None = None,
              zero_point: int | Sequence[int] | None = None,
              quantized_dimension: int = 0) -> int:
        """Add a graph input tensor (registered in the subgraph's input list, in call order)."""
        idx = self.tensor(name, shape, dtype, scale, zero_point, quantized_dimension)
        self.inputs.append(idx)
        return idx

    def tensor(self, name: str, shape: Sequence[int], dtype: str = "int8",
               scale: float | Sequence[float] | None = None,
               zero_point: int | Sequence[int] | None = None,
               quantized_dimension: int = 0, is_variable: bool = False) -> int:
        """Add an activation tensor (no data; lives in the arena)."""
        return self._add_tensor(name, shape, dtype, scale, zero_point, quantized_dimension,
                                None, is_variable)

    def const(self, name: str, data: Any, scale: float | Sequence[float] | None = None,
              zero_point: int | Sequence[int] | None = None, quantized_dimension: int = 0,
              dtype: str | None = None) -> int:
        """Add a constant tensor whose contents are stored in its own buffer.

        dtype defaults to the numpy array's dtype; python lists become int32.
        """
        arr = np.asarray(data)
        if dtype is None:
            if arr.dtype == np.int64 and not isinstance(data, np.ndarray):
                arr = arr.astype(np.int32)  # python int lists: TFLite index tensors are int32
            elif arr.dtype == np.float64:
                arr = arr.astype(np.float32)
            dtype = next((k for k, (_, d) in DTYPES.items() if d == arr.dtype), None)
            if dtype is None:
                raise ValueError(f"{name}: unsupported constant dtype {arr.dtype}")
        elif dtype not in DTYPES:
            raise ValueError(f"unsupported dtype {dtype!r}")
        npdt = DTYPES[dtype][1]
        if arr.dtype != npdt:
            conv = arr.astype(npdt)
            if not np.array_equal(conv, arr):
                raise ValueError(f"{name}: data does not fit dtype {dtype}")
            arr = conv
        raw = np.ascontiguousarray(arr).astype(npdt.newbyteorder("<"), copy=False).tobytes()
        return self._add_tensor(name, arr.shape, dtype, scale, zero_point, quantized_dimension, raw)

    def output(self, *tensors: int) -> None:
        """Mark tensor(s) as graph outputs (in call order)."""
        for t in tensors:
            self._check_index(t)
            self.outputs.append(int(t))

    def _check_index(self, t: int) -> None:
        if not isinstance(t, (int, np.integer)) or not 0 <= int(t) < len(self.tensors):
            raise ValueError(f"bad tensor handle {t!r}")

    # ---------------------------------------------------------------------- ops
    def op(self, name: str, inputs: Sequence[int | None], outputs: Sequence[int],
           options: dict[str, Any] | None = None, version: int = 1) -> None:
        """Append an operator; options are validated now so typos fail at the call site."""
        name = name.upper()
        spec = SUPPORTED_OPS.get(name)
        if spec is None:
            raise ValueError(f"unsupported op {name!r}; supported: {sorted(SUPPORTED_OPS)}")
        ins = [-1 if t is None else int(t) for t in inputs]
        for t in ins:
            if t != -1:
                self._check_index(t)
        outs = [int(t) for t in outputs]
        for t in outs:
            self._check_index(t)
        opts = dict(spec.defaults)
        # Defaults that depend on the op's tensors.
        if name == "PACK":
            opts["values_count"] = len(ins)
        elif name == "UNPACK":
            opts["num"] = len(outs)
        elif name == "SPLIT":
            opts["num_splits"] = len(outs)
        elif name == "RESHAPE":
            opts["new_shape"] = list(self.tensors[outs[0]].shape) if outs else []
        user = dict(options or {})
        if spec.table is None and user:
            raise ValueError(f"{name} takes no options, got {sorted(user)}")
        opts.update(user)
        if spec.table is not None:
            module = _mod(spec.table)
            for key, value in opts.items():
                if not hasattr(module, f"{spec.table}Add{_camel(key)}"):
                    raise ValueError(f"{name}: unknown option {key!r}")
                self._encode_option_value(name, key, value)  # validates enum strings
        self.ops.append(_Op(name, ins, outs, opts, int(version)))

    @staticmethod
    def _encode_option_value(op: str, key: str, value: Any) -> Any:
        """Map enum strings to their numeric value; normalise numpy scalars."""
        if isinstance(value, str):
            enum = _ENUM_OPTIONS.get(key)
            if enum is None or not hasattr(enum, value.upper()):
                raise ValueError(f"{op}: bad value {value!r} for option {key!r}")
            return int(getattr(enum, value.upper()))
        if isinstance(value, (np.bool_, bool)):
            return bool(value)
        if isinstance(value, np.integer):
            return int(value)
        if isinstance(value, np.floating):
            return float(value)
        if isinstance(value, (list, tuple, np.ndarray)):
            return [int(v) for v in np.asarray(value).ravel()]
        return value

    # -------------------------------------------------------------------- build
    def build(self) -> bytes:
        """Serialize to a .tflite flatbuffer (schema version 3, one subgraph)."""
        if not self.inputs or not self.outputs:
            raise ValueError("model needs at least one input and one output")
        fb = flatbuffers.Builder(1024)

        # Buffers: 0 is the mandatory empty sentinel, then one per constant tensor.
        buffer_of: dict[int, int] = {}
        buffer_offsets = [self._buffer(fb, None)]
        for i, t in enumerate(self.tensors):
            if t.data is not None:
                buffer_of[i] = len(buffer_offsets)
                buffer_offsets.append(self._buffer(fb, t.data))

        tensor_offsets = [self._tensor(fb, t, buffer_of.get(i, 0))
                          for i, t in enumerate(self.tensors)]

        # Operator codes, deduplicated by (op, version) in first-use order.
        code_index: dict[tuple[str, int], int] = {}
        for o in self.ops:
            code_index.setdefault((o.name, o.version), len(code_index))
        OC = _mod("OperatorCode")
        code_offsets = []
        for (name, version) in code_index:
            code = int(getattr(_BuiltinOperator, name))
            OC.OperatorCodeStart(fb)
            OC.OperatorCodeAddDeprecatedBuiltinCode(fb, min(code, 127))
            OC.OperatorCodeAddBuiltinCode(fb, code)
            OC.OperatorCodeAddVersion(fb, version)
            code_offsets.append(OC.OperatorCodeEnd(fb))

        op_offsets = [self._operator(fb, o, code_index[(o.name, o.version)]) for o in self.ops]

        SG = _mod("SubGraph")
        tensors_vec = self._offset_vector(fb, SG.SubGraphStartTensorsVector, tensor_offsets)
        inputs_vec = self._int32_vector(fb, self.inputs)
        outputs_vec = self._int32_vector(fb, self.outputs)
        ops_vec = self._offset_vector(fb, SG.SubGraphStartOperatorsVector, op_offsets)
        sg_name = fb.CreateString("main")
        SG.SubGraphStart(fb)
        SG.SubGraphAddTensors(fb, tensors_vec)
        SG.SubGraphAddInputs(fb, inputs_vec)
        SG.SubGraphAddOutputs(fb, outputs_vec)
        SG.SubGraphAddOperators(fb, ops_vec)
        SG.SubGraphAddName(fb, sg_name)
        subgraph = SG.SubGraphEnd(fb)

        M = _mod("Model")
        codes_vec = self._offset_vector(fb, M.ModelStartOperatorCodesVector, code_offsets)
        subgraphs_vec = self._offset_vector(fb, M.ModelStartSubgraphsVector, [subgraph])
        buffers_vec = self._offset_vector(fb, M.ModelStartBuffersVector, buffer_offsets)
        desc = fb.CreateString(self.description)
        M.ModelStart(fb)
        M.ModelAddVersion(fb, 3)
        M.ModelAddOperatorCodes(fb, codes_vec)
        M.ModelAddSubgraphs(fb, subgraphs_vec)
        M.ModelAddDescription(fb, desc)
        M.ModelAddBuffers(fb, buffers_vec)
        model = M.ModelEnd(fb)
        fb.Finish(model, file_identifier=b"TFL3")
        return bytes(fb.Output())

    # ------------------------------------------------------------ flatbuffer bits
    @staticmethod
    def _offset_vector(fb: flatbuffers.Builder, start: Any, offsets: Sequence[int]) -> int:
        start(fb, len(offsets))
        for off in reversed(offsets):
            fb.PrependUOffsetTRelative(off)
        return fb.EndVector()

    @staticmethod
    def _int32_vector(fb: flatbuffers.Builder, values: Iterable[int]) -> int:
        return fb.CreateNumpyVector(np.asarray(list(values), dtype="<i4"))

    @staticmethod
    def _buffer(fb: flatbuffers.Builder, data: bytes | None) -> int:
        B = _mod("Buffer")
        data_vec = None
        if data:
            # 16-byte alignment so int32/float data can be read in place by TFLM.
            fb.StartVector(1, len(data), 16)
            fb.head -= len(data)
            fb.Bytes[fb.head:fb.head + len(data)] = data
            data_vec = fb.EndVector()
        B.BufferStart(fb)
        if data_vec is not None:
            B.BufferAddData(fb, data_vec)
        return B.BufferEnd(fb)

    @staticmethod
    def _tensor(fb: flatbuffers.Builder, t: _Tensor, buffer: int) -> int:
        T = _mod("Tensor")
        Q = _mod("QuantizationParameters")
        quant = None
        if t.scale is not None:
            scale_vec = fb.CreateNumpyVector(np.asarray(t.scale, dtype="<f4"))
            zp_vec = fb.CreateNumpyVector(np.asarray(t.zero_point, dtype="<i8"))
            Q.QuantizationParametersStart(fb)
            Q.QuantizationParametersAddScale(fb, scale_vec)
            Q.QuantizationParametersAddZeroPoint(fb, zp_vec)
            Q.QuantizationParametersAddQuantizedDimension(fb, t.quantized_dimension)
            quant = Q.QuantizationParametersEnd(fb)
        shape_vec = fb.CreateNumpyVector(np.asarray(t.shape, dtype="<i4"))
        name = fb.CreateString(t.name)
        T.TensorStart(fb)
        T.TensorAddShape(fb, shape_vec)
        T.TensorAddType(fb, DTYPES[t.dtype][0])
        T.TensorAddBuffer(fb, buffer)
        T.TensorAddName(fb, name)
        if quant is not None:
            T.TensorAddQuantization(fb, quant)
        if t.is_variable:
            T.TensorAddIsVariable(fb, True)
        return T.TensorEnd(fb)

    def _operator(self, fb: flatbuffers.Builder, o: _Op, opcode_index: int) -> int:
        spec = SUPPORTED_OPS[o.name]
        opts_off = None
        if spec.table is not None:
            module = _mod(spec.table)
            values = {k: self._encode_option_value(o.name, k, v) for k, v in o.options.items()}
            # Vectors must be created before the table is started.
            vectors = {}
            for k, v in values.items():
                if isinstance(v, list):
                    vectors[k] = self._int32_vector(fb, v)
            getattr(module, f"{spec.table}Start")(fb)
            for k, v in values.items():
                getattr(module, f"{spec.table}Add{_camel(k)}")(fb, vectors.get(k, v))
            opts_off = getattr(module, f"{spec.table}End")(fb)
        O = _mod("Operator")
        ins = self._int32_vector(fb, o.inputs)
        outs = self._int32_vector(fb, o.outputs)
        O.OperatorStart(fb)
        O.OperatorAddOpcodeIndex(fb, opcode_index)
        O.OperatorAddInputs(fb, ins)
        O.OperatorAddOutputs(fb, outs)
        if opts_off is not None:
            O.OperatorAddBuiltinOptionsType(fb, int(getattr(_BuiltinOptions, spec.table)))
            O.OperatorAddBuiltinOptions(fb, opts_off)
        return O.OperatorEnd(fb)
