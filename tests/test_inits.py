"""Tests for rmt_init.theory.inits against the real torch.nn.init functions.

Tolerances for empirical variances: the mean of squares of n i.i.d. centred entries has relative standard
error sqrt((κ − 1)/n), κ = E w⁴/(E w²)² (Gaussian 3, uniform 9/5); we allow 5 standard errors.
"""
from __future__ import annotations

import math

import pytest
import torch

from rmt_init.theory.inits import TORCH_GAIN_NONLINEARITIES, calculate_gain, init_scheme

SHAPES = [(300, 200), (200, 300)]  # (fan_out, fan_in): both fan_in < fan_out and fan_in > fan_out
KURTOSIS = {"gaussian": 3.0, "uniform": 9.0 / 5.0}


@pytest.mark.parametrize("name", TORCH_GAIN_NONLINEARITIES)
def test_calculate_gain_matches_torch(name):
    assert calculate_gain(name) == pytest.approx(torch.nn.init.calculate_gain(name), rel=1e-15)


@pytest.mark.parametrize("slope", [0.0, 0.01, 0.2, 3.0, -0.5, 2])
def test_calculate_gain_leaky_param(slope):
    assert calculate_gain("leaky_relu", slope) == pytest.approx(
        torch.nn.init.calculate_gain("leaky_relu", slope), rel=1e-15
    )
    # param is ignored for other nonlinearities, as in torch
    assert calculate_gain("tanh", slope) == torch.nn.init.calculate_gain("tanh", slope)


def test_calculate_gain_T29():
    assert calculate_gain("tanh") == 5 / 3
    assert round(calculate_gain("leaky_relu", 0.2), 6) == 1.386750
    assert calculate_gain("selu") == 0.75
    assert calculate_gain("relu") == math.sqrt(2)


def test_calculate_gain_rejects_what_torch_rejects():
    for bad in ("gelu", "softplus"):
        with pytest.raises(ValueError):
            torch.nn.init.calculate_gain(bad)
        with pytest.raises(ValueError, match="valid choices"):
            calculate_gain(bad)
    with pytest.raises(ValueError):
        torch.nn.init.calculate_gain("leaky_relu", True)
    with pytest.raises(ValueError, match="negative_slope"):
        calculate_gain("leaky_relu", True)


def _torch_draw(name, kwargs, fan_in, fan_out, gen):
    """Fill a (fan_out, fan_in) tensor with the torch function the scheme stands for."""
    w = torch.empty(fan_out, fan_in, dtype=torch.float64)
    init = torch.nn.init
    if name == "gaussian":
        return init.normal_(w, 0.0, math.sqrt(kwargs.get("sigma_w2", 1.0) / fan_in), generator=gen)
    if name == "xavier_normal":
        return init.xavier_normal_(w, **kwargs, generator=gen)
    if name == "xavier_uniform":
        return init.xavier_uniform_(w, **kwargs, generator=gen)
    if name == "kaiming_normal":
        return init.kaiming_normal_(w, **kwargs, generator=gen)
    if name == "kaiming_uniform":
        return init.kaiming_uniform_(w, **kwargs, generator=gen)
    if name == "lecun_normal":
        return init.kaiming_normal_(w, nonlinearity="linear", generator=gen)
    if name == "lecun_uniform":
        return init.kaiming_uniform_(w, nonlinearity="linear", generator=gen)
    if name == "orthogonal":
        return init.orthogonal_(w, **kwargs, generator=gen)
    assert name == "torch_default"
    with torch.random.fork_rng():  # nn.Linear uses the global RNG; keep the test side-effect free
        torch.manual_seed(int(torch.randint(0, 2**31 - 1, (1,), generator=gen)))
        return torch.nn.Linear(fan_in, fan_out, dtype=torch.float64).weight.detach()


CASES = [
    ("gaussian", {"sigma_w2": 2.7}),
    ("xavier_normal", {}),
    ("xavier_normal", {"gain": 5 / 3}),
    ("xavier_uniform", {"gain": 0.7}),
    ("kaiming_normal", {}),
    ("kaiming_normal", {"nonlinearity": "relu"}),
    ("kaiming_normal", {"a": 0.2, "mode": "fan_out"}),
    ("kaiming_uniform", {"nonlinearity": "tanh", "mode": "fan_out"}),
    ("kaiming_uniform", {"a": math.sqrt(5)}),
    ("lecun_normal", {}),
    ("lecun_uniform", {}),
    ("orthogonal", {}),
    ("orthogonal", {"gain": 1.3}),
    ("torch_default", {}),
]


