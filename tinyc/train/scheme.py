"""Update schemes: which parameters a training step changes (Tiny Training Engine's sparse update).

A scheme names, in TTE's terms, the biases of the last `n_bias_update` convolutions, the weights of
the convolutions at `manual_weight_idx` (positions among the model's convolution layers counted
from the input, 0-based; the classifier is not one of them) on a fraction `weight_update_ratio` of
their input channels, and always the classifier (weights and bias). Which input channels a
fraction picks is `tinyc.ops._train_math.select_channels`: the ones with the largest L1 weight
norm, the same rule in the C step, the float reference and the report.

`--update` forms: classifier | bias | last:K | full | sparse:FILE (TOML or JSON with TTE's keys)
| auto (the default, `derive_auto` documents its rule). `Scheme.to_json()` is the form
`sparse:FILE` reads, so a run can be repeated exactly elsewhere.
"""

from __future__ import annotations

import json
import math
import tomllib
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from tinyc.errors import BadInput
from tinyc.ir import Graph, Op
from tinyc.ops._train_math import select_channels
from tinyc.ops.base import ParamUpdate
from tinyc.ops.registry import lookup

RATIOS = (0.0, 1 / 8, 1 / 4, 1 / 2, 1.0)  # TTE's choices; any fraction in (0, 1] is accepted


@dataclass(frozen=True)
class Scheme:
    """One update scheme. weight_ratio[i] belongs to weight_idx[i]."""

    name: str
    n_bias_update: int = 0
    weight_idx: tuple[int, ...] = ()
    weight_ratio: tuple[float, ...] = ()

    def to_json(self) -> dict[str, Any]:
        return {"scheme": self.name, "n_bias_update": self.n_bias_update, "manual_weight_idx": list(self.weight_idx),
                "weight_update_ratio": list(self.weight_ratio), "classifier": True}

    def describe(self) -> str:
        w = ", ".join(f"#{i}@{_ratio_text(r)}" for i, r in zip(self.weight_idx, self.weight_ratio)) or "none"
        return f"{self.name}: classifier + biases of the last {self.n_bias_update} conv layers + weights of conv {w}"


def _ratio_text(r: float) -> str:
    for d in (1, 2, 4, 8, 16):
        if abs(r * d - round(r * d)) < 1e-9:
            return f"{round(r * d)}/{d}" if d > 1 else "1"
    return f"{r:g}"


def weighted_ops(g: Graph, ops: tuple[Op, ...] | None = None) -> list[Op]:
    """Ops with trainable parameters (the op modules' `weights` facet), in forward order."""
    out = []
    for op in (ops if ops is not None else g.ops):
        mod = lookup(op.kind)
        if mod is not None and mod.weights(op, g) is not None:
            out.append(op)
    return out


def parse(spec: str | None, conv_count: int, g: Graph | None = None, convs: list[Op] | None = None) -> Scheme:
    """`--update` text -> Scheme for a model with `conv_count` convolution layers (classifier excluded)."""
    spec = (spec or "auto").strip()
    L = conv_count
    if spec == "classifier":
        return Scheme("classifier")
    if spec == "bias":
        return Scheme("bias", n_bias_update=L)
    if spec == "full":
        return Scheme("full", n_bias_update=L, weight_idx=tuple(range(L)), weight_ratio=(1.0,) * L)
    if spec.startswith("last:"):
        try:
            k = int(spec[5:])
        except ValueError:
            raise BadInput(f"--update {spec}: K must be an integer (last:K trains the last K conv layers)") from None
        if not 1 <= k <= L:
            raise BadInput(f"--update {spec}: the model has {L} conv layers before its classifier; K must be 1..{L}")
        return Scheme(spec, n_bias_update=k, weight_idx=tuple(range(L - k, L)), weight_ratio=(1.0,) * k)
    if spec.startswith("sparse:"):
        return load_file(Path(spec[7:]), L)
    if spec == "auto":
        if g is None or convs is None:
            raise BadInput("--update auto needs the model")
        return derive_auto(g, convs)
    raise BadInput(f"--update {spec!r}: expected classifier, bias, last:K, full, sparse:FILE or auto")


