"""The depth-1 gelu tables' savings (issue 15) against the paths before them.

- The roots of d(ζ) = c in one batch (``GaussianImageS.batched_roots``): every run's start in one jet call, the duplicate
  roots from one table of distances, the principal parts of all (point, root) pairs at once — the same roots, masks and
  ψ bit for bit as the start-by-start loop.
- The deep rule's window from padded tables (``DeepRule._padded``): the same v, w, p·w as a window clipped to the grid
  with the weights off it zeroed, so the same sums bit for bit (checked against that formula, written out here).
- The bridged warm start (``FreeProductLaw._solve_bridged``, docs/derivations.md §2.6 (h)): a point no warm pass took is
  reached by warm Newton over sub-steps in ln x; its root must be the η-continuation's from far above (checked point by
  point), and the tables equal to those without it.
"""

import numpy as np
import pytest

import rmt_init.theory._free_solver as free_solver
from rmt_init.theory import jacobian_spectrum
from rmt_init.theory._smooth_law import _DEEP_TERMS, _DEEP_WINDOW, _DL_BARY, _sums
from rmt_init.theory.gaussian_image import GaussianImageS


def _factor(name: str, depth: int = 1, sigma_b2: float = 0.5) -> GaussianImageS:
    law = jacobian_spectrum(depth, name, sigma_b2=sigma_b2)
    return law.numerical[0].factor


