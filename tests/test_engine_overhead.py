"""The engine's fast paths give the results of the slow ones.

* ``product_spectrum``'s QR recursion re-orthonormalised only every ``k`` factors (``qr_every``) against the
  every-factor recursion (``qr_every=1``), against 150-digit arithmetic, and at depth 10⁴ against the
  exact orthogonal isometry and Newman's Lyapunov exponents.
* ``network_jacobian_spectrum`` against the pipeline it wraps (build the trial's network, chain the layer
  Jacobians, ``svdvals``): same seed ⇒ the same spectra, bit for bit.

No timings are asserted here; the speed ratios live in ``benchmarks/suite``.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from ._references import mp_product_log_singular_values

from rmt_init.montecarlo import chained_jacobian, network_jacobian_spectrum, product_spectrum
from rmt_init.montecarlo._device import limit_threads
from rmt_init.montecarlo.network_setup import network_setup
from rmt_init.montecarlo.products import (
    _qr_accumulate,
    block_condition_limit,
    qr_block_length,
    qr_log_singular_values,
)
from rmt_init.theory import lyapunov_exponents, lyapunov_variances

SAFETY = 5.0


@pytest.fixture(autouse=True)
def _single_thread():
    """The matrices here are small: intra-op threads only add synchronisation cost (large on busy CI)."""
    with limit_threads(1):
        yield


def _scaled_gap(a: np.ndarray, b: np.ndarray) -> float:
    """``max |a − b|`` relative to the scale ``max |ln σ|`` of each trial's log spectrum."""
    return float(np.max(np.abs(a - b) / np.max(np.abs(b), axis=1, keepdims=True)))


@pytest.mark.parametrize("n,depth", [(16, 200), (48, 60)])
def test_blocked_qr_matches_every_layer_qr(n, depth):
    # Each kept block QR sees a condition number ≤ κ_max = 1e-10/eps, so it loses ≤ ~eps·κ_max·(small
    # factor) ≈ 1e-10 in a ln|R_ii|; summed over ≤ depth/k blocks and divided by max|ln σ| ≈ depth·|λ_n|
    # (≥ 2 per layer here) that is far below the 1e-10 asked. Rounding differences of the two paths
    # elsewhere are ~1e-14.
    kw = dict(trials=4, seed=5, device="cpu", stabilize=True)
    every = product_spectrum(depth, n, "gaussian", qr_every=1, **kw)
    blocked = product_spectrum(depth, n, "gaussian", **kw)
    assert every.config["qr_every"] == 1
    assert blocked.config["qr_every"] >= 2  # the auto rule did choose blocks for these Gaussian factors
    assert _scaled_gap(blocked.log_singular_values, every.log_singular_values) <= 1e-10


def test_too_long_blocks_are_redone_in_halves():
    # qr_every=40 for Gaussian 12×12 factors: a 40-factor block has κ ≈ e^{40·1.7} ≫ κ_max, so every block
    # fails the measured-condition check and is redone in halves, recursively, until each kept QR is
    # within κ_max (blocks of ~5 factors); each kept QR then loses ≲ 1e-10 in a ln|R_ii|, so against the
    # every-layer path the gap scaled by max|ln σ| (≈ 120·2) meets the same 1e-10 as the auto blocks.
    kw = dict(trials=3, seed=2, device="cpu", stabilize=True)
    every = product_spectrum(120, 12, "gaussian", qr_every=1, **kw)
    forced = product_spectrum(120, 12, "gaussian", qr_every=40, **kw)
    assert forced.config["qr_every"] == 40
    assert _scaled_gap(forced.log_singular_values, every.log_singular_values) <= 1e-10


def test_blocked_qr_is_exact_against_high_precision_product():
    # As the every-layer test in test_montecarlo_products: 150 Gaussian 4×4 factors (σ_1/σ_4 ≈ 1e78), now
    # in blocks of 6 with the float64 condition limit. Reference: 150-digit product and mpmath's SVD.
    rng = np.random.default_rng(3)
    depth, n = 150, 4
    mats = rng.standard_normal((depth, n, n)) / math.sqrt(n)
    factors = [torch.from_numpy(m)[None] for m in mats]
    logd, u = _qr_accumulate(iter(factors), 6, math.log(block_condition_limit(torch.float64)))
    ours = qr_log_singular_values(logd, u)[0]
    ref = mp_product_log_singular_values(mats, dps=150)
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-9)


