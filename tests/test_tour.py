"""The guided tour (tour/): its chapters, notebooks and exercise checks.

Exercise checks. Each ``check_exN_M(module)`` below judges one exercise, given the
module under test. In the default run every check runs twice: on the reference answer
``tour/solutions/exNN_M.py`` (it must pass) and on the untouched stub
``tour/exercises/exNN_M.py`` (it must fail with NotImplementedError), so CI proves that
a check accepts a right answer and rejects an empty one. A student who selects one
exercise by its marker, ``python -m pytest -m exercise_1_1``, gets the check run once,
on *their* file in tour/exercises/ (the variant ``yours``). ``MINITRANSFORMER_TOUR=yours``
selects that variant for any run.
"""
import ast
import importlib.util
import json
import math
import os
import pathlib
import subprocess
import sys
import time

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import analysis, nn
from minitransformer.trace import trace

ROOT = pathlib.Path(__file__).resolve().parent.parent
TOUR = ROOT / "tour"
CHAPTERS = sorted(TOUR.glob("[0-9][0-9]_*.py"))
EXERCISES = sorted(p.stem for p in (TOUR / "exercises").glob("ex*.py"))


# ---------------------------------------------------------------- which file a check judges
def _students_run(config):
    if os.environ.get("MINITRANSFORMER_TOUR") == "yours":
        return True
    return "exercise_" in (config.getoption("markexpr", "") or "")


def pytest_generate_tests(metafunc):
    if "variant" in metafunc.fixturenames:
        variants = ["yours"] if _students_run(metafunc.config) else ["solution", "stub"]
        metafunc.parametrize("variant", variants)


