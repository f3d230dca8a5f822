"""The contract of every command line, mistake by mistake.

A mistake in what a command is given prints ONE line on stderr,

    minitransformer <command>: error: <what> (<option>, got <value>, expected <what>)

and exits with status 2, having changed no file it was given. The table below is
that promise checked for bad numbers, bad choices, bad files, meaningless
combinations, places that cannot be written and damaged or mismatched checkpoints,
across every command. After it come the promises about what a training leaves
behind: an existing checkpoint is not overwritten by accident, a lock keeps a second
training out, Ctrl-C keeps the last checkpoint, a killed save's temporary file is
cleaned up, and a closed pipe ends ``translate`` quietly.

Speed: most of the table's cases run in-process (``cli.main`` with capsys), each in
milliseconds, with the work a command would do after its checks (training,
translating, downloading, a benchmark past its command line) replaced by an
AssertionError: a mistake that goes unnoticed fails at once instead of running. Those
that need a real process (another environment, bytes that are not UTF-8 on the
command line) and a sample of each command run as ``python -m minitransformer`` in a
subprocess. All share one small checkpoint, trained once per module.
"""
import dataclasses
import hashlib
import io
import os
import re
import select
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

from minitransformer import backend, distributed
from minitransformer.cli import main
from minitransformer.translation import checkpoint
from minitransformer.translation.decode import MAX_BEAM
from minitransformer.translation.grammar import generate_pairs
from minitransformer.translation.tsv import MAX_LINE_BYTES

REPO = Path(__file__).resolve().parents[1]
# Seconds one command may take before it counts as hung. A mistake is found in about
# a second; the margin is for a loaded machine, not for the command.
COMMAND_TIMEOUT = 180
# The same for bench and table1 in a subprocess: shorter, so that a mistake they stop
# finding costs at most this much of a benchmark before it is killed.
BENCH_TIMEOUT = 60


# ---------------------------------------------------------------- running a command
def command_env(extra=None):
    """The environment of a command run in a subprocess: this checkout importable, the
    CPU as device, no MPI launcher variables (which would make train distributed)."""
    env = {name: value for name, value in os.environ.items()
           if name not in distributed.LAUNCHER_SIZE_VARIABLES}
    env["PYTHONPATH"] = os.pathsep.join(
        [str(REPO)] + ([env["PYTHONPATH"]] if env.get("PYTHONPATH") else []))
    env["MINITRANSFORMER_DEVICE"] = "cpu"
    env.update(extra or {})
    return env


def _text(data):
    return data.decode("utf-8", errors="backslashreplace")


def run_cli(args, cwd, env=None, stdin=b"", timeout=COMMAND_TIMEOUT):
    """``python -m minitransformer ARGS`` in ``cwd``: (exit status, stdout, stderr)."""
    result = subprocess.run([sys.executable, "-m", "minitransformer", *args], cwd=cwd,
                            env=command_env(env), input=stdin, capture_output=True,
                            timeout=timeout)
    return result.returncode, _text(result.stdout), _text(result.stderr)


def train_args(kit, folder, *extra, model="lstm", epochs=1):
    """A small training on the kit's files (absolute paths: any cwd will do)."""
    return ["train", "--model", model, "--data", str(kit / "train.tsv"),
            "--valid", str(kit / "valid.tsv"), "--test", str(kit / "test.tsv"),
            "--vocab", "word", "--epochs", str(epochs), "--log-every", "0",
            "--checkpoint", str(folder), *extra]


def one_line(err):
    """The single line of ``err``, asserting that it is one line."""
    lines = err.splitlines()
    assert len(lines) == 1 and err.endswith("\n"), f"expected one line on stderr, got {err!r}"
    return lines[0]


def sha256(path):
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def snapshot(folder):
    """{path relative to ``folder``: sha256} of every regular file below it, and
    {path/: None} of every folder, so that a folder created empty shows too."""
    found = {}
    for root, folders, names in os.walk(folder):
        for name in folders:
            found[os.path.relpath(os.path.join(root, name), folder) + os.sep] = None
        for name in names:
            path = os.path.join(root, name)
            if os.path.isfile(path) and not os.path.islink(path):
                found[os.path.relpath(path, folder)] = sha256(path)
    return found


def assert_unchanged(before, after):
    changed = sorted(name for name in before.keys() & after.keys() if before[name] != after[name])
    assert (changed, sorted(before.keys() - after.keys()), sorted(after.keys() - before.keys())) \
        == ([], [], []), "files changed; files or folders removed, created"


def wait_for(condition, what, seconds=COMMAND_TIMEOUT):
    """Poll ``condition`` until it is true; fail after ``seconds``."""
    deadline = time.monotonic() + seconds
    while not condition():
        if time.monotonic() > deadline:
            pytest.fail(f"no {what} within {seconds} s")
        time.sleep(0.05)


@pytest.fixture
def sleeper():
    """A process that runs for the whole test (and is killed after it): its pid names
    a live holder of a lock or a temporary file."""
    child = subprocess.Popen(["sleep", "600"])
    yield child
    child.kill()
    child.wait()


# ---------------------------------------------------------------- the files of every case
def _write_tsv(path, pairs):
    path.write_text("".join(f"{s}\t{t}\n" for s, t in pairs), encoding="utf-8")


