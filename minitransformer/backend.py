"""Which array library runs the maths: NumPy on the CPU, CuPy on a CUDA GPU.

This is the only module that imports numpy or cupy for array maths. Everything
else asks it for ``xp``, the array module of a device or of an array, so that one
piece of code runs unchanged on both devices.

Devices are named by strings: ``"cpu"`` (NumPy) and ``"gpu"`` (CuPy). The
default device comes from the environment variable ``MINITRANSFORMER_DEVICE``,
else ``"cpu"``; :func:`set_default_device` changes it for the process.
"""
import os
import time

import numpy
import scipy.special

try:  # CuPy is optional: the GPU extra of the package installs it.
    import cupy
    import cupyx.scipy.special as _cupy_special
except ImportError:  # pragma: no cover - depends on the machine
    cupy = None
    _cupy_special = None

DEVICES = ("cpu", "gpu")

_CUPY_HINT = ("install CuPy for your CUDA version: pip install cupy-cuda12x (CUDA 12) "
              "or cupy-cuda13x (CUDA 13), or 'pip install minitransformer[gpu]'")


def check_device(device, argument="device"):
    """Return ``device`` if it names a device, else raise ``ValueError``."""
    if device not in DEVICES:
        raise ValueError(f"{argument} must be one of {DEVICES}, got {device!r}")
    return device


_default_device = check_device(os.environ.get("MINITRANSFORMER_DEVICE", "cpu"),
                               "environment variable MINITRANSFORMER_DEVICE")


def gpu_available():
    """True when CuPy is installed and sees at least one CUDA GPU."""
    if cupy is None:
        return False
    try:
        return cupy.cuda.runtime.getDeviceCount() > 0
    except Exception:  # CUDA driver missing or broken: no usable GPU
        return False


def _require_gpu():
    if cupy is None:
        raise RuntimeError(f"device 'gpu' needs CuPy, which is not installed: {_CUPY_HINT}")
    if not gpu_available():
        raise RuntimeError("device 'gpu' needs a CUDA GPU, but CuPy finds none "
                           "(check the NVIDIA driver with nvidia-smi)")


def default_device():
    """The device new tensors go to when none is named."""
    return _default_device


def set_default_device(device):
    """Make ``device`` ("cpu" or "gpu") the default for new tensors."""
    global _default_device
    check_device(device)
    if device == "gpu":
        _require_gpu()
    _default_device = device


def resolve_device(device):
    """``device`` checked, or the default device when it is None."""
    if device is None:
        return _default_device
    check_device(device)
    if device == "gpu":
        _require_gpu()
    return device


def xp_for(device):
    """The array module (numpy or cupy) that computes on ``device``."""
    return cupy if resolve_device(device) == "gpu" else numpy


def device_of(array):
    """``"gpu"`` for a CuPy array, ``"cpu"`` for anything else."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return "gpu"
    return "cpu"


def array_module(array):
    """The array module of ``array``: ops call this to stay device-agnostic."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy
    return numpy


def is_array(obj):
    """True for a NumPy or CuPy array."""
    return isinstance(obj, numpy.ndarray) or (cupy is not None and isinstance(obj, cupy.ndarray))


def ensure_array(x):
    """``x`` as an array: NumPy returns 0-d results as scalars (numpy.float32), which
    lack the array interface the engine relies on."""
    return numpy.asarray(x) if isinstance(x, numpy.generic) else x


def to_device(array, device):
    """``array`` on ``device``; no copy when it is already there."""
    device = resolve_device(device)
    if device == "gpu":
        return cupy.asarray(array)
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.asarray(array)


def to_numpy(array):
    """A NumPy copy of ``array`` on the host (a copy even on the CPU, so callers may write)."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return cupy.asnumpy(array)
    return numpy.array(array, copy=True)


def as_dtype(dtype):
    """A NumPy dtype object from a dtype, a type or a name such as "float32"."""
    return numpy.dtype(dtype)


def erf(array):
    """The error function, elementwise (for the exact GELU)."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        return _cupy_special.erf(array)
    return scipy.special.erf(array)


def scatter_add(target, index, values):
    """``target[index] += values`` where repeated indices all add (unlike ``+=``)."""
    if cupy is not None and isinstance(target, cupy.ndarray):
        import cupyx
        cupyx.scatter_add(target, index, values)
    else:
        numpy.add.at(target, index, values)


def device_name(device=None):
    """The hardware behind ``device``: the GPU's name, or the CPU's model name."""
    if resolve_device(device) == "gpu":
        name = cupy.cuda.runtime.getDeviceProperties(0)["name"]
        return name.decode() if isinstance(name, bytes) else name
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    import platform
    return platform.processor() or platform.machine()


def synchronize(device=None):
    """Wait until ``device`` has finished all queued work.

    GPU kernels run asynchronously: a clock read right after a launch measures the
    launch, not the work. Call this before reading a clock. A no-op on the CPU.
    """
    if resolve_device(device) == "gpu":
        cupy.cuda.get_current_stream().synchronize()


def timer(device=None):
    """A clock reading (seconds) taken after the device has finished its queued work."""
    synchronize(device)
    return time.perf_counter()


# ---------------------------------------------------------------- random numbers
# One generator per device. Parameters are initialised on the CPU generator and
# then moved, as PyTorch does, so a model starts from the same weights on both
# devices; the GPU generator serves work that happens on the GPU (dropout masks).
_generators = {}


def manual_seed(seed):
    """Seed the random generators of every device, so that a run is reproducible."""
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"seed must be a non-negative int, got {seed!r}")
    _generators["cpu"] = numpy.random.default_rng(seed)
    if cupy is not None:
        _generators["gpu"] = cupy.random.RandomState(seed)


def generator(device=None):
    """The random generator of ``device`` (created unseeded on first use)."""
    device = resolve_device(device)
    if device not in _generators:
        if device == "gpu":
            _generators["gpu"] = cupy.random.RandomState()
        else:
            _generators["cpu"] = numpy.random.default_rng()
    return _generators[device]


def random_normal(shape, dtype, device=None):
    """Samples of the standard normal distribution, an array of ``shape`` on ``device``."""
    device = resolve_device(device)
    gen = generator(device)
    if device == "gpu":
        return gen.standard_normal(shape, dtype=dtype)
    return gen.standard_normal(shape, dtype=numpy.float64).astype(dtype, copy=False)


def random_uniform(shape, dtype, device=None, low=0.0, high=1.0):
    """Samples uniform in [low, high), an array of ``shape`` on ``device``."""
    device = resolve_device(device)
    gen = generator(device)
    if device == "gpu":
        return gen.uniform(low, high, shape, dtype=dtype)
    return gen.uniform(low, high, shape).astype(dtype, copy=False)


def random_permutation(n, device="cpu"):
    """A random permutation of range(n) as an int64 array."""
    return generator(device).permutation(n)