def load(folder, name):
    """tour/<folder>/<name>.py as a fresh module (never cached between variants)."""
    path = TOUR / folder / f"{name}.py"
    spec = importlib.util.spec_from_file_location(f"tour_{folder}_{name}", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def judge(name, check, variant):
    if variant == "solution":
        check(load("solutions", name))
    elif variant == "yours":
        check(load("exercises", name))
    else:
        module = load("exercises", name)
        try:
            check(module)
        except NotImplementedError:
            return                      # the untouched stub fails, as it must
        pytest.fail(f"the check of {name} passes on tour/exercises/{name}.py: either the "
                    f"check is too weak, or you have solved the exercise in that file (then "
                    f"this is expected: check your answer with -m as tour/README.md says)")


# ---------------------------------------------------------------- the checks
def check_ex01_1(module):
    x = mt.tensor(np.array([[-30.0, -2.0, -0.5], [0.0, 0.7, 3.0]]), requires_grad=True)
    assert mt.gradcheck(module.softplus, [x])
    y = mt.randn(3, 4, dtype="float64", requires_grad=True)
    assert mt.gradcheck(lambda y: module.softplus(y * 3.0).sum(axis=0), [y])


def check_ex02_1(module):
    for r in (1, 2, 3, 8, 9, 100):
        x = mt.randn(4, r)
        with trace() as t:
            out = module.sum_of_squares(x)
        np.testing.assert_allclose(out.numpy()[:, 0], (x.numpy() ** 2).sum(axis=1), rtol=1e-5)
        want = 1 + math.ceil(math.log2(r)) if r > 1 else 1
        assert t.nodes[0].steps == want, (f"the sum of squares of {r} numbers: the tracer "
                                          f"records {t.nodes[0].steps} steps, want {want}")
        assert t.summary()["span_steps"] == want


def check_ex02_2(module):
    for n in (1, 2, 5, 16, 17):
        with trace() as t:
            module.running_sum(mt.randn(3, n))
        want = max(1, math.ceil(math.log2(n)))
        assert t.nodes[0].steps == want, (f"a running sum of {n} numbers: the tracer records "
                                          f"{t.nodes[0].steps} steps, want {want}")
    x = mt.randn(2, 6)
    with trace() as t:
        t.watch_position(x, axis=1, position=2)
        y = module.running_sum(x)
        z = module.running_sum(y.tanh())
    depth = t.depth_of(y)
    assert np.all(depth[:, :2] == -math.inf), "outputs 0 and 1 do not read input 2"
    assert np.all(depth[:, 2:] == 1), "outputs 2..5 read input 2, one op away"
    assert t.path_length(z, axis=1) == {"ops": 3, "matmuls": 0}
    assert t.path_length(z, axis=1, position=1) is None


def _gru_reference(x, w_ih, w_hh, b_ih, b_hh):
    sigmoid = lambda v: 1 / (1 + np.exp(-v))  # noqa: E731
    hidden = w_hh.shape[1]
    h = np.zeros((x.shape[1], hidden))
    out = []
    for x_t in x:
        gi, gh = x_t @ w_ih.T + b_ih, h @ w_hh.T + b_hh
        r = sigmoid(gi[:, :hidden] + gh[:, :hidden])
        z = sigmoid(gi[:, hidden:2 * hidden] + gh[:, hidden:2 * hidden])
        n = np.tanh(gi[:, 2 * hidden:] + r * gh[:, 2 * hidden:])
        h = (1 - z) * n + z * h
        out.append(h)
    return np.stack(out)


def check_ex03_1(module):
    rng = np.random.default_rng(0)
    size, hidden = 3, 4
    arrays = [rng.standard_normal(s) for s in ((3 * hidden, size), (3 * hidden, hidden),
                                                 (3 * hidden,), (3 * hidden,))]
    params = [mt.tensor(a, requires_grad=True) for a in arrays]
    x = mt.tensor(rng.standard_normal((5, 2, size)), requires_grad=True)
    out = module.gru(x, *params)
    np.testing.assert_allclose(out.numpy(), _gru_reference(x.numpy(), *arrays), rtol=1e-6,
                               atol=1e-9)
    x0 = mt.tensor(rng.standard_normal((2, size)), requires_grad=True)
    h = mt.tensor(rng.standard_normal((2, hidden)), requires_grad=True)
    assert mt.gradcheck(module.gru_cell, [x0, h] + params)
    chains = {}
    for n in (4, 8, 16):
        xs = mt.randn(n, 1, size, dtype="float64")
        with mt.no_grad(), trace() as t:
            module.gru(xs, *params)
        chains[n] = t.summary()["sequential_ops"]
    per_token = (chains[8] - chains[4]) / 4
    assert per_token >= 1, f"the critical path must grow with n: {chains}"
    assert chains[16] - chains[8] == 8 * per_token, f"the same ops per token at every n: {chains}"


def check_ex04_1(module):
    for n in (1, 3, 7):
        mask = module.future_mask(n)
        assert isinstance(mask, mt.Tensor), "future_mask returns an mt.tensor"
        np.testing.assert_array_equal(mask.numpy(), np.triu(np.ones((n, n), dtype=bool), k=1))
    mt.manual_seed(0)
    layer = nn.MultiheadAttention(8, 2, batch_first=True)
    n = 5
    x = mt.randn(1, n, 8, requires_grad=True)     # a hidden key's gradient is exactly 0
    for i in range(n):
        x.grad = None
        out, _ = layer(x, x, x, attn_mask=module.future_mask(n), need_weights=False)
        out[:, i].sum().backward()
        reach = np.abs(x.grad[0]).max(axis=-1)
        assert np.all(reach[i + 1:] == 0), f"output {i} must not depend on later tokens"
        assert np.all(reach[:i + 1] > 0), f"output {i} depends on tokens 0..{i}"
    chains = []
    for n in (4, 32):
        xs = mt.randn(1, n, 8)
        with mt.no_grad(), trace() as t:
            layer(xs, xs, xs, attn_mask=module.future_mask(n), need_weights=False)
        chains.append(t.summary()["sequential_ops"])
    assert chains[0] == chains[1], f"attention's critical path does not grow with n: {chains}"


def _conv_reference(x, weight):
    k = weight.shape[0]
    out = np.zeros(x.shape[:2] + (weight.shape[2],))
    for t in range(x.shape[1]):
        for j in range(k):
            if t - j >= 0:
                out[:, t] += x[:, t - j] @ weight[j]
    return out


def check_ex05_1(module):
    rng = np.random.default_rng(0)
    for k in (1, 3):
        x = rng.standard_normal((2, 6, 4))
        w = rng.standard_normal((k, 4, 5))
        out = module.conv1d(mt.tensor(x), mt.tensor(w))
        np.testing.assert_allclose(out.numpy(), _conv_reference(x, w), rtol=1e-6, atol=1e-9)
    xt = mt.tensor(x, requires_grad=True)
    wt = mt.tensor(w, requires_grad=True)
    assert mt.gradcheck(module.conv1d, [xt, wt])
    ns, flops, chains = (8, 16, 32, 64), [], []
    weight = mt.randn(3, 16, 16)
    for n in ns:
        with mt.no_grad(), trace() as t:
            module.conv1d(mt.randn(1, n, 16), weight)
        s = t.summary()
        flops.append(s["work_flops"])
        chains.append(s["sequential_ops"])
    assert abs(analysis.fit_exponent(ns, flops) - 1) < 0.05, f"FLOPs ~ n: {flops}"
    assert len(set(chains)) == 1, f"sequential ops must not grow with n: {chains}"


def check_ex06_1(module):
    weights = np.array([[0.1, 0.8, 0.1], [0.6, 0.2, 0.2], [0.2, 0.2, 0.6], [0.4, 0.4, 0.2]])
    got = module.alignment(weights, ["a", "b", "c"], ["w", "x", "y", "z"])
    assert list(got) == [("w", "b"), ("x", "a"), ("y", "c"), ("z", "a")]
    assert list(module.alignment(np.eye(2), ["p", "q"], ["r", "s"])) == [("r", "p"), ("s", "q")]


def check_ex07_1(module):
    calls = []
    real = mt.synchronize
    durations = iter([0.002, 0.06, 0.002, 0.002, 0.002, 0.002])

    def fn():
        time.sleep(next(durations))

    mt.synchronize = lambda device=None: calls.append(device) or real(device)
    try:
        median = module.timed(fn, "cpu", repeats=3)
    finally:
        mt.synchronize = real
    assert 0.0015 < median < 0.02, f"the median of 3 runs of 2, 60 and 2 ms (or so): {median}"
    assert len(calls) >= 6 and set(calls) == {"cpu"}, (
        f"synchronise the device before each clock reading: {len(calls)} calls for 3 runs")


def _exercise_test(name, check):
    marker = getattr(pytest.mark, f"exercise_{int(name[2:4])}_{name[5:]}")

    @marker
    def test(variant):
        judge(name, check, variant)
    test.__name__ = f"test_exercise_{int(name[2:4])}_{name[5:]}"
    return test


for _name, _check in [(n, globals()[f"check_{n}"]) for n in
                      ("ex01_1", "ex02_1", "ex02_2", "ex03_1", "ex04_1", "ex05_1", "ex06_1",
                       "ex07_1")]:
    globals()[f"test_exercise_{int(_name[2:4])}_{_name[5:]}"] = _exercise_test(_name, _check)


def test_every_exercise_has_a_solution_and_a_check():
    solutions = sorted(p.stem for p in (TOUR / "solutions").glob("ex*.py"))
    assert EXERCISES == solutions
    for name in EXERCISES:
        assert f"check_{name}" in globals(), f"no check for tour/exercises/{name}.py"


# ---------------------------------------------------------------- the chapters
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_opens_with_its_goals_and_ends_with_exercises(chapter):
    text = chapter.read_text(encoding="utf-8")
    ast.parse(text, filename=str(chapter))
    sys.path.insert(0, str(TOUR))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(TOUR))
    cells = make_notebooks.parse_cells(text)
    assert text.startswith("# %% [markdown]"), "a chapter starts with a markdown cell"
    kind, first = cells[0]
    body = "\n".join(line for line in first.splitlines() if not line.startswith("#")).strip()
    assert kind == "markdown" and body.startswith("After this chapter you will be able to"), (
        f"{chapter.name}: the first cell opens with 'After this chapter you will be able to'")
    kind, last = cells[-1]
    assert kind == "markdown" and last.startswith("## Exercises"), (
        f"{chapter.name}: the last cell is the exercises")
    number = int(chapter.stem[:2])
    named = [n for n in EXERCISES if int(n[2:4]) == number]
    assert 1 <= len(named) <= 3, f"{chapter.name}: 1-3 exercises, found {named}"
    for name in named:
        marker = f"exercise_{number}_{name[5:]}"
        assert f"tour/exercises/{name}.py" in last and marker in last, (
            f"{chapter.name}: the exercises name tour/exercises/{name}.py and -m {marker}")
    assert "MINITRANSFORMER_TOUR_QUICK" in text, "a chapter reads its quick setting"