@pytest.fixture(scope="module")
def kit(tmp_path_factory):
    """The folder every case runs in: small TSV files, a checkpoint "ck" trained on
    them (lstm, word vocabulary, 1 epoch, step 1), a checkpoint "ck_changed" whose
    training file changed afterwards, and the bad things the cases hand over."""
    kit = tmp_path_factory.mktemp("kit")
    pairs = list(dict.fromkeys(generate_pairs(200, seed=3)))
    _write_tsv(kit / "train.tsv", pairs[:40])
    _write_tsv(kit / "valid.tsv", pairs[40:46])
    _write_tsv(kit / "test.tsv", pairs[46:52])
    _write_tsv(kit / "changing.tsv", pairs[:40])
    runs = {}
    for name, data in (("ck", "train.tsv"), ("ck_changed", "changing.tsv")):
        log = open(kit.parent / f"{kit.name}-{name}.log", "wb")
        runs[name] = (log, subprocess.Popen(
            [sys.executable, "-m", "minitransformer", "train", "--model", "lstm", "--data", data,
             "--valid", "valid.tsv", "--test", "test.tsv", "--vocab", "word", "--epochs", "1",
             "--log-every", "0", "--checkpoint", name],
            cwd=kit, env=command_env(), stdout=log, stderr=subprocess.STDOUT))
    for name, (log, child) in runs.items():
        status = child.wait(timeout=COMMAND_TIMEOUT)
        log.close()
        assert status == 0, Path(log.name).read_text()
    progress = checkpoint.load_meta(kit / "ck")["progress"]
    assert (progress["epoch"], progress["step"]) == (1, 1)   # what the cases below expect
    with open(kit / "changing.tsv", "a", encoding="utf-8") as f:
        f.write("A line added after the training.\tEine Zeile danach.\n")

    (kit / "bad_utf8.tsv").write_bytes(b"the dog\tder Hund\n\xff\xfe\tkaputt\n")
    (kit / "nul.tsv").write_bytes(b"the dog\tder\x00Hund\n")
    (kit / "long.tsv").write_bytes(b"the dog\t" + b"x" * MAX_LINE_BYTES + b"\n")
    (kit / "empty.tsv").write_bytes(b"")
    (kit / "blank.tsv").write_bytes(b"\n   \n\t\n")
    (kit / "adir").mkdir()
    (kit / "afile").write_text("a file, not a folder\n")
    (kit / "junk.npz").write_bytes(b"PK\x03\x04 not a zip file at all")
    (kit / "dmg").mkdir()   # the first 100 kB of a checkpoint: a truncated one
    whole = (kit / "ck" / checkpoint.FILENAME).read_bytes()
    (kit / "dmg" / checkpoint.FILENAME).write_bytes(whole[:100_000])
    (kit / "previous.txt").write_text("the translations of an earlier run\n")
    os.symlink("train.tsv", kit / "link.tsv")
    return kit


# ---------------------------------------------------------------- the table
@dataclasses.dataclass
class Case:
    argv: list            # what follows "minitransformer"
    command: str          # how the error line names the command
    fragments: tuple      # each must be in the error line
    env: dict             # environment variables set for this case
    stdin: bytes
    process: bool         # run in a subprocess (else in-process)


_DELEGATED = ("bench", "table1")   # commands whose own parsers start benchmarks


def _named(argv):
    """The command as the contract's error line names it."""
    if not argv or argv[0].startswith("-"):
        return ""
    if argv[0] == "data" and argv[1:2] == ["multi30k"]:
        return "data multi30k"
    if argv[0] == "bench" and len(argv) > 1 and not argv[1].startswith("-"):
        return f"bench {argv[1]}"
    return argv[0]


def case(id, args, *fragments, command=None, env=None, stdin=b"", process=False):
    """One bad input: ``args`` a shell-like string (or a list, for bytes), the
    ``fragments`` its error line must hold."""
    argv = shlex.split(args) if isinstance(args, str) else list(args)
    process = process or bool(env) or any(isinstance(arg, bytes) for arg in argv)
    return pytest.param(Case(argv, _named(argv) if command is None else command, fragments,
                             env or {}, stdin, bool(process)), id=id)


TOO_WIDE = MAX_BEAM + 1
BAD_DEVICE = {"MINITRANSFORMER_DEVICE": "tpu"}
DEVICE_FRAGMENTS = ("MINITRANSFORMER_DEVICE", "'tpu'")

