"""The C training kernels (runtime_c/src/train_*.c) against float64 numpy references.

The kernels are built into one shared library with a gradient hook (TINYC_TRAIN_GRAD_HOOK) that
records every gradient an update kernel applies, so the gradients are compared with the float64
reference and the applied SGD steps are checked bit for bit against a float32 emulation of
tinyc_sgd_step fed with the recorded gradients. Every buffer a kernel gets is surrounded by guard
bytes that must survive the call (out-of-bounds writes).

TINYC_TRAIN_SANITIZE=1 builds the library with -fsanitize=address,undefined; run pytest then with
LD_PRELOAD=$(gcc -print-file-name=libasan.so) ASAN_OPTIONS=detect_leaks=0.
"""

from __future__ import annotations

import ctypes as C
import os
import shutil
import subprocess
import zlib
from pathlib import Path

import numpy as np
import pytest

REPO = Path(__file__).resolve().parents[2]
INCLUDE = REPO / "runtime_c" / "include"
SOURCES = sorted((REPO / "runtime_c" / "src").glob("train_*.c"))
STRICT = ["-std=c99", "-Wall", "-Wextra", "-Werror", "-O2", "-ffp-contract=off"]
SANITIZE = bool(os.environ.get("TINYC_TRAIN_SANITIZE"))
ARM = ["-mcpu=cortex-m7", "-mthumb", "-mfloat-abi=hard", "-mfpu=fpv5-sp-d16"]

HELPER = r"""
#include <stddef.h>
#include <stdint.h>
#include "tinyc/train_conv.h"
#include "tinyc/train_elementwise.h"
#include "tinyc/train_fully_connected.h"
#include "tinyc/train_loss.h"
#include "tinyc/train_pooling.h"
#include "tinyc/train_update.h"

static int32_t *h_layer, *h_kind, *h_index, h_cap, h_n;
static float *h_g;
void test_hook_set(int32_t *layer, int32_t *kind, int32_t *index, float *g, int32_t cap) {
  h_layer = layer; h_kind = kind; h_index = index; h_g = g; h_cap = cap; h_n = 0;
}
int32_t test_hook_count(void) { return h_n; }
void tinyc_train_grad_hook(int32_t layer, int32_t kind, int32_t index, float g) {
  if (h_n < h_cap) { h_layer[h_n] = layer; h_kind[h_n] = kind; h_index[h_n] = index; h_g[h_n] = g; }
  ++h_n;
}
int32_t test_round_f32(float x) { return tinyc_round_f32(x); }
int32_t test_sgd_step(const tinyc_sgd_t *sgd, float g, float step_inv, int32_t q, int16_t *res, float *mom,
                      int32_t q_min, int32_t q_max) {
  return tinyc_sgd_step(sgd, g, step_inv, q, res, mom, q_min, q_max);
}
void test_expf_n(const float *x, float *y, int32_t n) { for (int32_t i = 0; i < n; ++i) y[i] = tinyc_expf(x[i]); }
void test_logf_n(const float *x, float *y, int32_t n) { for (int32_t i = 0; i < n; ++i) y[i] = tinyc_logf(x[i]); }
#define L(T, f) (int64_t)sizeof(T), (int64_t)offsetof(T, f)
void test_layout(int64_t *o) {
  const int64_t v[] = {
    L(tinyc_conv_bwd_params_t, w_scale), L(tinyc_conv_update_params_t, b_step_inv),
    L(tinyc_fc_bwd_params_t, w_scale), L(tinyc_fc_update_params_t, b_step_inv), L(tinyc_sgd_t, momentum),
    L(tinyc_mask_params_t, hi), L(tinyc_size_params_t, n), L(tinyc_gather_params_t, sel),
    L(tinyc_broadcast_bwd_params_t, other_zp), L(tinyc_act_bwd_params_t, zp),
    L(tinyc_transpose_f32_params_t, perm), L(tinyc_pad_bwd_params_t, pad_before),
    L(tinyc_pool_params_t, act_max), L(tinyc_mean_bwd_params_t, reduce), L(tinyc_softmax_ce_params_t, beta)};
  for (size_t i = 0; i < sizeof v / sizeof v[0]; ++i) o[i] = v[i];
}
"""

i32, f32, vp = C.c_int32, C.c_float, C.c_void_p
I4 = i32 * 4


class ConvBwd(C.Structure):
    _fields_ = [(n, i32) for n in ("batches", "in_h", "in_w", "in_c", "out_h", "out_w", "out_c", "filter_h",
                                   "filter_w", "filter_in_c", "depth_multiplier", "stride_h", "stride_w",
                                   "dilation_h", "dilation_w", "pad_top", "pad_left")] + [("w_scale", vp)]


class ConvUpd(C.Structure):
    _fields_ = [("g", ConvBwd), ("layer", i32), ("x_scale", f32), ("x_zp", i32), ("n_sel", i32), ("sel", vp),
                ("w_step_inv", vp), ("b_step_inv", vp), ("b_limit", i32)]


class FcBwd(C.Structure):
    _fields_ = [("rows", i32), ("in_depth", i32), ("out_depth", i32), ("w_scale", vp)]


class FcUpd(C.Structure):
    _fields_ = [("g", FcBwd), ("layer", i32), ("x_scale", f32), ("x_zp", i32), ("n_sel", i32), ("sel", vp),
                ("w_step_inv", vp), ("b_step_inv", vp), ("b_limit", i32)]


class Sgd(C.Structure):
    _fields_ = [("lr", f32), ("momentum", f32), ("rng", C.POINTER(C.c_uint32))]


class MaskP(C.Structure):
    _fields_ = [("n", i32), ("lo", i32), ("hi", i32)]


class SizeP(C.Structure):
    _fields_ = [("n", i32)]


class GatherP(C.Structure):
    _fields_ = [("pixels", i32), ("c", i32), ("n_sel", i32), ("sel", vp)]


class BcastP(C.Structure):
    _fields_ = [("out_shape", I4), ("in_shape", I4), ("other_shape", I4), ("other_scale", f32), ("other_zp", i32)]


class ActP(C.Structure):
    _fields_ = [("n", i32), ("scale", f32), ("zp", i32)]


class TransposeP(C.Structure):
    _fields_ = [("in_shape", I4), ("perm", I4)]


class PadP(C.Structure):
    _fields_ = [("in_shape", I4), ("out_shape", I4), ("pad_before", I4)]


class PoolP(C.Structure):
    _fields_ = [(n, i32) for n in ("batches", "in_h", "in_w", "depth", "out_h", "out_w", "filter_h", "filter_w",
                                   "stride_h", "stride_w", "pad_h", "pad_w", "act_min", "act_max")]


class MeanP(C.Structure):
    _fields_ = [("in_shape", I4), ("reduce", C.c_uint8 * 4)]


class CeP(C.Structure):
    _fields_ = [("classes", i32), ("scale", f32), ("zp", i32), ("beta", f32)]


LAYOUT = [ConvBwd, "w_scale", ConvUpd, "b_step_inv", FcBwd, "w_scale", FcUpd, "b_step_inv", Sgd, "momentum",
          MaskP, "hi", SizeP, "n", GatherP, "sel", BcastP, "other_zp", ActP, "zp", TransposeP, "perm", PadP,
          "pad_before", PoolP, "act_max", MeanP, "reduce", CeP, "beta"]

