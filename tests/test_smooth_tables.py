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

import rmt_init.theory.free as free
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
    monkeypatch.setattr(free, "_AXIS_X", 0.0)
    old = tables()
    assert np.all(np.isfinite(new)) and new.shape == old.shape
    assert np.max(np.abs(new - old) / np.maximum(np.abs(old), 1e-300)) <= 1e-12
