"""Tests for rmt_init.theory.batchnorm.

References: closed forms (π/(π−1), (B−2)/(B−3), the arc-cosine-kernel form of the finite-B ReLU
prediction), mpmath for the tanh large-batch value, a numpy Monte Carlo over the batch sphere for the
quadrature, small torch simulations of deep BN networks, and exact torch batch Jacobians for the
structural zeros.
"""
from __future__ import annotations

import math

import mpmath as mp
import numpy as np
import pytest
import torch

from rmt_init.theory.activations import get_activation
from rmt_init.theory.batchnorm import bn_gradient_growth, bn_structural_zeros, bn_vs_no_bn
from rmt_init.theory.meanfield import critical_sigma_w2

ALL = ["linear", "relu", "leaky_relu", "tanh", "hardtanh", "erf", "sigmoid", "selu", "gelu"]


# --------------------------------------------------------------------------- large batch (docs/derivations.md T20, T22)


def test_large_batch_closed_forms_T20_T22():
    assert bn_gradient_growth("relu") == pytest.approx(math.pi / (math.pi - 1), rel=1e-15)
    assert round(bn_gradient_growth("relu"), 6) == 1.466942
    assert bn_gradient_growth("linear") == 1.0
    mp.mp.dps = 30
    g = lambda f: mp.quad(lambda z: f(z) * mp.exp(-z * z / 2), [-mp.inf, 0, mp.inf]) / mp.sqrt(2 * mp.pi)  # noqa: E731
    ref = g(lambda z: mp.sech(z) ** 4) / g(lambda z: mp.tanh(z) ** 2)
    assert bn_gradient_growth("tanh") == pytest.approx(float(ref), rel=1e-13)
    assert round(bn_gradient_growth("tanh"), 6) == 1.177807


@pytest.mark.parametrize("name", ALL)
def test_growth_is_at_least_one_poincare(name):
    """Var φ(z) ≤ E φ'(z)² (Gaussian Poincaré) ⇒ λ_∞ ≥ 1, with equality only for affine φ."""
    lam = bn_gradient_growth(name)
    if name == "linear":
        assert lam == 1.0
    else:
        assert lam > 1.0
        assert bn_gradient_growth(name, 16) > lam  # finite batches explode faster


# --------------------------------------------------------------------------- finite batch


@pytest.mark.parametrize("batch", [4, 5, 6, 8, 16, 33, 128])
def test_linear_finite_batch_T21(batch):
    assert bn_gradient_growth("linear", batch) == (batch - 2) / (batch - 3)
    # the generic sphere computation (leaky_relu with slope 1 is the identity) reproduces it exactly
    ident = get_activation("leaky_relu", negative_slope=1.0)
    assert bn_gradient_growth(ident, batch) == pytest.approx((batch - 2) / (batch - 3), rel=1e-13)


def _relu_closed_form(b: int) -> float:
    """Finite-B ReLU prediction with the sphere expectations done in closed form.

    For n uniform on {Σn = 0, ‖n‖² = B}, n = √B ξ/‖ξ‖ with ξ ~ N(0, P); scale-free (or degree-2
    homogeneous) functions of two coordinates then reduce to a bivariate Gaussian with correlation
    ρ = −1/(B−1): P(n₁>0, n₂>0) = (π − arccos ρ)/(2π), E[n₁⁺n₂⁺] = (√(1−ρ²) + (π − arccos ρ)ρ)/(2π).
    """
    rho = -1.0 / (b - 1)
    both = (math.pi - math.acos(rho)) / (2 * math.pi)
    kernel = (math.sqrt(1 - rho * rho) + (math.pi - math.acos(rho)) * rho) / (2 * math.pi)
    trace = (b - 2) * 0.5 + (0.5 + (b - 1) * both) / b - 0.5 + (0.5 + (b - 1) * kernel) / b
    alpha = 0.5 - kernel
    return b * trace / (alpha * (b - 3) * (b - 1))


@pytest.mark.parametrize("batch", [4, 5, 7, 16, 32, 128, 1000])
def test_relu_finite_batch_quadrature_vs_closed_form(batch):
    assert bn_gradient_growth("relu", batch) == pytest.approx(_relu_closed_form(batch), rel=1e-13)


