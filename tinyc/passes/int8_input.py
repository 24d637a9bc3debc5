"""`--input-type int8`: the application hands the model int8 data, not float32.

Converters often leave a float32 input followed by a QUANTIZE (hanlab's MCUNet models do). On a
microcontroller the float frame is pure waste: a camera gives 8-bit pixels, and a float32 copy
of a 224x224x3 image is 602,112 B, four times the int8 tensor the first layer actually reads.
This pass removes such a QUANTIZE, so the model input becomes the QUANTIZE's int8 output with
its scale and zero point (the application quantizes, or for images subtracts 128, itself). It is
the compile-time twin of the TFLite converter's ``inference_input_type=tf.int8``.

The result stays bit-exact with the unchanged model: TFLM's float QUANTIZE maps the float
``s * (q - z)`` back to ``q`` for every int8 ``q``, which `reference_inputs` relies on.
"""

from __future__ import annotations

from typing import Sequence

import numpy as np

from tinyc.errors import BadInput
from tinyc.ir import Graph, Op, Tensor

INPUT_TYPES = ("model", "int8")


def _quantize_reader(g: Graph, name: str, consumers: dict[str, list[Op]]) -> Op | None:
    """The float->int8 QUANTIZE that is the only reader of float32 input `name`, if there is one."""
    readers = consumers.get(name, [])
    q = readers[0] if len(readers) == 1 else None
    if (g.t(name).dtype != "float32" or q is None or q.kind != "QUANTIZE" or name in g.outputs
            or g.t(q.outputs[0]).dtype != "int8"):
        return None
    return q


def float_inputs_to_strip(g: Graph) -> list[int]:
    """The model inputs --input-type int8 would turn into int8 (for the report's advice)."""
    consumers = g.consumers()
    return [k for k, n in enumerate(g.inputs) if _quantize_reader(g, n, consumers) is not None]


def run(g: Graph) -> Graph:
    """g with every float32 model input that only feeds a float->int8 QUANTIZE replaced by that
    QUANTIZE's output. Inputs that are int8 already stay as they are; any other input is an error,
    because the user asked for int8 and the model cannot take it."""
    consumers = g.consumers()
    inputs, dropped = list(g.inputs), set()
    for k, name in enumerate(g.inputs):
        t = g.t(name)
        if t.dtype == "int8":
            continue
        q = _quantize_reader(g, name, consumers)
        if q is None:
            first = ", ".join(op.label for op in consumers.get(name, [])) or "nothing"
            raise BadInput(f"--input-type int8: model input {k} ({t.label or name}, {t.dtype}{list(t.shape)}) "
                           f"is not a float32 input read only by a QUANTIZE to int8 (it feeds {first}); "
                           f"compile with --input-type model")
        inputs[k] = q.outputs[0]
        dropped.add(id(q))
    if not dropped:
        return g
    ops = tuple(op for op in g.ops if id(op) not in dropped)
    tensors = {n: t for n, t in g.tensors.items() if n not in set(g.inputs) - set(inputs)}
    return g.replace(ops=ops, inputs=tuple(inputs), tensors=tensors)


def reference_inputs(source: Graph, compiled: Graph, inputs: Sequence[np.ndarray]) -> list[np.ndarray]:
    """The arrays the unchanged model (TFLM, LiteRT) takes for `inputs` given to the compiled one:
    an input made int8 by this pass goes back to float32 as s * (q - z), which the model's own
    QUANTIZE turns into the same q."""
    out = []
    for name_src, name, x in zip(source.inputs, compiled.inputs, inputs):
        ts, tc = source.t(name_src), compiled.t(name)
        out.append(_dequantize(np.asarray(x), tc) if ts.dtype != tc.dtype else np.asarray(x))
    return out


def _dequantize(x: np.ndarray, t: Tensor) -> np.ndarray:
    assert t.quant is not None
    return (np.float32(t.quant.s) * (x.astype(np.float32) - np.float32(t.quant.zp))).astype(np.float32)
