"""Compile the project's fused CUDA kernels with NVRTC, on a machine without a GPU.

A ``cupy.ElementwiseKernel`` is compiled at its first call, and a call needs a GPU, so
the CUDA source of a kernel is otherwise first compiled on a GPU machine. CuPy's
compiler front end, though, needs no device: this module asks CuPy for the exact
source it would generate for given argument dtypes and layouts, and hands it to NVRTC
for an explicit architecture (no device query).

This uses private CuPy API (``cupy._core._kernel``, ``cupy._core.core``,
``cupy.cuda.compiler._NVRTCProgram``), pinned to CuPy 14.x: :func:`unavailable`
says why compiling is impossible here instead of breaking when the API moves.

Three argument layouts per kernel and dtype (``LAYOUTS``), because CuPy generates a
different kernel for each:

* ``contiguous-1d``: every argument an array, C-contiguous, one dimension, 32-bit
  indices (CuPy folds contiguous arrays to 1-D before compiling);
* ``strided-2d``: every argument a non-contiguous 2-D array with 64-bit indices (the
  general case: index arithmetic through shape and strides);
* ``scalars``: every elementwise input a scalar of its parameter's type (CuPy passes
  it by value), arrays as in ``contiguous-1d``.
"""
import os
import re

import numpy

REQUIRED_CUPY_MAJOR = "14"
ARCH = "compute_90"          # PTX for Hopper; any architecture NVRTC knows would do
LAYOUTS = ("contiguous-1d", "strided-2d", "scalars")

# cupy._core._kernel._ArgKind is a Cython enum that Python cannot see; its values:
_ARG_NDARRAY, _ARG_INDEXER, _ARG_SCALAR = 1, 2, 3


class KernelCompileError(AssertionError):
    """NVRTC rejected a generated kernel. ``log`` is the compiler's message; the text
    of the error also holds the generated source with line numbers, which the
    compiler's "file.cu(17): error" lines point into."""

    def __init__(self, what, log, source):
        self.log, self.source = log, source
        super().__init__(f"NVRTC could not compile {what}:\n{log.strip()}\n"
                         f"--- generated source ---\n{numbered(source)}")


def numbered(source):
    """``source`` with a line number before each line."""
    lines = source.split("\n")
    width = len(str(len(lines)))
    return "\n".join(f"{n:>{width}} {line}" for n, line in enumerate(lines, 1))


def unavailable():
    """Why kernels cannot be compiled here (a sentence), or None when they can."""
    try:
        import cupy
    except ImportError:
        return "CuPy is not installed (pip install 'cupy-cuda12x==14.*')"
    if os.environ.get("MINITRANSFORMER_FAKE_CUPY", "") not in ("", "0") or \
            not hasattr(cupy, "_core"):
        return "CuPy is the stand-in tests/fake_cupy.py (unset MINITRANSFORMER_FAKE_CUPY)"
    if cupy.__version__.split(".")[0] != REQUIRED_CUPY_MAJOR:
        return (f"the private CuPy API used here is pinned to CuPy {REQUIRED_CUPY_MAJOR}.x, "
                f"found {cupy.__version__}")
    try:
        from cupy._core import _kernel, core
        from cupy.cuda import compiler
        from cupy_backends.cuda.libs import nvrtc
        _kernel._get_elementwise_kernel_code, _kernel._ArgInfo, compiler._NVRTCProgram
        core._cupy_header_list, core.assemble_cupy_compiler_options
    except (ImportError, AttributeError) as error:
        return f"CuPy {cupy.__version__} lacks the private API this needs: {error}"
    try:
        nvrtc.getVersion()
    except Exception as error:   # the NVRTC shared library is missing or broken
        return (f"NVRTC is not loadable ({error}); pip install "
                f"'nvidia-cuda-nvrtc-cu12==12.9.*'")
    try:
        compiler_options()
    except Exception as error:   # CuPy raises RuntimeError: "Failed to find CUDA headers"
        return (f"CuPy finds no CUDA headers ({error}); pip install "
                f"'nvidia-cuda-runtime-cu12==12.9.*'")
    return None


