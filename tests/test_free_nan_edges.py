"""A numerical factor whose ψ is NaN on part of the real axis must make the edge search raise, not move an edge.

The edges of a free product are the critical values of z = 1/χ(w) on the real axis, where each numerical factor's
ψ is inverted for real u (``_real_inverse_array``). A NaN ψ there used to read as "ψ(u) is not above w": the real
inverse returned a wrong u (the bisection's midpoint, 0.75 instead of 0.9 below) and the scan's NaN slopes as "no
sign change", so the upper edge of the law vanished from its critical values without an error. Here the factor of
tanh'(√q z)² (depth 1, σ_b² = 0.5, upper edge 6.323 at the real u* = 0.7201) is wrapped to return NaN on the real
strip 0.65 < Re u < 0.8 (|Im u| < 0.0075), exact elsewhere: everything that needs ψ in that strip must raise
FloatingPointError naming the factor and the u.
"""

import copy

import numpy as np
import pytest

from rmt_init.theory.free import FreeProductLaw, Term, _real_inverse_array
from rmt_init.theory.jacobian import jacobian_spectrum

_STRIP = (0.65, 0.8)


def _nan_on_strip(factor, lo: float, hi: float):
    """A copy of ``factor`` whose 1 + ψ, uψ' (and ψ) are NaN for lo < Re u < hi, |Im u| < 0.05 (hi − lo)."""

    class NaNOnStrip(type(factor)):
        def _mask(self, u):
            u = np.asarray(u)
            return (u.real > lo) & (u.real < hi) & (np.abs(u.imag) < 0.05 * (hi - lo))

        def one_plus_psi(self, u, *args, **kwargs):
            return tuple(np.where(self._mask(u), np.nan, v) for v in super().one_plus_psi(u, *args, **kwargs))

        def psi_parts(self, u, *args, **kwargs):
            return tuple(np.where(self._mask(u), np.nan, v) for v in super().psi_parts(u, *args, **kwargs))

    wrapped = copy.copy(factor)
    wrapped.__class__ = NaNOnStrip
    return wrapped


@pytest.fixture(scope="module")
def tanh_factor_and_broken():
    law = jacobian_spectrum(1, "tanh", sigma_b2=0.5)
    (j,) = [i for i, term in enumerate(law.terms) if term in law.numerical]
    factor = law.terms[j].factor
    broken = _nan_on_strip(factor, *_STRIP)
    terms = [Term(broken if i == j else t.factor, t.scale, t.power) for i, t in enumerate(law.terms)]
    return law, factor, broken, FreeProductLaw(terms, law.atoms, "tanh depth 1 with a NaN strip in ψ")


def test_real_inverse_is_exact_outside_and_raises_through_the_strip(tanh_factor_and_broken):
    _, factor, broken, _ = tanh_factor_and_broken
    u = np.array([0.3, 0.9])
    w = factor.one_plus_psi(u + 0j)[0].real - 1.0
    # the healthy factor: its own round trip (ψ increasing on the real branch, one root each)
    np.testing.assert_allclose(_real_inverse_array(factor, w), u, rtol=1e-12)
    # u = 0.3: the safeguarded Newton never enters the strip, so the broken factor gives the same root
    np.testing.assert_allclose(_real_inverse_array(broken, w[:1]), u[:1], rtol=1e-12)
    # u = 0.9: the bracket [0.5, 1) has its midpoint 0.75 in the strip (the old code returned 0.75 as the root)
    with pytest.raises(FloatingPointError, match=r"tanh.*non-finite ψ at the real u = 0\.7"):
        _real_inverse_array(broken, w[1:])


def test_edge_search_raises_instead_of_dropping_the_edge(tanh_factor_and_broken):
    law, _, _, broken = tanh_factor_and_broken
    assert len(law._critical_values()) == 1  # the upper edge (the lower one is the hard edge 0)
    np.testing.assert_allclose(law.support[1], law._critical_values()[0], rtol=0)
    with pytest.raises(FloatingPointError, match=r"tanh.*non-finite ψ at the real u = 0\.[678]"):
        broken.support
