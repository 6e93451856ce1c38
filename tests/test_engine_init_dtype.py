"""``init_dtype="float32"``: networks drawn as a float32 model is, their Jacobians computed in float64.

* The weights equal, bit for bit, those of the float32 network built with the same seed (float32 → float64 is
  exact), for MLPs and conv nets, with biases and batch norm.
* The spectra equal the float64 pipeline (chain + ``svdvals``) applied to that cast float32 network.
* The law is unchanged: for linear Gaussian chains E m1 = σ_w^{2L} exactly, checked by Monte Carlo.
* Bad values raise ``ValueError`` naming ``init_dtype``.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rmt_init.montecarlo import chained_jacobian, network_jacobian_spectrum
from rmt_init.montecarlo._device import limit_threads
from rmt_init.montecarlo.network_setup import network_setup


@pytest.fixture(autouse=True)
def _single_thread():
    with limit_threads(1):
        yield


CASES = [
    dict(depth=3, width=12, activation="tanh", init="kaiming_normal", bias=True),
    dict(depth=2, width=6, activation="relu", init="xavier_uniform", batchnorm="train", batch_size=4),
    dict(depth=2, width=4, activation="relu", init="kaiming_normal", architecture="conv", image_size=4),
    dict(depth=3, width=8, activation="linear", init="orthogonal"),
]


@pytest.mark.parametrize("case", CASES, ids=lambda c: f"{c['activation']}-{c['init']}-{c.get('architecture', 'mlp')}")
def test_weights_are_the_float32_models_bit_for_bit(case):
    kw = dict(case, trials=1, seed=11, device="cpu")
    reference, _, _ = network_setup(dtype="float32", **kw).build(0)
    drawn, x, _ = network_setup(init_dtype="float32", **kw).build(0)
    assert x.dtype == torch.float64
    ref_state, state = reference.state_dict(), drawn.state_dict()
    assert ref_state.keys() == state.keys()
    for name, value in state.items():
        if value.is_floating_point():
            assert value.dtype == torch.float64, name
            assert torch.equal(value, ref_state[name].to(torch.float64)), name


def test_spectrum_is_the_float64_pipeline_on_the_cast_network():
    kw = dict(depth=4, width=10, activation="tanh", init="kaiming_normal", trials=2, seed=3, device="cpu")
    result = network_jacobian_spectrum(init_dtype="float32", layer_stats=False, **kw)
    assert result.config["init_dtype"] == "float32" and result.config["dtype"] == "float64"
    setup = network_setup(init_dtype="float32", **kw)
    for t in range(2):
        model, x, _ = setup.build(t)
        sv = torch.linalg.svdvals(chained_jacobian(model, x, "per_example")).numpy()
        expected = np.sort(sv.ravel() ** 2)[::-1]
        np.testing.assert_allclose(result.squared_singular_values[t], expected, rtol=1e-13, atol=0)


def test_linear_gaussian_mean_is_unchanged():
    # E m1 = E tr(JJᵀ)/n = σ_w^{2L} = 1 exactly for linear chains with N(0, 1/n) entries. 60 trials of
    # m1 = tr(JJᵀ)/n; the tolerance is 5 SE over trials. float32 rounding of the entries moves m1 by ~1e-7,
    # far below the SE (~0.02 here): this catches a wrong scale or a wrong scheme, not the rounding.
    r = network_jacobian_spectrum(
        3, 24, "linear", "gaussian", sigma_w2=1.0, trials=60, seed=0, device="cpu", init_dtype="float32",
        layer_stats=False,
    )
    m1 = r.squared_singular_values.mean(axis=1)
    se = m1.std(ddof=1) / np.sqrt(m1.size)
    assert abs(m1.mean() - 1.0) <= 5 * se


@pytest.mark.parametrize("bad", ["float16", torch.bfloat16, "half", 3])
def test_bad_init_dtype_names_the_argument(bad):
    with pytest.raises(ValueError, match="init_dtype"):
        network_setup(2, 4, init_dtype=bad)


def test_float64_draws_into_a_float32_network_refuse():
    with pytest.raises(ValueError, match="init_dtype='float64'"):
        network_setup(2, 4, dtype="float32", init_dtype="float64")
