"""Build the MemoryPlan: overlap rules from the op modules, every registered allocator bottom-up
and top-down, a local search from the best of them under a time budget, the verifier on the
result, and the arena kept with its distance to the lower bound.

Ops with an in-place variant (OpSupport.in_place: depthwise channel by channel) are planned both
ways: with every op's own kernel and distance rule, and with each such op switched to its
variant where that needs fewer bytes at its step than its distance rule. The smaller arena wins;
then every op whose variant does not lower it goes back to its own, faster kernel. The plan
carries the kernel calls it was made for."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Mapping, Sequence

from tinyc.errors import BadInput
from tinyc.ir import Graph
from tinyc.memory.allocators import Placer, orders
from tinyc.memory.lifetimes import Buffer, align_up, buffers
from tinyc.memory.overlap import (Overlap, find_in_place, find_overlaps, live_bytes_with_overlaps, pair_span,
                                  used_overlaps)
from tinyc.memory.search import improve
from tinyc.memory.verify import verify, verify_slices
from tinyc.ops.base import KernelCall


@dataclass(frozen=True)
class MemoryPlan:
    """Offsets of every arena buffer, the arena size, and how far it is from the lower bound."""

    buffers: tuple[Buffer, ...]
    offsets: Mapping[str, int]
    arena_bytes: int
    lower_bound_bytes: int
    live_per_step: tuple[int, ...]
    strategy: str
    alignment: int
    overlaps: tuple[Overlap, ...] = ()  # the overlap rules this placement relies on
    candidates: Mapping[str, int] | None = None  # arena bytes of every strategy tried
    calls: tuple[KernelCall, ...] | None = None  # the kernel calls planned for (in-place variants chosen)

    def offset(self, g: Graph, tensor: str) -> int:
        """Where `tensor` starts in the arena: its storage buffer's offset, plus its place in
        that buffer when it is a slice (CONCATENATION in place)."""
        return self.offsets[g.storage(tensor)] + g.offset_in_storage(tensor)

    @property
    def overhead(self) -> float:
        return self.arena_bytes / self.lower_bound_bytes - 1.0 if self.lower_bound_bytes else 0.0


def plan_memory(g: Graph, calls: Sequence[KernelCall], alignment: int = 4, strategy: str | None = None,
                overlap: bool = True, search_seconds: float = 2.0, fast_kernels: bool = True) -> MemoryPlan:
    """Plan the arena of `g` run in its op order with the kernel calls `calls`.

    strategy: one registered allocator (bottom-up and top-down, with and without overlaps),
    no search; None: all of them, then the local search. search_seconds: the search's time
    budget (0: none); it stops as soon as the arena reaches the lower bound. fast_kernels: give
    back their own (faster) kernel to the ops whose in-place variant does not lower the arena
    (False when only the arena size matters, as for the patch search's candidates).
    """
    calls_in = list(calls)
    bufs = buffers(g, calls)
    rules = find_overlaps(g, bufs, alignment) if overlap else []
    own_rules = list(rules)
    verify_slices(g, bufs)
    alt = _in_place_variant(g, calls, bufs, rules, alignment) if overlap else None
    if alt is None:
        return dataclasses.replace(plan_buffers(bufs, rules, len(g.ops), alignment, strategy, search_seconds),
                                   calls=tuple(calls))
    alt_calls, alt_bufs, alt_rules = alt
    # The greedy placements of both decide; the local search then only shrinks the winner. The
    # lower bound and the bytes live per step are those of the kernels the plan runs.
    plan = plan_buffers(bufs, rules, len(g.ops), alignment, strategy, 0)
    var = plan_buffers(alt_bufs, alt_rules, len(g.ops), alignment, strategy, 0)
    chose_variant = var.arena_bytes < plan.arena_bytes
    if chose_variant:
        plan, bufs, rules, calls = var, alt_bufs, alt_rules, alt_calls
    if search_seconds > 0 and strategy is None:
        plan = plan_buffers(bufs, rules, len(g.ops), alignment, strategy, search_seconds)
    if chose_variant and fast_kernels:
        # against the final (searched) arena, so that giving kernels back never grows it
        fast = _back_to_fast_kernels(g, plan, bufs, rules, calls, calls_in, own_rules, alignment, strategy)
        if any(a is not b for a, b in zip(fast[3], calls)):  # identity: KernelCall params hold arrays
            plan, bufs, rules, calls = fast
            if search_seconds > 0 and strategy is None:
                searched = plan_buffers(bufs, rules, len(g.ops), alignment, strategy, search_seconds)
                plan = searched if searched.arena_bytes <= plan.arena_bytes else plan
    return dataclasses.replace(plan, calls=tuple(calls))


def _back_to_fast_kernels(g: Graph, plan: MemoryPlan, bufs: Sequence[Buffer], rules: Sequence[Overlap],
                          calls: Sequence[KernelCall], own_calls: Sequence[KernelCall],
                          own_rules: Sequence[Overlap], alignment: int, strategy: str | None
                          ) -> tuple[MemoryPlan, list[Buffer], list[Overlap], list[KernelCall]]:
    """Each op the in-place plan switched to its variant goes back to its own kernel (faster: the
    variant copies channel by channel through a temporary) when the arena does not grow without
    it: the variant only pays where it lowers the peak."""
    plan_now, bufs_now, rules_now, calls_now = plan, list(bufs), list(rules), list(calls)
    own_by_step = {o.step: o for o in own_rules}
    for step in [k for k, (a, b) in enumerate(zip(calls, own_calls)) if a is not b]:
        trial_calls = list(calls_now)
        trial_calls[step] = own_calls[step]
        trial_rules = [o for o in rules_now if o.step != step] + ([own_by_step[step]] if step in own_by_step else [])
        trial_bufs = buffers(g, trial_calls)
        trial = plan_buffers(trial_bufs, trial_rules, len(g.ops), alignment, strategy, 0)
        if trial.arena_bytes <= plan_now.arena_bytes:
            plan_now, bufs_now, rules_now, calls_now = trial, trial_bufs, trial_rules, trial_calls
    return plan_now, bufs_now, rules_now, calls_now


def _in_place_variant(g: Graph, calls: Sequence[KernelCall], bufs: Sequence[Buffer], rules: Sequence[Overlap],
                      alignment: int) -> tuple[list[KernelCall], list[Buffer], list[Overlap]] | None:
    """The calls, buffers and rules with every op switched to its in-place variant where that
    needs fewer bytes at its step (X, Y and the scratch) than its distance rule (or X + Y);
    None when no op gains."""
    if len(calls) != len(g.ops):
        return None  # planning without kernel calls (lifetimes only)
    size = {b.name: align_up(b.size, alignment) for b in bufs}
    by_step = {o.step: o for o in rules}
    new_calls, new_rules = list(calls), list(rules)
    changed = False
    for opt in find_in_place(g, bufs, alignment):
        sx, sy = size[opt.rule.x], size[opt.rule.y]
        own = by_step.get(opt.step)
        own_bytes = pair_span(own, sx, sy) if own is not None else sx + sy
        if opt.bytes >= own_bytes:
            continue
        new_calls[opt.step] = opt.in_place.call
        new_rules = [o for o in new_rules if o.step != opt.step] + [opt.rule]
        changed = True
    if not changed:
        return None
    return new_calls, buffers(g, new_calls), new_rules


def plan_buffers(bufs: Sequence[Buffer], rules: Sequence[Overlap], steps: int, alignment: int = 4,
                 strategy: str | None = None, search_seconds: float = 2.0) -> MemoryPlan:
    """plan_memory on buffers and overlap rules already worked out (steps: the op count)."""
    algos = orders()
    if strategy is not None and strategy not in algos:
        raise BadInput(f"unknown planner strategy {strategy!r} (known: {', '.join(sorted(algos))})")
    bufs = list(bufs)
    live = live_bytes_with_overlaps(bufs, rules, steps, alignment)
    lower = max(live) if live else 0
    tried: dict[str, int] = {}
    best: tuple[int, str, Placer, list[int]] | None = None
    # Overlap rules help chains but can cost elsewhere (a rule can pull a buffer into a spot
    # that blocks a later, bigger one): try plain placements too and keep the smaller arena.
    variants = [("", [])] + ([("overlap+", list(rules))] if rules else [])
    for tag, ovs in variants:
        for top_down in (False, True):
            placer = Placer(bufs, alignment, ovs, top_down)
            for name, order in algos.items():
                if strategy is not None and name != strategy:
                    continue
                idx = placer.indices(order(bufs, ovs))
                size = align_up(placer.extent(placer.place(idx)), alignment)
                label = tag + ("top-down+" if top_down else "") + name
                tried[label] = size
                if best is None or size < best[0]:
                    best = (size, label, placer, idx)
                if best[0] <= lower:
                    break
            if best is not None and best[0] <= lower:
                break
        if best is not None and best[0] <= lower:
            break
    assert best is not None
    size, label, placer, idx = best
    if strategy is None and search_seconds > 0 and size > lower:
        found = improve(placer, idx, lower, search_seconds)
        if found[0] < size:
            size, idx = found
            label = "search+" + label
            tried[label] = size
    offs = placer.offsets(idx)
    used = used_overlaps(bufs, offs, rules)
    verify(bufs, offs, alignment, used)
    arena = align_up(max((offs[b.name] + b.size for b in bufs), default=0), alignment)
    return MemoryPlan(buffers=tuple(bufs), offsets=offs, arena_bytes=arena, lower_bound_bytes=lower,
                      live_per_step=tuple(live), strategy=label, alignment=alignment, overlaps=tuple(used),
                      candidates=tried)
