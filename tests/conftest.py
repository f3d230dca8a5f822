"""Shared fixtures: every test that takes ``device`` runs on the CPU and, where CuPy
and a CUDA GPU are present, on the GPU too (the GPU copy carries the ``gpu`` marker)."""
import numpy as np
import pytest

import minitransformer as mt

_GPU = mt.gpu_available()


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


def to_host(x):
    """A NumPy array from a Tensor, a CuPy array or a NumPy array."""
    if isinstance(x, mt.Tensor):
        return x.numpy()
    return mt.backend.to_numpy(x)
