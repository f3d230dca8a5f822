"""The tracer: every op that runs inside ``with trace() as t:``, recorded and timed.

::

    with trace() as t:
        t.watch_position(x, axis=1)          # optional: follow token 0 of x
        out, _ = layer(x)
        out.sum().backward()
    print(t.report())                        # per-op-kind table, work, span, critical path
    t.path_length(out, axis=1)               # ops from token 0 of x to the last output token

How it hooks into the engine: ``tensor._tracer`` is None when no trace runs, and
``Function.apply`` / ``run_backward`` test that one global before every op (a single
``is None`` check: the cost of the tracer when it is off). While a trace runs they
hand each op to :meth:`Trace.run_forward` and :meth:`Trace.run_backward`, which run
it exactly as the engine would (same arrays in, same arrays out: tracing never
changes a result) and around it record a :class:`TraceNode`:

* name, phase ("forward" or "backward"), input and output shapes, dtype, device;
* FLOPs (the op's own ``flops()`` / ``backward_flops()``) and bytes read and written;
* wall time, read with :func:`backend.timer`, which waits for the GPU to finish
  first: on a GPU an unsynchronised clock measures the kernel *launch*, not the work;
* ``deps``: the nodes whose outputs this op read. A forward op depends on the
  nodes that made its input tensors (``tensor._trace_node``); a backward op on the
  backward nodes that sent it its output's gradient, and it names its forward op
  in ``forward_node`` (backward reads what forward saved, so it waits for it too);
* ``steps``: the op's own parallel depth -- how many dependent steps it takes with
  unlimited processors, as the op itself says (its ``span()``; ``backward_span()``
  for its backward; see ``ops/dependence.py``). With it the span of a graph counts
  the true sequential work, not just the number of ops; a fused op (the LSTM cell,
  blockwise attention) reports the steps of the equations it fuses, not 1.

The graph analysis (critical path, work and span, tables, export, plots) lives in
:mod:`minitransformer.analysis`; :class:`Trace` has a method for each.

Following one token (maximum path length)
-----------------------------------------
:meth:`Trace.watch_position` marks token ``position`` of a tensor along ``axis``.
From then on every op's output carries, next to its values, a *depth array* of
the same shape: for each element, the largest number of ops on any chain of
data dependences from the watched token to that element, or -inf when the
element does not depend on the token at all. Each op computes its output's depth
from its inputs' depths by its *dependence structure* (which input elements each
output element is a function of), which the op states in its ``depends`` method:

* elementwise ops: ``1 + max`` of the (broadcast) input depths, element by element;
* ``matmul`` C = A B: C[i, j] reads row i of A and column j of B, so
  ``1 + max(max_k depth_A[i, k], max_k depth_B[k, j])``;
* reductions, softmax (and nn's masked softmax), layer norm: the max over the
  reduced axes;
* reshape, transpose, indexing, concat, stack: the same data movement applied to
  the depth array (an element's dependences travel with it);
* the fused LSTM cell: unit k of the new state reads unit k of each gate;
* any op without a rule: every output element depends on every input element
  (an over-estimate, never an under-estimate).

This is exact for the structure -- it follows which values *can* influence which,
whatever the numbers happen to be (a ReLU that outputs 0 still passes the path) --
and it needs no second run and no perturbation. A second depth array counts only
matmuls. The maximum path length of a layer is the depth of its output at the last
token: the number of sequential ops that information from the first input token
must pass through to reach the last output token.
"""
import contextlib
import itertools
import time

from . import _tensor as _engine   # the engine module, where the ``_tracer`` hook lives
from . import analysis, backend, graph_picture
from ._tensor import Tensor
from .ops import dependence, matmul

# Node ids are unique across all traces of the process, so a tensor made inside an
# earlier trace (its ``_trace_node`` is that trace's id) is never mistaken for one
# of this trace's nodes.
_node_ids = itertools.count(1)

NEG_INF = dependence.NEG_INF