def _near_cut(factor: GaussianImageS, rng: np.random.Generator, n: int = 300) -> np.ndarray:
    """u = 1/c with c across the range of d (and a little beyond), Im c ≥ 0 from 1e−12 to 1e−1 of the top."""
    lo, hi = factor._range
    top = hi
    re = rng.uniform(lo - 0.05 * top, hi * 1.05, n)
    re[: n // 6] = rng.uniform(0.0, 0.05 * top, n // 6)  # next to 0 and gelu's interior critical values
    im = top * 10.0 ** rng.uniform(-12.0, -1.0, n)
    return 1.0 / (re + 1j * im)


@pytest.mark.parametrize("name,sigma_b2", [("gelu", 0.5), ("gelu", 1.0), ("tanh", 0.5), ("erf", 0.3), ("sigmoid", 0.5), ("selu", 0.3)])
def test_batched_roots_equal_the_start_by_start_loop(name, sigma_b2, monkeypatch):
    factor = _factor(name, sigma_b2=sigma_b2)
    u = _near_cut(factor, np.random.default_rng(15))
    rule = factor.rules[0]
    c = 1.0 / u
    new_roots = factor._roots(rule, c)
    new_parts = factor._piece_integrals(rule, u)
    monkeypatch.setattr(GaussianImageS, "batched_roots", False)
    old_roots = factor._roots(rule, c)
    old_parts = factor._piece_integrals(rule, u)
    assert new_roots[1].any()  # roots were found and subtracted: the comparison means something
    np.testing.assert_array_equal(new_roots[1], old_roots[1])
    np.testing.assert_array_equal(np.where(new_roots[1], new_roots[0], 0), np.where(old_roots[1], old_roots[0], 0))
    np.testing.assert_array_equal(new_parts[0], old_parts[0])
    np.testing.assert_array_equal(new_parts[1], old_parts[1])


def _deep_by_clipped_window(deep, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """DeepRule._one_plus_psi as written before the padded tables: the window clipped to the grid, weights off it zeroed."""
    log_c = -np.log(u)
    width = deep.edges[1] - deep.edges[0]
    k0 = np.clip(np.floor((log_c.real - deep.edges[0]) / width).astype(int), 0, deep.count - 1)
    window = k0[:, None] + np.arange(-_DEEP_WINDOW, _DEEP_WINDOW + 1)[None, :]
    valid = (window >= 0) & (window < deep.count)
    window = np.clip(window, 0, deep.count - 1)
    v = deep.v[window].reshape(u.size, -1)
    w = np.where(valid[:, :, None], deep.w[window], 0.0).reshape(u.size, -1)
    pw = np.where(valid[:, :, None], deep.pw[window], 0.0).reshape(u.size, -1)
    y = v - log_c[:, None]
    with np.errstate(over="ignore", under="ignore"):
        e = np.exp(y.real) * np.exp(-1j * log_c.imag)[:, None]
    f = 1.0 / (1.0 - e)
    g = e * f * f
    inv = 1.0 / y
    near = np.abs(log_c.imag) <= 1.5
    nodes, values = deep.v[k0], deep.p[k0]
    x = np.where(near, log_c, log_c.real + 1.5j)[:, None]
    r = _DL_BARY[None, :] / (x - nodes)
    p_l = (r * values).sum(axis=1) / r.sum(axis=1)
    dp_l = (r * (p_l[:, None] - values) / (x - nodes)).sum(axis=1) / r.sum(axis=1)
    p_l, dp_l = np.where(near, p_l, 0.0), np.where(near, dp_l, 0.0)
    v_a = deep.edges[np.min(np.where(valid, window, deep.count), axis=1)]
    v_b = deep.edges[np.max(np.where(valid, window, -1), axis=1) + 1]
    j1 = np.log(v_b - log_c) - np.log(v_a - log_c)
    j2 = 1.0 / (v_a - log_c) - 1.0 / (v_b - log_c)
    s1 = (w * inv).sum(axis=1)
    s2 = (w * inv * inv).sum(axis=1)
    value = (pw * f).sum(axis=1) + p_l * (s1 - j1)
    slope = (pw * g).sum(axis=1) - p_l * s2 - dp_l * s1 + p_l * j2 + dp_l * j1
    terms = _DEEP_TERMS
    j = np.arange(terms + 1, dtype=float)
    with np.errstate(under="ignore", over="ignore", invalid="ignore"):
        k_below = k0 - _DEEP_WINDOW - 1
        has_below = k_below >= 0
        kb = np.maximum(k_below, 0)
        y_below = np.where(has_below, np.exp(deep.edges[kb + 1] - log_c), 0.0)
        below = np.where(has_below[:, None], y_below[:, None] ** j[None, :terms] * deep._below[kb, :terms], 0.0)
        k_above = k0 + _DEEP_WINDOW + 1
        has_above = k_above <= deep.count - 1
        ka = np.minimum(k_above, deep.count - 1)
        y_above = np.where(has_above, np.exp(log_c - deep.edges[ka]), 0.0)
        above = np.where(has_above[:, None], y_above[:, None] ** j[None, 1:] * deep._above[ka, 1 : terms + 1], 0.0)
    c_hat = np.exp(log_c - deep.log_threshold)
    first, second = _sums(c_hat, deep.rest_nodes, deep.rest_weights)
    value = value + below.sum(axis=1) - above.sum(axis=1) - c_hat * first + deep.zero_mass
    slope = slope + below @ j[:terms] + above @ j[1:] + c_hat * second
    return value, slope


@pytest.mark.parametrize("sigma_b2", [0.5, 1.0])
def test_deep_rule_padded_window_equals_the_clipped_one(sigma_b2):
    deep = _factor("gelu", sigma_b2=sigma_b2).gauss_rule.deep
    assert deep is not None
    rng = np.random.default_rng(3)
    # Re log c over the rule's whole reach (both ends of the grid, where the window is clipped), arg c from 1e−3 to π
    lo, hi = deep.edges[0] + 35.0, deep.log_threshold - 1.5
    re = np.concatenate([rng.uniform(lo, hi, 400), np.linspace(lo, lo + 10.0, 50), np.linspace(hi - 10.0, hi, 50)])
    im = rng.choice([1.0, -1.0], re.size) * 10.0 ** rng.uniform(-3.0, np.log10(np.pi), re.size)
    u = np.exp(-(re + 1j * im))
    u = u[deep.covers(u)]
    assert u.size > 400
    value, slope = deep.one_plus_psi(u)
    ref_value = np.empty(u.size, complex)
    ref_slope = np.empty(u.size, complex)
    for start in range(0, u.size, 64):  # (the same blocks as one_plus_psi: each row's sums are its own)
        ref_value[start : start + 64], ref_slope[start : start + 64] = _deep_by_clipped_window(deep, u[start : start + 64])
    np.testing.assert_array_equal(value, ref_value)
    np.testing.assert_array_equal(slope, ref_slope)


def test_bridged_roots_are_the_continuation_roots():
    """Points across depth-1 gelu's sharp feature near x ≈ 0.02 (σ_b² = 0.5), bridged from a coarse grid's roots: each
    accepted root equals the one the η-continuation from far above reaches (to Newton's tolerance)."""
    law = jacobian_spectrum(1, "gelu", sigma_b2=0.5)
    law.support
    law._pdf_vectorised(np.geomspace(0.004, 0.08, 12))  # the roots bridges start from
    x = np.geomspace(0.0045, 0.07, 40)
    t, accepted = law._solve_bridged(x)
    assert accepted.sum() >= 20
    cold = law._solve_cold(x[accepted])
    np.testing.assert_allclose(t[accepted], cold, rtol=0, atol=1e-12)
    # the density from them, as the solver reports it, against the continuation's
    rho_bridged = -np.exp(t[accepted].real) * np.sin(t[accepted].imag) / (np.pi * x[accepted])
    rho_cold = -np.exp(cold.real) * np.sin(cold.imag) / (np.pi * x[accepted])
    np.testing.assert_allclose(rho_bridged, rho_cold, rtol=1e-12)


def test_bridged_tables_equal_the_continued_ones(monkeypatch):
    """Depth-1 gelu (σ_b² = 0.5) cdf tables with and without the bridged warm start: equal to 1e−12 relative (measured
    ≤ 6e−16), the hard-edge table the same panels, and the bridge actually taken (fewer points by the η-continuation)."""
    counts: dict[str, int] = {}
    original = free_solver.FreeProductSolver._solve_cold_taus

    def counted(key):
        def solve(self, x, ratio=0.25):
            counts[key] = counts.get(key, 0) + np.size(x)
            return original(self, x, ratio)

        return solve

    monkeypatch.setattr(free_solver.FreeProductSolver, "_solve_cold_taus", counted("bridged"))
    law = jacobian_spectrum(1, "gelu", sigma_b2=0.5)
    law.support
    counts.clear()
    new = law._cdf_tables
    new_edge = law._hard_edge
    monkeypatch.setattr(free_solver, "_BRIDGE_STEPS", 0)
    monkeypatch.setattr(free_solver.FreeProductSolver, "_solve_cold_taus", counted("continued"))
    law = jacobian_spectrum(1, "gelu", sigma_b2=0.5)
    law.support
    old = law._cdf_tables
    old_edge = law._hard_edge
    assert counts["bridged"] < counts["continued"]
    np.testing.assert_array_equal(new_edge.log_x, old_edge.log_x)
    np.testing.assert_allclose(new_edge.cumulative, old_edge.cumulative, rtol=1e-12)
    for (nodes_n, below_n, above_n), (nodes_o, below_o, above_o) in zip(new, old):
        np.testing.assert_array_equal(nodes_n, nodes_o)
        np.testing.assert_allclose(below_n, below_o, rtol=1e-12, atol=0)
        np.testing.assert_allclose(above_n, above_o, rtol=1e-12, atol=1e-300)


@pytest.mark.parametrize("sigma_b2", [0.3, 0.5, 1.0])
def test_tied_nodes_summed_once_equal_node_by_node(sigma_b2, monkeypatch):
    """gelu's quadrature nodes where d = 1 (and d = 0, underflowed) exactly are summed as one term: the same ψ, uψ' as the
    node-by-node sums to their rounding, near the cut and across the range of d."""
    factor = _factor("gelu", sigma_b2=sigma_b2)
    rule = factor.rules[0]
    assert 1.0 in rule.tied_d and rule.sum_d.size < 0.7 * rule.d.size  # the tail is there to be summed once
    np.testing.assert_allclose(rule.tied_gw.sum() + rule.sum_gw.sum(), rule.gw.sum(), rtol=1e-15)
    u = _near_cut(factor, np.random.default_rng(7))
    u = np.concatenate([u, 1.0 / (1.0 + 10.0 ** np.linspace(-12, -2, 40) * (1.0 + 1j))])  # c next to d = 1 (the tail's pole)
    value, slope = factor._piece_integrals(rule, u)
    monkeypatch.setattr(GaussianImageS, "tied_nodes", False)
    ref_value, ref_slope = factor._piece_integrals(rule, u)
    # the node sums' own rounding: ε × Σ |terms| (near the cut the terms next to the pole are large and cancel against
    # its principal part, so both sums carry an absolute rounding of that size; elsewhere it is ε |ψ|)
    inverse = np.abs(1.0 / (1.0 - u[:, None] * rule.d[None, :]))
    scale_value = (rule.gw * inverse).sum(axis=1)
    scale_slope = (rule.gw * inverse * inverse).sum(axis=1) + scale_value
    eps = np.finfo(float).eps
    assert np.all(np.abs(value - ref_value) <= 64 * eps * scale_value)
    assert np.all(np.abs(slope - ref_slope) <= 64 * eps * scale_slope)
    assert np.median(np.abs(value - ref_value) / np.abs(ref_value)) <= 1e-15


def test_no_bridges_for_laws_with_atoms(monkeypatch):
    """Laws whose factors have atoms (selu's d = λ², or BN's discrete factors) keep the continuation: another root of the
    same equations may lie near a bridge's path there (the case the warm start's jump check was made for)."""
    calls = []
    original = free_solver.FreeProductSolver._solve_bridged

    def watched(self, x):
        calls.append(np.size(x))
        return original(self, x)

    monkeypatch.setattr(free_solver.FreeProductSolver, "_solve_bridged", watched)
    law = jacobian_spectrum(1, "selu", sigma_b2=1.0)
    assert not law._tangent_steps
    law.support
    law._cdf_tables
    assert calls == []
    gelu = jacobian_spectrum(1, "gelu", sigma_b2=0.5)  # (and a law without atoms does take them)
    gelu.support
    gelu._cdf_tables
    assert calls
