"""The tracer and its analysis: FLOP counts, dependencies, critical paths, path lengths.

The recurrent and attention computations here are written with functional ops,
so that these tests check the tracer alone, whatever the nn layers do; a few tests
at the end run the nn layers too when they exist.
"""
import json
import math

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import analysis
from minitransformer.trace import trace

from .conftest import to_host

from minitransformer import _tensor as _engine   # the engine module (mt.tensor is a function)


# ---------------------------------------------------------------- small models
def rnn_forward(x, weight_ih, weight_hh, bias):
    """An Elman RNN over x (batch, n, d): h[t] = tanh(x[t] W_ih + b + h[t-1] W_hh)."""
    x_proj = x @ weight_ih + bias                   # all steps at once: (batch, n, d)
    hidden = mt.zeros(x.shape[0], weight_hh.shape[0], dtype=x.dtype, device=x.device)
    outputs = []
    for t in range(x.shape[1]):                     # step t waits for step t-1
        hidden = mt.tanh(x_proj[:, t] + hidden @ weight_hh)
        outputs.append(hidden)
    return mt.stack(outputs, axis=1)                # (batch, n, d)


def attention_forward(x, weight_q, weight_k, weight_v):
    """Single-head self-attention over x (batch, n, d)."""
    q, k, v = x @ weight_q, x @ weight_k, x @ weight_v
    scores = q @ k.transpose(0, 2, 1) / math.sqrt(x.shape[-1])   # (batch, n, n)
    return mt.softmax(scores, axis=-1) @ v                      # (batch, n, d)


def weights(d, count, device="cpu", dtype="float32"):
    return [mt.randn(d, d, dtype=dtype, device=device, requires_grad=True) for _ in range(count)]


def traced(model, n, d=8, backward=False, device="cpu"):
    """(trace, output) of ``model`` over a random (1, n, d) input, token 0 watched."""
    mt.manual_seed(1)
    x = mt.randn(1, n, d, device=device)
    params = weights(d, 3, device) if model is attention_forward else \
        weights(d, 2, device) + [mt.randn(d, device=device, requires_grad=True)]
    with trace() as t:
        t.watch_position(x, axis=1, position=0)
        out = model(x, *params)
        if backward:
            out.sum().backward()
    return t, out


# ---------------------------------------------------------------- FLOP counts
def _only_node(fn, *args):
    with trace() as t:
        fn(*args)
    assert len(t.nodes) == 1
    return t.nodes[0]


@pytest.mark.parametrize("shape_a, shape_b, expected", [
    ((3, 4), (4, 5), 2 * 3 * 4 * 5),                 # 2·m·k·n
    ((2, 3, 4), (2, 4, 5), 2 * 2 * 3 * 4 * 5),       # batched: times the batch
    ((2, 3, 4), (4, 5), 2 * 2 * 3 * 4 * 5),          # batch of a, shared b
    ((6, 2, 3, 4), (2, 4, 5), 2 * 12 * 3 * 4 * 5),   # broadcast batch axes
    ((4,), (4, 5), 2 * 4 * 5),                       # vector-matrix
    ((4,), (4,), 2 * 4),                             # dot product
])
def test_matmul_flops_are_2mkn(shape_a, shape_b, expected):
    a, b = mt.randn(*shape_a), mt.randn(*shape_b)
    node = _only_node(mt.matmul, a, b)
    assert node.name == "matmul" and node.flops == expected
    assert node.input_shapes == [shape_a, shape_b]


def test_elementwise_flops_are_one_per_output_element():
    a, b, row = mt.randn(3, 4), mt.randn(3, 4), mt.randn(4)
    assert _only_node(mt.add, a, b).flops == 12
    assert _only_node(mt.mul, a, row).flops == 12     # broadcast: counted on the output
    assert _only_node(mt.tanh, a).flops == 12
    assert _only_node(mt.exp, row).flops == 4


def test_reduction_flops_are_one_per_input_element():
    x = mt.randn(3, 4, 5)
    assert _only_node(mt.sum, x).flops == 60
    assert _only_node(lambda t: mt.sum(t, axis=1), x).flops == 60
    assert _only_node(lambda t: mt.mean(t, axis=(0, 2)), x).flops == 60
    assert _only_node(lambda t: mt.max(t, axis=-1), x).flops == 60


