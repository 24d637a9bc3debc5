"""tinyc.train.reference: the float64 forward/backward oracle, checked by finite differences.

Small random graphs are built straight in the IR (int8 weights with per-channel scales, so the
dequantization of params is exercised too); one graph goes through a TFLite flatbuffer and the
passes (PAD folded into explicit_padding, RESHAPE turned into an alias); one test runs the real
vww_96_int8 model.
"""

from __future__ import annotations

import time
import zlib

import numpy as np
import pytest

from tinyc.ir import Graph, Op, QuantParams, Tensor
from tinyc.train.reference import FloatNet, quantized_values
from tests.support.paths import MODELS

VWW = MODELS / "mlperf_tiny" / "vww_96_int8.tflite"


# ----------------------------------------------------------------------------- graph building
class GB:
    """A tiny IR graph builder: int8 activations, int8 weights, int32 biases."""

    def __init__(self, seed: int = 0) -> None:
        self.rng = np.random.default_rng(seed)
        self.tensors: dict[str, Tensor] = {}
        self.ops: list[Op] = []
        self.inputs: list[str] = []
        self.aliases: dict[str, str] = {}

    def act(self, name: str, shape, scale: float = 0.05, zp: int = 0, dtype: str = "int8") -> str:
        self.tensors[name] = Tensor(name, tuple(shape), dtype, QuantParams((scale,), (zp,)),
                                    index=len(self.tensors))
        return name

    def input(self, name: str, shape, scale: float = 0.02, zp: int = 0) -> str:
        self.inputs.append(self.act(name, shape, scale, zp))
        return name

    def weight(self, name: str, shape, axis: int, per_channel: bool = True) -> str:
        """Random int8 weights, real std about 1/sqrt(fan-in)."""
        shape = tuple(shape)
        fan = int(np.prod(shape)) // shape[axis]
        q = self.rng.integers(-127, 128, shape).astype(np.int8)
        n = shape[axis] if per_channel else 1
        scales = tuple(float(s) for s in self.rng.uniform(0.7, 1.3, n) * 1.7 / (127 * np.sqrt(fan)))
        self.tensors[name] = Tensor(name, shape, "int8", QuantParams(scales, (0,) * n, axis if per_channel else 0),
                                    data=q, index=len(self.tensors))
        return name

    def bias(self, name: str, w: str, x: str, real_std: float = 0.3) -> str:
        wt = self.tensors[w]
        axis = wt.quant.axis if wt.quant.per_channel else (3 if len(wt.shape) == 4 and wt.shape[0] == 1 else 0)
        n = wt.shape[axis]
        ws = np.asarray(wt.quant.scale if wt.quant.per_channel else wt.quant.scale * n)
        real = self.rng.normal(0, real_std, n)
        q = np.round(real / (self.tensors[x].quant.s * ws)).astype(np.int32)
        self.tensors[name] = Tensor(name, (n,), "int32", QuantParams(tuple(self.tensors[x].quant.s * ws),
                                                                     (0,) * n), data=q, index=len(self.tensors))
        return name

    def const(self, name: str, data, dtype: str = "int32", quant: QuantParams | None = None) -> str:
        arr = np.asarray(data).astype(dtype)
        self.tensors[name] = Tensor(name, arr.shape, dtype, quant, data=arr, index=len(self.tensors))
        return name

    def op(self, kind: str, inputs, outputs, **attrs) -> None:
        self.ops.append(Op(kind, tuple(inputs), tuple(outputs), attrs, index=len(self.ops)))

    def alias(self, name: str, target: str, shape) -> str:
        t = self.tensors[target]
        self.tensors[name] = Tensor(name, tuple(shape), t.dtype, t.quant, index=len(self.tensors))
        self.aliases[name] = target
        return name

    def fc_head(self, x: str, classes: int = 5, name: str = "logits") -> str:
        """Flatten (an alias) and a FULLY_CONNECTED to `classes` logits."""
        n = int(np.prod(self.tensors[x].shape))
        flat = self.alias(x + "_flat", x, (1, n))
        w = self.weight(name + "_w", (classes, n), 0)
        b = self.bias(name + "_b", w, x)
        y = self.act(name, (1, classes), 0.1)
        self.op("FULLY_CONNECTED", [flat, w, b], [y], fused_activation_function="NONE", keep_num_dims=False)
        return y

    def graph(self, outputs) -> Graph:
        g = Graph("test", dict(self.tensors), tuple(self.ops), tuple(self.inputs), tuple(outputs),
                  aliases=dict(self.aliases))
        g.lint()
        return g


def conv_attrs(padding="SAME", stride=(1, 1), dilation=(1, 1), act="NONE", explicit=None, **more):
    a = dict(padding=padding, stride_h=stride[0], stride_w=stride[1], dilation_h_factor=dilation[0],
             dilation_w_factor=dilation[1], fused_activation_function=act, **more)
    if explicit is not None:
        a["explicit_padding"] = tuple(explicit)
    return a


def seed_of(*case) -> int:
    """A per-case seed that does not change between runs (hash() of a str does)."""
    return zlib.crc32(repr(case).encode())


def out_hw(size, k, s, d, padding, before=0, after=0):
    size = size + before + after
    eff = (k - 1) * d + 1
    return (size + s - 1) // s if padding == "SAME" else (size - eff + s) // s


# ----------------------------------------------------------------------------- finite differences
def ce_loss(net: FloatNet, values: dict, label: int) -> float:
    """Cross-entropy of softmax(beta * logits), computed independently of backward()."""
    z = net.beta * np.asarray(values[net.logits], dtype=np.float64).ravel()
    m = z.max()
    return float(m + np.log(np.exp(z - m).sum()) - z[label])