def test_depth_ten_thousand_orthogonal_is_one_block_and_exact():
    # √2 × Haar factors: P = 2^{L/2} × orthogonal, so ln σ_i = (L/2) ln 2 exactly for every i. The measured
    # spread is ~eps, so the whole product is one block (rescaled after each factor: no overflow); rounding
    # drifts by ≲ √L·eps relative per step in the Frobenius norms and singular values (≈ 1e-14 · L).
    depth, n = 10_000, 6
    res = product_spectrum(depth, n, "gaussian", weights="orthogonal", sigma_w2=2.0, trials=2, seed=0, device="cpu",
                           stabilize=True)
    assert res.config["qr_every"] == depth
    logsv = res.log_singular_values
    assert np.all(np.isfinite(logsv))
    np.testing.assert_allclose(logsv, 0.5 * depth * math.log(2.0), rtol=1e-10, atol=0)


def test_depth_ten_thousand_gaussian_blocks_match_newman_exponents():
    # Newman (1986): (1/L) ln σ_i → λ_i = ½[ψ((N−i+1)/2) + ln(2/N)]; the trial mean of ln σ_i / L has
    # standard error √(v_i/(L T)) and an O(1)/L bias (Oseledets), bounded by 10/L as in
    # test_montecarlo_products. Here with blocks (auto k ≥ 2 for N = 5) and finite log values.
    n, depth, trials = 5, 10_000, 8
    res = product_spectrum(depth, n, "gaussian", trials=trials, seed=11, device="cpu", stabilize=True)
    assert res.config["qr_every"] >= 2
    logsv = res.log_singular_values
    assert np.all(np.isfinite(logsv))
    rates = res.growth_rates.mean(axis=0)
    tol = SAFETY * np.sqrt(lyapunov_variances(n) / (depth * trials)) + 10.0 / depth
    assert np.all(np.abs(rates - lyapunov_exponents(n)) <= tol), (rates, lyapunov_exponents(n), tol)


