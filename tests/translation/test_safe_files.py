"""What keeps work safe on disk: checkpoints written atomically with the umask's mode,
leftovers of killed saves removed, one writer per checkpoint folder, data files
recognised by their sha256, and text files read as a stream with bounded lines."""
import io
import os
import socket

import numpy as np
import pytest

from minitransformer.translation import checkpoint
from minitransformer.translation.data import DataChanged, data_sha256, load_data
from minitransformer.translation.tsv import MAX_LINE_BYTES, load_tsv, text_lines


# ---------------------------------------------------------------- checkpoints
def test_a_checkpoint_file_gets_the_mode_the_umask_gives(tmp_path):
    previous = os.umask(0o022)
    try:
        path = checkpoint.save(str(tmp_path), {"weights": np.ones(3)})
    finally:
        os.umask(previous)
    assert os.stat(path).st_mode & 0o777 == 0o644     # not mkstemp's private 0600
    np.testing.assert_array_equal(checkpoint.load(str(tmp_path))["weights"], np.ones(3))


def test_a_save_removes_what_killed_saves_left_and_keeps_a_running_ones(tmp_path, ended_pid):
    dead = tmp_path / f".checkpoint-{ended_pid}-k2j3.tmp"
    dead.write_bytes(b"half a checkpoint")
    older = tmp_path / ".checkpoint-abc123.tmp"          # no pid in the name: nobody's
    older.write_bytes(b"half a checkpoint")
    running = tmp_path / f".checkpoint-{os.getpid()}-q9x.tmp"
    running.write_bytes(b"being written")
    checkpoint.save(str(tmp_path), {"step": 1})
    assert not dead.exists() and not older.exists() and running.exists()


def test_load_meta_reads_the_json_part_alone(tmp_path):
    checkpoint.save(str(tmp_path), {"progress": {"step": 7}, "weights": np.zeros(2)})
    meta = checkpoint.load_meta(str(tmp_path))
    assert meta["progress"] == {"step": 7}


def test_the_lock_refuses_a_second_writer_and_is_removed_at_the_end(tmp_path):
    with checkpoint.writer_lock(str(tmp_path), log=print) as lock:
        with open(lock, encoding="utf-8") as f:
            assert f.read().split() == [str(os.getpid()), socket.gethostname()]
        with pytest.raises(checkpoint.CheckpointLocked, match=f"process {os.getpid()}"):
            with checkpoint.writer_lock(str(tmp_path)):
                pass
        assert os.path.exists(lock)                # the refused writer left it alone
    assert not os.path.exists(lock)


def test_a_lock_of_a_process_that_ended_is_taken_over_with_a_message(tmp_path, ended_pid):
    lock = tmp_path / checkpoint.LOCK
    dead = ended_pid
    lock.write_text(f"{dead} {socket.gethostname()}\n", encoding="utf-8")
    lines = []
    with checkpoint.writer_lock(str(tmp_path), log=lines.append):
        assert lock.read_text(encoding="utf-8").split()[0] == str(os.getpid())
    assert len(lines) == 1 and str(dead) in lines[0] and "taking its lock over" in lines[0]
    assert not lock.exists()


def test_a_lock_from_another_host_counts_as_held(tmp_path):
    (tmp_path / checkpoint.LOCK).write_text("12345 some-other-machine\n", encoding="utf-8")
    with pytest.raises(checkpoint.CheckpointLocked, match="on some-other-machine"):
        with checkpoint.writer_lock(str(tmp_path)):
            pass


def test_the_lock_is_readable_by_every_user_so_that_theirs_can_name_its_holder(tmp_path):
    with checkpoint.writer_lock(str(tmp_path)) as lock:
        assert os.stat(lock).st_mode & 0o777 == 0o644


def test_pid_0_and_negative_pids_are_no_running_process():
    # os.kill(0, 0) would ask this process group, and succeed.
    assert not checkpoint.process_alive(0)
    assert not checkpoint.process_alive(-1)
    assert checkpoint.process_alive(os.getpid())


def test_a_dead_lock_already_replaced_by_another_training_is_left_alone(tmp_path, ended_pid):
    # Two trainings found the same dead lock; the other one set it aside first and made
    # its own. This one must not delete that fresh lock, believing it the dead one.
    lock = tmp_path / checkpoint.LOCK
    host = socket.gethostname()
    lock.write_text(f"{os.getpid()} {host}\n", encoding="utf-8")     # the other's, alive
    assert not checkpoint._set_aside(str(lock), (ended_pid, host))
    assert lock.read_text(encoding="utf-8").split() == [str(os.getpid()), host]
    assert sorted(os.listdir(tmp_path)) == [checkpoint.LOCK]       # nothing else left


