"""Smoke tests of the decoding and time-to-BLEU benchmarks and of the `bench` runner, at
tiny sizes: they run, write their CSV, and report sensible rows (no timing asserts)."""
import csv

import pytest

from minitransformer import cli
from minitransformer.benchmarks import decoding, runner, time_to_bleu


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


@pytest.mark.slow
def test_decoding_writes_one_row_per_method_and_length(tmp_path):
    decoding.main(["--lengths", "2", "4", "--batch", "2", "--repeats", "1",
                   "--out-dir", str(tmp_path)])
    rows = read_rows(tmp_path / "decoding.csv")
    assert {(r["method"], int(r["n"])) for r in rows} == {
        (m, n) for m in decoding.METHODS for n in (2, 4)}
    for r in rows:
        assert r["status"] == "ok" and float(r["tokens_per_s"]) > 0
        # greedy decoding runs exactly n steps (eos disabled); teacher forcing is one pass
        assert int(r["sequential_steps"]) == (1 if "teacher" in r["method"] else int(r["n"]))


@pytest.mark.slow   # a benchmark smoke run: over a second of CPU
def test_time_to_bleu_records_thresholds_and_curves(tmp_path):
    rows, curves = time_to_bleu.run(budget=0.3, mirror_budget=0.3, lengths=(4,), eval_every=2,
                                    mirror_eval_every=2, eval_sentences=4, corpus_size=300,
                                    mirror_pairs=40, batch_size=8, log=lambda *a: None)
    assert {(r["task"], r["model"]) for r in rows} == {
        (task, model) for task in ("corpus", "mirror") for model in time_to_bleu.MODELS}
    assert len(rows) == 2 * len(time_to_bleu.BLEU_THRESHOLDS) + 2 * len(
        time_to_bleu.ACCURACY_THRESHOLDS)
    for r in rows:   # reached thresholds carry the training clock at their first crossing
        assert r["seconds"] == "" or 0 < r["seconds"] <= r["trained_seconds"]
    assert all(0 <= p["train_seconds"] for p in curves)
    time_to_bleu.print_table(rows, log=lambda *a: None)


@pytest.mark.slow   # a benchmark smoke run: over a second of CPU
def test_time_to_bleu_main_writes_its_csv_files(tmp_path):
    time_to_bleu.main(["--budget", "0", "--mirror-budget", "0.2", "--lengths", "3",
                       "--eval-every", "1", "--eval-sentences", "3", "--models", "transformer",
                       "--out-dir", str(tmp_path)])
    rows = read_rows(tmp_path / "time_to_bleu.csv")
    assert {(r["task"], r["model"]) for r in rows} == {("mirror", "transformer")}
    assert read_rows(tmp_path / "time_to_bleu_curves.csv")


@pytest.mark.slow
def test_bench_suite_reports_each_benchmark(tmp_path, monkeypatch):
    monkeypatch.setattr(runner.common, "results_dir", lambda device: str(tmp_path))
    monkeypatch.setattr(decoding, "QUICK_LENGTHS", (2,))   # the suite passes --quick on
    summary = runner.main(["--quick", "--only", "decoding"])
    assert [(row["benchmark"], row["status"]) for row in summary] == [("decoding", "ok")]
    assert {int(r["n"]) for r in read_rows(tmp_path / "quick" / "decoding.csv")} == {2}


def test_bench_suite_reports_a_failure_and_goes_on(tmp_path, monkeypatch):
    monkeypatch.setattr(runner, "SUITE", ("decoding", "tracer_cost"))

    def broken(argv):
        raise RuntimeError("broken on purpose")
    monkeypatch.setattr(decoding, "main", broken)
    monkeypatch.setitem(runner.BENCHMARKS, "tracer_cost", lambda result: f"ran {result}")
    from minitransformer.benchmarks import tracer_cost
    monkeypatch.setattr(tracer_cost, "main", lambda argv: " ".join(argv))
    summary = runner.main(["--device", "cpu", "--out-dir", str(tmp_path)])
    assert [(r["benchmark"], r["status"]) for r in summary] == [("decoding", "failed"),
                                                              ("tracer_cost", "ok")]
    assert "broken on purpose" in summary[0]["result"]
    # every benchmark of the suite gets the same three flags
    assert summary[1]["result"] == f"ran --device cpu --out-dir {tmp_path}"


@pytest.mark.slow
def test_cli_bench_name_passes_the_flags_through(tmp_path):
    """`bench table1 FLAGS` and `table1 FLAGS` are one command with one set of flags."""
    for command, out in ((["bench", "table1"], "a"), (["table1"], "b")):
        cli.main(command + ["--d", "4", "--layers", "rnn", "--ns", "4", "8",
                            "--out-dir", str(tmp_path / out)])
    by_bench, by_table1 = (read_rows(tmp_path / out / "table1.csv") for out in "ab")
    assert by_bench == by_table1 and [int(r["n"]) for r in by_bench] == [4, 8]
