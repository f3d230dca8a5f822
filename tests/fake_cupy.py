"""A strict stand-in for CuPy, so that CI without a GPU runs the GPU code paths.

Tests only: ``tests/conftest.py`` installs it into ``sys.modules`` as ``cupy`` and
``cupyx`` when the environment variable ``MINITRANSFORMER_FAKE_CUPY`` is set, before
``minitransformer`` is imported; no production code knows about it.

It computes with NumPy, but follows CuPy's *rules*, so that code which breaks them
fails here as it would on a GPU:

* its ``ndarray`` is not a NumPy array; ``numpy.asarray(a)`` raises CuPy's TypeError;
* NumPy arrays (and lists) as operands of operators, ufuncs and functions raise
  ``TypeError: Unsupported type``; Python and NumPy scalars are accepted;
* reductions give 0-d arrays, never scalars;
* only names that real CuPy exports exist (the lists below; a missing name is an
  AttributeError, as on CuPy);
* integer-array indices out of range raise :class:`CupyDivergence` (CuPy wraps them
  silently where NumPy raises);
* ``ElementwiseKernel`` runs the NumPy reference registered under the kernel's name
  in :data:`kernel_references` (one launch), after checking the call against the
  kernel's declared parameters;
* mode ``"nodevice"`` behaves like CuPy installed on a machine without a GPU: import
  works, ``getDeviceCount`` raises, ``RandomState`` raises ImportError (no cuRAND),
  and any allocation raises.

It also keeps accounts, in :data:`STATS`: device synchronisations (with the file:line
that caused each), kernel launches, host-to-device copies, and, inside
:func:`watch_clock`, clock reads taken while launched work was still unsynchronised.

What it cannot check: numerics (cuBLAS, TF32, summation order), real costs, memory
fragmentation, CUDA source of custom kernels, installation. See README.
"""
import builtins
import contextlib
import os
import sys
import time as _time
import types
import weakref

import numpy

__version__ = "14.0.0+fake"   # the CuPy generation whose rules (NEP 50 promotion) NumPy 2 shares

MODE = "device"


class CupyDivergence(AssertionError):
    """The code relies on NumPy behaviour that CuPy does not have."""


class CUDARuntimeError(RuntimeError):
    pass


class OutOfMemoryError(MemoryError):
    pass


# ---------------------------------------------------------------- accounting
class Stats:
    """What the device was asked to do since the last :meth:`reset`."""

    def __init__(self):
        self.reset()

    def reset(self):
        self.syncs = 0              # host waits for the device (a transfer to the host or a synchronize)
        self.sync_sites = []        # "file:line" of the caller for each of them
        self.launches = 0           # kernels launched (views and empty allocations are free)
        self.h2d = 0                # host-to-device copies
        self.unsynced_clock_reads = []   # "file:line" of clock reads with launched work still queued
        self.queued = 0             # launches since the last sync

    def summary(self):
        return (f"{self.syncs} syncs, {self.launches} launches, {self.h2d} host-to-device copies")


STATS = Stats()

_HERE = os.path.abspath(__file__)
_SKIP_PREFIXES = (os.path.dirname(numpy.__file__),)


def _caller_site():
    """``file:line`` of the first frame outside this module and NumPy."""
    frame = sys._getframe(1)
    while frame is not None:
        name = os.path.abspath(frame.f_code.co_filename)
        if name != _HERE and not name.startswith(_SKIP_PREFIXES) and "contextlib" not in name:
            return f"{os.path.relpath(name)}:{frame.f_lineno}"
        frame = frame.f_back
    return "?"


def _sync():
    STATS.syncs += 1
    STATS.sync_sites.append(_caller_site())
    STATS.queued = 0


def _launch(n=1):
    STATS.launches += n
    STATS.queued += n


def _h2d():
    STATS.h2d += 1


def _no_device():
    raise CUDARuntimeError("cudaErrorInsufficientDriver: CUDA driver version is insufficient "
                           "for CUDA runtime version (fake_cupy, mode 'nodevice')")


class _WatchedTime(types.ModuleType):
    """``time`` as seen by a watched module: clock reads note unsynchronised work."""

    def __init__(self):
        super().__init__("time")
        for name in dir(_time):
            if not name.startswith("__") and name not in type(self).__dict__:
                setattr(self, name, getattr(_time, name))

    def _read(self, clock):
        if STATS.queued:
            STATS.unsynced_clock_reads.append(_caller_site())
        return clock()

    def perf_counter(self):
        return self._read(_time.perf_counter)

    def time(self):
        return self._read(_time.time)

    def monotonic(self):
        return self._read(_time.monotonic)


@contextlib.contextmanager
def watch_clock(*modules):
    """Within the block, the ``time`` of each module in ``modules`` records clock reads
    taken while launched work is unsynchronised (``STATS.unsynced_clock_reads``)."""
    saved = [(m, m.__dict__.get("time")) for m in modules]
    watched = _WatchedTime()
    for m, _ in saved:
        m.time = watched
    try:
        yield STATS
    finally:
        for m, old in saved:
            m.time = old


# ---------------------------------------------------------------- memory pool
_ROUND = 512   # CuPy's pool rounds every allocation up to 512 bytes


class MemoryHook:
    """CuPy's hook base class: ``with hook:`` installs it for the block."""
    name = "MemoryHook"

    def __enter__(self):
        _hooks.append(self)
        return self

    def __exit__(self, *exc):
        _hooks.remove(self)

    def alloc_preprocess(self, **kwargs):
        pass

    def alloc_postprocess(self, **kwargs):
        pass

    def malloc_preprocess(self, **kwargs):
        pass

    def malloc_postprocess(self, **kwargs):
        pass

    def free_preprocess(self, **kwargs):
        pass

    def free_postprocess(self, **kwargs):
        pass


_hooks = []


