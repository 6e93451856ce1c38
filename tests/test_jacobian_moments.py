"""``network_jacobian_moments`` (matrix-free Hutchinson moments) against the dense Jacobian of the same networks.

References: ``network_jacobian_spectrum`` with the same arguments and seed (the same networks and inputs) gives the
squared singular values of the dense batch Jacobian; ``m_k`` is the mean of ``λ^k`` over its ``B·N`` values
(structural zeros kept). Tolerances:

* orthonormal probes with ``P = B·N``: the estimate is the exact trace (module docstring), so it must equal the
  dense moments to rounding: 1e−10 relative (measured ≤ 3e−15).
* Gaussian probes: each network's estimate is unbiased with variance ``2 tr (JᵀJ)^{2k} / (P (B N)²)``
  (Hutchinson 1990), computed here from the dense spectrum; tolerance 5 of those SDs per network and order (the
  estimate is a mean of P weighted χ²₁ variables, so 5 SD is exceeded with probability ≲ 1e−3 even for P = 16;
  fixed seeds make the test deterministic). Rademacher probes have variance ≤ the Gaussian one, same bound.
"""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch

from rmt_init.montecarlo import JacobianMomentsResult, chained_jacobian, network_jacobian_moments, network_jacobian_spectrum
from rmt_init.montecarlo._device import limit_threads
from rmt_init.montecarlo.jacobian_moments import _pull
from rmt_init.montecarlo.jacobians import _forward_cache
from rmt_init.montecarlo.network_setup import network_setup

SAFETY = 5.0


@pytest.fixture(autouse=True)
def _single_thread():
    with limit_threads(1):
        yield


def _dense(depth, width, act, bn, batch, trials, seed):
    res = network_jacobian_spectrum(depth, width, act, batchnorm=bn, batch_size=batch, trials=trials, seed=seed,
                                    drop_structural_zeros=False, layer_stats=False, device="cpu")
    return np.asarray(res.squared_singular_values, np.float64)


@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
@pytest.mark.parametrize("bn, batch, width", [("train", 4, 16), ("train", 8, 32), (None, 4, 16), ("eval", 4, 16)])
def test_full_orthonormal_frame_is_exact(act, bn, batch, width):
    """P = B·N orthonormal probes: the traces are exact, m_1..m_4 equal the dense Jacobian's to 1e−10."""
    depth, trials, seed = 2, 3, 11
    lam = _dense(depth, width, act, bn, batch, trials, seed)
    exact = np.stack([np.mean(lam**k, axis=1) for k in (1, 2, 3, 4)], axis=1)
    res = network_jacobian_moments(depth, width, act, batchnorm=bn, batch_size=batch, trials=trials, seed=seed,
                                   orders=4, probes=batch * width, probe="orthonormal", device="cpu")
    assert isinstance(res, JacobianMomentsResult)
    assert res.per_network.shape == (trials, 4)
    np.testing.assert_allclose(res.per_network, exact, rtol=1e-10, atol=0)
    assert np.all(res.probe_stderr == 0.0)


@pytest.mark.parametrize("probe", ["gaussian", "rademacher"])
@pytest.mark.parametrize("act, batch", [("linear", 8), ("relu", 8), ("tanh", 4)])
def test_random_probes_within_their_hutchinson_sd(probe, act, batch):
    """Each network's estimate lies within 5 exact Hutchinson SDs, sqrt(2 Σλ^{2k}/P)/(BN), of the dense moment;
    and a wrong normalisation (×2) would fail."""
    depth, width, trials, seed, probes = 2, 16, 6, 3, 64
    lam = _dense(depth, width, act, "train", batch, trials, seed)
    n = lam.shape[1]
    res = network_jacobian_moments(depth, width, act, batchnorm="train", batch_size=batch, trials=trials, seed=seed,
                                   probes=probes, probe=probe, device="cpu")
    for k in (1, 2, 3):
        exact = np.mean(lam**k, axis=1)
        sd = np.sqrt(2.0 * np.sum(lam ** (2 * k), axis=1) / probes) / n
        err = np.abs(res.per_network[:, k - 1] - exact)
        assert np.all(err <= SAFETY * sd), (k, err / sd)
        assert np.all(exact >= SAFETY * sd)  # the bound excludes 0 (and hence a factor 2 error): it can fail
        assert np.all(np.isfinite(res.probe_stderr[:, k - 1])) and np.all(res.probe_stderr[:, k - 1] > 0)


@pytest.mark.parametrize("act", ["linear", "relu", "tanh"])
def test_transposed_pass_is_the_dense_transpose(act):
    """``_pull`` applies Jᵀ of the batch map: equal to the dense chained Jacobian's transpose to 1e−12."""
    setup = network_setup(3, 12, act, batchnorm="train", batch_size=5, trials=1, seed=4, device="cpu")
    model, x, gen = setup.build(0)
    jac = chained_jacobian(model, x, "batch")  # (B·N, B·N)
    with torch.no_grad():
        _, caches = _forward_cache(model, x)
        u = torch.randn((7, 5, 12), generator=gen, dtype=torch.float64)
        got = _pull(caches, u, (12,)).reshape(7, -1)
    want = (jac.T @ u.reshape(7, -1).T).T
    torch.testing.assert_close(got, want, rtol=1e-12, atol=1e-12)


def test_moment_mean_and_stderr_over_networks():
    res = network_jacobian_moments(2, 16, "relu", batchnorm="train", batch_size=8, trials=5, seed=1, probes=4,
                                   device="cpu")
    for k in (1, 2, 3):
        mean, se = res.moment(k)
        col = res.per_network[:, k - 1]
        assert mean == pytest.approx(col.mean(), rel=1e-14)
        assert se == pytest.approx(col.std(ddof=1) / math.sqrt(5), rel=1e-12)
    with pytest.raises(ValueError, match="not computed"):
        res.moment(4)
    assert "m3 =" in repr(res) and res.config["probes"] == 4 and res.config["batchnorm"] == "train"


def test_probes_do_not_change_the_networks():
    """Probes are drawn after the network and inputs: the exact estimate is the same for any probe count
    requested before (here: two calls with the full frame, one asking for order 1 only)."""
    a = network_jacobian_moments(2, 8, "tanh", batchnorm="train", batch_size=4, trials=2, seed=9, probes=32,
                                 probe="orthonormal", device="cpu")
    b = network_jacobian_moments(2, 8, "tanh", batchnorm="train", batch_size=4, trials=2, seed=9, probes=32,
                                 probe="orthonormal", orders=1, device="cpu")
    np.testing.assert_allclose(a.per_network[:, :1], b.per_network, rtol=1e-12)


@pytest.mark.parametrize(
    "kwargs, fragment",
    [
        ({"batchnorm": "train_diagonal"}, "train_diagonal"),
        ({"probe": "orthonormal", "probes": 10_000}, "probes <= B"),
        ({"orders": 0}, "orders"),
        ({"probe": "sobol"}, "probe"),
        ({"probes": 0}, "probes"),
        ({"batch_size": 2}, "batch_size"),
    ],
)
def test_refuses_bad_arguments(kwargs, fragment):
    args = {"batchnorm": "train", "batch_size": 4, "trials": 1, "device": "cpu"}
    args.update(kwargs)
    with pytest.raises(ValueError, match=fragment):
        network_jacobian_moments(2, 8, "relu", **args)
