"""BN batch Jacobian: public names, the largest eigenvalue's extreme-value law and the per-example block law
(docs/derivations.md §11.8–§11.9)."""
from __future__ import annotations

import math

import numpy as np
import pytest

import rmt_init
from rmt_init import theory


def test_public_names_import() -> None:
    from rmt_init.theory import BNBatchJacobianLaw, BNGenericJacobianLaw, ChannelLawS  # noqa: F401
    from rmt_init.theory import bn_spectrum

    for name in bn_spectrum.__all__:
        assert getattr(theory, name) is getattr(bn_spectrum, name)
        assert name in theory.__all__
    assert issubclass(BNGenericJacobianLaw, BNBatchJacobianLaw)
    assert rmt_init.bn_jacobian_spectrum is bn_spectrum.bn_jacobian_spectrum


# ------------------------------------------------------------------ the largest eigenvalue (§11.8)
@pytest.fixture(scope="module")
def law_b8_depth1():
    return theory.bn_jacobian_spectrum(1, "linear", 8)


@pytest.mark.parametrize("width", [10_000, 100_000])
def test_largest_eigenvalue_matches_channel_order_statistics(law_b8_depth1, width: int) -> None:
    """Depth 1, linear φ: the tail eigenvalues are those of single channels, B − 2 equal ones T + m₁(ν) + O(m₂(ν)/T)
    each, T = κ/X the channel's 1/s² (κ = B/q₀), X ~ χ²_{B−1} — a spike on a free bulk of mean m₁(ν), second order
    m₂(ν)/T. So the median of λ_max over N channels is ``T_med + m₁(ν)``, ``T_med = κ/F⁻¹_X(1 − 2^{−1/N})``, up to
    2·m₂(ν)/T_med; the law's ``largest_eigenvalue`` gets it from its own sf and θ = 1/(B − 2), independently."""
    from scipy.stats import chi2

    b = 8
    law = law_b8_depth1
    assert law.extremal_index == pytest.approx(1.0 / (b - 2), rel=1e-15)
    t_med = b / chi2.ppf(-math.expm1(-math.log(2.0) / width), b - 1)
    m1 = (b - 2) / (b - 1) * b / (b - 3)  # ν's mean and second moment (κ = B, q₀ = 1)
    m2 = (b - 2) / (b - 1) * b * b / ((b - 3) * (b - 5))
    top = law.largest_eigenvalue(width)
    assert abs(top.median() - (t_med + m1)) <= 2.0 * m2 / t_med
    q = np.array([0.1, 0.5, 0.9])
    np.testing.assert_allclose(top.cdf(top.ppf(q)), q, rtol=1e-8)


def test_sf_tail_from_the_top(law_b8_depth1) -> None:
    """sf in the tail is the density integrated from x up — here by 16-point Gauss–Legendre on 240 panels of width
    1/4 in ln x over 60 e-folds (the x^(−7/2) tail leaves e^(−210) beyond; a rule and panels unlike the law's own
    8-point quarter decades) — not 1 − cdf (which carried the table's error near the lower edge into the tail)."""
    law = law_b8_depth1
    t, w = np.polynomial.legendre.leggauss(16)
    for x in (20.0, 200.0):
        ends = np.linspace(math.log(x), math.log(x) + 60.0, 241)
        half = 0.5 * np.diff(ends)
        xs = np.exp((0.5 * (ends[:-1] + ends[1:]))[:, None] + half[:, None] * t[None, :])
        direct = float(((xs * np.asarray(law.pdf(xs.ravel())).reshape(xs.shape)) * w).sum(axis=1) @ half)
        assert float(law.sf(x)) == pytest.approx(direct, rel=1e-7)  # both rules resolve the smooth tail to ~1e−9
        assert float(law.isf(law.sf(x))) == pytest.approx(x, rel=1e-9)


def test_largest_eigenvalue_bad_input(law_b8_depth1) -> None:
    with pytest.raises(ValueError, match="width"):
        law_b8_depth1.largest_eigenvalue(0)
    with pytest.raises(ValueError, match="q"):
        law_b8_depth1.largest_eigenvalue(64).ppf(1.5)


def test_relu_extremal_index_between_bounds() -> None:
    """relu: a channel's cluster has min(k, B − 2) unequal eigenvalues, so 1/(B − 2) < θ < 1."""
    from rmt_init.theory.activations import get_activation
    from rmt_init.theory.bn_spectrum import _cluster_index

    b = 8
    for output in (True, False):
        top, total = _cluster_index(get_activation("relu"), b, output, 4000, 1)
        assert 1.0 / (b - 2) < top / total < 1.0
    lin_top, lin_total = _cluster_index(get_activation("linear"), b, True, 1000, 1)
    assert lin_top / lin_total == pytest.approx(1.0 / (b - 2), rel=1e-9)