CASES = [
    # -- train: numbers
    case("train-epochs-0", "train --epochs 0", "--epochs", "got 0", "a positive int", process=True),
    case("train-epochs-negative", "train --epochs -3", "--epochs", "got -3"),
    case("train-epochs-float", "train --epochs 1.5", "--epochs", "got 1.5"),
    case("train-epochs-word", "train --epochs many", "--epochs", "got many"),
    case("train-epochs-no-value", "train --epochs", "--epochs", "missing value"),
    case("train-minutes-negative", "train --minutes -1", "--minutes", "got -1", "positive number"),
    case("train-minutes-nan", "train --minutes nan", "--minutes", "got nan"),
    case("train-minutes-inf", "train --minutes inf", "--minutes", "got inf"),
    case("train-lr-0", "train --lr 0", "--lr", "got 0"),
    case("train-lr-nan", "train --lr nan", "--lr", "got nan"),
    case("train-lr-minus-inf", "train --lr=-inf", "--lr", "got -inf"),
    case("train-vocab-size-small", "train --vocab-size 10", "--vocab-size", "got 10"),
    case("train-vocab-size-word", "train --vocab-size abc", "--vocab-size", "got abc"),
    case("train-batch-size-0", "train --batch-size 0", "--batch-size", "got 0"),
    case("train-batch-tokens-negative", "train --batch-tokens -5", "--batch-tokens", "got -5"),
    case("train-warmup-0", "train --warmup 0", "--warmup", "got 0"),
    case("train-max-tokens-0", "train --max-tokens 0", "--max-tokens", "got 0"),
    case("train-max-steps-0", "train --max-steps 0", "--max-steps", "got 0"),
    case("train-min-freq-0", "train --min-freq 0", "--min-freq", "got 0"),
    case("train-label-smoothing-1", "train --label-smoothing 1", "--label-smoothing", "got 1"),
    case("train-dropout-nan", "train --dropout nan", "--dropout", "got nan"),
    case("train-dropout-negative", "train --dropout -0.1", "--dropout", "got -0.1"),
    case("train-adam-beta2-1", "train --adam-beta2 1", "--adam-beta2", "got 1"),
    case("train-clip-0", "train --clip 0", "--clip", "got 0"),
    case("train-average-last-0", "train --average-last 0", "--average-last", "got 0"),
    case("train-average-every-0", "train --average-every 0", "--average-every", "got 0"),
    case("train-seed-negative", "train --seed -1", "--seed", "got -1"),
    case("train-seed-too-big", "train --seed 4294967296", "--seed", "got 4294967296"),
    case("train-log-every-negative", "train --log-every -1", "--log-every", "got -1"),
    case("train-trace-every-word", "train --trace-every x", "--trace-every", "got x"),
    case("train-beam-0", "train --beam 0", "--beam", "got 0"),
    case("train-beam-above-max", f"train --beam {TOO_WIDE}", "--beam", f"got {TOO_WIDE}",
         f"to {MAX_BEAM}"),
    case("train-length-penalty-nan", "train --length-penalty nan", "--length-penalty", "got nan"),
    # -- train: choices, unknown arguments
    case("train-model-unknown", "train --model gru", "--model", "gru", "one of"),
    case("train-size-unknown", "train --size huge", "--size", "huge"),
    case("train-vocab-unknown", "train --vocab char", "--vocab", "char"),
    case("train-device-unknown", "train --device tpu", "--device", "tpu"),
    case("train-unknown-option", "train --bogus", "unrecognized", "--bogus", process=True),
    case("train-stray-argument", "train stray", "unrecognized", "stray"),
    # -- train: data files
    case("train-data-missing", "train --data missing.tsv", "missing.tsv", "not found",
         process=True),
    case("train-data-folder", "train --data adir", "adir", "directory"),
    case("train-data-not-utf8", "train --data bad_utf8.tsv", "bad_utf8.tsv", "line 2",
         "not valid UTF-8"),
    case("train-data-nul-byte", "train --data nul.tsv", "nul.tsv", "NUL byte", process=True),
    case("train-data-line-over-1mib", "train --data long.tsv", "long.tsv", "line too long"),
    case("train-data-empty", "train --data empty.tsv", "empty.tsv", "empty"),
    case("train-data-blank-lines", "train --data blank.tsv", "blank.tsv", "empty"),
    case("train-valid-missing", "train --data train.tsv --valid missing.tsv", "missing.tsv"),
    case("train-test-nul-byte", "train --data train.tsv --test nul.tsv", "nul.tsv", "NUL byte"),
    case("train-max-tokens-drops-all", "train --data train.tsv --max-tokens 1", "train.tsv",
         "no valid sentence pairs"),
    # -- train: meaningless combinations
    case("train-reverse-without-data", "train --reverse", "--reverse without --data"),
    case("train-vocab-size-with-word-default", "train --vocab-size 300",
         "--vocab-size with the word vocabulary"),
    case("train-vocab-size-with-vocab-word", "train --data train.tsv --vocab word --vocab-size 300",
         "--vocab-size with the word vocabulary", "--vocab bpe"),
    case("train-min-freq-with-bpe", "train --data train.tsv --min-freq 2",
         "--min-freq with the bpe vocabulary"),
    case("train-corpus-size-with-data", "train --corpus-size 100 --data train.tsv",
         "--corpus-size with --data"),
    case("train-resume-with-overwrite", "train --checkpoint ck --resume --overwrite",
         "--resume with --overwrite"),
    case("train-resume-without-checkpoint", "train --resume", "--resume without --checkpoint"),
    case("train-overwrite-without-checkpoint", "train --overwrite",
         "--overwrite without --checkpoint"),
    case("train-average-every-without-average-last", "train --average-every 5",
         "--average-every without --average-last"),
    case("train-average-every-with-average-last-1", "train --average-every 5 --average-last 1",
         "--average-every without --average-last"),
    case("train-allow-changed-data-without-resume", "train --allow-changed-data",
         "--allow-changed-data without --resume"),
    case("train-valid-without-data", "train --valid valid.tsv", "--valid without --data"),
    case("train-data-is-test", "train --data train.tsv --test train.tsv",
         "--data and --test name the same file", process=True),
    case("train-data-is-valid-by-another-name", "train --data train.tsv --valid ./train.tsv",
         "--data and --valid name the same file", "./train.tsv"),
    case("train-data-is-valid-through-a-link", "train --data train.tsv --valid link.tsv",
         "--data and --valid name the same file", "link.tsv"),
    case("train-valid-is-test", "train --data train.tsv --valid test.tsv --test test.tsv",
         "--valid and --test name the same file"),
    # -- train: the checkpoint folder
    case("train-checkpoint-empty", "train --checkpoint ''", "empty value", "--checkpoint", "''"),
    case("train-checkpoint-is-a-file", "train --checkpoint afile", "not a folder", "--checkpoint",
         "afile"),
    case("train-checkpoint-inside-a-file", "train --checkpoint afile/sub", "inside a file",
         "--checkpoint", "afile/sub"),
    case("train-onto-a-checkpoint", "train --checkpoint ck", "ck holds a checkpoint already",
         "lstm", "step 1", "--resume", "--overwrite", process=True),
    case("train-onto-a-damaged-checkpoint", "train --checkpoint dmg",
         "dmg holds a checkpoint already", "unreadable"),
    case("train-resume-epochs-not-above", "train --checkpoint ck --resume --epochs 1",
         "--epochs", "got 1", "trained 1 epoch already", "more than 1"),
    case("train-resume-max-steps-not-above", "train --checkpoint ck --resume --max-steps 1",
         "--max-steps", "got 1", "more than 1"),
    case("train-resume-other-model", "train --checkpoint ck --resume --model rnn --epochs 5",
         "--model rnn", "lstm"),
    case("train-resume-changed-data", "train --checkpoint ck_changed --resume --epochs 5",
         "changing.tsv has changed", "--resume", "--allow-changed-data", process=True),
    case("train-resume-damaged", "train --checkpoint dmg --resume --epochs 5", "dmg",
         "not a minitransformer checkpoint"),
    case("train-resume-no-checkpoint", "train --checkpoint adir --resume", "no checkpoint",
         "--checkpoint", "adir"),
    # -- translate
    case("translate-no-checkpoint", "translate hello", "missing required argument",
         "--checkpoint"),
    case("translate-checkpoint-missing", "translate --checkpoint missing_ck hello", "missing_ck",
         "no checkpoint", "--checkpoint"),
    case("translate-checkpoint-folder-without-one", "translate --checkpoint adir hello", "adir",
         "no checkpoint"),
    case("translate-checkpoint-damaged", "translate --checkpoint dmg hello", "dmg",
         "not a minitransformer checkpoint", process=True),
    case("translate-checkpoint-not-a-zip", "translate --checkpoint junk.npz hello", "junk.npz",
         "not a minitransformer checkpoint"),
    case("translate-checkpoint-empty", "translate --checkpoint '' hello", "empty value",
         "--checkpoint"),
    case("translate-beam-0", "translate --checkpoint ck --beam 0 hello", "--beam", "got 0"),
    case("translate-beam-above-max", f"translate --checkpoint ck --beam {TOO_WIDE} hello",
         "--beam", f"got {TOO_WIDE}"),
    case("translate-length-penalty-inf", "translate --checkpoint ck --length-penalty inf hello",
         "--length-penalty", "got inf"),
    case("translate-device-unknown", "translate --checkpoint ck --device tpu hello", "--device",
         "tpu"),
    case("translate-unknown-option", "translate --checkpoint ck --bogus hello", "--bogus"),
    case("translate-argument-not-utf8", ["translate", "--checkpoint", "ck", b"\xff\xfe"],
         "not valid UTF-8", "sentence 1 of the command line"),
    case("translate-stdin-not-utf8", "translate --checkpoint ck", "stdin, line 2",
         "not valid UTF-8", stdin=b"the dog sees the cat\n\xff\xfe\n"),
    case("translate-stdin-nul-byte", "translate --checkpoint ck", "stdin, line 1", "NUL byte",
         stdin=b"the dog\x00sees\n", process=True),
    case("translate-stdin-line-over-1mib", "translate --checkpoint ck", "stdin, line 1",
         "line too long", stdin=b"x" * (MAX_LINE_BYTES + 10) + b"\n"),
    # -- evaluate
    case("evaluate-no-checkpoint", "evaluate", "missing required argument", "--checkpoint"),
    case("evaluate-checkpoint-missing", "evaluate --checkpoint missing_ck", "missing_ck"),
    case("evaluate-checkpoint-damaged", "evaluate --checkpoint dmg", "dmg",
         "not a minitransformer checkpoint"),
    case("evaluate-output-is-the-checkpoint", "evaluate --checkpoint ck --output ck/checkpoint.npz",
         "would write over a file it reads", "--output", "--checkpoint", process=True),
    case("evaluate-output-is-the-checkpoint-file",
         "evaluate --checkpoint ck/checkpoint.npz --output ./ck/checkpoint.npz",
         "would write over a file it reads", "--checkpoint"),
    case("evaluate-output-is-data", "evaluate --checkpoint ck --data test.tsv --output test.tsv",
         "would write over a file it reads", "--output", "--data"),
    case("evaluate-output-is-training-data", "evaluate --checkpoint ck --output train.tsv",
         "would write over a file it reads", "the training's --data"),
    case("evaluate-output-is-training-valid", "evaluate --checkpoint ck --output valid.tsv",
         "the training's --valid"),
    case("evaluate-output-is-training-test", "evaluate --checkpoint ck --output test.tsv",
         "the training's --test"),
    case("evaluate-output-links-to-training-data", "evaluate --checkpoint ck --output link.tsv",
         "the training's --data", "link.tsv"),
    case("evaluate-output-in-no-folder", "evaluate --checkpoint ck --output nodir/x",
         "its folder does not exist", "--output", "nodir/x"),
    case("evaluate-output-inside-a-file", "evaluate --checkpoint ck --output afile/x", "--output",
         "afile/x", "inside a file"),
    case("evaluate-output-is-a-folder", "evaluate --checkpoint ck --output adir",
         "a folder, not a file", "--output"),
    case("evaluate-output-empty", "evaluate --checkpoint ck --output ''", "empty value",
         "--output"),
    case("evaluate-data-missing-keeps-output", "evaluate --checkpoint ck --data missing.tsv "
         "--output previous.txt", "missing.tsv", "not found"),
    case("evaluate-data-nul-byte-keeps-output", "evaluate --checkpoint ck --data nul.tsv "
         "--output previous.txt", "nul.tsv", "NUL byte"),
    case("evaluate-data-not-utf8", "evaluate --checkpoint ck --data bad_utf8.tsv", "bad_utf8.tsv",
         "not valid UTF-8"),
    case("evaluate-data-empty", "evaluate --checkpoint ck --data empty.tsv", "empty.tsv", "empty"),
    case("evaluate-data-folder", "evaluate --checkpoint ck --data adir", "adir", "directory"),
    case("evaluate-data-line-over-1mib", "evaluate --checkpoint ck --data long.tsv", "long.tsv",
         "line too long"),
    case("evaluate-changed-test-set", "evaluate --checkpoint ck_changed",
         "changing.tsv has changed", "--data TEST.tsv"),
    case("evaluate-beam-above-max", "evaluate --checkpoint ck --beam 100", "--beam", "got 100"),
    case("evaluate-length-penalty-nan", "evaluate --checkpoint ck --length-penalty nan",
         "--length-penalty", "got nan"),
    case("evaluate-unknown-option", "evaluate --checkpoint ck --max-tokens 3", "unrecognized",
         "--max-tokens"),
    # -- demo
    case("demo-seconds-0", "demo --seconds 0", "--seconds", "got 0", process=True),
    case("demo-seconds-inf", "demo --seconds inf", "--seconds", "got inf"),
    case("demo-seconds-negative", "demo --seconds -5", "--seconds", "got -5"),
    case("demo-corpus-size-negative", "demo --corpus-size -5", "--corpus-size", "got -5"),
    case("demo-test-sentences-0", "demo --test-sentences 0", "--test-sentences", "got 0"),
    case("demo-seed-word", "demo --seed x", "--seed", "got x"),
    case("demo-out-inside-a-file", "demo --out afile/x", "inside a file", "--out", "afile/x"),
    case("demo-out-is-a-file", "demo --out afile", "not a folder", "--out", "afile"),
    case("demo-out-empty", "demo --out ''", "empty value", "--out"),
    case("demo-device-unknown", "demo --device tpu", "--device", "tpu"),
    case("demo-unknown-option", "demo --bogus", "unrecognized", "--bogus"),
    # -- data multi30k
    case("data-no-corpus", "data", "missing required argument"),
    case("data-unknown-corpus", "data nope", "invalid choice", "nope"),
    case("data-timeout-0", "data multi30k --timeout 0", "--timeout", "got 0", process=True),
    case("data-timeout-nan", "data multi30k --timeout nan", "--timeout", "got nan"),
    case("data-timeout-word", "data multi30k --timeout soon", "--timeout", "got soon"),
    case("data-dir-is-a-file", "data multi30k --dir afile", "not a folder", "--dir", "afile"),
    case("data-dir-inside-a-file", "data multi30k --dir afile/x", "inside a file", "--dir"),
    case("data-dir-empty", "data multi30k --dir ''", "empty value", "--dir"),
    case("data-base-url-no-folder", "data multi30k --dir fresh --base-url missing_folder",
         "--base-url missing_folder", "no such folder"),
    case("data-unknown-option", "data multi30k --bogus", "unrecognized", "--bogus"),
    # -- docs
    case("docs-root-not-the-repository", "docs --root adir", "--root", "adir",
         "bench/results", process=True),
    case("docs-root-missing", "docs --root missing_root", "--root", "missing_root"),
    case("docs-root-is-a-file", "docs --check --root afile", "--root", "afile"),
    case("docs-root-empty", "docs --root ''", "empty value", "--root"),
    case("docs-unknown-option", "docs --bogus", "unrecognized", "--bogus"),
    # -- table1 (in-process, a parse that succeeds stops with an AssertionError)
    case("table1-d-0", "table1 --d 0", "--d", "got 0", process=True),
    case("table1-heads-negative", "table1 --heads -1", "--heads", "got -1"),
    case("table1-ns-0", "table1 --ns 0", "--ns", "got 0"),
    case("table1-ns-word", "table1 --ns 8 16 x", "--ns", "got x"),
    case("table1-layers-unknown", "table1 --layers gru", "--layers", "gru"),
    case("table1-device-unknown", "table1 --device tpu", "--device", "tpu"),
    case("table1-out-dir-inside-a-file", "table1 --out-dir afile/x", "inside a file",
         "--out-dir", "afile/x"),
    case("table1-unknown-option", "table1 --bogus", "unrecognized", "--bogus"),
    case("table1-one-length", "table1 --ns 8", "--ns", "8", process=True),
    case("table1-readme-snippet-in-no-folder", "table1 --readme-snippet nodir/x",
         "--readme-snippet", "nodir/x", process=True),
    # -- bench
    case("bench-unknown-name", "bench nope", "no such benchmark", "nope", "matmul_peak",
         command="bench", process=True),
    case("bench-empty-name", "bench ''", "no such benchmark", "''", command="bench"),
    case("bench-repeats-0", "bench matmul_peak --repeats 0", "--repeats", "got 0"),
    case("bench-out-dir-inside-a-file", "bench matmul_peak --out-dir afile/x", "inside a file",
         "--out-dir", "afile/x"),
    case("bench-out-dir-empty", "bench matmul_peak --out-dir ''", "empty value", "--out-dir"),
    case("bench-device-unknown", "bench matmul_peak --device tpu", "--device", "tpu"),
    case("bench-size-unknown", "bench decoding --size huge", "--size", "huge"),
    case("bench-lengths-0", "bench seq_scaling --lengths 0", "--lengths", "got 0"),
    case("bench-memory-budget-nan", "bench attention_memory --memory-budget-gib nan",
         "--memory-budget-gib", "got nan"),
    case("bench-min-time-negative", "bench predict --min-time -1", "--min-time", "got -1"),
    case("bench-budget-negative", "bench time_to_bleu --budget -1", "--budget", "got -1"),
    case("bench-unknown-option", "bench overhead --bogus", "unrecognized", "--bogus"),
    case("bench-suite-only-unknown", "bench --only nope", "--only", "nope"),
    case("bench-suite-device-unknown", "bench --device tpu", "--device", "tpu"),
    case("bench-suite-unknown-option", "bench --bogus", "unrecognized", "--bogus"),
    case("bench-table1-one-length", "bench table1 --ns 8", "--ns", "8", process=True),
    # -- a bad $MINITRANSFORMER_DEVICE is every command's mistake
    case("env-device-train", "train --epochs 1", *DEVICE_FRAGMENTS, env=BAD_DEVICE),
    case("env-device-translate", "translate --checkpoint ck hello", *DEVICE_FRAGMENTS,
         env=BAD_DEVICE),
    case("env-device-evaluate", "evaluate --checkpoint ck", *DEVICE_FRAGMENTS, env=BAD_DEVICE),
    case("env-device-demo", "demo", *DEVICE_FRAGMENTS, env=BAD_DEVICE),
    case("env-device-docs", "docs --check", *DEVICE_FRAGMENTS, env=BAD_DEVICE),
    case("env-device-table1", "table1", *DEVICE_FRAGMENTS, env=BAD_DEVICE),
    case("env-device-bench", "bench matmul_peak", *DEVICE_FRAGMENTS, env=BAD_DEVICE),
    case("env-device-data", "data multi30k --dir fresh", *DEVICE_FRAGMENTS, env=BAD_DEVICE),
    case("env-device-empty", "train --epochs 1", "MINITRANSFORMER_DEVICE", "''",
         env={"MINITRANSFORMER_DEVICE": ""}),
    # -- no command, or an unknown one
    case("no-command", "", "missing required argument", "command", command="", process=True),
    case("unknown-command", "nope", "invalid choice", "nope", command=""),
]


