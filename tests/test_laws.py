"""The generic strategies of the law protocol (used by every law without closed forms).

Toy laws with known answers from scipy.stats: a Beta(2, 3) density on [0, 2] with mass 0.8 plus an
atom of mass 0.2 *inside* its interval, and a law on two intervals with a gap and an atom at 0.
"""
from __future__ import annotations

import numpy as np
import pytest
from scipy import stats

from rmt_init import SpectralLaw


class BetaWithAtom(SpectralLaw):
    """0.8 × (2·Beta(2, 3)) + 0.2 δ_{0.5}."""

    beta = stats.beta(2, 3, scale=2.0)

    @property
    def support(self):
        return (0.0, 2.0)

    @property
    def atoms(self):
        return ((0.5, 0.2),)

    def _pdf(self, x):
        return 0.8 * self.beta.pdf(x)

    def exact_cdf(self, x):
        return 0.8 * self.beta.cdf(x) + np.where(x >= 0.5, 0.2, 0.0)


class TwoIntervals(SpectralLaw):
    """0.1 δ_0 + 0.45 U(1, 2) + 0.45 × √-edged density on (3, 5): (8/(π·…)) semicircle."""

    semicircle = stats.semicircular(loc=4.0, scale=1.0)

    @property
    def support(self):
        return (0.0, 5.0)

    @property
    def atoms(self):
        return ((0.0, 0.1),)

    @property
    def intervals(self):
        return ((1.0, 2.0), (3.0, 5.0))

    def _pdf(self, x):
        return np.where(x < 2.5, 0.45, 0.45 * self.semicircle.pdf(x))

    def exact_cdf(self, x):
        x = np.asarray(x, float)
        return (
            np.where(x >= 0, 0.1, 0.0)
            + 0.45 * np.clip(x - 1.0, 0.0, 1.0)
            + 0.45 * self.semicircle.cdf(x)
        )


@pytest.fixture(params=[BetaWithAtom, TwoIntervals])
def law(request):
    return request.param()


def test_generic_cdf_and_sf(law):
    x = np.linspace(-0.5, 5.5, 601)
    assert np.allclose(law.cdf(x), law.exact_cdf(x), rtol=0, atol=1e-12)
    assert np.allclose(law.sf(x), 1.0 - law.exact_cdf(x), rtol=0, atol=1e-12)


def test_generic_ppf_with_atoms_and_gaps(law):
    q = np.linspace(0.0, 1.0, 401)
    x = law.ppf(q)
    assert np.all(np.diff(x) >= 0)
    # smallest x with F(x) >= q: F(x) >= q, and F just below x is < q (up to the solver tolerance)
    assert np.all(law.exact_cdf(x) >= q - 1e-12)
    below = law.exact_cdf(x - 1e-9)
    assert np.all((below <= q + 1e-9) | (x <= law.support[0]))
    p = np.linspace(0.0, 1.0, 101)
    x = law.isf(p)  # smallest x with sf(x) <= p
    assert np.all(np.diff(x) <= 0)
    assert np.all(1.0 - law.exact_cdf(x) <= p + 1e-12)
    assert np.all((1.0 - law.exact_cdf(x - 1e-9) >= p - 1e-9) | (x <= law.support[0]))


def test_atom_quantiles():
    law = BetaWithAtom()
    f_below = 0.8 * law.beta.cdf(0.5)
    assert law.ppf(f_below + 0.1) == 0.5  # inside the jump
    assert law.ppf(f_below + 0.2) == pytest.approx(0.5, abs=1e-12)  # at the top of the jump
    assert law.ppf(f_below + 0.2 + 1e-6) > 0.5
    gap = TwoIntervals()
    assert gap.ppf(0.05) == 0.0 and gap.ppf(0.1) == 0.0
    assert gap.ppf(0.5499999) == pytest.approx(2.0, abs=1e-6)  # the mass ends at 2 before the gap
    assert 3.0 < gap.ppf(0.5500001) < 3.1


def test_generic_moments(law):
    rng = np.random.default_rng(0)
    for order in (1, 2, 3, 0.5):
        grid = np.linspace(0, 5, 200001)
        # reference: trapezoid on the exact cdf's derivative is not independent enough; use scipy
        if isinstance(law, BetaWithAtom):
            expected = 0.8 * law.beta.expect(lambda x: x**order) + 0.2 * 0.5**order
        else:
            expected = 0.45 * ((2 ** (order + 1) - 1) / (order + 1)) + 0.45 * law.semicircle.expect(
                lambda x: x**order
            )
        assert law.moment(order) == pytest.approx(expected, rel=1e-10)
    del rng, grid
    assert law.var() == pytest.approx(law.moment(2) - law.moment(1) ** 2)
    assert law.moment(3, kind="central") == pytest.approx(
        law.moment(3) - 3 * law.mean() * law.moment(2) + 2 * law.mean() ** 3, rel=1e-9
    )
    assert law.moment(2, kind="standardized") == pytest.approx(1.0, rel=1e-10)


def test_generic_sampling(law):
    n = 4000
    samples = law.sample(n, rng=3)
    values, counts = np.unique(samples, return_counts=True)
    at_or_below = np.cumsum(counts) / n
    strictly_below = at_or_below - counts / n
    # KS distance for a law with atoms: compare both one-sided limits at every distinct value
    distance = max(
        np.max(np.abs(at_or_below - law.exact_cdf(values))),
        np.max(np.abs(strictly_below - law.exact_cdf(np.nextafter(values, -np.inf)))),
    )
    # 1.63/√n is the 1% critical value for continuous laws; atoms only make the statistic smaller
    assert distance < 1.63 / np.sqrt(n)


def test_pdf_conventions(law):
    assert law.pdf(-1.0) == 0.0 and law.pdf(10.0) == 0.0
    assert np.isnan(law.pdf(np.nan))
    assert law.logpdf(-1.0) == -np.inf
    assert law.continuous_mass == pytest.approx(1 - sum(m for _, m in law.atoms))


def test_bad_arguments(law):
    with pytest.raises(ValueError, match="unknown kind 'weird'"):
        law.moment(2, kind="weird")
    with pytest.raises(ValueError, match="no exact"):
        law.moment(2, method="exact")
    with pytest.raises(ValueError, match=r"p must be a probability in \[0, 1\]; got -0.1"):
        law.isf(-0.1)
    with pytest.raises(ValueError, match="n must be an integer >= 0"):
        law.sample(-3)