def test_a_failed_start_removes_every_folder_the_lock_created(tmp_path):
    deep = tmp_path / "runs" / "new" / "ck"
    with pytest.raises(RuntimeError, match="resume failed"):
        with checkpoint.writer_lock(str(deep)):
            raise RuntimeError("resume failed")
    assert os.listdir(tmp_path) == []
    (tmp_path / "runs").mkdir()                                    # one that existed stays
    with pytest.raises(RuntimeError):
        with checkpoint.writer_lock(str(deep)):
            raise RuntimeError("resume failed")
    assert os.listdir(tmp_path) == ["runs"] and os.listdir(tmp_path / "runs") == []


def test_a_lock_that_cannot_be_taken_leaves_no_folder(tmp_path):
    # The lock is refused after its folder was made: the folder goes with the refusal.
    import unittest.mock
    with unittest.mock.patch.object(checkpoint, "_create_lock", return_value=False), \
            unittest.mock.patch.object(checkpoint, "_holder",
                                       return_value=(os.getpid(), socket.gethostname())):
        with pytest.raises(checkpoint.CheckpointLocked):
            with checkpoint.writer_lock(str(tmp_path / "new")):
                pass
    assert os.listdir(tmp_path) == []


def test_write_atomically_leaves_the_old_file_when_the_write_fails(tmp_path):
    target = tmp_path / "hyps.txt"
    target.write_bytes(b"old\n")

    # A write that fails half-way (here: text where bytes are due, refused by the
    # file's write) must leave the old file and no temporary one.
    with pytest.raises(TypeError):
        checkpoint.write_atomically(str(target), "text, not bytes")
    assert target.read_bytes() == b"old\n"
    assert os.listdir(tmp_path) == ["hyps.txt"]            # no temporary file left


# ---------------------------------------------------------------- data files
def write(path, lines):
    path.write_text("".join(line + "\n" for line in lines), encoding="utf-8")
    return str(path)


def test_load_data_refuses_a_file_whose_sha256_changed(tmp_path):
    files = dict(tsv=write(tmp_path / "train.tsv", ["a b\tc d"] * 5),
                 valid=write(tmp_path / "valid.tsv", ["e f\tg h"]),
                 test=write(tmp_path / "test.tsv", ["i j\tk l"]))
    recorded = data_sha256(files)
    assert set(recorded) == {"tsv", "valid", "test"}
    assert load_data(**files, sha256=recorded)["test"] == [("i j", "k l")]
    write(tmp_path / "test.tsv", ["i j\tk m"])                  # one letter changed
    with pytest.raises(DataChanged) as error:
        load_data(**files, sha256=recorded)
    assert error.value.path == files["test"] and error.value.expected == recorded["test"]


def test_a_built_in_corpus_too_small_to_split_is_an_error():
    with pytest.raises(ValueError, match="2 pairs of the built-in corpus are too few"):
        load_data(corpus_size=2)


def test_text_lines_reads_a_stream_a_line_at_a_time():
    class Endless(io.RawIOBase):            # like /dev/zero, but of "x": never ends
        def readable(self):
            return True

        def readinto(self, buffer):
            buffer[:] = b"x" * len(buffer)
            return len(buffer)

    with pytest.raises(ValueError, match=r"stdin, line 1: line too long \(got more than "
                                         r"1,048,576 bytes"):
        next(text_lines(io.BufferedReader(Endless()), "stdin"))
    lines = io.BytesIO(b"\xef\xbb\xbfone\r\ntwo\n\nthree")
    assert list(text_lines(lines, "s")) == [(1, "one"), (2, "two"), (3, ""), (4, "three")]


@pytest.mark.parametrize("content, problem", [
    (b"a\tb\n\x00\x01\x02\n", "line 2: not text (got a NUL byte at column 1"),
    (b"a\tb\nb\xe9\tc\n", "line 2: not valid UTF-8 (got byte 0xe9 at column 2"),
    (b"a\t" + b"b" * MAX_LINE_BYTES + b"\n", "line 1: line too long"),
    (b"\n\n  \n", "parallel text file is empty"),
])
def test_a_file_that_is_not_sentence_pairs_is_named_with_its_line(tmp_path, content, problem):
    path = tmp_path / "pairs.tsv"
    path.write_bytes(content)
    with pytest.raises(ValueError) as error:
        load_tsv(str(path))
    assert problem in str(error.value) and str(path) in str(error.value)