class MemoryPool:
    """The default pool: bytes of live arrays (``used``) and blocks kept (``total``)."""

    def __init__(self):
        self._used = 0
        self._held = 0
        self._limit = 0

    def used_bytes(self):
        return self._used

    def total_bytes(self):
        return self._held

    def free_bytes(self):
        return self._held - self._used

    def free_all_blocks(self, stream=None):
        self._held = self._used

    def set_limit(self, size=None, fraction=None):
        self._limit = size or 0

    def get_limit(self):
        return self._limit

    def n_free_blocks(self):
        return 0

    def _malloc(self, nbytes):
        size = -(-builtins.max(nbytes, 1) // _ROUND) * _ROUND
        if self._limit and self._used + size > self._limit:
            raise OutOfMemoryError(f"Out of memory allocating {size:,} bytes (fake pool limit)")
        self._used += size
        self._held = builtins.max(self._held, self._used)
        for hook in list(_hooks):
            hook.malloc_postprocess(device_id=0, size=nbytes, mem_size=size, mem_ptr=0, pmem_id=0)
        return size

    def _free(self, size):
        self._used -= size
        for hook in list(_hooks):
            hook.free_postprocess(device_id=0, mem_size=size, mem_ptr=0, pmem_id=0)


_POOL = MemoryPool()


def get_default_memory_pool():
    return _POOL


def get_default_pinned_memory_pool():
    return MemoryPool()


# ---------------------------------------------------------------- the array
_CONVERSION_ERROR = ("Implicit conversion to a NumPy array is not allowed. "
                     "Please use `.get()` to construct a NumPy array explicitly.")


def _unsupported(x):
    return TypeError(f"Unsupported type {type(x)}")


class ndarray:
    """A device array: a NumPy array behind CuPy's rules."""
    __array_priority__ = 100
    __hash__ = None

    def __init__(self, shape, dtype=float, *, _array=None):
        if _array is None:   # cupy.ndarray(shape, dtype): uninitialised memory
            _array = numpy.empty(shape, dtype)
        if MODE == "nodevice":
            _no_device()
        self._a = _array
        # Views share their base's block; only arrays owning memory take from the pool.
        if _array.base is None or not isinstance(_array.base, numpy.ndarray):
            size = _POOL._malloc(_array.nbytes)
            weakref.finalize(self, _POOL._free, size)

    # ----- CuPy's rules about the host
    def __array__(self, *args, **kwargs):
        raise TypeError(_CONVERSION_ERROR)

    def __array_ufunc__(self, ufunc, method, *inputs, **kwargs):
        # numpy.exp(device_array) dispatches to CuPy, as real CuPy does; a NumPy operand
        # mixed in still raises in the fake ufunc.
        fake = _UFUNCS.get(ufunc.__name__)
        if fake is None or method not in ("__call__", "at"):
            return NotImplemented
        return getattr(fake, method)(*inputs, **kwargs) if method == "at" else fake(*inputs, **kwargs)

    def __array_function__(self, func, types_, args, kwargs):
        fake = globals().get(func.__name__) if func.__name__ in _FUNCTION_NAMES else None
        if fake is None:
            return NotImplemented
        return fake(*args, **kwargs)

    # ----- attributes
    shape = property(lambda self: self._a.shape)
    ndim = property(lambda self: self._a.ndim)
    size = property(lambda self: self._a.size)
    dtype = property(lambda self: self._a.dtype)
    nbytes = property(lambda self: self._a.nbytes)
    itemsize = property(lambda self: self._a.itemsize)
    strides = property(lambda self: self._a.strides)
    flags = property(lambda self: self._a.flags)
    device = property(lambda self: cuda.Device(0))

    @property
    def T(self):
        return _wrap(self._a.T)

    def __len__(self):
        if self._a.ndim == 0:
            raise TypeError("len() of unsized object")
        return len(self._a)

    def __iter__(self):
        if self._a.ndim == 0:
            raise TypeError("iteration over a 0-d array")
        return (self[i] for i in range(len(self._a)))

    # ----- transfers to the host: each is a synchronisation
    def get(self, stream=None, order="C", out=None):
        _sync()
        return numpy.array(self._a, copy=True)

    def set(self, arr, stream=None):
        if not isinstance(arr, numpy.ndarray):
            raise TypeError(f"Only numpy.ndarray can be set to cupy.ndarray, got {type(arr)}")
        _h2d()
        self._a[...] = arr

    def item(self):
        _sync()
        return self._a.item()

    def tolist(self):
        _sync()
        return self._a.tolist()

    def __bool__(self):
        _sync()
        return bool(self._a)

    def __int__(self):
        _sync()
        return int(self._a)

    def __float__(self):
        _sync()
        return float(self._a)

    def __complex__(self):
        _sync()
        return complex(self._a)

    def __repr__(self):
        _sync()
        return repr(self._a)

    def __str__(self):
        _sync()
        return str(self._a)

    def __format__(self, spec):
        _sync()
        return format(self._a.item() if self._a.ndim == 0 else self._a, spec)

    def __copy__(self):
        return self.copy()

    def __deepcopy__(self, memo):
        return self.copy()

    def __reduce__(self):
        raise TypeError("fake_cupy: pickling a device array would copy it to the host "
                        "implicitly; move it with .get() first")

    # ----- indexing
    def __getitem__(self, index):
        index = _device_index(index, self._a.shape)
        result = self._a[index]
        return _wrap_result(result, (self._a,))

    def __setitem__(self, index, value):
        index = _device_index(index, self._a.shape)
        self._a[index] = _operand(value)
        _launch()

    # ----- methods (those of cupy.ndarray)
    def astype(self, dtype, order="K", casting=None, subok=None, copy=True):
        if not copy and numpy.dtype(dtype) == self._a.dtype:
            return self
        _launch()
        return _wrap(self._a.astype(dtype, order=order))

    def copy(self, order="C"):
        _launch()
        return _wrap(self._a.copy(order=order))

    def view(self, dtype=None):
        return _wrap(self._a.view() if dtype is None else self._a.view(dtype))

    def fill(self, value):
        _launch()
        self._a.fill(_operand(value))

    def __getattr__(self, name):
        if name in _METHOD_NAMES:
            method = getattr(self._a, name)
            return lambda *args, **kwargs: _call(method, args, kwargs, (self._a,))
        raise AttributeError(f"'cupy.ndarray' object has no attribute {name!r}")


def _binary_method(name, reflected=False):
    def method(self, other):
        if getattr(type(other), "__array_ufunc__", 0) is None:
            return NotImplemented   # as CuPy's _should_use_rop: let other.__rop__ answer
        ufunc = _UFUNCS[name]
        return ufunc(other, self) if reflected else ufunc(self, other)
    return method


def _inplace_method(name):
    def method(self, other):
        _UFUNCS[name](self, other, out=self)
        return self
    return method


for _op, _name in [("add", "add"), ("sub", "subtract"), ("mul", "multiply"),
                   ("truediv", "true_divide"), ("floordiv", "floor_divide"), ("pow", "power"),
                   ("mod", "remainder"), ("matmul", "matmul"), ("and", "bitwise_and"),
                   ("or", "bitwise_or"), ("xor", "bitwise_xor")]:
    setattr(ndarray, f"__{_op}__", _binary_method(_name))
    setattr(ndarray, f"__r{_op}__", _binary_method(_name, reflected=True))
    setattr(ndarray, f"__i{_op}__", _inplace_method(_name))
for _op, _name in [("eq", "equal"), ("ne", "not_equal"), ("lt", "less"), ("le", "less_equal"),
                   ("gt", "greater"), ("ge", "greater_equal")]:
    setattr(ndarray, f"__{_op}__", _binary_method(_name))
ndarray.__neg__ = lambda self: _UFUNCS["negative"](self)
ndarray.__pos__ = lambda self: _UFUNCS["positive"](self)
ndarray.__abs__ = lambda self: _UFUNCS["absolute"](self)
ndarray.__invert__ = lambda self: _UFUNCS["invert"](self)

# Methods of cupy.ndarray that need no special treatment (CuPy 13/14).
_METHOD_NAMES = frozenset("""
all any argmax argmin argpartition argsort clip conj cumprod cumsum diagonal dot flatten max
mean min nonzero partition prod ravel repeat reshape round sort squeeze std sum swapaxes take
trace transpose var
""".split())


# ---------------------------------------------------------------- conversions
def _wrap(a):
    """A fake array around NumPy array ``a`` (0-d for a NumPy scalar)."""
    return ndarray(None, _array=numpy.asarray(a) if isinstance(a, numpy.generic) else a)


def _wrap_result(result, inputs, launches=1):
    """Wrap NumPy results; count a launch unless every result is a view of an input."""
    arrays = []

    def convert(r):
        if isinstance(r, numpy.generic):
            r = numpy.asarray(r)
        if isinstance(r, numpy.ndarray):
            arrays.append(r)
            return ndarray(None, _array=r)
        if isinstance(r, tuple):
            return tuple(convert(x) for x in r)
        if isinstance(r, list):
            return [convert(x) for x in r]
        return r

    out = convert(result)
    views = builtins.all(builtins.any(r.base is not None and numpy.may_share_memory(r, i) for i in inputs
                    if isinstance(i, numpy.ndarray)) for r in arrays)
    if arrays and not views:
        _launch(launches)
    return out


def _operand(x):
    """A kernel argument: device arrays unwrapped; scalars pass; host arrays and lists raise."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, (numpy.ndarray, list, tuple)) or not isinstance(
            x, (int, float, complex, bool, numpy.generic, type(None))):
        raise _unsupported(x)
    return x


def _arguments(x):
    """Function arguments: like :func:`_operand`, but lists/tuples of arrays are allowed
    (concatenate, stack) and non-array values (axes, dtypes, shapes) pass."""
    if isinstance(x, ndarray):
        return x._a
    if isinstance(x, numpy.ndarray):
        raise _unsupported(x)
    if isinstance(x, (list, tuple)):
        return type(x)(_arguments(v) for v in x)
    return x


def _device_index(index, shape):
    """CuPy accepts host index arrays (copied over); boolean masks sync to count their
    True entries; out-of-range integer arrays wrap on CuPy, so they are flagged."""
    parts = index if isinstance(index, tuple) else (index,)
    out, axis = [], 0
    for p in parts:
        if isinstance(p, ndarray):
            p = p._a
        elif isinstance(p, (numpy.ndarray, list)):
            _h2d()
            p = numpy.asarray(p)
        if isinstance(p, numpy.ndarray) and p.dtype == bool:
            _sync()   # the result's size depends on the data
            axis += p.ndim
        elif isinstance(p, numpy.ndarray) and p.dtype.kind in "iu":
            n = shape[axis] if axis < len(shape) else 0
            if p.size and (p.min() < -n or p.max() >= n) and _wrapping:
                p = numpy.where(p < 0, p, p % builtins.max(n, 1))   # what CuPy does
            elif p.size and (p.min() < -n or p.max() >= n):
                raise CupyDivergence(f"integer index out of range for axis {axis} of size {n} "
                                     f"(values {p.min()}..{p.max()}): NumPy raises IndexError, "
                                     f"CuPy wraps silently")
            axis += 1
        elif p is None:
            pass
        elif p is Ellipsis:
            axis = len(shape) - builtins.sum(1 for q in parts if q is not None and q is not Ellipsis
                                    and not (isinstance(q, (numpy.ndarray, ndarray)) and q.dtype == bool))
        else:
            axis += 1
        out.append(p)
    return tuple(out) if isinstance(index, tuple) else out[0]


_wrapping = False


@contextlib.contextmanager
def wrap_out_of_range_indices():
    """Within the block, out-of-range integer indices wrap silently, as on CuPy, instead
    of raising CupyDivergence: for tests of what the code does after such a lookup."""
    global _wrapping
    previous, _wrapping = _wrapping, True
    try:
        yield
    finally:
        _wrapping = previous


def _call(fn, args, kwargs, inputs=()):
    args = [_arguments(a) for a in args]
    kwargs = {k: _arguments(v) for k, v in kwargs.items()}
    all_inputs = tuple(inputs) + tuple(_flat_arrays(args)) + tuple(_flat_arrays(kwargs.values()))
    return _wrap_result(fn(*args, **kwargs), all_inputs)


def _flat_arrays(values):
    for v in values:
        if isinstance(v, numpy.ndarray):
            yield v
        elif isinstance(v, (list, tuple)):
            yield from _flat_arrays(v)


# ---------------------------------------------------------------- ufuncs
class ufunc:
    """A CuPy ufunc: one launch; NumPy arrays and lists as operands raise."""

    def __init__(self, name):
        self.__name__ = name
        self._np = getattr(numpy, name)
        self.nin, self.nout = self._np.nin, self._np.nout

    def __repr__(self):
        return f"<ufunc '{self.__name__}'>"

    def __call__(self, *args, out=None, dtype=None, casting="same_kind"):
        if MODE == "nodevice":
            _no_device()
        arrays = [_operand(a) for a in args]
        kwargs = {"casting": casting}
        if dtype is not None:
            kwargs["dtype"] = dtype
        if out is not None:
            if not isinstance(out, ndarray):
                raise TypeError(f"output must be a cupy.ndarray, got {type(out)}")
            self._np(*arrays, out=out._a, **kwargs)
            _launch()
            return out
        return _wrap_result(self._np(*arrays, **kwargs), ())

    def at(self, a, indices, b=None):
        if self.__name__ not in ("add", "subtract", "maximum", "minimum"):
            raise NotImplementedError(f"cupy.{self.__name__}.at is not supported by CuPy")
        if not isinstance(a, ndarray):
            raise _unsupported(a)
        index = _device_index(indices, a.shape)
        self._np.at(a._a, index, _operand(b))
        _launch()


_UFUNC_NAMES = """
absolute add arccos arccosh arcsin arcsinh arctan arctan2 arctanh bitwise_and bitwise_or
bitwise_xor cbrt ceil conjugate copysign cos cosh deg2rad degrees divide equal exp exp2 expm1
fabs floor floor_divide fmax fmin fmod greater greater_equal hypot invert isfinite isinf isnan
left_shift less less_equal log log10 log1p log2 logaddexp logaddexp2 logical_and logical_not
logical_or logical_xor matmul maximum minimum multiply negative nextafter not_equal positive power
rad2deg radians reciprocal remainder right_shift rint sign signbit sin sinh sqrt square subtract
tan tanh true_divide trunc
""".split()
_UFUNCS = {name: ufunc(name) for name in _UFUNC_NAMES}
globals().update(_UFUNCS)
abs = absolute = _UFUNCS["abs"] = _UFUNCS["absolute"]   # noqa: A001 (CuPy exports both)
mod = _UFUNCS["mod"] = _UFUNCS["remainder"]
conj = _UFUNCS["conjugate"]


# ---------------------------------------------------------------- functions
def _strict(name):
    np_fn = getattr(numpy, name)

    def function(*args, **kwargs):
        if MODE == "nodevice":
            _no_device()
        if name in _ARRAY_ONLY:
            position = _ARRAY_ONLY[name]
            if len(args) <= position or not isinstance(args[position], ndarray):
                got = args[position] if len(args) > position else None
                raise TypeError(f"cupy.{name}: argument {position} must be a cupy.ndarray, got "
                                f"{type(got).__name__} (CuPy, unlike NumPy, does not accept it)")
        return _call(np_fn, args, kwargs)
    function.__name__ = name
    return function


# Per-function quirks of CuPy that a plain NumPy call would hide: argument position
# that must be a device array. (cupy.unravel_index calls ``indices.dtype``-style
# checks and ``(indices < 0).any()``, which a Python int does not survive.)
_ARRAY_ONLY = {"unravel_index": 0, "ravel_multi_index": 0}

# Functions of CuPy 13/14 that take device arrays (the subset of NumPy's names that
# CuPy exports; extend when the code needs one, after checking it exists in CuPy).
_FUNCTION_NAMES = frozenset("""
all allclose amax amin any append argmax argmin argpartition argsort argwhere around
array_equal array_split atleast_1d atleast_2d atleast_3d average bincount broadcast_arrays
broadcast_to clip column_stack concatenate count_nonzero cov cross cumprod cumsum diag diagonal
diff dot dstack einsum expand_dims flatnonzero flip fliplr flipud hstack inner isclose kron
max mean median min moveaxis nan_to_num nanmax nanmean nanmin nansum nonzero outer pad
partition percentile prod ptp put_along_axis ravel ravel_multi_index repeat reshape roll
rollaxis rot90 round searchsorted sort split squeeze stack std sum swapaxes take
take_along_axis tensordot tile trace transpose tril triu unique unravel_index var vdot vstack
where
""".split())
for _name in _FUNCTION_NAMES:
    globals()[_name] = _strict(_name)


def _creation(np_fn, launches=1):
    def function(*args, **kwargs):
        if MODE == "nodevice":
            _no_device()
        args = [_arguments(a) for a in args]
        result = numpy.asarray(np_fn(*args, **kwargs))
        if launches:
            _launch(launches)
        return ndarray(None, _array=result)
    function.__name__ = np_fn.__name__
    return function


zeros, ones, full, arange, linspace, eye, identity, tri, logspace = (
    _creation(f) for f in (numpy.zeros, numpy.ones, numpy.full, numpy.arange, numpy.linspace,
                           numpy.eye, numpy.identity, numpy.tri, numpy.logspace))
zeros_like, ones_like, full_like = (_creation(f) for f in (numpy.zeros_like, numpy.ones_like,
                                                            numpy.full_like))
empty = _creation(numpy.empty, launches=0)
empty_like = _creation(numpy.empty_like, launches=0)


def array(obj, dtype=None, copy=True, order="K", subok=False, ndmin=0):
    """From host data: a host-to-device copy; from a device array: a device copy."""
    if MODE == "nodevice":
        _no_device()
    if isinstance(obj, ndarray):
        if not copy and (dtype is None or numpy.dtype(dtype) == obj.dtype):
            return obj
        _launch()
        return _wrap(numpy.array(obj._a, dtype=dtype, copy=True, ndmin=ndmin))
    if _contains_device_array(obj):
        raise TypeError("fake_cupy: a list mixing device arrays is not supported here")
    _h2d()
    return _wrap(numpy.array(obj, dtype=dtype, copy=True, ndmin=ndmin))


def asarray(a, dtype=None, order=None):
    if isinstance(a, ndarray):
        return array(a, dtype=dtype, copy=False)
    return array(a, dtype=dtype)


def ascontiguousarray(a, dtype=None):
    if isinstance(a, ndarray) and a._a.flags.c_contiguous and (dtype is None or
                                                                 numpy.dtype(dtype) == a.dtype):
        return a
    if isinstance(a, ndarray):
        _launch()
        return _wrap(numpy.ascontiguousarray(a._a, dtype=dtype))
    return array(a, dtype=dtype)


def asnumpy(a, stream=None, order="C", out=None):
    if isinstance(a, ndarray):
        return a.get()
    return numpy.asarray(a, order=order)


def copy(a, order="K"):
    if not isinstance(a, ndarray):
        raise _unsupported(a)
    return a.copy()


def _contains_device_array(obj):
    if isinstance(obj, ndarray):
        return True
    if isinstance(obj, (list, tuple)):
        return builtins.any(_contains_device_array(o) for o in obj)
    return False


def get_array_module(*args):
    return _cupy if builtins.any(isinstance(a, ndarray) for a in args) else numpy


def fuse(*args, **kwargs):
    """cupy.fuse: the identity here (the body runs op by op)."""
    if args and callable(args[0]):
        return args[0]
    return lambda f: f


# NumPy's own objects that CuPy re-exports (dtypes, constants, type helpers).
_NUMPY_REEXPORTS = """bool_ int8 int16 int32 int64 uint8 uint16 uint32 uint64 float16 float32 float64
        complex64 complex128 intp uintp dtype finfo iinfo result_type can_cast promote_types
        common_type min_scalar_type issubdtype isscalar ndim shape size newaxis inf nan pi e
        """.split()
for _name in _NUMPY_REEXPORTS:
    globals()[_name] = getattr(numpy, _name)
short = numpy.short
integer, floating, number, generic = numpy.integer, numpy.floating, numpy.number, numpy.generic


# ---------------------------------------------------------------- custom kernels
# name -> NumPy reference: reference(*inputs, *outputs as NumPy arrays/scalars) -> the
# outputs' new values (a tuple, or one array).
# The project registers its references here (tests/conftest.py points this at
# minitransformer.backend.KERNEL_REFERENCES), so the fake runs the code's own reference.
kernel_references = {}


class _KernelParam:
    """One declared parameter of an ElementwiseKernel, e.g. ``raw T x_proj``:
    ``placeholder`` "T" (or None), ``dtype`` for a fixed type such as ``int64`` (or
    None), ``raw`` (indexed by hand in the body, not broadcast with the loop)."""

    def __init__(self, text, is_output):
        words = text.split()
        if len(words) < 2:
            raise ValueError(f"ElementwiseKernel: syntax error in parameter {text.strip()!r}")
        type_name, self.name = words[-2:]
        self.raw, self.is_output = False, is_output
        for keyword in words[:-2]:
            if keyword == "raw":
                self.raw = True
            elif keyword != "_non_const":
                raise ValueError(f"ElementwiseKernel: unknown keyword {keyword!r} in "
                                 f"parameter {text.strip()!r}")
        # As in CuPy, any one-character type is a placeholder: "T", "X", even "f".
        if len(type_name) == 1:
            self.placeholder, self.dtype = type_name, None
        else:
            self.placeholder, self.dtype = None, numpy.dtype(type_name)


def _parse_params(params, is_output):
    """The parameters declared in ``params`` ("raw T x, int64 size"), as CuPy parses
    them: comma-separated, an empty entry (a stray comma) is a syntax error."""
    if not params.strip():
        return []
    return [_KernelParam(part, is_output) for part in params.strip().split(",")]


def _is_scalar(value):
    """What CuPy accepts as a scalar kernel argument: a Python or NumPy scalar."""
    return type(value) in (bool, int, float, complex) or isinstance(value, numpy.generic)


def _cast_scalar(kernel_name, param, value, dtype):
    """``value`` as a NumPy scalar of ``dtype``, by assignment as CuPy does (so 3.5 for
    an ``int64`` parameter truncates, while NaN or an out-of-range int raises)."""
    holder = numpy.empty((), dtype=dtype)
    try:
        holder[()] = value
    except (TypeError, ValueError, OverflowError) as error:
        raise type(error)(f"kernel {kernel_name!r}: scalar argument {param.name}={value!r} "
                          f"cannot be cast to {dtype} ({error})") from None
    return holder[()]


class ElementwiseKernel:
    """cupy.ElementwiseKernel: checks a call as CuPy 14 does, then runs the NumPy
    reference registered under ``name`` (one launch). The CUDA source is not compiled
    here (tests/test_nvrtc_kernels.py compiles it).

    The checks, in CuPy's order: the number of arguments (the inputs, or the inputs
    and the outputs); what each argument may be (an array, or a Python/NumPy scalar
    for an elementwise input; an array for a ``raw`` parameter and for an output);
    ``size=`` given exactly when no argument is an elementwise (non-raw) array; the
    elementwise arrays broadcast together, and each elementwise output has exactly
    the broadcast shape; every placeholder ``T`` is one dtype over all the arrays that
    use it, outputs included (CuPy never casts an array); a fixed type (``int64``)
    matches exactly; scalars are cast to their parameter's type.
    Beyond CuPy (its compiler would reject these): a parameter never used in the
    operation, two parameters of one name, a scalar for a ``raw`` parameter.
    """

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True,
                 preamble="", no_return=False, return_tuple=False, loop_prep="",
                 after_loop="", **kwargs):
        if not (name.isascii() and name.isidentifier()):
            raise ValueError(f'Invalid kernel name: "{name}"')
        self.in_params = _parse_params(in_params, is_output=False)
        self.out_params = _parse_params(out_params, is_output=True)
        self.name, self.operation = name, operation
        self.no_return, self.return_tuple = no_return, return_tuple
        names = [p.name for p in self.in_params + self.out_params]
        if "i" in names:
            raise ValueError("Can not use 'i' as a parameter name")   # the loop index
        repeated = sorted({n for n in names if names.count(n) > 1})
        if repeated:
            raise ValueError(f"ElementwiseKernel {name}: parameters {repeated} are declared "
                             f"twice")
        for pname in names:
            if pname not in operation and pname not in loop_prep + after_loop:
                raise ValueError(f"ElementwiseKernel {name}: parameter {pname!r} is never used "
                                 f"in the operation")

    def __call__(self, *args, size=None, block_size=128, stream=None, **unknown):
        if unknown:
            raise TypeError(f"Wrong arguments {unknown}")
        if block_size <= 0:
            raise ValueError("block_size must be greater than zero")
        if MODE == "nodevice":
            _no_device()
        n_in, n_out = len(self.in_params), len(self.out_params)
        if len(args) not in (n_in, n_in + n_out):
            raise TypeError(f"Wrong number of arguments for {self.name!r}. It must be either "
                            f"{n_in} or {n_in + n_out} (with outputs), but given {len(args)}.")
        params = self.in_params + self.out_params[:len(args) - n_in]
        for param, value in zip(params, args):
            self._check_kind(param, value)
        loop_shape = self._loop_shape(params, args, size)
        dtypes = self._bind_types(params, args)
        outputs = list(args[n_in:]) or self._allocate_outputs(dtypes, loop_shape, size)
        for param, out in zip(self.out_params, outputs):
            if not param.raw and out.shape != loop_shape:
                raise ValueError(f"Out shape is mismatched: kernel {self.name!r}, output "
                                 f"{param.name} has shape {out.shape}, the loop shape (the "
                                 f"inputs broadcast together) is {loop_shape}")
        result = None if self.no_return else (
            tuple(outputs) if (self.return_tuple or n_out > 1) else outputs[0])
        if 0 in loop_shape:
            return result                  # CuPy launches nothing for an empty loop
        reference = kernel_references.get(self.name)
        if reference is None:
            raise NotImplementedError(f"fake_cupy: no NumPy reference registered for kernel "
                                      f"{self.name!r}; add it to kernel_references")
        inputs = [value._a if isinstance(value, ndarray) else
                  _cast_scalar(self.name, param, value, dtypes[param.name])
                  for param, value in zip(self.in_params, args)]
        # The reference sees the outputs too: a kernel may read them (in-place updates).
        results = reference(*inputs, *[out._a for out in outputs])
        results = results if isinstance(results, tuple) else (results,)
        for param, out, value in zip(self.out_params, outputs, results):
            got = numpy.asarray(value).dtype
            if got != out.dtype:   # else NumPy would cast silently, and a bug hide
                raise TypeError(f"fake_cupy: the reference of kernel {self.name!r} returned "
                                f"{got} for output {param.name}, which is {out.dtype}")
            out._a[...] = value
        _launch()
        return result

    def _check_kind(self, param, value):
        """An argument is an array or a scalar, each where the parameter allows it."""
        if isinstance(value, ndarray):
            return
        if not _is_scalar(value):              # NumPy arrays, lists, strings, None...
            raise _unsupported(value)
        if param.is_output:
            raise TypeError(f"Output arguments type must be cupy.ndarray: kernel {self.name!r}, "
                            f"output {param.name} got {type(value).__name__}")
        if param.raw:
            raise TypeError(f"kernel {self.name!r}: raw parameter {param.name} needs a "
                            f"cupy.ndarray, got {type(value).__name__} (a scalar is passed by "
                            f"value, and indexing it does not compile)")

    def _loop_shape(self, params, args, size):
        """The shape the loop runs over: the elementwise arrays broadcast together, or
        ``(size,)`` when every array is raw."""
        elementwise = [(p.name, a.shape) for p, a in zip(params, args)
                       if isinstance(a, ndarray) and not p.raw]
        if size is not None:
            if elementwise:
                raise ValueError(f"Specified 'size' can be used only if all of the ndarray are "
                                 f"'raw': kernel {self.name!r} has elementwise arrays "
                                 f"{[n for n, _ in elementwise]}")
            return (int(size),)
        if not elementwise:
            raise ValueError(f"Loop size is undecided: kernel {self.name!r} has no elementwise "
                             f"(non-raw) array argument; give size=")
        try:
            return numpy.broadcast_shapes(*[shape for _, shape in elementwise])
        except ValueError:
            shapes = ", ".join(f"{n} {s}" for n, s in elementwise)
            raise ValueError(f"kernel {self.name!r}: operands could not be broadcast together "
                             f"with shapes {shapes}") from None

    def _bind_types(self, params, args):
        """parameter name -> dtype. CuPy binds each placeholder from the arrays only,
        outputs first, and casts no array: every array using ``T`` has one dtype."""
        bound = {}                             # placeholder -> (dtype, parameter that set it)
        order = [(p, a) for p, a in zip(params, args) if p.is_output] + \
                [(p, a) for p, a in zip(params, args) if not p.is_output]
        for param, value in order:
            if not isinstance(value, ndarray):
                continue                       # a scalar takes its parameter's type
            if param.dtype is not None:
                if value.dtype != param.dtype:
                    raise TypeError(f"Type is mismatched: kernel {self.name!r}, {param.name} "
                                    f"must be {param.dtype}, got {value.dtype}")
                continue
            first = bound.setdefault(param.placeholder, (value.dtype, param.name))
            if first[0] != value.dtype:
                raise TypeError(f"Type is mismatched: kernel {self.name!r}, {param.name} is "
                                f"{value.dtype}, but {param.placeholder} is already {first[0]} "
                                f"(from {first[1]})")
        dtypes = {}
        for param in self.in_params + self.out_params:
            if param.dtype is not None:
                dtypes[param.name] = param.dtype
            elif param.placeholder in bound:
                dtypes[param.name] = bound[param.placeholder][0]
            else:
                raise TypeError(f"kernel {self.name!r}: the type {param.placeholder} of "
                                f"{param.name} is undecided: no array argument uses "
                                f"{param.placeholder} (scalars do not bind a type)")
        return dtypes

    def _allocate_outputs(self, dtypes, loop_shape, size):
        """The outputs CuPy allocates when a call omits them: uninitialised memory, here
        NaN where the dtype has it, so that a kernel reading such an output shows."""
        outputs = []
        for param in self.out_params:
            if param.raw and size is None:
                raise ValueError(f"Output array size is Undecided: kernel {self.name!r}, raw "
                                 f"output {param.name} needs size= or an array passed in")
            dtype = dtypes[param.name]
            fill = numpy.nan if dtype.kind in "fc" else 0
            outputs.append(_wrap(numpy.full(loop_shape, fill, dtype=dtype)))
        return outputs


class RawKernel:
    def __init__(self, *args, **kwargs):
        raise NotImplementedError("fake_cupy: RawKernel cannot run here; use an "
                                  "ElementwiseKernel with a registered NumPy reference")


ReductionKernel = RawKernel


# ---------------------------------------------------------------- random numbers
class _RandomState:
    """cupy.random.RandomState: CuPy's signatures, float32/float64 only."""

    def __init__(self, seed=None, method=None):
        if MODE == "nodevice":
            raise ImportError("libcurand.so.10: cannot open shared object file: No such file "
                              "or directory (fake_cupy, mode 'nodevice')")
        self._rng = numpy.random.default_rng(seed)

    def seed(self, seed=None):
        self._rng = numpy.random.default_rng(seed)

    @staticmethod
    def _float(dtype):
        dtype = numpy.dtype(dtype)
        if dtype not in (numpy.float32, numpy.float64):
            raise TypeError(f"cupy.random: dtype must be float32 or float64, got {dtype}")
        return dtype

    def _out(self, values, dtype):
        _launch()
        return _wrap(numpy.asarray(values).astype(dtype))

    def uniform(self, low=0.0, high=1.0, size=None, dtype=float):
        dtype = self._float(dtype)
        return self._out(self._rng.uniform(_operand(low), _operand(high), size), dtype)

    def random_sample(self, size=None, dtype=float):
        return self.uniform(0.0, 1.0, size, dtype)

    def standard_normal(self, size=None, dtype=float):
        return self._out(self._rng.standard_normal(size), self._float(dtype))

    def normal(self, loc=0.0, scale=1.0, size=None, dtype=float):
        dtype = self._float(dtype)
        return self._out(self._rng.normal(_operand(loc), _operand(scale), size), dtype)

    def permutation(self, num):
        if not isinstance(num, int):
            raise TypeError("cupy.random.RandomState.permutation: an int only")
        return self._out(self._rng.permutation(num), numpy.int64)

    def randint(self, low, high=None, size=None, dtype=int):
        return self._out(self._rng.integers(low, high, size), dtype)