SIGNATURES = {
    "tinyc_conv2d_backward_input_f32": [vp] * 4,
    "tinyc_depthwise_backward_input_f32": [vp] * 4,
    "tinyc_conv2d_update": [vp] * 11,
    "tinyc_depthwise_update": [vp] * 11,
    "tinyc_fc_backward_input_f32": [vp] * 4,
    "tinyc_fc_update": [vp] * 11,
    "tinyc_act_mask_s8": [vp] * 3,
    "tinyc_apply_mask_f32": [vp] * 4,
    "tinyc_grad_add_f32": [vp] * 4,
    "tinyc_gather_channels_s8": [vp] * 3,
    "tinyc_add_backward_f32": [vp] * 3,
    "tinyc_mul_backward_f32": [vp] * 4,
    "tinyc_hard_swish_backward_f32": [vp] * 4,
    "tinyc_logistic_backward_f32": [vp] * 4,
    "tinyc_transpose_f32": [vp] * 3,
    "tinyc_pad_backward_f32": [vp] * 3,
    "tinyc_avgpool_backward_f32": [vp] * 3,
    "tinyc_mean_backward_f32": [vp] * 3,
    "tinyc_softmax_ce_s8": [vp] * 6,
    "test_hook_set": [vp, vp, vp, vp, i32],
    "test_hook_count": [],
    "test_round_f32": [f32],
    "test_sgd_step": [vp, f32, f32, i32, vp, vp, i32, i32],
    "test_expf_n": [vp, vp, i32],
    "test_logf_n": [vp, vp, i32],
    "test_layout": [vp],
}
RESTYPES = {"test_hook_count": i32, "test_round_f32": i32, "test_sgd_step": i32}


@pytest.fixture(scope="module")
def lib(tmp_path_factory):
    d = tmp_path_factory.mktemp("train_kernels")
    helper = d / "helper.c"
    helper.write_text(HELPER)
    so = d / "libtrain.so"
    flags = ["-std=c99", "-O1", "-fPIC", "-shared", "-ffp-contract=off", "-DTINYC_TRAIN_GRAD_HOOK"]
    if SANITIZE:
        flags += ["-fsanitize=address,undefined", "-fno-sanitize-recover=all", "-fno-omit-frame-pointer", "-g"]
    subprocess.run(["gcc", *flags, f"-I{INCLUDE}", *map(str, SOURCES), str(helper), "-o", str(so)], check=True)
    h = C.CDLL(str(so))
    for name, args in SIGNATURES.items():
        fn = getattr(h, name)
        fn.argtypes = args
        fn.restype = RESTYPES.get(name)
    return h


def seed(*args):
    """A stable RNG seed from test parameters (hash() of strings varies between processes)."""
    return zlib.crc32(repr(args).encode())


def P(a):
    """A pointer to an array's data, or NULL."""
    return None if a is None else a.ctypes.data


class Guards:
    """Copies arrays into buffers with guard bytes before and after; check() finds stray writes."""

    PAD = 64

    def __init__(self):
        self.raws = []

    def __call__(self, a):
        if a is None:
            return None
        if SANITIZE:  # exact allocations: AddressSanitizer then checks reads too
            return np.array(a, copy=True, order="C")
        a = np.ascontiguousarray(a)
        raw = np.full(a.nbytes + 2 * self.PAD, 0xA5, np.uint8)
        view = raw[self.PAD:self.PAD + a.nbytes].view(a.dtype).reshape(a.shape)
        view[...] = a
        self.raws.append(raw)
        return view

    def check(self):
        for raw in self.raws:
            assert (raw[:self.PAD] == 0xA5).all() and (raw[-self.PAD:] == 0xA5).all(), "write out of bounds"


class Hook:
    """Records the gradient hook's calls while in the `with` block."""

    def __init__(self, lib, cap=1 << 16):
        self.lib = lib
        self.layer, self.kind, self.index = (np.zeros(cap, np.int32) for _ in range(3))
        self.g = np.zeros(cap, np.float32)
        self.cap = cap

    def __enter__(self):
        self.lib.test_hook_set(P(self.layer), P(self.kind), P(self.index), P(self.g), self.cap)
        return self

    def __exit__(self, *exc):
        self.n = self.lib.test_hook_count()
        assert self.n <= self.cap
        self.lib.test_hook_set(None, None, None, None, 0)

    def grads(self, layer, kind):
        """{index: g} of one kind; every index reported once, with the right layer."""
        sl = slice(0, self.n)
        assert (self.layer[sl] == layer).all()
        m = self.kind[sl] == kind
        idx, g = self.index[sl][m], self.g[sl][m]
        assert len(np.unique(idx)) == len(idx), "a gradient reported twice"
        return idx, g


def rel_l2(got, want):
    got, want = np.asarray(got, np.float64).ravel(), np.asarray(want, np.float64).ravel()
    den = np.linalg.norm(want)
    return np.linalg.norm(got - want) / (den if den > 0 else 1.0)


def assert_close(got, want, tol=1e-5):
    got, want = np.asarray(got, np.float64), np.asarray(want, np.float64)
    assert got.shape == want.shape
    assert rel_l2(got, want) <= tol, rel_l2(got, want)
    np.testing.assert_allclose(got, want, rtol=tol, atol=tol * max(np.abs(want).max(initial=0.0), 1e-30))


# ---------------------------------------------------------------------------------------------
# float32 emulation of tinyc_sgd_step (train_update.h)

F = np.float32


def round_away(x):
    x = np.atleast_1d(np.asarray(x, F))
    nan = np.isnan(x)
    hi, lo = x >= F(2 ** 30), x <= F(-(2 ** 30))
    xc = np.where(hi | lo | nan, F(0), x)
    t = np.trunc(xc)
    frac = xc - t
    n = t.astype(np.int64) + (frac >= F(0.5)) - (frac <= F(-0.5))
    n[hi], n[lo], n[nan] = 2 ** 30, -(2 ** 30), 0
    return n


def sgd_emulate(g, step_inv, q, res, mom, lr, momentum, q_min, q_max):
    """(q, res, mom) after tinyc_sgd_step, elementwise, in float32 like the C code."""
    v = np.asarray(g, F) * np.asarray(step_inv, F)
    mom_out = None if mom is None else np.array(mom, F)
    if mom is not None and momentum != 0:
        v = F(momentum) * np.asarray(mom, F) + v
        mom_out = v.copy()
    acc = np.asarray(res, F) * F(1.0 / 65536) - F(lr) * v
    n = round_away(acc)
    nq = np.asarray(q, np.int64) + n
    clamped = (nq > q_max) | (nq < q_min)
    r = np.clip(round_away((acc - n.astype(F)) * F(65536)), -32767, 32767)
    r[clamped] = 0
    return np.clip(nq, q_min, q_max), r.astype(np.int16), mom_out


# ---------------------------------------------------------------------------------------------
# conv geometry and float64 references


def conv_case(kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, in_h, in_w, in_c, out_c, batches=1, groups=1, dm=0):
    out_h = (in_h + pt + pb - ((kh - 1) * dh + 1)) // sh + 1
    out_w = (in_w + pl + pr - ((kw - 1) * dw + 1)) // sw + 1
    assert out_h > 0 and out_w > 0
    if dm:
        out_c = in_c * dm
    return dict(batches=batches, in_h=in_h, in_w=in_w, in_c=in_c, out_h=out_h, out_w=out_w, out_c=out_c,
                filter_h=kh, filter_w=kw, filter_in_c=1 if dm else in_c // groups, depth_multiplier=dm,
                stride_h=sh, stride_w=sw, dilation_h=dh, dilation_w=dw, pad_top=pt, pad_left=pl)


def taps(g):
    """(ky, kx, output rows, input rows, output cols, input cols) of every tap with valid pixels."""
    for ky in range(g["filter_h"]):
        iy = np.arange(g["out_h"]) * g["stride_h"] - g["pad_top"] + ky * g["dilation_h"]
        vy = (iy >= 0) & (iy < g["in_h"])
        for kx in range(g["filter_w"]):
            ix = np.arange(g["out_w"]) * g["stride_w"] - g["pad_left"] + kx * g["dilation_w"]
            vx = (ix >= 0) & (ix < g["in_w"])
            if vy.any() and vx.any():
                yield ky, kx, np.nonzero(vy)[0], iy[vy], np.nonzero(vx)[0], ix[vx]


