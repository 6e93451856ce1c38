"""Quantiles of the closed-form laws against arbitrary-precision references, and trivial laws in closed form.

- Marchenko–Pastur ppf/isf (a cubic table in s = (mass/M)^{1/3} with per-point Newton in the cells that fail
  their check) against mpmath bisection of the closed-form distribution function of the angle θ
  (x = x₋ + (x₊ − x₋) sin²(θ/2); module docstring of rmt_init.theory.marchenko_pastur).
- Fuss–Catalan ppf/isf (run in blocks) against mpmath bisection of F along the Haagerup–Möller (2012)
  parametrisation, written here independently of the package.
- The orthogonal linear network's law: the point mass at Π σ_l², its moments, and a Monte Carlo product.
"""
from __future__ import annotations

import sys

import mpmath
import numpy as np
import pytest

from rmt_init import jacobian_spectrum
from rmt_init.theory import fuss_catalan
from rmt_init.theory.marchenko_pastur import MarchenkoPastur

fc_module = sys.modules[fuss_catalan.__module__]
mp_module = sys.modules[MarchenkoPastur.__module__]


# ------------------------------------------------------------------------------------- Marchenko–Pastur
def _mp_quantile(c: float, v: float, mass: float, from_top: bool) -> mpmath.mpf:
    """x with continuous mass ``mass`` below it (or above it, ``from_top``), 60 digits, by bisection in θ.

    F(θ) = [2√c sin θ + (1 + c)θ − 2|1 − c| arctan(r tan(θ/2))]/(2πc), r = (1 + √c)/|1 − √c|, is the
    continuous mass below x(θ) = v(1 + c − 2√c cos θ); at 60 digits its cancellation near θ = 0 is harmless.
    """
    with mpmath.workdps(60):
        c, v, mass = mpmath.mpf(c), mpmath.mpf(v), mpmath.mpf(mass)
        root = mpmath.sqrt(c)

        def below(theta):
            third = 0 if c == 1 else 2 * abs(1 - c) * mpmath.atan((1 + root) / abs(1 - root) * mpmath.tan(theta / 2))
            return (2 * root * mpmath.sin(theta) + (1 + c) * theta - third) / (2 * mpmath.pi * c)

        total = below(mpmath.pi)
        target = total - mass if from_top else mass
        lo, hi = mpmath.mpf(0), mpmath.pi
        for _ in range(120):  # 2^−120 π: far below a double's resolution
            mid = (lo + hi) / 2
            lo, hi = (mid, hi) if below(mid) < target else (lo, mid)
        return v * (1 + c - 2 * root * mpmath.cos((lo + hi) / 2))


@pytest.mark.parametrize("ratio", [0.5, 1.0, 0.99, 4.0, 1e-6])
def test_marchenko_pastur_quantiles_match_mpmath(ratio: float) -> None:
    # Bound: the table's cells are used where a check at three interior points left ≤ 1e−14 relative in x
    # (_TABLE_RTOL), the others are solved by Newton to a few ulps of the mass; x itself is then correctly
    # formed to a few ulps. 1e−13 leaves room for the check's sampling (the bar in the issue is 1e−12).
    v = 1.7
    law = MarchenkoPastur(ratio, v)
    total = law.continuous_mass
    atom = 1.0 - total
    rng = np.random.default_rng(11)
    q = np.concatenate([atom + total * rng.random(5), [atom + 1e-12, atom + 1e-6, 1 - 1e-9, 1 - 1e-15]])
    x = law.ppf(q)
    atom_exact = 1 - 1 / mpmath.mpf(ratio) if ratio > 1 else 0
    for qi, xi in zip(q, x):
        mass = mpmath.mpf(qi) - atom_exact  # the float q, exactly
        lower = mass <= total / 2
        expected = _mp_quantile(ratio, v, mass if lower else 1 - mpmath.mpf(qi), from_top=not lower)
        assert abs(xi - expected) <= 1e-13 * expected, (qi, xi, expected)
    p = np.array([1e-300, 1e-15, 1e-9, 0.25 * total])
    for pi, xi in zip(p, law.isf(p)):
        expected = _mp_quantile(ratio, v, pi, from_top=True)
        assert abs(xi - expected) <= 1e-13 * expected, (pi, xi, expected)