def _refuse_work(what):
    def work(*args, **kwargs):
        raise AssertionError(f"the command went on to {what} instead of stopping at its mistake")
    return work


def _parsed_without_error(parse):
    def checked(*args, **kwargs):
        parse(*args, **kwargs)
        raise AssertionError("the benchmark's command line was read without an error: it "
                             "would run the benchmark")
    return checked


def _in_process(case, kit, monkeypatch, capsys):
    """cli.main(argv) in this process: (exit status, stdout, stderr). The work a
    command would do after its checks is replaced by an AssertionError, so that a
    mistake the command misses fails the test at once instead of training (or
    measuring: a benchmark that reads its command line without an error stops there)."""
    from minitransformer import docs
    from minitransformer.benchmarks import common, runner
    from minitransformer.translation import demo, download
    from minitransformer.translation.train import Trainer
    monkeypatch.chdir(kit)
    monkeypatch.setenv("MINITRANSFORMER_DEVICE", "cpu")
    monkeypatch.setattr(backend, "_default_device", None)   # read $MINITRANSFORMER_DEVICE anew
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(case.stdin), encoding="utf-8"))
    monkeypatch.setattr(Trainer, "fit", _refuse_work("train"))
    monkeypatch.setattr(Trainer, "translate", _refuse_work("translate"))
    monkeypatch.setattr(demo, "run", _refuse_work("run the demo"))
    monkeypatch.setattr(download, "_fetch", _refuse_work("download"))
    monkeypatch.setattr(docs, "main", _refuse_work("write the docs"))
    monkeypatch.setattr(common, "parse", _parsed_without_error(common.parse))
    monkeypatch.setattr(runner, "run_in_suite", _refuse_work("run the benchmark suite"))
    capsys.readouterr()
    try:
        main([os.fsdecode(arg) for arg in case.argv])
        status = 0
    except SystemExit as exit_info:
        status = exit_info.code
    out, err = capsys.readouterr()
    if isinstance(status, str):   # what the interpreter would print, and its status
        status, err = 1, err + status + "\n"
    return 0 if status is None else status, out, err