def test_matmul_backward_flops_count_both_products():
    a, b = mt.randn(3, 4, requires_grad=True), mt.randn(4, 5, requires_grad=True)
    with trace() as t:
        (a @ b).sum().backward()
    (matmul_back,) = [n for n in t.backward_nodes() if n.name == "matmul"]
    assert matmul_back.flops == 2 * (2 * 3 * 4 * 5)   # dA = dC Bᵀ and dB = Aᵀ dC


def test_node_records_shapes_dtype_device_bytes(device):
    a = mt.randn(3, 4, dtype="float64", device=device)
    b = mt.randn(4, 5, dtype="float64", device=device)
    node = _only_node(mt.matmul, a, b)
    assert node.output_shapes == [(3, 5)]
    assert node.dtype == "float64" and node.device == device
    assert node.bytes_read == (12 + 20) * 8 and node.bytes_written == 15 * 8
    assert node.time >= 0 and node.start >= 0


# ---------------------------------------------------------------- dependencies
def test_forward_dependencies_follow_the_data():
    a, b = mt.randn(2, 2), mt.randn(2, 2)
    with trace() as t:
        c = a @ b          # reads only leaves: no deps
        d = mt.tanh(c)
        e = d + c
    node_c, node_d, node_e = t.nodes
    assert node_c.deps == [] and node_d.deps == [node_c.id]
    assert node_e.deps == [node_d.id, node_c.id]
    assert t.node_of(e) is node_e


def test_tensors_from_an_earlier_trace_are_leaves_in_a_new_one():
    a = mt.randn(2, 2)
    with trace():
        b = mt.tanh(a)
    with trace() as t:
        mt.exp(b)
    assert t.nodes[0].deps == []


def test_backward_ops_are_traced_and_linked_to_their_forward_ops():
    t, out = traced(rnn_forward, 4, backward=True)
    forward, backward = t.forward_nodes(), t.backward_nodes()
    assert backward, "backward ops must be traced"
    for node in backward:
        twin = t.node(node.forward_node)
        assert twin.phase == "forward" and twin.name == node.name
        assert all(t.node(dep).phase == "backward" for dep in node.deps)
    # Every forward op that reaches the loss through a differentiable path has one
    # backward node, and they come in reverse order.
    linked = [n.forward_node for n in backward]
    assert len(linked) == len(set(linked))
    assert linked[0] == forward[-1].id                  # backward starts at the loss (sum)
    assert backward[0].deps == []
    # The backward critical path mirrors the forward one.
    assert t.critical_path("backward").ops >= t.critical_path("forward").ops - 2


def test_trace_does_not_change_outputs_or_gradients(device):
    for model, count in ((rnn_forward, 2), (attention_forward, 3)):
        results = []
        for tracing in (False, True):
            mt.manual_seed(3)
            x = mt.randn(2, 5, 6, device=device, requires_grad=True)
            params = weights(6, count, device)
            if model is rnn_forward:
                params.append(mt.randn(6, device=device, requires_grad=True))
            if tracing:
                with trace() as t:
                    t.watch_position(x, axis=1)
                    out = model(x, *params)
                    (out * out).sum().backward()
                assert len(t.backward_nodes()) > 0
            else:
                out = model(x, *params)
                (out * out).sum().backward()
            results.append([to_host(out)] + [to_host(p.grad) for p in [x] + params])
        for untraced, with_trace in zip(*results):
            assert np.array_equal(untraced, with_trace)


def test_no_trace_means_no_tracer_and_traces_do_not_nest():
    assert _engine._tracer is None
    with pytest.raises(RuntimeError, match="nest"):
        with trace():
            with trace():
                pass
    assert _engine._tracer is None
    with pytest.raises(ValueError):
        with trace():
            raise ValueError("inside")
    assert _engine._tracer is None               # restored after an exception
    out = mt.tanh(mt.randn(3))                   # untraced ops leave no trace node
    assert out._trace_node is None


# ---------------------------------------------------------------- critical paths
NS = (2, 3, 4, 5, 6)


def test_rnn_critical_path_grows_by_the_same_ops_per_step():
    lengths = [traced(rnn_forward, n)[0].summary()["sequential_ops"] for n in NS]
    steps = {b - a for a, b in zip(lengths, lengths[1:])}
    assert steps == {3}                              # matmul, add, tanh per step
    matmuls = [traced(rnn_forward, n)[0].summary()["sequential_matmuls"] for n in NS]
    # The projection, then one per step after the first (step 0's h0 @ W_hh reads
    # only the initial state, so it starts a chain of its own).
    assert matmuls == list(NS)


