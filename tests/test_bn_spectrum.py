"""Batch Jacobian spectrum of linear batch-normalised networks (docs/derivations.md §11).

References used here are independent of the S-series code under test:

* m1: ``bn_gradient_growth("linear", B)^L / q₀`` (Yang et al. 2019's (B − 2)/(B − 3) per layer; the first layer
  sees the input Gram q₀ I).
* m2, m3: the free product's moments from the sum over non-crossing partitions, layer by layer:
  ``m2(ab) = κ2(a) m1(b)² + κ1(a)² m2(b)``, ``m3(ab) = κ3(a) m1(b)³ + κ1(a)³ m3(b) + 3 κ2(a) κ1(a) m2(b) m1(b)``
  (Nica & Speicher 2006, Lecture 14, with the Kreweras complement of NC(3)), κ the free cumulants; the factor
  moments are E[(κ/χ²_n)^k] from scipy's χ² quadrature and the Marchenko–Pastur (Catalan) numbers.
* ψ of the channel factor: mpmath quadrature of E[X/(X − uκ)] off the cut.
* the operator-valued (M_B) recursion of ``bn_jacobian_moments`` against the scalar free product for linear φ
  (two independent routes to m2), and its m1 per layer against ``bn_gradient_growth`` for relu/tanh.
* Monte Carlo: the engine's train-mode BN networks (``batchnorm="train"``, structural zeros kept).
"""
from __future__ import annotations

import math

import mpmath
import numpy as np
import pytest
from scipy import integrate, stats

from rmt_init.montecarlo import network_jacobian_spectrum
from rmt_init.montecarlo._device import limit_threads
from rmt_init.theory import bn_gradient_growth
from rmt_init.theory.bn_spectrum import InverseChiSquareS, bn_jacobian_moments, bn_jacobian_spectrum


def _inverse_chi2_moment(n: int, k: int) -> float:
    """E[X^{−k}], X ~ χ²_n, by quadrature (independent of the product formula in the code)."""
    return integrate.quad(lambda x: x ** (-k) * stats.chi2.pdf(x, n), 0, np.inf, limit=200)[0]


def _free_product_moments(a: list[float], b: list[float]) -> list[float]:
    """(m1, m2, m3) of a ⊠ b from the non-crossing partition sums (module docstring)."""
    k1, k2, k3 = a[0], a[1] - a[0] ** 2, a[2] - 3 * a[0] * a[1] + 2 * a[0] ** 3
    m1 = k1 * b[0]
    m2 = k2 * b[0] ** 2 + k1**2 * b[1]
    m3 = k3 * b[0] ** 3 + k1**3 * b[2] + 3 * k2 * k1 * b[1] * b[0]
    return [m1, m2, m3]


def _reference_moments(batch: int, depth: int, q0: float) -> list[float]:
    n = batch - 1
    weight = (batch - 2) / (batch - 1)
    mp = [1.0, 2.0, 5.0]
    law = None
    for layer in range(depth):
        kappa = batch / q0 if layer == 0 else batch - 1
        nu = [weight * kappa**k * _inverse_chi2_moment(n, k) for k in (1, 2, 3)]
        step = _free_product_moments(nu, mp)
        law = step if law is None else _free_product_moments(law, step)
    return [(batch - 1) / batch * m for m in law]


@pytest.mark.parametrize("batch, depth, q0", [(8, 1, 1.0), (8, 4, 1.0), (16, 3, 0.5), (64, 3, 1.0), (10, 2, 2.0)])
def test_moments_match_noncrossing_partition_sums(batch, depth, q0):
    law = bn_jacobian_spectrum(depth, batch_size=batch, input_variance=q0)
    ref = _reference_moments(batch, depth, q0)
    # m1 against Yang et al.'s per-layer growth, to rounding
    assert law.mean() == pytest.approx(bn_gradient_growth("linear", batch) ** depth / q0, rel=1e-12)
    # quadrature of the χ² moments is good to ~1e-10 relative
    for k in (1, 2, 3):
        assert law.moment(k) == pytest.approx(ref[k - 1], rel=1e-8)


