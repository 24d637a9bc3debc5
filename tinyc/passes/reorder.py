"""Pick the op order (a topological order) that needs the fewest bytes at its worst step.

A graph with branches can run them in any interleaving; what waits while another branch runs
costs memory. Run the branch with the big intermediates first, while the other branch's small
input waits, not the other way round:

    x -> A (big) -> B -> y1          file order A C B D:  A's big output waits during C
    x -> C (big) -> D -> y2          chosen order A B C D: nothing big waits

Cost of an order: the most bytes live at any step, counted as the memory planner's lower
bound counts them (every activation live from its producer to its last reader, graph outputs
to the end, and the overlap an op module proves for a dying input: memory/overlap.py).
Kernel scratch is not known before lowering and is left out.

Search: dynamic programming over the sets of ops already run (a set fixes what is live),
layer by layer, each set keeping its best (peak, bytes live after it) and the first way it
was reached; exact while every layer has at most MAX_STATES sets (graphs with a few parallel
branches), a beam of the best MAX_STATES sets beyond that. Deterministic, and the file order
is kept unless another order has a strictly lower peak.
"""

from __future__ import annotations

from typing import Sequence

from tinyc.ir import Graph, Op
from tinyc.memory.lifetimes import align_up
from tinyc.memory.overlap import Overlap, pair_span
from tinyc.ops.registry import lookup
from tinyc.passes.manager import PassResult

#: sets of executed ops kept per layer; beyond this the search is a beam, not exact
MAX_STATES = 4000
ALIGN = 4  # the default arena alignment; the cost is an estimate, alignment barely moves it


class _Cost:
    """Per op: the bit masks and byte counts the search needs, worked out once."""

    def __init__(self, g: Graph) -> None:
        self.g = g
        ops = g.ops
        n = len(ops)
        storage = g.storage
        producer: dict[str, int] = {}
        for i, op in enumerate(ops):
            for o in op.outputs:
                producer[storage(o)] = i
        readers: dict[str, int] = {}  # storage -> mask of the ops reading it
        for i, op in enumerate(ops):
            for name in op.inputs:
                if name is not None and not g.t(name).is_const:
                    s = storage(name)
                    readers[s] = readers.get(s, 0) | (1 << i)
        outputs = {storage(o) for o in g.outputs}
        self.size = {s: align_up(g.t(s).nbytes, ALIGN) for s in set(producer) | set(readers)}
        self.deps = [0] * n
        self.made = [[storage(o) for o in op.outputs] for op in ops]
        self.read = [sorted({storage(x) for x in op.inputs if x is not None and not g.t(x).is_const})
                     for op in ops]
        for i in range(n):
            for s in self.read[i]:
                if s in producer:
                    self.deps[i] |= 1 << producer[s]
        self.readers = readers
        self.outputs = outputs
        self.start = sum(self.size[s] for s in {storage(x) for x in g.inputs} if s in self.size)
        self.saving = [self._saving(op, i) for i, op in enumerate(ops)]

    def _saving(self, op: Op, i: int) -> tuple[str, int] | None:
        """(X, bytes saved) when the op may write its output over input X, X dying there."""
        mod = lookup(op.kind)
        spec = mod.overlap(op, self.g) if mod is not None else None
        if spec is None or not op.outputs or spec.input_index >= len(op.inputs):
            return None
        xin = op.inputs[spec.input_index]
        if xin is None or self.g.t(xin).is_const:
            return None
        x, y = self.g.storage(xin), self.g.storage(op.outputs[0])
        if x == y or x in self.outputs or sum(1 for s in op.inputs if s is not None and self.g.storage(s) == x) > 1:
            return None
        above = spec.min_distance_above()
        rule = Overlap(x, y, align_up(spec.min_distance(), ALIGN), i,
                       None if above is None else align_up(above, ALIGN))
        sx, sy = self.size[x], self.size[y]
        return x, sx + sy - pair_span(rule, sx, sy)

    def step(self, done: int, live: int, i: int) -> tuple[int, int]:
        """Bytes live while op i runs after the ops in `done`, and after it."""
        now = done | (1 << i)
        made = sum(self.size[s] for s in self.made[i])
        freed = sum(self.size[s] for s in self.read[i] if s not in self.outputs and self.readers[s] & ~now == 0)
        # an output nobody reads is live during the op only
        freed += sum(self.size[s] for s in self.made[i] if s not in self.outputs and s not in self.readers)
        sv = self.saving[i]
        saved = sv[1] if sv is not None and self.readers[sv[0]] & ~now == 0 else 0
        return live + made - saved, live + made - freed


def peak_of(g: Graph, order: Sequence[int]) -> int:
    """The cost of running g's ops in this order (indices into g.ops)."""
    cost = _Cost(g)
    done, live, peak = 0, cost.start, cost.start
    for i in order:
        during, live = cost.step(done, live, i)
        done |= 1 << i
        peak = max(peak, during)
    return peak


def best_order(g: Graph) -> list[int]:
    cost = _Cost(g)
    n = len(g.ops)
    # state (mask of executed ops) -> (peak, live after, previous state, op run last)
    layer: dict[int, tuple[int, int, int, int]] = {0: (cost.start, cost.start, -1, -1)}
    history: list[dict[int, tuple[int, int, int, int]]] = [layer]
    for _ in range(n):
        nxt: dict[int, tuple[int, int, int, int]] = {}
        for done, (peak, live, _, _) in layer.items():
            for i in range(n):
                if done >> i & 1 or cost.deps[i] & ~done:
                    continue
                during, after = cost.step(done, live, i)
                cand = (max(peak, during), after, done, i)
                now = done | (1 << i)
                old = nxt.get(now)
                if old is None or cand[:2] < old[:2]:
                    nxt[now] = cand
        if len(nxt) > MAX_STATES:
            pos = {s: k for k, s in enumerate(nxt)}
            keep = sorted(nxt, key=lambda s: (nxt[s][0], nxt[s][1], pos[s]))[:MAX_STATES]
            nxt = {s: nxt[s] for s in sorted(keep, key=pos.__getitem__)}
        layer = nxt
        history.append(layer)
    full = (1 << n) - 1
    order: list[int] = []
    state = full
    for layer in reversed(history[1:]):
        _, _, prev, i = layer[state]
        order.append(i)
        state = prev
    order.reverse()
    return order


def run(g: Graph) -> PassResult:
    if len(g.ops) < 3:
        return PassResult(g, False)
    order = best_order(g)
    if order == list(range(len(g.ops))) or peak_of(g, order) >= peak_of(g, range(len(g.ops))):
        return PassResult(g, False)
    return PassResult(g.replace(ops=tuple(g.ops[i] for i in order)), True)
