"""In-place re-initialisation of a parameter, as ``torch.nn.init`` names it.

A layer's constructor gives PyTorch's default initialisation; a model that needs
another one (the Transformer translator: see ``translation/models.py``) redraws
its parameters with these. Like the constructors, they draw on the CPU generator
and then copy to the parameter's device, so a seeded model starts from the same
weights on the CPU and the GPU.
"""
from .. import backend
from .module import xavier_bound


def _fill(param, host_array):
    param.data[...] = backend.to_device(host_array, param.device)
    return param


def normal_(param, mean=0.0, std=1.0):
    """Redraw ``param`` from N(mean, std²); returns it."""
    draw = backend.random_normal(param.shape, param.data.dtype, "cpu")
    return _fill(param, draw * draw.dtype.type(std) + draw.dtype.type(mean))


def xavier_uniform_(param):
    """Redraw a 2-d ``param`` (fan_out, fan_in) uniformly in ±√(6 / (fan_in + fan_out))
    (Glorot & Bengio 2010): the variance of activations and of gradients stays about
    the same from layer to layer."""
    if param.ndim != 2:
        raise ValueError(f"xavier_uniform_: expected a 2-d parameter (fan_out, fan_in), "
                         f"got shape {param.shape}")
    fan_out, fan_in = param.shape
    bound = xavier_bound(fan_in, fan_out)
    return _fill(param, backend.random_uniform(param.shape, param.data.dtype, "cpu",
                                               low=-bound, high=bound))


def zeros_(param):
    """Set ``param`` to zero; returns it."""
    param.data[...] = 0
    return param