def test_exercise_markers_are_registered():
    setup = (ROOT / "setup.cfg").read_text(encoding="utf-8")
    for name in EXERCISES:
        assert f"exercise_{int(name[2:4])}_{name[5:]}:" in setup


def test_notebooks_are_what_the_generator_writes():
    result = subprocess.run([sys.executable, str(TOUR / "make_notebooks.py"), "--check"],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stderr
    notebooks = sorted((TOUR / "notebooks").glob("*.ipynb"))
    assert [p.stem for p in notebooks] == [p.stem for p in CHAPTERS]
    for path in notebooks:
        document = json.loads(path.read_text(encoding="utf-8"))
        assert document["nbformat"] == 4
        markdown = [c for c in document["cells"] if c["cell_type"] == "markdown"]
        assert "colab.research.google.com/github/" in "".join(markdown[0]["source"])
        assert f"tour/notebooks/{path.name}" in "".join(markdown[0]["source"])
        for cell in document["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None
    gpu = json.loads((TOUR / "notebooks" / "07_gpu.ipynb").read_text(encoding="utf-8"))
    first = "".join(gpu["cells"][0]["source"])
    assert gpu["cells"][0]["cell_type"] == "code" and "pip" in first and "[gpu]" in first
    assert "mt.gpu_available()" in first


def test_check_names_a_notebook_that_differs(tmp_path, monkeypatch):
    sys.path.insert(0, str(TOUR))
    try:
        import make_notebooks
    finally:
        sys.path.remove(str(TOUR))
    for path, text in make_notebooks.expected().items():
        (tmp_path / path.name).write_text(text, encoding="utf-8")
    monkeypatch.setattr(make_notebooks, "NOTEBOOKS", tmp_path)
    assert make_notebooks.main(["--check"]) == 0
    (tmp_path / "03_recurrence_traced.ipynb").write_text("{}\n", encoding="utf-8")
    assert make_notebooks.differences() == [tmp_path / "03_recurrence_traced.ipynb"]
    assert make_notebooks.main(["--check"]) == 1


@pytest.mark.slow
@pytest.mark.parametrize("chapter", CHAPTERS, ids=lambda p: p.stem)
def test_chapter_runs_as_a_script(chapter, tmp_path):
    env = dict(os.environ, MINITRANSFORMER_TOUR_QUICK="1", MPLBACKEND="Agg")
    env.pop("MINITRANSFORMER_DEVICE", None)
    result = subprocess.run([sys.executable, str(chapter)], cwd=tmp_path, env=env,
                            capture_output=True, text=True, timeout=120)
    assert result.returncode == 0, result.stdout[-2000:] + result.stderr[-4000:]
