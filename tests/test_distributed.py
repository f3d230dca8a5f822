"""Data parallelism over MPI (minitransformer.distributed).

The splitting helpers are tested in this process. Everything that needs several ranks
runs ``mpiexec -n 2`` on tests/mpi_scripts/data_parallel_driver.py in a subprocess with
a timeout, and is skipped with a message where mpi4py or mpiexec is missing (install
the extra: ``pip install '.[dist]'``).
"""
import importlib.util
import os
import re
import shutil
import signal
import subprocess
import sys
import time

import numpy as np
import pytest

from minitransformer import distributed
from minitransformer.translation.batching import make_batch

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
DRIVER = os.path.join(ROOT, "tests", "mpi_scripts", "data_parallel_driver.py")
FAILING_VALIDATION = os.path.join(ROOT, "tests", "mpi_scripts", "failing_validation.py")
MPIEXEC = shutil.which("mpiexec")
HAS_MPI4PY = importlib.util.find_spec("mpi4py") is not None

needs_mpi = pytest.mark.skipif(
    not (MPIEXEC and HAS_MPI4PY),
    reason="needs mpi4py and mpiexec: pip install '.[dist]' (mpi4py + the mpich wheel)")


# ---------------------------------------------------------------- in this process
def test_shard_range_covers_every_item_once_in_near_equal_parts():
    for total in (0, 1, 5, 16, 17):
        for size in (1, 2, 3, 4):
            parts = [distributed.shard_range(total, r, size) for r in range(size)]
            assert parts[0][0] == 0 and parts[-1][1] == total
            assert all(a[1] == b[0] for a, b in zip(parts, parts[1:]))   # consecutive
            lengths = [stop - start for start, stop in parts]
            assert max(lengths) - min(lengths) <= 1


def test_shard_range_rejects_a_rank_outside_the_job():
    with pytest.raises(ValueError, match="rank must be in"):
        distributed.shard_range(10, 2, 2)


def test_shard_batch_keeps_the_rows_and_recounts_the_tokens():
    # Targets of 1, 2, 3, 4 tokens (+ <eos>): 2+3+4+5 = 14 predictions in all.
    examples = [([5, 6], [7] * n) for n in (1, 2, 3, 4)]
    batch = make_batch(examples)
    first, second = (distributed.shard_batch(batch, r, 2) for r in (0, 1))
    assert first.n_tokens == 2 + 3 and second.n_tokens == 4 + 5
    assert first.n_tokens + second.n_tokens == batch.n_tokens
    assert second.indices == [2, 3]
    # The padding width stays the global batch's: each row is computed as in one process.
    assert second.tgt_out.shape == (2, batch.tgt_out.shape[1])
    np.testing.assert_array_equal(second.tgt_out.numpy(), batch.tgt_out.numpy()[2:])
    np.testing.assert_array_equal(first.src_padding_mask.numpy(),
                                  batch.src_padding_mask.numpy()[:2])


def test_shard_batch_gives_none_to_a_rank_without_rows():
    batch = make_batch([([5], [6])])
    assert distributed.shard_batch(batch, 0, 2) is not None
    assert distributed.shard_batch(batch, 1, 2) is None


def test_launcher_detection_reads_the_environment(monkeypatch):
    assert distributed.launched_by_mpi({"PMI_SIZE": "2"})
    assert distributed.launched_by_mpi({"OMPI_COMM_WORLD_SIZE": "4"})
    assert not distributed.launched_by_mpi({"PATH": "/bin"})
    for name in distributed.LAUNCHER_SIZE_VARIABLES:
        monkeypatch.delenv(name, raising=False)
    assert distributed.init() is None                      # not under mpiexec: one process
    assert distributed.init(distributed=False) is None


def test_each_rank_gets_its_own_seed_and_rank_0_the_one_process_one():
    from minitransformer import backend
    seeds = {backend.step_seed(7, step, rank) for step in range(50) for rank in range(4)}
    assert len(seeds) == 200 and all(0 <= seed < 2 ** 63 for seed in seeds)
    assert backend.step_seed(7, 3, 0) == backend.step_seed(7, 3)   # a one-process run's
    # The same in another process: nothing in it depends on Python's per-process hashing,
    # so every rank (each its own process) agrees on every rank's seed.
    import subprocess
    import sys
    other = subprocess.run([sys.executable, "-c", "from minitransformer import backend; "
                            "print(backend.step_seed(7, 3, 1))"], capture_output=True, text=True,
                           env=dict(os.environ, PYTHONHASHSEED="random"), check=True)
    assert int(other.stdout) == backend.step_seed(7, 3, 1)
    with pytest.raises(ValueError, match="rank"):
        backend.step_seed(7, 3, -1)


