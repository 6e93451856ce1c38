"""Residual blocks whose laws of D² differ (smooth activations: q_l changes along the residual stream) solved as one
stacked array (ResidualBlockS.one_plus_psi_many with their Gauss rules padded side by side, issue 13): the same ψ as
each block's own solve, the same law density, and a deep smooth law whose cdf tables carry mass 1."""
from __future__ import annotations

import numpy as np
import pytest

from rmt_init.theory import ResidualBlockS, jacobian_spectrum
from rmt_init.theory.activations import get_activation
from rmt_init.theory.gaussian_image import GaussianImageS
from rmt_init.theory.jacobian import _d_squared_factor

from .test_residual_many_blocks import assert_stacked_equals_single

# complex u off the cut (continuation, then warm starts from the previous call and from memory), real u below the
# cut (each block's real branch), u near 0, a point next to the support (κ near the cut of the law of D²: its
# quadrature, not the Gauss rule) and a non-finite u (NaN out)
_BASE = np.array([0.05 - 0.2j, -0.3 - 0.1j, 0.2 - 0.05j, 1.5 - 0.4j, -2.0 - 1.0j, 1e-4 - 1e-5j, -0.5 + 0j, 0.01 + 0j,
                  0.6 - 1e-3j, complex(np.nan, 0.0)])


@pytest.mark.parametrize("act, qs, s_values", [
    ("tanh", [0.3, 0.6, 1.0, 1.7, 2.9, 5.0], [1.6, 0.9, 0.4, 0.25, 2.4, 0.1]),
    ("gelu", [0.4, 1.0, 2.5], [0.8, 2.2, 0.3]),
    ("selu", [0.5, 2.0, 4.0], [0.6, 1.8, 0.2]),  # an atom (λ² at h > 0) besides the rule: padded atoms
])
def test_stacked_laws_equal_one_block_at_a_time(monkeypatch, act: str, qs: list[float], s_values: list[float]) -> None:
    # The reference is each block's own one_plus_psi (its own Gauss rule, tier by tier, and its quadrature near the
    # cut) on a twin block with the same history of calls. The stacked path sums the same rule's terms in another
    # order (einsum over padded rows instead of one matrix–vector product) and warm-starts Newton from other
    # solved points, so the values agree to the rounding of those sums amplified by Newton's conditioning: 1e-11
    # relative. Measured: 1 + ψ to ≤ 3e-16; u ψ' to ≤ 4.4e-12 at |u| ~ 1e-4, where it is ~su·E d ~ 1e-4 formed from
    # O(1) terms (−u a p²/det J), so one rounding of those terms is ~1e-12 of it on either path.
    factors = [_d_squared_factor(get_activation(act), q) for q in qs]
    stacked = [ResidualBlockS(f, s) for f, s in zip(factors, s_values)]
    single = [ResidualBlockS(f, s) for f, s in zip(factors, s_values)]
    calls, stacked_calls = [], []
    original = GaussianImageS.one_plus_psi
    # counts the laws' own ψ calls (stacked_calls: those made by the stacked path)
    monkeypatch.setattr(GaussianImageS, "one_plus_psi", lambda self, u, chunk=256: calls.append(u.size) or original(self, u, chunk))
    for step, scale in enumerate([1.0, 1.01, 1.03, 0.8, 1.2, 3.0, 0.9]):
        us = [_BASE * scale * (1.0 + 0.05 * j) for j in range(len(qs))]
        if step == 5:
            us = [u[:6].reshape(3, 2) for u in us]  # another shape: the warm starts come from memory
        if step == 6:
            us = [u[j:] for j, u in enumerate(us)]  # a different shape per block: the per-block stacked path
        before = len(calls)
        many = ResidualBlockS.one_plus_psi_many(stacked, us)
        stacked_calls.append(len(calls) - before)
        assert_stacked_equals_single(single, us, many, rtol=1e-11)
    assert sum(stacked_calls), "the stacked path never fell back to a law's own ψ (real branch or points near the cut)"


def test_stacked_laws_density_equals_old_path() -> None:
    # tanh, depth 20, α = 0.3: every block has its own law of D² (q_l grows along the stream). The density with the
    # blocks stacked and with one block at a time (ResidualBlockS.stack_laws = False, the path before), each on a
    # fresh law, agree to 1e-11 relative (measured ≤ 2.2e-12 here, ≤ 1.1e-12 at depth 100 in
    # benchmarks/bench_residual_many_blocks.py); the support does not use the block solver's stacking
    law = jacobian_spectrum(20, "tanh", residual=0.3)
    assert len({id(t.factor.d.factor) for t in law.terms}) == 20
    a, b = law.support
    x = a + (b - a) * np.array([1e-3, 0.4, 0.999])  # next to both edges and inside
    new = law.pdf(x)
    previous = ResidualBlockS.stack_laws
    try:
        ResidualBlockS.stack_laws = False
        old_law = jacobian_spectrum(20, "tanh", residual=0.3)
        old_law.__dict__["_product_edges"] = law._product_edges  # the same edges (product_edges), not recomputed
        old = old_law.pdf(x)
    finally:
        ResidualBlockS.stack_laws = previous
    assert np.all(old > 0)
    np.testing.assert_allclose(new, old, rtol=1e-11)