@pytest.mark.parametrize("batch", [4, 5, 6, 7, 8, 9, 33])
def test_moments_exact_and_infinite_beyond_tail_exponent(batch):
    law = bn_jacobian_spectrum(3, batch_size=batch)
    assert law.moment(1, method="exact") == pytest.approx(float((batch - 2) / (batch - 3)) ** 3, rel=1e-14)
    # E[(1/χ²_{B−1})^k] < ∞ iff k < (B − 1)/2: the law's k-th moment is infinite from there on
    for k in range(1, 5):
        if 2 * k < batch - 1:
            assert math.isfinite(law.moment(k))
        else:
            with pytest.raises(ValueError, match="infinite"):
                law.moment(k)


def test_weight_variance_cancels_and_structural_zeros():
    a = bn_jacobian_spectrum(2, batch_size=8, weight_variance=1.0)
    b = bn_jacobian_spectrum(2, batch_size=8, weight_variance=3.0)
    assert a.moment(3) == b.moment(3)
    for batch in (4, 8, 64):
        law = bn_jacobian_spectrum(2, batch_size=batch)
        assert law.atoms == ((0.0, pytest.approx(2.0 / batch, abs=1e-15)),)
        assert law.support == (0.0, math.inf)


@pytest.mark.parametrize("batch, kappa", [(4, 4.0), (8, 7.0), (64, 63.0)])
def test_channel_factor_psi_matches_mpmath(batch, kappa):
    factor = InverseChiSquareS(batch, kappa)
    a = (batch - 1) / 2
    u = np.array([-50.0, 0.05 - 0.02j, 2.0 - 0.5j, 1e-4 - 1e-5j])
    value, slope = factor.one_plus_psi(u)
    for ui, vi, si in zip(u, value, slope):
        z = mpmath.mpc(ui.real, ui.imag) * kappa
        pts = sorted({0, abs(z) / 2, abs(z), 2 * abs(z), 1, 10}) + [mpmath.inf]  # break points at the near-pole
        dens = lambda x: x ** (a - 1) * mpmath.exp(-x / 2) / (2**a * mpmath.gamma(a))  # noqa: E731
        ref = 1 / (batch - 1) + (batch - 2) / (batch - 1) * mpmath.quad(lambda x: x * dens(x) / (x - z), pts)
        ref_slope = (batch - 2) / (batch - 1) * mpmath.quad(lambda x: x * dens(x) * z / (x - z) ** 2, pts)
        assert abs(vi - complex(ref)) <= 1e-12 * abs(complex(ref))
        assert abs(si - complex(ref_slope)) <= 1e-11 * max(abs(complex(ref_slope)), 1e-3)


def test_channel_factor_on_the_cut_has_the_chi2_density_as_imaginary_part():
    # from Im u < 0: Im E[X/(X − ζ)] = −π ζ f(ζ) (Sokhotski–Plemelj), f the χ²_{B−1} density
    batch, kappa = 8, 7.0
    factor = InverseChiSquareS(batch, kappa)
    u = np.array([0.05, 0.2, 1.0])
    value, _ = factor.one_plus_psi(u.astype(complex))
    zeta = u * kappa
    expected = -math.pi * (batch - 2) / (batch - 1) * zeta * stats.chi2.pdf(zeta, batch - 1)
    np.testing.assert_allclose(value.imag, expected, rtol=1e-11)


@pytest.mark.parametrize("bad", [dict(depth=0), dict(batch_size=3), dict(activation="nope"), dict(weight_variance=-1.0),
                                 dict(input_variance=float("nan"))])
def test_bad_input(bad):
    args = dict(depth=2, batch_size=8) | bad
    with pytest.raises(ValueError):
        bn_jacobian_spectrum(**args)


@pytest.mark.parametrize("bad", [dict(depth=0), dict(batch_size=3), dict(activation="nope"), dict(samples=10),
                                 dict(input_variance=-1.0), dict(seed=-1)])