def compiler_options():
    """The NVRTC options CuPy uses for an elementwise kernel, for architecture ARCH.

    CuPy itself asks for ``-arch=sm_XX`` (a binary for the GPU it runs on); PTX for a
    virtual architecture is the same front end, needs no device, and is readable.
    """
    from cupy._core import core
    return core.assemble_cupy_compiler_options(()) + (
        "-ftz=true", f"-arch={ARCH}", "--device-as-default-execution-space")


def _arginfo(kind, dtype, ndim, contiguous, index_32_bits):
    import cupy
    from cupy._core import _carray, _kernel, _scalar
    python_type = {_ARG_NDARRAY: cupy.ndarray, _ARG_SCALAR: _scalar.CScalar,
                   _ARG_INDEXER: _carray.Indexer}[kind]
    return _kernel._ArgInfo(kind, python_type, dtype, ndim, contiguous, index_32_bits)


def generated_source(cupy_kernel, dtype, layout):
    """The complete CUDA source CuPy compiles for ``cupy_kernel`` (a
    ``cupy.ElementwiseKernel``) called with arguments of ``layout`` (see LAYOUTS),
    every type placeholder (``T``) bound to ``dtype``: CuPy's headers, then the kernel.
    """
    from cupy._core import _kernel, core
    if layout not in LAYOUTS:
        raise ValueError(f"layout must be one of {LAYOUTS}, got {layout!r}")
    dtype = numpy.dtype(dtype)
    strided = layout == "strided-2d"
    ndim, contiguous, index_32_bits = (2, False, False) if strided else (1, True, True)
    n_in = len(cupy_kernel.in_params)
    as_scalar = [layout == "scalars" and not p.raw for p in cupy_kernel.in_params]

    def declared(p):   # a fixed type ("int64 size") or the placeholder's dtype
        return p.dtype if p.dtype is not None else dtype

    # CuPy's own type resolution: a scalar binds no placeholder (None), arrays do.
    in_dtypes = tuple(None if scalar else declared(p)
                      for p, scalar in zip(cupy_kernel.in_params, as_scalar))
    out_dtypes = tuple(declared(p) for p in cupy_kernel.out_params)
    in_types, out_types, type_map = cupy_kernel._decide_params_type(in_dtypes, out_dtypes)

    arginfos = []
    for index, param_dtype in enumerate(in_types + out_types):
        if index < n_in and as_scalar[index]:
            arginfos.append(_arginfo(_ARG_SCALAR, numpy.dtype(param_dtype), 0, True, True))
        else:
            arginfos.append(_arginfo(_ARG_NDARRAY, numpy.dtype(param_dtype), ndim, contiguous,
                                     index_32_bits))
    arginfos.append(_arginfo(_ARG_INDEXER, None, ndim, True, index_32_bits))   # the loop index
    body = _kernel._get_elementwise_kernel_code(
        tuple(arginfos), type_map, cupy_kernel.params, cupy_kernel.operation,
        cupy_kernel.name, cupy_kernel.preamble, **cupy_kernel.kwargs)
    headers = "".join(f"#include <{header}>\n" for header in core._cupy_header_list)
    return headers + body


def compile_to_ptx(source, name, what=None):
    """Compile ``source`` (from :func:`generated_source`) as ``name``.cu; return
    ``(ptx, log)``: the PTX text and the compiler's log (warnings; often empty).
    Raises :class:`KernelCompileError` with the compiler's message when NVRTC fails."""
    import io

    from cupy.cuda import compiler
    log = io.StringIO()
    program = compiler._NVRTCProgram(source, f"{name}.cu", method="ptx")
    try:
        ptx, _ = program.compile(compiler_options(), log)
    except compiler.CompileException as error:
        raise KernelCompileError(what or name, error.get_message(), source) from None
    return (ptx.decode() if isinstance(ptx, bytes) else ptx), log.getvalue()


def double_precision_lines(ptx):
    """The PTX lines that use a double (``.f64``): in a float32 kernel each one is a
    silent promotion (a double literal such as ``0.5`` instead of ``(T)0.5``, or a
    double-only function); consumer GPUs run doubles at 1/32 to 1/64 of the float32
    rate."""
    return [line.strip() for line in ptx.splitlines()
            if re.search(r"\.f64\b", line) and not line.strip().startswith("//")]