def test_a_rank_above_0_reseeds_the_cpu_generator_each_step_and_rank_0_does_not():
    from minitransformer import backend
    backend.manual_seed(0)
    backend.reseed_step("cpu", 0, 5, rank=0)
    rank0 = backend.to_numpy(backend.random_uniform((4,), "float32", "cpu"))
    backend.manual_seed(0)
    one_process = backend.to_numpy(backend.random_uniform((4,), "float32", "cpu"))
    np.testing.assert_array_equal(rank0, one_process)     # untouched: the running stream
    draws = []
    for _ in range(2):
        backend.manual_seed(123)                          # whatever came before ...
        backend.reseed_step("cpu", 0, 5, rank=1)
        draws.append(backend.to_numpy(backend.random_uniform((4,), "float32", "cpu")))
    np.testing.assert_array_equal(draws[0], draws[1])     # ... step 5 of rank 1 is the same
    assert not np.array_equal(draws[0], rank0)


def test_fail_together_does_nothing_in_one_process():
    distributed.fail_together("minitransformer train: error: something", 2)   # returns


# ---------------------------------------------------------------- under mpiexec
def run_driver(tmp_path, *args, ranks=2, timeout=300):
    """Run the driver under ``mpiexec -n ranks``; returns the completed process. On a
    timeout the whole process group goes (mpiexec and its ranks), then the test fails."""
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=ROOT)
    command = [MPIEXEC, "-n", str(ranks), sys.executable, DRIVER, "--out", str(tmp_path), *args]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
                          text=True, start_new_session=True) as process:
        try:
            output, _ = process.communicate(timeout=timeout)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            output, _ = process.communicate()
            pytest.fail(f"mpiexec still running after {timeout} s (a hang):\n{output}")
    return subprocess.CompletedProcess(command, process.returncode, output, "")


def load_driver():
    spec = importlib.util.spec_from_file_location("data_parallel_driver", DRIVER)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("model", ["transformer", "lstm"])
def test_two_ranks_with_batch_b_equal_one_rank_with_batch_2b(tmp_path, model):
    done = run_driver(tmp_path, "--model", model, "--steps", "3", "--global-batch", "16")
    assert done.returncode == 0, done.stdout + done.stderr
    ranks = [np.load(tmp_path / f"rank{r}.npz") for r in (0, 1)]
    # One process, the same three global batches of 16 pairs, float64.
    trainer, losses = load_driver().train_steps(None, model, steps=3, global_batch=16)
    names = [name for name, _ in trainer.model.named_parameters()]
    assert len(names) > 5
    for name, p in trainer.model.named_parameters():
        # All ranks hold identical parameters, bit for bit ...
        np.testing.assert_array_equal(ranks[0][name], ranks[1][name], err_msg=name)
        # ... equal to one process's up to float64 rounding.
        np.testing.assert_allclose(ranks[0][name], p.data, rtol=1e-10, atol=1e-12, err_msg=name)
    # The loss reported by the ranks is the global batch's loss.
    np.testing.assert_allclose(ranks[0]["losses"], losses, rtol=1e-12)
    # The trace of a step holds the allreduce: the small one (weights, losses, gradient
    # flags) and the gradient buckets, which together carry every gradient once.
    gradient_bytes = sum(p.data.nbytes for p in trainer.model.parameters())
    sent = ranks[0]["allreduce_bytes"]
    assert len(sent) >= 2
    assert sent[0] == 8 * (2 + len(names))
    assert sum(sent[1:]) == gradient_bytes


@needs_mpi
@pytest.mark.slow
@pytest.mark.parametrize("how, expected", [
    ("raise", "injected failure on rank 1"),   # an exception: the hook aborts the job
    ("exit", None),                            # a rank dies (exit code 3): mpiexec ends the others
    ("leave", "DistributedTimeout"),           # a rank stops taking part: the timeout
    ("hang", "DistributedTimeout"),            # a rank hangs: the others' deadline ends it
])
def test_a_failing_rank_stops_the_others_with_an_error(tmp_path, how, expected):
    done = run_driver(tmp_path, "--fail", how, "--fail-step", "1", "--timeout", "5")
    stopped = time.time()
    output = done.stdout + done.stderr
    # Timed from the failure (start-up can take long on a busy machine): the 5 s timeout
    # of the collectives plus the abort, not the subprocess timeout of a hang.
    failed_at = re.search(r"failing at ([0-9.]+)", output)
    assert failed_at, output
    assert stopped - float(failed_at.group(1)) < 30, output
    if expected is None:
        assert done.returncode == 3, output           # the dead rank's exit code
    else:
        assert done.returncode != 0, output
        assert expected in output
        assert "aborting all ranks" in output
    assert not (tmp_path / "rank0.npz").exists()       # rank 0 never finished training


def logged_losses(out):
    """The losses of the progress lines ('  step N  loss X ...'), in order."""
    return [float(x) for x in re.findall(r"step\s+\d+\s+loss\s+([\d.]+)", out)]