@pytest.mark.parametrize("ratio", [0.5, 0.99, 2.0])
def test_marchenko_pastur_table_agrees_with_newton_on_the_exact_mass(ratio: float) -> None:
    # The interpolated quantiles of many points (blocks of _BLOCK, both halves, the cells that fall back to
    # Newton at ratio 0.99) against Newton on the exact mass with brackets from a grid (no table): the same
    # ≤ 1e−14 check as above, plus a few ulps in forming x.
    law = MarchenkoPastur(ratio)
    total = law.continuous_mass
    q = (1.0 - total) + total * np.random.default_rng(3).random(2 * mp_module._BLOCK + 17)
    x = law.ppf(q)
    below = q - (1.0 - total)
    lower = below <= 0.5 * total
    angle_low = law._angle_from_mass(below[lower], from_top=False)
    angle_top = law._angle_from_mass(1.0 - q[~lower], from_top=True)
    expected = np.empty(q.shape)
    expected[lower] = law._x_from_z(np.sin(0.5 * angle_low), from_top=False)
    expected[~lower] = law._x_from_z(np.sin(0.5 * angle_top), from_top=True)
    assert np.allclose(x, expected, rtol=2e-14, atol=0)
    if ratio == 0.99:  # next to the sharp lower edge some cells fail their check and take the Newton path
        assert not law._quantile_table[2].all()


def test_marchenko_pastur_quantile_ends_and_atom() -> None:
    law = MarchenkoPastur(4.0)
    assert law.ppf(0.0) == 0.0 and law.ppf(0.75) == 0.0 and law.ppf(1.0) == law.support[1]
    assert law.isf(0.0) == law.support[1] and law.isf(0.25) == 0.0 and law.isf(1.0) == 0.0
    square = MarchenkoPastur(0.25)
    assert square.ppf(0.0) == square.support[0] and square.isf(1.0) == square.support[0]
    assert square.ppf(1.0) == square.support[1]


# ------------------------------------------------------------------------------------- Fuss–Catalan
def _fc_quantile(s: int, q: float, upper: bool = False) -> mpmath.mpf:
    """Fuss–Catalan quantile at 40 digits (Haagerup & Möller 2012): with φ ∈ (0, π/(s+1)),
    x(φ) = sin((s+1)φ)^{s+1}/(sin φ sin(sφ)^s) and F(x(φ)) = 1 − (s+1)φ/π + s sin((s+1)φ) sin φ/(π sin(sφ));
    bisection in φ on F = q (or 1 − F = q if ``upper``)."""
    with mpmath.workdps(40):
        q = mpmath.mpf(q)

        def cdf(phi):
            return 1 - (s + 1) * phi / mpmath.pi + s * mpmath.sin((s + 1) * phi) * mpmath.sin(phi) / (
                mpmath.pi * mpmath.sin(s * phi)
            )

        lo, hi = mpmath.mpf(0), mpmath.pi / (s + 1)  # F decreases in φ
        for _ in range(140):
            mid = (lo + hi) / 2
            value = 1 - cdf(mid) if upper else cdf(mid)
            lo, hi = (mid, hi) if (value > q) != upper else (lo, mid)
        phi = (lo + hi) / 2
        return mpmath.sin((s + 1) * phi) ** (s + 1) / (mpmath.sin(phi) * mpmath.sin(s * phi) ** s)


@pytest.mark.parametrize("depth", [1, 3, 40])
def test_fuss_catalan_quantiles_match_mpmath(depth: int) -> None:
    # The package's documented accuracy is ~1e−13 relative away from the edges at these depths (relative
    # error grows like ε·s on the soft side): 1e−12 covers it at depth 40.
    law = fuss_catalan(depth)
    smallest = 1e-12 if depth < 10 else 1e-6  # x ∝ q^{s+1} near 0: depth 40 at 1e−12 is below the float range
    q = np.array([smallest, 1e-3, 0.2, 0.5, 0.8, 0.999, 1 - 1e-9])
    for qi, xi in zip(q, law.ppf(q)):
        expected = _fc_quantile(depth, qi)
        assert abs(xi - expected) <= 1e-12 * expected, (qi, xi, expected)
    for pi, xi in zip([1e-14, 1e-6], law.isf(np.array([1e-14, 1e-6]))):
        expected = _fc_quantile(depth, pi, upper=True)
        assert abs(xi - expected) <= 1e-12 * expected, (pi, xi, expected)


def test_fuss_catalan_blocks_keep_every_point_in_place() -> None:
    # pdf/cdf/ppf run in blocks of _BLOCK points: an array spanning several blocks (2-d, so the reshape is
    # exercised) must give the values of each point evaluated on its own, wherever the block boundaries fall.
    law = fuss_catalan(4)
    n = 2 * fc_module._BLOCK + 3
    rng = np.random.default_rng(5)
    q = rng.random(n)
    x = law.support[1] * rng.random(n)
    picks = np.array([0, fc_module._BLOCK - 1, fc_module._BLOCK, n - 1])
    for method, arg in [(law.ppf, q), (law.cdf, x), (law.pdf, x)]:
        whole = method(arg.reshape(1, n))[0]
        alone = np.array([method(arg[i]) for i in picks])
        assert np.array_equal(whole[picks], alone)
        assert np.all(np.isfinite(whole))


