"""Matrix-free Jacobian spectra (rmt_init.montecarlo.matrix_free) against dense references.

References: the dense Jacobian from ``torch.func.jacrev`` (or ``torch.autograd.functional.jacobian`` for
train-mode BatchNorm), ``torch.linalg.svdvals`` / ``eigvalsh`` of it, and exact traces ``tr (JᵀJ)^k``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

from rmt_init.montecarlo import build_conv, build_mlp, weight_init
from rmt_init.montecarlo.matrix_free import (
    JacobianOperator,
    lanczos_squared_singular_values,
    stochastic_lanczos_quadrature,
)

F64 = torch.float64


def _matrix_case(n_out: int, n_in: int, seed: int):
    g = torch.Generator().manual_seed(seed)
    J = torch.randn(n_out, n_in, generator=g, dtype=F64) / math.sqrt(n_in)
    x0 = torch.randn(n_in, generator=g, dtype=F64)
    return (lambda x: J @ x), x0


def _mlp_case():
    g = torch.Generator().manual_seed(3)
    model = build_mlp([64, 64, 64, 64], "tanh", weight_init("xavier_normal"), bias=True, sigma_b2=0.05, generator=g)
    x0 = torch.randn(64, generator=g, dtype=F64)
    return (lambda x: model(x[None])[0]), x0


def _conv_case():
    g = torch.Generator().manual_seed(4)
    model = build_conv([2, 3, 2], "tanh", weight_init("kaiming_normal"), kernel_size=3, padding_mode="zeros", generator=g)
    x0 = torch.randn(2 * 6 * 6, generator=g, dtype=F64)
    return (lambda x: model(x.reshape(1, 2, 6, 6)).reshape(-1)), x0


def _conv_down_case():
    """A conv net followed by a linear read-out to 10 outputs (n_out < n_in)."""
    g = torch.Generator().manual_seed(5)
    conv = build_conv([1, 2], "tanh", weight_init("kaiming_normal"), generator=g)
    head = torch.nn.Linear(2 * 5 * 5, 10, dtype=F64)
    x0 = torch.randn(25, generator=g, dtype=F64)
    return (lambda x: head(conv(x.reshape(1, 1, 5, 5)).reshape(-1))), x0


CASES = {
    "matrix_tall": lambda: _matrix_case(90, 60, 0),
    "matrix_wide": lambda: _matrix_case(60, 90, 1),
    "mlp_tanh": _mlp_case,
    "conv": _conv_case,
    "conv_readout": _conv_down_case,
}


def _dense(fn, x0) -> torch.Tensor:
    return torch.func.jacrev(fn)(x0).detach()


@pytest.fixture(scope="module", params=sorted(CASES))
def case(request):
    fn, x0 = CASES[request.param]()
    J = _dense(fn, x0)
    return request.param, fn, x0, J


def test_products_match_dense_jacobian(case):
    _, fn, x0, J = case
    op = JacobianOperator(fn, x0)
    assert op.shape == tuple(J.shape) and op.dtype == F64 and op.backend == "torch.func"
    g = torch.Generator().manual_seed(10)
    V = torch.randn(J.shape[1], 7, generator=g, dtype=F64)
    U = torch.randn(J.shape[0], 5, generator=g, dtype=F64)
    scale = float(torch.linalg.matrix_norm(J, ord=2))
    # rounding: the products and J V are sums of n terms of size ~scale: error ≪ 1e-12 scale for n ≤ 100
    assert torch.allclose(op.matvec(V), J @ V, rtol=0, atol=1e-12 * scale)
    assert torch.allclose(op.rmatvec(U), J.T @ U, rtol=0, atol=1e-12 * scale)
    assert torch.allclose(op.matvec(V[:, 0]), J @ V[:, 0], rtol=0, atol=1e-12 * scale)
    assert op.forward_mode == "double-vjp"  # forward="auto" on the CPU
    fwd = JacobianOperator(fn, x0, forward="jvp")
    assert torch.allclose(fwd.matvec(V), J @ V, rtol=0, atol=1e-12 * scale)
    assert fwd.forward_mode == "vmap-jvp"
    assert (op.matvecs, op.rmatvecs) == (8, 5)
    # the fallbacks give the same products
    for mode in ("jvp-loop", "vmap-jvp"):
        assert torch.allclose(op._matvec_mode(mode, V), J @ V, rtol=0, atol=1e-12 * scale)


def test_lanczos_extremes_match_svdvals(case):
    name, fn, x0, J = case
    op = JacobianOperator(fn, x0)
    exact = np.sort(torch.linalg.svdvals(J).numpy() ** 2)  # min(n_out, n_in) values: the smaller Gram matrix
    k = 4
    top = lanczos_squared_singular_values(op, k, generator=0)
    bottom = lanczos_squared_singular_values(op, k, which="smallest", generator=1)
    # tol=1e-10 bounds the eigen-residual relative to each value; the error is at most that (and is
    # quadratic in it in practice), so 1e-8 relative holds with margin.
    np.testing.assert_allclose(top, exact[-k:], rtol=1e-8, atol=0)
    np.testing.assert_allclose(bottom, exact[:k], rtol=1e-8, atol=0)
    assert np.all(np.diff(top) >= 0) and np.all(np.diff(bottom) >= 0)


def test_lanczos_whole_space_and_structural_rank():
    fn, x0 = _matrix_case(12, 30, 7)  # n_out < n_in: JᵀJ has 18 structural zeros, not returned
    J = _dense(fn, x0)
    op = JacobianOperator(fn, x0)
    every = lanczos_squared_singular_values(op, 12, generator=2)
    assert every.shape == (12,)
    np.testing.assert_allclose(every, np.sort(torch.linalg.svdvals(J).numpy() ** 2), rtol=1e-10)
    assert op.rmatvecs <= 12 and op.matvecs <= 12  # GKL runs on Jᵀ, in the 12-dimensional space


def test_lanczos_repeated_values_found_by_restarts():
    """J with orthonormal columns times diag(s) where s takes 2 values 40 times each: a single Krylov space
    sees 2 eigenvalues; the breakdown restarts must still return 10 copies of the largest."""
    g = torch.Generator().manual_seed(8)
    Q, _ = torch.linalg.qr(torch.randn(100, 80, generator=g, dtype=F64))
    s = torch.cat([torch.full((40,), 1.0, dtype=F64), torch.full((40,), 2.0, dtype=F64)])
    J = Q * s
    op = JacobianOperator(lambda x: J @ x, torch.zeros(80, dtype=F64))
    np.testing.assert_allclose(lanczos_squared_singular_values(op, 10, generator=3), np.full(10, 4.0), rtol=1e-10)
    np.testing.assert_allclose(
        lanczos_squared_singular_values(op, 10, which="smallest", generator=3), np.full(10, 1.0), rtol=1e-10
    )


def test_lanczos_warns_when_not_converged():
    fn, x0 = _matrix_case(90, 60, 9)
    op = JacobianOperator(fn, x0)
    with pytest.warns(RuntimeWarning, match="not converged"):
        values = lanczos_squared_singular_values(op, 3, max_iter=4, generator=0)
    assert values.shape == (3,) and op.matvecs == 4


def _exact_moments(J: torch.Tensor, kmax: int) -> list[float]:
    A = J.T @ J
    lam = torch.linalg.eigvalsh(A).clamp_min(0).numpy()
    return [float(np.mean(lam**k)) for k in range(kmax + 1)]


@pytest.mark.parametrize("name", ["matrix_wide", "mlp_tanh", "conv"])
def test_slq_moments_within_standard_errors(name):
    fn, x0 = CASES[name]()
    J = _dense(fn, x0)
    op = JacobianOperator(fn, x0)
    est = stochastic_lanczos_quadrature(op, probes=30, steps=20, generator=11)
    assert est.nodes.shape == (30, 20) and est.dimension == J.shape[1]
    np.testing.assert_allclose(est.weights.sum(axis=1), 1.0, rtol=1e-12)
    exact = _exact_moments(J, 2)
    for k in (1, 2):
        value, se = est.moment(k)
        # Gauss quadrature with 20 nodes is exact for k ≤ 39 given the probe, and the Rademacher estimator is
        # unbiased: the error is pure probe noise; 4 SE (two-sided normal p ≈ 6e-5; se from 30 probes).
        assert se > 0 and abs(value - exact[k]) <= 4 * se, (k, value, exact[k], se)
    assert est.moment(0) == (pytest.approx(1.0, rel=1e-12), pytest.approx(0.0, abs=1e-12))


def test_slq_probe_moments_are_gauss_exact():
    fn, x0 = _mlp_case()
    J = _dense(fn, x0)
    A = (J.T @ J).numpy()
    g = torch.Generator().manual_seed(12)
    z = 2.0 * torch.randint(0, 2, (1, 64), generator=g).to(F64) - 1.0
    steps = 6
    est = stochastic_lanczos_quadrature(JacobianOperator(fn, x0), probes=z, steps=steps)
    v = z[0].numpy() / 8.0
    for k in range(2 * steps):  # exact for k ≤ 2·steps − 1
        exact = float(v @ np.linalg.matrix_power(A, k) @ v)
        assert est.moment(k)[0] == pytest.approx(exact, rel=1e-10)
    # and not beyond: the 2·steps-th moment differs (a test that the check above can fail)
    exact = float(v @ np.linalg.matrix_power(A, 2 * steps) @ v)
    assert abs(est.moment(2 * steps)[0] / exact - 1) > 1e-8


def test_slq_full_steps_is_exact():
    fn, x0 = _matrix_case(30, 20, 13)
    J = _dense(fn, x0)
    lam = torch.linalg.eigvalsh(J.T @ J).numpy()
    est = stochastic_lanczos_quadrature(JacobianOperator(fn, x0), probes=3, steps=50, generator=4)
    assert est.nodes.shape == (3, 20)  # steps capped at n_in
    for p in range(3):
        np.testing.assert_allclose(np.sort(est.nodes[p]), lam, rtol=1e-9)
    # the quadrature is the probe's spectral measure: every moment equals vᵀA^k v, k far beyond 2·steps
    g = torch.Generator().manual_seed(4)
    bits = torch.randint(0, 2, (20, 3), generator=g).to(F64)
    Z = ((2 * bits - 1) / math.sqrt(20)).numpy().T
    A = (J.T @ J).numpy() / lam[-1]
    for k in (1, 5, 60):
        exact = np.mean([z @ np.linalg.matrix_power(A, k) @ z for z in Z]) * lam[-1] ** k
        assert est.moment(k)[0] == pytest.approx(exact, rel=1e-9)


def test_slq_structural_zeros_are_an_atom():
    fn, x0 = _matrix_case(10, 40, 14)  # JᵀJ: 30 zeros of 40
    J = _dense(fn, x0)
    lam = torch.linalg.eigvalsh(J @ J.T).numpy()  # the 10 nonzero eigenvalues of JᵀJ
    est = stochastic_lanczos_quadrature(JacobianOperator(fn, x0), probes=8, steps=40, generator=5)
    assert np.all(est.nodes >= 0)
    # Each probe's Krylov space is invariant after 11 steps (10 eigenvalues + the null direction), so the
    # quadrature is exact: every node of visible weight is 0 or one of the 10 eigenvalues ...
    heavy = est.nodes[est.weights > 1e-8]
    near = np.min(np.abs(heavy[:, None] - lam[None, :]) / lam[None, :], axis=1)
    assert np.all((heavy <= 1e-12) | (near <= 1e-8))
    # ... and the mass at 0 is |P_null v|², mean 30/40 with variance ≤ 2·0.75·0.25/40 per Rademacher probe
    # (Var vᵀPv = (2/n²)(‖P‖_F² − Σ P_ii²) ≤ 2 r(n−r)/n³ for a rank-r projection P; here 8 probes): 4 SE
    assert est.cdf(1e-12) == pytest.approx(0.75, abs=4 * math.sqrt(2 * 0.75 * 0.25 / 40 / 8))


def test_slq_quantiles_ks_against_dense_eigenvalues():
    """KS distance of the n-point quantile representation from the dense eigenvalues, bounded by
    1/(2n) (quantile discretisation, exact) + the mean largest Gauss weight (Chebyshev–Markov–Stieltjes:
    each probe's Gauss cdf is within its largest weight of the probe's spectral cdf) + the probe noise of the
    spectral cdf. The last term is exactly 0 here: JᵀJ = diag(s²) has the standard basis as eigenvectors, and a
    normalised Rademacher probe puts weight exactly 1/n on each — so the bound is deterministic."""
    n = 200
    g = torch.Generator().manual_seed(15)
    Q, _ = torch.linalg.qr(torch.randn(260, n, generator=g, dtype=F64))
    s = torch.linalg.vector_norm(torch.randn(n, 3, generator=g, dtype=F64), dim=1)  # s² ~ χ²_3
    J = Q * s
    lam = np.sort((s**2).numpy())
    op = JacobianOperator(lambda x: J @ x, torch.zeros(n, dtype=F64))
    est = stochastic_lanczos_quadrature(op, probes=5, steps=40, generator=6)
    n_q = 400
    ks = stats.ks_2samp(est.quantiles(n_q), lam).statistic
    bound = 1 / (2 * n_q) + est.max_weight()
    assert ks <= bound, (ks, bound)
    # the same with too few steps is visibly worse (the bound is not vacuous): 3 nodes per probe
    est3 = stochastic_lanczos_quadrature(op, probes=5, steps=3, generator=6)
    assert stats.ks_2samp(est3.quantiles(n_q), lam).statistic > ks
    # density integrates to 1 and cdf is a distribution function
    x = np.linspace(lam[0] - 5, lam[-1] + 5, 4001)
    assert np.trapezoid(est.density(x, 0.2), x) == pytest.approx(1.0, abs=1e-6)
    assert est.cdf(lam[-1] * 2) == pytest.approx(1.0) and est.cdf(-1.0) == 0.0


def test_batchnorm_train_mode_uses_autograd_backend():
    g = torch.Generator().manual_seed(16)
    model = build_mlp([5, 6, 4], "tanh", weight_init("xavier_normal"), batchnorm=True, generator=g)
    model.train()
    X0 = torch.randn(8 * 5, generator=g, dtype=F64)
    fn = lambda x: model(x.reshape(8, 5)).reshape(-1)  # noqa: E731
    op = JacobianOperator(fn, X0)
    assert op.backend == "autograd" and op.forward_mode == "double-vjp"
    J = torch.autograd.functional.jacobian(fn, X0)
    V = torch.randn(40, 3, generator=g, dtype=F64)
    U = torch.randn(32, 3, generator=g, dtype=F64)
    assert torch.allclose(op.matvec(V), J @ V, rtol=0, atol=1e-12)
    assert torch.allclose(op.rmatvec(U), J.T @ U, rtol=0, atol=1e-12)
    top = lanczos_squared_singular_values(op, 3, generator=0)
    np.testing.assert_allclose(top, np.sort(torch.linalg.svdvals(J).numpy() ** 2)[-3:], rtol=1e-8)


def test_bad_inputs():
    fn, x0 = _matrix_case(6, 4, 17)
    op = JacobianOperator(fn, x0)
    with pytest.raises(ValueError, match="fn"):
        JacobianOperator("not callable", x0)
    with pytest.raises(ValueError, match="x0"):
        JacobianOperator(fn, torch.full((4,), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="x0"):
        JacobianOperator(fn, x0.reshape(2, 2))
    with pytest.raises(ValueError, match="x0"):
        JacobianOperator(fn, [1.0, 2.0])
    with pytest.raises(ValueError, match="fn"):
        JacobianOperator(lambda x: torch.stack([x, x]), x0)  # 2-D output
    with pytest.raises(ValueError, match="forward"):
        JacobianOperator(fn, x0, forward="backward")
    with pytest.raises(ValueError, match="V"):
        op.matvec(torch.zeros(5, 2, dtype=F64))
    with pytest.raises(ValueError, match="U"):
        op.rmatvec(torch.zeros(4, 2, dtype=F64))
    with pytest.raises(ValueError, match="V"):
        op.matvec(torch.full((4, 1), float("nan"), dtype=F64))
    with pytest.raises(ValueError, match="V"):
        op.matvec(torch.zeros(4, 1, 1, dtype=F64))
    with pytest.raises(ValueError, match="k"):
        lanczos_squared_singular_values(op, 5)  # min(6, 4) = 4 values
    with pytest.raises(ValueError, match="k"):
        lanczos_squared_singular_values(op, 0)
    with pytest.raises(ValueError, match="which"):
        lanczos_squared_singular_values(op, 1, which="middle")
    with pytest.raises(ValueError, match="tol"):
        lanczos_squared_singular_values(op, 1, tol=0.0)
    with pytest.raises(ValueError, match="max_iter"):
        lanczos_squared_singular_values(op, 3, max_iter=2)
    with pytest.raises(ValueError, match="op"):
        lanczos_squared_singular_values(np.eye(3), 1)
    with pytest.raises(ValueError, match="generator"):
        lanczos_squared_singular_values(op, 1, generator="seed")
    with pytest.raises(ValueError, match="probes"):
        stochastic_lanczos_quadrature(op, probes=0)
    with pytest.raises(ValueError, match="probes"):
        stochastic_lanczos_quadrature(op, probes=torch.zeros(2, 5, dtype=F64))
    with pytest.raises(ValueError, match="steps"):
        stochastic_lanczos_quadrature(op, steps=0)
    est = stochastic_lanczos_quadrature(op, probes=2, steps=3, generator=0)
    with pytest.raises(ValueError, match="width"):
        est.density([0.0], 0.0)
    with pytest.raises(ValueError, match="k"):
        est.moment(-1)
    with pytest.raises(ValueError, match="n"):
        est.quantiles(0)
