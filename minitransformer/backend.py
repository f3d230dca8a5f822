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


# Read from $MINITRANSFORMER_DEVICE when first needed, not at import: a bad value is then
# an error of the program that uses it (the command line's one line), not of ``import``.
_default_device = None


_gpu_found = None   # the answer of gpu_available(), asked once (see there)


def gpu_available(refresh=False):
    """True when CuPy is installed and sees at least one CUDA GPU.

    The answer is kept after the first call: every ``resolve_device("gpu")`` asks, and
    asking the driver each time (``getDeviceCount``) costs a driver call per op.
    ``refresh=True`` asks again.
    """
    global _gpu_found
    if _gpu_found is None or refresh:
        if cupy is None:
            _gpu_found = False
        else:
            try:
                _gpu_found = cupy.cuda.runtime.getDeviceCount() > 0
            except Exception:  # CUDA driver missing or broken: no usable GPU
                _gpu_found = False
    return _gpu_found


def _require_gpu():
    if cupy is None:
        raise RuntimeError(f"device 'gpu' needs CuPy, which is not installed: {_CUPY_HINT}")
    if not gpu_available():
        raise RuntimeError("device 'gpu' needs a CUDA GPU, but CuPy finds none "
                           "(check the NVIDIA driver with nvidia-smi)")


def default_device():
    """The device new tensors go to when none is named: set by :func:`set_default_device`,
    else ``$MINITRANSFORMER_DEVICE``, else "cpu"."""
    global _default_device
    if _default_device is None:
        _default_device = check_device(os.environ.get("MINITRANSFORMER_DEVICE", "cpu"),
                                       "environment variable MINITRANSFORMER_DEVICE")
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
        return default_device()
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
    """A NumPy copy of ``array`` on the host (a copy even on the CPU, so callers may write).
    From the GPU the copy is a wait for the device, so deferred checks are read with it."""
    if cupy is not None and isinstance(array, cupy.ndarray):
        if _deferred:
            return check_deferred(array)[0]
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


def is_out_of_memory(error):
    """True when ``error`` says the device ran out of memory.

    CuPy's pool raises ``OutOfMemoryError`` (a ``MemoryError``), but the libraries
    behind it (cuBLAS, cuRAND, CUB) allocate their workspaces outside the pool and
    report a full device with their own errors, which a sweep over sizes must also
    recognise as "out of memory" rather than die on.
    """
    if isinstance(error, MemoryError):
        return True
    text = str(error)
    return any(sign in text for sign in ("CUBLAS_STATUS_ALLOC_FAILED", "cudaErrorMemoryAllocation",
                                         "CURAND_STATUS_ALLOCATION_FAILED", "out of memory"))


def free_device_memory(device=None):
    """Give the GPU memory pool's cached free blocks back to the driver (no-op on the CPU),
    so that a measurement starts with the device's memory free for cuBLAS and friends too."""
    if resolve_device(device) == "gpu":
        cupy.get_default_memory_pool().free_all_blocks()


def tf32_setting():
    """How float32 matrix products run on the GPU: "on" when CuPy may use TF32 tensor cores
    (``CUPY_TF32=1``, or ``NVIDIA_TF32_OVERRIDE=1``), else "off". TF32 keeps 10 mantissa
    bits: several times the float32 speed on recent GPUs, and errors near 1e-3."""
    override = os.environ.get("NVIDIA_TF32_OVERRIDE")
    if override == "0":
        return "off"
    return "on" if os.environ.get("CUPY_TF32", "0") == "1" or override == "1" else "off"


# ---------------------------------------------------------------- deferred range checks
# Checking that token ids lie inside a vocabulary means reading them, and on a GPU a
# read is a wait for the device (several per training step). So where the ids are on
# the GPU the check is deferred: each call records the smallest and largest id seen,
# on the device, without waiting, and the records are read at the next wait the
# program makes anyway (check_deferred(), called by read_scalar(), synchronize_and_check()
# and to_numpy()). An error then surfaces a little late, but it surfaces. On the CPU the
# check is immediate and free.
_deferred = {}   # (what, low, high) -> [smallest seen, largest seen], 0-d device arrays