class TraceNode:
    """One op run recorded by a trace.

    Fields: ``id`` (unique in the process), ``index`` (position in its trace),
    ``name`` (op name, e.g. "matmul"), ``phase`` ("forward"/"backward"),
    ``input_shapes`` (list of tuples), ``output_shapes`` (list of tuples: one for a
    forward op, one per input gradient for a backward op), ``dtype``, ``device``,
    ``flops``, ``bytes_read``, ``bytes_written``, ``start`` and ``time`` (seconds,
    from the trace's start and the op's duration), ``deps`` (ids of the nodes it
    waits for), ``forward_node`` (for a backward node: the id of its forward node),
    ``steps`` (its parallel depth).
    """

    __slots__ = ("id", "index", "name", "phase", "input_shapes", "output_shapes", "dtype",
                 "device", "flops", "bytes_read", "bytes_written", "start", "time", "deps",
                 "forward_node", "steps")

    def __init__(self, **fields):
        for key in self.__slots__:
            setattr(self, key, fields.get(key))

    @property
    def is_matmul(self):
        return self.name == "matmul"

    def as_dict(self):
        return {key: getattr(self, key) for key in self.__slots__}

    def __repr__(self):
        ins = ", ".join(map(str, self.input_shapes))
        outs = ", ".join(map(str, self.output_shapes))
        return (f"TraceNode(#{self.index} {self.name} {self.phase}: {ins} -> {outs}, "
                f"{self.flops} FLOPs, deps={self.deps})")


