"""Tests for rmt_init.theory.activations.

References are independent of the code under test: torch.nn.functional / autograd for φ, φ', φ'';
mpmath.quad at 30 digits for Gaussian integrals; closed forms (arc-cosine kernel, Williams' erf kernel,
Price's theorem) for bivariate expectations.
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

from rmt_init.theory.activations import (
    SELU_ALPHA,
    SELU_SCALE,
    Activation,
    bivariate_gaussian_expectation,
    derivative_moments,
    derivative_sq_law,
    gaussian_expectation,
    get_activation,
)

ALL = ["linear", "relu", "leaky_relu", "tanh", "hardtanh", "erf", "sigmoid", "selu", "gelu"]
mp.mp.dps = 30


def mp_gauss(f, q, kinks=()):
    """E[f(√q z)] with mpmath, the line split at the kinks."""
    s = mp.sqrt(q)
    pts = [-mp.inf] + sorted(mp.mpf(k) / s for k in kinks) + [mp.inf]
    return mp.quad(lambda z: f(s * z) * mp.exp(-z * z / 2), pts) / mp.sqrt(2 * mp.pi)


def mp_dphi(name):
    """φ' in mpmath, for the reference integrals."""
    return {
        "linear": lambda x: mp.mpf(1),
        "relu": lambda x: mp.mpf(1) if x > 0 else mp.mpf(0),
        "leaky_relu": lambda x: mp.mpf(1) if x > 0 else mp.mpf("0.01"),
        "tanh": lambda x: mp.sech(x) ** 2,
        "hardtanh": lambda x: mp.mpf(1) if -1 < x < 1 else mp.mpf(0),
        "erf": lambda x: 2 / mp.sqrt(mp.pi) * mp.exp(-x * x),
        "sigmoid": lambda x: mp.exp(-x) / (1 + mp.exp(-x)) ** 2,
        "selu": lambda x: mp.mpf(SELU_SCALE) if x > 0 else mp.mpf(SELU_SCALE) * mp.mpf(SELU_ALPHA) * mp.exp(x),
        "gelu": lambda x: mp.ncdf(x) + x * mp.npdf(x),
    }[name]


# --------------------------------------------------------------------------- Activation objects


def torch_fn(act: Activation):
    import torch.nn.functional as F

    return {
        "linear": lambda t: t,
        "relu": F.relu,
        "leaky_relu": lambda t: F.leaky_relu(t, act.param("negative_slope")),
        "tanh": torch.tanh,
        "hardtanh": lambda t: F.hardtanh(t, act.param("min_val"), act.param("max_val")),
        "erf": torch.erf,
        "sigmoid": torch.sigmoid,
        "selu": F.selu,
        "gelu": F.gelu,
    }[act.name]


@pytest.mark.parametrize("name", ALL)
def test_phi_and_derivatives_match_torch(name):
    act = get_activation(name)
    x = np.concatenate([np.linspace(-6, 6, 241), [-30.0, -1e-3, 1e-3, 30.0]])
    x = x[~np.isin(x, act.kinks)]  # derivatives at kinks are conventions, checked separately
    t = torch.tensor(x, dtype=torch.float64, requires_grad=True)
    y = torch_fn(act)(t)
    (g,) = torch.autograd.grad(y.sum(), t, create_graph=True)
    np.testing.assert_allclose(act.phi(x), y.detach().numpy(), rtol=1e-14, atol=1e-15)
    np.testing.assert_allclose(act.dphi(x), g.detach().numpy(), rtol=1e-13, atol=1e-15)
    if g.requires_grad:
        (h,) = torch.autograd.grad(g.sum(), t)
        np.testing.assert_allclose(act.d2phi(x), h.numpy(), rtol=1e-12, atol=1e-14)
    else:  # piecewise linear: φ'' = 0 a.e.
        np.testing.assert_array_equal(act.d2phi(x), 0.0)


def test_kink_conventions_follow_torch_autograd():
    for name, params in [("relu", {}), ("leaky_relu", {"negative_slope": 0.2}), ("hardtanh", {}), ("selu", {})]:
        act = get_activation(name, **params)
        x = np.array(act.kinks)
        t = torch.tensor(x, requires_grad=True)
        (g,) = torch.autograd.grad(torch_fn(act)(t).sum(), t)
        np.testing.assert_allclose(act.dphi(x), g.numpy(), rtol=1e-15)