def test_a_bad_device_variable_blocks_neither_help_nor_an_explicit_device(kit):
    status, out, err = run_cli(["train", "--help"], cwd=kit, env=BAD_DEVICE)
    assert (status, err) == (0, "") and out.startswith("usage: minitransformer train")
    status, out, err = run_cli(["translate", "--device", "cpu", "--checkpoint", "missing_ck",
                                "hello"], cwd=kit, env=BAD_DEVICE)
    assert status == 2 and "--checkpoint" in one_line(err) and "MINITRANSFORMER" not in err


@pytest.mark.parametrize("case", CASES)
def test_a_mistake_is_one_line_status_2_and_changes_nothing(case, kit, monkeypatch, capsys):
    before = snapshot(kit)
    if case.process:
        delegated = case.argv[:1] and case.argv[0] in _DELEGATED
        status, out, err = run_cli(case.argv, cwd=kit, env=case.env, stdin=case.stdin,
                                   timeout=BENCH_TIMEOUT if delegated else COMMAND_TIMEOUT)
    else:
        status, out, err = _in_process(case, kit, monkeypatch, capsys)
    assert status == 2, (status, out, err)
    line = one_line(err)
    prefix = f"minitransformer{' ' + case.command if case.command else ''}: error: "
    assert line.startswith(prefix), line
    for fragment in case.fragments:
        assert fragment in line, f"{fragment!r} not in {line!r}"
    assert "Traceback" not in out and "Traceback" not in err
    assert_unchanged(before, snapshot(kit))


