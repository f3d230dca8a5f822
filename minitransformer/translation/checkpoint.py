"""Checkpoints: everything needed to translate or to resume training, in one file.

A checkpoint directory holds ``checkpoint.npz``: the arrays (model parameters,
optimizer moments) plus one JSON document (configuration, vocabularies, optimizer
scalars, training progress) stored as bytes. It is written to a temporary file in
the same directory and renamed over the old one: a rename within a directory is
atomic, so a crash mid-write leaves the previous checkpoint intact, never half a
new one. The temporary file is named after the writing process
(``.checkpoint-<pid>-*.tmp``), so that the next save removes what a killed one left.
No pickle: loading a checkpoint runs no code from it.

While a training writes a directory it holds the directory's lock, ``train.lock``
(:func:`writer_lock`): a second training is refused, naming the first one's process.
"""
import contextlib
import io
import json
import os
import re
import socket
import tempfile
import zipfile

from .. import backend

FILENAME = "checkpoint.npz"
LOCK = "train.lock"
_META = "__meta__"
_TEMP_PREFIX = ".checkpoint-"
# A save's temporary file: .checkpoint-<pid>-<random>.tmp. One without a pid names no
# process that could still be writing it, so it is always a leftover.
_TEMP_NAME = re.compile(r"\.checkpoint-(?:(\d+)-)?[a-z0-9_]+\.tmp")


class CheckpointError(ValueError):
    """A file that is not a checkpoint, or a truncated or damaged one."""


def _split(obj, arrays, path):
    """Replace every array inside ``obj`` by a reference, collecting the arrays."""
    if backend.is_array(obj):
        arrays[path] = backend.to_numpy(obj)
        return {"__array__": path}
    if isinstance(obj, dict):
        return {str(k): _split(v, arrays, f"{path}/{k}") for k, v in obj.items()}
    if isinstance(obj, (list, tuple)):
        return [_split(v, arrays, f"{path}/{i}") for i, v in enumerate(obj)]
    if isinstance(obj, backend.numpy.generic):
        return obj.item()
    return obj


def _join(obj, arrays):
    if isinstance(obj, dict):
        if set(obj) == {"__array__"}:
            return arrays[obj["__array__"]]
        return {k: _join(v, arrays) for k, v in obj.items()}
    if isinstance(obj, list):
        return [_join(v, arrays) for v in obj]
    return obj


def save(directory, content):
    """Write ``content`` (nested dicts/lists of JSON values and arrays) atomically."""
    os.makedirs(directory, exist_ok=True)
    remove_leftovers(directory)
    arrays = {}
    meta = _split(content, arrays, "")
    arrays[_META] = backend.numpy.frombuffer(json.dumps(meta).encode("utf-8"), dtype="uint8")
    buffer = io.BytesIO()
    backend.numpy.savez(buffer, **arrays)
    return write_atomically(os.path.join(directory, FILENAME), buffer.getvalue(),
                            temp_prefix=f"{_TEMP_PREFIX}{os.getpid()}-")


def write_atomically(path, data, temp_prefix=None):
    """Write the bytes ``data`` to ``path`` so that a reader finds the old file or the
    new one, never part of one: into a temporary file of the same folder (named
    ``temp_prefix``..., default ``.<name>-``), flushed to the disk, then renamed over
    ``path``. The file's mode follows the umask, as ``open()``'s would. Returns ``path``."""
    folder = os.path.dirname(path) or "."
    prefix = temp_prefix or f".{os.path.basename(path)}-"
    fd, tmp = tempfile.mkstemp(prefix=prefix, suffix=".tmp", dir=folder)
    try:
        # mkstemp makes the file private (0600); the renamed file gets open()'s mode.
        os.fchmod(fd, 0o666 & ~_umask())
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return path


def _umask():
    # The umask can only be read by setting it; set it straight back.
    mask = os.umask(0o022)
    os.umask(mask)
    return mask


def remove_leftovers(directory):
    """Remove the temporary files of saves into ``directory`` that were killed before
    their rename (kill -9, a power cut): those of processes that no longer run.
    Returns their names."""
    removed = []
    for name in sorted(os.listdir(directory)):
        found = _TEMP_NAME.fullmatch(name)
        if found and not (found[1] and process_alive(int(found[1]))):
            with contextlib.suppress(FileNotFoundError):
                os.remove(os.path.join(directory, name))
            removed.append(name)
    return removed


def checkpoint_file(directory):
    """The checkpoint file of ``directory`` (or ``directory`` itself, when it is the file)."""
    return os.path.join(directory, FILENAME) if os.path.isdir(directory) else directory


def _open(path):
    """``path``'s arrays, lazily (an NpzFile), or CheckpointError / FileNotFoundError."""
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r} (expected a directory with {FILENAME})")
    try:
        return backend.numpy.load(path, allow_pickle=False)
    except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
        raise _damaged(path, e) from e


def _damaged(path, error):
    # NumPy's own words ("contains pickled (object) data", "bad zip file") would not
    # tell a user what is wrong with *their* file.
    return CheckpointError(f"{path} is not a minitransformer checkpoint, or it is truncated "
                           f"({type(error).__name__}: {error})")


def _read_meta(data, path):
    try:
        return json.loads(data[_META].tobytes().decode("utf-8"))
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError, UnicodeDecodeError) as e:
        raise _damaged(path, e) from e


