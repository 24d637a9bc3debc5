"""Maps TFLite builtin names to the op family module that implements them."""

from __future__ import annotations

import importlib
from typing import Callable, TypeVar

from tinyc.ops.base import OpSupport

_REGISTRY: dict[str, OpSupport] = {}
_loaded = False

#: every op family module; importing one registers its ops
FAMILIES = (
    "conv", "depthwise_conv", "fully_connected", "elementwise", "activations", "quantize",
    "pooling", "reduce", "softmax", "layout", "resize", "copy_box", "kernel",
)

#: kinds tinyc adds itself (never in a model, never listed as supported)
INTERNAL_PREFIX = "TINYC_"

T = TypeVar("T", bound=type)


def register(*kinds: str) -> Callable[[T], T]:
    def deco(cls: T) -> T:
        inst = cls()
        inst.kinds = tuple(kinds)
        for k in kinds:
            if k in _REGISTRY:
                raise RuntimeError(f"op {k} registered twice")
            _REGISTRY[k] = inst
        return cls

    return deco


def _load() -> None:
    global _loaded
    if _loaded:
        return
    _loaded = True
    for fam in FAMILIES:
        try:
            importlib.import_module(f"tinyc.ops.{fam}")
        except ModuleNotFoundError as e:
            if e.name != f"tinyc.ops.{fam}":
                raise


def lookup(kind: str) -> OpSupport | None:
    _load()
    return _REGISTRY.get(kind)


def supported() -> list[str]:
    """The TFLite builtins tinyc compiles (its internal ops left out)."""
    _load()
    return sorted(k for k in _REGISTRY if not k.startswith(INTERNAL_PREFIX))