class Trace:
    """The record of one ``with trace()`` block: ``nodes``, in the order the ops ran.

    Recording order is a topological order of the graph (an op runs after the ops
    it reads), which the analysis relies on.
    """

    def __init__(self):
        self.nodes = []
        self._by_id = {}        # node id -> TraceNode
        self._sources = {}      # id(tensor) -> (tensor, depth arrays) for watched tensors
        self._depths = {}       # node id -> (ops depth, matmul depth) of its output
        self._clock_zero = None
        self.duration = None

    # ---------------------------------------------------------------- engine hooks
    def run_forward(self, fn, inputs, arrays):
        """Run ``fn.forward(*arrays)`` as ``Function.apply`` would, and record it.

        Returns the output Tensor with ``_trace_node`` set to the new node's id.
        """
        device = inputs[0].device
        start = backend.timer(device)
        out_array = fn.forward(*arrays)
        end = backend.timer(device)
        out = Tensor(out_array)
        deps = []
        for t in inputs:
            if t._trace_node in self._by_id and t._trace_node not in deps:
                deps.append(t._trace_node)
        # flops() reads what forward saved, so ask now (backward frees it later).
        node = self._add(
            name=fn.op_name, phase="forward",
            input_shapes=[tuple(a.shape) for a in arrays],
            output_shapes=[tuple(out.data.shape)], dtype=str(out.data.dtype), device=device,
            flops=int(fn.flops()), bytes_read=sum(int(a.nbytes) for a in arrays),
            bytes_written=int(out.data.nbytes), start=start - self._clock_zero,
            time=end - start, deps=deps, forward_node=None,
            steps=op_span(fn))
        out._trace_node = node.id
        # Backward finds its forward node through the op object (freed with it).
        fn._trace_forward_node = node.id
        if self._sources:
            depths = self._propagate_depths(fn, inputs, arrays, out.data)
            if depths is not None:
                self._depths[node.id] = depths
        return out

    def run_backward(self, fn, out_grad, sources):
        """Run ``fn.backward(out_grad)`` as ``run_backward`` would, and record it.

        ``sources``: ids of the backward nodes whose gradients were summed into
        ``out_grad`` (empty for the op backward starts from). Returns the input
        gradients and the new node's id, which the engine passes on upstream.
        """
        device = backend.device_of(out_grad)
        forward_id = getattr(fn, "_trace_forward_node", None)
        forward = self._by_id.get(forward_id)
        steps = op_backward_span(fn)        # asked before backward: it reads what forward saved
        start = backend.timer(device)
        in_grads = fn.backward(out_grad)
        end = backend.timer(device)
        grads = [g for g in in_grads if g is not None]
        # Backward reads the output gradient and (roughly) what forward read.
        bytes_read = int(out_grad.nbytes) + (forward.bytes_read if forward else 0)
        node = self._add(
            name=fn.op_name, phase="backward",
            input_shapes=[tuple(out_grad.shape)],
            output_shapes=[tuple(g.shape) for g in grads], dtype=str(out_grad.dtype),
            device=device, flops=int(fn.backward_flops()), bytes_read=bytes_read,
            bytes_written=sum(int(g.nbytes) for g in grads), start=start - self._clock_zero,
            time=end - start, deps=[s for s in dict.fromkeys(sources) if s in self._by_id],
            forward_node=forward.id if forward else None,
            steps=steps)
        return in_grads, node.id

    def _add(self, **fields):
        node = TraceNode(id=next(_node_ids), index=len(self.nodes), **fields)
        self.nodes.append(node)
        self._by_id[node.id] = node
        return node

    # ---------------------------------------------------------------- lookups
    def node(self, node_id):
        """The node with this id (``tensor._trace_node`` or an id in ``deps``)."""
        return self._by_id[node_id]

    def node_of(self, tensor):
        """The node that produced ``tensor`` in this trace, or None."""
        return self._by_id.get(tensor._trace_node)

    def forward_nodes(self):
        return [n for n in self.nodes if n.phase == "forward"]

    def backward_nodes(self):
        return [n for n in self.nodes if n.phase == "backward"]

    # ---------------------------------------------------------------- following a token
    def watch_position(self, tensor, axis=1, position=0):
        """Follow token ``position`` of ``tensor`` along ``axis`` through later ops.

        Call it inside the ``with`` block before the ops that read ``tensor``. The
        tensor is the *source*: its elements at that position have depth 0.
        """
        xp = backend.array_module(tensor.data)
        axis %= tensor.ndim
        depth = xp.full(tensor.shape, NEG_INF)
        index = (slice(None),) * axis + (position,)
        depth[index] = 0.0
        # Keep the tensor itself, so that its id() cannot be reused while watched.
        self._sources[id(tensor)] = (tensor, (depth, depth.copy()))

    def path_length(self, output, axis=1, position=-1):
        """Longest chain of ops from the watched token to ``output``'s token ``position``.

        Returns ``{"ops": ..., "matmuls": ...}`` (each the maximum over all chains:
        the longest chain in ops and the chain with the most matmuls), or None when
        that output token does not depend on the watched token at all.
        """
        depths = self._depths.get(output._trace_node)
        if depths is None:
            return None
        axis %= output.ndim
        index = (slice(None),) * axis + (position,)
        ops, matmuls = (float(d[index].max()) for d in depths)
        if ops == NEG_INF:
            return None
        return {"ops": int(ops), "matmuls": int(matmuls)}

    def depth_of(self, tensor):
        """The ops-depth array of ``tensor`` (see the module docstring), or None."""
        depths = self._depths.get(tensor._trace_node)
        return None if depths is None else depths[0]

    def _propagate_depths(self, fn, inputs, arrays, out_array):
        """(ops depth, matmul depth) arrays of ``fn``'s output, or None when no input
        depends on a watched token."""
        per_input = []
        for t in inputs:
            if id(t) in self._sources:
                per_input.append(self._sources[id(t)][1])
            elif t._trace_node in self._depths:
                per_input.append(self._depths[t._trace_node])
            else:
                per_input.append(None)
        if all(d is None for d in per_input):
            return None
        depends = op_depends(fn)
        xp = backend.array_module(out_array)
        result = []
        for channel, step in ((0, 1.0), (1, 1.0 if isinstance(fn, matmul.MatMul) else 0.0)):
            depths = [None if d is None else d[channel] for d in per_input]
            reached = depends(depths, out_array)
            result.append(xp.broadcast_to(reached, out_array.shape) + step)
        return tuple(result)

    # ---------------------------------------------------------------- analysis
    def critical_path(self, phase="forward"):
        """The longest chain of dependent ops (see :func:`analysis.critical_path`)."""
        return analysis.critical_path(self.nodes, phase)

    def summary(self, phase="forward", processors=(1, 8, 64, 1024)):
        """Work, span, critical path, parallelism and Brent bounds as a dict."""
        return analysis.summary(self.nodes, phase, processors)

    def op_table(self, phase="all"):
        """Per-op-kind rows: count, FLOPs, bytes, time and share of time; matmuls first."""
        return analysis.op_table(self.nodes, phase)

    def levels(self, phase="forward"):
        """The ops grouped by their step in a schedule with unlimited processors."""
        return analysis.levels(self.nodes, phase)

    def report(self, phase="forward"):
        """A printable report: the op-kind table and the summary."""
        return analysis.report(self.nodes, phase)

    def listing(self, phase="all", limit=None):
        """One line per op: index, step, name, shapes, FLOPs, time, dependencies."""
        return analysis.listing(self.nodes, phase, limit)

    def to_csv(self, path):
        return analysis.nodes_to_csv(self.nodes, path)

    def to_json(self, path):
        return analysis.trace_to_json(self.nodes, path)

    def export_chrome_trace(self, path):
        """Write Trace Event Format JSON for Perfetto (ui.perfetto.dev) or
        chrome://tracing: the measured timeline and the ideal schedule with
        unlimited processors (see :func:`analysis.export_chrome_trace`)."""
        return analysis.export_chrome_trace(self.nodes, path)

    def to_svg(self, path=None, phase="forward", title=None):
        """The graph of ``phase`` ("forward", "backward" or "all") as SVG text, one row
        per step of the ideal schedule, the critical path bold; written to ``path``
        when given (see :mod:`minitransformer.graph_picture`)."""
        return graph_picture.trace_to_svg(self.nodes, phase, path, title)

    def to_dot(self, phase="forward"):
        """The same graph as Graphviz DOT text (``dot -Tsvg`` where Graphviz is installed)."""
        return graph_picture.trace_to_dot(self.nodes, phase)

    def plot_timeline(self, path, title=None):
        """Write a timeline PNG of the ops; returns False when matplotlib is missing."""
        return analysis.plot_timeline(self.nodes, path, title)

    def __len__(self):
        return len(self.nodes)

    def __repr__(self):
        return f"<Trace of {len(self.nodes)} ops>"