def test_block_length_rule():
    # k = the largest k with k s + 1.5 σ √k ≤ ln κ_max, κ_max = 1e-10/eps ≈ 9.0e5 in float64 (ln ≈ 13.7);
    # float32 has κ_max < 1 ⇒ k = 1; a spread so small that the whole product stays within κ_max ⇒ one block.
    limit = math.log(1e-10 / np.finfo(np.float64).eps)

    def brute(s, sd, depth):
        ok = [k for k in range(1, depth + 1) if k * s + 1.5 * sd * math.sqrt(k) <= limit]
        return max(ok, default=1)

    assert qr_block_length(4.1, torch.float64, 50) == int(limit // 4.1) == 3  # no fluctuations
    for s, sd in [(4.1, 1.1), (3.4, 0.9), (1.33, 1.3), (0.3, 2.0), (12.0, 3.0)]:
        assert qr_block_length(s, torch.float64, 50, sd) == brute(s, sd, 50)
    assert qr_block_length(4.1, torch.float32, 50, 1.0) == 1
    assert qr_block_length(1e-15, torch.float64, 10_000, 1e-15) == 10_000
    assert qr_block_length(math.inf, torch.float64, 50) == 1


def test_bad_qr_every_is_refused():
    for bad in (0, -2, "sometimes", 1.5):
        with pytest.raises(ValueError, match="qr_every"):
            product_spectrum(40, 4, trials=1, device="cpu", qr_every=bad)


@pytest.mark.parametrize(
    "kw",
    [
        dict(depth=4, width=24, activation="relu", init="kaiming_normal"),
        dict(depth=3, width=[10, 14, 9, 12], activation="tanh", init="xavier_normal", bias=True),
        dict(depth=3, width=8, activation="relu", init="gaussian", batchnorm="train", batch_size=4),
    ],
)
def test_network_spectrum_is_the_chain_and_svd_of_the_same_networks(kw):
    # network_jacobian_spectrum must be exactly "build trial t, chain its Jacobian, svdvals" (no change of
    # random stream or of arithmetic): compared bit for bit.
    trials, seed = 3, 17
    res = network_jacobian_spectrum(**kw, trials=trials, seed=seed, device="cpu", layer_stats=False)
    setup = network_setup(**kw, trials=trials, seed=seed, device="cpu", min_bn_batch={"train": 3})
    mode = "batch" if kw.get("batchnorm") == "train" else "per_example"
    for t in range(trials):
        model, x, _ = setup.build(t)
        jac = chained_jacobian(model, x, mode)
        sq = np.sort((torch.linalg.svdvals(jac).numpy() ** 2).ravel())[::-1]
        if mode == "batch":
            sq = sq[: sq.size - int(res.structural_zeros[t])]
        np.testing.assert_array_equal(res.squared_singular_values[t], sq)


def test_triangular_product_skips_only_zero_blocks():
    # _triu_matmul (used for U ← M U once the sizes reach 256) against the plain product, for square and
    # trapezoidal factors: the skipped blocks are exact zeros, so only the summation order differs
    # (|Δ| ≤ n·eps·|M||U| ≈ 1e-13 here).
    from rmt_init.montecarlo.products import _triu_matmul

    gen = torch.Generator().manual_seed(0)
    for a, b, c in [(300, 300, 300), (280, 300, 310), (257, 257, 400)]:
        m = torch.triu(torch.randn(2, a, b, generator=gen, dtype=torch.float64))
        u = torch.triu(torch.randn(2, b, c, generator=gen, dtype=torch.float64))
        np.testing.assert_allclose(_triu_matmul(m, u).numpy(), (m @ u).numpy(), rtol=0, atol=1e-11)


@pytest.mark.parametrize("n, depth, every", [(12, 16, 3), (12, 4, 4)])
def test_graded_gaussian_spectrum_with_early_exits_is_exact(n, depth, every):
    # qr_log_singular_values takes one SVD of the whole graded matrix when its σ_max/σ_min ≤ κ_max (depth 4: one
    # block), and otherwise sweeps, stopping early once every decoupled block's spread fits one SVD. Both must
    # give ln σ to the accuracy of the accumulated product: against 120-digit arithmetic, 1e-10 (= eps·κ_max,
    # the bound of the blocks; measured errors are ≤ 1e-12).
    rng = np.random.default_rng(7)
    mats = rng.standard_normal((depth, n, n)) / math.sqrt(n)
    logd, u = _qr_accumulate(iter(torch.from_numpy(m)[None] for m in mats), every,
                             math.log(block_condition_limit(torch.float64)))
    ours = qr_log_singular_values(logd, u)[0]
    ref = mp_product_log_singular_values(mats, dps=120)
    assert ref[0] - ref[-1] > 5.0  # a graded product, not a near-isometry
    np.testing.assert_allclose(ours, ref, rtol=0, atol=1e-10)



@pytest.mark.parametrize("n, depth, every", [(64, 40, 3), (16, 100, 4)])
def test_graded_svd_exit_matches_the_sweeps(n, depth, every, monkeypatch):
    # After one sweep the graded matrix diag(e^{ln d}) U has κ(U) ≤ 100 and its ln d spread (113 and 208 here)
    # is ≤ 340, so qr_log_singular_values takes one SVD of it instead of sweeping on. Reference: the same input
    # with that exit disabled and up to 300 sweeps (zero-shift QR steps, each backward stable in the graded
    # sense), i.e. the path used before. The exit's bound is n·eps·κ(U) ≲ 1e-12 relative; measured ≤ 3e-14.
    from rmt_init.montecarlo import products

    rng = np.random.default_rng(11)
    mats = rng.standard_normal((depth, n, n)) / math.sqrt(n)
    logd, u = _qr_accumulate(iter(torch.from_numpy(m)[None] for m in mats), every,
                             math.log(block_condition_limit(torch.float64)))
    taken = []
    graded = products._graded_log_sv

    def spy(*args):
        out = graded(*args)
        taken.append(out is not None)
        return out

    monkeypatch.setattr(products, "_graded_log_sv", spy)
    ours = qr_log_singular_values(logd, u)[0]
    assert any(taken) and ours[0] - ours[-1] > 100.0  # the exit was taken, on a widely graded matrix
    monkeypatch.setattr(products, "_graded_log_sv", lambda *a: None)
    swept = qr_log_singular_values(logd, u, max_sweeps=300)[0]
    np.testing.assert_allclose(ours, swept, rtol=0, atol=1e-12 * max(1.0, float(np.abs(swept).max())))


def _lapack_spy(monkeypatch, min_dim: int) -> list[int]:
    """Route every QR step and triangular update of at least ``min_dim`` through scipy's LAPACK/BLAS; return a
    list counting the QR calls."""
    from rmt_init.montecarlo import products

    calls: list[int] = []
    geqrt = products._geqrt

    def spy(z):
        calls.append(1)
        return geqrt(z)

    monkeypatch.setattr(products, "_LAPACK_QR_MIN", min_dim)
    monkeypatch.setattr(products, "_TRMM_MIN", min_dim)
    monkeypatch.setattr(products, "_geqrt", spy)
    return calls


@pytest.mark.parametrize("dtype", [torch.float64, torch.float32])
def test_blas_trmm_update_matches_the_product(dtype):
    # _trmm (U ← M U by BLAS trmm on the transposed, column-major views) against the plain product, for square
    # and trapezoidal U: only the summation order differs, |Δ| ≤ n·eps·|M||U| (≈ 1e-12 in float64, 1e-3 in
    # float32 with n ≈ 150–260 and entries ~1).
    from rmt_init.montecarlo.products import _trmm

    gen = torch.Generator().manual_seed(0)
    for k, c in [(150, 150), (150, 170), (260, 260), (260, 300)]:  # 1 trmm; 4 column blocks from 256
        m = torch.triu(torch.randn(2, k, k, generator=gen, dtype=torch.float64))
        u = torch.triu(torch.randn(2, k, c, generator=gen, dtype=torch.float64))
        ours = _trmm(m.to(dtype), u.to(dtype)).to(torch.float64)
        atol = k * torch.finfo(dtype).eps * float((m.abs() @ u.abs()).max())
        np.testing.assert_allclose(ours.numpy(), (m @ u).numpy(), rtol=0, atol=atol)


@pytest.mark.parametrize("m, n, n_out", [(7, 7, 7), (9, 5, 6), (5, 9, 8), (130, 130, 130)])
def test_lapack_qr_step_matches_torch_geqrf_ormqr(m, n, n_out):
    # The scipy path (geqrt + gemqrt, compact WY) and torch's (geqrf + ormqr) compute the same Householder QR:
    # same reflectors (dlarfg), same R including its signs, so W Q agrees to rounding, ≲ n·eps·|W||Z| ≈ 1e-13
    # here; tall, wide and square blocks (W Q keeps the first min(m, n) columns).
    from rmt_init.montecarlo.products import _apply_q, _gemqrt, _geqrt

    gen = torch.Generator().manual_seed(1)
    z = torch.randn(3, m, n, generator=gen, dtype=torch.float64)
    w = torch.randn(3, n_out, m, generator=gen, dtype=torch.float64)
    h_ref, tau = torch.geqrf(z)
    h, t = _geqrt(z)
    np.testing.assert_allclose(torch.triu(h).numpy(), torch.triu(h_ref).numpy(), rtol=0, atol=1e-12)
    ref = _apply_q((h_ref, tau, None, None), w)
    ours = _gemqrt(h, t, w)
    assert ours.shape == ref.shape == (3, n_out, min(m, n))
    np.testing.assert_allclose(ours.numpy(), ref.numpy(), rtol=0, atol=1e-12)


@pytest.mark.parametrize(
    "depth, widths, kw",
    [
        (120, 12, dict(weights="gaussian", qr_every=40)),  # every block redone in halves (sub-batches)
        (60, 10, dict(weights="uniform")),
        (40, [8, 12, 12, 12, 6] + [6] * 36, dict(weights="gaussian")),  # tall, wide and square factors
        (300, 8, dict(weights="orthogonal")),  # one block
        (60, 16, dict(weights="gaussian", qr_every=1)),
    ],
)
def test_lapack_qr_path_matches_torch_path(depth, widths, kw, monkeypatch):
    # Same factors (same seed), same recursion; only the LAPACK doing each QR differs, so the log spectra agree
    # to the rounding each kept block QR amplifies, ≤ eps·κ_max ≈ 1e-10 in a ln|R_ii| (as for blocked vs
    # every-layer QR above), scaled by max|ln σ|; measured ≤ 1e-12. Orthogonal factors: ln σ = 0 exactly, so
    # the gap is checked absolutely there (rounding, ~1e-15).
    args = dict(trials=3, seed=4, device="cpu", stabilize=True, sigma_w2=1.0, **kw)
    size = dict(widths=widths) if isinstance(widths, list) else dict(width=widths)
    torch_path = product_spectrum(depth, **size, **args).log_singular_values
    calls = _lapack_spy(monkeypatch, 1)
    lapack_path = product_spectrum(depth, **size, **args).log_singular_values
    assert calls  # the scipy path ran
    assert np.all(np.isfinite(lapack_path[:, : min(widths if isinstance(widths, list) else [widths])]))
    if kw["weights"] == "orthogonal":
        np.testing.assert_allclose(lapack_path, torch_path, rtol=0, atol=1e-12)
    else:
        assert _scaled_gap(lapack_path, torch_path) <= 1e-10


def test_lapack_qr_path_float32_matches_torch_path(monkeypatch):
    # float32 keeps k = 1 (a QR per factor). Both paths are backward stable, each ln|R_ii| carrying ≲ n·eps₃₂ ≈
    # 1.4e-6 relative rounding per step, independent between the two LAPACKs: over 60 steps a random walk of
    # ≲ √60 · 1.4e-6 ≈ 1.1e-5 in the gap scaled by max|ln σ|; we allow 1e-4 (measured ≈ 1e-6).
    args = dict(trials=3, seed=4, device="cpu", stabilize=True, dtype=torch.float32)
    torch32 = product_spectrum(60, 12, **args).log_singular_values
    calls = _lapack_spy(monkeypatch, 1)
    lapack32 = product_spectrum(60, 12, **args).log_singular_values
    assert calls
    assert np.all(np.isfinite(lapack32))
    assert _scaled_gap(lapack32, torch32) <= 1e-4


def test_lapack_qr_path_is_exact_against_high_precision_product(monkeypatch):
    # The blocked 150-factor 4×4 product of test_blocked_qr_is_exact_against_high_precision_product, every QR
    # through scipy's LAPACK: the same 1e-9 against 150-digit arithmetic.
    calls = _lapack_spy(monkeypatch, 1)
    rng = np.random.default_rng(3)
    mats = rng.standard_normal((150, 4, 4)) / 2.0
    logd, u = _qr_accumulate(iter(torch.from_numpy(m)[None] for m in mats), 6,
                             math.log(block_condition_limit(torch.float64)))
    assert calls
    ours = qr_log_singular_values(logd, u)[0]
    np.testing.assert_allclose(ours, mp_product_log_singular_values(mats, dps=150), rtol=0, atol=1e-9)


def test_factored_block_scaling_matches_entrywise_exponentials(monkeypatch):
    # _qr_update scales R_ij/|R_ii| by e^{ln d_j − c}·e^{c − ln d_i} (spread ≤ _FACTORED_SPREAD) instead of
    # e^{ln d_j − ln d_i}; the two differ only by the rounding of the exponents, ≈ eps·max|ln d| relative per
    # entry (here |ln d| ≲ 1000 ⇒ ≲ 2e-13), far below the 1e-12 scaled gap allowed. Depth 600 at width 6 has a
    # ln d spread above 600, so the default run mixes both branches (the wide trials per trial).
    from rmt_init.montecarlo import products

    kw = dict(trials=3, seed=9, device="cpu", stabilize=True)
    mixed = product_spectrum(600, 6, "gaussian", **kw).log_singular_values
    monkeypatch.setattr(products, "_FACTORED_SPREAD", -1.0)
    entrywise = product_spectrum(600, 6, "gaussian", **kw).log_singular_values
    assert mixed[:, 0].max() - mixed[:, -1].min() > 600.0
    assert _scaled_gap(mixed, entrywise) <= 1e-12