def test_parameters_defaults_aliases_and_kinks():
    assert get_activation("leaky_relu").param("negative_slope") == 0.01
    assert get_activation("hardtanh").kinks == (-1.0, 1.0)
    assert get_activation("hard_tanh") == get_activation("hardtanh")
    assert get_activation("identity").name == "linear"
    assert get_activation("ReLU").name == "relu"
    ht = get_activation("hardtanh", min_val=-2.0, max_val=0.5)
    assert ht.kinks == (-2.0, 0.5) and ht.kwargs == {"max_val": 0.5, "min_val": -2.0}
    assert get_activation(ht, max_val=3.0).kinks == (-2.0, 3.0)
    assert get_activation(ht) is ht
    assert get_activation("tanh").kinks == () and get_activation("selu").kinks == (0.0,)
    assert hash(get_activation("relu")) == hash(Activation("relu"))
    assert get_activation("relu").is_homogeneous and not get_activation("tanh").is_homogeneous


@pytest.mark.parametrize(
    "name, params, match",
    [
        ("softplus", {}, "valid choices"),
        ("relu", {"negative_slope": 0.1}, "valid parameters: none"),
        ("leaky_relu", {"slope": 0.1}, "negative_slope"),
        ("leaky_relu", {"negative_slope": float("nan")}, "finite"),
        ("hardtanh", {"min_val": 1.0, "max_val": 1.0}, "min_val < max_val"),
        (3, {}, "valid names"),
    ],
)
def test_bad_activation_raises(name, params, match):
    with pytest.raises(ValueError, match=match):
        get_activation(name, **params)


@pytest.mark.parametrize("name", ALL)
def test_sup_dphi_sq_is_the_supremum(name):
    act = get_activation(name)
    x = np.linspace(-10, 10, 200001)
    assert np.max(act.dphi(x) ** 2) <= act.sup_dphi_sq * (1 + 1e-12)
    assert np.max(act.dphi(x) ** 2) >= act.sup_dphi_sq * (1 - 1e-8)


# --------------------------------------------------------------------------- Gaussian expectations

SMOOTH_AND_KINKED = [
    ("tanh", lambda x: np.tanh(x) ** 2, lambda x: mp.tanh(x) ** 2, ()),
    ("sigmoid", lambda x: 1 / (1 + np.exp(-x)), lambda x: 1 / (1 + mp.exp(-x)), ()),
    ("gelu", lambda x: get_activation("gelu").phi(x) ** 2, lambda x: (x * mp.ncdf(x)) ** 2, ()),
    ("relu2", lambda x: np.maximum(x, 0) ** 2, lambda x: max(x, 0) ** 2, (0.0,)),
    ("hardtanh", lambda x: np.clip(x, -1, 1) ** 2, lambda x: min(max(x, -1), 1) ** 2, (-1.0, 1.0)),
    (
        "selu",
        lambda x: get_activation("selu").phi(x),
        lambda x: SELU_SCALE * x if x > 0 else SELU_SCALE * SELU_ALPHA * mp.expm1(x),
        (0.0,),
    ),
    ("step", lambda x: (x > 0.3).astype(float), lambda x: mp.mpf(1) if x > 0.3 else mp.mpf(0), (0.3,)),
]


@pytest.mark.parametrize("q", [0.01, 0.57, 3.0, 400.0])
@pytest.mark.parametrize("label, f, fmp, kinks", SMOOTH_AND_KINKED)
def test_gaussian_expectation_matches_mpmath(label, f, fmp, kinks, q):
    got = gaussian_expectation(f, q, kinks)
    ref = float(mp_gauss(fmp, q, kinks))
    assert abs(got - ref) <= 1e-13 * max(1.0, abs(ref)), (label, q, got, ref)


