"""The training step as one IR graph: forward to the logits, the loss, and the backward pass.

    forward ops (the inference kernels; trained ops marked attrs["trained"])
      + right after each, what its backward needs kept (1-bit activation masks, the trained
        input channels)
    softmax cross-entropy on the logits (label in, loss and prediction out)
    backward ops in reverse forward order, each op's from its own module's `backward` facet:
      input gradients, then at once the update of that op's parameters (reordering: a weight
      gradient exists one output channel at a time, never whole)

Gradients are derived only where an updated parameter lies upstream (dead-code elimination at
compile time: nothing below the deepest updated layer runs backward, and an op there needs no
backward facet). The result is an ordinary Graph, so the memory planner gives every saved
activation, mask and gradient its lifetime and place in the one arena.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any

import numpy as np

from tinyc.errors import BadInput, UnsupportedError
from tinyc.ir import Graph, Op, Tensor
from tinyc.ops.base import Arg, GradContext, KernelCall, ParamUpdate, elementwise_overlap
from tinyc.ops.kernel import kernel_op
from tinyc.ops.registry import lookup
from tinyc.train.scheme import Scheme, resolve, weighted_ops


@dataclass(frozen=True)
class TrainGraph:
    graph: Graph  # the whole training step
    forward: Graph  # the inference graph, trained ops marked (invoke() runs it with the trained parameters)
    logits: str
    beta: float
    label: str
    loss: str
    pred: str
    classifier: Op
    convs: tuple[Op, ...]  # weighted ops before the classifier, in forward order (TTE's conv positions)
    updates: dict[int, ParamUpdate]  # forward op index -> what it trains
    trained: frozenset[str]  # parameter tensors kept in SRAM and updated
    states: dict[str, tuple[str, int]]  # training state buffers: name -> (C type, count)
    scheme: Scheme
    model: Graph  # the forward before partially trained weights were split (the float reference, export)
    splits: dict[str, dict[str, Any]]  # weight tensor -> how it is split (see split_weights)
    active: frozenset[int]  # forward op indices that run a backward
    patched: bool = False  # the forward runs its first stage patch by patch (MCUNetV2)


def find_logits(g: Graph) -> tuple[str, float, Op]:
    """The classifier's output: model output 0 walked back through the ops that only turn logits
    into probabilities or change their type (each op module's `loss_head`)."""
    if not g.outputs:
        raise BadInput("the model has no output to train")
    producers = {g.storage(o): op for op in g.ops for o in op.outputs}
    name, beta = g.outputs[0], 1.0
    for _ in range(len(g.ops) + 1):
        op = producers.get(g.storage(name))
        if op is None:
            raise BadInput("the model's output is not computed by any layer: nothing to train")
        mod = lookup(op.kind)
        head = mod.loss_head(op, g) if mod is not None else None
        if head is None:
            if mod is None or mod.weights(op, g) is None:
                raise BadInput(f"the model's output comes from {op.label}, not from a classifier "
                               "(FULLY_CONNECTED or CONV_2D): tinyc trains classifiers")
            return name, beta, op
        beta *= head
        name = op.inputs[0]
    raise BadInput("cannot find the classifier's output")


def mark_trained(g: Graph, updates: dict[int, ParamUpdate]) -> Graph:
    """The ops whose parameters change: their lowering must not fold anything from the weights at
    compile time (tinyc/ops/conv.py, depthwise_conv.py, fully_connected.py read attrs["trained"])."""
    ops = tuple(dataclasses.replace(op, attrs={**op.attrs, "trained": True})
                if op.index in updates and "patch" not in op.attrs else op for op in g.ops)
    return g.replace(ops=ops)


def build(g: Graph, scheme: Scheme, qas: bool = True, momentum: bool = False, residuals: bool = True,
          layers: tuple[list[Op], dict[int, ParamUpdate]] | None = None) -> TrainGraph:
    """The training step of g under `scheme`. layers: (the conv layers, the resolved updates) of
    the unpatched model, when g is its patch-based schedule (whose patch stage repeats layers)."""
    logits, beta, classifier = find_logits(g)
    producers: dict[str, list[Op]] = {}  # several when patches each write a part of a tensor
    for op in g.ops:
        for o in op.outputs:
            producers.setdefault(g.storage(o), []).append(op)
    needed: set[int] = set()
    stack = [g.storage(logits)]
    while stack:
        for op in producers.get(stack.pop(), ()):
            if id(op) in needed:
                continue
            needed.add(id(op))
            stack.extend(g.storage(i) for i in op.inputs if i is not None and not g.t(i).is_const)
    unpatched = [op for op in g.ops if "patch" not in op.attrs]
    if len({op.index for op in unpatched}) != len(unpatched):
        raise BadInput("the model's ops do not have distinct indices: cannot name the layers to train")
    positions = [k for k, op in enumerate(g.ops) if id(op) in needed]
    if layers is None:
        weighted = weighted_ops(g, tuple(g.ops[k] for k in positions))
        convs = [op for op in weighted if op is not classifier]
        updates = resolve(scheme, g, convs, classifier)
    else:
        convs, updates = layers
        convs = [op for op in convs]
    model = mark_trained(g, updates)
    tensors: dict[str, Tensor] = dict(model.tensors)
    states: dict[str, tuple[str, int]] = {}

    def new_tensor(hint: str, shape: tuple[int, ...], dtype: str) -> str:
        name, k = f"train/{hint}", 1
        while name in tensors:
            k += 1
            name = f"train/{hint}_{k}"
        tensors[name] = Tensor(name=name, shape=tuple(int(s) for s in shape), dtype=dtype)
        return name

    def state(hint: str, ctype: str, count: int) -> str:
        name, k = hint, 1
        while name in states:
            k += 1
            name = f"{hint}_{k}"
        states[name] = (ctype, count)
        return name

    # partially trained weights: only the trained channels go to SRAM, the rest stays in flash
    ops_now, before, splits = split_weights(model, updates, tensors, new_tensor)
    marked = model.replace(ops=tuple(op for k, o in enumerate(ops_now) for op in (*before.get(k, ()), o)),
                           tensors=tensors)
    live = marked  # the op modules see the tensors added so far (the same dict)
    fwd = [op for k in positions for op in (*before.get(k, ()), ops_now[k])]
    by_index = {op.index: op for op in ops_now if "patch" not in op.attrs}
    classifier = by_index[classifier.index]
    convs = [by_index.get(op.index, op) for op in convs]

    # which tensors need a gradient: those an updated op lies upstream of
    needs: set[str] = set()
    active: set[int] = set()
    for op in fwd:
        if ("patch" not in op.attrs and op.index in updates) or any(i is not None and g.storage(i) in needs
                                                                     for i in op.inputs):
            if "patch" in op.attrs:
                raise BadInput(f"{op.label} runs patch by patch but lies on the gradient path: train only "
                               "layers after the patch stage, or compile with --patch off")
            active.add(id(op))
            needs.update(g.storage(o) for o in op.outputs)

    x = tensors[logits]
    if x.quant is None or x.dtype != "int8":
        raise BadInput(f"the classifier's output {logits!r} is {x.dtype}; tinyc trains int8 classifiers")
    label = new_tensor("label", (1,), "int32")
    loss = new_tensor("loss", (1,), "float32")
    pred = new_tensor("pred", (1,), "int32")
    dlogits = new_tensor("dlogits", x.shape, "float32")
    ce = KernelCall(function="tinyc_softmax_ce_s8", header="tinyc/train_loss.h", sources=("train_loss.c",),
                    params_type="tinyc_softmax_ce_params_t",
                    params=dict(classes=x.size, scale=np.float32(x.quant.s), zp=int(x.quant.zp), beta=np.float32(beta)),
                    args=(Arg("in", logits), Arg("in", label), Arg("out", dlogits), Arg("out", loss), Arg("out", pred)),
                    comment=f"softmax cross-entropy over {x.size} classes (beta {beta:g})")
    loss_op = kernel_op(ce, classifier.index, "loss")

    grad_of: dict[str, str] = {g.storage(logits): dlogits}
    saves: dict[int, list[Op]] = {}
    backward_ops: list[Op] = []
    for op in reversed(fwd):
        if id(op) not in active:
            continue
        dy = grad_of.get(g.storage(op.outputs[0]))
        if dy is None:
            continue  # its output does not reach the loss
        want = tuple(i is not None and not live.t(i).is_const and live.storage(i) in needs for i in op.inputs)
        ctx = GradContext(dy=dy, want=want, update=updates.get(op.index), qas=qas, momentum=momentum,
                          new_tensor=new_tensor, state=state, residuals=residuals)
        mod = lookup(op.kind)
        try:
            bw = mod.backward(op, live, ctx)
        except UnsupportedError as e:
            raise UnsupportedError(f"cannot train through {e} (it lies between the loss and an updated layer; "
                                   "update only layers after it)") from None
        saves[id(op)] = list(bw.saves)
        backward_ops.extend(bw.ops)
        for i, gname in bw.grads.items():
            s = g.storage(op.inputs[i])
            if s in grad_of:  # several consumers: the gradients add up
                total = new_tensor(f"dsum{op.index}_{i}", tensors[s].shape, "float32")
                n = tensors[s].size
                add = KernelCall(function="tinyc_grad_add_f32", header="tinyc/train_elementwise.h",
                                 sources=("train_elementwise.c",), params_type="tinyc_size_params_t",
                                 params=dict(n=n), args=(Arg("in", grad_of[s]), Arg("in", gname), Arg("out", total)),
                                 comment=f"gradient of {s} summed over its consumers")
                backward_ops.append(kernel_op(add, op.index, "sum of gradients",
                                              overlap=elementwise_overlap(4, 4, n)))
                grad_of[s] = total
            else:
                grad_of[s] = gname
    ops: list[Op] = []
    for op in fwd:
        ops.append(op)
        ops.extend(saves.get(id(op), ()))
    ops.append(loss_op)
    ops.extend(backward_ops)
    trained: set[str] = set()
    for op in fwd:
        up = updates.get(op.index)
        if up is None:
            continue
        w = lookup(op.kind).weights(op, g)
        if up.channels:
            trained.add(op.attrs["split"]["trained"] if "split" in op.attrs else w.weight)
        if up.bias and w.bias is not None:
            trained.add(w.bias)
    tg = Graph(name=g.name + "_train", tensors=dict(tensors), ops=tuple(ops), inputs=tuple(g.inputs) + (label,),
               outputs=(loss, pred), aliases=dict(g.aliases), alias_offsets=dict(g.alias_offsets))
    tg.lint()
    return TrainGraph(graph=tg, forward=marked, logits=logits, beta=beta, label=label, loss=loss, pred=pred,
                      classifier=classifier, convs=tuple(convs), updates=updates, trained=frozenset(trained),
                      states=states, scheme=scheme, model=model, splits=splits, active=frozenset(op.index for op in fwd if id(op) in active),
                      patched=any("patch" in op.attrs for op in fwd))


def split_weights(g: Graph, updates: dict[int, ParamUpdate], tensors: dict[str, Tensor], new_tensor: Any
                  ) -> tuple[list[Op], dict[int, list[Op]], dict[str, dict[str, Any]]]:
    """Each op that trains some but not all input channels keeps its weights in two parts: the
    trained channels (a parameter in SRAM, the update kernels' layout) and the frozen ones (flash);
    its kernels read them through the split (tinyc/split_weights.h, the op modules' lowering reads
    attrs["split"]). Returns the ops (split ones changed), steps to run before op k (none today),
    and per weight tensor its split."""
    ops = list(g.ops)
    before: dict[int, list[Op]] = {}
    splits: dict[str, dict[str, Any]] = {}
    for k, op in enumerate(ops):
        up = updates.get(op.index) if "patch" not in op.attrs else None
        if up is None or not up.channels:
            continue
        w = lookup(op.kind).weights(op, g)
        if len(up.channels) >= w.in_channels:
            continue
        W = tensors[w.weight]
        axis = w.axis % len(W.shape)
        t_idx = w.along_axis(up.channels)
        f_idx = np.setdiff1d(np.arange(W.shape[axis]), t_idx)
        slot = np.zeros(W.shape[axis], np.uint16)
        slot[t_idx] = 0x8000 | np.arange(len(t_idx))
        slot[f_idx] = np.arange(len(f_idx))
        trained = Tensor(name=f"{W.name}/trained", shape=tuple(np.take(W.data, t_idx, axis).shape), dtype=W.dtype,
                         data=np.ascontiguousarray(np.take(W.data, t_idx, axis)), label=f"{W.label or W.name} (trained part)")
        frozen = Tensor(name=f"{W.name}/frozen", shape=tuple(np.take(W.data, f_idx, axis).shape), dtype=W.dtype,
                        data=np.ascontiguousarray(np.take(W.data, f_idx, axis)), label=f"{W.label or W.name} (frozen part)")
        tensors[trained.name] = trained
        tensors[frozen.name] = frozen
        split = dict(trained=trained.name, frozen=frozen.name, axis=axis, t_idx=t_idx, f_idx=f_idx, slot=slot,
                     outer=int(np.prod(W.shape[:axis], dtype=np.int64)), len=int(W.shape[axis]),
                     inner=int(np.prod(W.shape[axis + 1:], dtype=np.int64)), n_trained=len(t_idx),
                     n_frozen=len(f_idx))
        ops[k] = dataclasses.replace(op, attrs={**op.attrs, "split": split})
        splits[W.name] = split
    return ops, before, splits


def join_split(tg: "TrainGraph", params: dict[str, np.ndarray]) -> dict[str, np.ndarray]:
    """Trained parameters by model tensor: split weights put back together with their frozen part."""
    out = dict(params)
    for name, s in tg.splits.items():
        if s["trained"] not in out:
            continue
        whole = np.array(tg.model.t(name).data)
        idx = [slice(None)] * whole.ndim
        idx[s["axis"]] = s["t_idx"]
        whole[tuple(idx)] = out.pop(s["trained"])
        out[name] = whole
    return out


def conv_layers(g: Graph) -> tuple[list[Op], Op]:
    """The weighted ops before the classifier (TTE's conv positions) and the classifier."""
    logits, _, classifier = find_logits(g)
    convs = [op for op in weighted_ops(g) if op is not classifier]
    return convs, classifier


def update_masks(tg: TrainGraph) -> dict[str, np.ndarray]:
    """Per trained parameter tensor, 1.0 on the elements the step updates (the float reference
    fine-tune uses the same mask)."""
    out: dict[str, np.ndarray] = {}
    for op in [*tg.convs, tg.classifier]:
        up = tg.updates.get(op.index)
        if up is None:
            continue
        w = lookup(op.kind).weights(op, tg.forward)
        if up.channels:
            out[w.weight] = w.mask(up.channels)
        if up.bias and w.bias is not None:
            out[w.bias] = np.ones(tg.forward.t(w.bias).shape)
    return out


def describe_updates(tg: TrainGraph) -> list[dict[str, Any]]:
    """Per updated op: what it trains (for the report and --json)."""
    out = []
    for op in [*tg.convs, tg.classifier]:
        up = tg.updates.get(op.index)
        if up is None:
            continue
        w = lookup(op.kind).weights(op, tg.forward)
        out.append({"op": op.index, "kind": op.kind, "bias": bool(up.bias and w.bias is not None),
                    "channels": len(up.channels), "of_channels": w.in_channels})
    return out