def ref_conv_dx(g, dz, w_real):
    fic = g["filter_in_c"]
    groups = g["in_c"] // fic
    opg = g["out_c"] // groups
    dx = np.zeros((g["batches"], g["in_h"], g["in_w"], g["in_c"]))
    for ky, kx, oy, iy, ox, ix in taps(g):
        dzs = dz[:, oy][:, :, ox]
        for grp in range(groups):
            contrib = dzs[..., grp * opg:(grp + 1) * opg] @ w_real[grp * opg:(grp + 1) * opg, ky, kx, :]
            dx[:, iy[:, None], ix[None, :], grp * fic:(grp + 1) * fic] += contrib
    return dx


def ref_conv_gw(g, dz, x_real):
    gw = np.zeros((g["out_c"], g["filter_h"], g["filter_w"], g["in_c"]))
    for ky, kx, oy, iy, ox, ix in taps(g):
        gw[:, ky, kx, :] = np.einsum("bhwo,bhwc->oc", dz[:, oy][:, :, ox], x_real[:, iy[:, None], ix[None, :], :])
    return gw


def ref_dw_dx(g, dz, w_real):
    dm = g["depth_multiplier"]
    dx = np.zeros((g["batches"], g["in_h"], g["in_w"], g["in_c"]))
    for ky, kx, oy, iy, ox, ix in taps(g):
        contrib = dz[:, oy][:, :, ox] * w_real[ky, kx]
        dx[:, iy[:, None], ix[None, :], :] += contrib.reshape(*contrib.shape[:3], g["in_c"], dm).sum(-1)
    return dx


def ref_dw_gw(g, dz, x_real):
    dm = g["depth_multiplier"]
    gw = np.zeros((g["filter_h"], g["filter_w"], g["out_c"]))
    for ky, kx, oy, iy, ox, ix in taps(g):
        xs = np.repeat(x_real[:, iy[:, None], ix[None, :], :], dm, axis=-1)
        gw[ky, kx] = np.einsum("bhwo,bhwo->o", dz[:, oy][:, :, ox], xs)
    return gw


def random_dz(rng, shape, zeros=0.3):
    dz = rng.standard_normal(shape).astype(F)
    dz[rng.random(shape) < zeros] = 0  # the activation mask
    return dz


