"""What every benchmark shares: one command line, honest timing, a description of the
machine, CSV output and plots.

Every benchmark is one module with a ``main(argv)`` that builds its command line with
:func:`parser` (``--device``, ``--out-dir``, ``--quick``, then its own flags), reads it
with :func:`parse`, and ends with :func:`finish` (CSV files headed by the machine, a
plot, the paths printed). ``python -m minitransformer bench NAME`` and
``python bench/NAME.py`` both call that ``main`` (see ``runner.py``).

The first section is the contract of every command line of the project, the benchmarks'
and ``python -m minitransformer``'s (cli.py imports it from here: the benchmarks come
before cli.py in the reading order, so it cannot live there).

Timing rules: warm up first (the first calls pay for allocation, BLAS thread start-up
and, on the GPU, kernel compilation), synchronise the device before every clock
read, repeat, and report the median with the spread (min and max), because a
shared machine's noise is one-sided: it only ever makes a run slower.
"""
import argparse
import csv
import math
import os
import platform
import re
import statistics
import sys
import tempfile
import time

from .. import analysis, backend


# ---------------------------------------------------------------- the contract of a command line
# A mistake in what a command is given is reported in one line on stderr,
#     minitransformer <command>: error: <what> (<option>, got <value>, expected <what>)
# and the process ends with exit status 2, before any work where it can be found before.


class CommandError(ValueError):
    """A mistake in what a command was given, in the words of its command line:
    ``what`` went wrong, with which ``option`` (as the user types it, or a file),
    what it ``got`` and what was ``expected``."""

    def __init__(self, what, option=None, got=None, expected=None):
        details = [option] if option else []
        if got is not None:
            details.append(f"got {_shown(got)}")
        if expected is not None:
            details.append(f"expected {expected}")
        super().__init__(f"{what} ({', '.join(details)})" if details else what)


def _shown(value):
    """A value as the user typed it; an empty or blank string quoted, so that it shows."""
    return repr(value) if isinstance(value, str) and not value.strip() else str(value)


def error_line(command, message):
    """The one line that reports ``message`` for ``command`` ("train", "bench decoding")."""
    one_line = "; ".join(part.strip() for part in str(message).splitlines() if part.strip())
    return f"minitransformer{' ' + command if command else ''}: error: {one_line}"


def end_process(line, status):
    """Write ``line`` to stderr (None: nothing) and exit with ``status``. In a job of
    several MPI ranks every rank is stopped with it: a rank that left alone would leave
    the others waiting in their next collective until its deadline."""
    from .. import distributed
    fail_together = getattr(distributed, "fail_together", None)
    if fail_together is not None:
        fail_together(line or f"ended with exit status {status}", status)
    if line is not None:
        sys.stderr.write(line + "\n")
        sys.stderr.flush()
    sys.exit(status)


def _checked(kind, accept, expected):
    """An argparse type: the text read as ``kind`` and refused unless ``accept(value)``."""
    def parse(text):
        try:
            value = kind(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"got {_shown(text)}, expected {expected}") from None
        if not accept(value):
            raise argparse.ArgumentTypeError(f"got {_shown(text)}, expected {expected}")
        return value
    return parse


def int_from(low, high=None):
    """An argparse type: an int from ``low`` up (to ``high``, when given)."""
    if high is None:
        return _checked(int, lambda value: value >= low, f"an int >= {low}")
    return _checked(int, lambda value: low <= value <= high, f"an int from {low} to {high}")


positive_int = _checked(int, lambda value: value > 0, "a positive int")
# NaN and infinity are floats too; no option means anything by them.
positive_float = _checked(float, lambda value: math.isfinite(value) and value > 0,
                          "a positive number")
nonnegative_float = _checked(float, lambda value: math.isfinite(value) and value >= 0,
                             "a number >= 0")
finite_float = _checked(float, math.isfinite, "a finite number")
# a probability to spread or drop, a decay rate
fraction = _checked(float, lambda value: 0 <= value < 1, "a number in [0, 1)")


# argparse's own messages, and what the contract calls them: (pattern, what, expected).
_ARGPARSE_PROBLEMS = [
    (r"got (?P<got>.*), expected (?P<expected>.*)", "invalid value", "{expected}"),
    (r"invalid choice: (?P<got>.*) \(choose from (?P<expected>.*)\)", "invalid choice",
     "one of {expected}"),
    (r"invalid (?P<type>\w+) value: (?P<got>.*)", "invalid value", "a value of type {type}"),
    (r"expected (?P<expected>.*argument.*)", "missing value", "{expected}"),
]


