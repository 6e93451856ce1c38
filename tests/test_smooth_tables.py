"""The η-continuation's start on the imaginary axis for points next to 0 (issue 15: cdf and sampling tables of
smooth-activation laws), against the continuation from far above it replaces and the equations it solves.

Points 0 < x ≤ 1e−4 × the spectral scale (the hard edge at 0 of smooth laws, down to subnormal x, which the
tables' tanh–sinh panels and the hard-edge table ask for) start from the solution on z = iη tabulated once per
law (``FreeProductLaw._axis``), instead of each running the continuation from η = 10 × scale down to 10⁻³x
(hundreds of steps at x ~ 1e−300). t(z) is single-valued analytic in the upper half-plane, so both paths must
find the same root: they agree to Newton's tolerance (~1e−15 relative in t; 1e−12 asserted).
"""
from __future__ import annotations

import math

import numpy as np
import pytest

import rmt_init.theory._free_solver as free_solver
from rmt_init import jacobian_spectrum

_SMOOTH = [("tanh", 0.05), ("erf", 0.3), ("sigmoid", 0.0), ("selu", 0.3), ("gelu", 0.5)]


def _points_next_to_zero(law) -> np.ndarray:
    scale = law._axis_scale
    return np.concatenate([[1e-310, 5e-300], np.geomspace(1e-250, 1e-5 * scale, 10)])


@pytest.mark.parametrize("name, sigma_b2", _SMOOTH)
def test_axis_start_matches_the_continuation_from_far_above(name: str, sigma_b2: float) -> None:
    """Depth 6: t (and each τ_j) at x + i0 from the axis equal to those of the η-continuation from far above,
    1e−12 relative (observed ≤ 1e−14), every point accepted, inside the support (−π < Im t < 0)."""
    law = jacobian_spectrum(6, name, sigma_b2=sigma_b2)
    assert law.intervals[0][0] == 0.0 and law._axis_allowed
    x = _points_next_to_zero(law)
    t, taus, ok = law._continue_from_axis(x)
    t_ref, ok_ref, taus_ref = law._continue_eta(x, 0.25)
    assert ok.all() and ok_ref.all()
    assert np.all((t.imag < 0) & (t.imag > -math.pi))
    assert np.max(np.abs(t - t_ref) / np.abs(t_ref)) <= 1e-12
    for tau, tau_ref in zip(taus, taus_ref):
        assert np.max(np.abs(tau - tau_ref) / np.abs(tau_ref)) <= 1e-12


def test_axis_start_at_depth_100() -> None:
    """Depth-100 erf (σ_b² = 0.3): the same agreement (1e−12; observed 4e−14, the residual's rounding grows with
    the depth, which multiplies log χ's terms)."""
    law = jacobian_spectrum(100, "erf", sigma_b2=0.3)
    x = _points_next_to_zero(law)
    t, _, ok = law._continue_from_axis(x)
    t_ref, ok_ref, _ = law._continue_eta(x, 0.25)
    assert ok.all() and ok_ref.all()
    assert np.max(np.abs(t - t_ref) / np.abs(t_ref)) <= 1e-12


def test_axis_path_solves_the_equations() -> None:
    """Every tabulated point on z = iη (depth-6 gelu, down to η ~ 1e−300) solves Log(zχ(w)) = 0 and
    ψ_j(u_j) = s_j w: residuals by a fresh evaluation of log χ and ψ_j, ≤ 1e−12 (Newton's stopping rule:
    ~1e−15 times the number of logarithms summed), and lies on the physical branch (Im w < 0, Im u_j ≤ 0)."""
    law = jacobian_spectrum(6, "gelu", sigma_b2=0.5)
    law._extend_axis(math.log(1e-300))
    axis = law._axis
    assert not axis["end"] and axis["log_eta"][-1] <= math.log(1e-300)
    assert np.all(np.diff(axis["log_eta"]) < 0)
    t, taus = axis["t"], list(axis["taus"])
    value, _, extras = law._log_chi(t, taus)
    residual = axis["log_eta"] + 0.5j * math.pi + value
    residual = residual.real + 1j * np.angle(np.exp(1j * residual.imag))
    assert np.max(np.abs(residual)) <= 1e-12
    for rho, _, s_opw, _, _ in extras:
        assert np.max(np.abs(rho) / np.abs(s_opw)) <= 1e-12
    assert np.all(np.sin(t.imag) < 0) and all(np.all(np.sin(tau.imag) <= 0) for tau in taus)


