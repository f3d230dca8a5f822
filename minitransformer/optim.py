"""Optimizers (SGD, Adam, AdamW), the Transformer's warm-up schedule, gradient clipping.

The update rules and defaults are PyTorch's, so that a training run can be
checked against it step by step. An optimizer changes each parameter's array in
place, outside the autograd graph. Its state (momentum buffers, Adam's moment
estimates and step counts) goes into ``state_dict()`` so that training resumes
exactly where it stopped.

Typical loop::

    optimizer = Adam(model.parameters(), lr=1e-3)
    for batch in batches:
        optimizer.zero_grad()
        loss = loss_fn(model(batch.x), batch.y)
        loss.backward()
        clip_grad_norm_(model.parameters(), 1.0)
        optimizer.step()
"""
import math

from . import backend
from ._tensor import Tensor, no_grad


class Optimizer:
    """Base class: parameter groups, ``zero_grad``, ``step`` and the state dict.

    ``params`` is an iterable of parameters, or of dicts ``{"params": [...], "lr": ...}``
    (parameter groups with their own hyperparameters, as in PyTorch).
    """

    def __init__(self, params, defaults):
        self.defaults = dict(defaults)
        self.param_groups = []
        self.state = {}  # id(parameter) -> dict of that parameter's state
        params = list(params)
        if not params:
            raise ValueError(f"{type(self).__name__}: got an empty parameter list")
        if not isinstance(params[0], dict):
            params = [{"params": params}]
        for group in params:
            self.add_param_group(group)

    def add_param_group(self, group):
        group = dict(group)
        params = group["params"]
        group["params"] = [params] if isinstance(params, Tensor) else list(params)
        seen = {id(p) for g in self.param_groups for p in g["params"]}
        for p in group["params"]:
            if not isinstance(p, Tensor) or not p.requires_grad:
                raise TypeError(f"{type(self).__name__}: can only optimize tensors that require "
                                f"grad, got {type(p).__name__}")
            if id(p) in seen:
                raise ValueError(f"{type(self).__name__}: a parameter appears in two groups")
            seen.add(id(p))
        for key, value in self.defaults.items():
            group.setdefault(key, value)
        self.param_groups.append(group)

    def zero_grad(self):
        """Forget the gradients (set to None, as PyTorch does by default)."""
        for group in self.param_groups:
            for p in group["params"]:
                p.grad = None

    def step(self):
        """Update every parameter that has a gradient, in place, without building a graph."""
        with no_grad():
            for group in self.param_groups:
                for p in group["params"]:
                    if p.grad is not None:
                        self._update(p, p.grad, self.state.setdefault(id(p), {}), group)

    def _update(self, param, grad, state, group):  # abstract: each optimizer's rule
        raise NotImplementedError(f"{type(self).__name__}._update (abstract)")

    # ------------------------------------------------------------ state
    def state_dict(self):
        """{"state": {index: {name: array or number}}, "param_groups": [{hyper..., "params": [index]}]}
        with parameters numbered in group order, as PyTorch does. The arrays are the
        optimizer's own (copy them for a snapshot)."""
        index, groups = {}, []
        for group in self.param_groups:
            for p in group["params"]:
                index.setdefault(id(p), len(index))
            groups.append({**{k: v for k, v in group.items() if k != "params"},
                           "params": [index[id(p)] for p in group["params"]]})
        state = {index[pid]: dict(s) for pid, s in self.state.items() if pid in index and s}
        return {"state": state, "param_groups": groups}

    def load_state_dict(self, state_dict):
        """Restore hyperparameters and state saved by ``state_dict`` (arrays are copied
        onto each parameter's device)."""
        groups = state_dict["param_groups"]
        if len(groups) != len(self.param_groups):
            raise ValueError(f"{type(self).__name__}.load_state_dict: the state has {len(groups)} "
                             f"parameter groups, the optimizer {len(self.param_groups)}")
        sizes = [len(g["params"]) for g in groups]
        ours = [len(g["params"]) for g in self.param_groups]
        if sizes != ours:
            raise ValueError(f"{type(self).__name__}.load_state_dict: group sizes {sizes} in the "
                             f"state do not match the optimizer's {ours}")
        params = {}
        for saved, group in zip(groups, self.param_groups):
            for i, p in zip(saved["params"], group["params"]):
                params[i] = p
            group.update({k: v for k, v in saved.items() if k != "params"})
        self.state = {}
        for i, saved in state_dict["state"].items():
            p = params[int(i)]
            state = {}
            for key, value in saved.items():
                if backend.is_array(value):
                    if value.ndim and value.shape != p.shape:
                        raise ValueError(f"{type(self).__name__}.load_state_dict: state {key!r} of "
                                         f"parameter {i} has shape {value.shape}, the parameter "
                                         f"{p.shape}")
                    value = backend.xp_for(p.device).array(backend.to_device(value, p.device),
                                                           dtype=p.dtype if value.ndim else None)
                state[key] = value
            self.state[id(p)] = state