def load_file(path: Path, conv_count: int) -> Scheme:
    """A TTE-style scheme from TOML or JSON: n_bias_update, manual_weight_idx, weight_update_ratio
    (a list as long as manual_weight_idx, or one number for all)."""
    if not path.is_file():
        raise BadInput(f"--update sparse:{path}: no such file")
    text = path.read_text()
    try:
        data = json.loads(text) if path.suffix.lower() == ".json" or text.lstrip().startswith("{") \
            else tomllib.loads(text)
    except (json.JSONDecodeError, tomllib.TOMLDecodeError) as e:
        raise BadInput(f"{path}: not valid JSON or TOML ({e})") from None
    if not isinstance(data, dict):
        raise BadInput(f"{path}: expected a table with n_bias_update, manual_weight_idx, weight_update_ratio")
    known = {"n_bias_update", "manual_weight_idx", "weight_update_ratio", "scheme", "classifier"}
    unknown = sorted(set(data) - known)
    if unknown:
        raise BadInput(f"{path}: unknown key(s) {', '.join(unknown)} (expected {', '.join(sorted(known))})")
    try:
        n_bias = int(data.get("n_bias_update", 0))
        idx = [int(i) for i in data.get("manual_weight_idx", [])]
        ratio = data.get("weight_update_ratio", [1.0] * len(idx))
        ratios = [float(ratio)] * len(idx) if isinstance(ratio, (int, float)) else [float(r) for r in ratio]
    except (TypeError, ValueError) as e:
        raise BadInput(f"{path}: {e}") from None
    L = conv_count
    if not 0 <= n_bias <= L:
        raise BadInput(f"{path}: n_bias_update {n_bias} is outside 0..{L} (the model has {L} conv layers "
                       "before its classifier)")
    if len(ratios) != len(idx):
        raise BadInput(f"{path}: {len(idx)} manual_weight_idx but {len(ratios)} weight_update_ratio values")
    for i, r in zip(idx, ratios):
        if not 0 <= i < L:
            raise BadInput(f"{path}: manual_weight_idx {i} is outside 0..{L - 1} (conv layers counted from the "
                           "input, classifier excluded)")
        if not 0 < r <= 1:
            raise BadInput(f"{path}: weight_update_ratio {r} for conv {i} must be in (0, 1]")
    if len(set(idx)) != len(idx):
        raise BadInput(f"{path}: manual_weight_idx lists a layer twice")
    order = sorted(range(len(idx)), key=lambda k: idx[k])
    return Scheme(f"sparse:{path.name}", n_bias_update=n_bias, weight_idx=tuple(idx[k] for k in order),
                  weight_ratio=tuple(ratios[k] for k in order))


def derive_auto(g: Graph, convs: list[Op]) -> Scheme:
    """The default when no --update is given: biases of the last third of the conv layers, and the
    weights of the 4 conv layers among them with the fewest weights (the cheapest to keep in SRAM),
    at ratio 1 up to 4,096 weights, 1/2 up to 16,384, 1/4 up to 65,536, 1/8 above. The next
    issue replaces this rule by a search under a memory budget."""
    L = len(convs)
    n_bias = max(1, math.ceil(L / 3)) if L else 0
    tail = list(range(L - n_bias, L))
    sizes = {i: g.t(convs[i].inputs[1]).size for i in tail}
    chosen = sorted(sorted(tail, key=lambda i: (sizes[i], -i))[:4])

    def ratio(n: int) -> float:
        return 1.0 if n <= 4096 else 0.5 if n <= 16384 else 0.25 if n <= 65536 else 0.125

    return Scheme("auto", n_bias_update=n_bias, weight_idx=tuple(chosen),
                  weight_ratio=tuple(ratio(sizes[i]) for i in chosen))


def resolve(scheme: Scheme, g: Graph, convs: list[Op], classifier: Op) -> dict[int, ParamUpdate]:
    """Per op position in g.ops (by identity of the op index): what to train."""
    out: dict[int, ParamUpdate] = {}
    L = len(convs)
    ratio_of = dict(zip(scheme.weight_idx, scheme.weight_ratio))
    for i, op in enumerate(convs):
        w = lookup(op.kind).weights(op, g)
        bias = i >= L - scheme.n_bias_update
        chans: tuple[int, ...] = ()
        if i in ratio_of:
            k = max(1, int(round(ratio_of[i] * w.in_channels)))
            chans = select_channels(w, k)
        if bias or chans:
            out[op.index] = ParamUpdate(bias=bias, channels=chans)
    w = lookup(classifier.kind).weights(classifier, g)
    out[classifier.index] = ParamUpdate(bias=True, channels=tuple(range(w.in_channels)))
    return out