def check_index_range(values, low, high, what, ignore=None):
    """Raise ``IndexError`` unless every entry of integer array ``values`` (except those
    equal to ``ignore``) lies in [low, high). ``what`` names the argument in the message,
    e.g. "embedding: indices". On the GPU the check is deferred (see above)."""
    if values.size == 0:
        return
    xp = array_module(values)
    if ignore is not None:
        keep = values != ignore
        smallest, largest = xp.where(keep, values, low), xp.where(keep, values, high - 1)
    else:
        smallest = largest = values
    if xp is numpy:
        smallest, largest = int(smallest.min()), int(largest.max())
        if smallest < low or largest >= high:
            _raise_range(what, low, high, ignore, smallest, largest)
        return
    key = (what, low, high, ignore)
    seen = _deferred.get(key)
    smallest, largest = smallest.min(), largest.max()          # 0-d, on the device
    if seen is not None:
        smallest, largest = xp.minimum(seen[0], smallest), xp.maximum(seen[1], largest)
    _deferred[key] = [smallest, largest]


def _raise_range(what, low, high, ignore, smallest, largest, deferred=False):
    other = f" or equal ignore_index={ignore}" if ignore is not None else ""
    when = (" (checked at the next device wait: on the GPU, index checks are deferred so "
            "as not to stall the device)") if deferred else ""
    raise IndexError(f"{what} must lie in [{low}, {high}){other}; got values from {smallest} "
                     f"to {largest}{when}")


def check_deferred(*arrays):
    """Read the deferred range checks, together with ``arrays`` (device arrays to bring
    to the host in the same transfer, so that this is one wait for the device), and raise
    ``IndexError`` for the first check that failed. Returns the host copies of ``arrays``."""
    if not _deferred:
        return [to_numpy(a) for a in arrays]
    pending = list(_deferred.items())
    _deferred.clear()
    parts = [a.reshape(-1).astype(numpy.float64) for a in arrays]
    parts += [cupy.stack(seen).astype(numpy.float64) for _, seen in pending]
    flat = cupy.asnumpy(cupy.concatenate(parts))           # the one wait
    offset = sum(a.size for a in arrays)
    for (what, low, high, ignore), _ in pending:
        smallest, largest = int(flat[offset]), int(flat[offset + 1])
        offset += 2
        if smallest < low or largest >= high:
            _raise_range(what, low, high, ignore, smallest, largest, deferred=True)
    out, offset = [], 0
    for a in arrays:
        out.append(flat[offset:offset + a.size].astype(a.dtype).reshape(a.shape))
        offset += a.size
    return out


def read_scalar(array):
    """The value of one-element ``array`` as a Python number, read together with the
    deferred checks: on the GPU one wait for the device for both."""
    if not _deferred or not (cupy is not None and isinstance(array, cupy.ndarray)):
        return array.reshape(()).item()
    (host,) = check_deferred(array)
    return host.reshape(()).item()


def timer(device=None):
    """A clock reading (seconds) taken after the device has finished its queued work."""
    synchronize(device)
    return time.perf_counter()


# ---------------------------------------------------------------- random numbers
# One generator per device. Parameters are initialised on the CPU generator and
# then moved, as PyTorch does, so a model starts from the same weights on both
# devices; the GPU generator serves work that happens on the GPU (dropout masks).
_generators = {}
# The seed of the GPU generator, kept until the GPU first draws. The generator itself
# is made lazily: creating a cupy.random.RandomState opens a CUDA context and loads
# cuRAND, which fails on a machine with CuPy but no usable GPU, and which a CPU-only
# run should not pay for anyway.
_gpu_seed = None


def _check_seed(seed, argument="seed"):
    if not isinstance(seed, int) or isinstance(seed, bool) or seed < 0:
        raise ValueError(f"{argument} must be a non-negative int, got {seed!r}")


def manual_seed(seed):
    """Seed the random generators of every device, so that a run is reproducible."""
    global _gpu_seed
    _check_seed(seed)
    _generators["cpu"] = numpy.random.default_rng(seed)
    _generators.pop("gpu", None)   # made from _gpu_seed at its first use (see generator)
    _gpu_seed = seed