class SGD(Optimizer):
    """Stochastic gradient descent with optional momentum, as ``torch.optim.SGD``:

        g = grad + weight_decay·p
        buf = momentum·buf + (1 - dampening)·g      (buf = g at the first step)
        g = g + momentum·buf if nesterov else buf
        p = p - lr·g
    """

    def __init__(self, params, lr=1e-3, momentum=0.0, dampening=0.0, weight_decay=0.0,
                 nesterov=False):
        if lr < 0 or momentum < 0 or weight_decay < 0:
            raise ValueError(f"SGD: lr, momentum and weight_decay must be >= 0, got {lr}, "
                             f"{momentum}, {weight_decay}")
        if nesterov and (momentum <= 0 or dampening != 0):
            raise ValueError("SGD: nesterov needs momentum > 0 and dampening = 0")
        super().__init__(params, dict(lr=lr, momentum=momentum, dampening=dampening,
                                      weight_decay=weight_decay, nesterov=nesterov))

    def _update(self, param, grad, state, group):
        if group["weight_decay"]:
            grad = grad + group["weight_decay"] * param.data
        momentum = group["momentum"]
        if momentum:
            buf = state.get("momentum_buffer")
            if buf is None:
                buf = state["momentum_buffer"] = grad.copy()
            else:
                buf *= momentum
                buf += (1 - group["dampening"]) * grad
            grad = grad + momentum * buf if group["nesterov"] else buf
        param.data -= group["lr"] * grad


class Adam(Optimizer):
    """Adam (Kingma & Ba), as ``torch.optim.Adam``: for step t = 1, 2, ...

        g = grad + weight_decay·p                    (L2 penalty; see AdamW)
        m = β₁·m + (1 - β₁)·g                        (first moment)
        v = β₂·v + (1 - β₂)·g²                       (second moment)
        p = p - lr/(1 - β₁ᵗ) · m / (√v / √(1 - β₂ᵗ) + eps)

    The bias corrections 1 - βᵗ undo the pull of m and v towards their zero start.
    """

    decoupled = False  # AdamW: weight decay applied to the parameter, not the gradient

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=0.0,
                 amsgrad=False):
        if lr < 0 or eps < 0 or weight_decay < 0:
            raise ValueError(f"{type(self).__name__}: lr, eps and weight_decay must be >= 0, got "
                             f"{lr}, {eps}, {weight_decay}")
        if not (0.0 <= betas[0] < 1.0 and 0.0 <= betas[1] < 1.0):
            raise ValueError(f"{type(self).__name__}: betas must lie in [0, 1), got {betas}")
        super().__init__(params, dict(lr=lr, betas=tuple(betas), eps=eps,
                                      weight_decay=weight_decay, amsgrad=amsgrad))

    def step(self, grad_scale=None):
        """Update every parameter that has a gradient. ``grad_scale``: an optional factor
        (a 0-d array, e.g. from :func:`clip_grad_scale`) every gradient is multiplied by
        first; on a GPU it is folded into the update's one kernel, instead of a pass of
        its own over every gradient (PyTorch's fused Adam takes ``grad_scale`` likewise)."""
        self._grad_scale = grad_scale
        try:
            super().step()
        finally:
            self._grad_scale = None

    _grad_scale = None

    def _update(self, param, grad, state, group):
        xp = backend.array_module(param.data)
        lr, (beta1, beta2), eps = group["lr"], group["betas"], group["eps"]
        if not state:
            state["step"] = 0
            state["exp_avg"] = xp.zeros_like(param.data)
            state["exp_avg_sq"] = xp.zeros_like(param.data)
            if group["amsgrad"]:
                state["max_exp_avg_sq"] = xp.zeros_like(param.data)
        state["step"] += 1
        step = state["step"]
        scale = self._grad_scale
        if backend.device_of(param.data) == "gpu" and not group["amsgrad"]:
            # One fused kernel for the whole update (about thirteen launches otherwise).
            dtype = param.data.dtype.type
            # A scalar, not an array, when there is no scale: no allocation, no launch.
            scale = dtype(1.0) if scale is None else scale.astype(param.dtype, copy=False)
            decay = group["weight_decay"]
            _ADAM_KERNEL(grad, scale, dtype(beta1), dtype(1 - beta1), dtype(beta2), dtype(1 - beta2),
                         dtype(lr / (1 - beta1 ** step)),
                         dtype(math.sqrt(1 - beta2 ** step)), dtype(eps),
                         dtype(0.0 if self.decoupled else decay),
                         dtype(1 - lr * decay if self.decoupled else 1.0),
                         param.data, state["exp_avg"], state["exp_avg_sq"])
            return
        if scale is not None:
            grad = grad * scale.astype(grad.dtype, copy=False)
        if group["weight_decay"]:
            if self.decoupled:
                param.data *= 1 - lr * group["weight_decay"]
            else:
                grad = grad + group["weight_decay"] * param.data
        m, v = state["exp_avg"], state["exp_avg_sq"]
        m *= beta1
        m += (1 - beta1) * grad
        v *= beta2
        v += (1 - beta2) * (grad * grad)
        if group["amsgrad"]:
            xp.maximum(state["max_exp_avg_sq"], v, out=state["max_exp_avg_sq"])
            v = state["max_exp_avg_sq"]
        bias_correction1 = 1 - beta1 ** step
        bias_correction2 = 1 - beta2 ** step
        denom = xp.sqrt(v)
        denom /= math.sqrt(bias_correction2)
        denom += eps
        update = xp.divide(m, denom, out=denom)
        update *= lr / bias_correction1
        param.data -= update