@pytest.mark.parametrize("name, sigma_b2", [("tanh", 0.05), ("selu", 0.0)])
def test_cdf_tables_unchanged(name: str, sigma_b2: float, monkeypatch: pytest.MonkeyPatch) -> None:
    """Depth 6: the cdf tables (nodes, mass below, mass above; the hard-edge panel included) with the axis start
    equal to those of the continuation from far above (``_AXIS_X = 0`` turns the axis start off), 1e−12
    relative (observed ≤ 1e−15)."""
    def tables():
        law = jacobian_spectrum(6, name, sigma_b2=sigma_b2)
        return np.concatenate([np.concatenate(table) for table in law._cdf_tables])

    new = tables()
    monkeypatch.setattr(free_solver, "_AXIS_X", 0.0)
    old = tables()
    assert np.all(np.isfinite(new)) and new.shape == old.shape
    assert np.max(np.abs(new - old) / np.maximum(np.abs(old), 1e-300)) <= 1e-12


def _mp_density(law, x: float, t0: complex, tau0: complex, dps: int = 25) -> float:
    """ρ(x) of a depth-L tanh law (Marchenko–Pastur factor S = C/(1 + w) and the law of d = sech⁴(√q z), z ~ N(0, 1),
    each to the power L) in mpmath: Newton on log z + log w − log(1 + w) + L(log C − log w + log u) = 0 (mod 2πi) and
    ψ(u) = ∫ u d/(1 − u d) dN(z) = w, from the double solution; ψ by tanh–sinh on (−∞, 0, ∞) (the pole 1/u lies far
    outside the range (0, 1] of d at these points)."""
    import mpmath as mp

    (mp_term,), (d_term,) = law.rational, law.numerical
    jet = d_term.factor.rules[0].piece.jet  # d and its derivatives at z, from √q (the law's own double)
    root_q = dict(zip(jet.__code__.co_freevars, (c.cell_contents for c in jet.__closure__)))["root_q"]
    power = d_term.power
    assert mp_term.power == power and mp_term.factor.poles == (1.0,) and not mp_term.factor.zeros
    with mp.workdps(dps):
        constant = mp.mpf(mp_term.factor.constant.numerator) / mp_term.factor.constant.denominator
        rq, z = mp.mpf(root_q), mp.mpf(x)
        density = lambda v: mp.exp(-v * v / 2) / mp.sqrt(2 * mp.pi)  # noqa: E731
        d = lambda v: mp.sech(rq * v) ** 4  # noqa: E731
        w, u = mp.expm1(mp.mpc(t0)), mp.exp(mp.mpc(tau0))
        branch = None
        for _ in range(4):
            psi = mp.quad(lambda v: density(v) * u * d(v) / (1 - u * d(v)), [-mp.inf, 0, mp.inf])
            dpsi = mp.quad(lambda v: density(v) * d(v) / (1 - u * d(v)) ** 2, [-mp.inf, 0, mp.inf])
            f1 = mp.log(z) + mp.log(w) - mp.log(1 + w) + power * (mp.log(constant) - mp.log(w) + mp.log(u))
            branch = mp.nint(mp.im(f1) / (2 * mp.pi)) if branch is None else branch
            f1 -= 2j * mp.pi * branch
            jacobian = mp.matrix([[1 / w - 1 / (1 + w) - power / w, power / u], [-1, dpsi]])
            step = mp.lu_solve(jacobian, mp.matrix([-f1, -(psi - w)]))
            w, u = w + step[0], u + step[1]
        return float(-mp.im(w) / (mp.pi * z))


def test_depth_100_density_next_to_the_top_edge_against_mpmath() -> None:
    """Depth-100 tanh (σ_b² = 0.05) at 0.97 and 0.99 of its top edge, where the density is most sensitive to ψ (the
    depth multiplies log u, and Im w ≪ |w| ≪ 1 there): against the mpmath solution (25 digits). The solver's
    residual ψ(u) − w takes ψ summed as ψ itself there (``psi_parts``): through (1 + ψ) − (1 + w), the rounding of
    1 + ψ (1e−16) left errors of 3–5e−11 here, up to 1.4e−10 at other points near the edge (the old quadrature
    path: 1.8e−10). Tolerance 1.5e−11: observed ≤ 2e−12 with one BLAS thread and 5.2e−12 with two (the Gauss
    sums' summation order, amplified ~5e4 this close to the edge), below the 3–4.5e−11 of the old formulation."""
    law = jacobian_spectrum(100, "tanh", sigma_b2=0.05)
    top = law.support[1]
    x = np.array([0.97, 0.99]) * top
    t, taus = law._solve_cold_taus(x)
    p = law.pdf(x)
    for xi, pi, ti, taui in zip(x, p, t, taus[0]):
        reference = _mp_density(law, float(xi), complex(ti), complex(taui))
        assert abs(pi / reference - 1.0) <= 1.5e-11