def _in_contract_words(message):
    """argparse's ``argument --x: ...`` messages rephrased as the contract says."""
    found = re.fullmatch(r"argument (?P<option>[^:]+): (?P<problem>.*)", message, re.S)
    if found is None:
        required = re.fullmatch(r"the following arguments are required: (.*)", message)
        if required:
            return f"missing required argument ({required[1]})"
        unknown = re.fullmatch(r"unrecognized arguments: (.*)", message)
        return f"unrecognized arguments (got {unknown[1]})" if unknown else message
    option, problem = found["option"], found["problem"]
    for pattern, what, expected in _ARGPARSE_PROBLEMS:
        match = re.fullmatch(pattern, problem, re.S)
        if match:
            parts = match.groupdict()
            return str(CommandError(what, option, parts.get("got"), expected.format(**parts)))
    return f"{problem} ({option})"


class CommandParser(argparse.ArgumentParser):
    """An ``ArgumentParser`` that keeps the contract: a mistake is one line and exit
    status 2 (argparse prints its usage only with ``--help``), an empty value is a
    mistake for every option, and a subcommand's unknown arguments are reported in
    that subcommand's name."""

    def error(self, message):
        # "python -m minitransformer bench decoding" and "minitransformer train" both
        # report as the command the user knows: what follows "minitransformer".
        command = self.prog.split("minitransformer", 1)[-1].strip()
        end_process(error_line(command, _in_contract_words(message)), 2)

    def parse_args(self, args=None, namespace=None):
        values, unknown = self.parse_known_args(args, namespace)
        parser = getattr(values, "command_parser", self)   # the subcommand given, if any
        if unknown:
            parser.error(f"unrecognized arguments: {' '.join(unknown)}")
        for name, value in vars(values).items():
            if isinstance(value, str) and value == "":
                parser.error(str(CommandError("empty value", "--" + name.replace("_", "-"),
                                              "", "a path or a value")))
        return values


# ---------------------------------------------------------------- places to write
def check_writable_folder(path, option):
    """Refuse ``path`` (given as ``option``) unless a folder can be written there: an
    existing folder this process may create files in, or a new one whose nearest
    existing parent is such a folder. Raises CommandError; creates nothing."""
    existing = os.path.abspath(path)
    while not os.path.exists(existing):
        existing = os.path.dirname(existing)
    if not os.path.isdir(existing):
        what = "not a folder" if existing == os.path.abspath(path) else "inside a file"
        raise CommandError(what, option, path, f"a folder ({existing} is a file)")
    _check_can_create_in(existing, option, path)


def check_writable_file(path, option):
    """Refuse ``path`` (given as ``option``) unless a file can be written there: not a
    folder, in an existing folder this process may create files in. Raises CommandError."""
    if os.path.isdir(path):
        raise CommandError("a folder, not a file", option, path, "a file name")
    folder = os.path.dirname(os.path.abspath(path))
    if not os.path.isdir(folder):
        existing = folder
        while not os.path.exists(existing):
            existing = os.path.dirname(existing)
        if os.path.isfile(existing):
            raise CommandError("inside a file", option, path, f"a file in a folder "
                                                              f"({existing} is a file)")
        raise CommandError("its folder does not exist", option, path,
                           f"a file in an existing folder (no folder {folder})")
    _check_can_create_in(folder, option, path)


def _check_can_create_in(folder, option, path):
    # Asked by creating a file, not by os.access: as root, access() says yes for folders
    # that the kernel still refuses (such as those under /sys), and a read-only mount
    # answers only to a try.
    try:
        with tempfile.TemporaryFile(dir=folder):
            pass
    except OSError as error:
        raise CommandError("cannot write there", option, path,
                           f"a place this process may write ({folder}: "
                           f"{error.strerror or error})") from None


# ---------------------------------------------------------------- the benchmarks' command line
def parser(name, description, quick_help="reduced sizes: a smoke test in seconds to a minute",
           default_out="bench/results/<device>/"):
    """An ``ArgumentParser`` for benchmark ``name`` with the flags every benchmark
    takes; the benchmark adds its own flags to it."""
    p = CommandParser(prog=f"python -m minitransformer bench {name}", description=description)
    p.add_argument("--device", default=None, choices=backend.DEVICES,
                   help="cpu or gpu (default: $MINITRANSFORMER_DEVICE, else cpu)")
    p.add_argument("--out-dir", default=None,
                   help=f"folder for the CSV and PNG files (default {default_out})")
    p.add_argument("--quick", action="store_true", help=quick_help)
    p.add_argument("--debug", action="store_true",
                   help="show the Python traceback of an error instead of its one line")
    return p


