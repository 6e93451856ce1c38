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
from rmt_init.montecarlo._device import limit_threads


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
    with pytest.raises(TypeError, match="model must be a torch.nn.Sequential"):
        chained_jacobian(torch.tanh, x)
    with pytest.raises(TypeError, match="x must be a torch.Tensor"):
        chained_jacobian(nn.Sequential(nn.Tanh()), [[1.0, 2.0]])
    with pytest.raises(ValueError, match="floating tensor"):
        chained_jacobian(nn.Sequential(nn.Tanh()), torch.ones(3, dtype=torch.float64))