def test_finite_batch_tends_to_large_batch_limit():
    for name in ("relu", "tanh", "selu"):
        seq = [bn_gradient_growth(name, b) for b in (4, 8, 16, 64, 256, 2048)]
        assert all(x > y for x, y in zip(seq, seq[1:]))  # decreasing in B
        assert seq[-1] == pytest.approx(bn_gradient_growth(name), rel=20 / 2048)  # O(1/B)


@pytest.mark.parametrize("name, batch", [("tanh", 6), ("hardtanh", 5), ("gelu", 9)])
def test_sphere_quadrature_against_monte_carlo(name, batch):
    """The same formula with the sphere expectations estimated by sampling n (numpy).

    λ = B E[T]/(α (B−3)(B−1)), T = tr(DPD(P − n̂n̂ᵀ)), α = E[A], A = (‖φ(n)‖² − (Σφ(n))²/B)/(B−1);
    the standard error of the ratio is from the delta method; tolerance 5 SE.
    """
    act = get_activation(name)
    rng = np.random.default_rng(7)
    m = 400_000
    xi = rng.standard_normal((m, batch))
    xi -= xi.mean(axis=1, keepdims=True)
    n = math.sqrt(batch) * xi / np.linalg.norm(xi, axis=1, keepdims=True)
    d, f = act.dphi(n), act.phi(n)
    nh = n / math.sqrt(batch)
    t = (
        (1 - 2 / batch) * (d * d).sum(1)
        + d.sum(1) ** 2 / batch**2
        - (d * d * nh * nh).sum(1)
        + (d * nh).sum(1) ** 2 / batch
    )
    a = ((f * f).sum(1) - f.sum(1) ** 2 / batch) / (batch - 1)
    mt, ma = t.mean(), a.mean()
    cov = np.cov(np.vstack([t, a])) / m
    rel_var = cov[0, 0] / mt**2 + cov[1, 1] / ma**2 - 2 * cov[0, 1] / (mt * ma)
    lam_mc = batch * mt / (ma * (batch - 3) * (batch - 1))
    se = lam_mc * math.sqrt(rel_var)
    assert abs(bn_gradient_growth(name, batch) - lam_mc) <= 5 * se, (lam_mc, se)


def test_batch_size_validation():
    for bad in (3, 2, 0, 8.5, True):
        with pytest.raises(ValueError, match="batch_size"):
            bn_gradient_growth("relu", bad)
    with pytest.raises(ValueError, match="infinite for B <= 3"):
        bn_gradient_growth("linear", 3)
    with pytest.raises(ValueError, match="valid choices"):
        bn_gradient_growth("softplus")


# --------------------------------------------------------------------------- torch simulation


def _simulate_growth(act, width, batch, depth, nets, seed):
    """Per-layer ratios ‖∂E/∂x_{l−1}‖²/‖∂E/∂x_l‖² of Linear → BN(train) → φ nets, E = ⟨G, x_L⟩.

    Returns (mean ratio, standard error from the spread of the per-net means). The two layers next to the
    loss are skipped (transient while the gradient covariance relaxes to its leading eigenvector).
    """
    gen = torch.Generator().manual_seed(seed)
    per_net = []
    for _ in range(nets):
        x = torch.randn(batch, width, generator=gen, dtype=torch.float64, requires_grad=True)
        xs = []
        for _ in range(depth):
            w = torch.randn(width, width, generator=gen, dtype=torch.float64) / math.sqrt(width)
            h = x @ w.T
            n = torch.nn.functional.batch_norm(h, None, None, training=True, eps=1e-5)
            x = act(n)
            x.retain_grad()
            xs.append(x)
        (x * torch.randn(batch, width, generator=gen, dtype=torch.float64)).sum().backward()
        norms = torch.stack([v.grad.pow(2).sum() for v in xs])
        per_net.append((norms[:-1] / norms[1:])[: depth - 3].mean().item())
    per_net = np.array(per_net)
    return per_net.mean(), per_net.std(ddof=1) / math.sqrt(nets)


@pytest.fixture
def one_thread():
    # tiny matmuls are far slower with several threads on a loaded 2-core machine
    old = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(old)


