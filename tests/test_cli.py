"""The command line: train on TSV files, translate and evaluate with the checkpoint, and
mistakes reported in one line (exit status 2) instead of a traceback."""
import io
import re
import sys

import pytest

from minitransformer.cli import build_parser, main
from minitransformer.translation.bleu import corpus_bleu
from minitransformer.translation.grammar import generate_pairs
from minitransformer.translation.train import Trainer


def write_tsv(path, pairs):
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")
    return str(path)


@pytest.fixture(scope="module")
def files(tmp_path_factory):
    """Cased train/valid/test files from the built-in grammar (distinct sentences)."""
    folder = tmp_path_factory.mktemp("tsv")
    pairs = list(dict.fromkeys(generate_pairs(200, seed=3)))
    pairs = [(s.capitalize(), t.capitalize()) for s, t in pairs]
    return {"train": write_tsv(folder / "train.tsv", pairs[:120]),
            "valid": write_tsv(folder / "valid.tsv", pairs[120:135]),
            "test": write_tsv(folder / "test.tsv", pairs[135:150]),
            "test_pairs": pairs[135:150], "folder": folder}


@pytest.fixture(scope="module")
def checkpoint(files):
    ckpt = str(files["folder"] / "ckpt")
    main(["train", "--model", "lstm", "--data", files["train"], "--valid", files["valid"],
          "--test", files["test"], "--vocab-size", "300", "--epochs", "2",
          "--checkpoint", ckpt, "--log-every", "0"])
    return ckpt


@pytest.mark.slow
def test_train_on_files_uses_a_cased_subword_vocabulary(files, tmp_path, capsys):
    main(["train", "--model", "lstm", "--data", files["train"], "--test", files["test"],
          "--vocab-size", "300", "--epochs", "1", "--log-every", "0"])
    out = capsys.readouterr().out
    assert "BPEVocabulary" in out and "120 training pairs" in out
    assert "valid" not in out                     # no validation file: no validation
    assert "test BLEU (15 sentences, greedy)" in out


def printed_bleu(out):
    """The (cased, lower-cased) scores of a BLEU report, with their signatures."""
    found = re.findall(r"BLEU\s+([\d.]+)\s+(\S*case:(\w+)\S*)", out)
    scores = {case: float(score) for score, _, case in found}
    return scores["mixed"], scores["lc"]


@pytest.mark.parametrize("command", ["demo", "train", "translate", "evaluate"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: minitransformer " + command in capsys.readouterr().out


@pytest.mark.slow
def test_train_uses_the_given_files_whole(files, checkpoint, capsys):
    main(["evaluate", "--checkpoint", checkpoint])
    out = capsys.readouterr().out
    assert "test BLEU (15 sentences, greedy)" in out       # the test file, every line
    assert "tok:13a" in out and "smooth:exp" in out


@pytest.mark.slow
def test_evaluate_prints_the_score_of_the_file_it_writes(files, checkpoint, capsys, tmp_path):
    hyps_path = tmp_path / "hyps.txt"
    main(["evaluate", "--checkpoint", checkpoint, "--data", files["test"],
          "--output", str(hyps_path)])
    cased, lowered = printed_bleu(capsys.readouterr().out)
    hypotheses = hyps_path.read_text(encoding="utf-8").split("\n")[:-1]
    references = [t for _, t in files["test_pairs"]]
    assert len(hypotheses) == len(references)
    assert cased == pytest.approx(corpus_bleu(hypotheses, references), abs=0.01)
    assert lowered == pytest.approx(corpus_bleu(hypotheses, references, lowercase=True), abs=0.01)
    sacrebleu = pytest.importorskip("sacrebleu")
    assert cased == pytest.approx(sacrebleu.corpus_bleu(hypotheses, [references]).score, abs=0.01)
    assert lowered == pytest.approx(
        sacrebleu.corpus_bleu(hypotheses, [references], lowercase=True).score, abs=0.01)


@pytest.mark.slow
def test_translate_reads_a_long_pipe_one_line_each(checkpoint, capsys, monkeypatch):
    main(["translate", "--checkpoint", checkpoint, "The dog sees the cat."])
    assert capsys.readouterr().out.strip() != ""
    lines = ["The child reads.", "", "The cat sees the dog."] * 334      # 1,002 lines
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(lines) + "\n"))
    main(["translate", "--checkpoint", checkpoint])
    out = capsys.readouterr().out.split("\n")[:-1]
    assert len(out) == len(lines)
    assert out[1] == "" and out[0] != "" and out[0] == out[3]