def test_attention_critical_path_does_not_grow_with_n():
    lengths = {traced(attention_forward, n)[0].summary()["sequential_ops"] for n in (2, 8, 32, 128)}
    assert len(lengths) == 1
    (length,) = lengths
    assert length <= 8


def test_rnn_levels_show_one_dependent_group_per_step():
    t, _ = traced(rnn_forward, 6)
    chain = t.critical_path().nodes
    tanhs = [n for n in chain if n.name == "tanh"]
    assert len(tanhs) == 6                           # every step's tanh is on the chain
    assert len(t.levels()) == t.summary()["sequential_ops"]


def test_parallelism_grows_with_n_for_attention_and_stays_flat_for_rnn():
    ns = (8, 16, 32, 64)
    rnn = [traced(rnn_forward, n)[0].summary()["parallelism"] for n in ns]
    attention = [traced(attention_forward, n)[0].summary()["parallelism"] for n in ns]
    assert all(b > 1.5 * a for a, b in zip(attention, attention[1:]))
    assert max(rnn) / min(rnn) < 1.2


def test_work_span_and_brent_bounds_are_consistent():
    t, _ = traced(attention_forward, 16, backward=True)
    for phase in ("forward", "backward", "all"):
        s = t.summary(phase, processors=(1, 4, 10 ** 9))
        assert s["work_flops"] == sum(n.flops for n in analysis.select(t.nodes, phase))
        assert s["parallelism"] == pytest.approx(s["work_flops"] / s["span_steps"])
        assert s["brent"][1] == (s["work_flops"], s["work_flops"])
        low, high = s["brent"][4]
        assert s["work_flops"] / 4 <= low <= high
        assert s["brent"][10 ** 9][0] == s["span_steps"]
    whole, forward = t.summary("all"), t.summary("forward")
    assert whole["sequential_ops"] > forward["sequential_ops"]


# ---------------------------------------------------------------- maximum path length
def test_path_length_rnn_grows_linearly_attention_is_constant():
    rnn = []
    for n in NS:
        t, out = traced(rnn_forward, n)
        rnn.append(t.path_length(out, axis=1, position=-1)["ops"])
    assert {b - a for a, b in zip(rnn, rnn[1:])} == {3}
    paths = []
    for n in (2, 8, 32):
        t, out = traced(attention_forward, n)
        paths.append(t.path_length(out, axis=1, position=-1))
    assert paths[0] == paths[1] == paths[2]
    # x -> k (matmul) -> transpose -> scores (matmul) -> div -> softmax -> @ v (matmul)
    assert paths[0] == {"ops": 6, "matmuls": 3}


def test_path_length_follows_only_real_dependences():
    x = mt.randn(1, 4, 3)
    w = mt.randn(3, 3)
    with trace() as t:
        t.watch_position(x, axis=1, position=0)
        later = x[:, 1:] @ w                 # never reads token 0
        first = mt.tanh(x[:, :1] @ w)       # reads only token 0
        mixed = mt.concat([first, later], axis=1)
        total = mt.sum(mixed, axis=1)       # reads every token
    assert t.path_length(later, axis=1, position=0) is None
    assert t.path_length(first, axis=1, position=0) == {"ops": 3, "matmuls": 1}
    assert t.path_length(mixed, axis=1, position=-1) is None
    assert t.path_length(mixed, axis=1, position=0) == {"ops": 4, "matmuls": 1}
    assert t.path_length(total, axis=0, position=0) == {"ops": 5, "matmuls": 1}


def test_path_length_through_a_causal_rnn_does_not_flow_backwards():
    t, out = traced(rnn_forward, 5)
    # Output token 0 is reached by the first step only; no output token is unreached.
    assert t.path_length(out, axis=1, position=0)["ops"] == 2 + 3 + 1  # proj, +b, step, stack
    depth = t.depth_of(out)
    assert np.all(np.isfinite(to_host(depth)))


