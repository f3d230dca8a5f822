"""Finite-difference gradient checking: is each hand-written backward right?

For an input x and a function y = f(x), backward computes vᵀ·∂y/∂x for a vector
v. Central differences estimate the same numbers without any backward code:

    ∂(v·y)/∂x_i ≈ (v·f(x + ε e_i) - v·f(x - ε e_i)) / 2ε

with an error of order ε². In float64 with ε = 1e-6 both agree to about 1e-8
for smooth functions, so any disagreement beyond the tolerance is a bug. A random
v makes one backward check every output at once (a wrong entry of the Jacobian
would have to cancel exactly against v to go unnoticed).
"""
from . import backend
from ._tensor import Tensor, no_grad


class GradcheckError(AssertionError):
    """Raised when analytic and numeric gradients disagree."""


def _flatten_outputs(out):
    if isinstance(out, Tensor):
        return [out]
    if isinstance(out, (tuple, list)):
        return [t for item in out for t in _flatten_outputs(item)]
    return []


def _projection(fn, inputs, weights):
    outputs = _flatten_outputs(fn(*inputs))
    if not outputs:
        raise TypeError("gradcheck: fn must return a Tensor (or a tuple of Tensors)")
    total = None
    for out, w in zip(outputs, weights):
        term = (out * Tensor(w)).sum()
        total = term if total is None else total + term
    return total, outputs


def gradcheck(fn, inputs, eps=1e-6, atol=1e-5, rtol=1e-3, seed=0):
    """Compare the gradients of ``fn`` from backward with central differences.

    fn: called as ``fn(*inputs)``, returns a Tensor or a tuple of Tensors.
    inputs: a Tensor or a sequence of Tensors; every one with ``requires_grad`` is
        checked and must be float64 (float32 rounding swamps the differences).
    Returns True, or raises :class:`GradcheckError` naming the input, the index of
    its worst element and the analytic and numeric values there.
    """
    inputs = (inputs,) if isinstance(inputs, Tensor) else tuple(inputs)
    checked = [i for i, t in enumerate(inputs) if isinstance(t, Tensor) and t.requires_grad]
    if not checked:
        raise ValueError("gradcheck: no input has requires_grad=True; nothing to check")
    for i in checked:
        if inputs[i].dtype != backend.as_dtype("float64"):
            raise TypeError(f"gradcheck: input {i} has dtype {inputs[i].dtype}; finite "
                            f"differences need float64 (use .double())")

    saved_grads = [inputs[i].grad for i in checked]
    for i in checked:
        inputs[i].grad = None
    # A fixed random projection of every output, drawn on the host for reproducibility.
    with no_grad():
        outputs = _flatten_outputs(fn(*inputs))
    rng = backend.numpy.random.default_rng(seed)
    weights = [backend.to_device(rng.standard_normal(o.shape).astype(o.dtype), o.device)
               for o in outputs]

    try:
        total, _ = _projection(fn, inputs, weights)
        total.backward()
        for i in checked:
            x = inputs[i]
            xp = backend.array_module(x.data)
            x.data = xp.ascontiguousarray(x.data)  # so that a flat view writes through
            analytic = x.grad if x.grad is not None else xp.zeros_like(x.data)
            numeric = xp.zeros_like(x.data)
            flat, flat_numeric = x.data.reshape(-1), numeric.reshape(-1)
            with no_grad():
                for j in range(flat.size):
                    original = flat[j].item()
                    flat[j] = original + eps
                    plus = _projection(fn, inputs, weights)[0].item()
                    flat[j] = original - eps
                    minus = _projection(fn, inputs, weights)[0].item()
                    flat[j] = original
                    flat_numeric[j] = (plus - minus) / (2 * eps)
            error = xp.abs(analytic - numeric) - (atol + rtol * xp.abs(numeric))
            if (error > 0).any():
                # On the host: CuPy's unravel_index needs a device array, not an int
                # (this is only the failure path, so the copy does not matter).
                worst = tuple(int(k) for k in backend.numpy.unravel_index(int(error.argmax()),
                                                                          x.shape))
                raise GradcheckError(
                    f"gradcheck: gradient of input {i} (shape {x.shape}) is wrong at index "
                    f"{worst}: analytic {float(analytic[worst]):.8g}, numeric "
                    f"{float(numeric[worst]):.8g} (atol={atol}, rtol={rtol})")
    finally:
        for i, g in zip(checked, saved_grads):
            inputs[i].grad = g
    return True