class _Generator:
    """cupy.random.Generator of CuPy 13: note, no ``permutation``."""

    def __init__(self, seed=None):
        self._state = _RandomState(seed)

    def random(self, size=None, dtype=numpy.float64, out=None):
        return self._state.uniform(0.0, 1.0, size, dtype)

    def standard_normal(self, size=None, dtype=numpy.float64, out=None):
        return self._state.standard_normal(size, dtype)

    def integers(self, low, high=None, size=None, dtype=numpy.int64, endpoint=False):
        return self._state.randint(low, high, size, dtype)


random = types.ModuleType("cupy.random")
random.RandomState = _RandomState
random.Generator = _Generator
random.default_rng = _Generator
_global_state = []


def _global():
    if not _global_state:
        _global_state.append(_RandomState())
    return _global_state[0]


random.seed = lambda seed=None: _global().seed(seed)
random.rand = lambda *size, dtype=float: _global().uniform(0.0, 1.0, size, dtype)
random.randn = lambda *size, dtype=float: _global().standard_normal(size, dtype)
random.uniform = lambda low=0.0, high=1.0, size=None, dtype=float: _global().uniform(low, high, size, dtype)
random.standard_normal = lambda size=None, dtype=float: _global().standard_normal(size, dtype)
random.permutation = lambda n: _global().permutation(n)
random.get_random_state = _global


