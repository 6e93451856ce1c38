"""The free-product Newton solver does not report convergence where a step takes u_j = e^{τ_j} out of the float range.

Depth-1 gelu with bias variance 1 has one numerical (smooth) factor. Far out on its ψ's tail, at τ = −155.76 − 146.535i,
u ψ'(u) ≈ 1e−68: the Newton step in τ, (s(1 + w) dt − ρ)/(u ψ'), is then ~1e67, and the rounding bound
2·noise/|uψ'| ~ 1e55 used to accept the residual (0.5) as converged — a convergence test that passes any residual.
docs/derivations.md §2.6.
"""

import warnings

import numpy as np
import pytest

import rmt_init


@pytest.fixture(scope="module")
def law():
    return rmt_init.jacobian_spectrum(1, "gelu", sigma_b2=1.0)


def test_step_out_of_float_range_is_not_converged(law):
    z = np.array([0.023 + 0.024j])
    t0 = np.array([-0.7 - 0.17j])
    tau0 = -155.76 - 146.535j
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        _, _, extras = law._log_chi(t0, [np.array([tau0])])
        rho, u_dpsi = extras[0][0], extras[0][1]
        # the premise: |uψ'| so small that the τ step leaves the float range, with a residual of order 1
        assert abs(u_dpsi[0]) < 1e-60 and abs(rho[0]) > 0.1
        t, taus, converged = law._newton(z, t0.copy(), [np.array([tau0])], iterations=1, inner=0)
    # the step took u = e^τ out of the float range: no convergence, whatever the residual
    assert abs(taus[0][0].real) > 710.0
    assert not converged[0]


def test_axis_slopes_refuse_underflowed_u(law):
    # τ = −1e19: u = e^τ = 0 and uψ' = 0, so there is no tangent; NaN, without a division warning
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        slope, dtaus = law._axis_slopes(np.array([-0.7 - 0.17j, -0.7 - 0.17j]), [np.array([-1e19 + 0j, -1.0 - 0.5j])])
    assert np.isnan(slope[0]) and np.isnan(dtaus[0][0])
    assert np.isfinite(slope[1]) and np.isfinite(dtaus[0][1])


def test_healthy_point_still_converges(law):
    # a point inside the spectrum, from a start one Newton basin away: converged, and the equations hold there
    # (|Log(zχ)| and |ψ(u) − s w| at the rounding level, independently of the solver's own test)
    z = np.array([0.5 + 1e-3j])
    with warnings.catch_warnings():
        warnings.simplefilter("error", RuntimeWarning)
        t, taus, converged = law._newton(z, np.array([-0.5 - 0.5j]), [np.array([-0.5 - 0.5j])])
        log_chi, _, extras = law._log_chi(t, taus)
    assert converged[0]
    r0 = np.log(z) + log_chi
    assert abs(r0.real[0]) < 1e-10 and abs(np.angle(np.exp(1j * r0.imag[0]))) < 1e-10
    assert abs(extras[0][0][0]) < 1e-10
