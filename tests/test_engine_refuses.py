"""The Monte Carlo engine refuses what it cannot compute exactly, with a ValueError that names the culprit.

* ``chained_jacobian`` must never return a wrong Jacobian: a module without a known exact Jacobian
  (before: ``Softmax`` was off by 0.052 and ``LayerNorm`` by 1.50 against ``torch.func.jacrev``, silently),
  a random module, or a container that is not a plain ``nn.Sequential`` raises ``ValueError`` naming the
  module (position and class) and listing the supported types.
* Entry points (``product_spectrum``, ``network_jacobian_spectrum``, ``network_layer_stats``) and
  ``gradient_growth`` refuse bad or conflicting input, and problems that cannot fit in memory, up front.
"""
from __future__ import annotations

import math
import re

import numpy as np
import pytest
import torch
from torch import nn

from rmt_init.montecarlo import (
    LayerStatsResult,
    chained_jacobian,
    network_jacobian_spectrum,
    network_layer_stats,
    product_spectrum,
)
from rmt_init.montecarlo._device import limit_threads, memory_capacity


@pytest.fixture(autouse=True)
def _single_thread():
    with limit_threads(1):
        yield


class _Custom(nn.Module):
    def forward(self, x):
        return x * x.sum(dim=1, keepdim=True)  # not elementwise


class _TanhOwnForward(nn.Tanh):
    def forward(self, x):  # overrides forward: no longer the Tanh map
        return torch.tanh(x).cumsum(dim=1)


class _ConvOwnConvForward(nn.Conv2d):
    def _conv_forward(self, x, weight, bias):  # the tangents would go through this nonlinear map
        return torch.tanh(super()._conv_forward(x, weight, bias))


def _hooked():
    m = nn.Tanh()
    m.register_forward_hook(lambda mod, inp, out: out.flip(1))
    return m


X2 = (3, 6)
X4 = (2, 2, 4, 4)
# (module placed at index 1 of Sequential(Linear or Conv2d, module), input shape, fragment of the reason)
UNSUPPORTED = [
    (lambda: nn.Softmax(dim=-1), X2, "known exact Jacobian"),
    (lambda: nn.Softmin(dim=-1), X2, "known exact Jacobian"),
    (lambda: nn.LogSoftmax(dim=-1), X2, "known exact Jacobian"),
    (lambda: nn.Softmax2d(), X4, "known exact Jacobian"),
    (lambda: nn.GLU(), X2, "known exact Jacobian"),
    (lambda: nn.LayerNorm(6), X2, "known exact Jacobian"),
    (lambda: nn.GroupNorm(1, 2), X4, "known exact Jacobian"),
    (lambda: nn.InstanceNorm2d(2), X4, "known exact Jacobian"),
    (lambda: nn.LocalResponseNorm(2), X4, "known exact Jacobian"),
    (lambda: nn.MaxPool2d(2), X4, "known exact Jacobian"),
    (lambda: nn.AvgPool2d(2), X4, "known exact Jacobian"),
    (lambda: nn.AdaptiveAvgPool2d(1), X4, "known exact Jacobian"),
    (lambda: nn.Upsample(scale_factor=2), X4, "known exact Jacobian"),
    (lambda: nn.ZeroPad2d(1), X4, "known exact Jacobian"),
    (lambda: nn.ConvTranspose2d(2, 2, 3), X4, "known exact Jacobian"),
    (lambda: nn.Bilinear(6, 6, 2), X2, "known exact Jacobian"),
    (lambda: _Custom(), X2, "known exact Jacobian"),
    (lambda: _TanhOwnForward(), X2, "known exact Jacobian"),
    (lambda: _ConvOwnConvForward(2, 2, 3, padding=1), X4, "known exact Jacobian"),
    (lambda: _hooked(), X2, "forward hooks"),
    (lambda: nn.Dropout(0.5), X2, "training mode is random"),
    (lambda: nn.Dropout2d(0.5), X4, "training mode is random"),
    (lambda: nn.AlphaDropout(0.5), X2, "training mode is random"),
    (lambda: nn.RReLU(), X2, "random slopes"),
    (lambda: nn.Flatten(0), X2, "batch dimension"),
    (lambda: nn.Unflatten(0, (1, 3)), X2, "batch dimension"),
]