def test_the_table_covers_every_command():
    covered = {_named(param.values[0].argv).split(" ")[0] for param in CASES}
    assert {"train", "translate", "evaluate", "demo", "data", "table1", "bench", "docs"} <= covered
    assert len(CASES) >= 60
    assert len({param.id for param in CASES}) == len(CASES)


# ---------------------------------------------------------------- what a training leaves behind
@pytest.mark.slow
def test_train_refuses_a_checkpoint_and_overwrite_replaces_it(kit, tmp_path):
    folder = tmp_path / "run"
    shutil.copytree(kit / "ck", folder)
    before = sha256(folder / "checkpoint.npz")
    args = train_args(kit, folder, model="rnn")
    status, out, err = run_cli(args, cwd=tmp_path)
    assert status == 2, (out, err)
    line = one_line(err)
    assert line.startswith("minitransformer train: error: ")
    assert "holds a checkpoint already" in line and "lstm" in line and "step 1" in line
    assert "--resume" in line and "--overwrite" in line
    assert sha256(folder / "checkpoint.npz") == before
    assert sorted(os.listdir(folder)) == ["checkpoint.npz"]

    status, out, err = run_cli(args + ["--overwrite"], cwd=tmp_path)
    assert status == 0, (out, err)
    assert sha256(folder / "checkpoint.npz") != before
    assert checkpoint.load_meta(folder)["model_config"]["kind"] == "rnn"
    assert sorted(os.listdir(folder)) == ["checkpoint.npz"]   # no lock, no temporary file