# ---------------------------------------------------------------- cupy.cuda
cuda = types.ModuleType("cupy.cuda")
runtime = types.ModuleType("cupy.cuda.runtime")
cuda.runtime = runtime
runtime.CUDARuntimeError = CUDARuntimeError


def _device_count():
    if MODE == "nodevice":
        _no_device()
    return 1


def _device_properties(device):
    if MODE == "nodevice":
        _no_device()
    return {"name": b"Fake GPU (tests/fake_cupy.py)", "totalGlobalMem": 16 * 2 ** 30,
            "major": 9, "minor": 0, "multiProcessorCount": 1}


runtime.getDeviceCount = _device_count
runtime.getDeviceProperties = _device_properties
runtime.runtimeGetVersion = lambda: 12080
runtime.driverGetVersion = lambda: 12080
runtime.getDevice = lambda: 0
runtime.deviceSynchronize = _sync
runtime.is_hip = False


class Stream:
    null = None

    def synchronize(self):
        _sync()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass


_STREAM = Stream()
Stream.null = _STREAM


class Device:
    def __init__(self, device=None):
        self.id = 0 if device is None else int(device)

    def synchronize(self):
        _sync()

    def use(self):
        pass

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        pass

    @property
    def mem_info(self):
        total = 16 * 2 ** 30
        return total - _POOL.total_bytes(), total

    @property
    def compute_capability(self):
        return "90"

    def __repr__(self):
        return f"<CUDA Device {self.id}>"


