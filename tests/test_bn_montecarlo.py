"""Batch-norm gradient growth: the Monte Carlo engine's networks against the theory (Yang et al. 2019).

``network_layer_stats`` builds the same ``torch.nn`` networks as ``network_jacobian_spectrum`` (Linear →
BatchNorm1d(train) → φ, ``torch.nn.init`` weights) and records ``E‖g_l‖²`` per layer; its
``gradient_growth`` fits the per-layer growth of the trial-mean squared gradient norm (layers 1..L−1) with a
jackknife standard error over the independent trials.

Tolerance: ``5·SE + c/N``. The SE covers the sampling error (fixed seeds make each test deterministic; a
5-SE band fails a correct implementation with probability < 1e-6). ``c/N`` bounds the finite-width bias of
the infinite-width prediction, measured with this estimator at depth 10, 100 trials, N = 64, 128, 256:

* linear B = 6: 1.2926, 1.3289, 1.3268 vs 4/3; B = 8: 1.1932, 1.1951, 1.1973 vs 1.2; B = 16: 1.0730,
  1.0777, 1.0761 vs 1.0769 — |bias| ≤ 5.2/64, 0.6/128 ⇒ c = 3 at N ≥ 128;
* relu B = 8: 1.8142, 1.7884, 1.7918 vs 1.7882; B = 64: 1.4936, 1.4928, 1.4922 vs 1.4931 ⇒ c = 2;
* tanh B = 64: 1.2137, 1.2054, 1.1975 vs 1.1923 — bias ≈ +1.4/N, shrinking with N ⇒ c = 2.

B ≥ 6 throughout: for linear networks the per-layer factor is ‖·‖² of a 1/χ²_{B−1}-like ratio whose variance
is infinite for B ≤ 5, which makes the SE meaningless there.
"""
from __future__ import annotations

import math

import numpy as np
import pytest

from rmt_init.montecarlo import LayerStatsResult, network_jacobian_spectrum, network_layer_stats
from rmt_init.montecarlo._device import limit_threads
from rmt_init.theory import bn_gradient_growth, chi1, q_star

SAFETY = 5.0
DEPTH = 10


@pytest.fixture(autouse=True)
def _single_thread():
    """Small matmuls: intra-op threads only add synchronisation cost on a busy 2-core machine."""
    with limit_threads(1):
        yield


def _bn_growth(activation, width, batch, trials=100, seed=0):
    res = network_layer_stats(DEPTH, width, activation, "gaussian", sigma_w2=1.0, batchnorm="train",
                              batch_size=batch, trials=trials, seed=seed, device="cpu")
    return res.gradient_growth()


@pytest.mark.parametrize("batch, width", [(6, 128), (8, 128), (16, 128)])
def test_linear_bn_growth_matches_exact_finite_batch_formula(batch, width):
    """Linear BN networks: growth (B−2)/(B−3) exactly in B (Yang et al. 2019, Thm 3.9 specialised)."""
    est = _bn_growth("linear", width, batch, seed=batch)
    pred = bn_gradient_growth("linear", batch)
    assert pred == pytest.approx((batch - 2) / (batch - 3), rel=1e-12)
    assert abs(est.value - pred) <= SAFETY * est.stderr + 3.0 / width, (est, pred)


@pytest.mark.parametrize("activation, batch, width", [("relu", 8, 128), ("relu", 64, 128), ("tanh", 8, 128),
                                                      ("tanh", 64, 256)])
def test_nonlinear_bn_growth_matches_theory(activation, batch, width):
    est = _bn_growth(activation, width, batch, seed=batch + 1)
    pred = bn_gradient_growth(activation, batch)
    assert abs(est.value - pred) <= SAFETY * est.stderr + 2.0 / width, (est, pred)


def test_bn_growth_distinguishes_batch_sizes_and_beats_no_bn():
    """The measurement resolves the finite-batch correction: relu B = 8 vs B = 64 differ by ~0.3, i.e. by
    far more than their errors, and both exceed the BN-free critical network's factor χ₁ = 1."""
    small = _bn_growth("relu", 128, 8, seed=9)
    large = _bn_growth("relu", 128, 64, seed=65)
    gap = bn_gradient_growth("relu", 8) - bn_gradient_growth("relu", 64)
    assert gap > 0.25
    assert small.value - large.value > gap - SAFETY * math.hypot(small.stderr, large.stderr) - 4.0 / 128
    no_bn = network_layer_stats(DEPTH, 128, "relu", "gaussian", sigma_w2=2.0, batch_size=8, trials=100,
                                seed=1, device="cpu").gradient_growth()
    assert abs(no_bn.value - 1.0) <= SAFETY * no_bn.stderr + 1e-12
    assert large.value > 1.4


@pytest.mark.parametrize("sigma_w2", [1.5, 2.5])
def test_no_bn_relu_growth_is_chi1_exactly(sigma_w2):
    """Without BN, E‖g_{l−1}‖² = (σ_w²/2)·E‖g_l‖² exactly at any width for ReLU with no bias (the sign-flip
    argument: w_i → −w_i swaps 1[h_i > 0] and keeps (w_i·v)²), so the fitted growth is χ₁ = σ_w²/2 up to
    sampling error only."""
    res = network_layer_stats(DEPTH, 64, "relu", "gaussian", sigma_w2=sigma_w2, batch_size=4, trials=150,
                              seed=11, device="cpu")
    est = res.gradient_growth()
    pred = chi1("relu", sigma_w2, 0.0)
    assert pred == pytest.approx(sigma_w2 / 2)
    assert abs(est.value - pred) <= SAFETY * est.stderr, (est, pred)