@contextlib.contextmanager
def trace():
    """Record every op run inside the block (forward and backward); yields a Trace."""
    if _engine._tracer is not None:
        raise RuntimeError("trace(): a trace is already running; traces do not nest")
    recorder = Trace()
    recorder._clock_zero = _drained_clock()
    _engine._tracer = recorder
    try:
        yield recorder
    finally:
        _engine._tracer = None
        recorder.duration = _drained_clock() - recorder._clock_zero


def _drained_clock():
    """A clock reading after every device has finished its queued work: the traced ops
    may run on the GPU while the default device is the CPU, so waiting for the default
    device alone would time the launches, not the work."""
    if backend.gpu_available():
        backend.synchronize("gpu")
    return time.perf_counter()


# ---------------------------------------------------------------- asking the op
# Each op carries its instrument data beside flops() (see ops/dependence.py); an op
# written outside the library may not, and then counts 1 step and is taken to make
# every output element from every input element.
def op_span(fn):
    """Parallel steps of op ``fn``'s forward: its ``span()``, or 1."""
    span = getattr(fn, "span", None)
    return 1 if span is None else int(span())


def op_backward_span(fn):
    """Parallel steps of op ``fn``'s backward: its ``backward_span()``, else its span."""
    backward_span = getattr(fn, "backward_span", None)
    return op_span(fn) if backward_span is None else int(backward_span())


def op_depends(fn):
    """Op ``fn``'s dependence rule ``depends(depths, out)``, or "everything"."""
    return getattr(fn, "depends", None) or dependence.everything