def check_grads(net: FloatNet, inputs: dict, label: int, names, rng=None, coords: int = 24,
                rtol: float = 1e-5, atol: float = 1e-7) -> dict:
    """Central finite differences (h = 1e-5 relative) of the loss against backward()'s gradients,
    for params, graph inputs and intermediate activations (through FloatNet._forward's `fixed`)."""
    rng = rng or np.random.default_rng(123)
    values = net.forward(inputs)
    loss, grads = net.backward(values, label, names)
    assert loss == pytest.approx(ce_loss(net, values, label), rel=1e-12, abs=1e-12)
    for name in names:
        if name in net.params:
            arr = net.params[name]

            def f() -> float:
                return ce_loss(net, net.forward(inputs), label)
        elif name in inputs:
            arr = inputs[name] = np.array(inputs[name], dtype=np.float64, order="C")

            def f() -> float:
                return ce_loss(net, net.forward(inputs), label)
        else:
            arr = np.array(values[name], dtype=np.float64, order="C")
            owner = net.g.storage(name)  # an alias: override the op output it views

            def f() -> float:
                return ce_loss(net, net._forward(inputs, fixed={owner: arr}), label)
        assert grads[name].shape == arr.shape, name
        flat = arr.reshape(-1)
        assert np.shares_memory(flat, arr)
        idx = range(flat.size) if flat.size <= coords else rng.choice(flat.size, coords, replace=False)
        for i in idx:
            v = flat[i]
            h = 1e-5 * max(1.0, abs(v))
            flat[i] = v + h
            up = f()
            flat[i] = v - h
            down = f()
            flat[i] = v
            fd = (up - down) / (2 * h)
            an = grads[name].reshape(-1)[i]
            assert abs(fd - an) <= atol + rtol * max(abs(fd), abs(an)), \
                f"d loss / d {name}[{i}]: finite difference {fd!r}, backward {an!r}"
    return grads


def rand_input(g: Graph, rng, amp: float = 1.0) -> dict:
    return {n: rng.normal(0, amp, g.t(n).shape) for n in g.inputs}


def assert_active_and_clamped(values: np.ndarray, lo: float, hi: float) -> None:
    """The activation is really exercised: some outputs clamped, some passing."""
    inside = (values > lo) & (values < hi)
    assert inside.any() and (~inside).any()


# ----------------------------------------------------------------------------- CONV_2D
CONV_CASES = [
    # kernel, stride, dilation, padding, explicit padding, groups, activation, per-channel, bias
    ((1, 1), (1, 1), (1, 1), "VALID", None, 1, "NONE", True, True),
    ((3, 3), (1, 1), (1, 1), "SAME", None, 1, "RELU", True, True),
    ((3, 3), (2, 2), (1, 1), "SAME", None, 1, "RELU6", True, True),
    ((3, 3), (2, 2), (1, 1), "VALID", None, 1, "NONE", False, False),
    ((5, 5), (1, 1), (1, 1), "VALID", None, 1, "RELU_N1_TO_1", True, True),
    ((5, 5), (2, 2), (1, 1), "SAME", None, 1, "NONE", True, True),
    ((3, 1), (2, 1), (1, 1), "SAME", None, 1, "RELU", True, True),
    ((1, 5), (1, 2), (1, 1), "SAME", None, 1, "NONE", True, False),
    ((2, 3), (1, 1), (1, 1), "SAME", None, 1, "RELU6", True, True),
    ((3, 3), (1, 1), (2, 2), "SAME", None, 1, "RELU", True, True),
    ((3, 3), (2, 1), (2, 1), "VALID", None, 1, "NONE", True, True),
    ((3, 3), (2, 2), (1, 1), "VALID", (1, 2, 0, 1), 1, "RELU", True, True),
    ((3, 3), (1, 1), (1, 1), "SAME", (2, 0, 1, 1), 1, "NONE", True, True),
    ((3, 3), (1, 1), (1, 1), "SAME", None, 2, "RELU", True, True),
    ((1, 1), (1, 1), (1, 1), "VALID", None, 4, "NONE", True, True),
    ((3, 3), (2, 2), (2, 2), "SAME", (1, 1, 1, 1), 2, "RELU6", True, True),
]
AMP = {"NONE": 1.0, "RELU": 1.0, "RELU6": 12.0, "RELU_N1_TO_1": 2.0}
RANGES = {"RELU": (0, np.inf), "RELU6": (0, 6), "RELU_N1_TO_1": (-1, 1)}


