"""Optimizers against their update formulas, state dicts, the warm-up schedule, clipping."""
import math

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn, optim
from tests.conftest import to_host


def quadratic_grad(p, target):
    """Set p.grad to the gradient of 0.5·|p - target|² and return it."""
    p.grad = p.data - target
    return to_host(p.grad)


def test_adam_first_steps_by_hand(device):
    p = mt.tensor([1.0, -2.0, 0.5], device=device, requires_grad=True)
    target = mt.tensor([0.0, 0.0, 3.0], device=device).data
    opt = optim.Adam([p], lr=0.1)
    assert opt.param_groups[0]["betas"] == (0.9, 0.999) and opt.param_groups[0]["eps"] == 1e-8
    x = to_host(p).astype(np.float64)
    m = v = np.zeros(3)
    for t in (1, 2, 3):
        g = quadratic_grad(p, target).astype(np.float64)
        opt.step()
        m = 0.9 * m + 0.1 * g
        v = 0.999 * v + 0.001 * g * g
        x = x - 0.1 / (1 - 0.9 ** t) * m / (np.sqrt(v) / math.sqrt(1 - 0.999 ** t) + 1e-8)
        np.testing.assert_allclose(to_host(p), x, rtol=1e-6)
    # the first step moves every coordinate by lr against its gradient's sign
    assert opt.state[id(p)]["step"] == 3


def test_adam_weight_decay_is_l2_adamw_is_decoupled():
    start = np.array([1.0, -1.0], dtype=np.float32)
    adam_p, adamw_p = mt.tensor(start, requires_grad=True), mt.tensor(start, requires_grad=True)
    adam = optim.Adam([adam_p], lr=0.1, weight_decay=0.5)
    adamw = optim.AdamW([adamw_p], lr=0.1, weight_decay=0.5)
    assert optim.AdamW([mt.zeros(1, requires_grad=True)]).param_groups[0]["weight_decay"] == 1e-2
    for p in (adam_p, adamw_p):
        p.grad = mt.zeros(2).data                         # only the decay acts
    adam.step(), adamw.step()
    # Adam: g = 0.5·p, a normalised step of lr against sign(p)
    np.testing.assert_allclose(adam_p.numpy(), start - 0.1 * np.sign(start), rtol=1e-5)
    # AdamW: p·(1 - lr·wd), then a zero Adam step
    np.testing.assert_allclose(adamw_p.numpy(), start * (1 - 0.05), rtol=1e-6)


@pytest.mark.parametrize("nesterov", [False, True])
def test_sgd_momentum_by_hand(device, nesterov):
    p = mt.tensor([1.0, 2.0], device=device, requires_grad=True)
    opt = optim.SGD([p], lr=0.1, momentum=0.9, weight_decay=0.01, nesterov=nesterov)
    x, buf = np.array([1.0, 2.0]), None
    for _ in range(3):
        g = quadratic_grad(p, 0.0) + 0.01 * x
        opt.step()
        buf = g if buf is None else 0.9 * buf + g
        x = x - 0.1 * (g + 0.9 * buf if nesterov else buf)
        np.testing.assert_allclose(to_host(p), x, rtol=1e-6)


def test_plain_sgd_and_parameter_groups():
    a, b = mt.ones(2, requires_grad=True), mt.ones(2, requires_grad=True)
    opt = optim.SGD([{"params": [a]}, {"params": [b], "lr": 1.0}], lr=0.1)
    a.grad, b.grad = mt.ones(2).data, mt.ones(2).data
    opt.step()
    np.testing.assert_allclose(a.numpy(), 0.9)
    np.testing.assert_allclose(b.numpy(), 0.0)
    opt.zero_grad()
    assert a.grad is None and b.grad is None
    with pytest.raises(ValueError, match="empty"):
        optim.SGD([], lr=0.1)
    with pytest.raises(ValueError, match="two groups"):
        optim.SGD([{"params": [a]}, {"params": [a]}])


def test_step_skips_parameters_without_gradient():
    a = mt.ones(2, requires_grad=True)
    optim.Adam([a]).step()
    np.testing.assert_array_equal(a.numpy(), 1)


def make_run(seed=0):
    mt.manual_seed(seed)
    model = nn.Linear(3, 2)
    return model, optim.Adam(model.parameters(), lr=0.05)