def reseed_gpu(seed, step, rank=0):
    """Reseed the GPU generator from ``(seed, step, rank)``.

    A checkpoint keeps the CPU generator's state, but cuRAND's position cannot be
    saved, so a training loop calls this at the start of each step: the dropout masks
    of step ``step`` then depend only on the seed, the step and the data-parallel rank
    ``rank``, and a resumed run draws the same masks as the uninterrupted one. Free
    where no GPU generator exists yet.
    """
    global _gpu_seed
    _gpu_seed = step_seed(seed, step, rank)
    if "gpu" in _generators:
        _generators["gpu"].seed(_gpu_seed)


def step_seed(seed, step, rank=0):
    """The seed (an int in [0, 2**63)) of the draws of training step ``step`` on
    data-parallel rank ``rank``: a different stream for each ``(seed, step, rank)``.

    Rank 0 uses the formula of a one-process run, so that rank 0 of P ranks draws the
    masks one process would; the other ranks let NumPy's SeedSequence hash the three
    numbers into one.
    """
    _check_seed(seed)
    _check_seed(step, "step")
    _check_seed(rank, "rank")
    if rank == 0:
        return (seed * 1_000_003 + step) % 2 ** 63   # distinct streams for distinct (seed, step)
    hashed = numpy.random.SeedSequence([seed, step, rank]).generate_state(1, numpy.uint64)[0]
    return int(hashed) >> 1


def reseed_step(device, seed, step, rank=0):
    """Seed the draws (dropout masks) of training step ``step`` on data-parallel rank
    ``rank``, so that every rank draws its own masks and a resumed run draws the same
    masks as the uninterrupted one.

    GPU: every rank reseeds from ``(seed, step, rank)`` (:func:`reseed_gpu`). CPU: rank 0
    keeps its generator running, exactly as a one-process run does (the checkpoint keeps
    that generator's state); a rank above 0, whose generator no checkpoint keeps,
    reseeds from ``(seed, step, rank)``.
    """
    if resolve_device(device) == "gpu":
        reseed_gpu(seed, step, rank)
    elif rank > 0:
        _generators["cpu"] = numpy.random.default_rng(step_seed(seed, step, rank))


def generator(device=None):
    """The random generator of ``device`` (created on first use: seeded by the last
    ``manual_seed``, else unseeded)."""
    device = resolve_device(device)   # for "gpu", raises a clear error where there is none
    if device not in _generators:
        if device == "gpu":
            _generators["gpu"] = cupy.random.RandomState(_gpu_seed)
        else:
            _generators["cpu"] = numpy.random.default_rng()
    return _generators[device]


# ---------------------------------------------------------------- custom GPU kernels
# name -> the NumPy reference of a fused GPU kernel. The reference is the readable
# version and the one the CPU runs; tests hold each kernel against it on a GPU.
KERNEL_REFERENCES = {}


class ElementwiseKernel:
    """A fused elementwise CUDA kernel (``cupy.ElementwiseKernel``) with its NumPy reference.

    Several elementwise steps in one kernel read and write each element once and cost
    one launch; on small arrays launches, not arithmetic, are what a step costs. The
    CUDA kernel is compiled on its first call (NVRTC; cached on disk by CuPy).
    ``reference(*inputs) -> outputs`` computes the same on NumPy arrays.
    """

    def __init__(self, name, in_params, out_params, operation, reference):
        self.name, self.in_params, self.out_params = name, in_params, out_params
        self.operation, self.reference = operation, reference
        self._kernel = None
        KERNEL_REFERENCES[name] = reference

    def cupy_kernel(self):
        """The ``cupy.ElementwiseKernel`` that runs this kernel, made on first use.

        Making it compiles nothing: CuPy generates and compiles the CUDA source at each
        call with new argument dtypes or layouts. The tests ask for it to generate that
        source and compile it without a GPU (tests/test_nvrtc_kernels.py).
        """
        if self._kernel is None:
            self._kernel = cupy.ElementwiseKernel(self.in_params, self.out_params,
                                                  self.operation, self.name)
        return self._kernel

    def __call__(self, *arrays):
        """Run on the GPU: ``arrays`` are the inputs then the (preallocated) outputs."""
        return self.cupy_kernel()(*arrays)


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