def test_no_bn_tanh_growth_is_chi1_at_q_star():
    """Tanh, σ_w² = 1.5, σ_b² = 0.05, inputs started at q*: growth χ₁(q*) (Schoenholz et al. 2017, eq. 5)
    up to an O(1/N) finite-width bias (bound 3/N)."""
    sw, sb = 1.5, 0.05
    qs = q_star("tanh", sw, sb)
    width = 256
    res = network_layer_stats(DEPTH, width, "tanh", "gaussian", sigma_w2=sw, sigma_b2=sb, bias=True,
                              input_variance=(qs - sb) / sw, batch_size=4, trials=100, seed=12, device="cpu")
    est = res.gradient_growth()
    pred = chi1("tanh", sw, sb)
    assert abs(est.value - pred) <= SAFETY * est.stderr + 3.0 / width, (est, pred)


# --------------------------------------------------------------------------- the stats-only path itself


@pytest.mark.parametrize("batchnorm", [None, "train", "eval"])
def test_layer_stats_path_equals_jacobian_path(batchnorm):
    """Same seed ⇒ same networks, inputs and output directions ⇒ the same statistics as the Jacobian path."""
    kw = dict(sigma_w2=2.0, batchnorm=batchnorm, batch_size=4, trials=3, seed=5, device="cpu")
    fast = network_layer_stats(3, 16, "relu", "gaussian", **kw)
    full = network_jacobian_spectrum(3, 16, "relu", "gaussian", layer_stats=True, **kw)
    assert set(fast.layer_stats) == set(full.layer_stats)
    for name, arr in fast.layer_stats.items():
        np.testing.assert_allclose(arr, full.layer_stats[name], rtol=1e-12, atol=0, err_msg=name)
    assert fast.config["kind"] == "network_layer_stats"
    assert fast.trials == 3 and fast.depth == 3


def test_layer_stats_conv_architecture_runs():
    res = network_layer_stats(2, 4, "tanh", "kaiming_normal", architecture="conv", image_size=4, batch_size=2,
                              batchnorm="train", trials=2, seed=0, device="cpu")
    assert res.layer_stats["grad_sq_norm"].shape == (2, 3)
    assert np.all(np.isfinite(res.layer_stats["grad_sq_norm"]))


def test_to_xarray_labels_and_config():
    res = network_layer_stats(3, 8, "relu", "kaiming_normal", batch_size=3, trials=2, seed=0, device="cpu")
    ds = res.to_xarray()
    assert ds["grad_sq_norm"].dims == ("trial", "layer")
    assert ds.sizes == {"trial": 2, "layer": 4}
    assert ds.attrs["depth"] == 3 and ds.attrs["init"] == "kaiming_normal"


def _synthetic(g: np.ndarray) -> LayerStatsResult:
    return LayerStatsResult(layer_stats={"grad_sq_norm": g}, config={})


def test_gradient_growth_recovers_exact_geometric_decay():
    """g_l = c_t·λ^{−l} per trial ⇒ λ̂ = λ exactly; the jackknife SE is 0 when all trials share one slope."""
    lam = 1.37
    layers = np.arange(7)
    g = np.outer([1.0, 2.0, 0.5], lam ** (-layers))
    est = _synthetic(g).gradient_growth()
    assert est.value == pytest.approx(lam, rel=1e-13)
    assert est.stderr == pytest.approx(0.0, abs=1e-12)
    # a window of layers uses only those layers
    g2 = g.copy()
    g2[:, 5:] *= 100.0
    assert _synthetic(g2).gradient_growth(first=1, last=4).value == pytest.approx(lam, rel=1e-13)
    assert _synthetic(g2).gradient_growth(first=1, last=6).value != pytest.approx(lam, rel=1e-3)


def test_gradient_growth_jackknife_matches_delta_method():
    """Two layers, iid trials: λ̂ = ḡ_0/ḡ_1, whose delta-method SE the jackknife must reproduce to O(1/T)."""
    rng = np.random.default_rng(0)
    t = 4000
    g0 = rng.gamma(4.0, 0.5, t) * 3.0
    g1 = rng.gamma(4.0, 0.5, t)
    est = _synthetic(np.stack([g0, g1], axis=1)).gradient_growth(first=0, last=1)
    r = g0.mean() / g1.mean()
    assert est.value == pytest.approx(r, rel=1e-12)
    delta = r * math.sqrt(np.var(g0 / g0.mean() - g1 / g1.mean(), ddof=1) / t)
    assert est.stderr == pytest.approx(delta, rel=0.02)


def test_gradient_growth_single_trial_is_refused():
    # No jackknife standard error from one trial: a ValueError, not a silent NaN (tests/test_engine_refuses.py).
    with pytest.raises(ValueError, match="needs >= 2 trials"):
        _synthetic(np.array([[4.0, 2.0, 1.0]])).gradient_growth(first=0, last=2)


@pytest.mark.parametrize("first, last", [(0, 0), (3, 2), (-1, 2), (0, 9), (0.5, 2)])
def test_gradient_growth_rejects_bad_windows(first, last):
    with pytest.raises(ValueError, match="first"):
        _synthetic(np.ones((2, 5))).gradient_growth(first=first, last=last)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        (dict(batchnorm="train", batch_size=1), "batch"),
        (dict(batchnorm="batch", batch_size=4), "valid choices"),
        (dict(trials=0), "trials"),
        (dict(activation="swish"), "swish"),
        (dict(init="glorot_cauchy"), "glorot_cauchy"),
    ],
)
def test_layer_stats_bad_input(kwargs, fragment):
    args = dict(activation="relu", init="gaussian", batch_size=4, device="cpu")
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        network_layer_stats(3, 8, **args)
    with pytest.raises(ValueError, match="depth"):
        network_layer_stats(0, 8, "relu", device="cpu")