@pytest.mark.parametrize("make, shape, why", UNSUPPORTED, ids=[f"{i}" for i in range(len(UNSUPPORTED))])
@pytest.mark.parametrize("mode", ["batch", "per_example"])
def test_unsupported_module_raises_naming_it(make, shape, why, mode):
    module = make()
    first = nn.Linear(6, 6) if len(shape) == 2 else nn.Conv2d(2, 2, 3, padding=1)
    model = nn.Sequential(first, module).to(torch.float64)
    x = torch.randn(*shape, dtype=torch.float64, generator=torch.Generator().manual_seed(0))
    with pytest.raises(ValueError) as info:
        chained_jacobian(model, x, mode)
    msg = str(info.value)
    assert f"module '1' ({type(module).__name__})" in msg and why in msg
    for listed in ("Linear", "Conv2d", "BatchNorm1d", "Flatten", "ReLU", "Tanh", "GELU", "Erf"):  # the supported types
        assert re.search(rf"\b{listed}\b", msg), listed


def test_nested_module_is_named_by_its_path():
    model = nn.Sequential(nn.Linear(4, 4), nn.Sequential(nn.Tanh(), nn.LayerNorm(4))).to(torch.float64)
    with pytest.raises(ValueError, match=re.escape("module '1.1' (LayerNorm)")):
        chained_jacobian(model, torch.randn(2, 4, dtype=torch.float64))


