"""Network Jacobian spectra (rmt_init.montecarlo.network_jacobian_spectrum) against exact identities.

Monte Carlo tolerances: ``SAFETY × standard error`` (SE from the per-trial statistics, trials
independent) plus any stated bias bound; fixed seeds make the tests deterministic.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init.montecarlo import network_jacobian_spectrum, structural_zero_count
from rmt_init.montecarlo._device import limit_threads
from rmt_init.theory import finite_width_moments

SAFETY = 5.0


@pytest.fixture(autouse=True)
def _single_thread():
    """The matrices here are tiny: intra-op threads only add synchronisation cost (large on busy CI)."""
    with limit_threads(1):
        yield


def _mean_se(x):
    x = np.asarray(x, dtype=float)
    return float(x.mean()), float(x.std(ddof=1) / math.sqrt(x.size))


def test_linear_gaussian_network_matches_exact_finite_width_moments():
    # Linear activation, Gaussian weights with σ_w² = 1: J = W_L ⋯ W_1, whose trace moments are exact.
    n, depth, trials = 8, 3, 1500
    res = network_jacobian_spectrum(depth, n, "linear", "gaussian", sigma_w2=1.0, trials=trials, seed=3,
                                    device="cpu", layer_stats=False)
    x = res.squared_singular_values
    exact = finite_width_moments(n, depth)
    m1, se1 = _mean_se(x.sum(1) / n)
    m2, se2 = _mean_se((x**2).sum(1) / n)
    assert abs(m1 - exact.m1) <= SAFETY * se1
    assert abs(m2 - exact.b) <= SAFETY * se2


def test_relu_critical_first_moment_and_zero_fraction():
    # ReLU, Gaussian σ_w² = 2, no bias. (i) E tr(JJᵀ)/N = 1 exactly at finite N: conditionally on the
    # previous layers, flipping a row w_i → −w_i flips 1[h_i > 0] but keeps (w_i·v)², so
    # E‖D W v‖² = ½·Σ_i E(w_i·v)² = ‖v‖² (bias: P(x_l = 0) ≤ L 2^{-N} ≈ 1e-9, negligible).
    # (ii) rank J = min_l K_l with K_l ~ Bin(N, ½) active units, so the zero fraction f = 1 − min K/N has
    # ½ ≤ E f ≤ ½ + √(2 ln L)/(2√N) (maximum of L sub-Gaussian variables with variance proxy 1/(4N)).
    n, depth, trials = 32, 3, 300
    res = network_jacobian_spectrum(depth, n, "relu", "gaussian", sigma_w2=2.0, trials=trials, seed=4,
                                    device="cpu", layer_stats=False)
    x = res.squared_singular_values
    m1, se1 = _mean_se(x.sum(1) / n)
    assert abs(m1 - 1.0) <= SAFETY * se1
    zero = (x <= 1e-20 * x.max(axis=1, keepdims=True)).mean(axis=1)
    # no value near the threshold: exact zeros (rounding ~1e-31) are separated from the bulk
    assert np.all((x <= 1e-20 * x[:, :1]) | (x >= 1e-12 * x[:, :1]))
    f, sef = _mean_se(zero)
    assert 0.5 - SAFETY * sef <= f <= 0.5 + math.sqrt(2 * math.log(depth)) / (2 * math.sqrt(n)) + SAFETY * sef
    # kaiming_normal matched to relu is the same σ_w² = 2 (documented choice)
    assert res.config["sigma_w2_effective"] == [2.0] * depth
    k = network_jacobian_spectrum(2, 6, "relu", "kaiming_normal", trials=1, seed=0, device="cpu", layer_stats=False)
    np.testing.assert_allclose(k.config["sigma_w2_effective"], [2.0, 2.0], rtol=1e-12)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_orthogonal_linear_networks_are_exact_isometries(arch):
    # W = √σ_w² Q with Q orthogonal (square) ⇒ every squared singular value of J is σ_w^{2L}.
    depth, s2 = 5, 1.7
    kw = dict(image_size=4, kernel_size=1) if arch == "conv" else {}
    # (a 1×1 convolution with an orthogonal channel matrix is orthogonal on the whole image)
    res = network_jacobian_spectrum(depth, 6, "linear", "gaussian", sigma_w2=s2, weights="orthogonal", trials=3,
                                    seed=0, device="cpu", architecture=arch, layer_stats=False, **kw)
    np.testing.assert_allclose(res.squared_singular_values, s2**depth, rtol=1e-10)
    res = network_jacobian_spectrum(depth, 6, "linear", "orthogonal", init_kwargs={"gain": 1.2}, trials=2, seed=1,
                                    device="cpu", layer_stats=False)
    np.testing.assert_allclose(res.squared_singular_values, 1.44**depth, rtol=1e-10)


@pytest.mark.parametrize("arch", ["mlp", "conv"])
def test_bn_structural_zeros_counted_and_verified(arch):
    # Linear activation (φ' ≠ 0): the only zeros of the batch Jacobian are BN's structural ones — per
    # channel a shift and a rescaling direction — 2N for equal widths N however many BN layers (the null
    # spaces do not add up: rank of a generic chain = rank of its narrowest factor, (B − 2)N). Shift
    # directions are exact zeros, rescaling ones eps-small. Check: exactly 2N values lie below
    # 1e-12 × median and all the others above 1e-8 × median (observed gap: 1e-22 vs 1e-3).
    b = 5 if arch == "mlp" else 2
    kw = dict(architecture="conv", image_size=3) if arch == "conv" else {}
    n, depth = (6, 3) if arch == "mlp" else (3, 2)
    full = network_jacobian_spectrum(depth, n, "linear", "gaussian", batchnorm="train", batch_size=b, trials=3,
                                     seed=1, device="cpu", drop_structural_zeros=False, layer_stats=False, **kw)
    spatial = 9 if arch == "conv" else 1
    assert np.all(full.structural_zeros == 2 * n)
    assert structural_zero_count([n] * (depth + 1), b, spatial) == 2 * n
    for row in full.squared_singular_values:
        assert row.size == b * n * spatial
        med = np.median(row)
        assert np.sum(row < 1e-12 * med) == 2 * n
        assert np.sum(row > 1e-8 * med) == row.size - 2 * n
    dropped = network_jacobian_spectrum(depth, n, "linear", "gaussian", batchnorm="train", batch_size=b, trials=3,
                                        seed=1, device="cpu", layer_stats=False, **kw)
    np.testing.assert_allclose(dropped.squared_singular_values, full.squared_singular_values[:, : b * n * spatial - 2 * n])


def test_structural_zero_count_general_widths():
    # r0 = min(B n_0, B n_L, min_l B n_l); r_BN = min(r0, min_l (B − 2) n_l).
    assert structural_zero_count([4, 4, 4], 6) == 8
    assert structural_zero_count([4, 4, 4], 6, batchnorm=False) == 0
    # a narrow hidden BN layer: bottleneck B·3 = 18 without BN, (B − 2)·3 = 12 with BN ⇒ 6
    assert structural_zero_count([8, 3, 8], 6) == 6
    # wide hidden layers do not bind: the narrow output BN layer sets the count (2 × 4)
    assert structural_zero_count([8, 16, 4], 6) == 8


def test_all_bn_modes_run_and_eval_is_recalibrated():
    for mode in ("train", "train_diagonal", "eval"):
        res = network_jacobian_spectrum(2, 5, "relu", "kaiming_normal", batchnorm=mode, batch_size=4, trials=2,
                                        seed=0, device="cpu")
        assert np.all(np.isfinite(res.squared_singular_values))
        assert res.config["batchnorm"] == mode
        assert res.squared_singular_values.shape[1] == 4 * 5 - (10 if mode == "train" else 0)
    # BN is scale invariant: with σ_w² = 4 a linear net without BN has E tr(JJᵀ)/N = 4³ = 64, but with
    # recalibrated eval-mode BN each layer is divided by its measured pre-activation std, so the mean
    # squared singular value is O(1) (not exactly 1: hidden pre-activations are correlated). Stored
    # init statistics (mean 0, var 1) would have left it at 64/(1 + eps)³.
    no_bn = network_jacobian_spectrum(3, 16, "linear", "gaussian", sigma_w2=4.0, trials=20, seed=0, device="cpu")
    ev = network_jacobian_spectrum(3, 16, "linear", "gaussian", sigma_w2=4.0, batchnorm="eval", trials=20, seed=0,
                                   device="cpu")
    assert 30 < no_bn.samples.mean() < 130
    assert 0.4 < ev.samples.mean() < 2.5
    assert ev.config["calibration_batches"] == 10


def test_layer_stats_linear_gaussian_are_exact_in_expectation():
    # Linear, σ_w² = 1, square: E‖W x‖²/N = ‖x‖²/N ⇒ E act_sq_norm_l = input_variance at every layer; the
    # backward direction u_b is a unit vector and E‖Wᵀg‖² = ‖g‖² ⇒ E grad_sq_norm_l = 1 at every layer.
    res = network_jacobian_spectrum(4, 16, "linear", "gaussian", sigma_w2=1.0, batch_size=4, trials=200, seed=2,
                                    input_variance=2.0, device="cpu")
    st = res.layer_stats
    assert set(st) == {"act_mean", "act_var", "act_sq_norm", "grad_mean", "grad_var", "grad_sq_norm"}
    assert st["act_sq_norm"].shape == (200, 5)
    for layer in range(5):
        m, se = _mean_se(st["act_sq_norm"][:, layer])
        assert abs(m - 2.0) <= SAFETY * se
        g, seg = _mean_se(st["grad_sq_norm"][:, layer])
        assert abs(g - 1.0) <= SAFETY * seg + 1e-12
    np.testing.assert_allclose(st["grad_sq_norm"][:, -1], 1.0, rtol=1e-12)  # u_b are unit vectors


def test_batchnorm_train_rejects_too_small_batches():
    for b in (1, 2):
        with pytest.raises(ValueError, match=f"batch_size={b}"):
            network_jacobian_spectrum(2, 4, "relu", batchnorm="train", batch_size=b, device="cpu")
    with pytest.raises(ValueError, match="batch_size=1"):
        network_jacobian_spectrum(2, 4, "relu", batchnorm="train_diagonal", batch_size=1, device="cpu")
    # conv: B = 1 but 9 spatial positions per channel is a valid BN batch
    res = network_jacobian_spectrum(1, 2, "tanh", batchnorm="train", batch_size=1, architecture="conv",
                                    image_size=3, trials=1, device="cpu", layer_stats=False)
    assert res.structural_zeros[0] == 4