# ------------------------------------------------------------------------------------- trivial laws
@pytest.mark.parametrize(
    "depth, sigma_w2",
    [(7, 1.3), (1000, 1.001), (10**6, 1.000001), (4, [1.5, 0.5, 2.0, 1.1])],
)
def test_orthogonal_linear_network_is_the_point_mass_at_the_variance_product(depth, sigma_w2) -> None:
    law = jacobian_spectrum(depth, "linear", weights="orthogonal", sigma_w2=sigma_w2)
    variances = [sigma_w2] * depth if np.isscalar(sigma_w2) else sigma_w2
    with mpmath.workdps(50):
        exact = mpmath.fprod(mpmath.mpf(v) for v in variances) if depth < 100 else mpmath.mpf(sigma_w2) ** depth
        location = float(exact)  # correctly rounded
        moments = [float(exact**k) for k in (1, 2, 3)]
    assert law.atoms == ((location, 1.0),) and law.intervals == () and law.support == (location, location)
    assert [law.moment(k) for k in (1, 2, 3)] == pytest.approx(moments, rel=1e-15)
    assert law.mean() == pytest.approx(location, rel=1e-15) and law.var() == pytest.approx(0.0, abs=1e-15 * location**2)
    below = np.nextafter(location, 0.0)
    assert law.cdf(below) == 0.0 and law.cdf(location) == 1.0 and law.sf(location) == 0.0
    assert np.all(law.ppf(np.array([1e-300, 0.5, 1.0])) == location)
    assert np.all(law.sample(5, rng=0) == location)
    assert law.pdf(location) == 0.0  # no continuous part
    assert law.chi1 == pytest.approx(location ** (1.0 / depth), rel=1e-12)


def test_orthogonal_linear_point_mass_matches_a_product_of_orthogonal_matrices() -> None:
    # J = Π σ_l Q_l with Q_l Haar orthogonal (QR of a Gaussian matrix, signs fixed): JJᵀ = Π σ_l² I, so every
    # squared singular value sits at the atom, up to the rounding of 5 products of 40×40 matrices (~1e−14).
    variances = [1.5, 0.5, 2.0, 1.1, 0.9]
    rng = np.random.default_rng(2)
    product = np.eye(40)
    for v in variances:
        q, r = np.linalg.qr(rng.standard_normal((40, 40)))
        product = np.sqrt(v) * (q * np.sign(np.diag(r))) @ product
    squared = np.linalg.svd(product, compute_uv=False) ** 2
    law = jacobian_spectrum(5, "linear", weights="orthogonal", sigma_w2=variances)
    assert np.allclose(squared, law.atoms[0][0], rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------- free products
# Warm starts solve the same equation as the η-continuation, to Newton's tolerance (a residual at the rounding
# of the sum of ~2·depth logarithms, ~1e−15·depth relative in t): 1e−11 relative covers depth 200 with room.
def _without_warm_starts(monkeypatch) -> None:
    from rmt_init.theory.free import FreeProductLaw

    monkeypatch.setattr(FreeProductLaw, "_solve_warm", lambda self, x: (np.zeros(x.shape, complex), np.zeros(x.shape, bool)))


@pytest.mark.parametrize("depth, activation", [(6, "relu"), (200, "linear")])
def test_warm_started_densities_match_the_continuation(depth, activation) -> None:
    law = jacobian_spectrum(depth, activation)
    lo, hi = law.intervals[0]
    first = lo + (hi - lo) * np.linspace(0.001, 0.999, 200) ** 3
    law.pdf(first)  # remembered
    x = first * (1.0 + 1e-3 * np.random.default_rng(4).random(first.size))
    x = x[x < hi]
    warm, accepted = law._solve_warm(x)
    assert accepted.mean() > 0.9  # the warm path is what is tested
    t = law._solve_cold(x[accepted])
    assert np.allclose(warm[accepted], t, rtol=1e-11, atol=1e-14)
    cold_density = -np.exp(t.real) * np.sin(t.imag) / (np.pi * x[accepted])
    assert np.allclose(law.pdf(x[accepted]), cold_density, rtol=1e-11, atol=0)


def test_warm_started_quantiles_match_the_continuation(monkeypatch) -> None:
    q = np.array([1e-6, 0.01, 0.3, 0.5, 0.7, 0.99, 1 - 1e-6])
    law = jacobian_spectrum(3, "relu", weights="orthogonal")
    warm = law.ppf(q)
    assert law._solutions["log_x"].size > 0
    _without_warm_starts(monkeypatch)
    cold = jacobian_spectrum(3, "relu", weights="orthogonal").ppf(q)
    assert np.allclose(warm, cold, rtol=1e-11, atol=0)