def test_a_lock_of_a_running_training_refuses_a_second_one(kit, tmp_path, sleeper):
    folder = tmp_path / "run"
    folder.mkdir()
    lock = folder / checkpoint.LOCK
    for holder, named in ((f"{sleeper.pid} {socket.gethostname()}", f"process {sleeper.pid}"),
                          ("4242 another-host.example", "process 4242 on another-host.example")):
        lock.write_text(holder + "\n")
        status, out, err = run_cli(train_args(kit, folder), cwd=tmp_path)
        assert status == 2, (out, err)
        line = one_line(err)
        assert line.startswith("minitransformer train: error: ")
        assert named in line and checkpoint.LOCK in line and "another training" in line
        assert lock.read_text() == holder + "\n"
        assert sorted(os.listdir(folder)) == [checkpoint.LOCK]
    assert sleeper.poll() is None   # nothing was done to the holder


@pytest.mark.slow
def test_a_lock_left_by_a_dead_process_is_taken_over(kit, tmp_path, ended_pid):
    folder = tmp_path / "run"
    folder.mkdir()
    lock = folder / checkpoint.LOCK
    lock.write_text(f"{ended_pid} {socket.gethostname()}\n")
    status, out, err = run_cli(train_args(kit, folder), cwd=tmp_path)
    assert status == 0, (out, err)
    assert f"process {ended_pid} no longer runs; taking its lock over" in out
    assert not lock.exists()
    assert checkpoint.load_meta(folder)["progress"]["epoch"] == 1


def _as_from_a_terminal():
    """In the child, before Python starts: SIGINT handled as in a terminal's foreground.
    A shell starts its background jobs (a CI step run with ``&``, ``nohup``) with SIGINT
    ignored, and Python keeps an ignored SIGINT ignored: Ctrl-C would never arrive."""
    signal.signal(signal.SIGINT, signal.SIG_DFL)


