"""A float64 numpy reference of forward + backward over tinyc's IR: the training oracle.

Why it exists: the compiled C training step (int8 forward, float32 backward, sparse updates)
needs something independent to be tested against, and a float fine-tune needs a baseline. This
module is that: it shares no code with the training compiler or the C kernels beyond the IR
and the geometry rules TFLite defines (convolution windows from tinyc.ops._conv_math, pooling
windows from tinyc.ops.pooling, the quantized activation clamp from tinyc.quant), so a bug in
the compiler cannot hide by being repeated here.

Conventions (the C kernels follow the same ones; see runtime_c/include/tinyc/train_*.h):

* Real arithmetic everywhere: requantization, rounding and int8 saturation are ignored.
  Weights are `scale[out channel] * q`, biases `input_scale * weight_scale[out channel] * q`.
* Loss: cross-entropy of softmax(beta * logits) against an integer label; the logits are the
  classifier output before any SOFTMAX / QUANTIZE / DEQUANTIZE.
* Straight-through estimator for fused activations: the output gradient is multiplied by
  `lo < y < hi`, computed from the op's OUTPUT y, (lo, hi) the activation's range (RELU (0, inf),
  RELU6 (0, 6), RELU_N1_TO_1 (-1, 1)). With `quantized=True` (values from an int8 run) the range
  is intersected with the int8 clamp the kernel really applies, in real units:
  scale * (act_min - zp), scale * (act_max - zp) with (act_min, act_max) TFLite's
  CalculateActivationRangeQuantized (which is itself inside the representable range
  [scale * (-128 - zp), scale * (127 - zp)]), so a value sitting at the clamp is masked, exactly
  like the C mask `act_min < q < act_max`. NONE has no mask at all, quantized or not.
* backward() reads activations only from the `values` it is given (never recomputes them),
  so gradients from an int8 run's saved (dequantized) activations can be compared with the C.
"""

from __future__ import annotations

import math
from typing import Callable, Iterable, Mapping

import numpy as np

from tinyc.ir import Graph, Op, Tensor
from tinyc.ops._conv_math import windows
from tinyc.ops.pooling import out_size as _pool_out_size, pad_before as _pool_pad_before
from tinyc.quant import activation_range

__all__ = ["FloatNet", "quantized_values"]

F64 = np.float64

#: real range of each fused activation (no entry: no mask at all)
_ACT_RANGES: dict[str, tuple[float, float]] = {
    "RELU": (0.0, math.inf),
    "RELU6": (0.0, 6.0),
    "RELU_N1_TO_1": (-1.0, 1.0),
}
_FUSED = ("NONE",) + tuple(_ACT_RANGES)
_QRANGE = {"int8": (-128, 127), "uint8": (0, 255), "int16": (-32768, 32767)}

_WEIGHTED = ("CONV_2D", "DEPTHWISE_CONV_2D", "FULLY_CONNECTED")
_IDENTITY = ("QUANTIZE", "DEQUANTIZE", "RESHAPE", "SQUEEZE", "EXPAND_DIMS")


def _dequant(t: Tensor, data: np.ndarray) -> np.ndarray:
    """Real float64 values of quantized data (per tensor, or per channel along quant.axis)."""
    a = np.asarray(data).astype(F64)
    q = t.quant
    if q is None or not q.scale:
        return a
    if q.per_channel:
        shape = [1] * a.ndim
        shape[q.axis] = -1
        s = np.asarray(q.scale, dtype=F64).reshape(shape)
        zp = np.asarray(q.zero_point, dtype=F64).reshape(shape)
        return s * (a - zp)
    # The same expression as the mask bounds below (float(s) * float(q - zp)), so a value
    # dequantized from the clamp code compares equal to the bound.
    return float(q.s) * (a - float(q.zp))


