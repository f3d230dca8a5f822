"""The benchmarks at toy sizes: they run, write their CSVs, and count what they should.

No timing is judged here (a test machine's speed says nothing about the code);
the one correctness test checks the hand-written reference that the overhead
ratios are measured against: same outputs and gradients as the engine's layers.
"""
import csv

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from minitransformer.benchmarks import (
    common, matmul_peak, memory, overhead, reference, seq_scaling, tracer_cost, vs_pytorch,
)

TINY = dict(batch=2, dim=8, heads=2)


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_matmul_peak_runs(tmp_path):
    rows = matmul_peak.run(repeats=1, quick=True, min_time=0.0)
    assert matmul_peak.peak_gflops(rows) > 0
    common.write_csv(str(tmp_path / "matmul_peak.csv"), rows, "test")
    assert len(read_rows(tmp_path / "matmul_peak.csv")) == len(rows)


def test_seq_scaling_rows_and_tracer_counts(tmp_path):
    rows = seq_scaling.run(lengths=[4, 8], repeats=1, peak_gflops=1.0, out_dir=str(tmp_path),
                           quiet=True, min_time=0.0, **TINY)
    assert len(rows) == 2 * len(seq_scaling.LAYERS)
    assert all(r["status"] == "ok" and r["flops"] > 0 and r["peak_memory_mb"] > 0 for r in rows)
    seq_ops = {(r["layer"], r["n"]): r["sequential_ops"] for r in rows}
    # The argument in two lines: the recurrent critical path grows with n, attention's does not.
    assert seq_ops["lstm", 8] > seq_ops["lstm", 4]
    assert seq_ops["attention", 8] == seq_ops["attention", 4]
    assert len(read_rows(tmp_path / "seq_scaling.csv")) == len(rows)


def test_seq_scaling_skips_what_the_budget_cannot_hold():
    rows = seq_scaling.run(layers=["rnn"], lengths=[4, 8], repeats=1, peak_gflops=1.0,
                           max_seconds=1e-9, quiet=True, min_time=0.0, **TINY)
    assert all(r["status"].startswith("skipped") for r in rows)


def test_overhead_runs(tmp_path):
    path = str(tmp_path / "overhead.csv")
    rows = overhead.main(["--batch", "2", "--d", "8", "--heads", "2", "--lengths", "4", "8",
                          "--repeats", "1", "--out", path])
    assert {r["layer"] for r in rows} == {"attention", "lstm"} and all(r["ratio"] > 0 for r in rows)
    assert len(read_rows(path)) == 4


def test_memory_runs(tmp_path):
    loop, attention = memory.run(steps=3, batch=2, seq=4, dim=8, heads=2, attention_lengths=[4, 8],
                                 attention_batch=2, attention_dim=8, attention_heads=2,
                                 out_dir=str(tmp_path))
    assert len(loop) == 3 and all(r["peak_allocated_mb"] > 0 for r in loop)
    assert [r["n"] for r in attention if r["variant"] == "plain"] == [4, 8]
    assert len(read_rows(tmp_path / "memory_loop.csv")) == 3
    assert (tmp_path / "memory_attention.csv").exists()


def test_tracer_cost_runs(tmp_path):
    row = tracer_cost.run(batch=2, seq=4, dim=8, repeats=1, out_dir=str(tmp_path),
                          check_calls=1000)
    assert row["ops"] > row["forward_ops"] > 0 and row["hook_tests"] >= row["ops"]
    assert (tmp_path / "tracer_cost.csv").exists()


def test_vs_pytorch_skips_or_runs(tmp_path):
    rows = vs_pytorch.run(lengths=[4], repeats=1, out_dir=str(tmp_path), **TINY)
    if vs_pytorch.import_torch() is None:
        assert rows is None and vs_pytorch.main(["--lengths", "4"]) is None
    else:  # same weights on both sides: the outputs agree
        assert all(r["max_output_difference"] < 1e-4 for r in rows)


# ---------------------------------------------------------------- the baseline is right
def _close(ours, theirs):
    np.testing.assert_allclose(mt.backend.to_numpy(ours), mt.backend.to_numpy(theirs),
                               rtol=1e-9, atol=1e-11)


def test_reference_attention_matches_the_engine():
    layer = nn.MultiheadAttention(8, 2, batch_first=True).double()
    for p in layer.parameters():  # non-zero biases, so their gradients are tested too
        p.data[...] = mt.backend.random_normal(p.shape, "float64") * 0.3
    x_array = mt.backend.random_normal((2, 5, 8), "float64")
    grad_out = mt.backend.random_normal((2, 5, 8), "float64")
    x = mt.Tensor(x_array, requires_grad=True)
    out, _ = layer(x, x, x, need_weights=False)
    out.backward(mt.Tensor(grad_out))
    params = [layer.in_proj_weight, layer.in_proj_bias, layer.out_proj.weight, layer.out_proj.bias]
    ref_out, ref_grads = reference.attention_forward_backward(
        x_array, *(p.data for p in params), 2, grad_out)
    _close(out.data, ref_out)
    for ours, theirs in zip([x] + params, ref_grads):
        _close(ours.grad, theirs)


def test_reference_lstm_matches_the_engine():
    layer = nn.LSTM(6, 4, batch_first=True).double()
    x_array = mt.backend.random_normal((3, 7, 6), "float64")
    grad_out = mt.backend.random_normal((3, 7, 4), "float64")
    x = mt.Tensor(x_array, requires_grad=True)
    out, _ = layer(x)
    out.backward(mt.Tensor(grad_out))
    params = [layer.weight_ih_l0, layer.weight_hh_l0, layer.bias_ih_l0, layer.bias_hh_l0]
    ref_out, ref_grads = reference.lstm_forward_backward(x_array, *(p.data for p in params),
                                                         grad_out)
    _close(out.data, ref_out)
    for ours, theirs in zip([x] + params, ref_grads):
        _close(ours.grad, theirs)


@pytest.mark.parametrize("kind", seq_scaling.LAYERS)
def test_make_layer_output_shape(kind):
    layer = seq_scaling.make_layer(kind, 8, 2, "cpu")
    out = seq_scaling.forward(kind, layer, mt.Tensor(mt.backend.random_normal((2, 3, 8), "float32")))
    assert out.shape == (2, 3, 8)