class Event:
    """A CUDA event: record() notes the point; the timings are host clock readings
    taken at synchronize(), so only their order is meaningful here."""

    def __init__(self, block=False, disable_timing=False, interprocess=False):
        self._t = None

    def record(self, stream=None):
        self._t = _time.perf_counter()

    def synchronize(self):
        _sync()

    @property
    def done(self):
        return True


def get_elapsed_time(start, end):
    return (end._t - start._t) * 1000.0


class _MemoryModule(types.ModuleType):
    pass


memory = _MemoryModule("cupy.cuda.memory")
memory.OutOfMemoryError = OutOfMemoryError
memory.MemoryPool = MemoryPool
memory_hook = types.ModuleType("cupy.cuda.memory_hook")
memory_hook.MemoryHook = MemoryHook
for _name, _value in [("Device", Device), ("Stream", Stream), ("Event", Event),
                      ("get_elapsed_time", get_elapsed_time), ("MemoryHook", MemoryHook),
                      ("MemoryPool", MemoryPool), ("memory", memory), ("memory_hook", memory_hook),
                      ("OutOfMemoryError", OutOfMemoryError)]:
    setattr(cuda, _name, _value)
cuda.get_current_stream = lambda device=None: _STREAM
cuda.is_available = lambda: MODE != "nodevice"
cuda.get_device_id = lambda: 0

