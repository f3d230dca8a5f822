"""Every script in examples/ runs the way a reader first runs it: `python examples/NAME.py`,
no arguments, nothing prepared beforehand (no checkpoint, no data file).

Each runs in a fresh interpreter from an empty temporary directory, so the checkpoints
and pictures it writes land there and not in the repository; its temporary files go
there too (TMPDIR). The rest of the environment (thread counts included) is left as it is.
"""
import importlib.util
import os
import re
import subprocess
import sys

import pytest

EXAMPLES = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "examples")

# What each script must print: the lines that show it did its job, not just that it ended.
EXPECTED_OUTPUT = {
    "autograd_basics.py": ["d/dx sum(x²) = [[2.0, 4.0], [6.0, 8.0]]",
                           "gradcheck of softmax(a @ b): True",
                           "learned w = 3.000, c = -1.000"],
    "trace_lstm_vs_attention.py": ["LSTM seq. ops", "attention seq. ops"],
    "train_translator.py": ["transformer:", "epoch 1:", "test BLEU:",
                            "saved to checkpoints/transformer"],
    "translate.py": ["No checkpoint in checkpoints/transformer", "The dog sees the cat.",
                     "greedy:", "beam 4:"],
    "attention_heatmap.py": ["No checkpoint in checkpoints/transformer",
                             "The woman knows that the child reads a book.", "-> ",
                             "source: 0=the  1=woman  2=knows"],
    "train_on_tsv.py": ["No file given: wrote 3000", "training,", "test BLEU:", "reference:",
                        "model:"],
}

# Files a run must leave in its working directory.
EXPECTED_FILES = {
    "train_translator.py": ["checkpoints/transformer/checkpoint.npz"],
    "train_on_tsv.py": ["checkpoints/tsv/checkpoint.npz"],
    "attention_heatmap.py": (["attention.png"] if importlib.util.find_spec("matplotlib") else []),
}


def run_example(name, directory):
    env = dict(os.environ, TMPDIR=str(directory))
    return subprocess.run([sys.executable, os.path.join(EXAMPLES, name)], cwd=directory,
                          env=env, capture_output=True, text=True, timeout=600)


def test_every_example_is_checked():
    scripts = sorted(f for f in os.listdir(EXAMPLES) if f.endswith(".py"))
    assert scripts == sorted(EXPECTED_OUTPUT)


@pytest.mark.slow
@pytest.mark.parametrize("name", sorted(EXPECTED_OUTPUT))
def test_example_runs_without_arguments(name, tmp_path):
    done = run_example(name, tmp_path)
    assert done.returncode == 0, f"{name} failed:\n{done.stdout[-2000:]}\n{done.stderr[-4000:]}"
    assert "Traceback" not in done.stderr
    for text in EXPECTED_OUTPUT[name]:
        assert text in done.stdout, f"{name} did not print {text!r}:\n{done.stdout[-3000:]}"
    for path in EXPECTED_FILES.get(name, []):
        assert (tmp_path / path).is_file(), f"{name} did not write {path}"
    if name == "trace_lstm_vs_attention.py":
        # Rows "n, LSTM seq. ops, attention seq. ops, LSTM W/S, attention W/S": the
        # LSTM's chain grows with n, attention's stays the same.
        rows = [[float(x) for x in line.split()] for line in done.stdout.splitlines()
                if re.fullmatch(r"\s*\d+(\s+\d+(\.\d+)?){4}\s*", line)]
        assert len(rows) == 3
        lstm, attention = [r[1] for r in rows], [r[2] for r in rows]
        assert lstm[0] < lstm[1] < lstm[2]
        assert attention[0] == attention[1] == attention[2]


@pytest.mark.slow
@pytest.mark.parametrize("argv, message", [
    (["train_on_tsv.py", "no_such_file.tsv"], "no_such_file.tsv"),
    (["translate.py", "no_such_checkpoint"], "no_such_checkpoint"),
    (["attention_heatmap.py", "no_such_checkpoint"], "no_such_checkpoint"),
])
def test_a_missing_file_named_on_the_command_line_is_a_message_not_a_traceback(argv, message,
                                                                               tmp_path):
    done = subprocess.run([sys.executable, os.path.join(EXAMPLES, argv[0])] + argv[1:],
                          cwd=tmp_path, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0
    assert message in done.stderr and "Traceback" not in done.stderr, done.stderr
    assert not os.listdir(tmp_path)           # it stopped before training or writing anything