def test_moments_bad_input(bad):
    args = dict(depth=2, activation="relu", batch_size=8, samples=1000) | bad
    with pytest.raises(ValueError):
        bn_jacobian_moments(**args)


@pytest.mark.parametrize("batch, depth", [(8, 3), (16, 4), (64, 2)])
def test_operator_valued_recursion_matches_free_product_for_linear(batch, depth):
    rec = bn_jacobian_moments(depth, "linear", batch)
    law = bn_jacobian_spectrum(depth, batch_size=batch)
    assert rec.m1 == pytest.approx(law.moment(1), rel=1e-12)
    assert rec.m2 == pytest.approx(law.moment(2), rel=1e-12)
    assert rec.m3 == pytest.approx(law.moment(3), rel=1e-12)
    assert rec.m2_stderr == rec.m3_stderr == 0.0


def test_operator_valued_recursion_infinite_moments_for_small_batches():
    assert bn_jacobian_moments(2, "relu", 6, samples=1000).m3 == math.inf
    assert math.isfinite(bn_jacobian_moments(2, "relu", 6, samples=1000).m2)
    assert bn_jacobian_moments(2, "tanh", 5, samples=1000).m2 == math.inf


@pytest.mark.parametrize("activation, batch", [("relu", 8), ("relu", 16), ("tanh", 8), ("tanh", 64)])
def test_nonlinear_m1_grows_by_bn_gradient_growth(activation, batch):
    # m1 is exact (sphere quadrature): the per-layer ratio is Yang et al.'s λ(φ, B) as computed by batchnorm.py
    m = [bn_jacobian_moments(depth, activation, batch, samples=1000).m1 for depth in (1, 2, 3)]
    growth = bn_gradient_growth(activation, batch)
    assert m[1] / m[0] == pytest.approx(growth, rel=1e-10)
    assert m[2] / m[1] == pytest.approx(growth, rel=1e-10)


# Monte Carlo: relative tolerance k·SE/m + b/N. SE over independent networks (each network's m_k is one sample);
# k = 4 (a correct theory fails with probability < 1e−4 per moment, seeds fixed). b bounds the finite-width bias,
# measured with B = 16, depth 2, 100–200 networks: m1 −0.8 % ± 1.1 % (N = 16), +0.4 % ± 1.0 % (N = 32); m2 −7.3 % ±
# 2.8 %, −2.6 % ± 2.4 %; m3 −11 % ± 6 %, −4 % ± 4 % ⇒ b = 0.5, 1.6, 2.5 (at N = 32: 1.6 %, 5 %, 8 %). B = 16 keeps the
# estimators' variances finite (they need m_{2k} < ∞, i.e. 2k < (B − 1)/2).
@pytest.fixture
def _one_thread():
    with limit_threads(1):
        yield


def test_linear_moments_and_zeros_match_monte_carlo(_one_thread):
    batch, depth, width, trials = 16, 2, 32, 20
    res = network_jacobian_spectrum(depth, width, "linear", "gaussian", sigma_w2=1.0, batchnorm="train",
                                    batch_size=batch, trials=trials, seed=3, device="cpu",
                                    drop_structural_zeros=False, layer_stats=False)
    sq = res.squared_singular_values
    assert sq.shape == (trials, batch * width)
    law = bn_jacobian_spectrum(depth, batch_size=batch)
    for k, b in ((1, 0.5), (2, 1.6), (3, 2.5)):
        per_net = np.mean(sq**k, axis=1)
        se = per_net.std(ddof=1) / math.sqrt(trials)
        pred = law.moment(k)
        assert abs(per_net.mean() - pred) <= 4.0 * se + b / width * pred, (k, per_net.mean(), se, pred)
    # zeros: 2N = (2/B)·BN structural ones — the N shift directions exactly null, the N scale directions
    # ~(eps/Var)² ≲ 1e−10 relative (PyTorch eps = 1e-5); the continuous part has a hard edge at 0, so a few of its
    # values fall below 1e−9 too (measured: at most 2 of 512 per network); the engine counts the same 2N
    from rmt_init.montecarlo import structural_zero_count

    n_zero = round(law.atoms[0][1] * batch * width)
    assert n_zero == 2 * width == structural_zero_count([width] * (depth + 1), batch)
    ordered = np.sort(sq, axis=1) / sq.mean(axis=1, keepdims=True)
    assert np.all(ordered[:, n_zero - 1] < 1e-9)
    below = np.sum(ordered < 1e-9, axis=1)
    assert np.all(below - n_zero <= 0.01 * batch * width), below