@pytest.mark.slow
def test_resume_continues_and_refuses_conflicting_options(checkpoint, capsys):
    # --epochs counts the whole training: 3 on a checkpoint of 2 epochs trains one more.
    main(["train", "--checkpoint", checkpoint, "--resume", "--epochs", "3", "--log-every", "0"])
    out = capsys.readouterr().out
    assert "resuming lstm" in out and "at epoch 2" in out and "epoch 3:" in out
    with pytest.raises(SystemExit) as exit_info:
        main(["train", "--checkpoint", checkpoint, "--resume", "--size", "small", "--lr", "0.1",
              "--label-smoothing", "0"])
    assert exit_info.value.code == 2
    err = capsys.readouterr().err
    assert "--size" in err and "--lr" in err and "--label-smoothing" in err
    assert "Traceback" not in err


def test_train_takes_each_recipe_choice(tmp_path, capsys):
    checkpoint = str(tmp_path / "run")
    main(["train", "--corpus-size", "200", "--max-steps", "3", "--log-every", "1",
          "--label-smoothing", "0", "--clip", "5", "--adam-beta2", "0.99", "--dropout", "0.2",
          "--checkpoint", checkpoint])
    out = capsys.readouterr().out
    assert "step     3" in out and "step     4" not in out
    trainer = Trainer.load(checkpoint)
    assert (trainer.settings.label_smoothing, trainer.settings.clip,
            trainer.settings.adam_beta2) == (0.0, 5.0, 0.99)
    assert trainer.model.config["dropout"] == 0.2 and trainer.step == 3


def error_of(argv, capsys):
    """The one line a failing command prints, checking its exit status is 2."""
    with pytest.raises(SystemExit) as exit_info:
        main(argv)
    assert exit_info.value.code == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 or err[0].startswith("usage:"), err
    return err[-1]


def test_mistakes_get_one_line_and_status_2(files, tmp_path, capsys):
    missing = str(tmp_path / "nope.tsv")
    assert error_of(["train", "--data", missing], capsys) == (
        f"minitransformer train: error: parallel text file not found: {missing}")
    no_tabs = tmp_path / "no_tabs.tsv"
    no_tabs.write_text("one line\nanother\nthe dog\tder hund\n", encoding="utf-8")
    line = error_of(["train", "--data", str(no_tabs)], capsys)
    assert str(no_tabs) in line and "2 of 3 lines" in line and "lines 1, 2" in line
    line = error_of(["train", "--valid", files["valid"]], capsys)
    assert line.startswith("minitransformer train: error:") and "--data" in line
    few = write_tsv(tmp_path / "few.tsv", [("a b", "c d"), ("e f", "g h"), ("i j", "k l")])
    line = error_of(["train", "--data", few], capsys)
    assert "too few to split" in line and few in line
    assert error_of(["train", "--minutes", "-1"], capsys).endswith(
        "invalid value (--minutes, got -1, expected a positive number)")
    assert error_of(["train", "--epochs", "0"], capsys).endswith(
        "invalid value (--epochs, got 0, expected a positive int)")
    assert error_of(["train", "--dropout", "1.5"], capsys).endswith(
        "invalid value (--dropout, got 1.5, expected a number in [0, 1))")
    assert error_of(["train", "--adam-beta2", "x"], capsys).endswith(
        "invalid value (--adam-beta2, got x, expected a number in [0, 1))")


def test_a_damaged_checkpoint_is_named_as_such(tmp_path, capsys):
    bad = tmp_path / "checkpoint.npz"
    bad.write_bytes(b"PK\x03\x04 this is not a zip file at all")
    line = error_of(["evaluate", "--checkpoint", str(bad)], capsys)
    assert "not a minitransformer checkpoint, or it is truncated" in line and str(bad) in line


def test_debug_shows_the_traceback(tmp_path):
    with pytest.raises(FileNotFoundError):
        main(["train", "--data", str(tmp_path / "nope.tsv"), "--debug"])


def test_resume_needs_a_checkpoint(capsys):
    assert "--resume without --checkpoint" in error_of(["train", "--resume"], capsys)


def test_unknown_model_is_an_argument_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--model", "gru"])
    err = capsys.readouterr().err
    assert "invalid choice (--model, got 'gru', expected one of" in err
    assert len(err.splitlines()) == 1                   # no usage text before it


def test_the_exit_status_is_0_on_success_and_1_when_a_suite_benchmark_fails(tmp_path, monkeypatch):
    # The console script does sys.exit(main()): what main returns is the exit status.
    assert main(["table1", "--readme-snippet", str(tmp_path / "snippet.md")]) == 0
    from minitransformer.benchmarks import runner
    rows = [{"benchmark": "memory", "status": "ok"}, {"benchmark": "decoding", "status": "ok"}]
    monkeypatch.setattr(runner, "main", lambda argv: rows)
    assert main(["bench"]) == 0
    rows[1]["status"] = "failed"
    assert main(["bench"]) == 1


def test_python_dash_m_exits_with_the_command_status(tmp_path):
    import subprocess
    done = subprocess.run([sys.executable, "-m", "minitransformer", "table1", "--readme-snippet",
                           str(tmp_path / "snippet.md")], capture_output=True, text=True)
    assert done.returncode == 0, done.stderr
    assert done.stderr == ""