@pytest.mark.slow
# ---------------------------------------------------------------- reports and export
def test_report_table_lists_matmuls_first_and_exports(tmp_path):
    t, _ = traced(attention_forward, 8, backward=True)
    rows = t.op_table()
    assert rows[0]["name"] == "matmul"
    assert sum(r["count"] for r in rows) == len(t.nodes)
    assert sum(r["time_share"] for r in rows) == pytest.approx(1.0)
    text = t.report("all")
    assert "critical path" in text and "parallelism" in text
    assert "matmul" in t.listing()
    t.to_csv(tmp_path / "trace.csv")
    lines = (tmp_path / "trace.csv").read_text().splitlines()
    assert len(lines) == len(t.nodes) + 1 and lines[0].startswith("index,id,name,phase")
    t.to_json(tmp_path / "trace.json")
    data = json.loads((tmp_path / "trace.json").read_text())
    assert len(data["nodes"]) == len(t.nodes)
    assert data["summary"]["forward"]["sequential_ops"] == t.summary()["sequential_ops"]
    wrote = t.plot_timeline(tmp_path / "timeline.png")
    assert wrote == (analysis.pyplot() is not None)


def test_fit_exponent_recovers_powers():
    ns = [8, 16, 32, 64]
    assert analysis.fit_exponent(ns, [3 * n ** 2 for n in ns]) == pytest.approx(2)
    assert analysis.fit_exponent(ns, [7 for _ in ns]) == pytest.approx(0)
    assert analysis.local_exponent(ns, [n + n * n for n in ns]) == pytest.approx(
        math.log((64 + 64 ** 2) / (32 + 32 ** 2)) / math.log(2))


# ---------------------------------------------------------------- the nn layers
def _nn_layers_or_skip():
    pytest.importorskip("minitransformer.nn.recurrent")
    pytest.importorskip("minitransformer.nn.attention")


def test_nn_lstm_training_step_is_traced_with_backward():
    _nn_layers_or_skip()
    from minitransformer.nn.recurrent import LSTM
    lstm = LSTM(4, 4, batch_first=True)
    x = mt.randn(1, 5, 4)
    with trace() as t:
        out, _ = lstm(x)
        out.sum().backward()
    assert t.backward_nodes() and all(n.forward_node for n in t.backward_nodes())
    assert lstm.weight_hh_l0.grad is not None


# ---------------------------------------------------------------- instrument data on the op
def _op_classes():
    """Every op class of the library: the primitive ops and the fused ones in nn/."""
    from minitransformer.nn import attention, blockwise_attention, recurrent
    from minitransformer.ops import elementwise, matmul, nn as nn_ops, reduction, shape
    modules = (elementwise, matmul, nn_ops, reduction, shape, attention, blockwise_attention,
               recurrent)
    return [cls for module in modules for cls in vars(module).values()
            if isinstance(cls, type) and issubclass(cls, _engine.Function)
            and cls is not _engine.Function and cls.__module__ == module.__name__
            and not cls.__name__.startswith("_")]


def test_every_op_carries_its_span_and_dependence_rule():
    classes = _op_classes()
    assert len(classes) > 20
    missing = [cls.__name__ for cls in classes
               if not (callable(getattr(cls, "span", None)) and callable(getattr(cls, "depends", None)))]
    assert missing == []


def test_the_tracer_asks_the_op_not_its_name():
    class Fused(_engine.Function):
        name = "matmul"            # a misleading name: the tracer must not believe it

        def forward(self, x):
            return x * 2

        def backward(self, grad):
            return (grad * 2,)

        def span(self):
            return 7

        def depends(self, depths, out):
            return depths[0]

    class Unknown(_engine.Function):
        name = "softmax"           # says nothing of itself: 1 step, reads everything

        def forward(self, x):
            return x.copy()

        def backward(self, grad):
            return (grad,)

    x = mt.randn(3, 4)
    with trace() as t:
        t.watch_position(x, axis=1, position=0)
        fused = Fused.apply(x)
        unknown = Unknown.apply(x)
    assert [n.steps for n in t.nodes] == [7, 1]
    # Fused's rule keeps column 0 alone; Unknown's default spreads it everywhere.
    assert t.path_length(fused, axis=1, position=-1) is None
    assert t.path_length(unknown, axis=1, position=-1)["ops"] == 1


