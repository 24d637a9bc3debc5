"""Turn (graph, kernel calls, memory plan) into C sources.

Every decision is already made by the stages before: this module only formats values (C
literals, array bodies, pointer casts) into a `CProgram` that the jinja2 templates print.
"""

from __future__ import annotations

import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Sequence

import jinja2
import numpy as np

from tinyc import __version__
from tinyc.errors import InternalError
from tinyc.ir import C_TYPES, Graph, Tensor
from tinyc.memory.lifetimes import scratch_name
from tinyc.memory.plan import MemoryPlan
from tinyc.ops.base import KernelCall

RUNTIME_DIR = Path(__file__).resolve().parents[1] / "runtime_c"  # tinyc/runtime_c -> ../runtime_c; a wheel ships it
_ENV = jinja2.Environment(loader=jinja2.PackageLoader("tinyc.codegen", "templates"), trim_blocks=True,
                          lstrip_blocks=True, keep_trailing_newline=True, undefined=jinja2.StrictUndefined)
_NP_CTYPES = {np.dtype(k if k != "bool" else "uint8"): v for k, v in C_TYPES.items()}


@dataclass
class CArray:
    cname: str
    ctype: str
    length: int
    body: str
    comment: str
    align: int
    trained: bool = False  # a trained parameter: a mutable copy in SRAM (its flash original is `<cname>_init`)
    tensor: str = ""  # the constant tensor it holds (empty for params arrays)


@dataclass
class CState:
    """A zero-initialised static buffer of the training step (update residuals, momentum)."""

    cname: str
    ctype: str
    length: int
    comment: str


@dataclass
class TrainProgram:
    """The training step's part of the C program (tinyc/train): its steps planned in the same
    arena, the offsets it reads its input, label and loss at, the optimizer's settings."""

    steps: list["Step"]
    arena_bytes: int
    input_offsets: list[int]
    label_offset: int
    loss_offset: int
    pred_offset: int
    learning_rate: float
    momentum: float
    states: list[CState] = field(default_factory=list)
    qas: bool = True
    scheme: str = ""
    classes: int = 0


@dataclass
class Step:
    index: int
    comment: str
    function: str
    params_type: str | None
    params_name: str
    fields: list[dict[str, str]]
    args: list[str]
    patch: tuple[int, int] | None = None  # (row, col) of the patch this step computes
    op: str = ""  # the op kind, for comments
    # Per argument: the pointer cast and the arena offset when the argument is `(cast)(arena + offset)`,
    # None otherwise (a constant, NULL): a patch stage tables the offsets that differ between patches.
    arg_casts: list[str | None] = field(default_factory=list)
    arg_offsets: list[int | None] = field(default_factory=list)
    in_table: bool = False  # its params are printed in a patch stage's tables, not on their own
    guard: str = ""  # in a patch stage: the table saying which patches run this step (all when empty)


@dataclass
class Patch:
    """One patch of a patch stage: a generated function running `steps`."""

    row: int
    col: int
    function: str
    steps: list[Step]


@dataclass
class CTable:
    """A const table of a patch stage: one row per patch, or per distinct row when `index` picks them."""

    cname: str
    ctype: str
    rows: list[str]
    comment: str
    index: "CTable | None" = None  # patch -> row, when patches share rows
    per_line: int = 12  # rows printed per line: 1 for struct rows


@dataclass
class Block:
    """A run of the schedule: plain steps, or a patch stage run by a loop over the patches.

    A patch stage is one function `function(arena, patch)` whose `body` is the stage's steps once,
    reading each patch's params and arena offsets from `tables`; when the patches cannot share one
    body (`fallback` says why), one function per patch, called through the table `table`.
    `patches` always lists every patch's own steps, in execution order.
    """

    steps: list[Step] = field(default_factory=list)
    patches: list[Patch] = field(default_factory=list)
    grid: tuple[int, int] | None = None
    table: str = ""  # name of the table of patch functions (fallback)
    comment: str = ""
    function: str = ""  # the stage function (tabled stage)
    body: list[Step] = field(default_factory=list)
    tables: list[CTable] = field(default_factory=list)
    fallback: str = ""  # why this stage has one function per patch


@dataclass
class IOInfo:
    dtype: str
    shape: list[int]
    quant: str
    offset: int  # in the arena; -1 for a streamed input
    nbytes: int
    streamed: bool = False
    scale: float | None = None  # per-tensor quantization, for the header's SCALE/ZERO_POINT macros
    zero_point: int = 0


