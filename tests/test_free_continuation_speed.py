"""The free-product solver's savings for shallow smooth laws (issue 15) leave the values where they were.

Three savings, each behind a module flag that restores the path before it (rmt_init/theory/free.py):
``_INNER_SUBSET`` (Newton's inner steps evaluate ψ only at the points they move), ``_WARM_REMEMBER`` (warm-started
roots are remembered with the slopes Newton already has, so later passes start next to them) and ``_WARM_INNER``
(warm starts take joint Newton steps in (t, τ_j), no inner steps, for factors of power ≤ ``_WARM_JOINT_POWER``).
All three solve the same equations to Newton's tolerance (|Δt| ≤ 4e−15, or the residual at its rounding), so the
densities agree to ~1e−14 relative in the bulk (measured: ≤ 5e−14 on 1–99 % of the support of tanh, sigmoid, gelu
at depth 1, selu at depth 6, erf at depth 2) and the tables' masses to the rounding of their sums (measured
≤ 4.4e−16 absolute): the tolerances below, 1e−12 relative and 1e−13 absolute, leave a 20–200× margin and are what
issue 15 allows a faster path.
"""
from __future__ import annotations

import numpy as np
import pytest

import rmt_init.theory._free_solver as free_solver
from rmt_init import jacobian_spectrum


def _old_solver(monkeypatch) -> None:
    monkeypatch.setattr(free_solver, "_INNER_SUBSET", False)
    monkeypatch.setattr(free_solver, "_WARM_REMEMBER", False)
    monkeypatch.setattr(free_solver, "_WARM_INNER", None)


def _tables_and_bulk(law):
    """cdf tables (edges found first), then the density on 1–99 % of the support (warm from the tables' roots)."""
    lo, hi = law.support
    tables = law._cdf_tables
    x = lo + (hi - lo) * np.linspace(0.01, 0.99, 61)
    return tables, law.pdf(x)


def test_shallow_tanh_tables_and_bulk_density_unchanged(monkeypatch) -> None:
    """Depth-1 tanh (σ_b² = 0.5: a hard edge at 0 from d's tails, the deep rule's range): the cdf tables (raw
    tanh–sinh panels and the hard-edge table) and the bulk density, shipped against the path before the savings."""
    new_law = jacobian_spectrum(1, "tanh", sigma_b2=0.5)
    new_tables, new_pdf = _tables_and_bulk(new_law)
    # the savings are really taken: warm-started roots are remembered (far more than the cold seeds)
    assert new_law._solutions["log_x"].size > 2000
    with monkeypatch.context() as m:
        _old_solver(m)
        old_law = jacobian_spectrum(1, "tanh", sigma_b2=0.5)
        old_tables, old_pdf = _tables_and_bulk(old_law)
        assert old_law._solutions["log_x"].size < new_law._solutions["log_x"].size
    assert np.max(np.abs(new_pdf / old_pdf - 1.0)) <= 1e-12
    for (nodes_n, below_n, above_n), (nodes_o, below_o, above_o) in zip(new_tables, old_tables):
        assert np.array_equal(nodes_n, nodes_o)
        assert np.max(np.abs(below_n - below_o)) <= 1e-13
        assert np.max(np.abs(above_n - above_o)) <= 1e-13
    edge_n, edge_o = new_law._hard_edge, old_law._hard_edge
    assert np.array_equal(edge_n.log_x, edge_o.log_x)
    assert np.max(np.abs(edge_n.cumulative - edge_o.cumulative)) <= 1e-13
    # the table's total mass (atoms included) is 1 on both paths to the same rounding
    mass_new, mass_old = (sum(float(b[-1]) for _, b, _ in tables) for tables in (new_tables, old_tables))
    assert abs(mass_new - mass_old) <= 1e-13


@pytest.mark.parametrize("inner", [None, 1])
def test_newton_inner_subset_is_pointwise(monkeypatch, inner) -> None:
    """Evaluating ψ again only at the points an inner step moved gives each point the same iterates as evaluating
    all of them (the solver's functions are point-wise): the roots agree to rounding, with 4 inner steps and with 1 (then
    a point converges by its step only once its ρ_j is at the inner tolerance too).
    Depth-2 sigmoid (σ_b² = 0.3), 40 points on 5–95 % of the support from a common crude start (far from the
    roots, so that the inner steps run, for some points only)."""
    law = jacobian_spectrum(2, "sigmoid", sigma_b2=0.3)
    lo, hi = law.support
    x = lo + (hi - lo) * np.linspace(0.05, 0.95, 40)
    t_ref = law._solve_cold(x)  # the roots, by the η-continuation
    start = t_ref + 0.02 * np.exp(1j * np.arange(x.size))
    taus_start = [np.log(float(term.scale) * np.expm1(start) / term.factor.mean) for term in law.numerical]

    def run(subset: bool):
        monkeypatch.setattr(free_solver, "_INNER_SUBSET", subset)
        return law._newton(x + 0j, start, [tau.copy() for tau in taus_start], inner=inner)

    t_sub, _, ok_sub = run(True)
    t_all, _, ok_all = run(False)
    assert ok_sub.mean() > 0.9 and np.array_equal(ok_sub, ok_all)
    assert np.max(np.abs(t_sub - t_all)) <= 1e-13
    assert np.max(np.abs(t_sub[ok_sub] - t_ref[ok_sub])) <= 1e-12