def _lstm_cell_unfused(gates, cell, hidden_proj=None):
    """The textbook LSTM cell equations written with functional ops."""
    size = cell.shape[-1]
    if hidden_proj is not None:
        gates = gates + hidden_proj
    input_gate = mt.sigmoid(gates[:, :size])
    forget_gate = mt.sigmoid(gates[:, size:2 * size])
    candidate = mt.tanh(gates[:, 2 * size:3 * size])
    output_gate = mt.sigmoid(gates[:, 3 * size:])
    new_cell = forget_gate * cell + input_gate * candidate
    return output_gate * mt.tanh(new_cell), new_cell


def _lstm_cell_fused(gates, cell, hidden_proj=None):
    from minitransformer.nn.recurrent import LSTMCellUpdate
    inputs = (gates, cell) if hidden_proj is None else (gates, hidden_proj, cell)
    both = LSTMCellUpdate.apply(*inputs)
    return both[0], both[1]


@pytest.mark.parametrize("add_folded_in", [False, True], ids=["gates", "x_proj + hidden_proj"])
def test_the_fused_lstm_cell_spans_as_many_steps_as_its_equations(add_folded_in):
    _nn_layers_or_skip()
    gates, cell = mt.randn(2, 4 * 5), mt.randn(2, 5)
    hidden_proj = mt.randn(2, 4 * 5) if add_folded_in else None
    spans = []
    for cell_update in (_lstm_cell_unfused, _lstm_cell_fused):
        with trace() as t:
            cell_update(gates, cell, hidden_proj)
        nodes = [n for n in t.nodes if cell_update is _lstm_cell_unfused or
                 n.name == "lstmcellupdate"]   # the fused op alone, not the slices after it
        spans.append(analysis.span_steps(nodes))
    unfused, fused = spans
    # (add,) slice, sigmoid, f·c, + i·g, tanh, o·tanh(c)
    assert unfused == 6 + add_folded_in
    assert fused == unfused


def test_the_fused_lstm_cell_reads_the_same_elements_as_its_equations():
    _nn_layers_or_skip()
    mt.manual_seed(4)
    for watched in (0, 7, 13, 19):   # a unit of the input, forget, candidate, output gate
        reached = []
        for cell_update in (_lstm_cell_unfused, _lstm_cell_fused):
            gates, cell = mt.randn(2, 4 * 5), mt.randn(2, 5)
            with trace() as t:
                t.watch_position(gates, axis=1, position=watched)
                hidden, new_cell = cell_update(gates, cell)
            reached.append([np.isfinite(to_host(d)) if d is not None else np.zeros((2, 5), bool)
                            for d in (t.depth_of(hidden), t.depth_of(new_cell))])
        (hidden_a, cell_a), (hidden_b, cell_b) = reached
        assert np.array_equal(hidden_a, hidden_b) and np.array_equal(cell_a, cell_b)
        unit, gate = watched % 5, watched // 5
        assert hidden_a[:, unit].all() and hidden_a.sum() == 2         # only its unit
        assert cell_a[:, unit].all() == (gate != 3)                     # o does not reach c


def test_blockwise_attention_span_grows_with_the_key_blocks():
    _nn_layers_or_skip()
    from minitransformer.nn.attention import scaled_dot_product_attention
    from minitransformer.nn.blockwise import blockwise_attention
    forward, backward, standard = [], [], []
    for n in (8, 16, 32, 64):        # 2, 4, 8, 16 blocks of 4 keys
        q = mt.randn(1, 2, n, 8, requires_grad=True)
        with trace() as t:
            blockwise_attention(q, q, q, block_size=4).sum().backward()
        (fwd,) = [x for x in t.forward_nodes() if x.name == "blockwiseattention"]
        (bwd,) = [x for x in t.backward_nodes() if x.name == "blockwiseattention"]
        forward.append(fwd.steps)
        backward.append(bwd.steps)
        with trace() as t:
            scaled_dot_product_attention(q, q, q)
        standard.append(t.summary()["span_steps"])
    blocks = [2, 4, 8, 16]
    # The online softmax carries its running sums from block to block: the same number
    # of extra steps for every extra block (2 forward, 1 for dQ's sum in backward).
    per_block = {(b - a) / (m - k) for a, b, k, m in zip(forward, forward[1:], blocks, blocks[1:])}
    assert per_block == {2.0}
    per_block = {(b - a) / (m - k) for a, b, k, m in zip(backward, backward[1:], blocks, blocks[1:])}
    assert per_block == {1.0}
    # The whole score matrix at once grows only by its log-depth reductions.
    assert standard[-1] - standard[0] < forward[-1] - forward[0]