def test_gaussian_expectation_kinked_closed_forms():
    # E[relu(√q z)^2] = q/2; E[relu'(...)^2]/Var relu = π/(π−1) (the ratio where Gauss–Hermite fails)
    relu = get_activation("relu")
    assert gaussian_expectation(lambda x: relu.phi(x) ** 2, 2.0, (0,)) == pytest.approx(1.0, rel=1e-15)
    m = gaussian_expectation(relu.phi, 1.0, relu.kinks)
    assert m == pytest.approx(1 / math.sqrt(2 * math.pi), rel=1e-14)
    ratio = gaussian_expectation(lambda x: relu.dphi(x) ** 2, 1.0, (0,)) / (0.5 - m * m)
    assert ratio == pytest.approx(math.pi / (math.pi - 1), rel=1e-14)


def test_gaussian_expectation_validates():
    with pytest.raises(ValueError, match="q must be"):
        gaussian_expectation(np.tanh, 0.0)
    with pytest.raises(ValueError, match="q must be"):
        gaussian_expectation(np.tanh, float("nan"))
    with pytest.raises(ValueError, match="kinks"):
        gaussian_expectation(np.tanh, 1.0, kinks=(float("inf"),))


def _arccos_kernel(c):
    return (math.sqrt((1 - c) * (1 + c)) + (math.pi - math.acos(c)) * c) / (2 * math.pi)


@pytest.mark.parametrize("c", [-1.0, -0.7, 0.0, 0.4, 0.95, 1 - 1e-6, 1 - 1e-10, 1.0])
@pytest.mark.parametrize("q", [0.3, 1.0, 40.0])
def test_bivariate_closed_forms(q, c):
    relu = lambda x: np.maximum(x, 0)  # noqa: E731
    step = lambda x: (x > 0).astype(float)  # noqa: E731
    got = bivariate_gaussian_expectation(relu, relu, q, q * c, q, (0,), (0,))
    assert got == pytest.approx(q * _arccos_kernel(c), rel=1e-12, abs=1e-14 * q)
    got = bivariate_gaussian_expectation(step, step, q, q * c, q, (0,), (0,))
    # P(u1 > 0, u2 > 0) = (π − arccos c)/(2π); q*c is rounded, which moves the answer by ≲ 1e−16/√(1−c²)
    tol = 1e-13 + 1e-15 / math.sqrt(max(1 - c * c, 1e-30))
    assert got == pytest.approx((math.pi - math.acos(c)) / (2 * math.pi), abs=tol)
    from scipy.special import erf

    got = bivariate_gaussian_expectation(erf, erf, q, q * c, 2 * q)  # unequal variances
    ref = 2 / math.pi * math.asin(2 * q * c / math.sqrt((1 + 2 * q) * (1 + 4 * q)))  # Williams 1997
    assert got == pytest.approx(ref, abs=1e-14)


def test_bivariate_price_theorem_for_hardtanh():
    """∂/∂q12 E[φ(u1)φ(u2)] = E[φ'(u1)φ'(u2)] (Price 1958), checked by a central difference."""
    ht = get_activation("hardtanh", min_val=-0.8, max_val=1.3)
    q11, q22, q12, h = 1.1, 0.7, 0.35, 1e-4
    f = lambda c: bivariate_gaussian_expectation(ht.phi, ht.phi, q11, c, q22, ht.kinks, ht.kinks)  # noqa: E731
    fd = (f(q12 + h) - f(q12 - h)) / (2 * h)
    d = bivariate_gaussian_expectation(ht.dphi, ht.dphi, q11, q12, q22, ht.kinks, ht.kinks)
    assert fd == pytest.approx(d, abs=1e-8)  # O(h²) ≈ 1e−8 · third derivative


def test_bivariate_reduces_to_univariate():
    selu = get_activation("selu")
    one = lambda x: np.ones_like(x)  # noqa: E731
    a = bivariate_gaussian_expectation(selu.phi, one, 0.8, 0.3, 1.2, (0,), ())
    b = gaussian_expectation(selu.phi, 0.8, (0,))
    assert a == pytest.approx(b, abs=1e-14)
    # symmetry: swapping the roles of u1 and u2
    ht = get_activation("hardtanh")
    a = bivariate_gaussian_expectation(selu.phi, ht.phi, 0.8, 0.3, 1.2, (0,), ht.kinks)
    b = bivariate_gaussian_expectation(ht.phi, selu.phi, 1.2, 0.3, 0.8, ht.kinks, (0,))
    assert a == pytest.approx(b, abs=1e-13)