@pytest.mark.parametrize(
    "name, act, batch, nets",
    [("linear", lambda t: t, 8, 24), ("relu", torch.relu, 128, 6)],
)
def test_gradient_growth_matches_torch_simulation(one_thread, name, act, batch, nets):
    """Width 512, depth 10. Tolerance = 5 SE + 6/N: the finite-width bias measured for linear B = 8 was
    −0.016, −0.011, −0.001 at N = 256, 512, 1024 (≈ −(4–6)/N) and −0.003 for relu B = 128 at N = 512."""
    width = 512
    mean, se = _simulate_growth(act, width, batch, 10, nets, seed=2024)
    pred = bn_gradient_growth(name, batch)
    assert abs(mean - pred) <= 5 * se + 6.0 / width, (mean, se, pred)


# --------------------------------------------------------------------------- structural zeros


@pytest.mark.parametrize("depth", [1, 2, 3])
@pytest.mark.parametrize("name", ["linear", "tanh"])
def test_structural_zeros_of_exact_batch_jacobian(name, depth):
    width, batch = 5, 7
    gen = torch.Generator().manual_seed(depth)
    ws = [torch.randn(width, width, generator=gen, dtype=torch.float64) / math.sqrt(width) for _ in range(depth)]
    act = (lambda t: t) if name == "linear" else torch.tanh

    def net(flat):
        # eps = 1e−30 (torch requires eps > 0): with the default 1e−5 the rescaling directions are only
        # approximately null (relative singular values ~1e−6 after one layer), see bn_structural_zeros
        x = flat.reshape(batch, width)
        for w in ws:
            x = act(torch.nn.functional.batch_norm(x @ w.T, None, None, training=True, eps=1e-30))
        return x.reshape(-1)

    x0 = torch.randn(batch * width, generator=gen, dtype=torch.float64)
    s = torch.linalg.svdvals(torch.autograd.functional.jacobian(net, x0))
    n_zero = int((s < 1e-10 * s[0]).sum())
    assert n_zero == bn_structural_zeros(width, depth) == 2 * width


def test_structural_zeros_validation():
    assert bn_structural_zeros(512, 0) == 0
    with pytest.raises(ValueError, match="width"):
        bn_structural_zeros(0, 3)
    with pytest.raises(ValueError, match="n_bn_layers"):
        bn_structural_zeros(10, -1)


# --------------------------------------------------------------------------- comparison


def test_bn_vs_no_bn():
    c = bn_vs_no_bn("relu", 2.0, 0.0)
    assert c.no_bn_growth == 1.0 and c.no_bn_depth_scale == math.inf
    assert c.bn_growth == pytest.approx(math.pi / (math.pi - 1), rel=1e-15)
    assert c.bn_depth_scale == pytest.approx(1 / math.log(math.pi / (math.pi - 1)), rel=1e-14)
    sw2 = critical_sigma_w2("tanh", 0.05)
    c = bn_vs_no_bn("tanh", sw2, 0.05, batch_size=32)
    assert c.no_bn_growth == pytest.approx(1.0, abs=1e-12) and c.bn_growth > 1.1 and c.batch_size == 32
    c = bn_vs_no_bn("relu", 1.0, 0.1)  # default nn.Linear-like sub-critical init: gradients vanish without BN
    assert c.no_bn_growth == 0.5 and c.no_bn_depth_scale == pytest.approx(1 / math.log(2))
    with pytest.raises(ValueError, match="batch_size"):
        bn_vs_no_bn("relu", 2.0, 0.0, batch_size=2)
    with pytest.raises(ValueError, match="sigma_w2"):
        bn_vs_no_bn("relu", -2.0, 0.0)


def test_batch_size_beyond_the_accurate_range_is_refused():
    """The finite-B formula cancels in its O(1/B) terms: relu gave 0.44 instead of ≈ 1.467 at B = 1e17."""
    from rmt_init.theory.batchnorm import MAX_BATCH_SIZE

    assert bn_gradient_growth("relu", MAX_BATCH_SIZE) == pytest.approx(bn_gradient_growth("relu"), rel=1e-5)
    for batch in (MAX_BATCH_SIZE + 1, 10**17, 1e300):
        with pytest.raises(ValueError, match="batch_size must be an integer in"):
            bn_gradient_growth("relu", batch)
