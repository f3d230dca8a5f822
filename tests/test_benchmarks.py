"""The benchmarks at toy sizes: they run, write their CSVs, and count what they should.

No timing is judged here (a test machine's speed says nothing about the code);
the one correctness test checks the hand-written reference that the overhead
ratios are measured against: same outputs and gradients as the engine's layers.
"""
import csv
import os
import subprocess
import sys

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import analysis, nn
from minitransformer.benchmarks import (
    common, matmul_peak, memory, overhead, reference, runner, seq_scaling, table1, tracer_cost,
    vs_pytorch,
)

REPO = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

TINY = dict(batch=2, dim=8, heads=2)


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.slow
def test_matmul_peak_runs(tmp_path):
    rows = matmul_peak.run(repeats=1, quick=True, min_time=0.0)
    assert matmul_peak.peak_gflops(rows) > 0
    common.write_csv(str(tmp_path / "matmul_peak.csv"), rows, "test")
    assert len(read_rows(tmp_path / "matmul_peak.csv")) == len(rows)


@pytest.mark.slow   # a benchmark smoke run: over a second of CPU
@pytest.mark.slow
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


@pytest.mark.slow
def test_overhead_runs(tmp_path):
    rows = overhead.main(["--batch", "2", "--d", "8", "--heads", "2", "--lengths", "4", "8",
                          "--repeats", "1", "--out-dir", str(tmp_path)])
    assert {r["layer"] for r in rows} == {"attention", "lstm"} and all(r["ratio"] > 0 for r in rows)
    assert len(read_rows(tmp_path / "overhead.csv")) == 4


@pytest.mark.slow
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


QUICK_COMPARISONS = ("translator", "attention", "encoder", "lstm")  # all but Multi30k's


@pytest.mark.slow   # a benchmark smoke run: over a second of CPU
@pytest.mark.slow
def test_vs_pytorch_skips_or_runs(tmp_path):
    rows = vs_pytorch.run(lengths=[4], repeats=1, out_dir=str(tmp_path),
                          only=QUICK_COMPARISONS, **TINY)
    if vs_pytorch.import_torch() is None:
        assert rows is None and vs_pytorch.main(["--lengths", "4"]) is None
    else:  # same weights on both sides: the outputs agree
        assert {r["layer"] for r in rows} == set(QUICK_COMPARISONS)
        assert all(r["max_output_difference"] < 1e-4 for r in rows)


@pytest.mark.slow
def test_vs_pytorch_multi30k_row_skips_without_data(tmp_path):
    if vs_pytorch.import_torch() is None:
        pytest.skip("PyTorch is not installed (vs_pytorch is optional)")
    messages = []
    rows = vs_pytorch.run(out_dir=str(tmp_path), only=["translator_base_multi30k"],
                          data_dir=str(tmp_path / "absent"), log=messages.append)
    assert rows == [] and not list(tmp_path.glob("*.csv"))
    assert len(messages) == 1 and "translator_base_multi30k" in messages[0]
    assert "train.tsv" in messages[0]


def test_vs_pytorch_names_an_unknown_comparison():
    with pytest.raises(ValueError, match="lsmt"):
        vs_pytorch.run(only=["lsmt"])


@pytest.mark.slow
def test_vs_pytorch_translator_base_multi30k(tmp_path):
    if vs_pytorch.import_torch() is None:
        pytest.skip("PyTorch is not installed (vs_pytorch is optional)")
    missing = vs_pytorch.multi30k_missing(vs_pytorch.MULTI30K_DIR)
    if missing:
        pytest.skip(missing)
    # Two batches, one pass each; BPE learned from 500 pairs only (the full 29,000 take
    # minutes): the row is the real base model on real batches, just fewer of them.
    rows = vs_pytorch.run(out_dir=str(tmp_path), only=["translator_base_multi30k"],
                          base_batches=2, base_repeats=1, base_vocab_pairs=500)
    [row] = rows
    assert row["layer"] == "translator_base_multi30k"
    assert row["batches"] == 2 and row["batch"] == 128 and row["dropout"] == 0.0
    assert row["engine_tokens_per_s"] > 0 and row["torch_tokens_per_s"] > 0
    assert row["ratio"] == pytest.approx(row["torch_tokens_per_s"] / row["engine_tokens_per_s"])
    # Same weights and batch on both sides: the logits agree to float32 rounding.
    assert row["max_output_difference"] < 1e-4
    [written] = read_rows(tmp_path / "vs_pytorch_multi30k.csv")
    assert float(written["engine_tokens_per_s"]) == pytest.approx(row["engine_tokens_per_s"])
    assert not (tmp_path / "vs_pytorch.csv").exists()


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


# ---------------------------------------------------------------- Table 1 of the paper
def _nn_layers_or_skip():
    pytest.importorskip("minitransformer.nn.recurrent")
    pytest.importorskip("minitransformer.nn.attention")


@pytest.mark.parametrize("layer", ["rnn", "lstm", "attention"])
def test_table1_measures_the_papers_shape(layer):
    _nn_layers_or_skip()
    rows = [table1.measure(layer, n, d=8) for n in (4, 8, 16, 32)]
    ns = [r["n"] for r in rows]
    sequential = analysis.fit_exponent(ns, [r["sequential_ops"] for r in rows])
    path = analysis.fit_exponent(ns, [r["max_path_length"] for r in rows])
    if layer == "attention":
        assert sequential == pytest.approx(0) and path == pytest.approx(0)
    else:
        assert 0.85 < sequential <= 1.0 and 0.85 < path <= 1.0
        # The same number of ops per extra token, at every n.
        per_token = {(b["sequential_ops"] - a["sequential_ops"]) / (b["n"] - a["n"])
                     for a, b in zip(rows, rows[1:])}
        assert len(per_token) == 1


