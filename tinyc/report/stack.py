"""Worst-case stack depth of invoke() from gcc's call graph (-fcallgraph-info=su).

A per-function maximum (-fstack-usage alone) under-counts as soon as a kernel calls a helper
that is not inlined, and patch stages add their own frames; the call graph gives the real
chains. Indirect calls (the patch tables) are resolved conservatively to the deepest function of
the model file, and calls into the C library (memcpy, memset), which the objects do not describe,
get a fixed allowance.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from pathlib import Path

from tinyc.errors import TinycError

LIBRARY_CALL_BYTES = 16  # newlib-nano's memcpy/memset push at most a few registers
_NODE = re.compile(r'node: \{ title: "([^"]+)" label: "[^\n"]*?\\n[^"]*?\\n(\d+) bytes \((\w+)[^)]*\)')
_EDGE = re.compile(r'edge: \{ sourcename: "([^"]+)" targetname: "([^"]+)"')


@dataclass
class CallGraph:
    frame: dict[str, int] = field(default_factory=dict)      # function -> own frame bytes
    calls: dict[str, set[str]] = field(default_factory=dict)  # function -> callees
    file_of: dict[str, str] = field(default_factory=dict)     # function -> .ci file stem
    dynamic: set[str] = field(default_factory=set)            # frames that are not static

    @classmethod
    def read(cls, ci_files: list[Path]) -> "CallGraph":
        g = cls()
        for f in ci_files:
            text = f.read_text()
            for name, size, kind in _NODE.findall(text):
                g.frame[name] = int(size)
                g.file_of[name] = f.stem
                if kind != "static":
                    g.dynamic.add(name)
            for src, dst in _EDGE.findall(text):
                g.calls.setdefault(src, set()).add(dst)
        return g

    def worst(self, entry: str) -> int:
        """Deepest chain from entry, in bytes (frames only; the caller's own frame is not included)."""
        memo: dict[str, int] = {}
        on_path: set[str] = set()
        home = self.file_of.get(entry)

        def depth(fn: str) -> int:
            if fn in memo:
                return memo[fn]
            if fn == "__indirect_call":
                targets = [t for t, stem in self.file_of.items() if stem == home and t != entry and t not in on_path]
                return max((depth(t) for t in targets), default=0)
            if fn not in self.frame:
                return LIBRARY_CALL_BYTES
            if fn in on_path:
                raise TinycError(f"recursion through {fn}: the stack depth is unbounded")
            if fn in self.dynamic:
                raise TinycError(f"{fn} has a dynamic stack frame (a VLA or alloca?): the depth is unbounded")
            on_path.add(fn)
            d = self.frame[fn] + max((depth(c) for c in self.calls.get(fn, ())), default=0)
            on_path.discard(fn)
            memo[fn] = d
            return d

        if entry not in self.frame:
            raise TinycError(f"{entry} not found in the call graph")
        return depth(entry)