def test_bivariate_validates():
    with pytest.raises(ValueError, match="positive semi-definite"):
        bivariate_gaussian_expectation(np.tanh, np.tanh, 1.0, 1.5, 1.0)
    with pytest.raises(ValueError, match="q22"):
        bivariate_gaussian_expectation(np.tanh, np.tanh, 1.0, 0.0, -1.0)


# --------------------------------------------------------------------------- derivative moments


@pytest.mark.parametrize("name", ALL)
@pytest.mark.parametrize("q", [0.1, 1.0, 3.0])
def test_derivative_moments_match_mpmath(name, q):
    act = get_activation(name)
    d = mp_dphi(name)
    for k in (1, 2, 3):
        ref = float(mp_gauss(lambda x: d(x) ** (2 * k), q, act.kinks))
        assert derivative_moments(name, q, k) == pytest.approx(ref, rel=1e-13), (name, q, k)
    assert derivative_moments(name, q, 0) == 1.0


def test_derivative_moment_closed_forms():
    # erf: (4/π)^k / sqrt(1 + 4kq) — docs/derivations.md T14: μ2/μ1² = 5/3 at q = 1
    mu1, mu2 = derivative_moments("erf", 1.0, 1), derivative_moments("erf", 1.0, 2)
    assert mu2 / mu1**2 == pytest.approx(5 / 3, rel=1e-15)
    # hard-tanh: p = erf(1/√(2q)); docs/derivations.md T15 at q = 1/4: p = erf(√2) = 0.954500
    assert derivative_moments("hardtanh", 0.25, 1) == pytest.approx(math.erf(math.sqrt(2)), rel=1e-15)
    assert round(derivative_moments("hardtanh", 0.25, 1), 6) == 0.954500
    assert derivative_moments("leaky_relu", 2.0, 2) == pytest.approx((1 + 0.01**4) / 2, rel=1e-15)
    # selu at large q: (λα)^{2k} e^{2k²q} Φ(−2k√q) must not overflow
    big = derivative_moments("selu", 1e4, 3)
    lam, la = mp.mpf(SELU_SCALE), mp.mpf(SELU_SCALE) * mp.mpf(SELU_ALPHA)
    ref = lam**6 / 2 + la**6 * mp.exp(18 * mp.mpf(10) ** 4) * mp.ncdf(-6 * mp.mpf(100))
    assert big == pytest.approx(float(ref), rel=1e-14)


def test_derivative_moments_validate():
    with pytest.raises(ValueError, match="q must be"):
        derivative_moments("tanh", -1.0)
    with pytest.raises(ValueError, match="k must be"):
        derivative_moments("tanh", 1.0, -1)
    with pytest.raises(ValueError, match="valid choices"):
        derivative_moments("swish", 1.0)


# --------------------------------------------------------------------------- law of φ'(h)²


def test_law_atoms():
    assert derivative_sq_law("relu", 2.0).atoms == ((0.0, 0.5), (1.0, 0.5))
    assert derivative_sq_law("linear", 2.0).atoms == ((1.0, 1.0),)
    a = 0.2
    atoms = derivative_sq_law(get_activation("leaky_relu", negative_slope=a), 1.0).atoms
    assert atoms == ((a**2, 0.5), (1.0, 0.5))
    assert derivative_sq_law(get_activation("leaky_relu", negative_slope=-1.0), 1.0).atoms == ((1.0, 1.0),)
    law = derivative_sq_law("hardtanh", 0.25)
    p = math.erf(math.sqrt(2))
    assert law.atoms[0][0] == 0.0 and law.atoms[1][0] == 1.0
    assert law.atoms[1][1] == pytest.approx(p, rel=1e-15)
    assert law.atoms[0][1] == pytest.approx(math.erfc(math.sqrt(2)), rel=1e-14)  # no cancellation
    law = derivative_sq_law("selu", 1.0)
    assert law.atoms == ((SELU_SCALE**2, 0.5),)
    assert law.continuous_mass == pytest.approx(0.5, abs=1e-15)
    assert law.max_value == pytest.approx((SELU_SCALE * SELU_ALPHA) ** 2)
    assert np.all(law.nodes < law.max_value) and np.all(law.nodes > 0)
    for name in ("tanh", "erf", "sigmoid", "gelu"):
        law = derivative_sq_law(name, 0.7)
        assert law.atoms == () and law.weights.sum() == pytest.approx(1.0, abs=1e-15)
        assert law.nodes.max() <= law.max_value * (1 + 1e-15)
        assert not law.nodes.flags.writeable