def quantized_values(g: Graph, int8_values: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Dequantize the tensors of an int8 run (int8 / uint8 / int32, keyed by tensor name) into
    real float64 values shaped as the tensors, ready for FloatNet.backward(quantized=True)."""
    out: dict[str, np.ndarray] = {}
    for name, arr in int8_values.items():
        if name not in g.tensors:
            raise ValueError(f"quantized_values: tensor {name!r} is not in graph {g.name!r}")
        t = g.t(name)
        a = np.asarray(arr)
        if a.size != t.size:
            raise ValueError(f"quantized_values: {name!r} has {a.size} values, the tensor {t.size} "
                             f"(shape {list(t.shape)})")
        out[name] = _dequant(t, a.reshape(t.shape))
    return out


def _unbroadcast(grad: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
    """Sum a gradient of the broadcast result back to an operand's shape."""
    extra = grad.ndim - len(shape)
    if extra > 0:
        grad = grad.sum(axis=tuple(range(extra)))
    axes = tuple(i for i, n in enumerate(shape) if n == 1 and grad.shape[i] != 1)
    if axes:
        grad = grad.sum(axis=axes, keepdims=True)
    return grad.reshape(shape)


class _Geo:
    """One windowed op's geometry (both axes): kernel, stride, dilation, leading pad, output."""

    __slots__ = ("kh", "kw", "sh", "sw", "dh", "dw", "ph", "pw", "oh", "ow")

    def __init__(self, kh: int, kw: int, sh: int, sw: int, dh: int, dw: int, ph: int, pw: int,
                 oh: int, ow: int) -> None:
        self.kh, self.kw, self.sh, self.sw, self.dh, self.dw = kh, kw, sh, sw, dh, dw
        self.ph, self.pw, self.oh, self.ow = ph, pw, oh, ow

    def padded(self, x: np.ndarray, fill: float = 0.0) -> np.ndarray:
        """x (NHWC) placed in a buffer holding every tap any window reads."""
        n, h, w, c = x.shape
        hp = max(self.ph + h, (self.oh - 1) * self.sh + (self.kh - 1) * self.dh + 1)
        wp = max(self.pw + w, (self.ow - 1) * self.sw + (self.kw - 1) * self.dw + 1)
        xp = np.full((n, hp, wp, c), fill, dtype=F64)
        xp[:, self.ph:self.ph + h, self.pw:self.pw + w, :] = x
        return xp

    def tap(self, xp: np.ndarray, i: int, j: int) -> np.ndarray:
        """The view of what tap (i, j) of every window reads: [N, OH, OW, C] (writable)."""
        r, c = i * self.dh, j * self.dw
        return xp[:, r:r + (self.oh - 1) * self.sh + 1:self.sh, c:c + (self.ow - 1) * self.sw + 1:self.sw, :]

    def crop(self, xp: np.ndarray, shape: tuple[int, ...]) -> np.ndarray:
        _, h, w, _ = shape
        return np.ascontiguousarray(xp[:, self.ph:self.ph + h, self.pw:self.pw + w, :])

    def taps(self) -> Iterable[tuple[int, int]]:
        return ((i, j) for i in range(self.kh) for j in range(self.kw))


class _Lookup:
    """Values by tensor name: activations from a dict (aliases resolved to reshaped views of
    their target), weights and biases from FloatNet.params, other constants dequantized."""

    def __init__(self, net: "FloatNet", acts: Mapping[str, np.ndarray]) -> None:
        self.net, self.acts = net, acts
        self.cache: dict[str, np.ndarray] = {}

    def __call__(self, name: str) -> np.ndarray:
        net = self.net
        if name in net.params:
            return net.params[name]
        if name in self.cache:
            return self.cache[name]
        t = net.g.t(name)
        if t.is_const:
            return net._const(name)
        if name in self.acts:
            v = np.asarray(self.acts[name], dtype=F64)
        elif name in net.g.aliases:
            v = self(net.g.aliases[name])
        else:
            raise ValueError(f"FloatNet: no value for tensor {name!r} (give every activation of the path "
                             f"to {net.logits!r}, e.g. the dict forward() returns)")
        if v.size != t.size:
            raise ValueError(f"FloatNet: value of {name!r} has {v.size} elements, the tensor {t.size}")
        v = v.reshape(t.shape)
        self.cache[name] = v
        return v


class FloatNet:
    """Float64 forward and backward of the ops of a graph that compute its classifier logits.

    Attributes besides the API: `g`, `logits`, `beta`; `ops`, the ops on the path in graph order;
    `input_names`, the graph inputs they read.
    """

    def __init__(self, g: Graph, logits: str, beta: float = 1.0) -> None:
        """Collect the ops of g needed to compute `logits` (in graph order) and copy their weights
        and biases to float64 `params`. Raises ValueError naming an op there is no rule for."""
        if logits not in g.tensors:
            raise ValueError(f"FloatNet: logits tensor {logits!r} is not in graph {g.name!r}")
        self.g, self.logits, self.beta = g, logits, float(beta)
        producer: dict[str, Op] = {}
        for op in g.ops:
            for o in op.outputs:
                producer[o] = op
        slice_targets = {g.aliases[a] for a in g.alias_offsets}

        picked: set[int] = set()
        inputs: list[str] = []
        seen: set[str] = set()
        stack = [logits]
        while stack:
            name = stack.pop()
            if name in seen:
                continue
            seen.add(name)
            t = g.t(name)
            if t.is_const:
                continue
            op = producer.get(name)
            if op is not None:
                if id(op) not in picked:
                    picked.add(id(op))
                    stack.extend(i for i in op.inputs if i is not None)
                continue
            if name in slice_targets:
                raise ValueError(f"FloatNet: tensor {name!r} on the path to {logits!r} is assembled in place "
                                 "from slices (CONCATENATION); no rule for that")
            if name in g.aliases:
                stack.append(g.aliases[name])
                continue
            if name in g.inputs:
                inputs.append(name)
                continue
            raise ValueError(f"FloatNet: tensor {name!r} on the path to {logits!r} is neither produced by "
                             "an op nor a graph input")
        self.ops: tuple[Op, ...] = tuple(op for op in g.ops if id(op) in picked)
        self.input_names: tuple[str, ...] = tuple(n for n in g.inputs if n in inputs)

        self._fwd: dict[str, Callable] = {
            "CONV_2D": self._conv_fwd, "DEPTHWISE_CONV_2D": self._dw_fwd, "FULLY_CONNECTED": self._fc_fwd,
            "ADD": self._binary_fwd, "SUB": self._binary_fwd, "MUL": self._binary_fwd,
            "AVERAGE_POOL_2D": self._avgpool_fwd, "MAX_POOL_2D": self._maxpool_fwd, "MEAN": self._mean_fwd,
            "TRANSPOSE": self._transpose_fwd, "PAD": self._pad_fwd, "PADV2": self._pad_fwd,
            "RELU": self._clip_fwd, "RELU6": self._clip_fwd, "RELU_N1_TO_1": self._clip_fwd,
            "HARD_SWISH": self._hswish_fwd, "LOGISTIC": self._logistic_fwd, "TANH": self._tanh_fwd,
            **{k: self._identity_fwd for k in _IDENTITY},
        }
        self._bwd: dict[str, Callable] = {
            "CONV_2D": self._conv_bwd, "DEPTHWISE_CONV_2D": self._dw_bwd, "FULLY_CONNECTED": self._fc_bwd,
            "ADD": self._binary_bwd, "SUB": self._binary_bwd, "MUL": self._binary_bwd,
            "AVERAGE_POOL_2D": self._avgpool_bwd, "MAX_POOL_2D": self._maxpool_bwd, "MEAN": self._mean_bwd,
            "TRANSPOSE": self._transpose_bwd, "PAD": self._pad_bwd, "PADV2": self._pad_bwd,
            "RELU": self._clip_bwd, "RELU6": self._clip_bwd, "RELU_N1_TO_1": self._clip_bwd,
            "HARD_SWISH": self._hswish_bwd, "LOGISTIC": self._logistic_bwd, "TANH": self._tanh_bwd,
            **{k: self._identity_bwd for k in _IDENTITY},
        }

        self.params: dict[str, np.ndarray] = {}
        self._consts: dict[str, np.ndarray] = {}
        self._geo: dict[int, _Geo] = {}
        for op in self.ops:
            self._check(op)

    # ------------------------------------------------------------------ setup
    def _check(self, op: Op) -> None:
        g = self.g
        if op.kind == "SOFTMAX":
            raise ValueError(f"FloatNet: {op.label} lies on the path to {self.logits!r}; SOFTMAX is only the "
                             "loss: pass the tensor it reads as the logits")
        if op.kind not in self._fwd:
            raise ValueError(f"FloatNet: no forward/backward rule for {op.label} (on the path to "
                             f"{self.logits!r}); supported: {', '.join(sorted(self._fwd))}")
        if len(op.outputs) != 1:
            raise ValueError(f"FloatNet: {op.label} has {len(op.outputs)} outputs; rules exist for one")
        act = op.attrs.get("fused_activation_function", "NONE")
        if act not in _FUSED:
            raise ValueError(f"FloatNet: {op.label} has fused activation {act}, no rule for it "
                             f"(supported: {', '.join(_FUSED)})")
        if op.kind in _WEIGHTED:
            self._take_params(op)
        if op.kind in ("CONV_2D", "DEPTHWISE_CONV_2D"):
            w = g.t(op.inputs[1])
            wh, ww = windows(op, g, w.shape[1], w.shape[2])
            geo = _Geo(wh.filter_size, ww.filter_size, wh.stride, ww.stride, wh.dilation, ww.dilation,
                       wh.pad_before, ww.pad_before, wh.out_size, ww.out_size)
            self._geo[id(op)] = geo
            self._check_spatial(op, geo, w.shape[0] if op.kind == "CONV_2D" else w.shape[3])
            x = g.t(op.inputs[0])
            if op.kind == "CONV_2D":
                cg = w.shape[3]
                if x.shape[3] % cg or w.shape[0] % (x.shape[3] // cg):
                    raise ValueError(f"FloatNet: {op.label}: {x.shape[3]} input channels, filter "
                                     f"{list(w.shape)}: not a grouped convolution")
            elif w.shape[3] % x.shape[3]:
                raise ValueError(f"FloatNet: {op.label}: {w.shape[3]} output channels are not a multiple of "
                                 f"{x.shape[3]} input channels")
        elif op.kind in ("AVERAGE_POOL_2D", "MAX_POOL_2D"):
            geo = self._pool_geo(op)
            self._geo[id(op)] = geo
            self._check_spatial(op, geo, g.t(op.inputs[0]).shape[3])
        elif op.kind in ("MEAN", "TRANSPOSE", "PAD", "PADV2"):
            if len(op.inputs) < 2 or op.inputs[1] is None or not g.t(op.inputs[1]).is_const:
                if not (op.kind == "TRANSPOSE" and "perm" in op.attrs):
                    raise ValueError(f"FloatNet: {op.label}: its second input must be a constant")

    def _check_spatial(self, op: Op, geo: _Geo, out_c: int) -> None:
        x, y = self.g.t(op.inputs[0]), self.g.t(op.outputs[0])
        want = (x.shape[0], geo.oh, geo.ow, out_c)
        if len(x.shape) != 4 or tuple(y.shape) != want:
            raise ValueError(f"FloatNet: {op.label}: output shape {list(y.shape)} differs from the {list(want)} "
                             "its geometry gives")

    def _pool_geo(self, op: Op) -> _Geo:
        """TFLite's pooling geometry (tinyc.ops.pooling): dilation 1, padding from the padded size."""
        _, h, w, _ = self.g.t(op.inputs[0]).shape
        a = op.attrs
        fh, fw, sh, sw = (int(a[k]) for k in ("filter_height", "filter_width", "stride_h", "stride_w"))
        pad = a.get("padding", "SAME")
        top, bottom, left, right = a.get("explicit_padding", (0, 0, 0, 0))
        hp, wp = h + top + bottom, w + left + right
        oh, ow = _pool_out_size(pad, hp, fh, sh), _pool_out_size(pad, wp, fw, sw)
        return _Geo(fh, fw, sh, sw, 1, 1, _pool_pad_before(hp, fh, sh, oh) + top,
                    _pool_pad_before(wp, fw, sw, ow) + left, oh, ow)

    def _take_params(self, op: Op) -> None:
        """Float64 weights (scale[out channel] * q) and bias (input_scale * weight_scale[c] * q)."""
        g = self.g
        if len(op.inputs) < 2 or op.inputs[1] is None or not g.t(op.inputs[1]).is_const:
            raise ValueError(f"FloatNet: {op.label}: the weights must be a constant tensor")
        wname = op.inputs[1]
        w = g.t(wname)
        if wname not in self.params:
            self.params[wname] = _dequant(w, w.data)
        bname = op.inputs[2] if len(op.inputs) > 2 else None
        if bname is None or bname in self.params:
            return
        b = g.t(bname)
        if not b.is_const:
            raise ValueError(f"FloatNet: {op.label}: the bias must be a constant tensor")
        out_c = w.shape[3] if op.kind == "DEPTHWISE_CONV_2D" else w.shape[0]
        x = g.t(op.inputs[0])
        if b.dtype in ("int32", "int64") and w.quant is not None and x.quant is not None and w.quant.scale:
            ws = np.asarray(w.quant.scale if w.quant.per_channel else w.quant.scale[:1] * out_c, dtype=F64)
            self.params[bname] = float(x.quant.s) * ws * b.data.astype(F64).reshape(-1)
        else:
            self.params[bname] = _dequant(b, b.data).reshape(-1)
        if self.params[bname].size != out_c:
            raise ValueError(f"FloatNet: {op.label}: bias has {self.params[bname].size} values for {out_c} "
                             "output channels")

    def _const(self, name: str) -> np.ndarray:
        if name not in self._consts:
            t = self.g.t(name)
            self._consts[name] = _dequant(t, t.data).reshape(t.shape)
        return self._consts[name]

    # ---------------------------------------------------------------- forward
    def forward(self, inputs: Mapping[str, np.ndarray]) -> dict[str, np.ndarray]:
        """Real float64 values of every tensor on the path (graph inputs, op outputs, aliases as
        reshaped views), computed without quantization from `inputs` and self.params."""
        return self._forward(inputs)

    def _forward(self, inputs: Mapping[str, np.ndarray],
                 fixed: Mapping[str, np.ndarray] | None = None) -> dict[str, np.ndarray]:
        """forward(); `fixed` overrides the outputs of the ops producing them (tests use it to
        differentiate with respect to intermediate activations)."""
        g = self.g
        env: dict[str, np.ndarray] = {}
        for n in self.input_names:
            if n not in inputs:
                raise ValueError(f"FloatNet.forward: missing graph input {n!r}")
            v = np.array(inputs[n], dtype=F64)
            if v.size != g.t(n).size:
                raise ValueError(f"FloatNet.forward: input {n!r} has {v.size} values, the tensor "
                                 f"{g.t(n).size} (shape {list(g.t(n).shape)})")
            env[n] = v.reshape(g.t(n).shape)
        get = _Lookup(self, env)
        fixed = fixed or {}
        for op in self.ops:
            out = op.outputs[0]
            shape = g.t(out).shape
            if out in fixed:
                env[out] = np.array(fixed[out], dtype=F64).reshape(shape)
                continue
            env[out] = np.ascontiguousarray(self._fwd[op.kind](op, get), dtype=F64).reshape(shape)
        for a in g.aliases:
            if a in env or g.is_slice(a):
                continue
            s = g.storage(a)
            if s in env:
                env[a] = env[s].reshape(g.t(a).shape)
        return env

    def _act(self, op: Op, y: np.ndarray) -> np.ndarray:
        rng = _ACT_RANGES.get(op.attrs.get("fused_activation_function", "NONE"))
        return y if rng is None else np.clip(y, rng[0], rng[1])

    # ---------------------------------------------------------------- backward
    def backward(self, values: Mapping[str, np.ndarray], label: int, wanted: Iterable[str],
                 quantized: bool = False) -> tuple[float, dict[str, np.ndarray]]:
        """Cross-entropy of softmax(beta * logits) against `label`, and its gradient with respect
        to each wanted tensor (params names and/or activation names, aliases included).

        Activations come only from `values` (forward()'s dict or dequantized int8 tensors, see
        quantized_values), weights from self.params. quantized=True: masks of fused activations
        also close at the int8 clamp (see the module docstring)."""
        g = self.g
        get = _Lookup(self, values)
        z = get(self.logits).reshape(-1) * self.beta
        label = int(label)
        if not 0 <= label < z.size:
            raise ValueError(f"FloatNet.backward: label {label} outside 0..{z.size - 1}")
        m = z.max()
        lse = m + math.log(float(np.exp(z - m).sum()))
        loss = float(lse - z[label])
        dz = np.exp(z - lse)
        dz[label] -= 1.0
        grads: dict[str, np.ndarray] = {self._key(self.logits): (self.beta * dz).reshape(g.t(self.logits).shape)}

        wanted = list(wanted)
        keys = {}
        for w in wanted:
            if w in self.params:
                keys[w] = w
            elif w in g.tensors and not g.t(w).is_const and not g.is_slice(w):
                keys[w] = self._key(w)
            else:
                raise ValueError(f"FloatNet.backward: cannot differentiate with respect to {w!r} (not a "
                                 "weight or bias of the path, nor an activation)")
        # tensors whose gradient is needed: the wanted ones and everything computed from them
        need = set(keys.values())
        for op in self.ops:
            if any(i is not None and self._key(i) in need for i in op.inputs):
                need.add(op.outputs[0])

        for op in reversed(self.ops):
            out = op.outputs[0]
            if out not in need or out not in grads:
                continue
            which = [i is not None and self._key(i) in need for i in op.inputs]
            if not any(which):
                continue
            dy = np.reshape(grads[out], g.t(out).shape)  # stored under the storage; the op sees its own view
            for idx, gr in self._bwd[op.kind](op, get, dy, which, quantized).items():
                k = self._key(op.inputs[idx])
                shape = self.params[k].shape if k in self.params else g.t(k).shape
                gr = np.asarray(gr, dtype=F64).reshape(shape)
                grads[k] = grads[k] + gr if k in grads else gr

        result = {}
        for w in wanted:
            k = keys[w]
            shape = self.params[w].shape if w in self.params else g.t(w).shape
            result[w] = np.array(grads[k]).reshape(shape) if k in grads else np.zeros(shape, dtype=F64)
        return loss, result

    def _key(self, name: str) -> str:
        """Gradients live under the storage tensor of an alias (params: their own name)."""
        return name if name in self.params else self.g.storage(name)

    def _mask(self, op: Op, act: str, dy: np.ndarray, get: _Lookup, quantized: bool) -> np.ndarray:
        """dy * (lo < y < hi), y the op's output (see the module docstring); NONE: dy itself."""
        rng = _ACT_RANGES.get(act)
        if rng is None:
            return dy
        lo, hi = rng
        yt = self.g.t(op.outputs[0])
        if quantized and yt.quant is not None and yt.dtype in _QRANGE:
            s, zp = float(yt.quant.s), int(yt.quant.zp)
            qa, qb = activation_range(act, s, zp, yt.dtype)
            lo, hi = max(lo, s * float(qa - zp)), min(hi, s * float(qb - zp))
        y = get(op.outputs[0])
        return dy.reshape(y.shape) * ((y > lo) & (y < hi))

    def _fused_mask(self, op: Op, dy: np.ndarray, get: _Lookup, quantized: bool) -> np.ndarray:
        return self._mask(op, op.attrs.get("fused_activation_function", "NONE"), dy, get, quantized)

    # ---------------------------------------------------------- CONV_2D
    def _conv_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        x, w = get(op.inputs[0]), self.params[op.inputs[1]]
        geo = self._geo[id(op)]
        n, _, _, c = x.shape
        o, _, _, cg = w.shape
        groups = c // cg
        xp = geo.padded(x)
        acc = np.zeros((n, geo.oh, geo.ow, o), dtype=F64)
        if groups == 1:
            for i, j in geo.taps():
                acc += geo.tap(xp, i, j) @ w[:, i, j, :].T
        else:
            wg = w.reshape(groups, o // groups, geo.kh, geo.kw, cg)
            acc5 = acc.reshape(n, geo.oh, geo.ow, groups, o // groups)
            for i, j in geo.taps():
                t = geo.tap(xp, i, j).reshape(n, geo.oh, geo.ow, groups, cg)
                acc5 += np.einsum("nhwgc,goc->nhwgo", t, wg[:, :, i, j, :])
        if self._bias(op) is not None:
            acc += self.params[self._bias(op)]
        return self._act(op, acc)

    def _conv_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        geo = self._geo[id(op)]
        w = self.params[op.inputs[1]]
        o, _, _, cg = w.shape
        dz = self._fused_mask(op, dy, get, quantized)
        out: dict[int, np.ndarray] = {}
        n = dz.shape[0]
        xshape = self.g.t(op.inputs[0]).shape
        groups = xshape[3] // cg
        og = o // groups
        if len(which) > 2 and which[2]:
            out[2] = dz.sum(axis=(0, 1, 2))
        if which[1]:
            x = get(op.inputs[0])
            xp = geo.padded(x)
            dw = np.zeros_like(w)
            dz2 = dz.reshape(-1, o)
            for i, j in geo.taps():
                t = geo.tap(xp, i, j)
                if groups == 1:
                    dw[:, i, j, :] = dz2.T @ t.reshape(-1, cg)
                else:
                    dw[:, i, j, :] = np.einsum("mgo,mgc->goc", dz2.reshape(-1, groups, og),
                                               t.reshape(-1, groups, cg)).reshape(o, cg)
            out[1] = dw
        if which[0]:
            dxp = geo.padded(np.zeros(xshape, dtype=F64))
            wg = w.reshape(groups, og, geo.kh, geo.kw, cg)
            for i, j in geo.taps():
                view = geo.tap(dxp, i, j)
                if groups == 1:
                    view += dz @ w[:, i, j, :]
                else:
                    view += np.einsum("nhwgo,goc->nhwgc", dz.reshape(n, geo.oh, geo.ow, groups, og),
                                      wg[:, :, i, j, :]).reshape(view.shape)
            out[0] = geo.crop(dxp, xshape)
        return out

    def _bias(self, op: Op) -> str | None:
        return op.inputs[2] if len(op.inputs) > 2 else None

    # ---------------------------------------------------------- DEPTHWISE_CONV_2D
    def _dw_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        x, w = get(op.inputs[0]), self.params[op.inputs[1]]
        geo = self._geo[id(op)]
        n, _, _, c = x.shape
        mult = w.shape[3] // c
        xp = geo.padded(x)
        acc = np.zeros((n, geo.oh, geo.ow, c, mult), dtype=F64)
        for i, j in geo.taps():
            acc += geo.tap(xp, i, j)[..., None] * w[0, i, j, :].reshape(c, mult)
        acc = acc.reshape(n, geo.oh, geo.ow, c * mult)
        if self._bias(op) is not None:
            acc += self.params[self._bias(op)]
        return self._act(op, acc)

    def _dw_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        geo = self._geo[id(op)]
        w = self.params[op.inputs[1]]
        xshape = self.g.t(op.inputs[0]).shape
        n, _, _, c = xshape
        mult = w.shape[3] // c
        dz = self._fused_mask(op, dy, get, quantized)
        dz5 = dz.reshape(n, geo.oh, geo.ow, c, mult)
        out: dict[int, np.ndarray] = {}
        if len(which) > 2 and which[2]:
            out[2] = dz.sum(axis=(0, 1, 2))
        if which[1]:
            xp = geo.padded(get(op.inputs[0]))
            dw = np.zeros_like(w)
            for i, j in geo.taps():
                dw[0, i, j, :] = np.einsum("nhwcm,nhwc->cm", dz5, geo.tap(xp, i, j)).reshape(-1)
            out[1] = dw
        if which[0]:
            dxp = geo.padded(np.zeros(xshape, dtype=F64))
            for i, j in geo.taps():
                geo.tap(dxp, i, j)[...] += np.einsum("nhwcm,cm->nhwc", dz5, w[0, i, j, :].reshape(c, mult))
            out[0] = geo.crop(dxp, xshape)
        return out

    # ---------------------------------------------------------- FULLY_CONNECTED
    def _fc_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        w = self.params[op.inputs[1]]
        x = get(op.inputs[0]).reshape(-1, w.shape[1])
        y = x @ w.T
        if self._bias(op) is not None:
            y = y + self.params[self._bias(op)]
        return self._act(op, y)

    def _fc_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        w = self.params[op.inputs[1]]
        dz = self._fused_mask(op, dy, get, quantized).reshape(-1, w.shape[0])
        out: dict[int, np.ndarray] = {}
        if len(which) > 2 and which[2]:
            out[2] = dz.sum(axis=0)
        if which[1]:
            out[1] = dz.T @ get(op.inputs[0]).reshape(-1, w.shape[1])
        if which[0]:
            out[0] = dz @ w
        return out

    # ---------------------------------------------------------- ADD / SUB / MUL
    def _binary_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        a, b = get(op.inputs[0]), get(op.inputs[1])
        y = a * b if op.kind == "MUL" else a + b if op.kind == "ADD" else a - b
        return self._act(op, y)

    def _binary_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        a, b = get(op.inputs[0]), get(op.inputs[1])
        shape = np.broadcast_shapes(a.shape, b.shape)
        dz = self._fused_mask(op, dy, get, quantized).reshape(shape)
        out: dict[int, np.ndarray] = {}
        if op.kind == "MUL":
            if which[0]:
                out[0] = _unbroadcast(dz * b, a.shape)
            if which[1]:
                out[1] = _unbroadcast(dz * a, b.shape)
        else:
            if which[0]:
                out[0] = _unbroadcast(dz, a.shape)
            if which[1]:
                out[1] = _unbroadcast(-dz if op.kind == "SUB" else dz, b.shape)
        return out

    # ---------------------------------------------------------- pooling
    def _pool_counts(self, op: Op, geo: _Geo) -> np.ndarray:
        """Taps of each window inside the input (TFLite's average divides by that), [OH, OW, 1]."""
        _, h, w, _ = self.g.t(op.inputs[0]).shape
        ones = geo.padded(np.ones((1, h, w, 1), dtype=F64))
        cnt = sum(geo.tap(ones, i, j) for i, j in geo.taps())
        return np.maximum(cnt[0], 1.0)

    def _avgpool_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        geo = self._geo[id(op)]
        xp = geo.padded(get(op.inputs[0]))
        s = sum(geo.tap(xp, i, j) for i, j in geo.taps())
        return self._act(op, s / self._pool_counts(op, geo))

    def _avgpool_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        geo = self._geo[id(op)]
        xshape = self.g.t(op.inputs[0]).shape
        q = self._fused_mask(op, dy, get, quantized) / self._pool_counts(op, geo)
        dxp = geo.padded(np.zeros(xshape, dtype=F64))
        for i, j in geo.taps():
            geo.tap(dxp, i, j)[...] += q
        return {0: geo.crop(dxp, xshape)}

    def _maxpool_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        geo = self._geo[id(op)]
        xp = geo.padded(get(op.inputs[0]), fill=-np.inf)
        return self._act(op, np.maximum.reduce([geo.tap(xp, i, j) for i, j in geo.taps()]))

    def _maxpool_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        """The gradient goes to the first maximum of each window in row-major tap order (the
        window maximum is taken from the saved input, not recomputed from the output)."""
        geo = self._geo[id(op)]
        xshape = self.g.t(op.inputs[0]).shape
        dz = self._fused_mask(op, dy, get, quantized)
        xp = geo.padded(get(op.inputs[0]), fill=-np.inf)
        mx = np.maximum.reduce([geo.tap(xp, i, j) for i, j in geo.taps()])
        taken = np.zeros(mx.shape, dtype=bool)
        dxp = geo.padded(np.zeros(xshape, dtype=F64))
        for i, j in geo.taps():
            hit = (geo.tap(xp, i, j) == mx) & ~taken
            geo.tap(dxp, i, j)[...] += np.where(hit, dz, 0.0)
            taken |= hit
        return {0: geo.crop(dxp, xshape)}

    # ---------------------------------------------------------- MEAN / TRANSPOSE / PAD
    def _mean_axes(self, op: Op) -> tuple[int, ...]:
        rank = len(self.g.t(op.inputs[0]).shape)
        axes = np.asarray(self.g.t(op.inputs[1]).data).reshape(-1).astype(int)
        return tuple(sorted({int(a) % rank for a in axes}))

    def _mean_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        return get(op.inputs[0]).mean(axis=self._mean_axes(op), keepdims=True)

    def _mean_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        xshape = self.g.t(op.inputs[0]).shape
        axes = self._mean_axes(op)
        kept = tuple(1 if k in axes else n for k, n in enumerate(xshape))
        count = int(np.prod([xshape[k] for k in axes], dtype=np.int64))
        return {0: np.broadcast_to(dy.reshape(kept), xshape) / count}

    def _perm(self, op: Op) -> tuple[int, ...]:
        if len(op.inputs) > 1 and op.inputs[1] is not None:
            return tuple(int(p) for p in np.asarray(self.g.t(op.inputs[1]).data).reshape(-1))
        return tuple(int(p) for p in op.attrs["perm"])

    def _transpose_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        return get(op.inputs[0]).transpose(self._perm(op))

    def _transpose_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        perm = self._perm(op)
        xshape = self.g.t(op.inputs[0]).shape
        return {0: dy.reshape(tuple(xshape[p] for p in perm)).transpose(np.argsort(perm))}

    def _pads(self, op: Op) -> np.ndarray:
        return np.asarray(self.g.t(op.inputs[1]).data).reshape(-1, 2).astype(int)

    def _pad_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        """PAD pads with the zero point, i.e. real zero; PADV2 with its constant's real value."""
        value = 0.0
        if op.kind == "PADV2" and len(op.inputs) > 2 and op.inputs[2] is not None:
            value = float(self._const(op.inputs[2]).reshape(-1)[0])
        x = get(op.inputs[0])
        return np.pad(x, [tuple(p) for p in self._pads(op)], mode="constant", constant_values=value)

    def _pad_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        xshape = self.g.t(op.inputs[0]).shape
        pads = self._pads(op)
        box = tuple(slice(int(p[0]), int(p[0]) + n) for p, n in zip(pads, xshape))
        return {0: dy[box]}

    # ---------------------------------------------------------- point-wise
    def _identity_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        return get(op.inputs[0])

    def _identity_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        return {0: dy}

    def _clip_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        lo, hi = _ACT_RANGES[op.kind]
        return np.clip(get(op.inputs[0]), lo, hi)

    def _clip_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        """Standalone RELU / RELU6 / RELU_N1_TO_1: the fused activations' mask rule."""
        return {0: self._mask(op, op.kind, dy, get, quantized)}

    def _hswish_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        x = get(op.inputs[0])
        return x * np.clip(x + 3.0, 0.0, 6.0) / 6.0

    def _hswish_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        """From the INPUT x: 0 for x < -3, 1 for x > 3, (2x + 3) / 6 between."""
        x = get(op.inputs[0])
        d = np.where(x < -3.0, 0.0, np.where(x > 3.0, 1.0, (2.0 * x + 3.0) / 6.0))
        return {0: dy.reshape(x.shape) * d}

    def _logistic_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        return 0.5 * (1.0 + np.tanh(0.5 * get(op.inputs[0])))

    def _logistic_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        """From the OUTPUT y: y (1 - y)."""
        y = get(op.outputs[0])
        return {0: dy.reshape(y.shape) * y * (1.0 - y)}

    def _tanh_fwd(self, op: Op, get: _Lookup) -> np.ndarray:
        return np.tanh(get(op.inputs[0]))

    def _tanh_bwd(self, op: Op, get: _Lookup, dy: np.ndarray, which: list[bool], quantized: bool) -> dict:
        """From the OUTPUT y: 1 - y^2."""
        y = get(op.outputs[0])
        return {0: dy.reshape(y.shape) * (1.0 - y * y)}


def float_finetune(net: FloatNet, masks: Mapping[str, np.ndarray], inputs: np.ndarray, labels: np.ndarray,
                   order: np.ndarray, lr: float, progress: Callable[[int], None] | None = None) -> list[float]:
    """The float baseline of a sparse update: plain SGD (batch 1) on net.params, in `order`,
    changing only the elements `masks[name]` marks (1 where the compiled step trains: the same
    update mask). inputs are real values of the single graph input, (N, *shape). Returns the loss
    of every step. The forward is float throughout: what the same fine-tune would reach without
    quantization, the bar the int8 training step is measured against."""
    if len(net.input_names) != 1:
        raise ValueError("float_finetune: one graph input only")
    name = net.input_names[0]
    losses = []
    for k, i in enumerate(order):
        values = net.forward({name: inputs[i]})
        loss, grads = net.backward(values, int(labels[i]), list(masks))
        for p, m in masks.items():
            net.params[p] -= lr * grads[p] * m
        losses.append(loss)
        if progress is not None:
            progress(k)
    return losses


def float_accuracy(net: FloatNet, inputs: np.ndarray, labels: np.ndarray) -> float:
    """Top-1 of the float model's logits."""
    name = net.input_names[0]
    hits = 0
    for x, y in zip(inputs, labels):
        z = net.forward({name: x})[net.logits]
        hits += int(np.argmax(z.reshape(-1)) == int(y))
    return hits / max(1, len(labels))