def adam_update_reference(grad, scale, beta1, one_minus_beta1, beta2, one_minus_beta2, step_size,
                          bias_correction2_sqrt, eps, weight_decay, decay_factor, param, exp_avg,
                          exp_avg_sq):
    """What the fused Adam kernel computes, in NumPy (used by the tests and the CuPy
    stand-in; the CPU runs ``Adam._update``, the same steps in place)."""
    g = grad * scale + weight_decay * param           # weight_decay: Adam's L2 (0 for AdamW)
    param = param * decay_factor                      # decay_factor: AdamW's 1 - lr·wd (1 for Adam)
    # 1 - β comes computed in float64 and rounded once, as in Adam._update.
    exp_avg = beta1 * exp_avg + one_minus_beta1 * g
    exp_avg_sq = beta2 * exp_avg_sq + one_minus_beta2 * (g * g)
    param = param - step_size * (exp_avg / (backend.array_module(param).sqrt(exp_avg_sq)
                                            / bias_correction2_sqrt + eps))
    return param, exp_avg, exp_avg_sq


# Adam's update in one pass over each parameter (see adam_update_reference): read the
# gradient, parameter and both moments once, write them once, one launch.
_ADAM_KERNEL = backend.ElementwiseKernel(
    "minitransformer_adam_update",
    "T grad, T scale, T beta1, T one_minus_beta1, T beta2, T one_minus_beta2, T step_size, "
    "T bias_correction2_sqrt, T eps, "
    "T weight_decay, T decay_factor",
    "T param, T exp_avg, T exp_avg_sq",
    """
    const T g = grad * scale + weight_decay * param;
    param = param * decay_factor;
    exp_avg = beta1 * exp_avg + one_minus_beta1 * g;
    exp_avg_sq = beta2 * exp_avg_sq + one_minus_beta2 * (g * g);
    param = param - step_size * (exp_avg / (sqrt(exp_avg_sq) / bias_correction2_sqrt + eps));
    """,
    reference=adam_update_reference)


class AdamW(Adam):
    """Adam with decoupled weight decay (Loshchilov & Hutter), as ``torch.optim.AdamW``:
    p = p·(1 - lr·weight_decay) before the Adam step, instead of adding
    weight_decay·p to the gradient. Default weight_decay 1e-2."""

    decoupled = True

    def __init__(self, params, lr=1e-3, betas=(0.9, 0.999), eps=1e-8, weight_decay=1e-2,
                 amsgrad=False):
        super().__init__(params, lr, betas, eps, weight_decay, amsgrad)


# ---------------------------------------------------------------- learning-rate schedule
def noam_rate(step, d_model, warmup_steps=4000, factor=1.0):
    """The learning rate of "Attention Is All You Need" at ``step`` (1, 2, ...):
    factor · d_model^-0.5 · min(step^-0.5, step · warmup_steps^-1.5): a linear rise
    for ``warmup_steps`` steps, then a decay as 1/√step."""
    if step < 1:
        raise ValueError(f"noam_rate: step counts from 1, got {step}")
    return factor * d_model ** -0.5 * min(step ** -0.5, step * warmup_steps ** -1.5)