def test_density_in_the_bulk_matches_a_discretised_channel_law():
    """Depth 1: ν₁ ⊠ MP against the same product with ν₁'s continuous part replaced by a 120-node generalised
    Gauss–Laguerre rule in X/2 (weight t^{a−1}e^{−t}, a = (B − 1)/2), solved by free.py's DiscreteS path. In the bulk
    the subordinated u stays off the real axis, where X ↦ X/(X − uκ) is analytic and the rule converges
    geometrically (60 and 120 nodes agree to 1e−8); the tail (x ≳ 4), where the discrete law's largest atoms
    each leave their own bump, is not compared."""
    from scipy.special import roots_genlaguerre

    from rmt_init.theory.free import DiscreteS, free_product, marchenko_pastur_s

    batch, kappa1 = 8, 8.0  # κ₁ = B/q₀
    t, w = roots_genlaguerre(120, (batch - 1) / 2 - 1)
    loc = np.concatenate([[0.0], kappa1 / (2 * t)])
    mass = np.concatenate([[1 / (batch - 1)], (batch - 2) / (batch - 1) * w / w.sum()])
    disc = free_product(DiscreteS(loc, mass, true_atoms=[(0.0, 1 / (batch - 1))]), marchenko_pastur_s(1.0))
    law = bn_jacobian_spectrum(1, batch_size=batch)
    x = np.array([0.05, 0.3, 1.0, 3.0])
    np.testing.assert_allclose(law.pdf(x), disc.pdf(x) * (batch - 1) / batch, rtol=1e-6)
    # a gap above 0 at depth 1 (rank-(B − 2) projections, Wishart-like lower edge), density positive above it
    assert law.pdf(1e-4) == 0.0 and law.pdf(0.02) > 0.0


def test_distribution_function_integrates_to_one_and_reproduces_the_mean():
    """Depth 1, B = 8: the table in ln x (gap edge found, graded panels, power-law tail x^{−7/2} beyond it) holds
    the continuous mass 1 − 2/B, and ∫xρ the exact mean (6/5), to the quadrature's accuracy (measured 8e−10)."""
    law = bn_jacobian_spectrum(1, batch_size=8)
    assert law.table_mass + 2 / 8 == pytest.approx(1.0, abs=1e-8)
    assert law._continuous_integral(lambda x: x) == pytest.approx(law.mean(), rel=1e-8)
    assert 0.005 < law.lower_edge < 0.007  # the Wishart-like gap above the atom (bisection on the density)
    assert law.cdf(0.0) == pytest.approx(2 / 8, abs=1e-15)
    # sf above the continuous part's median is summed from the top of the table, cdf from the bottom: they add up
    # to the table's mass, within its quadrature error of 1 (3.2e−10 here)
    assert law.cdf(1.0) + law.sf(1.0) == pytest.approx(1.0, abs=1e-8)
    q = law.ppf(0.6)
    assert law.cdf(q) == pytest.approx(0.6, abs=1e-8)
    # the tabulated cdf reaches 1, and its far quantiles obey Markov's bound P(λ > x) ≤ m₃/x³ — also when the
    # table's quadrature leaves a deficit (1.4e−4 at B = 16, depth 5): a table scaled down by 1e−4 here, whose
    # quantiles above 1 − 0.75e−4 once sat at the bisection's limit e^60 beyond the table (W₁ ~ 1e23 in compare)
    assert law.cdf(1e300, method="table") == pytest.approx(1.0, abs=1e-15)
    for p_tail in (1e-5, 1e-10):
        assert 0 < law.ppf(1 - p_tail, method="table") <= (law.moment(3) / p_tail) ** (1 / 3)
    ends, cumulative, xr_ends, below, above = law._log_table
    shrink = 1 - 1e-4
    law.__dict__["_log_table"] = (ends, cumulative * shrink, xr_ends * shrink, below * shrink, above * shrink)
    assert law.cdf(1e300, method="table") == pytest.approx(1.0, abs=1e-15)
    assert 0 < law.ppf(1 - 1e-5, method="table") <= (law.moment(3) / 1e-5) ** (1 / 3)


