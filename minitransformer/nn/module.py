"""Module and Parameter: how a layer owns its weights.

A :class:`Module` finds its parameters by attribute assignment, as in PyTorch:

    self.weight = Parameter(...)     # registered as "weight"
    self.linear1 = Linear(4, 8)      # a sub-module: its parameters are "linear1.weight", ...
    self.layers = [Linear(4, 4), Linear(4, 4)]   # a list of modules: "layers.0.weight", ...

From that registry come ``parameters()``, ``named_parameters()`` with dotted
names, ``state_dict()``/``load_state_dict()``, ``to(device)``, ``double()``,
``train()``/``eval()`` and ``zero_grad()``.

Moving or casting a module changes each parameter's array *in place* (the
Parameter object stays the same), so an optimizer built before ``to()`` still
holds the right objects.
"""
import math

from .. import backend
from .._tensor import Tensor


class Parameter(Tensor):
    """A tensor that is a learned weight of a module: a leaf that requires grad."""

    __slots__ = ()

    def __init__(self, data, requires_grad=True):
        if isinstance(data, Tensor):
            data = data.data
        super().__init__(data, requires_grad=requires_grad)

    def __repr__(self):
        return "Parameter containing:\n" + super().__repr__()


# ---------------------------------------------------------------- initialisation
# Parameters are drawn on the CPU generator and then moved to the default device,
# so that a seeded model starts from the same weights on the CPU and on the GPU.
def _on_default_device(array):
    return Parameter(backend.to_device(array, backend.default_device()))


def uniform_parameter(shape, bound, dtype="float32"):
    """A Parameter of ``shape`` drawn uniformly from [-bound, bound)."""
    return _on_default_device(backend.random_uniform(tuple(shape), backend.as_dtype(dtype),
                                                     "cpu", low=-bound, high=bound))


def normal_parameter(shape, std=1.0, dtype="float32"):
    """A Parameter of ``shape`` drawn from N(0, std²)."""
    array = backend.random_normal(tuple(shape), backend.as_dtype(dtype), "cpu")
    if std != 1.0:
        array *= array.dtype.type(std)
    return _on_default_device(array)


def constant_parameter(shape, value, dtype="float32"):
    """A Parameter of ``shape`` filled with ``value`` (ones for a scale, zeros for a bias)."""
    return _on_default_device(backend.numpy.full(tuple(shape), value, dtype=dtype))


def xavier_bound(fan_in, fan_out):
    """Glorot & Bengio's uniform bound √(6 / (fan_in + fan_out))."""
    return math.sqrt(6.0 / (fan_in + fan_out))