class InverseSqrtSchedule:
    """A linear warm-up to ``peak_lr`` over ``warmup_steps``, then a decay as 1/√step:

        lr(step) = peak_lr · min(step / warmup_steps, √(warmup_steps / step))

    The paper's schedule has this shape too (:func:`noam_rate`), but its peak follows
    from d_model and the warm-up; here the peak is said directly, which is how small
    models are tuned (``train --lr`` sets it). Construction sets the rate of step 1;
    call ``step()`` after each ``optimizer.step()``.
    """

    def __init__(self, optimizer, peak_lr, warmup_steps=1000):
        if not peak_lr > 0:
            raise ValueError(f"InverseSqrtSchedule: peak_lr must be > 0, got {peak_lr}")
        if warmup_steps < 1:
            raise ValueError(f"InverseSqrtSchedule: warmup_steps must be >= 1, got {warmup_steps}")
        self.optimizer, self.peak_lr, self.warmup_steps = optimizer, peak_lr, warmup_steps
        self.step_num = 1
        self._apply()

    def rate(self, step):
        return self.peak_lr * min(step / self.warmup_steps, (self.warmup_steps / step) ** 0.5)

    def _apply(self):
        for group in self.optimizer.param_groups:
            group["lr"] = self.rate(self.step_num)

    def step(self):
        self.step_num += 1
        self._apply()

    def get_last_lr(self):
        return [group["lr"] for group in self.optimizer.param_groups]

    def state_dict(self):
        return {"step_num": self.step_num, "peak_lr": self.peak_lr,
                "warmup_steps": self.warmup_steps}

    def load_state_dict(self, state_dict):
        self.step_num = state_dict["step_num"]
        self.peak_lr = state_dict["peak_lr"]
        self.warmup_steps = state_dict["warmup_steps"]
        self._apply()


class NoamSchedule(InverseSqrtSchedule):
    """:func:`noam_rate` as a schedule: the inverse-square-root schedule whose peak,
    d_model^-0.5 · warmup_steps^-0.5 · factor, follows from the model's width (the
    paper's choice; a smaller model gets a larger rate)."""

    def __init__(self, optimizer, d_model, warmup_steps=4000, factor=1.0):
        if warmup_steps < 1:
            raise ValueError(f"NoamSchedule: warmup_steps must be >= 1, got {warmup_steps}")
        super().__init__(optimizer, noam_rate(warmup_steps, d_model, warmup_steps, factor),
                         warmup_steps)


# ---------------------------------------------------------------- gradient clipping
def clip_grad_norm_(parameters, max_norm, norm_type=2.0):
    """Scale the gradients of ``parameters`` in place so that their joint norm is at
    most ``max_norm``; return the norm before clipping (a 0-d Tensor).

    The norm is over all gradients together, as if concatenated into one vector.
    The scale stays an array (no ``if`` on its value), so the GPU never waits.
    """
    total, scale = clip_grad_scale(parameters, max_norm, norm_type)
    if scale is not None:
        grads = [p.grad for p in ([parameters] if isinstance(parameters, Tensor) else parameters)
                 if p.grad is not None]
        scales = {}   # the scale cast once per dtype, not once per gradient
        for g in grads:
            if g.dtype not in scales:
                scales[g.dtype] = scale.astype(g.dtype, copy=False)
            g *= scales[g.dtype]
    return total


def clip_grad_scale(parameters, max_norm, norm_type=2.0):
    """The joint norm of the gradients of ``parameters`` (a 0-d Tensor) and the factor
    min(1, max_norm / norm) that :func:`clip_grad_norm_` multiplies them by (a 0-d
    array; None when there are no gradients), leaving the gradients as they are.

    Pass the factor to ``Adam.step(grad_scale=...)`` to clip inside the update.
    """
    if isinstance(parameters, Tensor):
        parameters = [parameters]
    grads = [p.grad for p in parameters if p.grad is not None]
    if not grads:
        return Tensor(backend.numpy.zeros((), dtype="float32")), None
    xp = backend.array_module(grads[0])
    norm_type = float(norm_type)
    if math.isinf(norm_type):
        total = xp.max(xp.stack([xp.abs(g).max() for g in grads]))
    elif norm_type == 2.0:
        # vdot: one kernel per gradient (g·g summed); the partial sums are added at once.
        total = xp.sqrt(xp.stack([xp.vdot(g.ravel(), g.ravel()) for g in grads]).sum())
    else:
        total = sum((xp.abs(g) ** norm_type).sum() for g in grads) ** (1.0 / norm_type)
    total = backend.ensure_array(xp.asarray(total))
    scale = xp.minimum(max_norm / (total + 1e-6), 1.0)
    return Tensor(total), scale
