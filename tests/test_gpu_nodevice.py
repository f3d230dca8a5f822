"""CuPy installed on a machine without a usable GPU: the library must behave as without
CuPy (GPU tests skip, everything else runs), not crash.

Each test runs a fresh interpreter with the CuPy stand-in in mode "nodevice", which
behaves as real CuPy 13/14 does there: ``import cupy`` works, ``getDeviceCount``
raises, and creating a ``cupy.random.RandomState`` raises ImportError (no cuRAND).
These run in the default suite: they need no GPU and no CuPy.
"""
import os
import subprocess
import sys

import pytest

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))

PRELUDE = """
from tests import fake_cupy
fake_cupy.install("nodevice")
import cupy
import minitransformer as mt
"""


def _run(body):
    env = {k: v for k, v in os.environ.items() if k != "MINITRANSFORMER_FAKE_CUPY"}
    env["PYTHONPATH"] = ROOT + os.pathsep + env.get("PYTHONPATH", "")
    result = subprocess.run([sys.executable, "-c", PRELUDE + body], cwd=ROOT, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stderr[-2000:]
    return result.stdout


@pytest.mark.slow   # a fresh interpreter importing the library
def test_cupy_without_a_gpu_degrades_to_the_cpu():
    out = _run("""
import pytest
with pytest.raises(ImportError):
    cupy.random.RandomState(0)          # the stand-in reproduces the real failure
assert not mt.gpu_available()
mt.manual_seed(0)                       # where an unusable CuPy would raise ImportError
x = mt.randn(3, 4)
print(x.device, x.shape)
try:
    mt.zeros(2, device="gpu")
except RuntimeError as err:
    print("error:", err)
""")
    assert "cpu (3, 4)" in out
    assert "needs a CUDA GPU, but CuPy finds none" in out