# ---------------------------------------------------------------- cupyx
cupyx = types.ModuleType("cupyx")
cupyx.__path__ = []   # a package, so that ``import cupyx.scipy.special`` resolves
cupyx.scipy = types.ModuleType("cupyx.scipy")
cupyx.scipy.__path__ = []
cupyx.scipy.special = types.ModuleType("cupyx.scipy.special")


def _scatter_add(a, slices, value):
    _UFUNCS["add"].at(a, slices, value)


def _special(name):
    import scipy.special as sp

    def function(x, out=None):
        if not isinstance(x, ndarray):
            raise _unsupported(x)
        _launch()
        return _wrap(numpy.asarray(getattr(sp, name)(x._a), dtype=x.dtype))
    function.__name__ = name
    return function


cupyx.scatter_add = _scatter_add
for _name in ("erf", "erfc", "erfinv", "expit", "log_expit", "logit", "gammaln"):
    setattr(cupyx.scipy.special, _name, _special(_name))


# ---------------------------------------------------------------- installation
_CUPY_MODULE_NAMES = ("cupy", "cupy.random", "cupy.cuda", "cupy.cuda.runtime", "cupy.cuda.memory",
                      "cupy.cuda.memory_hook", "cupyx", "cupyx.scipy", "cupyx.scipy.special")