@pytest.mark.parametrize("name", ["tanh", "erf", "sigmoid", "gelu", "selu"])
@pytest.mark.parametrize("q", [0.05, 1.0, 5.0])
def test_law_rule_integrates_smooth_functions(name, q):
    """The rule alone (expect) reproduces independent mpmath moments E[d^k] and E[exp(−d)]."""
    law = derivative_sq_law(name, q)
    act = get_activation(name)
    d = mp_dphi(name)
    for k in (1, 2, 4):
        ref = float(mp_gauss(lambda x: d(x) ** (2 * k), q, act.kinks))
        assert law.expect(lambda v: v**k) == pytest.approx(ref, rel=1e-13)
        assert law.moment(k) == pytest.approx(ref, rel=1e-13)
    ref = float(mp_gauss(lambda x: mp.exp(-d(x) ** 2), q, act.kinks))
    assert law.expect(lambda v: np.exp(-v)) == pytest.approx(ref, rel=1e-13)


def test_mgf_closed_forms_and_series():
    u = np.array([[0.3 + 0.2j, -1.5], [0.1j, 0.05 - 0.4j]])
    relu = derivative_sq_law("relu", 1.0).mgf(u)
    np.testing.assert_allclose(relu, 0.5 * u / (1 - u), rtol=1e-15)
    assert relu.shape == u.shape and relu.dtype == complex
    # erf: ψ(u) = Σ_k μ_k u^k with μ_k = (4/π)^k/√(1+4kq) (converges for |u| < π/4)
    q, uu = 0.6, np.array([0.2 + 0.1j, -0.3j, 0.35, -0.5 + 0.2j])
    series = sum((4 / math.pi) ** k / math.sqrt(1 + 4 * k * q) * uu**k for k in range(1, 200))
    np.testing.assert_allclose(derivative_sq_law("erf", q).mgf(uu), series, rtol=1e-13)
    # selu: closed-form moments λ^{2k}/2 + (λα)^{2k} e^{2k²q}Φ(−2k√q)
    q, uu = 0.5, np.array([0.05 + 0.02j, -0.1j, 0.12])
    mus = [derivative_moments("selu", q, k) for k in range(1, 120)]
    series = sum(m * uu ** (k + 1) for k, m in enumerate(mus))
    np.testing.assert_allclose(derivative_sq_law("selu", q).mgf(uu), series, rtol=1e-13)


def test_mgf_tanh_matches_mpmath_off_the_support():
    """Documented accuracy: ~1e−13 while 1/u is ≳ 0.1 from the support [0, 1] (default panel_width)."""
    q = 1.3
    law = derivative_sq_law("tanh", q)
    s = mp.sqrt(q)
    for z in (2.0 + 1.0j, 0.5 - 1.0j, 0.5 - 0.2j, 0.5 + 0.1j, 1.2 - 0.05j, -0.1 + 0.0j):
        u = 1 / z

        def integrand(t, u=u):
            d = mp.sech(s * t) ** 4
            return u * d / (1 - u * d) * mp.exp(-t * t / 2)

        ref = 2 * mp.quad(integrand, [0, 0.5, 1, 2, 4, mp.inf]) / mp.sqrt(2 * mp.pi)
        assert complex(law.mgf(u)) == pytest.approx(complex(ref), rel=1e-12), z


def test_gaussian_expectation_names_a_bad_function_or_kinks():
    from rmt_init.theory.activations import gaussian_expectation

    with pytest.raises(TypeError, match="f must be a vectorised function"):
        gaussian_expectation(None)
    with pytest.raises(TypeError, match="kinks must be"):
        gaussian_expectation(np.tanh, 1.0, kinks=None)
    with pytest.raises(ValueError, match="f must be finite"):
        gaussian_expectation(lambda x: np.where(x > 5, np.inf, x), 1.0)  # inf in the tail