@pytest.mark.slow
def test_ctrl_c_ends_training_with_status_130_and_the_checkpoint_intact(kit, tmp_path):
    folder = tmp_path / "run"
    saved = folder / checkpoint.FILENAME
    out_path, err_path = tmp_path / "out.txt", tmp_path / "err.txt"
    with open(out_path, "wb") as out, open(err_path, "wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "minitransformer", *train_args(kit, folder, epochs=100_000)],
            cwd=tmp_path, env=command_env(), stdout=out, stderr=err,
            preexec_fn=_as_from_a_terminal)
    try:
        wait_for(lambda: saved.exists() or child.poll() is not None, "first checkpoint")
        assert child.poll() is None, (out_path.read_text(), err_path.read_text())
        child.send_signal(signal.SIGINT)
        status = child.wait(timeout=COMMAND_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    err = err_path.read_text()
    assert status == 130, (out_path.read_text(), err)
    line = one_line(err)
    found = re.fullmatch(r"minitransformer train: interrupted at step (\d+); the checkpoint at "
                         r"step (\d+) is intact \((.*)\)", line)
    assert found, line
    assert found[3] == str(folder)
    progress = checkpoint.load(folder)["progress"]
    assert progress["step"] == int(found[2]) <= int(found[1])
    # No lock is left. A temporary file is not either, unless Ctrl-C came in the
    # microseconds between its creation and the save's cleanup; the next save removes it.
    left = {name for name in os.listdir(folder)
            if not name.startswith(f".checkpoint-{child.pid}-")}
    assert left == {checkpoint.FILENAME}


@pytest.mark.slow
def test_a_killed_saves_temporary_file_goes_with_the_next_save(kit, tmp_path, ended_pid, sleeper):
    folder = tmp_path / "run"
    folder.mkdir()
    dead = folder / f".checkpoint-{ended_pid}-abc.tmp"
    live = folder / f".checkpoint-{sleeper.pid}-abc.tmp"
    dead.write_bytes(b"half a checkpoint, its writer killed")
    live.write_bytes(b"a checkpoint still being written")
    status, out, err = run_cli(train_args(kit, folder), cwd=tmp_path)
    assert status == 0, (out, err)
    assert not dead.exists()
    assert live.read_bytes() == b"a checkpoint still being written"
    assert sorted(os.listdir(folder)) == sorted([checkpoint.FILENAME, live.name])
    # checkpoint.save itself, with no lock around it, does the same.
    again = folder / f".checkpoint-{ended_pid}-xyz.tmp"
    again.write_bytes(b"another killed save")
    checkpoint.save(folder, checkpoint.load(folder))
    assert not again.exists() and live.exists()
    assert checkpoint.load_meta(folder)["progress"]["step"] == 1


def test_a_reader_that_stops_reading_ends_translate_quietly(kit, tmp_path):
    # A million lines, almost all blank (translated at no cost, to blank lines): far
    # more output than a pipe holds, so translate is still writing when the pipe closes.
    text = "The dog sees the cat.\n" * 5 + "\n" * 1_000_000
    err_path = tmp_path / "err.txt"
    with open(err_path, "wb") as err:
        child = subprocess.Popen(
            [sys.executable, "-m", "minitransformer", "translate", "--checkpoint", str(kit / "ck")],
            cwd=tmp_path, env=command_env(), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
            stderr=err)
    try:
        child.stdin.write(text.encode("utf-8"))
        child.stdin.close()
        ready, _, _ = select.select([child.stdout], [], [], COMMAND_TIMEOUT)
        assert ready, "no output"
        first = child.stdout.readline()
        child.stdout.close()
        status = child.wait(timeout=COMMAND_TIMEOUT)
    finally:
        if child.poll() is None:
            child.kill()
            child.wait()
    assert first.strip(), first
    assert status == 141
    assert err_path.read_text() == ""


@pytest.mark.parametrize("mistake", [["--resume"], ["--data", "missing.tsv"]],
                         ids=["resume-nothing", "data-missing"])
def test_a_refused_training_creates_no_checkpoint_folder(kit, tmp_path, mistake):
    folder = tmp_path / "typo"
    status, out, err = run_cli(["train", "--checkpoint", str(folder), *mistake], cwd=kit)
    assert status == 2, (out, err)
    assert one_line(err).startswith("minitransformer train: error: ")
    assert not folder.exists()


def test_an_overwrite_interrupted_before_its_first_save_names_the_earlier_checkpoint(kit,
                                                                                      tmp_path):
    from minitransformer import cli
    folder = tmp_path / "ck"
    shutil.copytree(kit / "ck", folder)
    earlier = cli._file_identity(str(folder))
    interrupted = type("Trainer", (), {"step": 3})
    line = cli._left_behind(interrupted, str(folder), earlier)
    assert "before its first save" in line and "earlier training's checkpoint" in line, line
    copy = tmp_path / "saved.npz"               # this run's first save replaces the file
    shutil.copy(folder / checkpoint.FILENAME, copy)
    os.replace(copy, folder / checkpoint.FILENAME)
    assert "is intact" in cli._left_behind(interrupted, str(folder), earlier)
