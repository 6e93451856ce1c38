"""A numerical factor that returns NaN for ψ must make the free product raise, never give a wrong density.

A smooth factor's Gauss rule once returned NaN at one argument; the η-continuation rejected the Newton steps
into it, kept the last finite iterate of the points it could not reach, and the law's cdf tables came out with
mass 1.001 and no error. Here a real factor (the law of tanh'(√q z)², depth 1, σ_b² = 0.5) is wrapped so that
its ψ is NaN in a disc around the solution u* at one point x₀ of the bulk: that point cannot be solved, and
the law must say so (FloatingPointError naming the factor) instead of returning a density off by ~1.6e−3.
"""

import copy

import numpy as np
import pytest

from rmt_init.theory.free import FreeProductLaw, Term
from rmt_init.theory.jacobian import jacobian_spectrum


def _nan_in_disc(factor, center: complex, radius: float):
    """A copy of ``factor`` whose 1 + ψ, uψ' (and ψ) are NaN for |u − center| < radius; exact elsewhere."""

    class NaNInDisc(type(factor)):
        def _mask(self, u):
            return np.abs(np.asarray(u) - center) < radius

        def one_plus_psi(self, u, *args, **kwargs):
            return tuple(np.where(self._mask(u), np.nan, v) for v in super().one_plus_psi(u, *args, **kwargs))

        def psi_parts(self, u, *args, **kwargs):
            return tuple(np.where(self._mask(u), np.nan, v) for v in super().psi_parts(u, *args, **kwargs))

    wrapped = copy.copy(factor)
    wrapped.__class__ = NaNInDisc
    return wrapped


@pytest.fixture(scope="module")
def healthy_and_broken():
    law = jacobian_spectrum(1, "tanh", sigma_b2=0.5)
    lo, hi = law.support
    x0 = lo + 0.6 * (hi - lo)  # in the bulk, not one of the support search's probe points (¼, ½, ¾)
    law.pdf(np.array([x0]))
    memo = law._solutions
    k = int(np.argmin(np.abs(memo["log_x"] - np.log(x0))))
    (j,) = [i for i, term in enumerate(law.terms) if term in law.numerical]
    u_star = complex(np.exp(memo["taus"][0, k]))
    terms = [Term(_nan_in_disc(t.factor, u_star, 0.02 * abs(u_star)) if i == j else t.factor, t.scale, t.power)
             for i, t in enumerate(law.terms)]
    return law, FreeProductLaw(terms, law.atoms, "tanh depth 1 with a NaN disc in ψ"), x0


def test_nan_psi_at_the_solution_raises(healthy_and_broken):
    _, broken, x0 = healthy_and_broken
    with pytest.raises(FloatingPointError, match=r"tanh.*non-finite ψ at u ="):
        broken.pdf(np.array([x0]))


def test_points_away_from_the_nan_disc_are_unchanged(healthy_and_broken):
    # the disc is visited only near x₀: elsewhere every point converges by the same path, to the same value
    law, broken, x0 = healthy_and_broken
    lo, hi = law.support
    x = lo + (hi - lo) * np.array([0.1, 0.3, 0.9])
    assert np.all(np.abs(x - x0) > 0.1 * (hi - lo))
    np.testing.assert_allclose(broken.pdf(x), law.pdf(x), rtol=1e-12)
