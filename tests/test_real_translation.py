"""Smoke test of the real-sentences benchmark on a small corpus the test writes itself
(Multi30k is never needed here): both models train, their checkpoints are analysed, the
CSV files have one row per model and one curve point per epoch."""
import csv

import pytest

from minitransformer.benchmarks import real_translation
from minitransformer.translation.grammar import generate_pairs


def read_rows(path):
    with open(path) as f:
        return list(csv.DictReader(line for line in f if not line.startswith("#")))


def test_missing_data_is_a_message_not_an_error(tmp_path, capsys):
    assert real_translation.main(["--data-dir", str(tmp_path), "--out-dir", str(tmp_path)]) is None
    assert "skipped: Multi30k not found" in capsys.readouterr().out


@pytest.mark.slow
def test_both_models_train_and_are_analysed(tmp_path):
    pairs = list(dict.fromkeys(generate_pairs(400, seed=5)))
    data = tmp_path / "data"
    data.mkdir()
    for name, part in (("train.tsv", pairs[:300]), ("val.tsv", pairs[300:320]),
                       ("test2016.tsv", pairs[320:360])):
        (data / name).write_text("".join(f"{s}\t{t}\n" for s, t in part), encoding="utf-8")
    out = tmp_path / "out"
    rows, curves = real_translation.main(
        ["--data-dir", str(data), "--out-dir", str(out), "--quick", "--minutes", "0.1",
         "--", "--vocab-size", "400", "--batch-size", "16"])
    assert [r["model"] for r in read_rows(out / "real_translation.csv")] == ["transformer", "lstm"]
    for row in rows:
        assert row["steps"] > 0 and row["tokens_per_s"] > 0
        assert sum(row[f"sentences_{b}"] for b in ("1-10", "11-20", "21+")) == 40
        assert 0 <= row["test_bleu"] <= 100 and "case:mixed" in row["signature"]
    lstm, transformer = rows[1], rows[0]
    # The recurrent model's chain grows with the sentence; the Transformer's does not.
    assert lstm["sequential_ops_11-20"] > lstm["sequential_ops_1-10"]
    assert transformer["sequential_ops_11-20"] == transformer["sequential_ops_1-10"]
    assert len(read_rows(out / "real_translation_curves.csv")) == len(curves) >= 2