def train_steps(model, opt, steps, rng):
    for _ in range(steps):
        x = mt.tensor(rng.standard_normal((4, 3)).astype(np.float32))
        loss = ((model(x) - 1.0) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()


@pytest.mark.parametrize("kind", ["Adam", "SGD"])
def test_state_dict_resumes_training_exactly(kind):
    def build():
        mt.manual_seed(0)
        model = nn.Linear(3, 2)
        opt = (optim.Adam(model.parameters(), lr=0.05) if kind == "Adam" else
               optim.SGD(model.parameters(), lr=0.05, momentum=0.9))
        return model, opt
    straight, opt = build()
    train_steps(straight, opt, 6, np.random.default_rng(1))
    first, opt1 = build()
    rng = np.random.default_rng(1)
    train_steps(first, opt1, 3, rng)
    model_state = {k: v.copy() for k, v in first.state_dict().items()}
    opt_state = opt1.state_dict()
    resumed, opt2 = build()
    resumed.load_state_dict(model_state)
    opt2.load_state_dict(opt_state)
    train_steps(resumed, opt2, 3, rng)
    for (name, a), (_, b) in zip(straight.named_parameters(), resumed.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), b.numpy(), err_msg=name)
    assert opt_state["param_groups"][0]["params"] == [0, 1]


def test_load_state_dict_rejects_a_different_model():
    model, opt = make_run()
    other = optim.Adam([mt.zeros(1, requires_grad=True)])
    with pytest.raises(ValueError, match="group sizes"):
        other.load_state_dict(opt.state_dict())


def test_noam_schedule_warms_up_then_decays():
    p = mt.zeros(1, requires_grad=True)
    opt = optim.Adam([p], lr=1.0)
    sched = optim.NoamSchedule(opt, d_model=512, warmup_steps=4000)
    rates = [sched.get_last_lr()[0]]
    for _ in range(9999):
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    expected = [512 ** -0.5 * min(s ** -0.5, s * 4000 ** -1.5) for s in range(1, 10001)]
    np.testing.assert_allclose(rates, expected, rtol=1e-12)
    assert int(np.argmax(rates)) + 1 == 4000
    state = sched.state_dict()
    again = optim.NoamSchedule(optim.Adam([p]), d_model=512)
    again.load_state_dict(state)
    assert again.get_last_lr() == sched.get_last_lr()


def test_clip_grad_norm(device):
    a = mt.zeros(2, device=device, requires_grad=True)
    b = mt.zeros(1, device=device, requires_grad=True)
    a.grad = mt.tensor([3.0, 0.0], device=device).data
    b.grad = mt.tensor([4.0], device=device).data
    total = optim.clip_grad_norm_([a, b], max_norm=1.0)
    assert math.isclose(total.item(), 5.0, rel_tol=1e-6)
    np.testing.assert_allclose(np.concatenate([to_host(a.grad), to_host(b.grad)]),
                               [0.6, 0.0, 0.8], rtol=1e-5)
    total = optim.clip_grad_norm_([a, b], max_norm=10.0)   # small norms are left alone
    np.testing.assert_allclose(to_host(a.grad), [0.6, 0.0], rtol=1e-5)
    a.grad = mt.tensor([-3.0, 2.0], device=device).data
    assert optim.clip_grad_norm_([a], 1.0, norm_type="inf").item() == 3.0


def test_inverse_sqrt_schedule_peaks_at_the_given_rate():
    p = mt.zeros(1, requires_grad=True)
    opt = optim.Adam([p])
    sched = optim.InverseSqrtSchedule(opt, peak_lr=2e-3, warmup_steps=100)
    rates = [sched.get_last_lr()[0]]
    for _ in range(399):
        sched.step()
        rates.append(opt.param_groups[0]["lr"])
    assert rates[0] == pytest.approx(2e-5) and max(rates) == pytest.approx(2e-3)
    assert int(np.argmax(rates)) + 1 == 100
    assert rates[399] == pytest.approx(2e-3 * (100 / 400) ** 0.5)   # halved at 4x the warm-up
    with pytest.raises(ValueError, match="peak_lr must be > 0, got 0"):
        optim.InverseSqrtSchedule(opt, peak_lr=0)
