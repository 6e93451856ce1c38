"""initialize_: a torch.nn.init scheme on every Linear/Conv weight of a model, biases as asked, norms reset."""
from __future__ import annotations

import math
import sys
import types

import pytest
import torch
from scipy import stats
from torch import nn

from rmt_init.montecarlo.architectures import cifar_resnet
from rmt_init.montecarlo.initialize import INITIALIZE_SCHEMES, initialize_, scheme_kwargs

# Sample-variance standard error of n i.i.d. entries: Var(s²) ≈ (μ₄ − σ⁴)/n = σ⁴ (κ − 1)/n with κ the kurtosis
# (3 Gaussian, 9/5 uniform); SE = σ² √((κ − 1)/n). Tolerance 5 SE (false alarm < 1e-6 per check).
KURTOSIS_GAUSS, KURTOSIS_UNIFORM = 3.0, 9.0 / 5.0


def _model() -> nn.Sequential:
    # float64 so that the orthogonality check is exact to rounding; sizes give ~10⁵ entries per layer
    return nn.Sequential(
        nn.Linear(400, 300, dtype=torch.float64),
        nn.ReLU(),
        nn.Unflatten(1, (12, 5, 5)),
        nn.Conv2d(12, 64, 5, padding=2, dtype=torch.float64),
        nn.Conv1d(64, 80, 3, dtype=torch.float64),
        nn.Conv3d(4, 40, 3, dtype=torch.float64),
    )


def _fans(w: torch.Tensor) -> tuple[int, int]:
    rf = math.prod(w.shape[2:])
    return w.shape[1] * rf, w.shape[0] * rf


def _check_variance(w: torch.Tensor, var: float, kurtosis: float, mean: float = 0.0) -> None:
    w = w.detach()
    n = w.numel()
    se_var = var * math.sqrt((kurtosis - 1.0) / n)
    se_mean = math.sqrt(var / n)
    assert abs(float(w.var()) - var) <= 5 * se_var, (float(w.var()), var, se_var)
    assert abs(float(w.mean()) - mean) <= 5 * se_mean


def _trunc_normal_moments(a: float, b: float) -> tuple[float, float]:
    """Variance and kurtosis of N(0, 1) truncated to [a, b] (scipy.stats.truncnorm)."""
    m, v, _, k_excess = stats.truncnorm.stats(a, b, moments="mvsk")
    return float(v), float(k_excess) + 3.0


# (scheme, kwargs, variance(fan_in, fan_out), kurtosis)
_TV, _TK = _trunc_normal_moments(-2.0, 2.0)
CASES = [
    ("kaiming_normal_", {"nonlinearity": "relu"}, lambda fi, fo: 2.0 / fi, KURTOSIS_GAUSS),
    ("kaiming_normal", {"nonlinearity": "relu", "mode": "fan_out"}, lambda fi, fo: 2.0 / fo, KURTOSIS_GAUSS),
    ("kaiming_uniform_", {"nonlinearity": "tanh"}, lambda fi, fo: (5 / 3) ** 2 / fi, KURTOSIS_UNIFORM),
    ("xavier_normal_", {"gain": 2.0}, lambda fi, fo: 4.0 * 2.0 / (fi + fo), KURTOSIS_GAUSS),
    ("glorot_uniform", {}, lambda fi, fo: 2.0 / (fi + fo), KURTOSIS_UNIFORM),
    ("normal_", {"std": 0.3}, lambda fi, fo: 0.09, KURTOSIS_GAUSS),
    ("uniform_", {"a": -1.0, "b": 1.0}, lambda fi, fo: 1.0 / 3.0, KURTOSIS_UNIFORM),
    ("trunc_normal_", {}, lambda fi, fo: _TV, _TK),
    ("gaussian", {"sigma_w2": 3.0}, lambda fi, fo: 3.0 / fi, KURTOSIS_GAUSS),
    ("lecun_uniform", {}, lambda fi, fo: 1.0 / fi, KURTOSIS_UNIFORM),
    ("torch_default", {}, lambda fi, fo: 1.0 / (3.0 * fi), KURTOSIS_UNIFORM),
]


@pytest.mark.parametrize("scheme,kwargs,variance,kurtosis", CASES, ids=[c[0] + str(c[1]) for c in CASES])
def test_empirical_weight_variance_matches_scheme(scheme, kwargs, variance, kurtosis):
    model = initialize_(_model(), scheme, generator=torch.Generator().manual_seed(11), **kwargs)
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            _check_variance(m.weight, variance(*_fans(m.weight)), kurtosis)
            assert (m.bias == 0).all()  # default bias=0.0


@pytest.mark.parametrize("gain", [1.0, 1.5])
def test_orthogonal_rows(gain):
    model = initialize_(_model(), "orthogonal_", gain=gain, generator=torch.Generator().manual_seed(2))
    for m in model.modules():
        if isinstance(m, (nn.Linear, nn.Conv1d, nn.Conv2d, nn.Conv3d)):
            w = m.weight.reshape(m.weight.shape[0], -1)
            if w.shape[0] > w.shape[1]:
                w = w.T  # torch makes the smaller side orthonormal
            torch.testing.assert_close(w @ w.T, gain**2 * torch.eye(w.shape[0], dtype=w.dtype), rtol=0, atol=1e-12)