def load(directory):
    """Read what :func:`save` wrote; arrays come back as NumPy arrays."""
    path = checkpoint_file(directory)
    with _open(path) as data:
        meta = _read_meta(data, path)
        try:
            arrays = {k: data[k] for k in data.files if k != _META}
        except (zipfile.BadZipFile, ValueError, EOFError, OSError) as e:
            raise _damaged(path, e) from e
    return _join(meta, arrays)


def load_meta(directory):
    """The JSON part of a checkpoint alone (arrays left as references), read without
    the arrays: what a checkpoint holds, cheaply, for messages."""
    path = checkpoint_file(directory)
    with _open(path) as data:
        return _read_meta(data, path)


# ---------------------------------------------------------------- one writer at a time
class CheckpointLocked(RuntimeError):
    """Another training, still running, holds the directory's lock."""

    def __init__(self, directory, holder):
        self.directory, self.holder = directory, holder
        lock = os.path.join(directory, LOCK)
        super().__init__(f"{directory} is being written by another training ({holder} holds "
                         f"{lock}; if no training runs there, remove {lock})")


def process_alive(pid):
    """True if a process ``pid`` runs on this machine (someone else's included)."""
    if pid <= 0:               # 0 and negative pids name process groups, not a process
        return False
    try:
        os.kill(pid, 0)        # signal 0: asks, sends nothing
    except ProcessLookupError:
        return False
    except PermissionError:    # it exists, but belongs to another user
        return True
    return True


def _holder(path):
    """(pid, host) written in the lock file ``path``, or None if it names no process.
    Raises FileNotFoundError if there is no lock, another OSError if it cannot be read."""
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        pid, host = text.split()
        return int(pid), host
    except ValueError:
        return None


@contextlib.contextmanager
def writer_lock(directory, log=print):
    """Hold ``directory``'s lock file (``train.lock``: this process's pid and host)
    while the block runs; removed at its end, an error's or Ctrl-C's included.

    A lock held by a running process raises :class:`CheckpointLocked`. A lock left by
    a process of this machine that no longer runs (killed, or the machine restarted),
    or one that names no process, is taken over, with one line to ``log``. A lock
    from another host, or one this user cannot read, cannot be checked, so it counts
    as held. Left-over temporary files of killed saves are removed once the lock is
    held. The folders this call created are removed again if the block leaves them
    empty (resume or loading the data failed), so a failed start leaves nothing behind."""
    path = os.path.join(directory, LOCK)
    mine = (os.getpid(), socket.gethostname())
    with made_folder(directory):
        _take_lock(path, mine, log)
        try:
            remove_leftovers(directory)
            yield path
        finally:
            with contextlib.suppress(OSError):
                if _holder(path) == mine:
                    os.remove(path)


@contextlib.contextmanager
def made_folder(directory):
    """Create ``directory`` and its missing parents for the block; at its end, those it
    created are removed again if the block left them empty (a failed start)."""
    missing, folder = [], os.path.abspath(directory)
    while not os.path.isdir(folder) and folder != os.path.dirname(folder):
        missing.append(folder)                  # the deepest first
        folder = os.path.dirname(folder)
    os.makedirs(directory, exist_ok=True)
    try:
        yield directory
    finally:
        for folder in missing:
            try:
                os.rmdir(folder)
            except OSError:
                break       # it holds something, and so does every folder above it


def _take_lock(path, mine, log):
    """Create the lock ``path`` naming ``mine``, taking a dead process's lock over."""
    directory = os.path.dirname(path)
    for _ in range(3):    # a lock that vanishes or is taken over is tried again
        if _create_lock(path, mine):
            return
        try:
            holder = _holder(path)
        except FileNotFoundError:
            continue                            # its holder ended just now
        except OSError:
            raise CheckpointLocked(directory, "a lock this user cannot read") from None
        if holder is not None and (holder[1] != mine[1] or process_alive(holder[0])):
            raise CheckpointLocked(directory, _describe(holder))
        if _set_aside(path, holder):
            log(f"{path}: {_describe(holder)} no longer runs; taking its lock over")
    raise CheckpointLocked(directory, "another training taking the same lock over")


def _set_aside(path, holder):
    """Remove the lock ``path`` if it still names ``holder``; True if this call removed it.

    Two trainings can both find the same dead lock. Renaming is atomic, so only one of
    them moves it; and if what was moved is a fresh lock (the other training's, made
    after this one read the dead one), it is put back instead of deleted."""
    moved = f"{path}.{os.getpid()}.stale"
    try:
        os.rename(path, moved)
    except FileNotFoundError:
        return False
    try:
        try:
            dead = _holder(moved) == holder
        except OSError:     # unreadable: not the dead lock read before, so not ours to delete
            dead = False
        if dead:
            return True
        with contextlib.suppress(FileExistsError):
            os.link(moved, path)
        return False
    finally:
        os.remove(moved)


def _create_lock(path, holder):
    """Create the lock file ``path`` naming ``holder``; False if it exists already."""
    # Written whole under another name, then linked to ``path``: the lock never exists
    # empty, so no process can find it before it names its holder. Readable by all, so
    # that another user's training sees whose it is.
    fd, draft = tempfile.mkstemp(prefix=f".{LOCK}-", dir=os.path.dirname(path))
    try:
        os.fchmod(fd, 0o644)
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(f"{holder[0]} {holder[1]}\n")
        os.link(draft, path)
        return True
    except FileExistsError:
        return False
    finally:
        os.remove(draft)


def _describe(holder):
    if holder is None:
        return "an unreadable lock"
    pid, host = holder
    return f"process {pid}" + ("" if host == socket.gethostname() else f" on {host}")
