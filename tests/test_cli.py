"""The command line: train on a TSV file, translate and evaluate with the checkpoint."""
import io
import sys

import pytest

from minitransformer.cli import build_parser, main

PAIRS = ["the dog sees the cat .\tder hund sieht die katze .",
         "the cat sees the dog .\tdie katze sieht den hund .",
         "the child reads .\tdas kind liest .",
         "the dog reads .\tder hund liest ."] * 5


@pytest.fixture
def tsv(tmp_path):
    path = tmp_path / "pairs.tsv"
    path.write_text("\n".join(PAIRS) + "\n", encoding="utf-8")
    return path


@pytest.mark.parametrize("command", ["demo", "train", "translate", "evaluate"])
def test_every_command_has_help(command, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main([command, "--help"])
    assert exit_info.value.code == 0
    assert "usage: minitransformer " + command in capsys.readouterr().out


def test_train_translate_evaluate(tsv, tmp_path, capsys, monkeypatch):
    ckpt = str(tmp_path / "ckpt")
    main(["train", "--model", "lstm", "--data", str(tsv), "--epochs", "2", "--checkpoint", ckpt,
          "--log-every", "0"])
    out = capsys.readouterr().out
    assert "test BLEU" in out and "epoch 2" in out
    main(["translate", "--checkpoint", ckpt, "the dog sees the cat ."])
    assert capsys.readouterr().out.strip() != ""
    monkeypatch.setattr(sys, "stdin", io.StringIO("the child reads .\nthe cat reads .\n"))
    main(["translate", "--checkpoint", ckpt])
    assert len(capsys.readouterr().out.strip().splitlines()) == 2
    main(["evaluate", "--checkpoint", ckpt, "--beam", "2"])
    assert "test BLEU" in capsys.readouterr().out
    main(["train", "--checkpoint", ckpt, "--resume", "--epochs", "1", "--log-every", "0"])
    out = capsys.readouterr().out
    assert "resuming lstm" in out and "at epoch 2" in out and "epoch 3:" in out


def test_resume_needs_a_checkpoint():
    with pytest.raises(SystemExit, match="--resume needs --checkpoint"):
        main(["train", "--resume"])


def test_unknown_model_is_an_argument_error(capsys):
    with pytest.raises(SystemExit):
        build_parser().parse_args(["train", "--model", "gru"])
    assert "invalid choice: 'gru'" in capsys.readouterr().err