def test_deep_smooth_law_cdf_tables_carry_mass_one() -> None:
    # tanh, α = 0.05, depth 100 (100 different laws of D², ~14 s; depth 200 takes ~30 s — build 9.8 s, support
    # 10.8 s, tables 6 s — over this file's share of the test budget, and depth 1000 is timed in
    # benchmarks/bench_residual_many_blocks.py: mass 1 − 9e−14 there): the soft-edge cdf
    # table of the density on [a, b] (SoftEdgeTable, from the density at θ_j = πj/N, N ≥ 64) carries mass 1 and its
    # first moment is the exact mean Π_l (1 + α²σ_w² E φ'(h_l)²) (free multiplicativity; docs/derivations.md §8.2),
    # both by the trapezoidal rule in θ, which converges geometrically for the periodic analytic integrand
    # (Trefethen & Weideman 2014): 1e-9 leaves room for the table's own error estimate (~1e-15 measured)
    law = jacobian_spectrum(100, "tanh", residual=0.05)
    a, b = law.support
    assert 0.0 < a < b < np.inf
    tables = law._soft_tables
    assert tables is not None and len(tables) == 1
    table = tables[0]
    assert abs(table.mass - 1.0) <= 1e-9 and table.error <= 1e-9
    n = table.n
    theta = np.arange(1, n) * (np.pi / n)
    x = table.x_of(theta)
    density = law.pdf(x)
    assert np.all(np.isfinite(density)) and np.all(density > 0)
    weight = x * 0.5 * (table.tb - table.ta) * np.sin(theta) * (np.pi / n)  # dx = x dt, dt = (t_b − t_a) sin θ dθ/2
    assert abs(float(np.sum(density * weight)) - 1.0) <= 1e-9
    assert abs(float(np.sum(x * density * weight)) / law.mean() - 1.0) <= 1e-9
    cdf = law.cdf(x)
    assert np.all(np.diff(cdf) > 0) and 0.0 < cdf[0] and cdf[-1] < 1.0


@pytest.mark.parametrize("act", ["tanh", "erf", "sigmoid", "selu", "gelu"])
def test_upper_edge_without_the_cut_is_unchanged(act: str) -> None:
    # ResidualBlockS._upper_edge skips the curve's points next to the cut of the law of D² (its quadrature) when the
    # minimum over the Gauss-rule points is interior: max supp F must be bit-identical to the whole-grid search
    # (skip_cut = False) for small and large s, both ensembles and short and long ranges of d (measured on 300 such
    # blocks: all bit-identical, 8 s instead of 16 s)
    previous = ResidualBlockS.skip_cut
    try:
        for q in (0.05, 3.0):
            factor = _d_squared_factor(get_activation(act), q)
            for s in (0.0025, 9.0):
                for ensemble in ("gaussian", "orthogonal"):
                    ResidualBlockS.skip_cut = True
                    new = ResidualBlockS(factor, s, ensemble).xmax
                    ResidualBlockS.skip_cut = False
                    old = ResidualBlockS(factor, s, ensemble).xmax
                    assert new == old, (q, s, ensemble, new, old)
    finally:
        ResidualBlockS.skip_cut = previous


def test_product_edges_chunked_grid_is_unchanged(monkeypatch) -> None:
    # product_edges evaluates its x-grid in chunks up to the first interior minimum (the point next to the cut of
    # the laws of D², their quadrature, is then not reached): the edges must be bit-identical to those from the
    # whole grid in one piece (_EDGE_CHUNK = _EDGE_GRID), on both sides (a lower edge above 0 here)
    import rmt_init.theory._residual_edges as residual_edges

    law = jacobian_spectrum(4, "tanh", residual=0.4)
    terms = [(t.factor, t.power) for t in law.terms]
    chunked = residual_edges.product_edges(terms)
    monkeypatch.setattr(residual_edges, "_EDGE_CHUNK", residual_edges._EDGE_GRID)
    whole = residual_edges.product_edges(terms)
    assert chunked[0] is not None and chunked[1] is not None and chunked[0] > 0
    assert chunked == whole
