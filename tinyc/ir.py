"""The intermediate representation: the single source of truth every stage reads.

Stages never mutate a Graph: they build a new one with `dataclasses.replace` (see passes/).
Tensors are referred to by name everywhere so that a rewrite can swap a tensor without
chasing object identity.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np

from tinyc.errors import InternalError

DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "int32": 4, "int64": 8, "float32": 4, "bool": 1}
C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "int32": "int32_t",
           "int64": "int64_t", "float32": "float", "bool": "uint8_t"}


@dataclass(frozen=True)
class QuantParams:
    """Affine quantization: real = scale * (q - zero_point); per channel along `axis` when len > 1."""

    scale: tuple[float, ...]
    zero_point: tuple[int, ...]
    axis: int = 0

    @property
    def per_channel(self) -> bool:
        return len(self.scale) > 1

    @property
    def s(self) -> float:
        """The per-tensor scale (the first one): activations are always per-tensor."""
        return self.scale[0]

    @property
    def zp(self) -> int:
        return self.zero_point[0]


@dataclass(frozen=True, eq=False)
class Tensor:
    """A tensor: an activation (data is None) or a constant held in flash (data set)."""

    name: str
    shape: tuple[int, ...]
    dtype: str
    quant: QuantParams | None = None
    data: np.ndarray | None = None
    index: int = -1  # index in the source model, for error messages
    label: str = ""  # the name the source model gave it

    @property
    def is_const(self) -> bool:
        return self.data is not None

    @property
    def size(self) -> int:
        return int(np.prod(self.shape, dtype=np.int64)) if self.shape else 1

    @property
    def nbytes(self) -> int:
        return self.size * DTYPE_BYTES[self.dtype]

    @property
    def ctype(self) -> str:
        return C_TYPES[self.dtype]


@dataclass(frozen=True, eq=False)
class Op:
    """One operator. `kind` is the TFLite builtin name; `index` its position in the source model."""

    kind: str
    inputs: tuple[str | None, ...]
    outputs: tuple[str, ...]
    attrs: Mapping[str, Any] = field(default_factory=dict)
    index: int = -1

    @property
    def label(self) -> str:
        return f"{self.kind} (op #{self.index})"


@dataclass(frozen=True, eq=False)
class Graph:
    """A whole model. `aliases` maps a tensor to the tensor whose bytes it shares (zero-copy views)."""

    name: str
    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: model inputs read patch by patch through the application's read_input hook, never held in the arena
    streamed: frozenset[str] = frozenset()

    def t(self, name: str) -> Tensor:
        return self.tensors[name]

    def storage(self, name: str) -> str:
        """The tensor that owns the bytes of `name` (itself unless it is an alias)."""
        seen = 0
        while name in self.aliases:
            name = self.aliases[name]
            seen += 1
            if seen > len(self.aliases):
                raise InternalError(f"alias cycle through tensor {name!r}")
        return name

    def producers(self) -> dict[str, Op]:
        return {o: op for op in self.ops for o in op.outputs}

    def consumers(self) -> dict[str, list[Op]]:
        out: dict[str, list[Op]] = {}
        for op in self.ops:
            for i in op.inputs:
                if i is not None:
                    out.setdefault(i, []).append(op)
        return out

    def activations(self) -> list[Tensor]:
        """Tensors that live in the arena: not constants, not aliases."""
        used: set[str] = set(self.inputs) | set(self.outputs)
        for op in self.ops:
            used.update(i for i in op.inputs if i is not None)
            used.update(op.outputs)
        return [self.tensors[n] for n in sorted(used, key=self._order_key)
                if not self.tensors[n].is_const and n not in self.aliases]

    def _order_key(self, name: str) -> tuple[int, str]:
        return (self.tensors[name].index, name)

    def replace(self, **changes: Any) -> "Graph":
        return dataclasses.replace(self, **changes)

    def with_tensors(self, updates: Mapping[str, Tensor], drop: Iterable[str] = ()) -> "Graph":
        tensors = dict(self.tensors)
        for n in drop:
            tensors.pop(n, None)
        tensors.update(updates)
        return self.replace(tensors=tensors)

    def lint(self) -> None:
        """Check the invariants every pass must keep; a failure is a tinyc bug, never the user's."""
        produced: set[str] = set(self.inputs)
        for n in self.inputs + self.outputs:
            if n not in self.tensors:
                raise InternalError(f"graph I/O tensor {n!r} does not exist")
        for op in self.ops:
            for i in op.inputs:
                if i is None:
                    continue
                if i not in self.tensors:
                    raise InternalError(f"{op.label}: input tensor {i!r} does not exist")
                if not self.tensors[i].is_const and self.storage(i) not in produced and i not in produced:
                    raise InternalError(f"{op.label}: input {i!r} is used before it is produced")
            for o in op.outputs:
                if o not in self.tensors:
                    raise InternalError(f"{op.label}: output tensor {o!r} does not exist")
                if o in produced:
                    raise InternalError(f"{op.label}: tensor {o!r} is produced twice")
                produced.add(o)
        for n in self.outputs:
            if n not in produced and self.storage(n) not in produced and not self.tensors[n].is_const:
                raise InternalError(f"graph output {n!r} is never produced")
        for a, b in self.aliases.items():
            if self.tensors[a].nbytes != self.tensors[self.storage(b)].nbytes:
                raise InternalError(f"alias {a!r} -> {b!r} changes the byte size")
