"""Every fused CUDA kernel of the package compiles, checked without a GPU.

The GPU tests hold each ``backend.ElementwiseKernel`` against its NumPy reference, but
they need a GPU, and the CuPy stand-in runs the reference instead of the CUDA source.
Here NVRTC compiles the exact source CuPy would generate (see tests/nvrtc.py) for
float32 and float64 and for each argument layout: a CUDA typo fails CI on any machine.

The kernels are found by importing every module of the package, so a new kernel is
checked without editing this file. Where CuPy, NVRTC or the CUDA headers are missing
the compile tests skip; with ``MINITRANSFORMER_REQUIRE_NVRTC=1`` (set by .ci/nvrtc.sh)
they fail instead, so that CI cannot pass by skipping them.
"""
import importlib
import os
import pkgutil
import re

import pytest

import minitransformer as mt
from minitransformer import backend
from tests import nvrtc

REQUIRE_NVRTC = os.environ.get("MINITRANSFORMER_REQUIRE_NVRTC", "") not in ("", "0")


def _find_package_kernels():
    """name -> the distinct ``backend.ElementwiseKernel`` objects of that name bound at
    module level anywhere in the package (one per name, unless two clash)."""
    found = {}
    for module_info in pkgutil.walk_packages(mt.__path__, mt.__name__ + "."):
        if module_info.name.rsplit(".", 1)[-1] == "__main__":   # importing it runs the CLI
            continue
        module = importlib.import_module(module_info.name)
        for value in vars(module).values():
            # A module that imports a kernel from another binds the same object again.
            if isinstance(value, backend.ElementwiseKernel) and \
                    all(value is not k for k in found.get(value.name, [])):
                found.setdefault(value.name, []).append(value)
    return found


_FOUND = _find_package_kernels()
# Every kernel ever constructed registers its reference by name, so after the walk
# this is the complete list: a name here but not in _FOUND is a kernel the walk cannot
# reach (made inside a function or a class), hence not compiled below.
_REGISTERED = sorted(backend.KERNEL_REFERENCES)
KERNELS = [kernels[0] for _, kernels in sorted(_FOUND.items())]


@pytest.fixture(scope="module")
def compiler():
    """Skip (or fail, under MINITRANSFORMER_REQUIRE_NVRTC=1) where NVRTC cannot run."""
    reason = nvrtc.unavailable()
    if reason is not None:
        if REQUIRE_NVRTC:
            pytest.fail(f"MINITRANSFORMER_REQUIRE_NVRTC=1, but kernels cannot be compiled "
                        f"here: {reason}", pytrace=False)
        pytest.skip(f"cannot compile CUDA kernels: {reason}")


def test_the_walk_finds_every_kernel_of_the_package():
    assert KERNELS, "no backend.ElementwiseKernel found in the package"
    clashes = {name: len(kernels) for name, kernels in _FOUND.items() if len(kernels) > 1}
    assert not clashes, f"distinct kernels share a name (the stand-in keys on it): {clashes}"
    unreachable = sorted(set(_REGISTERED) - set(_FOUND))
    assert not unreachable, (f"kernels {unreachable} are not bound to a module-level name, "
                             f"so this file cannot find and compile them")


@pytest.mark.parametrize("layout", nvrtc.LAYOUTS)
@pytest.mark.parametrize("dtype", ["float32", "float64"])
@pytest.mark.parametrize("kernel", KERNELS, ids=[k.name for k in KERNELS])
def test_kernel_compiles(compiler, kernel, dtype, layout):
    what = f"kernel {kernel.name} ({dtype}, {layout})"
    source = nvrtc.generated_source(kernel.cupy_kernel(), dtype, layout)
    try:
        ptx, log = nvrtc.compile_to_ptx(source, kernel.name, what)
    except nvrtc.KernelCompileError as error:
        pytest.fail(str(error), pytrace=False)
    # Warnings in CuPy's headers are not ours; one in the kernel's own file points
    # at a real slip (a variable set and never read, a narrowing conversion).
    own_warnings = [line for line in log.splitlines()
                    if line.startswith(f"{kernel.name}.cu(") and "warning" in line]
    assert not own_warnings, f"{what} compiles with warnings:\n" + "\n".join(own_warnings) + \
        f"\n--- generated source ---\n{nvrtc.numbered(source)}"
    if dtype == "float32":
        doubles = nvrtc.double_precision_lines(ptx)
        assert not doubles, (f"{what}: the float32 PTX computes in double precision "
                             f"(write literals as (T)0.5, not 0.5):\n" + "\n".join(doubles[:20]))


def _first_elementwise_input(cupy_kernel):
    return next(p.name for p in cupy_kernel.in_params if not p.raw)


# Deliberate mistakes in a copy of a kernel body, and what NVRTC says about each.
_MISTAKES = {
    # A misspelt name: the first output's first use gets a suffix.
    "typo": (lambda op, k: re.sub(rf"\b{k.out_params[0].name}\b", k.out_params[0].name + "_typo",
                                  op, count=1),
             lambda k: f'identifier "{k.out_params[0].name}_typo" is undefined'),
    # Inputs are const references in the generated code: a kernel may not write them.
    "write-to-input": (lambda op, k: op + f"\n{_first_elementwise_input(k)} = 0;",
                       lambda k: "expression must be a modifiable lvalue"),
}


@pytest.mark.parametrize("mistake", sorted(_MISTAKES))
def test_a_broken_kernel_body_fails_with_the_compilers_message(compiler, mistake):
    import cupy
    break_operation, expected_message = _MISTAKES[mistake]
    good = KERNELS[0].cupy_kernel()
    # A copy under the same name; a cupy.ElementwiseKernel, so the package's registry
    # of kernels (backend.KERNEL_REFERENCES) does not see it.
    broken = cupy.ElementwiseKernel(KERNELS[0].in_params, KERNELS[0].out_params,
                                    break_operation(good.operation, good), good.name)
    assert broken.operation != good.operation
    source = nvrtc.generated_source(broken, "float32", "contiguous-1d")
    with pytest.raises(nvrtc.KernelCompileError) as caught:
        nvrtc.compile_to_ptx(source, good.name)
    assert expected_message(good) in caught.value.log
    assert f"{good.name}.cu(" in caught.value.log       # the message points into the kernel
    assert "--- generated source ---" in str(caught.value)