def selection(kind, n, rng):
    if kind == "all":
        s = np.arange(n)
    elif kind == "first":
        s = np.arange(max(1, n // 2))
    elif kind == "none":
        s = np.arange(0)
    else:  # scattered
        s = np.sort(rng.choice(n, size=max(1, (n + 1) // 2), replace=False))
    return s.astype(np.uint16)


CONV_CASES = [  # kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, in_h, in_w, in_c, out_c, batches
    (1, 1, 1, 1, 1, 1, 0, 0, 0, 0, 5, 6, 4, 3, 2),
    (1, 1, 2, 2, 1, 1, 2, 2, 2, 1, 5, 5, 3, 4, 1),   # windows wholly in the padding
    (3, 3, 1, 1, 1, 1, 1, 1, 1, 1, 7, 7, 3, 5, 1),   # SAME
    (3, 3, 2, 2, 1, 1, 0, 0, 1, 1, 8, 8, 5, 4, 2),   # trailing padding only
    (3, 3, 2, 1, 1, 1, 1, 0, 1, 2, 6, 9, 2, 3, 1),
    (3, 3, 1, 1, 2, 2, 2, 2, 2, 2, 6, 6, 3, 2, 1),   # dilation 2
    (5, 5, 2, 2, 2, 1, 2, 2, 2, 2, 9, 10, 2, 3, 1),
    (5, 5, 1, 2, 1, 1, 2, 1, 2, 2, 7, 8, 4, 2, 2),
    (10, 4, 1, 2, 1, 1, 2, 1, 2, 1, 12, 7, 3, 2, 1),  # non-square
    (10, 4, 2, 1, 1, 2, 0, 2, 1, 2, 13, 6, 2, 3, 1),
]


def conv_id(c):
    return "k{}x{}_s{}{}_d{}{}_p{}{}{}{}_in{}x{}x{}_oc{}_b{}".format(*c)


def make_conv_bwd(g, w_scale):
    return ConvBwd(**{k: v for k, v in g.items()}, w_scale=P(w_scale))


@pytest.mark.parametrize("groups", [1, 2, "depthwise_like"])
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_id)
def test_conv2d_backward_input(lib, case, groups):
    *geo, in_c, out_c, batches = case
    if groups == "depthwise_like":
        groups = in_c
        out_c = in_c * 2
    elif groups == 2:
        in_c, out_c = 2 * in_c, 2 * out_c
    g = conv_case(*geo, in_c, out_c, batches, groups=groups)
    rng = np.random.default_rng(seed(case))
    G = Guards()
    w = G(rng.integers(-127, 128, (g["out_c"], g["filter_h"], g["filter_w"], g["filter_in_c"]), dtype=np.int8))
    w_scale = G(rng.uniform(0.002, 0.02, g["out_c"]).astype(F))
    dz = G(random_dz(rng, (g["batches"], g["out_h"], g["out_w"], g["out_c"])))
    dx = G(np.full((g["batches"], g["in_h"], g["in_w"], g["in_c"]), np.nan, F))
    p = make_conv_bwd(g, w_scale)
    lib.tinyc_conv2d_backward_input_f32(C.byref(p), P(dz), P(w), P(dx))
    G.check()
    want = ref_conv_dx(g, dz.astype(np.float64), w.astype(np.float64) * w_scale[:, None, None, None])
    assert_close(dx, want)


@pytest.mark.parametrize("dm", [1, 2, 8])
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_id)
def test_depthwise_backward_input(lib, case, dm):
    *geo, in_c, _, batches = case
    g = conv_case(*geo, in_c, 0, batches, dm=dm)
    rng = np.random.default_rng(seed((case, dm)))
    G = Guards()
    w = G(rng.integers(-127, 128, (g["filter_h"], g["filter_w"], g["out_c"]), dtype=np.int8))
    w_scale = G(rng.uniform(0.002, 0.02, g["out_c"]).astype(F))
    dz = G(random_dz(rng, (g["batches"], g["out_h"], g["out_w"], g["out_c"])))
    dx = G(np.full((g["batches"], g["in_h"], g["in_w"], g["in_c"]), np.nan, F))
    p = make_conv_bwd(g, w_scale)
    lib.tinyc_depthwise_backward_input_f32(C.byref(p), P(dz), P(w), P(dx))
    G.check()
    assert_close(dx, ref_dw_dx(g, dz.astype(np.float64), w.astype(np.float64) * w_scale))


def step_inv_for(rng, grads_per_channel, lr, target=1.5):
    """Per-channel step_inv making lr * g * step_inv about `target` steps (rms), times 0.5..2."""
    rms = np.sqrt(np.mean(np.square(grads_per_channel), axis=1)) if grads_per_channel.shape[1] else None
    if rms is None:
        rms = np.ones(grads_per_channel.shape[0])
    rms = np.where(rms > 0, rms, 1.0)
    return (target / (lr * rms) * rng.uniform(0.5, 2.0, len(rms))).astype(F)


def run_update(lib, kind, rng, g, sel, *, momentum, train_bias, with_mom, batches_dz=None):
    """Runs one update kernel (conv2d / depthwise) and checks gradients and every buffer."""
    dw = kind == "depthwise"
    x_zp, x_scale = int(rng.integers(-20, 20)), F(rng.uniform(0.01, 0.05))
    x_q = rng.integers(-128, 128, (g["batches"], g["in_h"], g["in_w"], g["in_c"]), dtype=np.int8)
    x_real = x_scale * (x_q.astype(np.float64) - x_zp)
    dz = random_dz(rng, (g["batches"], g["out_h"], g["out_w"], g["out_c"]))
    taps_n = g["filter_h"] * g["filter_w"]
    n_sel = len(sel)
    lr, layer = 0.7, 7
    if dw:
        gw_full = ref_dw_gw(g, dz.astype(np.float64), x_real)  # [kh][kw][oc]
        w_shape = (g["filter_h"], g["filter_w"], g["out_c"])
        dm = g["depth_multiplier"]
        trained_oc = np.array([c * dm + m for c in sel for m in range(dm)], np.int64)
        # compact [(s * dm + m)][ky][kx] -> flat index in w
        flat = (np.arange(taps_n)[None, :] * g["out_c"] + trained_oc[:, None]).ravel()
        comp_oc = np.repeat(trained_oc, taps_n)
        per_channel = gw_full.reshape(taps_n, g["out_c"]).T
    else:
        gw_full = ref_conv_gw(g, dz.astype(np.float64), x_real)  # [oc][kh][kw][ic]
        w_shape = (g["out_c"], g["filter_h"], g["filter_w"], g["in_c"])
        idx = np.arange(np.prod(w_shape)).reshape(w_shape)
        flat = idx[..., sel.astype(np.int64)].ravel()  # compact [oc][kh][kw][n_sel]
        comp_oc = np.repeat(np.arange(g["out_c"]), taps_n * n_sel)
        per_channel = gw_full[..., sel.astype(np.int64)].reshape(g["out_c"], -1)
    n_comp = len(flat)
    gb_ref = dz.astype(np.float64).sum(axis=(0, 1, 2))
    G = Guards()
    w_step_inv = G(step_inv_for(rng, per_channel, lr))
    b_step_inv = G(step_inv_for(rng, gb_ref[:, None], lr)) if train_bias else None
    w0 = rng.integers(-127, 128, w_shape).astype(np.int8)
    w0.ravel()[rng.choice(w0.size, size=max(1, w0.size // 10), replace=False)] = 127  # saturations
    res0 = rng.integers(-30000, 30001, n_comp).astype(np.int16)
    mom0 = rng.standard_normal(n_comp).astype(F) if with_mom else None
    b_limit = int(rng.choice([2147483647, 50000, 1000]))  # the C compiler's accumulator bound
    b0 = rng.integers(-b_limit, b_limit, g["out_c"], endpoint=True).astype(np.int32)
    b0[0] = b_limit  # saturation
    bres0 = rng.integers(-30000, 30001, g["out_c"]).astype(np.int16)
    bmom0 = rng.standard_normal(g["out_c"]).astype(F) if with_mom else None
    # the kernel trains the compact trained part of the weights: the selected channels along the last axis
    along = trained_oc if dw else sel.astype(np.int64)
    w_full0 = w0
    w0 = np.ascontiguousarray(np.take(w_full0, along, axis=-1))
    w, w_res, w_mom = G(w0), G(res0), G(mom0)
    bias, b_res, b_mom = G(b0), G(bres0), G(bmom0)
    x_sel = G(np.ascontiguousarray(x_q[..., sel.astype(np.int64)]))
    dzg, selg = G(dz), G(sel if n_sel else np.zeros(1, np.uint16))
    scratch = G(np.full(taps_n * (1 if dw else n_sel), np.nan, F))
    w_scale = G(np.full(g["out_c"], 0.01, F))
    p = ConvUpd(g=make_conv_bwd(g, w_scale), layer=layer, x_scale=x_scale, x_zp=x_zp, n_sel=n_sel, sel=P(selg),
                w_step_inv=P(w_step_inv), b_step_inv=P(b_step_inv), b_limit=b_limit)
    sgd = Sgd(lr=lr, momentum=momentum)
    fn = lib.tinyc_depthwise_update if dw else lib.tinyc_conv2d_update
    with Hook(lib) as h:
        fn(C.byref(p), C.byref(sgd), P(dzg), P(x_sel), P(w), P(w_res), P(w_mom), P(bias), P(b_res), P(b_mom),
           P(scratch))
    G.check()
    # gradients: exactly the trained elements, each once, in compact order, close to float64
    gi, gg = h.grads(layer, 0)
    np.testing.assert_array_equal(gi, flat)
    assert_close(gg, gw_full.ravel()[flat])
    bi, bg = h.grads(layer, 1)
    if train_bias:
        np.testing.assert_array_equal(bi, np.arange(g["out_c"]))
        assert_close(bg, gb_ref)
    else:
        assert len(bi) == 0
    # the SGD steps, bit-exact given the reported gradients
    want_w = w_full0.astype(np.int64).ravel().copy()
    q, r, m = sgd_emulate(gg, w_step_inv[comp_oc], w_full0.ravel()[flat], res0, mom0, lr, momentum, -127, 127)
    want_w[flat] = q
    np.testing.assert_array_equal(w.ravel(), np.take(want_w.reshape(w_shape), along, axis=-1).ravel())
    np.testing.assert_array_equal(w_res, r)
    if with_mom:
        np.testing.assert_array_equal(w_mom, m)
    if train_bias:
        q, r, m = sgd_emulate(bg, b_step_inv, b0, bres0, bmom0, lr, momentum, -b_limit, b_limit)
        np.testing.assert_array_equal(bias, q)
        np.testing.assert_array_equal(b_res, r)
        if with_mom:
            np.testing.assert_array_equal(b_mom, m)
    else:
        np.testing.assert_array_equal(bias, b0)
        np.testing.assert_array_equal(b_res, bres0)
    return w0, w


@pytest.mark.parametrize("sel_kind", ["all", "first", "scattered", "none"])
@pytest.mark.parametrize("case", CONV_CASES, ids=conv_id)
def test_conv2d_update(lib, case, sel_kind):
    *geo, in_c, out_c, batches = case
    g = conv_case(*geo, in_c, out_c, batches)
    rng = np.random.default_rng(seed((case, sel_kind)))
    sel = selection(sel_kind, in_c, rng)
    w0, w = run_update(lib, "conv", rng, g, sel, momentum=0.9 if sel_kind == "first" else 0.0,
                       train_bias=sel_kind != "scattered", with_mom=sel_kind in ("first", "none"))
    assert sel_kind == "none" or (w != w0).any()


@pytest.mark.parametrize("dm", [1, 2, 8])
@pytest.mark.parametrize("sel_kind", ["all", "first", "scattered"])
@pytest.mark.parametrize("case", CONV_CASES[::2] + CONV_CASES[-1:], ids=conv_id)
def test_depthwise_update(lib, case, sel_kind, dm):
    *geo, in_c, _, batches = case
    g = conv_case(*geo, in_c, 0, batches, dm=dm)
    rng = np.random.default_rng(seed((case, sel_kind, dm)))
    sel = selection(sel_kind, in_c, rng)
    run_update(lib, "depthwise", rng, g, sel, momentum=0.5 if dm == 2 else 0.0, train_bias=sel_kind != "first",
               with_mom=dm != 8)


def test_update_random_geometries(lib):
    """A seeded sweep of random geometries through both update and backward-input kernels."""
    rng = np.random.default_rng(1234)
    done = 0
    while done < 30:
        kh, kw = rng.integers(1, 6, 2)
        sh, sw, dh, dw = rng.integers(1, 3, 4)
        pt, pl, pb, pr = rng.integers(0, 3, 4)
        in_h, in_w = rng.integers(3, 10, 2)
        in_c = int(rng.integers(1, 6))
        try:
            g = conv_case(kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, in_h, in_w, in_c, int(rng.integers(1, 5)),
                          int(rng.integers(1, 3)))
        except AssertionError:
            continue
        sel = selection(["all", "first", "scattered"][done % 3], in_c, rng)
        run_update(lib, "conv", rng, g, sel, momentum=0.0, train_bias=True, with_mom=False)
        gd = conv_case(kh, kw, sh, sw, dh, dw, pt, pl, pb, pr, in_h, in_w, in_c, 0, g["batches"],
                       dm=int(rng.integers(1, 4)))
        run_update(lib, "depthwise", rng, gd, sel, momentum=0.9, train_bias=True, with_mom=True)
        done += 1


# ---------------------------------------------------------------------------------------------
# FULLY_CONNECTED


@pytest.mark.parametrize("rows", [1, 3])
@pytest.mark.parametrize("sel_kind", ["all", "first", "scattered", "none"])
def test_fc_backward_input_and_update(lib, rows, sel_kind):
    rng = np.random.default_rng(rows * 10 + len(sel_kind))
    n_in, n_out, lr, layer, momentum = 19, 6, 0.5, 3, (0.9 if sel_kind == "first" else 0.0)
    G = Guards()
    w0 = rng.integers(-127, 128, (n_out, n_in)).astype(np.int8)
    w_scale = G(np.full(n_out, 0.0123, F))  # per-tensor: one value repeated
    dz = G(random_dz(rng, (rows, n_out), zeros=0.2))
    dx = G(np.full((rows, n_in), np.nan, F))
    w = G(w0)
    bp = FcBwd(rows=rows, in_depth=n_in, out_depth=n_out, w_scale=P(w_scale))
    lib.tinyc_fc_backward_input_f32(C.byref(bp), P(dz), P(w), P(dx))
    G.check()
    assert_close(dx, dz.astype(np.float64) @ (w0.astype(np.float64) * w_scale[:, None]))

    sel = selection(sel_kind, n_in, rng)
    n_sel = len(sel)
    x_zp, x_scale = 5, F(0.031)
    x_q = rng.integers(-128, 128, (rows, n_in)).astype(np.int8)
    gw = dz.astype(np.float64).T @ (x_scale * (x_q.astype(np.float64) - x_zp))
    gb = dz.astype(np.float64).sum(0)
    w_step_inv = G(step_inv_for(rng, gw[:, sel.astype(np.int64)], lr))
    b_step_inv = G(step_inv_for(rng, gb[:, None], lr))
    res0 = rng.integers(-30000, 30001, n_out * n_sel).astype(np.int16)
    mom0 = rng.standard_normal(n_out * n_sel).astype(F)
    b0 = rng.integers(-1000, 1000, n_out).astype(np.int32)
    bres0 = np.zeros(n_out, np.int16)
    w_res, w_mom, bias, b_res = G(res0), G(mom0), G(b0), G(bres0)
    x_sel = G(np.ascontiguousarray(x_q[:, sel.astype(np.int64)]))
    selg = G(sel if n_sel else np.zeros(1, np.uint16))
    scratch = G(np.full(n_sel, np.nan, F))
    w = G(np.ascontiguousarray(w0[:, sel.astype(np.int64)]))  # the trained part: selected features only
    p = FcUpd(g=bp, layer=layer, x_scale=x_scale, x_zp=x_zp, n_sel=n_sel, sel=P(selg), w_step_inv=P(w_step_inv),
              b_step_inv=P(b_step_inv), b_limit=1001)
    sgd = Sgd(lr=lr, momentum=momentum)
    with Hook(lib) as h:
        lib.tinyc_fc_update(C.byref(p), C.byref(sgd), P(dz), P(x_sel), P(w), P(w_res), P(w_mom), P(bias),
                            P(b_res), None, P(scratch))
    G.check()
    flat = (np.arange(n_out)[:, None] * n_in + sel.astype(np.int64)[None, :]).ravel()
    gi, gg = h.grads(layer, 0)
    np.testing.assert_array_equal(gi, flat)
    assert_close(gg, gw.ravel()[flat])
    bi, bg = h.grads(layer, 1)
    np.testing.assert_array_equal(bi, np.arange(n_out))
    assert_close(bg, gb)
    want = w0.astype(np.int64).ravel()
    q, r, m = sgd_emulate(gg, w_step_inv[flat // n_in], w0.ravel()[flat], res0, mom0, lr, momentum, -127, 127)
    want[flat] = q
    np.testing.assert_array_equal(w.ravel(), want.reshape(n_out, n_in)[:, sel.astype(np.int64)].ravel())
    np.testing.assert_array_equal(w_res, r)
    np.testing.assert_array_equal(w_mom, m)
    q, r, _ = sgd_emulate(bg, b_step_inv, b0, bres0, None, lr, momentum, -1001, 1001)
    np.testing.assert_array_equal(bias, q)
    np.testing.assert_array_equal(b_res, r)


def test_update_without_bias_training_and_nothing_selected_is_a_no_op(lib):
    rng = np.random.default_rng(0)
    w0 = rng.integers(-127, 128, (4, 5)).astype(np.int8)
    G = Guards()
    w, dz, w_scale = G(w0), G(random_dz(rng, (2, 4))), G(np.ones(4, F))
    p = FcUpd(g=FcBwd(rows=2, in_depth=5, out_depth=4, w_scale=P(w_scale)), layer=1, x_scale=1.0, x_zp=0, n_sel=0)
    with Hook(lib) as h:
        lib.tinyc_fc_update(C.byref(p), C.byref(Sgd(lr=1.0)), P(dz), None, P(w), None, None, None, None, None, None)
    assert h.n == 0
    np.testing.assert_array_equal(w, w0)


# ---------------------------------------------------------------------------------------------
# pooling


def same_pad(n, k, s):
    out = -(-n // s)
    return out, max((out - 1) * s + k - n, 0) // 2


@pytest.mark.parametrize("filt,stride,padding", [((2, 2), (2, 2), "VALID"), ((3, 3), (2, 2), "SAME"),
                                                 ((3, 3), (1, 1), "SAME"), ((5, 3), (2, 3), "SAME"),
                                                 ((2, 4), (3, 1), "VALID"), ((4, 4), (4, 4), "SAME"),
                                                 ((7, 9), (1, 1), "VALID")])
def test_avgpool_backward(lib, filt, stride, padding):
    b, in_h, in_w, depth = 2, 7, 9, 3
    if padding == "SAME":
        (out_h, ph), (out_w, pw) = same_pad(in_h, filt[0], stride[0]), same_pad(in_w, filt[1], stride[1])
    else:
        out_h, out_w, ph, pw = (in_h - filt[0]) // stride[0] + 1, (in_w - filt[1]) // stride[1] + 1, 0, 0
    rng = np.random.default_rng(sum(filt) * 7 + sum(stride))
    G = Guards()
    dy = G(rng.standard_normal((b, out_h, out_w, depth)).astype(F))
    dx = G(np.full((b, in_h, in_w, depth), np.nan, F))
    p = PoolP(batches=b, in_h=in_h, in_w=in_w, depth=depth, out_h=out_h, out_w=out_w, filter_h=filt[0],
              filter_w=filt[1], stride_h=stride[0], stride_w=stride[1], pad_h=ph, pad_w=pw, act_min=-128,
              act_max=127)
    lib.tinyc_avgpool_backward_f32(C.byref(p), P(dy), P(dx))
    G.check()
    want = np.zeros(dx.shape)
    for oy in range(out_h):
        for ox in range(out_w):
            y0, x0 = oy * stride[0] - ph, ox * stride[1] - pw
            ys = slice(max(y0, 0), min(y0 + filt[0], in_h))
            xs = slice(max(x0, 0), min(x0 + filt[1], in_w))
            count = (ys.stop - ys.start) * (xs.stop - xs.start)
            want[:, ys, xs, :] += dy[:, oy:oy + 1, ox:ox + 1, :].astype(np.float64) / count
    assert_close(dx, want, 1e-6)


@pytest.mark.parametrize("reduce", [(0, 1, 1, 0), (0, 0, 1, 0), (0, 0, 0, 1), (1, 0, 0, 0), (1, 1, 1, 1),
                                    (0, 0, 0, 0)])
@pytest.mark.parametrize("in_place", [False, True])
def test_mean_backward(lib, reduce, in_place):
    shape = (2, 3, 4, 5)
    red = tuple(k for k in range(4) if reduce[k])
    kept = tuple(1 if reduce[k] else shape[k] for k in range(4))
    count = int(np.prod([shape[k] for k in red])) if red else 1
    rng = np.random.default_rng(sum(reduce))
    dy0 = rng.standard_normal(kept).astype(F)
    G = Guards()
    p = MeanP(in_shape=I4(*shape), reduce=(C.c_uint8 * 4)(*reduce))
    if in_place:
        buf = G(np.concatenate([dy0.ravel(), np.full(int(np.prod(shape)) - dy0.size, np.nan, F)]))
        lib.tinyc_mean_backward_f32(C.byref(p), P(buf), P(buf))
        dx = buf
    else:
        dy, dx = G(dy0), G(np.full(shape, np.nan, F))
        lib.tinyc_mean_backward_f32(C.byref(p), P(dy), P(dx))
    G.check()
    want = np.broadcast_to(dy0.astype(np.float64) / count, shape)
    assert_close(dx.reshape(shape), want, 1e-7)


# ---------------------------------------------------------------------------------------------
# element-wise


@pytest.mark.parametrize("perm", [(0, 1, 2, 3), (0, 2, 1, 3), (0, 3, 1, 2), (3, 2, 1, 0), (1, 0, 3, 2),
                                  (2, 0, 3, 1)])
def test_transpose(lib, perm):
    shape = (2, 3, 4, 5)
    rng = np.random.default_rng(0)
    G = Guards()
    x = G(rng.standard_normal(shape).astype(F))
    out = G(np.full(np.prod(shape), np.nan, F))
    p = TransposeP(in_shape=I4(*shape), perm=I4(*perm))
    lib.tinyc_transpose_f32(C.byref(p), P(x), P(out))
    want = np.transpose(x, perm)
    np.testing.assert_array_equal(out.reshape(want.shape), want)
    # the backward runs the inverse permutation: back to x
    back = G(np.full(np.prod(shape), np.nan, F))
    inv = tuple(int(i) for i in np.argsort(perm))
    q = TransposeP(in_shape=I4(*want.shape), perm=I4(*inv))
    lib.tinyc_transpose_f32(C.byref(q), P(out), P(back))
    G.check()
    np.testing.assert_array_equal(back.reshape(shape), x)


@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("before,after", [((0, 1, 2, 0), (0, 2, 0, 1)), ((0, 0, 0, 0), (0, 0, 0, 0)),
                                          ((1, 0, 1, 3), (2, 1, 0, 0))])
def test_pad_backward(lib, before, after, in_place):
    in_shape = (2, 3, 4, 2)
    out_shape = tuple(i + b + a for i, b, a in zip(in_shape, before, after))
    rng = np.random.default_rng(1)
    dy0 = rng.standard_normal(out_shape).astype(F)
    G = Guards()
    p = PadP(in_shape=I4(*in_shape), out_shape=I4(*out_shape), pad_before=I4(*before))
    want = dy0[tuple(slice(b, b + i) for b, i in zip(before, in_shape))]
    if in_place:
        buf = G(dy0.ravel())
        lib.tinyc_pad_backward_f32(C.byref(p), P(buf), P(buf))
        got = buf[:want.size]
    else:
        dy, got = G(dy0), G(np.full(want.size, np.nan, F))
        lib.tinyc_pad_backward_f32(C.byref(p), P(dy), P(got))
    G.check()
    np.testing.assert_array_equal(got.reshape(in_shape), want)


BCAST = [  # out, in (the gradient's), other
    ((1, 5, 6, 4), (1, 5, 6, 4), (1, 1, 1, 4)),
    ((1, 5, 6, 4), (1, 1, 1, 4), (1, 5, 6, 4)),
    ((2, 3, 4, 5), (2, 1, 4, 1), (1, 3, 1, 5)),
    ((2, 3, 4, 5), (1, 3, 1, 5), (2, 1, 4, 1)),
    ((2, 3, 4, 5), (1, 1, 1, 1), (2, 3, 4, 5)),
    ((1, 1, 1, 7), (1, 1, 1, 7), (1, 1, 1, 1)),
    ((3, 1, 4, 2), (3, 1, 1, 2), (1, 1, 4, 1)),
]


@pytest.mark.parametrize("op", ["ADD", "MUL"])
@pytest.mark.parametrize("in_place", [False, True])
@pytest.mark.parametrize("shapes", BCAST, ids=str)
def test_broadcast_backward(lib, shapes, op, in_place):
    out_s, in_s, other_s = shapes
    rng = np.random.default_rng(len(str(shapes)))
    dy0 = rng.standard_normal(out_s).astype(F)
    other = rng.integers(-128, 128, other_s).astype(np.int8)
    other_scale, other_zp = F(0.037), -11
    factor = 1.0 if op == "ADD" else np.broadcast_to(other_scale * (other.astype(np.float64) - other_zp), out_s)
    axes = tuple(k for k in range(4) if in_s[k] == 1 and out_s[k] != 1)
    want = (dy0.astype(np.float64) * factor).sum(axis=axes, keepdims=True).reshape(in_s)
    G = Guards()
    p = BcastP(out_shape=I4(*out_s), in_shape=I4(*in_s), other_shape=I4(*other_s), other_scale=other_scale,
               other_zp=other_zp)
    if in_place:
        dy = dx = G(dy0.ravel())
    else:
        dy, dx = G(dy0), G(np.full(int(np.prod(in_s)), np.nan, F))
    if op == "ADD":
        lib.tinyc_add_backward_f32(C.byref(p), P(dy), P(dx))
    else:
        lib.tinyc_mul_backward_f32(C.byref(p), P(dy), P(G(other)), P(dx))
    G.check()
    assert_close(dx.ravel()[:want.size].reshape(in_s), want)


@pytest.mark.parametrize("n", [1, 8, 13, 29])
def test_masks_bit_order_and_apply(lib, n):
    rng = np.random.default_rng(n)
    y = rng.integers(-128, 128, n).astype(np.int8)
    y[: min(n, 4)] = [-128, 127, -100, 6][: min(n, 4)]
    lo, hi = -128, 6  # e.g. RELU6 with zero point -128 and 6 as the int8 bound
    G = Guards()
    yg = G(y)
    mask = G(np.full((n + 7) // 8, 0xFF, np.uint8))
    p = MaskP(n=n, lo=lo, hi=hi)
    lib.tinyc_act_mask_s8(C.byref(p), P(yg), P(mask))
    bits = (y.astype(int) > lo) & (y.astype(int) < hi)
    np.testing.assert_array_equal(mask, np.packbits(bits, bitorder="little"))
    dy0 = rng.standard_normal(n).astype(F)
    dy, dz = G(dy0), G(np.full(n, np.nan, F))
    lib.tinyc_apply_mask_f32(C.byref(p), P(dy), P(mask), P(dz))
    np.testing.assert_array_equal(dz, np.where(bits, dy0, F(0)))
    lib.tinyc_apply_mask_f32(C.byref(p), P(dy), P(mask), P(dy))  # in place
    G.check()
    np.testing.assert_array_equal(dy, np.where(bits, dy0, F(0)))


def test_grad_add_and_gather(lib):
    rng = np.random.default_rng(3)
    G = Guards()
    a0, b0 = (rng.standard_normal(37).astype(F) for _ in range(2))
    a, b, out = G(a0), G(b0), G(np.full(37, np.nan, F))
    p = SizeP(n=37)
    lib.tinyc_grad_add_f32(C.byref(p), P(a), P(b), P(out))
    np.testing.assert_array_equal(out, a0 + b0)
    lib.tinyc_grad_add_f32(C.byref(p), P(a), P(b), P(b))
    np.testing.assert_array_equal(b, a0 + b0)
    x0 = rng.integers(-128, 128, (12, 7)).astype(np.int8)
    for sel in ([0, 3, 6], [0, 1, 2, 3, 4, 5, 6], [5], [1, 2, 6]):
        sel_a = G(np.array(sel, np.uint16))
        p = GatherP(pixels=12, c=7, n_sel=len(sel), sel=P(sel_a))
        x, out = G(x0), G(np.zeros((12, len(sel)), np.int8))
        lib.tinyc_gather_channels_s8(C.byref(p), P(x), P(out))
        np.testing.assert_array_equal(out, x0[:, sel])
        lib.tinyc_gather_channels_s8(C.byref(p), P(x), P(x))  # in place
        np.testing.assert_array_equal(x.ravel()[:12 * len(sel)], x0[:, sel].ravel())
    G.check()


@pytest.mark.parametrize("scale,zp", [(0.0625, 0), (0.0437, -7)])
def test_hard_swish_backward(lib, scale, zp):
    x = np.arange(-128, 128).astype(np.int8)
    rng = np.random.default_rng(4)
    dy0 = rng.standard_normal(256).astype(F)
    xr = (F(scale) * (x.astype(F) - F(zp))).astype(np.float64)  # the kernel's float32 real value
    d = np.where(xr < -3, 0.0, np.where(xr > 3, 1.0, (2 * xr + 3) / 6))
    G = Guards()
    dy, dx, xg = G(dy0), G(np.full(256, np.nan, F)), G(x)
    p = ActP(n=256, scale=scale, zp=zp)
    lib.tinyc_hard_swish_backward_f32(C.byref(p), P(dy), P(xg), P(dx))
    G.check()
    assert_close(dx, dy0 * d, 1e-6)
    assert (dx[xr < -3] == 0).all() and (dx[xr > 3] == dy0[xr > 3]).all()


def test_logistic_backward(lib):
    y = np.arange(-128, 128).astype(np.int8)
    rng = np.random.default_rng(5)
    dy0 = rng.standard_normal(256).astype(F)
    yr = (y.astype(np.float64) + 128) / 256
    G = Guards()
    dy, yg = G(dy0), G(y)
    p = ActP(n=256, scale=1 / 256, zp=-128)
    lib.tinyc_logistic_backward_f32(C.byref(p), P(dy), P(yg), P(dy))  # in place
    G.check()
    assert_close(dy, dy0 * yr * (1 - yr), 1e-6)


# ---------------------------------------------------------------------------------------------
# softmax cross-entropy, exp, log


def call_ce(lib, logits, label, scale, zp, beta):
    n = len(logits)
    G = Guards()
    lg, lab = G(np.asarray(logits, np.int8)), G(np.array([label], np.int32))
    d, loss, pred = G(np.full(n, np.nan, F)), G(np.full(1, np.nan, F)), G(np.full(1, -5, np.int32))
    p = CeP(classes=n, scale=scale, zp=zp, beta=beta)
    lib.tinyc_softmax_ce_s8(C.byref(p), P(lg), P(lab), P(d), P(loss), P(pred))
    G.check()
    return d, float(loss[0]), int(pred[0])


def ref_ce(logits, label, scale, zp, beta):
    z = beta * np.float64(F(scale)) * (np.asarray(logits, np.float64) - zp)
    z -= z.max()
    lse = np.log1p(np.delete(np.exp(z), np.argmax(z)).sum())  # log(sum exp z), accurate near 0
    p = np.exp(z - lse)
    d = p.copy()
    d[label] = -np.delete(p, label).sum()  # p - 1 without float64's own cancellation
    return beta * d, lse - z[label]


@pytest.mark.parametrize("classes,scale,zp,beta", [(10, 0.1, 3, 1.0), (2, 0.05, -128, 1.0), (37, 0.2, 0, 0.5),
                                                   (5, 0.5, 10, 1.0), (12, 0.02, -20, 2.0)])
def test_softmax_ce(lib, classes, scale, zp, beta):
    rng = np.random.default_rng(classes)
    for trial in range(20):
        logits = rng.integers(-128, 128, classes).astype(np.int8)
        label = int(rng.integers(0, classes))
        if trial == 1:  # confident and right: tiny gradients, still accurate
            logits[:] = -128
            logits[label] = 127
        if trial == 2:  # confident and wrong
            logits[:] = -128
            logits[(label + 1) % classes] = 127
        d, loss, pred = call_ce(lib, logits, label, scale, zp, beta)
        want_d, want_loss = ref_ce(logits, label, scale, zp, beta)
        assert pred == int(np.argmax(logits))
        # element by element: float32 underflows probabilities below ~1e-38 (atol)
        np.testing.assert_allclose(d, want_d, rtol=2e-6, atol=1e-37)
        assert abs(loss - want_loss) <= 2e-6 * abs(want_loss) + 1e-30, (loss, want_loss)


def test_softmax_ce_ties_and_labels_out_of_range(lib):
    logits = np.array([3, 9, -4, 9, 0], np.int8)
    for label in (-1, 5, 1000, -2147483648):
        d, loss, pred = call_ce(lib, logits, label, 0.1, 0, 1.0)
        assert pred == 1 and loss == 0.0
        np.testing.assert_array_equal(d, np.zeros(5, F))
    d, loss, pred = call_ce(lib, logits, 3, 0.1, 0, 1.0)
    assert pred == 1
    want_d, want_loss = ref_ce(logits, 3, 0.1, 0, 1.0)
    assert_close(d, want_d, 2e-6)
    assert abs(loss - want_loss) <= 2e-6 * want_loss


def vec(lib, name, x):
    x = np.ascontiguousarray(x, F)
    y = np.full(x.shape, np.nan, F)
    getattr(lib, name)(P(x), P(y), x.size)
    return y


def test_expf_accuracy(lib):
    rng = np.random.default_rng(6)
    x = np.concatenate([np.linspace(-87.3, 88.72, 200001, dtype=F), rng.uniform(-87.3, 88.72, 50000).astype(F),
                        rng.uniform(-1, 1, 20000).astype(F), np.float32([0, 1e-10, -1e-10, 0.3466, -0.3466,
                                                                         0.6931472, 1, -1, 88.7228, -87.33])])
    y = vec(lib, "test_expf_n", x)
    want = np.exp(x.astype(np.float64))
    rel = np.abs(y - want) / want
    assert rel.max() < 4e-7, (rel.max(), x[np.argmax(rel)])
    assert vec(lib, "test_expf_n", np.float32([0]))[0] == 1.0
    # subnormal results: within one subnormal step
    xs = np.linspace(-103.9, -87.4, 20001, dtype=F)
    ys = vec(lib, "test_expf_n", xs)
    assert np.abs(ys - np.exp(xs.astype(np.float64))).max() <= 2.0 ** -149
    # saturation and specials
    big = vec(lib, "test_expf_n", np.float32([88.73, 89, 100, 1e30, np.inf]))
    assert np.isfinite(big).all() and (big >= F(3.39e38)).all()
    np.testing.assert_array_equal(vec(lib, "test_expf_n", np.float32([-104, -200, -1e30, -np.inf])), 0)
    assert np.isnan(vec(lib, "test_expf_n", np.float32([np.nan]))[0])


def test_logf_accuracy(lib):
    rng = np.random.default_rng(7)
    x = np.concatenate([(10.0 ** rng.uniform(-37.9, 38.5, 100000)).astype(F), np.linspace(0.5, 2, 100001, dtype=F),
                        np.float32([np.finfo(F).max, np.finfo(F).tiny, 2, 0.5, np.e, 1 + 2 ** -23, 1 - 2 ** -24]),
                        (np.arange(1, 20001) * F(2.0 ** -149) * 37).astype(F)])  # subnormals
    x = x[x != 1]
    y = vec(lib, "test_logf_n", x)
    want = np.log(x.astype(np.float64))
    rel = np.abs(y - want) / np.abs(want)
    assert rel.max() < 4e-7, (rel.max(), x[np.argmax(rel)])
    assert vec(lib, "test_logf_n", np.float32([1]))[0] == 0.0
    neg = vec(lib, "test_logf_n", np.float32([0, -0.0, -1, -np.inf]))
    assert np.isfinite(neg).all() and (neg <= -1e29).all()
    assert vec(lib, "test_logf_n", np.float32([np.inf]))[0] == np.inf
    assert np.isnan(vec(lib, "test_logf_n", np.float32([np.nan]))[0])


# ---------------------------------------------------------------------------------------------
# train_update.h


def test_round_f32_ties_and_saturation(lib):
    cases = {0.5: 1, -0.5: -1, 1.5: 2, 2.5: 3, -2.5: -3, 0.49999997: 0, -0.49999997: 0, 1.4999999: 1,
             4194304.5: 4194305, -4194304.5: -4194305, 8388609.0: 8388609, 1e10: 2 ** 30, -1e10: -(2 ** 30),
             2.0 ** 30: 2 ** 30, -(2.0 ** 30): -(2 ** 30), 1073741760.0: 1073741760, 0.0: 0, -0.0: 0,
             float("inf"): 2 ** 30, float("-inf"): -(2 ** 30), float("nan"): 0}
    for x, want in cases.items():
        assert lib.test_round_f32(x) == want, x
    xs = np.random.default_rng(8).uniform(-1000, 1000, 2000).astype(F)
    np.testing.assert_array_equal([lib.test_round_f32(float(v)) for v in xs], round_away(xs))


def sgd_call(lib, lr, momentum, g, step_inv, q, res, mom=None, q_min=-127, q_max=127):
    r = np.array([res], np.int16)
    m = None if mom is None else np.array([mom], F)
    sgd = Sgd(lr=lr, momentum=momentum)
    out = lib.test_sgd_step(C.byref(sgd), g, step_inv, q, P(r), P(m), q_min, q_max)
    return out, int(r[0]), (None if m is None else float(m[0]))


def test_sgd_step_rounding_saturation_and_residual(lib):
    # acc = 0.6 -> +1 step, residual -0.4 step
    assert sgd_call(lib, 1.0, 0.0, -0.6, 1.0, 0, 0) == (1, round(-0.4 * 65536), None)
    # ties away from zero: acc = +-0.5 exactly
    assert sgd_call(lib, 1.0, 0.0, -0.5, 1.0, 3, 0)[:2] == (4, -32767)  # residual -0.5 step, saturated
    assert sgd_call(lib, 1.0, 0.0, 0.5, 1.0, 3, 0)[:2] == (2, 32767)
    # the residual counts: 0.25 + 0.3 = 0.55 -> +1 step
    assert sgd_call(lib, 1.0, 0.0, -0.3, 1.0, 0, 16384)[0] == 1
    # saturation at +-127 resets the residual
    assert sgd_call(lib, 1.0, 0.0, -3.2, 1.0, 126, 1000)[:2] == (127, 0)
    assert sgd_call(lib, 1.0, 0.0, 1.0, 1.0, -127, -1000)[:2] == (-127, 0)
    assert sgd_call(lib, 1.0, 0.0, 1e30, 1.0, 5, 7)[:2] == (-127, 0)
    # bias range
    assert sgd_call(lib, 1.0, 0.0, -100.0, 1.0, 2147483600, 0, q_min=-2147483647, q_max=2147483647)[:2] == \
        (2147483647, 0)
    assert sgd_call(lib, 1.0, 0.0, 100.0, 1.0, -2147483600, 0, q_min=-2147483647, q_max=2147483647)[:2] == \
        (-2147483647, 0)
    # step_inv scales the gradient: 0.01 real * 100 = 1 step
    assert sgd_call(lib, 1.0, 0.0, 0.01, 100.0, 0, 0)[0] == -1
    # momentum: v = 0.9 * 2 + 1 = 2.8 -> lr 0.5 -> -1.4 -> -1, residual -0.4
    q, r, m = sgd_call(lib, 0.5, 0.9, 1.0, 1.0, 0, 0, mom=2.0)
    assert (q, m) == (-1, float(F(F(0.9) * F(2.0)) + F(1.0)))
    assert r == round_away((F(-0.5) * F(m) + F(1)) * F(65536))[0]
    # momentum 0: the buffer is neither read nor written
    assert sgd_call(lib, 1.0, 0.0, -1.0, 1.0, 0, 0, mom=123.0) == (1, 0, 123.0)
    # NaN gradient: no change, residual cleared
    assert sgd_call(lib, 1.0, 0.0, float("nan"), 1.0, 9, 100)[:2] == (9, 0)


@pytest.mark.parametrize("direction", [1, -1])
def test_sgd_sub_step_updates_accumulate(lib, direction):
    """1000 steps of 0.01 of a quantization step move the weight by 10 steps."""
    sgd = Sgd(lr=1.0, momentum=0.0)
    res = np.zeros(1, np.int16)
    q = 0
    for _ in range(1000):
        q = lib.test_sgd_step(C.byref(sgd), direction * 0.01, 1.0, q, P(res), None, -127, 127)
    assert abs(q - (-10 * direction)) <= 1
    # and a bias-range parameter does the same with a 1e-3 step
    res[0], q = 0, 1000
    for _ in range(1000):
        q = lib.test_sgd_step(C.byref(sgd), direction * 1e-3, 1.0, q, P(res), None, -2147483647, 2147483647)
    assert abs(q - (1000 - direction)) <= 1


def test_struct_layouts_match_ctypes(lib):
    out = np.zeros(len(LAYOUT), np.int64)
    lib.test_layout(P(out))
    want = []
    for cls, field in zip(LAYOUT[::2], LAYOUT[1::2]):
        want += [C.sizeof(cls), getattr(cls, field).offset]
    np.testing.assert_array_equal(out, want)


# ---------------------------------------------------------------------------------------------
# build hygiene


def test_sources_exist():
    names = {p.name for p in SOURCES}
    assert names == {"train_conv.c", "train_fully_connected.c", "train_elementwise.c", "train_pooling.c",
                     "train_loss.c"}


@pytest.mark.parametrize("hook", [False, True])
def test_compiles_warning_free_on_host(tmp_path, hook):
    extra = ["-Wdouble-promotion", "-Wvla", "-Wmissing-prototypes", "-Wconversion", "-Wshadow"]
    for src in SOURCES:
        cmd = ["gcc", *STRICT, *extra, *(["-DTINYC_TRAIN_GRAD_HOOK"] if hook else []), f"-I{INCLUDE}", "-c",
               str(src), "-o", str(tmp_path / (src.stem + ".o"))]
        r = subprocess.run(cmd, capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, r.stderr


def test_compiles_for_cortex_m7_without_double_or_libm(tmp_path):
    gcc = shutil.which("arm-none-eabi-gcc")
    if gcc is None:
        pytest.skip("arm-none-eabi-gcc not installed (`make setup` installs gcc-arm-none-eabi)")
    nm = shutil.which("arm-none-eabi-nm")
    for src in SOURCES:
        obj = tmp_path / (src.stem + ".o")
        r = subprocess.run([gcc, *ARM, *STRICT, "-Wdouble-promotion", f"-I{INCLUDE}", "-c", str(src), "-o",
                            str(obj)], capture_output=True, text=True)
        assert r.returncode == 0 and not r.stderr, r.stderr
        if nm is not None:  # single-precision FPU: any double arithmetic would call __aeabi_d* helpers
            undefined = set(subprocess.run([nm, "-u", str(obj)], capture_output=True, text=True,
                                           check=True).stdout.split()) - {"U"}
            assert undefined <= {"memset", "memcpy", "memmove"}, (src.name, undefined)


def test_stochastic_rounding_is_unbiased_and_deterministic(lib) -> None:
    """Without a residual buffer the update rounds stochastically: 1,000 updates of +0.3 step move
    the integer by 300 within a few standard deviations, and the same seed gives the same walk."""
    def walk(seed: int) -> list[int]:
        state = C.c_uint32(seed)
        sgd = Sgd(lr=1.0, momentum=0.0, rng=C.pointer(state))
        q, out = 0, []
        for _ in range(1000):
            q = lib.test_sgd_step(C.byref(sgd), C.c_float(-0.3), C.c_float(1.0), q, None, None, -10**6, 10**6)
            out.append(q)
        return out
    a, b = walk(0x9E3779B9), walk(0x9E3779B9)
    assert a == b
    assert abs(a[-1] - 300) <= 3 * (1000 * 0.21) ** 0.5
    assert all(0 <= y - x <= 1 for x, y in zip([0] + a, a))  # each step moves by floor or ceil of 0.3