@needs_mpi
@pytest.mark.slow
def test_train_command_on_two_ranks_follows_the_single_process_loss_curve(tmp_path, capsys):
    from minitransformer.cli import main
    common = ["train", "--model", "lstm", "--corpus-size", "300", "--log-every", "1"]
    main(common + ["--epochs", "2"])                               # one process, two epochs
    single = logged_losses(capsys.readouterr().out)
    checkpoint = str(tmp_path / "ckpt")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=ROOT)
    done = subprocess.run([MPIEXEC, "-n", "2", sys.executable, "-m", "minitransformer"] + common
                          + ["--epochs", "1", "--checkpoint", checkpoint], env=env,
                          capture_output=True, text=True, timeout=600, cwd=ROOT)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "data parallel over 2 ranks" in done.stdout
    assert done.stdout.count("epoch 1:") == 1                      # rank 0 alone reports
    two_ranks = logged_losses(done.stdout)
    # The second epoch resumes the two ranks' checkpoint in one process.
    main(["train", "--resume", "--checkpoint", checkpoint, "--epochs", "2", "--log-every", "1"])
    resumed = logged_losses(capsys.readouterr().out)
    assert len(single) == len(two_ranks) + len(resumed) >= 4
    # Printed with 3 decimals: equal up to the rounding of the last digit.
    np.testing.assert_allclose(two_ranks + resumed, single, atol=1.5e-3, rtol=0)


@needs_mpi
@pytest.mark.slow
def test_each_rank_draws_its_own_dropout_masks_and_a_run_repeats_exactly(tmp_path):
    # Every rank is given the same rows, so only the dropout masks can make their
    # losses differ; without dropout they must agree (the check can fail both ways).
    runs = {}
    for name, dropout in (("first", "0.3"), ("again", "0.3"), ("none", "0.0")):
        out = tmp_path / name
        out.mkdir()
        done = run_driver(out, "--dropout", dropout, "--steps", "3")
        assert done.returncode == 0, done.stdout + done.stderr
        runs[name] = [np.load(out / f"rank{r}.npz") for r in (0, 1)]
    first, again, none = runs["first"], runs["again"], runs["none"]
    # The same weights and rows on both ranks: in evaluation mode, the same loss.
    assert first[0]["evaluation_loss"] == first[1]["evaluation_loss"]
    # Training mode: every step's masks differ between the ranks ...
    assert np.all(first[0]["own_losses"] != first[1]["own_losses"]), first[0]["own_losses"]
    np.testing.assert_array_equal(none[0]["own_losses"], none[1]["own_losses"])
    # ... and a second run of the job draws exactly the same ones.
    for rank in (0, 1):
        np.testing.assert_array_equal(first[rank]["own_losses"], again[rank]["own_losses"])
        np.testing.assert_array_equal(first[rank]["losses"], again[rank]["losses"])


@needs_mpi
@pytest.mark.slow
def test_rank_0_failing_alone_in_the_command_line_ends_the_job_at_once(tmp_path):
    # Rank 0 alone validates, after the first epoch, while rank 1 waits in its next
    # collective; the script makes that validation raise. The command line reports it
    # in one line; the job must end within seconds, not at the
    # collectives' deadline (raised here to 600 s so that only the abort can end it).
    train = tmp_path / "train.tsv"
    train.write_text("".join(f"a{i} b{i} c\tx{i} y{i} z\n" for i in range(200)), encoding="utf-8")
    valid = tmp_path / "valid.tsv"
    valid.write_text("a1 b1 c\tx1 y1 z\n", encoding="utf-8")
    test = tmp_path / "test.tsv"
    test.write_text("a2 b2 c\tx2 y2 z\n", encoding="utf-8")
    env = dict(os.environ, OPENBLAS_NUM_THREADS="1", PYTHONPATH=ROOT,
               MINITRANSFORMER_DIST_TIMEOUT="600")
    command = [MPIEXEC, "-n", "2", sys.executable, FAILING_VALIDATION, "train",
               "--model", "lstm", "--data", str(train), "--valid", str(valid), "--test",
               str(test), "--vocab", "word", "--epochs", "3", "--log-every", "0",
               "--checkpoint", str(tmp_path / "ck")]
    with subprocess.Popen(command, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                          text=True, start_new_session=True, cwd=str(tmp_path)) as process:
        try:
            out, err = process.communicate(timeout=300)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            out, err = process.communicate()
            pytest.fail(f"the job still ran after 300 s (a hang):\n{out}\n{err}")
        ended = time.time()
    failed_at = re.search(r"failing in validation at ([0-9.]+)", err)
    assert failed_at, out + err
    assert ended - float(failed_at.group(1)) < 30, out + err
    assert process.returncode == 2, out + err
    assert "minitransformer train: error: injected failure in validation" in err
    assert "[rank 0 of 2: aborting all ranks]" in err
