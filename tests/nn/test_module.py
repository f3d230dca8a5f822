"""Module: registration by attribute assignment, state dicts, modes, devices, dtypes."""
import copy

import numpy as np
import pytest

import minitransformer as mt
from minitransformer import nn
from tests.conftest import to_host


class Tiny(nn.Module):
    def __init__(self):
        super().__init__()
        self.scale = nn.Parameter(mt.ones(3))
        self.first = nn.Linear(3, 4)
        self.blocks = [nn.Linear(4, 4), nn.Linear(4, 2, bias=False)]  # a plain list
        self.drop = nn.Dropout(0.5)

    def forward(self, x):
        x = self.first(x * self.scale)
        for block in self.blocks:
            x = block(x)
        return self.drop(x)


def test_parameters_are_registered_with_dotted_names_in_order():
    names = [n for n, _ in Tiny().named_parameters()]
    assert names == ["scale", "first.weight", "first.bias", "blocks.0.weight", "blocks.0.bias",
                     "blocks.1.weight"]
    assert isinstance(Tiny().blocks, nn.ModuleList)
    assert Tiny().num_parameters() == 3 + 12 + 4 + 16 + 4 + 8


def test_shared_parameter_listed_once_but_in_state_dict_twice():
    model = Tiny()
    model.blocks[0].weight = model.blocks[0].weight  # re-assignment keeps one entry
    model.tied = nn.Linear(4, 4)
    model.tied.weight = model.blocks[0].weight
    params = list(model.parameters())
    assert len(params) == len({id(p) for p in params})
    assert "tied.weight" in model.state_dict() and "blocks.0.weight" in model.state_dict()


def test_state_dict_round_trip(device):
    a, b = Tiny().to(device), Tiny().to(device)
    x = mt.randn(2, 3, device=device)
    a.eval(), b.eval()
    assert not np.allclose(to_host(a(x)), to_host(b(x)))
    b.load_state_dict(a.state_dict())
    np.testing.assert_array_equal(to_host(a(x)), to_host(b(x)))
    # load copies: training a afterwards does not change b
    a.first.weight.data += 1
    assert not np.allclose(to_host(a.first.weight), to_host(b.first.weight))


def test_state_dict_loads_across_devices_and_from_numpy(device):
    a = Tiny()
    host = {k: mt.backend.to_numpy(v) for k, v in a.state_dict().items()}
    b = Tiny().to(device)
    b.load_state_dict(host)
    assert b.first.weight.device == device
    np.testing.assert_array_equal(to_host(b.first.weight), host["first.weight"])


def test_load_state_dict_lists_every_problem():
    model = Tiny()
    state = dict(model.state_dict())
    del state["first.bias"], state["scale"]
    state["extra.weight"] = np.zeros(2)
    state["first.weight"] = np.zeros((5, 5), dtype=np.float32)
    with pytest.raises(ValueError) as err:
        model.load_state_dict(state)
    message = str(err.value)
    for part in ("missing keys", "first.bias", "scale", "unexpected keys", "extra.weight",
                 "shape mismatches", "first.weight", "(5, 5)", "(4, 3)"):
        assert part in message
    before = to_host(model.first.weight)
    np.testing.assert_array_equal(before, to_host(model.first.weight))  # nothing copied


def test_load_state_dict_not_strict_reports_missing_and_unexpected():
    model = Tiny()
    state = dict(model.state_dict())
    del state["scale"]
    state["other"] = np.zeros(1)
    missing, unexpected = model.load_state_dict(state, strict=False)
    assert missing == ["scale"] and unexpected == ["other"]


def test_train_eval_reach_every_submodule():
    model = Tiny()
    assert model.eval() is model
    assert not any(m.training for m in model.modules())
    model.train()
    assert all(m.training for m in model.modules())
    x = mt.randn(50, 3)
    model.eval()
    np.testing.assert_array_equal(model(x).numpy(), model(x).numpy())  # dropout off


def test_to_and_double_keep_parameter_identity(device):
    model = Tiny()
    before = list(model.parameters())
    model.to(device).double()
    after = list(model.parameters())
    assert all(a is b for a, b in zip(before, after))
    assert all(p.device == device and p.dtype == np.float64 for p in after)
    assert model.float().first.weight.dtype == np.float32


def test_zero_grad_and_backward_reach_parameters(device):
    model = Tiny().to(device).eval()
    model(mt.randn(2, 3, device=device)).sum().backward()
    assert all(p.grad is not None and p.grad.shape == p.shape for p in model.parameters())
    model.zero_grad()
    assert all(p.grad is None for p in model.parameters())


def test_buffers_move_and_persistent_ones_are_saved():
    model = Tiny()
    model.register_buffer("counts", mt.zeros(3))
    model.register_buffer("table", mt.ones(2), persistent=False)
    assert "counts" in model.state_dict() and "table" not in model.state_dict()
    model.double()
    assert model.counts.dtype == np.float64 and model.table.dtype == np.float64
    assert [n for n, _ in model.named_buffers()] == ["counts", "table"]


def test_repr_is_a_readable_tree():
    text = repr(Tiny())
    assert text.startswith("Tiny(\n")
    assert "(first): Linear(in_features=3, out_features=4, bias=True)" in text
    assert "(blocks): ModuleList(" in text
    assert "(1): Linear(in_features=4, out_features=2, bias=False)" in text
    assert "(drop): Dropout(p=0.5)" in text


def test_deepcopy_gives_independent_equal_weights():
    model = Tiny()
    clone = copy.deepcopy(model)
    assert clone.first.weight is not model.first.weight
    np.testing.assert_array_equal(clone.first.weight.numpy(), model.first.weight.numpy())
    clone.first.weight.data += 1
    assert not np.allclose(clone.first.weight.numpy(), model.first.weight.numpy())


def test_setattr_before_init_is_a_clear_error():
    class Broken(nn.Module):
        def __init__(self):
            self.w = nn.Parameter(mt.ones(1))
    with pytest.raises(AttributeError, match="super"):
        Broken()


def test_parameters_start_identical_on_every_device(device):
    mt.manual_seed(3)
    cpu = nn.LSTM(3, 4)
    mt.manual_seed(3)
    other = nn.LSTM(3, 4).to(device)
    for (name, a), (_, b) in zip(cpu.named_parameters(), other.named_parameters()):
        np.testing.assert_array_equal(a.numpy(), to_host(b), err_msg=name)
