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

DTYPE_BYTES = {"int8": 1, "uint8": 1, "int16": 2, "uint16": 2, "int32": 4, "int64": 8, "float32": 4, "bool": 1}
C_TYPES = {"int8": "int8_t", "uint8": "uint8_t", "int16": "int16_t", "uint16": "uint16_t", "int32": "int32_t",
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
    """A whole model. `aliases` maps a tensor to the tensor whose bytes it shares (zero-copy views).

    A tensor in `alias_offsets` is a slice: its bytes start `alias_offsets[a]` bytes into the bytes
    of `aliases[a]` and may be fewer (CONCATENATION in place: each producer writes straight into
    its part of the output, which no op produces any more). Any other alias has its target's size.
    """

    name: str
    tensors: Mapping[str, Tensor]
    ops: tuple[Op, ...]
    inputs: tuple[str, ...]
    outputs: tuple[str, ...]
    aliases: Mapping[str, str] = field(default_factory=dict)
    #: alias -> byte offset inside its target (slices only; see the class docstring)
    alias_offsets: Mapping[str, int] = field(default_factory=dict)
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

    def offset_in_storage(self, name: str) -> int:
        """Where the bytes of `name` start inside the bytes of `storage(name)` (0 unless a slice)."""
        off = 0
        for n in self._chain(name)[:-1]:
            off += self.alias_offsets.get(n, 0)
        return off

    def is_slice(self, name: str) -> bool:
        """True when `name` is (a view of) a slice of another tensor's bytes."""
        return any(n in self.alias_offsets for n in self._chain(name)[:-1])

    def _chain(self, name: str) -> list[str]:
        """name, its alias target, that one's target, ... up to the storage tensor."""
        out = [name]
        while out[-1] in self.aliases:
            out.append(self.aliases[out[-1]])
            if len(out) > len(self.aliases) + 1:
                raise InternalError(f"alias cycle through tensor {name!r}")
        return out

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
        slices: dict[str, list[str]] = {}  # target -> its slices
        for a in self.alias_offsets:
            if a not in self.aliases:
                raise InternalError(f"slice {a!r} has an offset but no target")
            slices.setdefault(self.aliases[a], []).append(a)

        def ready(name: str) -> bool:
            return any(n in produced for n in self._chain(name))

        def mark(name: str) -> None:
            """name is written; a tensor made of slices is written once all of them are."""
            produced.add(name)
            while name in self.alias_offsets:
                name = self.aliases[name]
                parts = slices[name]
                if name in produced or not all(p in produced for p in parts):
                    return
                if sum(self.tensors[p].nbytes for p in parts) != self.tensors[name].nbytes:
                    raise InternalError(f"the slices of {name!r} do not cover its bytes")
                produced.add(name)

        for n in self.inputs + self.outputs:
            if n not in self.tensors:
                raise InternalError(f"graph I/O tensor {n!r} does not exist")
        for op in self.ops:
            for i in op.inputs:
                if i is None:
                    continue
                if i not in self.tensors:
                    raise InternalError(f"{op.label}: input tensor {i!r} does not exist")
                if not self.tensors[i].is_const and not ready(i):
                    raise InternalError(f"{op.label}: input {i!r} is used before it is produced")
            for o in op.outputs:
                if o not in self.tensors:
                    raise InternalError(f"{op.label}: output tensor {o!r} does not exist")
                if o in produced:
                    raise InternalError(f"{op.label}: tensor {o!r} is produced twice")
                mark(o)
        for n in self.outputs:
            if not ready(n) and not self.tensors[n].is_const:
                raise InternalError(f"graph output {n!r} is never produced")
        for a, b in self.aliases.items():
            if a in self.alias_offsets:
                off = self.alias_offsets[a]
                if off < 0 or off + self.tensors[a].nbytes > self.tensors[b].nbytes:
                    raise InternalError(f"slice {a!r} at byte {off} does not fit in {b!r}")
            elif self.tensors[a].nbytes != self.tensors[b].nbytes:
                raise InternalError(f"alias {a!r} -> {b!r} changes the byte size")
        for b, parts in slices.items():
            spans = sorted((self.alias_offsets[p], self.alias_offsets[p] + self.tensors[p].nbytes, p) for p in parts)
            for (_, end, p), (start, _, q) in zip(spans, spans[1:]):
                if start < end:
                    raise InternalError(f"slices {p!r} and {q!r} of {b!r} share bytes")