@pytest.mark.slow
def test_timed_runs_follow_an_untimed_warm_up(monkeypatch):
    """On a GPU the first pass compiles the kernels: Table 1 and the time-to-BLEU race
    must not time it. Both record what ran before their first clock read."""
    from minitransformer.benchmarks import time_to_bleu
    from minitransformer.trace import trace as real_trace
    from minitransformer.translation.batching import encode_pairs, make_batch
    from minitransformer.translation.grammar import load_corpus
    from minitransformer.translation.train import new_trainer
    events = []
    layer = table1.build_layer("attention", 8, 1, "cpu")
    monkeypatch.setattr(table1, "build_layer", lambda *args: lambda x: (events.append("run"), layer(x))[1])
    monkeypatch.setattr(table1, "trace", lambda: (events.append("clock"), real_trace())[1])
    table1.measure("attention", 4, d=8)
    assert events == ["run", "clock", "run"]

    events.clear()
    pairs = load_corpus(size=40, seed=0)["train"]
    trainer = new_trainer("lstm", pairs, size="tiny", batch_size=8)
    # The warm-up changes no weight and leaves no gradient behind.
    before = [p.data.copy() for p in trainer.model.parameters()]
    time_to_bleu.warm_up(trainer, make_batch(encode_pairs(pairs[:8], trainer.src_vocab,
                                                          trainer.tgt_vocab)))
    for a, p in zip(before, trainer.model.parameters()):
        np.testing.assert_array_equal(a, p.data)
        assert p.grad is None or not p.grad.any()
    loss, timer = trainer.loss, time_to_bleu.backend.timer
    monkeypatch.setattr(trainer, "loss", lambda batch: (events.append("loss"), loss(batch))[1])
    monkeypatch.setattr(time_to_bleu.backend, "timer",
                        lambda device: (events.append("clock"), timer(device))[1])
    time_to_bleu.train_until(trainer, pairs, lambda: {"score": 1.0}, "score", 0.5, budget=60,
                             eval_every=1, log=lambda line: None)
    assert events[:3] == ["loss", "clock", "loss"] and trainer.step == 1


@pytest.mark.slow
def test_table1_main_writes_the_csv(tmp_path, capsys):
    _nn_layers_or_skip()
    assert table1.main(["--d", "8", "--ns", "4", "8", "--out-dir", str(tmp_path)]) == 0
    lines = (tmp_path / "table1.csv").read_text().splitlines()
    assert lines[0].startswith("# table1 on ")        # the machine that produced it
    rows = [line for line in lines if not line.startswith("#")]
    assert rows[0] == "layer,n,d,flops,sequential_ops,max_path_length"
    assert len(rows) == 1 + 3 * 2
    assert "paper" in capsys.readouterr().out


# ---------------------------------------------------------------- one command line
@pytest.mark.parametrize("name", list(runner.BENCHMARKS))
def test_every_benchmark_takes_the_shared_flags(name, capsys):
    with pytest.raises(SystemExit) as exit_:
        runner.run(name, ["--help"])
    assert exit_.value.code == 0
    usage = capsys.readouterr().out
    for flag in ("--device", "--out-dir", "--quick"):
        assert flag in usage, f"{name} has no {flag}"


def test_bench_folder_has_one_script_per_benchmark():
    scripts = {f[:-3] for f in os.listdir(os.path.join(REPO, "bench")) if f.endswith(".py")}
    assert scripts == set(runner.BENCHMARKS)
    assert set(runner.SUITE) <= set(runner.BENCHMARKS)


def test_unknown_benchmark_is_a_clear_error():
    with pytest.raises(common.CommandError,
                       match=r"no such benchmark \(NAME, got seq_scalin, expected one of "
                             r"matmul_peak, seq_scaling"):
        runner.run("seq_scalin")


def test_quick_defaults_yield_to_given_flags():
    def parse(argv):
        p = common.parser("x", "test")
        p.add_argument("--repeats", type=int, default=7)
        p.add_argument("--lengths", type=int, nargs="+", default=[16, 32, 64])
        return common.parse(p, argv + ["--out-dir", "unused", "--device", "cpu"],
                            quick=dict(repeats=2, lengths=[16]))
    assert (parse([]).repeats, parse([]).lengths) == (7, [16, 32, 64])
    assert (parse(["--quick"]).repeats, parse(["--quick"]).lengths) == (2, [16])
    assert (parse(["--quick", "--repeats", "5"]).repeats, parse(["--quick"]).device) == (5, "cpu")


@pytest.mark.slow
def test_bench_script_and_cli_take_the_same_flags():
    """``python bench/NAME.py`` and ``python -m minitransformer bench NAME`` are one
    command: the same usage, word for word (running one is tested in-process)."""
    env = dict(os.environ, PYTHONPATH=REPO)
    usages = []
    for command in ([sys.executable, "bench/decoding.py"],
                    [sys.executable, "-m", "minitransformer", "bench", "decoding"]):
        result = subprocess.run(command + ["--help"], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=600)
        assert result.returncode == 0, result.stderr
        usages.append(result.stdout)
    assert usages[0] == usages[1]
    assert usages[0].startswith("usage: python -m minitransformer bench decoding")