_SIZE_FLAGS = {"batch": "sequences per batch", "d": "model dimension d",
               "heads": "attention heads", "repeats": "timed runs per point (their median counts)"}


def add_size_flags(parser, **defaults):
    """Add the workload flags that mean the same in every benchmark that has them
    (``--batch``, ``--d``, ``--heads``, ``--repeats``), with the benchmark's defaults."""
    for name, default in defaults.items():
        parser.add_argument(f"--{name}", type=positive_int, default=default,
                            help=f"{_SIZE_FLAGS[name]} (default {default})")


def parse(parser, argv=None, quick=None, default_out_dir=None, check=None):
    """Read ``argv``. With ``--quick``, the defaults in ``quick`` (a dict of flag
    destinations) replace the full ones; flags given on the command line still win.
    ``args.device`` comes back resolved, ``args.out_dir`` filled in (default
    ``default_out_dir``, else ``bench/results/<device>``), checked writable and created,
    so that a benchmark never measures for minutes and then fails to write.
    ``check(args)``: the benchmark's own checks (raising CommandError), run before
    anything is created."""
    args = parser.parse_args(argv)
    if args.quick and quick:
        parser.set_defaults(**quick)
        args = parser.parse_args(argv)   # again, so that given flags override quick ones
    args.device = backend.resolve_device(args.device)
    if args.out_dir is None:
        args.out_dir = default_out_dir or results_dir(args.device)
    try:
        if check is not None:
            check(args)
        check_writable_folder(args.out_dir, "--out-dir")
    except CommandError as error:
        parser.error(str(error))
    os.makedirs(args.out_dir, exist_ok=True)
    return args


def finish(name, device, out_dir, tables, notes=(), plot=None, started=None):
    """The end of every benchmark run: write each of ``tables`` ({file stem: rows}) to
    ``out_dir/<stem>.csv``, each headed by '# <name> on <machine>' and the lines
    of ``notes``; then ``plot(png_path)`` for ``<first stem>.png`` when given (it returns
    the path(s) it drew, or a false value without matplotlib); print what was written.
    Returns the path of the first CSV."""
    comment = "\n".join([f"{name} on {device_description(device)}", *notes])
    paths = [write_csv(os.path.join(out_dir, f"{stem}.csv"), rows, comment)
             for stem, rows in tables.items()]
    if plot is not None:
        drawn = plot(os.path.join(out_dir, f"{next(iter(tables))}.png"))
        paths += [drawn] if isinstance(drawn, str) else list(drawn or ())
    took = f" in {time.perf_counter() - started:.0f} s" if started is not None else ""
    print(f"wrote {', '.join(paths)}{took}")
    return paths[0]


def device_description(device):
    """One line naming the hardware and the library versions that produced a figure."""
    versions = f"numpy {backend.numpy.__version__}, Python {platform.python_version()}"
    if device == "gpu":
        cupy = backend.cupy
        cuda = cupy.cuda.runtime.runtimeGetVersion()
        # TF32 changes what a "float32" matmul is (10 mantissa bits, several times the
        # speed on recent GPUs), so a figure must say whether it was on.
        return (f"{backend.device_name('gpu')} (CuPy {cupy.__version__}, CUDA runtime {cuda // 1000}.{cuda % 1000 // 10}, "
                f"TF32 {backend.tf32_setting()}, {versions})")
    return f"{backend.device_name('cpu')}, {os.cpu_count()} cores ({versions})"


def results_dir(device, root="bench/results"):
    """``bench/results/cpu`` or ``bench/results/gpu-<model>`` (e.g. gpu-h100)."""
    if device == "gpu":
        name = backend.device_name("gpu").lower()
        model = next((w for w in name.replace("nvidia", "").split() if any(c.isdigit() for c in w)),
                     "cuda")
        sub = f"gpu-{model}"
    else:
        sub = "cpu"
    return os.path.join(root, sub)   # created by whoever writes there, after checking it


def measure(fn, device, repeats=5, warmup=2, min_time=0.0):
    """Run ``fn()`` ``warmup`` times, then time ``repeats`` runs (at least until
    ``min_time`` seconds have passed). Returns a list of seconds per run."""
    for _ in range(warmup):
        fn()
    times = []
    while len(times) < repeats or sum(times) < min_time:
        start = backend.timer(device)
        fn()
        times.append(backend.timer(device) - start)
    return times


