"""Exercise 7.1, a reference answer: a stopwatch that is fair to a GPU."""
import statistics
import time

import minitransformer as mt


def timed(fn, device="cpu", repeats=5):
    fn()                                   # warm-up, untimed
    durations = []
    for _ in range(repeats):
        mt.synchronize(device)             # nothing queued before the start
        start = time.perf_counter()
        fn()
        mt.synchronize(device)             # the work done, not only launched
        durations.append(time.perf_counter() - start)
    return statistics.median(durations)