def install(mode="device"):
    """Put a module holding only CuPy's names in ``sys.modules`` as ``cupy`` (and the
    ``cupyx`` parts the code uses), before anything imports CuPy. ``mode``: "device" (a
    fake GPU) or "nodevice" (CuPy installed on a machine without a GPU)."""
    global MODE, _cupy
    if mode not in ("device", "nodevice"):
        raise ValueError(f"fake_cupy.install: mode must be 'device' or 'nodevice', got {mode!r}")
    MODE = mode
    me = sys.modules[__name__]
    _cupy = types.ModuleType("cupy", "fake CuPy: tests/fake_cupy.py")
    _cupy.__file__ = __file__
    for name in _EXPORTS:
        setattr(_cupy, name, getattr(me, name))
    sys.modules.update({"cupy": _cupy, "cupy.random": random, "cupy.cuda": cuda,
                        "cupy.cuda.runtime": runtime, "cupy.cuda.memory": memory,
                        "cupy.cuda.memory_hook": memory_hook, "cupyx": cupyx,
                        "cupyx.scipy": cupyx.scipy, "cupyx.scipy.special": cupyx.scipy.special})
    return _cupy


_cupy = None


def installed():
    """True when this stand-in is what ``import cupy`` gives."""
    return _cupy is not None and sys.modules.get("cupy") is _cupy


# The names ``import cupy`` shows: CuPy's, none of this module's helpers.
_EXPORTS = (set(_UFUNCS) | set(_FUNCTION_NAMES) | set(_NUMPY_REEXPORTS) | {
    "ndarray", "ufunc", "array", "asarray", "ascontiguousarray", "asnumpy", "copy", "zeros", "ones",
    "full", "arange", "linspace", "eye", "identity", "tri", "logspace", "zeros_like", "ones_like",
    "full_like", "empty", "empty_like", "get_array_module", "fuse", "ElementwiseKernel",
    "RawKernel", "ReductionKernel", "random", "cuda", "get_default_memory_pool",
    "get_default_pinned_memory_pool", "abs", "mod", "conj", "__version__", "integer", "floating",
    "number", "generic", "short"})
