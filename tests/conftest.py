"""Shared fixtures: every test that takes ``device`` runs on the CPU and, where CuPy
and a CUDA GPU are present, on the GPU too (the GPU copy carries the ``gpu`` marker).

With ``MINITRANSFORMER_FAKE_CUPY=1`` (or ``=device``) in the environment, CuPy is the
strict stand-in ``tests/fake_cupy.py``: the GPU tests run on NumPy under CuPy's rules,
with syncs and kernel launches counted. ``=nodevice`` makes it CuPy installed on a
machine without a GPU. It must be installed before ``minitransformer`` imports CuPy,
hence at the very top of this file.

With ``MINITRANSFORMER_FAIL_ON_SKIP=1`` a skipped test counts as failed: a CI step that
installs an extra (MPI, PyTorch) sets it, so that the step cannot pass by skipping the
tests it exists to run.
"""
import os
import subprocess
import sys

_FAKE = os.environ.get("MINITRANSFORMER_FAKE_CUPY", "")
if _FAKE not in ("", "0", "1", "device", "nodevice"):
    raise RuntimeError(f"MINITRANSFORMER_FAKE_CUPY must be 1, device or nodevice, got {_FAKE!r}")
if _FAKE not in ("", "0"):
    from tests import fake_cupy
    fake_cupy.install("nodevice" if _FAKE == "nodevice" else "device")
else:
    fake_cupy = None

import numpy as np  # noqa: E402  (after the stand-in, on purpose)
import pytest  # noqa: E402

import minitransformer as mt  # noqa: E402

if fake_cupy is not None:
    # The stand-in runs the project's NumPy reference for each custom kernel.
    fake_cupy.kernel_references = mt.backend.KERNEL_REFERENCES

_GPU = mt.gpu_available()


def pytest_report_header(config):
    if fake_cupy is not None:
        return (f"CuPy is the stand-in tests/fake_cupy.py (mode {fake_cupy.MODE}): GPU code paths "
                f"run on NumPy under CuPy's rules; no GPU numerics are tested")
    return None


FAIL_ON_SKIP = os.environ.get("MINITRANSFORMER_FAIL_ON_SKIP", "") not in ("", "0")


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    if FAIL_ON_SKIP and report.skipped and not hasattr(report, "wasxfail"):
        reason = report.longrepr[-1] if isinstance(report.longrepr, tuple) else report.longrepr
        report.outcome = "failed"
        report.longrepr = f"skipped under MINITRANSFORMER_FAIL_ON_SKIP=1: {reason}"


def pytest_collection_modifyitems(config, items):
    skip = pytest.mark.skip(reason="needs the CuPy stand-in: set MINITRANSFORMER_FAKE_CUPY=1")
    for item in items:
        if "fakegpu" in item.keywords and (fake_cupy is None or fake_cupy.MODE != "device"):
            item.add_marker(skip)


@pytest.fixture(params=["cpu", pytest.param("gpu", marks=pytest.mark.gpu)])
def device(request):
    if request.param == "gpu" and not _GPU:
        pytest.skip("needs CuPy and a CUDA GPU")
    return request.param


@pytest.fixture(autouse=True)
def _seed():
    """Every test starts from the same random state, so failures reproduce."""
    mt.manual_seed(0)
    np.random.seed(0)


@pytest.fixture
def gpu_stats():
    """The stand-in's counters, zeroed (for budget tests; they carry ``fakegpu``)."""
    fake_cupy.STATS.reset()
    return fake_cupy.STATS


def to_host(x):
    """A NumPy array from a Tensor, a CuPy array or a NumPy array."""
    if isinstance(x, mt.Tensor):
        return x.numpy()
    return mt.backend.to_numpy(x)


@pytest.fixture
def ended_pid():
    """The pid of a process that has ended and been reaped: no process has it now (a
    killed save's or download's, for the tests of what they leave behind)."""
    child = subprocess.Popen([sys.executable, "-c", "pass"])
    child.wait()
    return child.pid