class AllocationMeter:
    """Bytes allocated now and at the peak since the last ``reset_peak()``.

    CPU: tracemalloc (started by ``__enter__``); GPU: a CuPy memory hook that adds up
    the pool's allocations and frees while the meter is on, so the peak is the bytes
    in use at the high-water mark. The pool's held bytes (``total_bytes``) would
    also count cached free blocks, and fragmentation, and would need the cache emptied
    before each step (a cudaFree that waits for the device).
    """

    def __init__(self, device):
        self.device = device

    def __enter__(self):
        if self.device == "cpu":
            import tracemalloc
            self._tracemalloc = tracemalloc
            tracemalloc.start()
        else:
            self._hook = _pool_usage_hook()
            self._hook.__enter__()
        return self

    def __exit__(self, *exc):
        if self.device == "cpu":
            self._tracemalloc.stop()
        else:
            self._hook.__exit__(*exc)

    def reset_peak(self):
        if self.device == "gpu":
            self._hook.peak = self._hook.current
        else:
            self._tracemalloc.reset_peak()

    def current_and_peak(self):
        """(bytes allocated now, bytes at the peak since reset_peak); on the GPU counted
        from the meter's start."""
        if self.device == "gpu":
            return self._hook.current, self._hook.peak
        return self._tracemalloc.get_traced_memory()


def _pool_usage_hook():
    """A ``cupy.cuda.MemoryHook`` counting the bytes the pool hands out and takes back."""
    class PoolUsage(backend.cupy.cuda.MemoryHook):
        name = "PoolUsage"

        def __init__(self):
            self.current = self.peak = 0

        def malloc_postprocess(self, **kwargs):
            self.current += kwargs["mem_size"]
            self.peak = max(self.peak, self.current)

        def free_postprocess(self, **kwargs):
            self.current -= kwargs["mem_size"]

    return PoolUsage()


def peak_bytes(step, device):
    """Bytes allocated at the high-water mark of ``step()``, above those alive before it.

    CPU: ``tracemalloc``, which sees NumPy's array buffers (NumPy reports them to it),
    so this counts activations, gradients and temporaries; it slows Python down, so
    never time the same run. GPU: the bytes the memory pool hands out, counted by a
    memory hook: the exact in-use high-water mark of the step's arrays.
    """
    with AllocationMeter(device) as meter:
        meter.reset_peak()
        before, _ = meter.current_and_peak()
        step()
        _, peak = meter.current_and_peak()
    return peak - before


def print_ratios(rows, other_key, other_label):
    """A table of our time against another's per (layer, n), each ratio against its target."""
    print(f"  {'layer':<10}{'n':>5}{'engine ms':>12}{other_label + ' ms':>12}{'ratio':>8}"
          f"{'target':>9}")
    for r in rows:
        flag = "" if r["ratio"] <= r["target"] else "  (missed)"
        print(f"  {r['layer']:<10}{r['n']:>5}{r['engine_ms']:>12.2f}{r[other_key]:>12.2f}"
              f"{r['ratio']:>8.2f}{'<= ' + str(r['target']):>9}{flag}")


def summary(times):
    """Median, minimum and maximum of a list of timings (seconds)."""
    return {"median_s": statistics.median(times), "min_s": min(times), "max_s": max(times)}


def write_csv(path, rows, comment=None):
    """Write ``rows`` (a list of dicts with the same keys) to ``path``.

    ``comment`` lines (the machine, the versions, the parameters) go first, each
    starting with '#', so the file says where its numbers come from.
    """
    os.makedirs(os.path.dirname(path) or ".", exist_ok=True)
    tmp = path + ".tmp"
    with open(tmp, "w", newline="") as f:
        for line in (comment or "").splitlines():
            f.write(f"# {line}\n")
        if rows:
            writer = csv.DictWriter(f, fieldnames=list(rows[0]))
            writer.writeheader()
            writer.writerows(rows)
    os.replace(tmp, path)
    return path


# ---------------------------------------------------------------- plots
def scaling_axes(ax, xlabel, ylabel, title=None, title_size=10, legend_size=8):
    """Dress ``ax`` as a scaling plot: log2 x axis, log y axis, labels, legend, grid."""
    ax.set_xscale("log", base=2)
    ax.set_yscale("log")
    ax.set_xlabel(xlabel)
    ax.set_ylabel(ylabel)
    if title:
        ax.set_title(title, fontsize=title_size)
    ax.legend(fontsize=legend_size)
    ax.grid(True, which="both", alpha=0.3)


def save_figure(fig, path):
    """Lay ``fig`` out, write it to ``path`` (a 120-dpi PNG, see analysis.save_png) and
    free it; returns ``path``."""
    fig.tight_layout()
    return analysis.save_png(fig, path)