@pytest.mark.parametrize("kernel,stride,dilation,padding,explicit,groups,act,per_channel,with_bias", CONV_CASES)
def test_conv2d(kernel, stride, dilation, padding, explicit, groups, act, per_channel, with_bias):
    b = GB(seed=seed_of(kernel, stride, dilation, padding, explicit, groups, act))
    h, w, c, o = 7, 8, 4, 6 if groups != 4 else 8
    x = b.input("x", (1, h, w, c))
    wt = b.weight("w", (o, kernel[0], kernel[1], c // groups), 0, per_channel)
    bias = b.bias("b", wt, x) if with_bias else None
    pads = explicit or (0, 0, 0, 0)
    oh = out_hw(h, kernel[0], stride[0], dilation[0], padding, pads[0], pads[1])
    ow = out_hw(w, kernel[1], stride[1], dilation[1], padding, pads[2], pads[3])
    y = b.act("y", (1, oh, ow, o), 0.05, -128 if act != "NONE" else 0)
    b.op("CONV_2D", [x, wt, bias], [y], **conv_attrs(padding, stride, dilation, act, explicit))
    g = b.graph([b.fc_head(y)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng, AMP[act])
    if act != "NONE":
        assert_active_and_clamped(net.forward(inputs)["y"], *RANGES[act])
    names = ["w", "x", "y", "logits_w", "logits_b"] + (["b"] if with_bias else [])
    check_grads(net, inputs, 2, names)


def test_conv2d_matches_direct_sum():
    """forward() against a plain loop over output pixels and taps (SAME, stride 2, dilation 2,
    groups 2, explicit padding): the geometry, not only the gradients, is right."""
    b = GB(seed=5)
    x = b.input("x", (1, 7, 6, 4))
    wt = b.weight("w", (6, 3, 2, 2), 0)
    bias = b.bias("b", wt, x)
    pads = (1, 0, 0, 2)
    oh, ow = out_hw(7, 3, 2, 2, "SAME", 1, 0), out_hw(6, 2, 1, 1, "SAME", 0, 2)
    y = b.act("y", (1, oh, ow, 6))
    b.op("CONV_2D", [x, wt, bias], [y], **conv_attrs("SAME", (2, 1), (2, 1), "NONE", pads))
    g = b.graph([y])
    net = FloatNet(g, "y")
    xv = b.rng.normal(size=(1, 7, 6, 4))
    got = net.forward({"x": xv})["y"]
    W, B = net.params["w"], net.params["b"]
    # TFLite SAME: total = max((out-1)*stride + eff - padded, 0), before = total // 2, + explicit
    ph = max((oh - 1) * 2 + 5 - 8, 0) // 2 + 1
    pw = max((ow - 1) * 1 + 2 - 8, 0) // 2 + 0
    want = np.zeros_like(got)
    for r in range(oh):
        for cc in range(ow):
            for oc in range(6):
                gr = oc // 3
                s = B[oc]
                for i in range(3):
                    for j in range(2):
                        yy, xx = r * 2 + i * 2 - ph, cc + j - pw
                        if 0 <= yy < 7 and 0 <= xx < 6:
                            s += W[oc, i, j, :] @ xv[0, yy, xx, gr * 2:gr * 2 + 2]
                want[0, r, cc, oc] = s
    np.testing.assert_allclose(got, want, rtol=1e-12, atol=1e-12)


# ----------------------------------------------------------------------------- DEPTHWISE_CONV_2D
DW_CASES = [
    ((3, 3), (1, 1), (1, 1), "SAME", None, 1, "RELU"),
    ((3, 3), (2, 2), (1, 1), "SAME", None, 2, "RELU6"),
    ((3, 3), (1, 1), (2, 2), "SAME", None, 1, "NONE"),
    ((5, 5), (1, 1), (1, 1), "VALID", None, 2, "RELU_N1_TO_1"),
    ((3, 2), (2, 1), (1, 1), "VALID", (1, 1, 0, 1), 1, "NONE"),
    ((1, 1), (1, 1), (1, 1), "VALID", None, 2, "NONE"),
    ((3, 3), (2, 2), (1, 1), "VALID", (0, 1, 0, 1), 2, "RELU"),
]


@pytest.mark.parametrize("kernel,stride,dilation,padding,explicit,mult,act", DW_CASES)
def test_depthwise(kernel, stride, dilation, padding, explicit, mult, act):
    b = GB(seed=seed_of(kernel, stride, dilation, padding, explicit, mult, act))
    h, w, c = 8, 7, 3
    x = b.input("x", (1, h, w, c))
    wt = b.weight("w", (1, kernel[0], kernel[1], c * mult), 3)
    bias = b.bias("b", wt, x)
    pads = explicit or (0, 0, 0, 0)
    oh = out_hw(h, kernel[0], stride[0], dilation[0], padding, pads[0], pads[1])
    ow = out_hw(w, kernel[1], stride[1], dilation[1], padding, pads[2], pads[3])
    y = b.act("y", (1, oh, ow, c * mult))
    b.op("DEPTHWISE_CONV_2D", [x, wt, bias], [y],
         **conv_attrs(padding, stride, dilation, act, explicit, depth_multiplier=mult))
    g = b.graph([b.fc_head(y)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng, AMP[act])
    if act != "NONE":
        assert_active_and_clamped(net.forward(inputs)["y"], *RANGES[act])
    check_grads(net, inputs, 1, ["w", "b", "x", "y", "logits_w"])


def test_depthwise_multiplier_reads_input_channel_oc_div_m():
    b = GB(seed=3)
    x = b.input("x", (1, 3, 3, 2))
    wt = b.weight("w", (1, 1, 1, 6), 3)
    y = b.act("y", (1, 3, 3, 6))
    b.op("DEPTHWISE_CONV_2D", [x, wt, None], [y], **conv_attrs("VALID", depth_multiplier=3))
    net = FloatNet(b.graph([y]), "y")
    xv = b.rng.normal(size=(1, 3, 3, 2))
    got = net.forward({"x": xv})["y"]
    want = xv[..., np.arange(6) // 3] * net.params["w"][0, 0, 0]
    np.testing.assert_allclose(got, want, rtol=1e-13)


# ----------------------------------------------------------------------------- FULLY_CONNECTED
@pytest.mark.parametrize("act,per_channel,with_bias", [("NONE", True, True), ("RELU", False, True),
                                                        ("RELU6", True, False), ("RELU_N1_TO_1", False, False)])
def test_fully_connected_rows(act, per_channel, with_bias):
    b = GB(seed=11)
    x = b.input("x", (3, 8))
    w1 = b.weight("w1", (5, 8), 0, per_channel)
    b1 = b.bias("b1", w1, x) if with_bias else None
    h = b.act("h", (3, 5))
    b.op("FULLY_CONNECTED", [x, w1, b1], [h], fused_activation_function=act, keep_num_dims=False)
    w2 = b.weight("w2", (4, 5), 0)
    y = b.act("logits", (3, 4))
    b.op("FULLY_CONNECTED", [h, w2, None], [y], fused_activation_function="NONE", keep_num_dims=False)
    g = b.graph([y])
    net = FloatNet(g, "logits", beta=0.7)
    inputs = rand_input(g, b.rng, AMP[act] * (1.5 if act == "RELU6" else 1.0))
    if act != "NONE":
        assert_active_and_clamped(net.forward(inputs)["h"], *RANGES[act])
    check_grads(net, inputs, 7, ["x", "w1", "h", "w2"] + (["b1"] if with_bias else []))


def test_fully_connected_4d_input_is_flattened_and_params_dequantized():
    b = GB(seed=2)
    x = b.input("x", (1, 2, 2, 3))
    wt = b.weight("w", (4, 12), 0)
    bias = b.bias("b", wt, x)
    y = b.act("y", (1, 4))
    b.op("FULLY_CONNECTED", [x, wt, bias], [y], fused_activation_function="NONE")
    g = b.graph([y])
    net = FloatNet(g, "y")
    wt_t, b_t = g.t("w"), g.t("b")
    np.testing.assert_array_equal(net.params["w"], np.asarray(wt_t.quant.scale)[:, None] * wt_t.data)
    np.testing.assert_allclose(net.params["b"], 0.02 * np.asarray(wt_t.quant.scale) * b_t.data, rtol=1e-15)
    xv = b.rng.normal(size=(1, 2, 2, 3))
    np.testing.assert_allclose(net.forward({"x": xv})["y"],
                               xv.reshape(1, 12) @ net.params["w"].T + net.params["b"], rtol=1e-13)


# ----------------------------------------------------------------------------- ADD / MUL / MEAN / activations
def test_squeeze_excite_mul_broadcast_mean_logistic_hardswish():
    """conv -> a; MEAN(a, keep_dims) -> LOGISTIC -> s[1,1,1,C]; MUL(a, s) (broadcast, and a
    fans out to MEAN and MUL); MUL by a constant [1]; HARD_SWISH; MEAN without keep_dims; FC."""
    b = GB(seed=7)
    x = b.input("x", (1, 5, 4, 3))
    w = b.weight("w", (6, 1, 1, 3), 0)
    bias = b.bias("b", w, x)
    a = b.act("a", (1, 5, 4, 6))
    b.op("CONV_2D", [x, w, bias], [a], **conv_attrs("VALID"))
    axes = b.const("axes", [1, 2])
    m = b.act("m", (1, 1, 1, 6))
    b.op("MEAN", [a, axes], [m], keep_dims=True)
    s = b.act("s", (1, 1, 1, 6), 1 / 256, -128)
    b.op("LOGISTIC", [m], [s])
    se = b.act("se", (1, 5, 4, 6))
    b.op("MUL", [a, s], [se], fused_activation_function="NONE")
    k = b.const("k", [100], "int8", QuantParams((0.03,), (0,)))
    sk = b.act("sk", (1, 5, 4, 6))
    b.op("MUL", [k, se], [sk], fused_activation_function="NONE")
    hs = b.act("hs", (1, 5, 4, 6))
    b.op("HARD_SWISH", [sk], [hs])
    axes2 = b.const("axes2", [-3, 2])
    p = b.act("p", (1, 6))
    b.op("MEAN", [hs, axes2], [p], keep_dims=False)
    wl = b.weight("wl", (4, 6), 0)
    y = b.act("logits", (1, 4))
    b.op("FULLY_CONNECTED", [p, wl, None], [y], fused_activation_function="NONE")
    g = b.graph([y])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng, 4.0)
    v = net.forward(inputs)
    assert (v["sk"] < -3).any() and (v["sk"] > 3).any() and (np.abs(v["sk"]) < 3).any()
    np.testing.assert_allclose(v["se"], v["a"] * v["s"])
    check_grads(net, inputs, 3, ["x", "w", "b", "a", "m", "s", "se", "sk", "hs", "p", "wl"])


def test_residual_add_fan_out_transpose_alias():
    """conv -> a (RELU); a -> depthwise (RELU6) -> conv -> c; ADD(a, c, RELU): a feeds two ops,
    its gradient is the sum; then TRANSPOSE and a reshape alias into the classifier."""
    b = GB(seed=9)
    x = b.input("x", (1, 6, 6, 4))
    w1 = b.weight("w1", (8, 3, 3, 4), 0)
    a = b.act("a", (1, 6, 6, 8), 0.05, -128)
    b.op("CONV_2D", [x, w1, b.bias("b1", w1, x)], [a], **conv_attrs("SAME", act="RELU"))
    w2 = b.weight("w2", (1, 3, 3, 8), 3)
    d = b.act("d", (1, 6, 6, 8), 0.05, -128)
    b.op("DEPTHWISE_CONV_2D", [a, w2, b.bias("b2", w2, a)], [d],
         **conv_attrs("SAME", act="RELU6", depth_multiplier=1))
    w3 = b.weight("w3", (8, 1, 1, 8), 0)
    c = b.act("c", (1, 6, 6, 8))
    b.op("CONV_2D", [d, w3, b.bias("b3", w3, d)], [c], **conv_attrs("VALID"))
    r = b.act("r", (1, 6, 6, 8), 0.05, -128)
    b.op("ADD", [a, c], [r], fused_activation_function="RELU")
    perm = b.const("perm", [0, 3, 1, 2])
    t = b.act("t", (1, 8, 6, 6))
    b.op("TRANSPOSE", [r, perm], [t])
    g = b.graph([b.fc_head(t)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng, 3.0)
    v = net.forward(inputs)
    np.testing.assert_array_equal(v["t"], v["r"].transpose(0, 3, 1, 2))
    np.testing.assert_array_equal(v["t_flat"], v["t"].reshape(1, -1))
    assert_active_and_clamped(v["d"], 0, 6)
    grads = check_grads(net, inputs, 0, ["x", "w1", "b1", "a", "w2", "d", "w3", "b3", "c", "r", "t",
                                         "t_flat", "logits_w"])
    np.testing.assert_array_equal(grads["t_flat"].reshape(grads["t"].shape), grads["t"])


@pytest.mark.parametrize("act", ["NONE", "RELU6", "RELU_N1_TO_1"])
def test_add_sub_mul_broadcast_both_ways(act):
    """[1,H,W,C] op [1,1,1,C] and [1,1,W,1] op [1,H,W,C], activations from both graph inputs."""
    b = GB(seed=13)
    x = b.input("x", (1, 3, 4, 5))
    s = b.input("s", (1, 1, 1, 5))
    u = b.input("u", (1, 1, 4, 1))
    m = b.act("m", (1, 3, 4, 5))
    b.op("MUL", [x, s], [m], fused_activation_function=act)
    a = b.act("a", (1, 3, 4, 5))
    b.op("ADD", [u, m], [a], fused_activation_function=act)
    d = b.act("d", (1, 3, 4, 5))
    b.op("SUB", [a, x], [d], fused_activation_function="NONE")
    g = b.graph([b.fc_head(d)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng, 2.0)
    if act != "NONE":
        assert_active_and_clamped(net.forward(inputs)["m"], *RANGES[act])
    check_grads(net, inputs, 4, ["x", "s", "u", "m", "a", "d"])


def test_standalone_activations_quantize_dequantize():
    b = GB(seed=17)
    x = b.input("x", (1, 4, 4, 3))
    names = ["x"]
    cur = x
    for kind in ("RELU_N1_TO_1", "QUANTIZE", "TANH", "DEQUANTIZE", "RELU6", "LOGISTIC", "RELU"):
        nxt = b.act(kind.lower(), (1, 4, 4, 3))
        b.op(kind, [cur], [nxt])
        names.append(nxt)
        cur = nxt
    g = b.graph([b.fc_head(cur)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng, 3.0)
    v = net.forward(inputs)
    assert_active_and_clamped(v["relu_n1_to_1"], -1, 1)
    check_grads(net, inputs, 2, names)


def test_hard_swish_derivative_rule():
    """f'(x) = 0 below -3, 1 above 3, (2x + 3) / 6 between, read from the INPUT value."""
    b = GB()
    x = b.input("x", (1, 6))
    y = b.act("y", (1, 6))
    b.op("HARD_SWISH", [x], [y])
    net = FloatNet(b.graph([y]), "y")
    xv = np.array([[-5.0, -3.5, -1.0, 0.5, 2.9, 4.0]])
    v = net.forward({"x": xv})
    np.testing.assert_allclose(v["y"], xv * np.clip(xv + 3, 0, 6) / 6)
    _, gr = net.backward(v, 0, ["x", "y"])
    np.testing.assert_allclose(gr["x"], gr["y"] * np.array([[0, 0, 1 / 6, 4 / 6, 8.8 / 6, 1]]), rtol=1e-12)


# ----------------------------------------------------------------------------- pooling, MEAN, PAD
@pytest.mark.parametrize("kind,filt,stride,padding,explicit,act", [
    ("AVERAGE_POOL_2D", (3, 3), (2, 2), "SAME", None, "NONE"),
    ("AVERAGE_POOL_2D", (2, 3), (1, 2), "SAME", None, "RELU"),
    ("AVERAGE_POOL_2D", (3, 3), (3, 3), "VALID", None, "NONE"),
    ("AVERAGE_POOL_2D", (2, 2), (2, 2), "VALID", (1, 0, 0, 1), "RELU6"),
    ("MAX_POOL_2D", (2, 2), (2, 2), "VALID", None, "NONE"),
    ("MAX_POOL_2D", (3, 3), (2, 2), "SAME", None, "RELU"),
])
def test_pooling(kind, filt, stride, padding, explicit, act):
    b = GB(seed=19)
    h, w = 7, 6
    x = b.input("x", (1, h, w, 3))
    pads = explicit or (0, 0, 0, 0)
    oh = out_hw(h, filt[0], stride[0], 1, padding, pads[0], pads[1])
    ow = out_hw(w, filt[1], stride[1], 1, padding, pads[2], pads[3])
    y = b.act("y", (1, oh, ow, 3))
    attrs = dict(padding=padding, stride_h=stride[0], stride_w=stride[1], filter_height=filt[0],
                 filter_width=filt[1], fused_activation_function=act)
    if explicit:
        attrs["explicit_padding"] = explicit
    b.op(kind, [x], [y], **attrs)
    g = b.graph([b.fc_head(y)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng, 8.0 if act == "RELU6" else 1.0)
    check_grads(net, inputs, 1, ["x", "y", "logits_w"])


def test_average_pool_counts_only_taps_inside_the_input():
    b = GB()
    x = b.input("x", (1, 3, 3, 1))
    y = b.act("y", (1, 2, 2, 1))
    b.op("AVERAGE_POOL_2D", [x], [y], padding="SAME", stride_h=2, stride_w=2, filter_height=3, filter_width=3,
         fused_activation_function="NONE")
    net = FloatNet(b.graph([y]), "y")
    xv = np.arange(9.0).reshape(1, 3, 3, 1)
    got = net.forward({"x": xv})["y"][0, :, :, 0]
    # SAME 3x3 stride 2 on 3: out 2, total pad 2, 1 before: windows rows {0,1}, {1,2}
    want = [[xv[0, 0:2, 0:2].mean(), xv[0, 0:2, 1:3].mean()], [xv[0, 1:3, 0:2].mean(), xv[0, 1:3, 1:3].mean()]]
    np.testing.assert_allclose(got, want)


def test_max_pool_ties_route_to_the_first_maximum():
    """Saved int8 activations tie often: the whole gradient goes to the first maximum of the
    window in row-major tap order, never to every tied tap."""
    b = GB()
    x = b.input("x", (1, 2, 4, 1))
    y = b.act("y", (1, 1, 2, 1))
    b.op("MAX_POOL_2D", [x], [y], padding="VALID", stride_h=2, stride_w=2, filter_height=2, filter_width=2,
         fused_activation_function="NONE")
    net = FloatNet(b.graph([y]), "y")
    v = net.forward({"x": np.array([[1.0, 3.0, 2.0, 2.0], [3.0, 0.0, 2.0, 2.0]]).reshape(1, 2, 4, 1)})
    np.testing.assert_array_equal(v["y"].ravel(), [3.0, 2.0])
    _, gr = net.backward(v, 0, ["x", "y"])
    dy = gr["y"].ravel()
    want = np.zeros((2, 4))
    want[0, 1], want[0, 2] = dy
    np.testing.assert_array_equal(gr["x"].reshape(2, 4), want)


def test_float_fine_tune_lowers_the_loss():
    """params are what forward/backward use: a few SGD steps on them lower the loss."""
    b = GB(seed=47)
    x = b.input("x", (1, 5, 5, 2))
    wt = b.weight("w", (4, 3, 3, 2), 0)
    c = b.act("c", (1, 3, 3, 4))
    b.op("CONV_2D", [x, wt, b.bias("b", wt, x)], [c], **conv_attrs("VALID", act="RELU6"))
    g = b.graph([b.fc_head(c, classes=3)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng)
    first = net.backward(net.forward(inputs), 2, [])[0]
    names = ["w", "b", "logits_w", "logits_b"]
    for _ in range(20):
        loss, grads = net.backward(net.forward(inputs), 2, names)
        for n in names:
            net.params[n] -= 0.1 * grads[n]
    assert net.backward(net.forward(inputs), 2, [])[0] < 0.5 * first


@pytest.mark.parametrize("keep_dims,axes,out_shape", [(True, [1, 2], (1, 1, 1, 4)), (False, [1, 2], (1, 4)),
                                                      (False, [-1], (1, 3, 5)), (True, [2], (1, 3, 1, 4))])
def test_mean(keep_dims, axes, out_shape):
    b = GB(seed=23)
    x = b.input("x", (1, 3, 5, 4))
    y = b.act("y", out_shape)
    b.op("MEAN", [x, b.const("axes", axes)], [y], keep_dims=keep_dims)
    g = b.graph([b.fc_head(y)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng)
    v = net.forward(inputs)
    np.testing.assert_allclose(v["y"].reshape(-1), inputs["x"].mean(axis=tuple(axes)).reshape(-1))
    check_grads(net, inputs, 0, ["x", "y"])


@pytest.mark.parametrize("kind", ["PAD", "PADV2"])
def test_pad(kind):
    b = GB(seed=29)
    x = b.input("x", (1, 4, 3, 2), 0.05, 3)
    p = b.act("p", (1, 7, 6, 2), 0.05, 3)
    ins = [x, b.const("pads", [[0, 0], [1, 2], [2, 1], [0, 0]])]
    if kind == "PADV2":
        ins.append(b.const("pv", [13], "int8", QuantParams((0.05,), (3,))))
    b.op(kind, ins, [p])
    w = b.weight("w", (1, 3, 3, 2), 3)
    y = b.act("y", (1, 5, 4, 2))
    b.op("DEPTHWISE_CONV_2D", [p, w, None], [y], **conv_attrs("VALID", depth_multiplier=1))
    g = b.graph([b.fc_head(y)])
    net = FloatNet(g, "logits")
    inputs = rand_input(g, b.rng)
    v = net.forward(inputs)
    fill = 0.05 * (13 - 3) if kind == "PADV2" else 0.0
    assert v["p"][0, 0, 0, 0] == pytest.approx(fill) and v["p"][0, 6, 5, 1] == pytest.approx(fill)
    np.testing.assert_array_equal(v["p"][:, 1:5, 2:5, :], inputs["x"])
    check_grads(net, inputs, 3, ["x", "p", "w"])


def test_pad_op_and_folded_explicit_padding_agree_through_the_passes():
    """The same model read from a flatbuffer with and without the passes: PAD + VALID conv
    (a PAD rule) and the conv with explicit_padding (a window rule) give equal values and
    gradients; RESHAPE becomes an alias."""
    from tests.support.tflite_builder import ModelBuilder
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.passes.manager import run_passes

    rng = np.random.default_rng(31)
    mb = ModelBuilder()
    x = mb.input("x", (1, 6, 6, 3), "int8", 0.02, 0)
    pads = mb.const("pads", np.array([[0, 0], [1, 1], [2, 0], [0, 0]], dtype=np.int32))
    p = mb.tensor("p", (1, 8, 8, 3), "int8", 0.02, 0)
    mb.op("PAD", [x, pads], [p])
    wq = rng.integers(-127, 128, (4, 3, 3, 3)).astype(np.int8)
    ws = list(rng.uniform(0.002, 0.004, 4))
    w = mb.const("w", wq, scale=ws, zero_point=[0] * 4, quantized_dimension=0)
    bias = mb.const("b", rng.integers(-3000, 3000, 4).astype(np.int32), scale=[0.02 * s for s in ws],
                    zero_point=[0] * 4)
    c = mb.tensor("c", (1, 3, 2, 4), "int8", 0.05, -128)
    mb.op("CONV_2D", [p, w, bias], [c], options=dict(padding="VALID", stride_h=2, stride_w=3,
                                                      fused_activation_function="RELU"))
    r = mb.tensor("r", (1, 24), "int8", 0.05, -128)
    mb.op("RESHAPE", [c, mb.const("shape", np.array([1, 24], dtype=np.int32))], [r])
    fw = mb.const("fw", rng.integers(-127, 128, (3, 24)).astype(np.int8), scale=0.01, zero_point=0)
    y = mb.tensor("y", (1, 3), "int8", 0.1, 0)
    mb.op("FULLY_CONNECTED", [r, fw, None], [y])
    mb.output(y)
    raw = read_tflite(data=mb.build(), name="m")
    folded = run_passes(raw)
    conv = next(op for op in folded.ops if op.kind == "CONV_2D")
    assert conv.attrs.get("explicit_padding") == (1, 1, 2, 0)
    assert not any(op.kind in ("PAD", "RESHAPE") for op in folded.ops) and folded.aliases

    def name_of(g, label):
        return next(t.name for t in g.tensors.values() if t.label == label)

    results = []
    for g in (raw, folded):
        ids = {k: name_of(g, k) for k in ("x", "w", "b", "c", "fw", "y")}
        net = FloatNet(g, ids["y"])
        inputs = {ids["x"]: rng.normal(0, 3, (1, 6, 6, 3)) if not results else results[0][0]}
        names = [ids[k] for k in ("x", "w", "b", "c", "fw")]
        grads = check_grads(net, inputs, 1, names)
        results.append((inputs[ids["x"]], net.forward(inputs)[ids["y"]], [grads[n] for n in names]))
    np.testing.assert_allclose(results[0][1], results[1][1], rtol=1e-12)
    for a, b in zip(results[0][2], results[1][2]):
        np.testing.assert_allclose(a, b, rtol=1e-10, atol=1e-14)


# ----------------------------------------------------------------------------- quantized masks
def test_quantized_masks_values_at_the_int8_clamp():
    """quantized=True: an output at the int8 clamp of its activation is masked (RELU6 whose
    clamp code sits just below 6.0, RELU at the top of the int8 range); NONE is never masked."""
    b = GB(seed=37)
    x = b.input("x", (1, 4))
    w1 = b.weight("w1", (4, 4), 0)
    b1 = b.bias("b1", w1, x)
    s6 = 0.0471  # 6 / s6 = 127.39: the RELU6 clamp code is zp + 127, real 5.98 < 6
    h6 = b.act("h6", (1, 4), s6, -128)
    b.op("FULLY_CONNECTED", [x, w1, b1], [h6], fused_activation_function="RELU6")
    w2 = b.weight("w2", (4, 4), 0)
    b2 = b.bias("b2", w2, h6)
    hr = b.act("hr", (1, 4), 0.01, -100)  # RELU: top of int8 = 0.01 * 227 = 2.27
    b.op("FULLY_CONNECTED", [h6, w2, b2], [hr], fused_activation_function="RELU")
    w3 = b.weight("w3", (4, 4), 0)
    b3 = b.bias("b3", w3, hr)
    hn = b.act("hn", (1, 4), 0.02, 0)  # NONE: never masked, even at -128 / 127
    b.op("FULLY_CONNECTED", [hr, w3, b3], [hn], fused_activation_function="NONE")
    w4 = b.weight("w4", (3, 4), 0)
    y = b.act("logits", (1, 3), 0.1, 0)
    b.op("FULLY_CONNECTED", [hn, w4, None], [y], fused_activation_function="NONE")
    g = b.graph([y])
    net = FloatNet(g, "logits")
    ints = {
        "x": np.array([[10, -20, 30, 5]], np.int8),
        "h6": np.array([[-1, -128, 0, -50]], np.int8),   # clamp code, zero, above clamp (impossible), inside
        "hr": np.array([[127, -100, -101, 20]], np.int8),  # top of int8, zero, below zero, inside
        "hn": np.array([[127, -128, 3, -4]], np.int8),
        "logits": np.array([[5, -7, 12]], np.int8),
    }
    vals = quantized_values(g, ints)
    assert vals["h6"][0, 0] == pytest.approx(s6 * 127) and vals["h6"][0, 0] < 6.0
    np.testing.assert_array_equal(vals["hr"], 0.01 * (ints["hr"].astype(np.float64) + 100))
    want = ["b1", "b2", "b3", "h6", "hr", "hn"]
    _, gq = net.backward(vals, 2, want, quantized=True)
    _, gf = net.backward(vals, 2, want, quantized=False)
    # RELU6: element 0 at the clamp code (5.98) masked only when quantized; 1 at zero masked both
    # ways; 2 above 6 masked both ways; 3 inside passes both ways.
    assert gq["b1"][0] == 0 and gf["b1"][0] != 0 and gf["b1"][0] == pytest.approx(gf["h6"][0, 0])
    assert gq["b1"][1] == 0 and gf["b1"][1] == 0 and gq["b1"][2] == 0 and gf["b1"][2] == 0
    assert gq["b1"][3] == pytest.approx(gq["h6"][0, 3]) != 0
    # RELU: element 0 at the top of int8 masked only when quantized; 1 (zero) and 2 masked both.
    assert gq["b2"][0] == 0 and gf["b2"][0] == pytest.approx(gf["hr"][0, 0]) != 0
    assert gq["b2"][1] == gf["b2"][1] == gq["b2"][2] == gf["b2"][2] == 0
    assert gq["b2"][3] == pytest.approx(gq["hr"][0, 3]) != 0
    # NONE: straight through, also at -128 and 127
    np.testing.assert_array_equal(gq["b3"], gq["hn"][0])
    np.testing.assert_array_equal(gq["hn"], gf["hn"])


def test_quantized_values_dequantizes_per_tensor():
    b = GB()
    x = b.input("x", (1, 2, 2, 1), 0.5, -3)
    y = b.act("y", (1, 4), 0.25, 10, dtype="uint8")
    g = b.graph([x])
    got = quantized_values(g, {"x": np.array([-128, -3, 0, 127], np.int8), "y": np.array([[0, 10, 11, 255]], np.uint8)})
    assert got["x"].shape == (1, 2, 2, 1) and got["x"].dtype == np.float64
    np.testing.assert_array_equal(got["x"].ravel(), [0.5 * -125, 0, 1.5, 65])
    np.testing.assert_array_equal(got["y"], [[-2.5, 0, 0.25, 61.25]])
    with pytest.raises(ValueError, match="nope"):
        quantized_values(g, {"nope": np.zeros(1)})


def test_backward_reads_activations_only_from_values():
    """The weight gradient of the classifier is outer(dlogits, the GIVEN input), even when that
    input is not what forward() would compute (an int8 run's saved activations)."""
    b = GB(seed=41)
    x = b.input("x", (1, 4, 4, 2))
    wt = b.weight("w", (3, 3, 3, 2), 0)
    c = b.act("c", (1, 4, 4, 3))
    b.op("CONV_2D", [x, wt, None], [c], **conv_attrs("SAME", act="RELU"))
    g = b.graph([b.fc_head(c, classes=3)])
    net = FloatNet(g, "logits")
    v = net.forward(rand_input(g, b.rng))
    v2 = dict(v)
    v2["c"] = np.abs(b.rng.normal(size=(1, 4, 4, 3))) + 0.1
    v2.pop("c_flat")
    loss, gr = net.backward(v2, 1, ["logits_w", "logits_b", "w"])
    z = v2["logits"].ravel()
    p = np.exp(z - z.max()) / np.exp(z - z.max()).sum()
    dz = p - np.eye(3)[1]
    np.testing.assert_allclose(gr["logits_b"], dz)
    np.testing.assert_allclose(gr["logits_w"], np.outer(dz, v2["c"].ravel()))
    assert loss == pytest.approx(-np.log(p[1]))


# ----------------------------------------------------------------------------- errors
def test_unsupported_op_on_the_path_is_named():
    b = GB()
    x = b.input("x", (1, 2, 2, 1))
    y = b.act("y", (1, 4, 4, 1))
    b.op("RESIZE_NEAREST_NEIGHBOR", [x, b.const("size", [4, 4])], [y], align_corners=False)
    g = b.graph([b.fc_head(y)])
    with pytest.raises(ValueError, match="RESIZE_NEAREST_NEIGHBOR"):
        FloatNet(g, "logits")


def test_softmax_on_the_path_and_unknown_names_are_refused():
    b = GB()
    x = b.input("x", (1, 3))
    y = b.act("y", (1, 3))
    b.op("SOFTMAX", [x], [y], beta=1.0)
    g = b.graph([y])
    with pytest.raises(ValueError, match="SOFTMAX"):
        FloatNet(g, "y")
    net = FloatNet(g, "x")
    v = net.forward({"x": np.zeros((1, 3))})
    loss, gr = net.backward(v, 0, ["x"])
    assert loss == pytest.approx(np.log(3))
    with pytest.raises(ValueError, match="zzz"):
        net.backward(v, 0, ["zzz"])
    with pytest.raises(ValueError, match="label"):
        net.backward(v, 3, ["x"])


def test_only_the_path_to_the_logits_is_kept():
    b = GB()
    x = b.input("x", (1, 3))
    y = b.act("y", (1, 3))
    b.op("RELU", [x], [y])
    z = b.act("z", (1, 3))
    b.op("SOFTMAX", [y], [z], beta=1.0)
    g = b.graph([z])
    net = FloatNet(g, "y", beta=2.0)
    assert [op.kind for op in net.ops] == ["RELU"]
    check_grads(net, {"x": np.array([[0.3, -0.4, 1.2]])}, 2, ["x"])


# ----------------------------------------------------------------------------- the real model
@pytest.mark.skipif(not VWW.is_file(), reason=f"shared model {VWW} not present (shared folder missing)")
def test_vww_96_int8_gradients_and_speed():
    from tinyc.frontend.tflite_reader import read_tflite
    from tinyc.passes.manager import run_passes

    g = run_passes(read_tflite(data=VWW.read_bytes(), name="m"))
    fc = next(op for op in g.ops if op.kind == "FULLY_CONNECTED")
    logits = fc.outputs[0]
    convs = [op for op in g.ops if op.kind == "CONV_2D"]
    mid = convs[len(convs) // 2]
    net = FloatNet(g, logits)
    assert [op.kind for op in net.ops].count("CONV_2D") == len(convs)
    rng = np.random.default_rng(43)
    inputs = {g.inputs[0]: rng.uniform(0, 1, g.t(g.inputs[0]).shape)}
    names = [fc.inputs[1], fc.inputs[2], mid.inputs[1], mid.inputs[2]]

    best = np.inf
    for _ in range(3):
        t0 = time.perf_counter()
        v = net.forward(inputs)
        net.backward(v, 1, list(net.params) + [g.inputs[0]])
        best = min(best, time.perf_counter() - t0)
    assert best < 1.0, f"forward + full backward took {best:.3f} s"
    # ReLU kinks deep in the net make finite differences slightly rougher than on small graphs
    check_grads(net, inputs, 1, names, rng=rng, coords=6, rtol=2e-4, atol=1e-8)