@dataclass
class CProgram:
    name: str
    prefix: str
    PU: str
    version: str
    model_file: str
    model_sha256: str
    arena_bytes: int
    lower_bound_bytes: int
    strategy: str
    total_macs: int
    weight_bytes: int
    headers: list[str]
    sources: list[str]
    streamed: bool = False  # some input is read through <prefix>_read_input()
    arrays: list[CArray] = field(default_factory=list)
    steps: list[Step] = field(default_factory=list)
    inputs: list[IOInfo] = field(default_factory=list)
    outputs: list[IOInfo] = field(default_factory=list)
    blocks: list[Block] = field(default_factory=list)
    train: TrainProgram | None = None


def c_identifier(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s and not s[0].isdigit() else "m_" + s


_BYTE_LITERALS = {np.dtype(np.int8): np.array([str(v) for v in range(-128, 128)], dtype=object),
                  np.dtype(np.uint8): np.array([str(v) for v in range(256)], dtype=object)}
_PER_LINE = 24


def _array_body(arr: np.ndarray) -> str:
    """Array initializer lines. Weights are megabytes: byte arrays go through a literal table
    rather than one str() per element (this is most of the compile time otherwise)."""
    flat = np.asarray(arr).ravel()
    if flat.dtype in _BYTE_LITERALS:
        offset = 128 if flat.dtype == np.int8 else 0
        items = _BYTE_LITERALS[flat.dtype][flat.astype(np.int16) + offset]
    elif flat.dtype == np.float32:
        items = np.array([_float_literal(np.float32(v)) for v in flat], dtype=object)
    else:
        # INT32_MIN is not a valid decimal literal in C; write it as an expression.
        items = np.array([("(-2147483647 - 1)" if v == -2147483648 else str(v)) for v in flat.astype(np.int64).tolist()],
                         dtype=object)
    if not len(items):
        return "  0"
    return "\n".join("  " + ", ".join(items[i:i + _PER_LINE]) + "," for i in range(0, len(items), _PER_LINE))


def _float_literal(v: Any) -> str:
    if isinstance(v, np.float32):
        r = repr(float(v))
        return r + ("f" if ("." in r or "e" in r) else ".0f")
    r = repr(float(v))
    return r if ("." in r or "e" in r) else r + ".0"


def _scalar(v: Any) -> str:
    if isinstance(v, (bool, np.bool_)):
        return "1" if v else "0"
    if isinstance(v, (int, np.integer)):
        iv = int(v)
        if iv == -2147483648:
            return "(-2147483647 - 1)"
        return str(iv) + ("u" if iv > 2147483647 else "")
    if isinstance(v, (float, np.floating)):
        return _float_literal(v)
    if isinstance(v, str):
        return v  # an enum constant or macro name, chosen by the op module
    if isinstance(v, dict):  # a struct-valued field
        return "{" + ", ".join(f".{k} = {_scalar(x) if not isinstance(x, (tuple, list)) else _tuple(x)}"
                               for k, x in v.items()) + "}"
    raise TypeError(f"cannot print {type(v).__name__} as a C value")


def _tuple(v: Any) -> str:
    return "{" + ", ".join(_scalar(x) for x in v) + "}"


@dataclass
class TrainPart:
    """What the training step adds to build_program (tinyc/train/compile.py makes it)."""

    graph: Graph
    calls: Sequence[KernelCall]
    plan: MemoryPlan
    macs: Sequence[int]
    trained: frozenset[str]  # parameter tensors copied to SRAM and updated
    label: str
    loss: str
    pred: str
    learning_rate: float
    momentum: float
    qas: bool
    scheme: str
    classes: int


def build_program(g: Graph, calls: Sequence[KernelCall], plan: MemoryPlan, macs: Sequence[int], *,
                  prefix: str = "tinyc", model_file: str = "model.tflite", model_sha256: str = "0" * 64,
                  train: TrainPart | None = None) -> CProgram:
    prefix = c_identifier(prefix).lower()
    all_calls = list(calls) + (list(train.calls) if train is not None else [])
    headers = sorted({c.header for c in all_calls if c.header})
    sources = sorted({s for c in all_calls for s in c.sources})
    prog = CProgram(name=prefix, prefix=prefix, PU=prefix.upper(), version=__version__, model_file=model_file,
                    model_sha256=model_sha256,
                    # invoke() and the training step share the arena: the larger of their plans
                    arena_bytes=max(plan.arena_bytes, train.plan.arena_bytes if train else 0),
                    lower_bound_bytes=plan.lower_bound_bytes,
                    strategy=plan.strategy, total_macs=int(sum(macs)), weight_bytes=0, headers=headers, sources=sources)
    const_names: dict[str, str] = {}
    param_arrays: dict[tuple[str, str], str] = {}  # (C type, body) -> name: patches repeat their layer's arrays
    trained = train.trained if train is not None else frozenset()

    def const_ref(gr: Graph, tname: str) -> str:
        if tname not in const_names:
            t = gr.t(tname)
            assert t.data is not None
            cname = f"{prefix}_w{t.index if t.index >= 0 else len(const_names)}_{len(const_names)}"
            prog.arrays.append(CArray(cname=cname, ctype=t.ctype, length=max(t.size, 1), body=_array_body(t.data),
                                      comment=f"{t.label or t.name} {t.dtype}{list(t.shape)}",
                                      align=max(4, np_itemsize(t.dtype)), trained=tname in trained, tensor=tname))
            prog.weight_bytes += t.nbytes
            const_names[tname] = cname
        return const_names[tname]

    prog.steps = _steps(g, calls, plan, macs, prefix, "p", const_ref, param_arrays, prog.arrays, None)
    prog.blocks = _blocks(g, prog.steps, prefix)
    prog.inputs = [_io(g, n, plan) for n in g.inputs]
    prog.streamed = any(io.streamed for io in prog.inputs)
    prog.outputs = [_io(g, n, plan) for n in g.outputs]
    if train is not None:
        states: dict[str, CState] = {}
        tg, tp = train.graph, train.plan
        prog.train = TrainProgram(
            steps=_steps(tg, train.calls, tp, train.macs, prefix, "t", const_ref, param_arrays, prog.arrays, states),
            arena_bytes=tp.arena_bytes, input_offsets=[tp.offset(tg, n) for n in g.inputs],
            label_offset=tp.offset(tg, train.label), loss_offset=tp.offset(tg, train.loss),
            pred_offset=tp.offset(tg, train.pred), learning_rate=train.learning_rate, momentum=train.momentum,
            qas=train.qas, scheme=train.scheme, classes=train.classes)
        prog.train.states = list(states.values())
    return prog


def _steps(g: Graph, calls: Sequence[KernelCall], plan: MemoryPlan, macs: Sequence[int], prefix: str, tag: str,
           const_ref: Any, param_arrays: dict[tuple[str, str], str], arrays: list[CArray],
           states: dict[str, CState] | None) -> list[Step]:
    """One Step per kernel call: its params struct and its arguments as C expressions."""
    out: list[Step] = []
    for step, (op, call) in enumerate(zip(g.ops, calls)):
        pname = f"{prefix}_{tag}{step}"
        fields = []

        def array_ref(v: np.ndarray, cname: str, what: str) -> str:
            """A params array as a static const array (one per distinct body: patches share theirs)."""
            ctype, body = _NP_CTYPES[v.dtype], _array_body(v)
            if (ctype, body) not in param_arrays:
                arrays.append(CArray(cname=cname, ctype=ctype, length=max(v.size, 1), body=body,
                                     comment=f"layer {step} {what}", align=4))
                param_arrays[ctype, body] = cname
            return param_arrays[ctype, body]

        for k, v in call.params.items():
            if isinstance(v, np.ndarray):
                fields.append({"name": k, "value": array_ref(v, f"{pname}_{k}", k)})
            elif isinstance(v, (tuple, list)):
                fields.append({"name": k, "value": _tuple(v)})
            elif isinstance(v, dict):  # a nested struct (may hold arrays)
                inner = {k2: array_ref(v2, f"{pname}_{k}_{k2}", f"{k}.{k2}") if isinstance(v2, np.ndarray) else v2
                         for k2, v2 in v.items()}
                fields.append({"name": k, "value": _scalar(inner)})
            else:
                fields.append({"name": k, "value": _scalar(v)})
        args: list[str] = []
        casts: list[str | None] = []
        offsets: list[int | None] = []
        scratch_k = 0
        for a in call.args:
            n_args = len(args)
            if a.kind == "null":
                args.append("NULL")
            elif a.kind == "sgd":
                args.append(f"&{prefix}_sgd")
            elif a.kind == "state":
                assert states is not None and a.tensor is not None
                cname = f"{prefix}_{c_identifier(a.tensor)}"
                states.setdefault(a.tensor, CState(cname=cname, ctype=a.ctype, length=a.nbytes // _CSIZE[a.ctype],
                                                  comment=f"#{op.index} {a.tensor}"))
                args.append(cname)
            elif a.kind == "param":
                assert a.tensor is not None
                args.append(const_ref(g, a.tensor))
            elif a.kind == "scratch":
                off = plan.offsets.get(scratch_name(step, scratch_k)) if a.nbytes > 0 else None
                if a.nbytes > 0 and off is None:
                    raise InternalError(f"{op.label}: the memory plan has no scratch buffer "
                                        f"{scratch_name(step, scratch_k)} (planned for other kernel calls?)")
                if off is not None:
                    casts.append("void *")
                    offsets.append(off)
                    args.append(f"(void *)(arena + {off})")
                else:
                    args.append("NULL")
                scratch_k += 1
            elif a.kind == "const" or (a.tensor is not None and g.t(a.tensor).is_const):
                assert a.tensor is not None
                args.append(const_ref(g, a.tensor))
            else:
                assert a.tensor is not None
                t = g.t(a.tensor)
                cq = "const " if a.kind == "in" else ""
                casts.append(f"{cq}{t.ctype} *")
                offsets.append(plan.offset(g, a.tensor))
                args.append(f"({casts[-1]})(arena + {offsets[-1]})")
            if len(casts) == n_args:  # not an arena pointer
                casts.append(None)
                offsets.append(None)
        out.append(Step(index=op.index, comment=_describe_step(g, op, macs[step], call),
                        function=call.function.replace("{prefix}", prefix), params_type=call.params_type, params_name=pname,
                        fields=fields, args=args, patch=op.attrs.get("patch"), op=op.kind,
                        arg_casts=casts, arg_offsets=offsets))
    return out


_CSIZE = {"int8_t": 1, "int16_t": 2, "int32_t": 4, "float": 4, "uint8_t": 1}


def _blocks(g: Graph, steps: list[Step], prefix: str) -> list[Block]:
    """Group the steps of each patch stage (ops tagged attrs["patch"] by tinyc.schedule) into a
    stage run by a loop over its patches; every other step stays inline in invoke()."""
    blocks: list[Block] = []
    for op, s in zip(g.ops, steps):
        if s.patch is None:
            if not blocks or blocks[-1].grid is not None:
                blocks.append(Block())
            blocks[-1].steps.append(s)
            continue
        grid = tuple(op.attrs["grid"])
        if not blocks or blocks[-1].grid is None or s.patch < (blocks[-1].patches[-1].row, blocks[-1].patches[-1].col):
            k = sum(1 for b in blocks if b.grid is not None)
            blocks.append(Block(grid=grid, table=f"{prefix}_stage{k}_patches", function=f"{prefix}_stage{k}"))
        b = blocks[-1]
        if not b.patches or (b.patches[-1].row, b.patches[-1].col) != s.patch:
            k = sum(1 for x in blocks if x.grid is not None) - 1
            b.patches.append(Patch(row=s.patch[0], col=s.patch[1], steps=[],
                                   function=f"{prefix}_stage{k}_patch_{s.patch[0]}_{s.patch[1]}"))
        b.patches[-1].steps.append(s)
    for b in blocks:
        if b.grid is not None:
            steps = b.patches[0].steps
            b.comment = (f"layers #{steps[0].index}..#{steps[-1].index} run as a {b.grid[0]}x{b.grid[1]} grid of "
                         f"patches of layer #{steps[-1].index}'s output (MCUNetV2 patch-based inference)")
            _table_stage(b)
    return blocks


def _table_stage(b: Block) -> None:
    """Make the patch stage `b` one function over its patches: each step once, its params and the
    arena offsets that differ between patches read from const tables indexed by `patch`.

    A step that only some patches run (a crop a patch does not need, another kernel variant
    chosen for some patches) runs under a per-patch flag. Possible when the patches' steps line
    up in one order and each step's arguments differ only in arena offsets; otherwise
    `b.fallback` says what differs and the stage keeps one function per patch.
    """
    columns, why = _columns(b.patches)
    if why:
        b.function, b.fallback = "", why
        return
    n = len(b.patches)
    offset_tables: dict[tuple[str, ...], str] = {}
    for j, column in enumerate(columns):
        running = [x for x in column if x is not None]
        s = running[0]
        shown = b.patches[column.index(s)]
        for x in running:
            x.in_table = True
        comment = s.comment
        if any(x.comment != s.comment for x in running):
            comment += f" [patch ({shown.row}, {shown.col}) shown]"
        guard = ""
        if len(running) < n:
            comment += f" [in {len(running)} of {n} patches]"
            guard = f"{b.function}_s{j}_runs"
            b.tables.append(CTable(cname=guard, ctype="uint8_t", rows=["1u" if x else "0u" for x in column],
                                   comment=f"#{s.index} {s.op} runs in the patches marked 1"))
        params_name = _params_table(b, j, column) if s.params_type else s.params_name
        args = list(s.args)
        for a in range(len(s.args)):
            if all(x.args[a] == s.args[a] for x in running):
                continue  # the same for every patch: stays literal
            rows = tuple(f"{x.arg_offsets[a]}u" if x is not None else "0u" for x in column)
            if rows not in offset_tables:  # a buffer one step writes and the next reads: one table
                offset_tables[rows] = f"{b.function}_a{j}_{a}"
                cast = s.arg_casts[a] or ""
                role = "scratch" if cast == "void *" else "input" if cast.startswith("const ") else "output"
                b.tables.append(CTable(cname=offset_tables[rows], ctype="uint32_t", rows=list(rows),
                                       comment=f"#{s.index} {s.op} {role} (argument {a + 1}): arena offset per patch"
                                       + (" (0 where it does not run)" if guard else "")))
            args[a] = f"({s.arg_casts[a]})(arena + {offset_tables[rows]}[patch])"
        b.body.append(Step(index=s.index, comment=comment, function=s.function, params_type=s.params_type,
                           params_name=params_name, fields=[], args=args, op=s.op, guard=guard))


_ROW_WIDTH = 100


def _struct_row(fields: list[dict[str, str]]) -> str:
    """`{.a = 1, .b = 2, ...}` as a table row, wrapped at about _ROW_WIDTH columns."""
    lines, line = [], ""
    for f in fields:
        item = f".{f['name']} = {f['value']}"
        if line and len(line) + len(item) + 2 > _ROW_WIDTH:
            lines.append(line + ",")
            line = ""
        line = f"{line}, {item}" if line else item
    lines.append(line)
    return "{" + "\n   ".join(lines) + "}"


def _params_table(b: Block, j: int, column: list[Step | None]) -> str:
    """The params of step j of every patch as one table; returns the C lvalue that picks the
    current patch's. Patches with equal params share a row (border and interior patches differ in
    sizes and padding only), chosen through an index table when rows are fewer than patches."""
    s = next(x for x in column if x is not None)
    rows: list[str] = []
    pick: list[int] = []
    for x in column:
        if x is None:
            pick.append(0)  # the step does not run in this patch
            continue
        row = _struct_row(x.fields)
        if row not in rows:
            rows.append(row)
        pick.append(rows.index(row))
    n = len(column)
    name = f"{b.function}_p{j}"
    what = f"#{s.index} {s.op} params"
    if len(rows) == 1:
        b.tables.append(CTable(cname=name, ctype=s.params_type or "", rows=rows, per_line=1,
                               comment=what + ", the same for every patch"))
        return f"{name}[0]"
    if len(rows) == n:
        b.tables.append(CTable(cname=name, ctype=s.params_type or "", rows=rows, per_line=1, comment=what + " per patch"))
        return f"{name}[patch]"
    index = CTable(cname=f"{name}_row", ctype="uint8_t" if len(rows) <= 256 else "uint16_t",
                   rows=[f"{i}u" for i in pick], comment=f"row of {name} per patch", per_line=16)
    b.tables.append(CTable(cname=name, ctype=s.params_type or "", rows=rows, index=index, per_line=1,
                           comment=f"{what}: {len(rows)} distinct over {n} patches"))
    return f"{name}[{index.cname}[patch]]"


def _arena_offset(s: Step, a: int) -> int | None:
    return s.arg_offsets[a] if a < len(s.arg_offsets) else None


def _columns(patches: list[Patch]) -> tuple[list[list[Step | None]], str]:
    """The patches' steps lined up: one column per step of the stage, holding each patch's step
    (None where that patch does not run it); or no columns and why the patches cannot share one
    function body. A step is the same step in two patches when it runs the same function for the
    same layer (the k-th such call in each patch)."""
    def keys(p: Patch) -> list[tuple[int, str, str, int]]:
        seen: dict[tuple[int, str, str], int] = {}
        out = []
        for s in p.steps:
            k = (s.index, s.op, s.function)
            seen[k] = seen.get(k, 0) + 1
            out.append((*k, seen[k]))
        return out

    order: list[tuple[int, str, str, int]] = []  # every patch's keys, as one sequence
    for p in patches:
        pos = 0
        for k in keys(p):
            if k in order[pos:]:
                pos = order.index(k, pos) + 1
            elif k in order:
                return [], (f"patch ({p.row}, {p.col}) runs layer #{k[0]}'s {k[2]} in another order than "
                            f"patch ({patches[0].row}, {patches[0].col})")
            else:
                order.insert(pos, k)
                pos += 1
    at = {k: i for i, k in enumerate(order)}
    columns: list[list[Step | None]] = [[None] * len(patches) for _ in order]
    for i, p in enumerate(patches):
        for k, s in zip(keys(p), p.steps):
            columns[at[k]][i] = s
    for column in columns:
        ref = next(x for x in column if x is not None)
        where = patches[column.index(ref)]
        for p, x in zip(patches, column):
            if x is None or x is ref:
                continue
            here, there = f"patch ({p.row}, {p.col})", f"patch ({where.row}, {where.col})"
            if x.params_type != ref.params_type or [f["name"] for f in x.fields] != [f["name"] for f in ref.fields]:
                return [], f"layer #{x.index}'s {x.function} takes other params in {here} than in {there}"
            if len(x.args) != len(ref.args):
                return [], f"layer #{x.index} takes {len(x.args)} arguments in {here}, {len(ref.args)} in {there}"
            for a, (u, v) in enumerate(zip(ref.args, x.args)):
                if u != v and (_arena_offset(ref, a) is None or _arena_offset(x, a) is None  # not `arena + offset`
                               or ref.arg_casts[a] != x.arg_casts[a]):
                    return [], (f"layer #{x.index} argument {a + 1} is {v} in {here}, {u} in {there}: "
                                "not an arena offset to table")
    return columns, ""


def np_itemsize(dtype: str) -> int:
    return {"int8": 1, "uint8": 1, "bool": 1, "int16": 2, "int32": 4, "float32": 4, "int64": 8}[dtype]


def _io(g: Graph, name: str, plan: MemoryPlan) -> IOInfo:
    t: Tensor = g.t(name)
    q = f", scale {t.quant.s!r}, zero point {t.quant.zp}" if t.quant is not None else ""
    scale, zp = (t.quant.s, t.quant.zp) if t.quant is not None and not t.quant.per_channel else (None, 0)
    streamed = name in g.streamed
    return IOInfo(dtype=t.dtype, shape=list(t.shape), quant=q, offset=-1 if streamed else plan.offset(g, name),
                  nbytes=t.nbytes, streamed=streamed, scale=scale, zero_point=zp)


def _describe_step(g: Graph, op, macs: int, call: KernelCall) -> str:
    ins = " ".join(f"{g.t(i).dtype}{list(g.t(i).shape)}" for i in op.inputs[:1] if i is not None)
    outs = " ".join(f"{g.t(o).dtype}{list(g.t(o).shape)}" for o in op.outputs)
    extra = f" {call.comment}" if call.comment else ""
    return f"{op.kind} {ins} -> {outs}, {macs:,} MACs{extra}".replace("*/", "* /")


def model_basename(prefix: str) -> str:
    """`model` for the default prefix, `<prefix>_model` otherwise, so two models can share a folder."""
    return "model" if prefix == "tinyc" else f"{prefix}_model"


def render(prog: CProgram) -> dict[str, str]:
    """File name -> contents of the model sources."""
    base = model_basename(prog.prefix)
    return {
        f"{base}.h": _ENV.get_template("model.h.j2").render(p=prog, header=f"{base}.h"),
        f"{base}.c": _ENV.get_template("model.c.j2").render(p=prog, header=f"{base}.h"),
    }


def copy_runtime(dest: Path, sources: Sequence[str]) -> list[Path]:
    """Copy every runtime header and the kernel sources the model calls into dest/runtime/."""
    inc = dest / "runtime" / "include" / "tinyc"
    src = dest / "runtime" / "src"
    inc.mkdir(parents=True, exist_ok=True)
    src.mkdir(parents=True, exist_ok=True)
    for h in sorted((RUNTIME_DIR / "include" / "tinyc").glob("*.h")):
        shutil.copyfile(h, inc / h.name)
    out = []
    for s in sources:
        shutil.copyfile(RUNTIME_DIR / "src" / s, src / s)
        out.append(src / s)
    return out
