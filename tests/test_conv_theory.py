"""Conv-net Jacobian theory (rmt_init.theory.conv) against exact identities and torch conv nets.

References: block-circulant structure of circular convolutions (docs/derivations.md §9.1), Wick's theorem
for the exact finite-c moments (§9.2), Xiao et al. 2018 (arXiv 1806.05393) for the delta-orthogonal law.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rmt_init.montecarlo import build_conv, chained_jacobian, network_jacobian_spectrum
from rmt_init.montecarlo.ensembles import WeightInit
from rmt_init.theory import (
    ConvJacobianLaw,
    conv_fourier_blocks,
    conv_jacobian_spectrum,
    conv_linear_moments,
    conv_position_spread,
    critical_sigma_w2,
    jacobian_spectrum,
    q_star,
)
from rmt_init.theory.conv import _block_m2


@pytest.mark.parametrize("channels, image", [((3, 5, 2), (5, 4)), ((2, 2, 2, 2), (3, 3))])
def test_fourier_blocks_give_the_jacobian_singular_values_exactly(channels, image):
    """σ(J) = ∪_f σ(K̂_L(f) ⋯ K̂_1(f)) for a linear circular conv net (rectangular blocks too), to 1e-10."""
    spec = WeightInit("explicit", "gaussian", {"scheme": "gaussian"}, 1.0)
    model = build_conv(list(channels), "linear", spec, kernel_size=3, generator=torch.Generator().manual_seed(5))
    x = torch.zeros(1, channels[0], *image, dtype=torch.float64)
    jac = chained_jacobian(model, x, "per_example").detach().reshape(channels[-1] * math.prod(image), -1)
    sv_torch = np.sort(torch.linalg.svdvals(jac).numpy())
    prod = None
    for m in model:
        if isinstance(m, torch.nn.Conv2d):
            blocks = conv_fourier_blocks(m.weight.detach().numpy(), image)
            prod = blocks if prod is None else blocks @ prod
    sv_blocks = np.sort(np.linalg.svd(prod, compute_uv=False).ravel())
    assert sv_blocks.size == sv_torch.size
    np.testing.assert_allclose(sv_blocks, sv_torch, rtol=0, atol=1e-10 * sv_torch.max())


def test_block_recursion_closed_forms():
    """c = 1: μ₂ = E|x|⁴^L = (2 + q)^L (Isserlis: 2v² + |E x²|²); L = 1: 2 + q/c (real Wishart 2 + 1/c,
    complex 2); c → ∞: L + 1 (Fuss–Catalan)."""
    for q in (0.0, 0.3, 1.0):
        for L in (1, 2, 5):
            assert _block_m2(L, 1, q) == pytest.approx((2.0 + q) ** L, rel=1e-14)
        for c in (2, 7):
            assert _block_m2(1, c, q) == pytest.approx(2.0 + q / c, rel=1e-14)
        assert _block_m2(6, 10**6, q) == pytest.approx(7.0, rel=1e-4)


def test_pseudo_ratio_is_one_at_self_conjugate_frequencies_and_moments_scale():
    m = conv_linear_moments(3, 4, (4, 6), kernel_size=3, sigma_w2=1.5)
    f = [2 * np.pi * np.arange(n) / n for n in (4, 6)]
    self_conj = np.outer(np.isclose(np.sin(f[0]), 0, atol=1e-12), np.isclose(np.sin(f[1]), 0, atol=1e-12))  # f ≡ −f
    np.testing.assert_allclose(m.pseudo[self_conj], 1.0, rtol=1e-14)
    assert m.m1 == pytest.approx(1.5**3, rel=1e-15)
    unit = conv_linear_moments(3, 4, (4, 6), kernel_size=3)
    assert m.m2 == pytest.approx(unit.m2 * 1.5**6, rel=1e-14)
    # kernel size 1: p ≡ 1 (real Ginibre at every frequency)
    assert conv_linear_moments(3, 4, 5, kernel_size=1).m2 == pytest.approx(_block_m2(3, 4, 1.0), rel=1e-14)


def test_linear_gaussian_conv_moments_match_torch_at_finite_channels():
    """m1 = 1 and the exact finite-c m2 (c = 4, L = 3, 4×4 images: 4.8425; c → ∞: 4; every block real: 6.33;
    every block complex circular: 4.25) against 1500 torch conv nets. Tolerance 5 SE (networks independent;
    the prediction is exact, no bias term); it excludes the c → ∞ value and both uniform-block formulas."""
    L, c, n = 3, 4, 4
    pred = conv_linear_moments(L, c, n)
    res = network_jacobian_spectrum(L, c, "linear", architecture="conv", image_size=n, kernel_size=3, sigma_w2=1.0,
                                    weights="gaussian", trials=1500, seed=11, layer_stats=False)
    x = res.squared_singular_values
    m1, m2 = x.mean(axis=1), (x**2).mean(axis=1)
    se1, se2 = m1.std(ddof=1) / math.sqrt(m1.size), m2.std(ddof=1) / math.sqrt(m2.size)
    assert abs(m1.mean() - pred.m1) <= 5 * se1
    assert abs(m2.mean() - pred.m2) <= 5 * se2
    tol = 5 * se2
    for wrong in (pred.m2_c_infinite, _block_m2(L, c, 1.0), _block_m2(L, c, 0.0)):
        assert abs(wrong - pred.m2) > tol  # the check resolves these alternatives


def test_delta_orthogonal_tanh_conv_net_follows_the_orthogonal_fully_connected_law():
    """Critical tanh (σ_b² = 0.05), delta-orthogonal kernels, c = 64, 4×4 images, L = 4: the per-example law is
    the fully connected orthogonal one. Variance: the law's plus the input-norm spread over positions (derived),
    tolerance 5 SE + bias bound (L/c)·var (the remaining O(L/c) finite-width correction, not derived here);
    it excludes depth L ± 1 (var differs by var/L) and the Gaussian-kernel law. Third moment: 5 SE + (L/c)·m3."""
    L, c, n, sb = 4, 64, 4, 0.05
    sw = critical_sigma_w2("tanh", sb)
    qs = q_star("tanh", sw, sb)
    res = network_jacobian_spectrum(L, c, "tanh", architecture="conv", image_size=n, kernel_size=3, sigma_w2=sw,
                                    sigma_b2=sb, bias=True, weights="delta_orthogonal",
                                    input_variance=(qs - sb) / sw, trials=4, seed=2, layer_stats=False)
    x = res.squared_singular_values
    law = conv_jacobian_spectrum(L, "tanh", weights="delta_orthogonal", sigma_w2=sw, sigma_b2=sb, channels=c)
    fc = jacobian_spectrum(L, "tanh", weights="orthogonal", sigma_w2=sw, sigma_b2=sb)
    assert isinstance(law, ConvJacobianLaw) and not law.exact
    assert law.var() == fc.var() and law.mean() == fc.mean()
    v = x.var(axis=1)
    v_se = v.std(ddof=1) / math.sqrt(v.size)
    tol = 5 * v_se + (L / c) * law.var()
    # plus the spread of the per-position means from the inputs' χ²_c norms (docs/derivations.md §9.3)
    spread = conv_position_spread(L, sw, sb, (qs - sb) / sw, c)
    assert abs(v.mean() - (law.var() + spread)) <= tol
    assert law.var() / L > tol
    gaussian = conv_jacobian_spectrum(L, "tanh", weights="gaussian", sigma_w2=sw, sigma_b2=sb)
    assert gaussian.var() - law.var() > tol
    # third moment (the law's cdf costs ~10 s per point for smooth φ, so the KS test lives in the validation claim
    # conv_networks): 5 SE + (L/c)·m3 bias bound as for the variance
    m3 = (x**3).mean(axis=1)
    m3_se = m3.std(ddof=1) / math.sqrt(m3.size)
    assert abs(m3.mean() - law.moment(3)) <= 5 * m3_se + (L / c) * law.moment(3)


def test_conv_law_is_the_fully_connected_law_with_the_conv_configuration():
    law = conv_jacobian_spectrum(5, "linear", kernel_size=5, channels=16)
    fc = jacobian_spectrum(5, "linear", weights="gaussian", sigma_w2=1.0)
    for k in (1, 2, 3, 4):
        assert law.moment(k) == pytest.approx(fc.moment(k), rel=1e-13)
    assert law.moment(2) == pytest.approx(6.0, rel=1e-13)  # Fuss–Catalan m2 = L + 1
    assert law.exact and law.summary()["kernel_size"] == 5 and law.channels == 16
    d = conv_jacobian_spectrum(7, "linear", weights="delta_orthogonal", sigma_w2=1.2, padding="zeros")
    assert d.exact and d.mean() == pytest.approx(1.2**7, rel=1e-13) and d.var() == pytest.approx(0.0, abs=1e-12)
    assert not conv_jacobian_spectrum(2, "linear", padding="zeros").exact
    assert conv_jacobian_spectrum(3, "relu").atoms == jacobian_spectrum(3, "relu").atoms


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: conv_jacobian_spectrum(0, "tanh"), "depth"),
        (lambda: conv_jacobian_spectrum(2, "tanh", kernel_size=4), "odd"),
        (lambda: conv_jacobian_spectrum(2, "tanh", weights="orthogonal"), "delta_orthogonal"),
        (lambda: conv_jacobian_spectrum(2, "tanh", weights="cauchy"), "weights"),
        (lambda: conv_jacobian_spectrum(2, "tanh", padding="reflect"), "padding"),
        (lambda: conv_jacobian_spectrum(2, "tanh", channels=0), "channels"),
        (lambda: conv_jacobian_spectrum(2, "tanh", sigma_w2=float("nan")), "sigma_w2"),
        (lambda: conv_linear_moments(2, 4, 0), "image_size"),
        (lambda: conv_linear_moments(2, 4, 5, kernel_size=2), "odd"),
        (lambda: conv_linear_moments(2, 4, 5, sigma_w2=-1.0), "sigma_w2"),
        (lambda: conv_linear_moments(2, 4, (2, 2, 2, 2)), "image_size"),
        (lambda: conv_fourier_blocks(np.ones((2, 2)), 4), "conv weight"),
        (lambda: conv_fourier_blocks(np.ones((2, 2, 2, 2)), 4), "odd"),
        (lambda: conv_fourier_blocks(np.full((2, 2, 3, 3), np.nan), 4), "NaN"),
        (lambda: conv_fourier_blocks(np.ones((2, 2, 3, 3)), (4, 4, 4)), "dimensions"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