# ------------------------------------------------------------------ the per-example block (§11.9)
def _beta_moment(p: float, q: float, k: int) -> float:
    return math.prod((p + i) / (p + q + i) for i in range(k))


@pytest.mark.parametrize("batch", [6, 8, 16])
def test_per_example_depth_one_moments(batch: int) -> None:
    """Depth 1: ``J_bb J_bbᵀ = K W Wᵀ K``, K² = (B/(q₀X))(d/B)² t², t ~ Beta((B − 2)/2, 1/2), X ~ χ²_{B−1}, free from
    MP(1): m₁ = E K² (= bn_per_example_mean, an independent sphere-moment route), m₂ = E K⁴ + (E K²)²
    (non-crossing partitions with MP(1)'s m₁ = 1, m₂ = 2). The nodes' 2-point rules keep moments 0–3 per bin
    except for the ppf; relative error ≲ 1e−6 in m₂."""
    b = batch
    d = b - 1.0
    law = theory.bn_jacobian_spectrum(1, "linear", b, block="per_example")
    p, q = (b - 2) / 2.0, 0.5
    ek2 = b / (b - 3.0) * (d / b) ** 2 * _beta_moment(p, q, 2)
    assert law.moment(1) == pytest.approx(float(theory.bn_per_example_mean(1, b)), rel=1e-12)
    assert law.moment(1) == pytest.approx(ek2, rel=1e-12)
    if b > 5:
        ek4 = b * b / ((b - 3.0) * (b - 5.0)) * (d / b) ** 4 * _beta_moment(p, q, 4)  # E[1/X²] = 1/((B − 3)(B − 5))
        assert law.moment(2) == pytest.approx(ek4 + ek2 * ek2, rel=1e-6)
    relu = theory.bn_jacobian_spectrum(1, "relu", b, block="per_example")
    assert relu.atoms == ((0.0, pytest.approx(0.5, abs=1e-12)),)  # φ'(n_b) = 0 for the negative half (n → −n)
    assert relu.moment(1) == pytest.approx(0.5 * ek2, rel=1e-9)


@pytest.mark.parametrize("depth", [2, 3])
def test_per_example_deep_mean_is_exact(depth: int) -> None:
    """Depth ≥ 2 (linear) is the exact law of docs/derivations.md §11.10, built from its own recursion: its mean
    must equal bn_per_example_mean's two-term recursion (§11.9), an independent route to the same number."""
    law = theory.bn_jacobian_spectrum(depth, "linear", 8, block="per_example")
    assert law.moment(1) == pytest.approx(float(theory.bn_per_example_mean(depth, 8)), rel=1e-12)


def test_per_example_depth_one_against_torch() -> None:
    """KS distance between torch's per-example blocks (``batchnorm="train_diagonal"``; B = 8, depth 1, N = 96, 12
    networks: 8 blocks each) and the exact depth-1 law: tolerance 5 SE (spread of per-network empirical cdfs) + 1/N
    (finite-N bias bound: measured KS·N ≤ 1.0 at depth 1, B = 4–16, N = 128–256, docs/derivations.md §11.9). Effect:
    the KS distance to the BN-free block's law MP(1) scaled to the same mean, larger than the tolerance."""
    from rmt_init.compare import compare
    from rmt_init.montecarlo import network_jacobian_spectrum
    from rmt_init.theory import marchenko_pastur

    b, n = 8, 96
    law = theory.bn_jacobian_spectrum(1, "linear", b, block="per_example")
    res = network_jacobian_spectrum(1, n, "linear", batchnorm="train_diagonal", batch_size=b, trials=12, seed=11,
                                    device="cpu")
    x = np.asarray(res.squared_singular_values, float)
    cmp = compare(law, x)
    per_net = np.array([compare(law, row).ks for row in x])
    se = float(per_net.std(ddof=1)) / math.sqrt(len(per_net))
    tol = 5.0 * se + 1.0 / n
    grid = np.geomspace(1e-4, 1e2, 2000)
    mp = marchenko_pastur(1.0, law.moment(1))
    effect = float(np.max(np.abs(law.cdf(grid, method="table") - mp.cdf(grid))))
    assert tol < effect
    assert cmp.ks <= tol


def test_block_choice_errors() -> None:
    with pytest.raises(ValueError, match="batch.*per_example|per_example.*batch"):
        theory.bn_jacobian_spectrum(1, "linear", 8, block="diagonal")
    with pytest.raises(ValueError, match="gelu"):  # depth ≥ 2: linear, relu, tanh only (§11.10–11.11)
        theory.bn_jacobian_spectrum(2, "gelu", 8, block="per_example")
    block = theory.bn_jacobian_spectrum(1, "linear", 8, block="per_example")
    with pytest.raises(ValueError, match="block='batch'"):
        block.largest_eigenvalue(64)
    with pytest.raises(ValueError, match="block='batch'"):
        block.extremal_index  # noqa: B018