@pytest.mark.parametrize("batch, q0", [(4, 1.0), (8, 1.0), (16, 0.5), (64, 2.0)])
def test_per_example_mean_depth_one_closed_form(batch, q0):
    """Depth 1: J_bb = diag((1/s_j)(1 − 1/B − n_j²/B)) W, so m1 = E[1/s²] E[(d/B − n²/B)²] with E[1/s²] =
    B/(q₀(B − 3)), E n² = 1, E n⁴ = 3d/(d + 2) (a coordinate of a uniform vector of radius √B in 1⊥, d = B − 1)."""
    from rmt_init.theory.bn_spectrum import bn_per_example_mean

    d = batch - 1
    e = batch / (q0 * (batch - 3))
    ref = e * ((d / batch) ** 2 - 2 * d / batch**2 + 3 * d / (d + 2) / batch**2)
    assert float(bn_per_example_mean(1, batch, q0)) == pytest.approx(ref, rel=1e-13)


@pytest.mark.parametrize("batch, depth, width", [(8, 2, 64), (16, 3, 32)])
def test_per_example_mean_against_torch_networks(batch, depth, width):
    """The per-example diagonal blocks of torch train-mode BN nets (engine ``batchnorm="train_diagonal"``): mean
    within 5 SE + 0.5·L/N (the finite-width bias bound of the batch Jacobian's m1, validation claim
    bn_batch_spectrum; measured here within 1 SE at N = 64 for B = 6, 8, 16, 32), and resolved from the whole
    batch Jacobian's ((B − 2)/(B − 3))^L."""
    from rmt_init.theory.bn_spectrum import bn_per_example_mean

    pred = float(bn_per_example_mean(depth, batch))
    with limit_threads(1):
        res = network_jacobian_spectrum(depth, width, "linear", batchnorm="train_diagonal", batch_size=batch,
                                        trials=20, seed=11, device="cpu")
    per = np.asarray(res.squared_singular_values).mean(axis=1)
    se = per.std(ddof=1) / math.sqrt(per.size)
    tol = 5 * se + 0.5 * depth / width * pred
    assert abs(per.mean() - pred) <= tol, (per.mean(), pred, se)
    assert abs(per.mean() - bn_gradient_growth("linear", batch) ** depth) > tol


def test_warm_starts_keep_to_the_physical_root(monkeypatch):
    """Linear, B = 4, depth 1: on the grid of a cdf table with 4 panels a decade (8 Gauss nodes each, solved in one
    call on a fresh law) a warm Newton start converged to a spurious root inside the support (ρ(0.0518) = 1.17
    instead of 0.411), and the table's mass came out 2.5e−3 above 1 − 2/B. A warm root farther from the predictor
    than a quarter of its step is now re-solved by the η-continuation: that table's mass is 1 − 2/B to its
    quadrature error (2.6e−5, from the steep rise of ρ at x ≈ 0.035), and with 16 panels a decade to 7.7e−7."""
    import rmt_init.theory.bn_spectrum as bn_spectrum

    assert bn_jacobian_spectrum(1, batch_size=4).table_mass == pytest.approx(0.5, abs=5e-6)
    monkeypatch.setattr(bn_spectrum, "_PANELS_PER_DECADE", 4)
    assert bn_jacobian_spectrum(1, batch_size=4).table_mass == pytest.approx(0.5, abs=1e-4)
