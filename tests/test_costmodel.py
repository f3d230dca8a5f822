"""The cost model: the device rule, list scheduling, Brent's bounds, and the benchmark."""
import csv

import pytest

from minitransformer import costmodel
from minitransformer.benchmarks import predict, seq_scaling
from minitransformer.trace import TraceNode, trace


def node(i, deps=(), flops=0, read=0, written=0, name="add", phase="forward"):
    return TraceNode(id=i, index=i, name=name, phase=phase, input_shapes=[(4, 4), (4, 4)],
                     output_shapes=[(4, 4)], flops=flops, bytes_read=read, bytes_written=written,
                     deps=list(deps), forward_node=None, steps=1, time=0.0, start=0.0)


UNIT = costmodel.Device("unit", launch_s=1.0, matmul_flops_per_s=10.0, vector_flops_per_s=10.0,
                        bytes_per_s=100.0)


def test_an_op_costs_the_largest_of_launch_compute_and_memory():
    assert costmodel.op_cost(node(1, flops=5, read=10), UNIT).time == 1.0          # launch
    assert costmodel.op_cost(node(1, flops=50, read=10), UNIT).time == 5.0         # compute
    cost = costmodel.op_cost(node(1, flops=50, read=500, written=200), UNIT)
    assert (cost.time, cost.bound) == (7.0, "memory")
    # A view moves nothing; without overlap (the CPU) the parts add up.
    assert costmodel.op_cost(node(1, read=10**6, name="reshape"), UNIT).time == 1.0
    serial = UNIT.with_(launch_overlaps=False)
    assert costmodel.op_cost(node(1, flops=50, read=100), serial).time == 1.0 + 5.0 + 1.0


def test_one_stream_is_the_sum_and_counts_its_launch_share():
    nodes = [node(1), node(2, [1], flops=30)]
    p = costmodel.predict(nodes, UNIT)
    assert p["time_s"] == 4.0 and p["launch_s"] == 1.0 and p["launch_fraction"] == 0.25


def diamond():
    """1 -> (2, 3, 4) -> 5, and a separate chain 6 -> 7."""
    nodes = [node(1), node(2, [1]), node(3, [1]), node(4, [1]), node(5, [2, 3, 4]),
             node(6), node(7, [6])]
    times = {1: 1.0, 2: 3.0, 3: 2.0, 4: 2.0, 5: 1.0, 6: 4.0, 7: 4.0}
    return nodes, times


@pytest.mark.parametrize("p", [1, 2, 3, 8])
def test_list_schedule_respects_dependences_and_brent(p):
    nodes, times = diamond()
    s = costmodel.list_schedule(nodes, times, p)
    for n in nodes:
        for d in n.deps:
            assert s.start[n.id] >= s.start[d] + times[d] - 1e-12
    # No processor runs two ops at once.
    for proc in set(s.processor.values()):
        spans = sorted((s.start[i], s.start[i] + times[i]) for i in s.processor
                       if s.processor[i] == proc)
        assert all(a[1] <= b[0] + 1e-12 for a, b in zip(spans, spans[1:]))
    work, span = costmodel.work_and_span(nodes, times)
    lower, upper = costmodel.brent_bounds(work, span, p)
    assert lower - 1e-12 <= s.makespan <= upper + 1e-12


def test_one_processor_takes_the_work_and_many_take_the_critical_path():
    nodes, times = diamond()
    work, span = costmodel.work_and_span(nodes, times)
    assert (work, span) == (17.0, 8.0)
    assert costmodel.list_schedule(nodes, times, 1).makespan == work
    assert costmodel.list_schedule(nodes, times, 100).makespan == span


def traced(kind, n, batch=2, d=8):
    step = seq_scaling.training_step(kind, seq_scaling.make_layer(kind, d, 2, "cpu"),
                                     batch, n, d, "cpu")
    with trace() as t:
        step()
    return t.nodes


def test_traced_layers_lstm_path_grows_attention_path_does_not():
    # Launch-bound ops (1 s each, work free): the span counts the ops on the critical path.
    launch_only = UNIT.with_(matmul_flops_per_s=1e30, vector_flops_per_s=1e30, bytes_per_s=1e30)

    def span(kind, n):
        nodes = traced(kind, n)
        return costmodel.work_and_span(nodes, costmodel.op_times(nodes, launch_only))[1]
    lstm = [span("lstm", n) for n in (4, 8, 12)]
    assert lstm[2] - lstm[1] == lstm[1] - lstm[0] > 4      # a fixed number of ops per token
    assert span("attention", 8) == span("attention", 4)
    nodes = traced("lstm", 6)
    times = costmodel.op_times(nodes, costmodel.h200())
    work, s = costmodel.work_and_span(nodes, times)
    for p in (1, 2, 4, 64):
        t_p = costmodel.list_schedule(nodes, times, p).makespan
        assert max(work / p, s) * (1 - 1e-9) <= t_p <= (work / p + s) * (1 + 1e-9)
    assert costmodel.list_schedule(nodes, times, 1).makespan == pytest.approx(work)


def test_batch_extrapolation_matches_a_real_trace():
    one, two, four = (traced("attention", 4, batch=b) for b in (1, 2, 4))
    guessed = costmodel.extrapolate_batch(one, two, 1, 2, 4)
    for g, real in zip(guessed, four):
        assert (g.flops, g.bytes_read, g.bytes_written) == \
            (real.flops, real.bytes_read, real.bytes_written)


def test_matmul_rate_is_interpolated_on_log_flops():
    d = UNIT.with_(matmul_curve=((100, 1.0), (10000, 3.0)))
    assert (d.matmul_rate(10), d.matmul_rate(1000), d.matmul_rate(10**6)) == (1.0, 2.0, 3.0)


def test_predict_benchmark_quick(tmp_path, monkeypatch):
    # The fit would time the machine for seconds: a fixed device stands in.
    monkeypatch.setattr(predict, "fit_cpu", lambda repeats=5: costmodel.cpu(
        5e-6, 1e11, 1e9, 1e10, ((1e3, 1e10), (1e9, 1e11)), 5e9, 2**20))
    rows = predict.main(["--quick", "--out-dir", str(tmp_path), "--batch", "2", "--d", "8",
                         "--heads", "2", "--lengths", "4", "--sweep", "4", "8",
                         "--speedup-lengths", "4", "--repeats", "1", "--min-time", "0"])
    assert len(rows) == 4 and all(r["ratio"] > 0 for r in rows)
    for stem in ("predict", "predict_device", "predict_h200_sweep", "predict_h200_speedup"):
        text = (tmp_path / f"{stem}.csv").read_text()
        assert text.startswith("# predict on ")
    with open(tmp_path / "predict_h200_speedup.csv") as f:
        speed = list(csv.DictReader(line for line in f if not line.startswith("#")))
    assert {int(r["processors"]) for r in speed} == set(predict.PROCESSORS)
    assert all(float(r["brent_lower_ms"]) <= float(r["predicted_ms"]) * (1 + 1e-9) <=
               float(r["brent_upper_ms"]) * (1 + 1e-9) for r in speed)
