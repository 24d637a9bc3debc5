"""Runs the rewrite passes in their one explicit order, linting the graph after each.

A lint failure names the pass that broke the graph and the passes that ran before it.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable

from tinyc.errors import InternalError
from tinyc.ir import Graph


@dataclass(frozen=True)
class PassResult:
    graph: Graph
    changed: bool


Pass = Callable[[Graph], PassResult]


def default_passes() -> list[tuple[str, Pass]]:
    from tinyc.passes import alias_views, concat_inplace, fold_constants, fold_pad, prune, reorder

    return [
        ("fold_constants", fold_constants.run),
        ("alias_views", alias_views.run),
        ("fold_pad", fold_pad.run),
        ("prune", prune.run),
        ("reorder", reorder.run),
        ("concat_inplace", concat_inplace.run),  # after reorder: the order fixes who reads what when
    ]


def run_passes(g: Graph, passes: list[tuple[str, Pass]] | None = None) -> Graph:
    done: list[str] = []
    g.lint()
    for name, fn in passes if passes is not None else default_passes():
        result = fn(g)
        try:
            result.graph.lint()
        except InternalError as e:
            raise InternalError(f"pass {name} (after {', '.join(done) or 'none'}) broke the graph: {e}") from e
        g = result.graph
        done.append(name)
    return g
