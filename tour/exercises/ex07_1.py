"""Exercise 7.1: a stopwatch that is fair to a GPU.

Write ``timed``. Check with ``python -m pytest -m exercise_7_1``.
"""
import statistics  # noqa: F401  (statistics.median may help)
import time  # noqa: F401  (time.perf_counter is the clock to read)

import minitransformer as mt  # noqa: F401  (call mt.synchronize(device))


def timed(fn, device="cpu", repeats=5):
    """The median wall time of ``fn()`` in seconds, over ``repeats`` timed calls.

    Call ``fn()`` once first without timing it (a warm-up: a GPU compiles its kernels
    on the first run). Then, for each of the ``repeats`` timed calls, call
    ``mt.synchronize(device)`` right before reading the clock at the start and again
    right before reading it at the end (``time.perf_counter()``), so that the time
    covers the work the device did, not only its launch. Return the median of the
    ``repeats`` durations (a median ignores the odd slow run; a mean does not).
    """
    raise NotImplementedError("exercise 7.1: write timed")
