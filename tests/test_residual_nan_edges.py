"""A law of D² whose Φ is NaN on part of the real axis must make the residual edge search raise, not move an edge.

The edges of a residual law come from real κ-curves (docs/derivations.md §8.3, §8.8): z(κ) along the real roots of
s e(1 + e) = κΦ(κ)^{1+o} (:func:`block_edges`) and one block's real branches in their parameter t
(:func:`product_edges`, for products of several blocks). A NaN there used to read as "the quadratic has no real root": the scan skipped it, so an
extremum of z inside a NaN stretch vanished from the candidate edges (below: block_edges returned [1e−17, 0.0843]
without the upper edge 3.7826), and a branch table stopped at its first NaN (below the two-block edges happened to
survive, the Newton refinement having started outside the NaN stretch).
Here one tanh residual block (α = 0.8, σ_w² = 1; upper edge 3.7826 at κ ≈ 0.59 on the root through e = 0, found as
the minimum of z) has its law of D² wrapped to return NaN for 0.5 < κ < 0.7 on the real axis, exact elsewhere.
"""

import copy

import numpy as np
import pytest

from rmt_init.theory.jacobian import jacobian_spectrum
from rmt_init.theory.residual import block_edges, product_edges

_STRIP = (0.5, 0.7)


def _nan_on_strip(factor, lo: float, hi: float):
    """A copy of the residual block ``factor`` whose law of D² returns NaN (Φ and κΦ') for lo < Re κ < hi near the
    real axis."""
    d = copy.copy(factor.d)

    class NaNOnStrip(type(d)):
        def phi(self, kappa):
            kappa = np.asarray(kappa)
            mask = (kappa.real > lo) & (kappa.real < hi) & (np.abs(kappa.imag) < 0.05 * (hi - lo))
            return tuple(np.where(mask, np.nan, v) for v in super().phi(kappa))

    d.__class__ = NaNOnStrip
    broken = copy.copy(factor)
    broken.d = d
    return broken


@pytest.fixture(scope="module")
def tanh_block_and_broken():
    law = jacobian_spectrum(1, "tanh", residual=0.8)
    (term,) = law.terms
    return law, term.factor, _nan_on_strip(term.factor, *_STRIP)


def test_healthy_block_edges_include_the_support(tanh_block_and_broken):
    law, factor, _ = tanh_block_and_broken
    lower, upper = law.support
    edges = block_edges(factor, 1)
    # the support's edges are among the candidates (the scan that the broken law must not shortcut)
    assert any(abs(e - upper) <= 1e-12 * upper for e in edges) and any(abs(e - lower) <= 1e-12 * lower for e in edges)
    assert 3.78 < upper < 3.79  # independent of the scan: the upper edge of one tanh block at α = 0.8 (law.support)


def test_block_edges_raise_instead_of_dropping_the_upper_edge(tanh_block_and_broken):
    _, _, broken = tanh_block_and_broken
    with pytest.raises(FloatingPointError, match=r"non-finite Φ at the real κ = 0\.[56]"):
        block_edges(broken, 1)


def test_branch_tables_raise_instead_of_stopping_at_the_nan(tanh_block_and_broken):
    _, factor, broken = tanh_block_and_broken
    # two blocks: the branches in t (product_edges) against the κ-curve of the block squared (block_edges), two
    # independent scans of the same edges
    lower, upper = product_edges([(factor, 2)])
    np.testing.assert_allclose([lower, upper], block_edges(factor, 2), rtol=1e-9)
    with pytest.raises(FloatingPointError, match=r"non-finite Φ at the real κ = 0\.[56]"):
        product_edges([(broken, 2)])