def test_containers_other_than_plain_sequential_are_refused():
    class Net(nn.Module):
        def __init__(self):
            super().__init__()
            self.lin = nn.Linear(4, 4)

        def forward(self, x):
            return torch.tanh(self.lin(x))

    class Residual(nn.Sequential):
        def forward(self, x):
            return x + super().forward(x)

    x = torch.randn(2, 4, dtype=torch.float64)
    with pytest.raises(ValueError, match=r"'<model>' \(Net\).*not a plain nn.Sequential"):
        chained_jacobian(Net().double(), x)
    with pytest.raises(ValueError, match=r"'1' \(Residual\).*not a plain nn.Sequential"):
        chained_jacobian(nn.Sequential(nn.Linear(4, 4), Residual(nn.Linear(4, 4))).double(), x)
    seq = nn.Sequential(nn.Linear(4, 4))
    seq.register_forward_hook(lambda mod, inp, out: 2 * out)
    with pytest.raises(ValueError, match="forward hooks"):
        chained_jacobian(seq.double(), x)
    handle = torch.nn.modules.module.register_module_forward_hook(lambda mod, inp, out: out)
    try:
        with pytest.raises(ValueError, match="forward hooks"):
            chained_jacobian(nn.Sequential(nn.Linear(4, 4)).double(), x)
    finally:
        handle.remove()
    assert chained_jacobian(nn.Sequential(nn.Linear(4, 4)).double(), x).shape == (2, 4, 4)
    with pytest.raises(TypeError, match="model must be a torch.nn.Sequential"):
        chained_jacobian(torch.tanh, x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        chained_jacobian(nn.Sequential(nn.Tanh()), [[1.0, 2.0]])
    with pytest.raises(ValueError, match="floating tensor"):
        chained_jacobian(nn.Sequential(nn.Tanh()), torch.ones(3, dtype=torch.float64))


# --- entry points: bad, conflicting or impossible input ---------------------------------------------------
ENTRY_POINTS = {
    "product_spectrum": lambda depth, width, **kw: product_spectrum(depth, width, **kw),
    "network_jacobian_spectrum": lambda depth, width, **kw: network_jacobian_spectrum(depth, width, **kw),
    "network_layer_stats": lambda depth, width, **kw: network_layer_stats(depth, width, **kw),
}
# (arguments, fragments the message must contain: the argument's name, the bad value, the valid choices)
BAD_COMMON = [
    (dict(depth=0, width=4), ["depth", "got 0", ">= 1"]),
    (dict(depth=2, width=-3), ["width", "got -3", ">= 1"]),
    (dict(depth=2, width=math.nan), ["width", "nan"]),
    (dict(depth=math.nan, width=4), ["depth", "nan"]),
    (dict(depth=2.5, width=4), ["depth", "2.5"]),
    (dict(depth=2, width=4, init="glorot_cauchy"), ["init", "'glorot_cauchy'", "'kaiming_normal'"]),
    (dict(depth=2, width=4, sigma_w2=math.nan), ["sigma_w2", "nan"]),
    (dict(depth=2, width=4, device="tpu"), ["device", "'tpu'", "'cpu'"]),
    (dict(depth=2, width=4, device=3), ["device", "3", "'cpu'"]),
    (dict(depth=2, width=4, dtype="float16"), ["dtype", "'float16'", "'float64'"]),
    (dict(depth=2, width=4, dtype=torch.int64), ["dtype", "torch.int64", "'float64'"]),
    (dict(depth=2, width=4, trials=0), ["trials", "got 0"]),
]
BAD_NETWORK_ONLY = [
    (dict(depth=2, width=4, activation="swish"), ["activation", "'swish'", "'relu'"]),
    (dict(depth=2, width=4, activation=None), ["activation", "None", "'relu'"]),
    (dict(depth=2, width=4, input_variance=math.nan), ["input_variance", "nan"]),
    (dict(depth=2, width=4, activation="leaky_relu", negative_slope=math.nan), ["negative_slope", "nan"]),
    (dict(depth=2, width=4, batchnorm="layer"), ["batchnorm", "'layer'", "'train'"]),
]


@pytest.mark.parametrize(
    "entry, kwargs, fragments",
    [(e, k, f) for e in ENTRY_POINTS for k, f in BAD_COMMON + (BAD_NETWORK_ONLY if e != "product_spectrum" else [])],
)
def test_bad_input_raises_value_error_naming_it(entry, kwargs, fragments):
    kwargs = {"device": "cpu", **kwargs}
    with pytest.raises(ValueError) as info:
        ENTRY_POINTS[entry](**kwargs)
    for fragment in fragments:
        assert fragment in str(info.value), (fragment, str(info.value))


def test_product_width_and_widths_together_are_refused():
    # Before: widths=[4, 4, 4] silently won over width=8.
    with pytest.raises(ValueError) as info:
        product_spectrum(2, 8, widths=[4, 4, 4], device="cpu")
    assert "width=8" in str(info.value) and "widths=[4, 4, 4]" in str(info.value)
    with pytest.raises(ValueError, match="width"):
        product_spectrum(2, device="cpu")  # neither


@pytest.mark.parametrize("entry", list(ENTRY_POINTS))
def test_problem_larger_than_any_memory_is_refused_up_front(entry):
    # Before: torch's raw allocation error from deep inside. One 10⁷ × 10⁷ float64 weight is 8·10¹⁴ bytes,
    # more than any CPU or GPU memory, so this is refused on every machine, before anything is allocated.
    if memory_capacity(torch.device("cpu")) is None:
        pytest.skip("this platform does not report its physical memory")
    with pytest.raises(ValueError) as info:
        ENTRY_POINTS[entry](1, 10**7, trials=1, device="cpu")
    msg = str(info.value)
    assert f"{entry}(depth=1, width=10000000" in msg and "bytes" in msg and "memory" in msg, msg
    need = float(re.search(r"needs at least ([0-9.e+]+) bytes", msg).group(1))
    assert need >= 8e14  # at least the one weight matrix


SEED_DEAD = 0  # a seed for which both width-1 relu trials have a vanished gradient (asserted in the test)


def _stats(g):
    return LayerStatsResult(layer_stats={"grad_sq_norm": np.asarray(g, dtype=float)}, config={})


def test_gradient_growth_refuses_instead_of_returning_nan():
    # Before: one trial gave stderr = nan, and a vanished gradient gave value = nan.
    with pytest.raises(ValueError, match=r"needs >= 2 trials.*has 1 trial"):
        _stats([[4.0, 2.0, 1.0]]).gradient_growth(first=0, last=2)
    with pytest.raises(ValueError, match="trial mean of grad_sq_norm at layer 2 is 0.0"):
        _stats([[4.0, 2.0, 0.0], [4.0, 2.0, 0.0]]).gradient_growth(first=0, last=2)
    with pytest.raises(ValueError, match="leave-one-out trial mean of grad_sq_norm at layer 1"):
        _stats([[4.0, 2.0, 1.0], [4.0, 0.0, 1.0]]).gradient_growth(first=0, last=2)
    with pytest.raises(ValueError, match="layer 0 is inf"):
        _stats([[math.inf, 2.0, 1.0], [4.0, 2.0, 1.0]]).gradient_growth(first=0, last=2)
    est = _stats([[4.0, 2.0, 1.0], [8.0, 4.0, 2.0]]).gradient_growth(first=0, last=2)
    assert est.value == pytest.approx(2.0, rel=1e-12) and est.stderr == pytest.approx(0.0, abs=1e-12)
    # a real dead network: relu at width 1 has, in some trial, every gradient 0 from some layer on
    st = network_layer_stats(6, 1, "relu", trials=2, seed=SEED_DEAD, device="cpu")
    assert np.all(st.layer_stats["grad_sq_norm"][:, 1:6].min(axis=1) == 0)  # every trial dies (this seed)
    with pytest.raises(ValueError, match="grad_sq_norm at layer"):
        st.gradient_growth()
