"""Tests of rmt_init.theory.free: S-transform factors and free multiplicative convolution.

Independent references: Fuss–Catalan laws (closed-form moments C((s+1)k, k)/(sk+1) and the package's
separately tested parametrised density), moments by Lagrange inversion m_k = (1/k)[w^{k−1}]((1 + w)/S(w))^k
computed here with exact fractions, Belinschi's atom rule, and Monte Carlo in numpy at width ≥ 1000.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np
import pytest

from rmt_init.theory import fuss_catalan, jacobian_spectrum, marchenko_pastur
from rmt_init.theory.free import (
    DiscreteS,
    MomentS,
    change_dimension,
    dirac_s,
    free_product,
    marchenko_pastur_s,
    rectangular_product,
    two_point_s,
)


@pytest.mark.parametrize("depth", [2, 5, 30])
def test_product_of_square_mp_laws_is_fuss_catalan(depth: int) -> None:
    law = free_product(*[marchenko_pastur(1.0)] * depth)
    fc = fuss_catalan(depth)
    lo, hi = fc.support
    assert law.support == (0.0, pytest.approx(hi, rel=1e-13))
    x = np.linspace(1e-3, 1 - 1e-3, 200) * hi  # bulk: 1e-3 of the width away from the edges
    assert np.allclose(law.pdf(x), fc.pdf(x), rtol=1e-9, atol=0)
    for k in range(1, 9):
        assert law.moment(k, method="exact") == math.comb((depth + 1) * k, k) // (depth * k + 1)


def _poly_power_coefficient(factors: list[list[Fraction]], power: int, n: int) -> Fraction:
    """[w^n] (Π factors)^power for polynomials given by coefficient lists (exact)."""
    poly = [Fraction(1)]
    for f in factors:
        out = [Fraction(0)] * (len(poly) + len(f) - 1)
        for i, a in enumerate(poly):
            for j, b in enumerate(f):
                out[i + j] += a * b
        poly = out
    result = [Fraction(1)]
    for _ in range(power):
        out = [Fraction(0)] * min(n + 1, len(result) + len(poly) - 1)
        for i, a in enumerate(result):
            for j, b in enumerate(poly):
                if i + j <= n:
                    out[i + j] += a * b
        result = out
    return result[n] if n < len(result) else Fraction(0)


@pytest.mark.parametrize("widths,variances", [([100, 200, 50, 80], [1.0, 2.0, 0.5]), ([30, 10, 60], [1.5, 1.0])])
def test_rectangular_product_moments_by_lagrange_inversion(widths: list[int], variances: list[float]) -> None:
    # S(w) = Π σ_l^{−2}/(1 + c_l w), c_l = n_L/n_{l−1}: (1 + w)/S(w) = (1 + w) Π σ_l²(1 + c_l w)
    law = rectangular_product(widths, variances)
    n_out = widths[-1]
    factors = [[Fraction(1), Fraction(1)]] + [
        [Fraction(v), Fraction(v) * Fraction(n_out, n_in)] for v, n_in in zip(variances, widths[:-1])
    ]
    for k in range(1, 7):
        exact = _poly_power_coefficient(factors, k, k - 1) / k
        assert law.moment(k, method="exact") == exact
        assert law.moment(k) == pytest.approx(float(exact), rel=1e-14)
    assert law.atoms == (((0.0, 1 - min(widths) / n_out),) if min(widths) < n_out else ())


def test_rectangular_product_against_numpy_monte_carlo() -> None:
    """One 1200 × 1200 sample: for products of Gaussian matrices the empirical distribution function is
    within O(log N / N) of its limit (eigenvalue rigidity), so a KS distance of 0.01 is ~10× that."""
    widths = [1000, 1500, 800, 1200]
    rng = np.random.default_rng(7)
    product = np.eye(widths[0])
    for n_in, n_out in zip(widths[:-1], widths[1:]):
        product = (rng.standard_normal((n_out, n_in)) / math.sqrt(n_in)) @ product
    eigs = np.sort(np.linalg.eigvalsh(product @ product.T))
    law = rectangular_product(widths)
    ecdf = np.arange(1, eigs.size + 1) / eigs.size
    positive = eigs > 1e-9
    assert np.mean(~positive) == pytest.approx(law.atoms[0][1], abs=1e-12)  # exactly 400 zero eigenvalues
    probe = np.flatnonzero(positive)[::8]  # the distribution function at every 8th positive eigenvalue
    assert np.max(np.abs(law.cdf(eigs[probe]) - ecdf[probe])) < 0.01
    assert np.mean(eigs) == pytest.approx(law.mean(), rel=0.02)
    # the top eigenvalue sits where O(1) of the N eigenvalues are expected above it
    assert eigs[-1] < law.support[1] * 1.01 and eigs.size * law.sf(eigs[-1]) < 3.0


def test_atoms_follow_belinschi() -> None:
    a = two_point_s(0.3, 1.0)  # 0.7 δ₀ + 0.3 δ₁
    b = two_point_s(0.4, 2.0)  # 0.6 δ₀ + 0.4 δ₂
    law = free_product(a, b, marchenko_pastur(1.0))
    assert law.atoms == ((0.0, 0.7),)
    law = free_product(dirac_s(2.0), two_point_s(0.25, 3.0))
    assert law.atoms == ((0.0, 0.75), (6.0, 0.25))
    assert law.mean() == pytest.approx(1.5, rel=1e-15)


def test_discrete_factor_matches_its_rational_closed_form() -> None:
    """The numerical ψ path (DiscreteS) against the closed-form S of the same two-point law."""
    rational = free_product(two_point_s(0.5, 2.0), marchenko_pastur(1.0), marchenko_pastur(0.5))
    discrete = free_product(
        DiscreteS([0.0, 2.0], [0.5, 0.5], true_atoms=[(0.0, 0.5), (2.0, 0.5)]),
        marchenko_pastur(1.0),
        marchenko_pastur(0.5),
    )
    assert discrete.atoms == rational.atoms
    assert discrete.support[1] == pytest.approx(rational.support[1], rel=1e-12)
    x = np.linspace(0.02, 0.98, 60) * rational.support[1]
    assert np.allclose(discrete.pdf(x), rational.pdf(x), rtol=1e-9, atol=1e-14)
    for k in range(1, 6):
        assert discrete.moment(k) == pytest.approx(rational.moment(k), rel=1e-12)


def test_moment_factor_gives_moments_only() -> None:
    mp = marchenko_pastur(0.5, 2.0)
    by_moments = free_product(MomentS([mp.moment(k, method="exact") for k in range(1, 14)], "MP moments"), fuss_catalan(3))
    full = free_product(mp, fuss_catalan(3))
    for k in range(1, 8):
        assert by_moments.moment(k) == pytest.approx(full.moment(k), rel=1e-13)
    with pytest.raises(ValueError, match="moments only"):
        by_moments.pdf(1.0)


def test_change_dimension_rescales_moments_and_the_atom() -> None:
    law = fuss_catalan(2)
    wider = change_dimension(law, 4.0)  # three quarters of the eigenvalues become 0
    assert wider.atoms == ((0.0, 0.75),)
    for k in range(1, 6):
        assert wider.moment(k) == pytest.approx(law.moment(k) / 4.0, rel=1e-14)
    x = np.linspace(0.05, 6.6, 30)
    assert np.allclose(wider.pdf(x), law.pdf(x) / 4.0, rtol=1e-10, atol=0)


def test_mp_factor_of_any_ratio() -> None:
    for ratio, variance in [(0.3, 1.0), (1.0, 2.0), (2.5, 0.7)]:
        law = free_product(marchenko_pastur_s(ratio, variance))
        ref = marchenko_pastur(ratio, variance)
        assert law.atoms == ref.atoms
        assert law.support[1] == pytest.approx(ref.support[1], rel=1e-13)
        lo, hi = ref.intervals[0]
        x = lo + (hi - lo) * np.linspace(0.01, 0.99, 40)
        assert np.allclose(law.pdf(x), ref.pdf(x), rtol=1e-10, atol=0)


def test_bad_input() -> None:
    with pytest.raises(ValueError, match="at least one"):
        free_product()
    with pytest.raises(ValueError, match="ratio"):
        change_dimension(fuss_catalan(2), -1.0)
    with pytest.raises(ValueError, match="variances"):
        rectangular_product([10, 20, 30], [1.0])
    with pytest.raises(ValueError, match="widths"):
        rectangular_product([10, 0, 30])
    with pytest.raises(ValueError, match="S-transform"):
        free_product("not a law")


@pytest.mark.parametrize("depth", [2, 5, 50])
def test_table_cdf_and_sampling_follow_the_hard_edge(depth):
    """The fast distribution function behind ``compare`` (KS) and the sampler, against the Fuss–Catalan
    closed-form cdf (the free product of ``depth`` MP laws is that law). Near 0, F ∝ x^{1/(depth+1)}: a
    PCHIP through Chebyshev nodes was off by up to 1e−3 there (and by 1e−6 at the top for depth 50, from
    a tanh–sinh total). Measured now: ≤ 8e−9 (depths 2, 5), 7e−8 (depth 50) absolute, ≤ 8e−8 relative
    down to x = 1e−300; allowed 2e−7 and 5e−7. The edge exponent must come out as 1/(depth+1). Samples:
    the sampler's quantile function against the exact ppf (PCHIP inverse; measured ≤ 5.3e−6 relative in x,
    allowed 5e−5)."""
    law = jacobian_spectrum(depth, "linear", weights="gaussian")
    exact = fuss_catalan(depth)
    b = law.support[1]
    x = np.concatenate([np.geomspace(1e-300, 1e-2, 200), np.linspace(0.01, b, 400)[:-1]])
    table = law.cdf(x, method="table")
    reference = exact.cdf(x)
    assert np.max(np.abs(table - reference)) <= 2e-7
    tiny = x < 1e-2
    assert np.max(np.abs(table[tiny] / reference[tiny] - 1.0)) <= 5e-7
    assert law._sampling_tables[0][2].exponent == pytest.approx(1.0 / (depth + 1), rel=1e-6)
    u = np.concatenate([np.geomspace(1e-6, 1e-2, 9), np.linspace(0.05, 0.95, 7)])
    assert np.max(np.abs(law.ppf(u, method="table") / exact.ppf(u) - 1.0)) <= 5e-5


@pytest.mark.parametrize("weights", ["orthogonal", "gaussian"])
def test_density_is_resolved_down_to_1e_300_next_to_an_atom_at_0(weights):
    """relu networks (an atom 1/2 at 0): near the hard edge Im t ∝ x^{1−α} is tiny but computed with full
    relative accuracy (Im t = −5e−101 at x = 1e−300, exactly ∝ x^{1/3} at depth 3); a rounding threshold
    meant for the soft edges used to return density 0 below x ≈ 1e−44. ρ(x)·x^{2/3} must stay positive and
    vary slowly (measured 0.0689 at 1e−20 to 0.0797 at 1e−300 for orthogonal weights)."""
    law = jacobian_spectrum(3, "relu", weights=weights)
    x = np.geomspace(1e-300, 1e-20, 15)
    scaled = law.pdf(x) * x ** (2.0 / 3.0)
    assert np.all(scaled > 0)
    assert scaled.max() / scaled.min() < 1.25


@pytest.mark.parametrize("depth, weights", [(4, "gaussian"), (8, "gaussian"), (4, "orthogonal")])
def test_table_method_at_the_atom_at_the_edges_and_in_the_bulk(depth, weights):
    """``cdf(x, method="table")`` against the default (quadrature, ~1e−13) cdf of ReLU laws (atom ½ at 0).

    At x = 0 the table gave 0.518 (depth 4) and 0.604 (depth 8) for an atom of ½ (extrapolated from the
    Hermite table); it must be the atom's mass exactly, and the left limit 0. Next to the atom (1e−300 …
    1e−3), at the top edge and in the bulk the documented accuracy is 2e−7 absolute (measured ≤ 3e−8)."""
    law = jacobian_spectrum(depth, "relu", weights=weights)
    assert law.cdf(0.0, method="table") == 0.5 and law.cdf(-1e-300, method="table") == 0.0
    assert law.sf(0.0, method="table") == pytest.approx(0.5, abs=1e-15)
    b = law.upper_edge
    x = np.concatenate([[1e-300, 1e-100, 1e-20], np.geomspace(1e-6, 1e-2, 5), np.linspace(0.01, b, 40), [b, 2 * b]])
    assert np.max(np.abs(law.cdf(x, method="table") - law.cdf(x))) <= 2e-7
    assert np.max(np.abs(law.sf(x, method="table") - law.sf(x))) <= 2e-7
    q = np.array([0.0, 0.25, 0.5, 0.5 + 1e-9, 0.75, 0.99, 1.0])
    table_q = law.ppf(q, method="table")
    assert table_q[0] == 0.0 and table_q[1] == 0.0 and table_q[2] == 0.0 and table_q[-1] == b
    # inverse of a cdf known to 2e−7: δx = 2e−7/ρ(x), ρ from the law (≤ 5e−5 relative as for the sampler)
    assert np.allclose(table_q[3:-1], law.ppf(q[3:-1]), rtol=5e-5, atol=2e-7 / law.pdf(law.ppf(0.999)))


def test_table_method_for_closed_form_laws_and_bad_methods():
    fc, mp = fuss_catalan(3), marchenko_pastur(2.5)
    x = np.array([0.0, 1e-3, 0.5, 2.0])
    for law in (fc, mp):
        assert np.array_equal(law.cdf(x, method="table"), law.cdf(x))
        assert np.array_equal(law.sf(x, method="table"), law.sf(x, method="default"))
        assert np.array_equal(law.ppf([0.1, 0.9], method="table"), law.ppf([0.1, 0.9]))
        assert np.array_equal(law.isf([0.1, 0.9], method="table"), law.isf([0.1, 0.9]))
    assert fc.singular_value_law().cdf(1.0, method="table") == pytest.approx(fc.cdf(1.0), abs=1e-15)
    for call in (fc.cdf, fc.sf, fc.ppf, fc.isf):
        with pytest.raises(ValueError, match="method.*default.*table"):
            call(0.5, method="spline")
