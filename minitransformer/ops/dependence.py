"""The instrument data an op carries beside ``flops()``: its span and its dependence rule.

Every op can say, next to the arithmetic it does (``flops``), how *parallel* that
arithmetic is and which inputs each output reads. The tracer (``trace.py``) asks
the op; it knows no op by name.

* ``span()`` -- the op's parallel steps: how many dependent steps it takes with as
  many processors as it likes, each step one arithmetic operation per processor
  (the depth of the textbook parallel algorithm). An elementwise op is 1 step
  whatever its size; a sum of r numbers is a tree of ⌈log2 r⌉ additions
  (:func:`tree`); a matmul contracting over k is 1 multiply step and a tree of
  ⌈log2 k⌉ additions. Ops that only move data count 1. A fused op counts the steps
  of the equations it fuses, not 1: fusing saves bookkeeping, not dependence.
  ``backward_span()``, where an op has one, is the same for its backward (the
  tracer uses ``span()`` otherwise: most backward passes mirror their forward).
* ``depends(depths, out)`` -- the dependence rule, for the maximum path length.
  ``depths`` holds one array per input, of the input's shape (or None when that
  input depends on no watched token): for each element, the length of the longest
  chain of ops from the watched token to it (-inf: not reached). The rule returns,
  for each element of the output ``out`` (any shape that broadcasts to it), the
  largest depth among the input elements that output element is a function of.
  The tracer adds one (this op) and passes the result on.

An op without these methods (one written outside the library) counts 1 step, and
every output element is taken to read every input element: an over-estimate of
the path, never an under-estimate (:func:`everything`).

The helpers below are the rules most ops share.
"""
import math

from .. import backend

NEG_INF = -math.inf   # depth of an element that depends on no watched token


def tree(count):
    """Steps to combine ``count`` numbers pairwise in parallel: ⌈log2 count⌉."""
    return math.ceil(math.log2(count)) if count > 1 else 0


def unreached(out):
    """Depths for an output that reads no watched element: -inf everywhere."""
    return backend.array_module(out).full(out.shape, NEG_INF)


def elementwise(depths, out):
    """out[i] is a function of the (broadcast) element i of every input."""
    xp = backend.array_module(out)
    reached = unreached(out)
    for depth in depths:
        if depth is not None:
            reached = xp.maximum(reached, depth)
    return reached


def along_axes(depth, axes, keepdims=True):
    """Each output element reads every input element along ``axes`` (a reduction,
    a softmax over an axis)."""
    return depth.max(axis=axes, keepdims=keepdims)


def filled(depths, shapes, out):
    """The depths, with an all -inf array of the input's shape (from ``shapes``) where
    an input is unreached: for ops that place their inputs side by side."""
    xp = backend.array_module(out)
    return [xp.full(shape, NEG_INF) if d is None else d for d, shape in zip(depths, shapes)]


def everything(depths, out):
    """Unknown structure: every output element reads every input element."""
    best = max(float(d.max()) for d in depths if d is not None)
    return backend.array_module(out).full(out.shape, best)