@pytest.mark.parametrize("shape", SHAPES)
@pytest.mark.parametrize("name, kwargs", CASES)
def test_entry_variance_matches_torch_samples(name, kwargs, shape):
    fan_out, fan_in = shape
    scheme = init_scheme(name, **kwargs)
    gen = torch.Generator().manual_seed(1234)
    w = _torch_draw(name, kwargs, fan_in, fan_out, gen)
    n = w.numel()
    var = scheme.entry_variance(fan_in, fan_out)
    emp = float(w.pow(2).mean())
    if scheme.ensemble == "orthogonal":
        # semi-orthogonal: unit-norm rows (fan_out ≤ fan_in) or columns, so Σ w² = g² min(fan_in, fan_out)
        assert emp == pytest.approx(var, rel=1e-12)
    else:
        se = var * math.sqrt((KURTOSIS[scheme.ensemble] - 1.0) / n)
        assert abs(emp - var) <= 5 * se, (emp, var, se)
    assert abs(float(w.mean())) <= 5 * math.sqrt(var / n)
    if scheme.ensemble == "uniform":
        b = scheme.bound(fan_in, fan_out)
        amax = float(w.abs().max())
        # P(max|w| < b(1 − 1e−3)) = (1 − 1e−3)^n ≈ e^{−60}
        assert b * (1 - 1e-3) < amax <= b * (1 + 1e-15)
    assert scheme.sigma_w2(fan_in, fan_out) == pytest.approx(fan_in * var, rel=1e-15)


def test_T27_T28_and_defaults():
    td = init_scheme("torch_default")
    assert td.ensemble == "uniform" and td.sigma_w2(256, 64) == pytest.approx(1 / 3, rel=1e-15)
    assert td.bound(256, 64) == pytest.approx(1 / 16, rel=1e-15)
    kn = init_scheme("kaiming_normal", nonlinearity="relu")
    assert kn.std(100, 7) == pytest.approx(math.sqrt(2 / 100), rel=1e-15)
    assert init_scheme("kaiming_normal").sigma_w2(100, 7) == pytest.approx(2 / (1 + 0.0), rel=1e-15)
    assert init_scheme("xavier_uniform").bound(100, 50) == pytest.approx(math.sqrt(6 / 150), rel=1e-15)
    assert init_scheme("xavier_normal", gain=2.0).sigma_w2(80, 80) == pytest.approx(4.0, rel=1e-15)
    assert init_scheme("orthogonal", gain=1.5).sigma_w2(64, 64) == pytest.approx(2.25, rel=1e-15)
    assert init_scheme("lecun_uniform").sigma_w2(33, 99) == pytest.approx(1.0, rel=1e-15)
    assert init_scheme("gaussian", sigma_w2=1.76).sigma_w2(10, 20) == pytest.approx(1.76, rel=1e-15)
    k = init_scheme("kaiming_uniform", mode="fan_out")
    assert k.mode == "fan_out" and k.sigma_w2(100, 400) == pytest.approx(2 * 100 / 400, rel=1e-15)


def test_names_and_aliases():
    assert init_scheme("kaiming_normal_").name == "kaiming_normal"
    assert init_scheme("he_uniform").name == "kaiming_uniform"
    assert init_scheme("glorot_normal").name == "xavier_normal"
    assert init_scheme("default").name == "torch_default"
    assert init_scheme("normal", sigma_w2=2.0).gain == pytest.approx(math.sqrt(2))


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: init_scheme("uniform"), "valid choices"),
        (lambda: init_scheme("xavier_normal", a=1.0), "valid arguments: 'gain'"),
        (lambda: init_scheme("lecun_normal", gain=2.0), "valid arguments: none"),
        (lambda: init_scheme("kaiming_normal", mode="fan_avg"), "mode"),
        (lambda: init_scheme("kaiming_normal", nonlinearity="gelu"), "nonlinearity"),
        (lambda: init_scheme("gaussian", sigma_w2=-1.0), "sigma_w2"),
        (lambda: init_scheme("xavier_uniform", gain=float("nan")), "gain"),
        (lambda: init_scheme("xavier_normal").bound(10, 10), "uniform ensembles only"),
        (lambda: init_scheme("xavier_normal").entry_variance(0, 10), "fan_in"),
        (lambda: init_scheme("orthogonal").sigma_w2(10, 2.5), "fan_out"),
    ],
)
def test_bad_input_raises(call, match):
    with pytest.raises(ValueError, match=match):
        call()


def test_leaky_relu_gain_for_a_huge_slope_does_not_overflow():
    # √(2/(1 + a²)) = √2/hypot(1, a): a = 1e300 gave OverflowError
    assert calculate_gain("leaky_relu", 1e300) == pytest.approx(math.sqrt(2.0) * 1e-300, rel=1e-15)


def test_kaiming_relu_is_exactly_critical():
    """g² is computed without the square root: √2² = 2.0000000000000004 would leave a kaiming ReLU net a hair
    above criticality (χ₁ > 1), where the mean-field length map has no fixed point (q* = ∞)."""
    from rmt_init.theory import jacobian_spectrum, q_star

    for kwargs in ({"nonlinearity": "relu"}, {}):  # torch's default: leaky_relu with a = 0
        assert init_scheme("kaiming_normal", **kwargs).sigma_w2(300, 100) == 2.0
        assert init_scheme("kaiming_uniform", **kwargs).sigma_w2(300, 100) == 2.0
    assert init_scheme("kaiming_normal", nonlinearity="leaky_relu", a=0.5).sigma_w2(10, 10) == 2.0 / 1.25
    assert init_scheme("gaussian", sigma_w2=2.0).sigma_w2(7, 3) == 2.0
    assert init_scheme("torch_default").sigma_w2(9, 9) == 1.0 / 3.0
    law = jacobian_spectrum(5, "relu", init="kaiming_normal")
    assert law.sigma_w2[0] == 2.0 and law.chi1 == 1.0
    assert math.isfinite(q_star("relu", 2.0, 0.0))