# ---------------------------------------------------------------- Module
class Module:
    """Base class of every layer. Subclasses set attributes in ``__init__`` and
    define ``forward``; calling the module calls ``forward``."""

    def __init__(self):
        # object.__setattr__: our own __setattr__ needs these dictionaries to exist.
        object.__setattr__(self, "_parameters", {})
        object.__setattr__(self, "_buffers", {})
        object.__setattr__(self, "_non_persistent", set())
        object.__setattr__(self, "_modules", {})
        object.__setattr__(self, "training", True)

    # ------------------------------------------------------------ registration
    def __setattr__(self, name, value):
        if "_parameters" not in self.__dict__:
            raise AttributeError(f"{type(self).__name__}: call super().__init__() before "
                                 f"assigning attributes (assigning {name!r})")
        if isinstance(value, (list, tuple)) and value and all(isinstance(m, Module) for m in value):
            value = ModuleList(value)
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        if isinstance(value, Parameter):
            self._parameters[name] = value
        elif isinstance(value, Module):
            self._modules[name] = value
        object.__setattr__(self, name, value)

    def register_buffer(self, name, tensor, persistent=True):
        """A tensor that belongs to the module but is not learned (moved by ``to()``;
        in the state dict only when ``persistent``)."""
        setattr(self, name, tensor)
        self._buffers[name] = tensor
        if not persistent:
            self._non_persistent.add(name)

    def __delattr__(self, name):
        for registry in (self._parameters, self._buffers, self._modules):
            registry.pop(name, None)
        object.__delattr__(self, name)

    # ------------------------------------------------------------ calling
    def forward(self, *args, **kwargs):  # abstract: every layer overrides it
        raise NotImplementedError(f"{type(self).__name__}.forward (abstract)")

    def __call__(self, *args, **kwargs):
        return self.forward(*args, **kwargs)

    # ------------------------------------------------------------ walking the tree
    def named_children(self):
        return iter(self._modules.items())

    def children(self):
        return iter(self._modules.values())

    def named_modules(self, prefix=""):
        """This module and every module below it, with dotted names ("" for self)."""
        stack = [(prefix, self)]
        seen = set()
        while stack:
            name, module = stack.pop()
            if id(module) in seen:
                continue
            seen.add(id(module))
            yield name, module
            children = [(f"{name}.{child}" if name else child, m)
                        for child, m in module._modules.items()]
            stack.extend(reversed(children))

    def modules(self):
        return (m for _, m in self.named_modules())

    def _named_members(self, registry_name):
        """(dotted name, tensor) for every entry of a registry, shared ones once."""
        seen = set()
        for prefix, module in self.named_modules():
            for name, t in getattr(module, registry_name).items():
                if t is None or id(t) in seen:
                    continue
                seen.add(id(t))
                yield (f"{prefix}.{name}" if prefix else name), t

    def named_parameters(self):
        """(dotted name, Parameter) pairs, in registration order; a shared parameter once."""
        return self._named_members("_parameters")

    def parameters(self):
        return (p for _, p in self.named_parameters())

    def named_buffers(self):
        return self._named_members("_buffers")

    def buffers(self):
        return (b for _, b in self.named_buffers())

    # ------------------------------------------------------------ state
    def state_dict(self):
        """Dotted name -> array, one entry per parameter and persistent buffer.

        The arrays are the module's own (as in PyTorch), not copies: copy them
        (``{k: v.copy() for k, v in sd.items()}``) to keep a snapshot while training.
        """
        state = {}
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                state[dot + name] = p.data
            for name, b in module._buffers.items():
                if name not in module._non_persistent:
                    state[dot + name] = b.data
        return state

    def _state_tensors(self):
        """Dotted name -> the Parameter or buffer Tensor a state-dict entry loads into."""
        tensors = {}
        for prefix, module in self.named_modules():
            dot = f"{prefix}." if prefix else ""
            for name, p in module._parameters.items():
                tensors[dot + name] = p
            for name, b in module._buffers.items():
                if name not in module._non_persistent:
                    tensors[dot + name] = b
        return tensors

    def load_state_dict(self, state_dict, strict=True):
        """Copy arrays (NumPy, CuPy or Tensors) into the parameters of the same names.

        Raises ``ValueError`` listing every missing key, unexpected key (only when
        ``strict``) and shape mismatch, before copying anything. Values are copied
        onto each parameter's device and dtype. Returns (missing, unexpected).
        """
        targets = self._state_tensors()
        missing = [k for k in targets if k not in state_dict]
        unexpected = [k for k in state_dict if k not in targets]
        mismatched = [f"{k}: checkpoint {tuple(state_dict[k].shape)}, model {targets[k].shape}"
                      for k in targets if k in state_dict
                      and tuple(state_dict[k].shape) != tuple(targets[k].shape)]
        problems = []
        if strict and missing:
            problems.append(f"missing keys: {missing}")
        if strict and unexpected:
            problems.append(f"unexpected keys: {unexpected}")
        if mismatched:
            problems.append(f"shape mismatches: {mismatched}")
        if problems:
            raise ValueError(f"load_state_dict for {type(self).__name__}: " + "; ".join(problems))
        for name, target in targets.items():
            if name in state_dict:
                value = state_dict[name]
                value = value.data if isinstance(value, Tensor) else value
                xp = backend.xp_for(target.device)
                # A fresh array: the module must not share memory with the checkpoint.
                target.data = xp.array(backend.to_device(value, target.device), dtype=target.dtype)
        return missing, unexpected

    # ------------------------------------------------------------ modes, devices, dtypes
    def train(self, mode=True):
        """Training mode (dropout active) for this module and all below it."""
        for module in self.modules():
            object.__setattr__(module, "training", bool(mode))
        return self

    def eval(self):
        """Evaluation mode (dropout off)."""
        return self.train(False)

    def _apply(self, convert):
        """Replace the array of every parameter, gradient and buffer by ``convert(array)``."""
        for prefix, module in self.named_modules():
            for t in list(module._parameters.values()) + list(module._buffers.values()):
                if t is None:
                    continue
                t.data = convert(t.data)
                if t.grad is not None:
                    t.grad = convert(t.grad)
        return self

    def to(self, device=None, dtype=None):
        """Move parameters and buffers to ``device`` and/or cast floating ones to ``dtype``.

        In place: returns ``self``, and each Parameter keeps its identity.
        """
        if device is not None:
            device = backend.resolve_device(device)
            self._apply(lambda a: backend.to_device(a, device))
        if dtype is not None:
            dtype = backend.as_dtype(dtype)
            self._apply(lambda a: a.astype(dtype) if a.dtype.kind == "f" else a)
        return self

    def double(self):
        """Cast floating-point parameters to float64 (for gradient checks)."""
        return self.to(dtype="float64")

    def float(self):
        """Cast floating-point parameters to float32."""
        return self.to(dtype="float32")

    def zero_grad(self):
        """Forget the gradients of all parameters (set them to None, as PyTorch does)."""
        for p in self.parameters():
            p.grad = None

    def num_parameters(self):
        """The number of learned numbers."""
        return sum(p.data.size for p in self.parameters())

    # ------------------------------------------------------------ printing
    def extra_repr(self):
        """The arguments shown between the parentheses of ``repr``."""
        return ""

    def __repr__(self):
        children = [f"({name}): " + repr(m).replace("\n", "\n  ")
                    for name, m in self._modules.items()]
        if not children:
            return f"{type(self).__name__}({self.extra_repr()})"
        lines = ([self.extra_repr()] if self.extra_repr() else []) + children
        return f"{type(self).__name__}(\n  " + "\n  ".join(lines) + "\n)"


class ModuleList(Module):
    """A list of modules whose parameters are registered as "0.weight", "1.weight", ..."""

    def __init__(self, modules=()):
        super().__init__()
        for m in modules:
            self.append(m)

    def append(self, module):
        if not isinstance(module, Module):
            raise TypeError(f"ModuleList holds Modules, got {type(module).__name__}")
        setattr(self, str(len(self._modules)), module)
        return self

    def extend(self, modules):
        for m in modules:
            self.append(m)
        return self

    def __getitem__(self, index):
        items = list(self._modules.values())
        return ModuleList(items[index]) if isinstance(index, slice) else items[index]

    def __len__(self):
        return len(self._modules)

    def __iter__(self):
        return iter(self._modules.values())
