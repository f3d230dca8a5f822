"""Checkpoints: everything needed to translate or to resume training, in one file.

A checkpoint directory holds ``checkpoint.npz``: the arrays (model parameters,
optimizer moments) plus one JSON document (configuration, vocabularies, optimizer
scalars, training progress) stored as bytes. It is written to a temporary file in
the same directory and renamed over the old one: a rename within a directory is
atomic, so a crash mid-write leaves the previous checkpoint intact, never half a
new one. No pickle: loading a checkpoint runs no code from it.
"""
import io
import json
import os
import tempfile
import zipfile

from .. import backend

FILENAME = "checkpoint.npz"
_META = "__meta__"


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
    arrays = {}
    meta = _split(content, arrays, "")
    arrays[_META] = backend.numpy.frombuffer(json.dumps(meta).encode("utf-8"), dtype="uint8")
    buffer = io.BytesIO()
    backend.numpy.savez(buffer, **arrays)
    fd, tmp = tempfile.mkstemp(prefix=".checkpoint-", suffix=".tmp", dir=directory)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(buffer.getvalue())
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, os.path.join(directory, FILENAME))
    except BaseException:
        if os.path.exists(tmp):
            os.remove(tmp)
        raise
    return os.path.join(directory, FILENAME)


def load(directory):
    """Read what :func:`save` wrote; arrays come back as NumPy arrays."""
    path = os.path.join(directory, FILENAME) if os.path.isdir(directory) else directory
    if not os.path.exists(path):
        raise FileNotFoundError(f"no checkpoint at {path!r} (expected a directory with {FILENAME})")
    try:
        with backend.numpy.load(path, allow_pickle=False) as data:
            arrays = {k: data[k] for k in data.files}
        meta = json.loads(arrays.pop(_META).tobytes().decode("utf-8"))
        return _join(meta, arrays)
    except (zipfile.BadZipFile, ValueError, KeyError, EOFError, OSError, UnicodeDecodeError) as e:
        # NumPy's own words ("contains pickled (object) data", "bad zip file") would
        # not tell a user what is wrong with *their* file.
        raise CheckpointError(f"{path} is not a minitransformer checkpoint, or it is truncated "
                              f"({type(e).__name__}: {e})") from e