def test_generator_reproducible_and_global_rng_untouched():
    state = torch.random.get_rng_state()
    a = initialize_(cifar_resnet(8, width=4), "kaiming_normal_", generator=torch.Generator().manual_seed(5))
    b = initialize_(cifar_resnet(8, width=4), "kaiming_normal_", generator=torch.Generator().manual_seed(5))
    c = initialize_(cifar_resnet(8, width=4), "kaiming_normal_", generator=torch.Generator().manual_seed(6))
    after = torch.random.get_rng_state()
    for (na, pa), (_, pb), (_, pc) in zip(a.named_parameters(), b.named_parameters(), c.named_parameters()):
        assert torch.equal(pa, pb), na
        if na.endswith("conv1.weight"):
            assert not torch.equal(pa, pc)
    # building the models used the global RNG (torch defaults), initialize_ with a generator did not
    torch.random.set_rng_state(state)
    for _ in range(3):
        cifar_resnet(8, width=4)
    assert torch.equal(torch.random.get_rng_state(), after)


def test_bias_modes():
    lin = lambda: nn.Linear(10, 50_000, dtype=torch.float64)  # noqa: E731  (5·10⁴ biases)
    assert (initialize_(lin(), "xavier_normal", bias=0.25).bias == 0.25).all()
    b = initialize_(lin(), "xavier_normal", bias=("normal", 0.04), generator=torch.Generator().manual_seed(1)).bias
    _check_variance(b, 0.04, KURTOSIS_GAUSS)
    b = initialize_(lin(), "xavier_normal", bias="default", generator=torch.Generator().manual_seed(1)).bias
    assert b.abs().max() <= 1 / math.sqrt(10)
    _check_variance(b, 1 / 30, KURTOSIS_UNIFORM)  # U(±1/√10): variance 1/(3·10)
    m = lin()
    kept = m.bias.detach().clone()
    assert torch.equal(initialize_(m, "xavier_normal", bias="keep").bias, kept)


def test_norm_layers_reset():
    model = nn.Sequential(nn.Linear(4, 6), nn.BatchNorm1d(6), nn.LayerNorm(6), nn.GroupNorm(2, 6))
    with torch.no_grad():
        for m in model[1:]:
            m.weight.fill_(3.0)
            m.bias.fill_(-1.0)
    model[1].train()(torch.randn(8, 6) * 5 + 2)  # moves the running statistics
    initialize_(model, "orthogonal")
    for m in model[1:]:
        assert (m.weight == 1).all() and (m.bias == 0).all()
    assert (model[1].running_mean == 0).all() and (model[1].running_var == 1).all()
    assert int(model[1].num_batches_tracked) == 0


@pytest.mark.parametrize("scheme,kwargs,match", [
    ("kaiming", {}, "valid choices are 'xavier_normal'"),
    ("he_normal_", {"gain": 2.0}, "valid arguments: 'a', 'mode', 'nonlinearity'"),
    ("orthogonal", {"std": 1.0}, "valid arguments: 'gain'"),
    ("kaiming_uniform", {"nonlinearity": "swish"}, "valid choices are 'linear'"),
    ("kaiming_uniform", {"mode": "fan_avg"}, "fan_in"),
    ("gaussian", {"sigma_w2": -1.0}, "sigma_w2"),
])
def test_bad_scheme_or_kwargs(scheme, kwargs, match):
    with pytest.raises(ValueError, match=match):
        initialize_(nn.Linear(3, 3), scheme, **kwargs)


@pytest.mark.parametrize("bias", ["zero", ("uniform", 1.0), ("normal", -1.0), float("nan"), True, None])
def test_bad_bias(bias):
    with pytest.raises(ValueError, match="bias"):
        initialize_(nn.Linear(3, 3), "orthogonal", bias=bias)


def test_not_a_module():
    with pytest.raises(ValueError, match="torch.nn.Module"):
        initialize_(torch.zeros(3, 3), "orthogonal")


def test_scheme_kwargs_follow_torch_signatures():
    assert scheme_kwargs("trunc_normal_") == {"mean": 0.0, "std": 1.0, "a": -2.0, "b": 2.0}
    assert set(scheme_kwargs("kaiming_normal")) == {"a", "mode", "nonlinearity"}
    assert all(s.rstrip("_") == s for s in INITIALIZE_SCHEMES)


def test_delta_orthogonal_hook(monkeypatch):
    """Conv weights go to rmt_init.montecarlo.delta_orthogonal.delta_orthogonal_ (a stand-in here, so the hook is
    tested whether or not that module exists), Linear weights to orthogonal_(gain)."""
    calls = []

    def fake(tensor, gain=1.0):
        calls.append((tuple(tensor.shape), gain))
        with torch.no_grad():
            tensor.zero_()
        return tensor

    monkeypatch.setitem(sys.modules, "rmt_init.montecarlo.delta_orthogonal",
                        types.SimpleNamespace(delta_orthogonal_=fake))
    model = nn.Sequential(nn.Conv2d(4, 4, 3, dtype=torch.float64), nn.Flatten(), nn.Linear(4, 6, dtype=torch.float64))
    initialize_(model, "delta_orthogonal", gain=2.0, generator=torch.Generator().manual_seed(0))
    assert calls == [((4, 4, 3, 3), 2.0)]
    w = model[2].weight
    torch.testing.assert_close(w.T @ w, 4.0 * torch.eye(4, dtype=torch.float64), rtol=0, atol=1e-12)
    monkeypatch.setitem(sys.modules, "rmt_init.montecarlo.delta_orthogonal", None)  # module absent: ImportError
    with pytest.raises(ValueError, match="delta_orthogonal"):
        initialize_(model, "delta_orthogonal")
