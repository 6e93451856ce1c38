"""delta_orthogonal_ (Xiao et al. 2018, arXiv 1806.05393, Algorithm 2) and its use by the network engine."""
from __future__ import annotations

import numpy as np
import pytest
import torch

from rmt_init.montecarlo import build_conv, chained_jacobian, delta_orthogonal_, network_jacobian_spectrum
from rmt_init.montecarlo.ensembles import WeightInit


@pytest.mark.parametrize("shape", [(5, 8, 3), (6, 6, 3, 5), (4, 7, 1, 3, 3), (8, 5, 3, 3), (7, 3, 5)])
@pytest.mark.parametrize("gain", [1.0, 0.7])
def test_centre_tap_is_scaled_semi_orthogonal_and_the_rest_zero(shape, gain):
    w = torch.empty(shape, dtype=torch.float64)
    out = delta_orthogonal_(w, gain=gain, generator=torch.Generator().manual_seed(3))
    assert out is w
    centre = (slice(None), slice(None), *(k // 2 for k in shape[2:]))
    h = w[centre]
    c_out, c_in = shape[:2]
    gram = h @ h.T if c_out <= c_in else h.T @ h  # orthonormal rows (out ≤ in), else columns
    np.testing.assert_allclose(gram.numpy(), gain**2 * np.eye(min(c_out, c_in)), atol=1e-12)
    rest = w.clone()
    rest[centre] = 0.0
    assert torch.count_nonzero(rest) == 0
    assert torch.count_nonzero(h) == h.numel()  # a Haar matrix has no zero entry (probability 1)


def test_reproducible_with_a_generator_and_different_for_another_seed():
    draw = lambda seed: delta_orthogonal_(  # noqa: E731
        torch.empty(6, 6, 3, 3, dtype=torch.float64), generator=torch.Generator().manual_seed(seed)
    )
    assert torch.equal(draw(1), draw(1))
    assert not torch.equal(draw(1), draw(2))


@pytest.mark.parametrize("gain", [1.0, 1.3])
def test_linear_circular_conv_net_jacobian_is_gain_power_times_orthogonal(gain):
    """J = I_positions ⊗ g^L H_L⋯H_1: every squared singular value is g^{2L} (rounding only)."""
    depth, c = 6, 8
    res = network_jacobian_spectrum(depth, c, "linear", architecture="conv", image_size=5, kernel_size=3,
                                    weights="delta_orthogonal", sigma_w2=gain**2, trials=2, seed=4,
                                    layer_stats=False)
    x = res.squared_singular_values
    assert x.shape == (2, c * 25)
    np.testing.assert_allclose(x, gain ** (2 * depth), rtol=1e-12)
    assert res.config["weights"] == "delta_orthogonal"
    np.testing.assert_allclose(res.config["sigma_w2_effective"], gain**2, rtol=1e-12)


def test_builder_with_delta_orthogonal_weight_init_matches_direct_jacobian():
    """build_conv + chained_jacobian with changing channel counts (semi-orthogonal centre taps)."""
    spec = WeightInit("explicit", "delta_orthogonal", {"scheme": "delta_orthogonal"}, 1.0)
    model = build_conv([4, 6, 6, 4], "linear", spec, kernel_size=3, generator=torch.Generator().manual_seed(0))
    x = torch.randn(1, 4, 3, 3, dtype=torch.float64)
    jac = chained_jacobian(model, x, "per_example")
    sv = torch.linalg.svdvals(jac.detach().reshape(4 * 9, 4 * 9))
    # 4 → 6 (orthonormal columns) → 6 → 4 (orthonormal rows): the product of the centre taps is not orthogonal
    # in general, but the Jacobian is I_positions ⊗ (that product) exactly, so its singular values are the
    # product's, each repeated once per position (9)
    taps = [m.weight.detach()[:, :, 1, 1] for m in model if isinstance(m, torch.nn.Conv2d)]
    prod = taps[2] @ taps[1] @ taps[0]
    expected = torch.linalg.svdvals(prod).repeat(9)
    np.testing.assert_allclose(np.sort(sv.numpy()), np.sort(expected.numpy()), atol=1e-12)


@pytest.mark.parametrize(
    "tensor, kwargs, match",
    [
        (torch.empty(4, 4), {}, "conv weight"),
        (torch.empty(4, 4, 2, 3), {}, "odd kernel"),
        (torch.empty(4, 4, 3, 3), {"gain": float("nan")}, "gain"),
        (torch.empty(4, 4, 3, 3), {"gain": "1"}, "gain"),
        (torch.empty(4, 4, 3, 3, dtype=torch.int64), {}, "floating"),
        ([[1.0]], {}, "torch.Tensor"),
    ],
)
def test_bad_input_is_refused(tensor, kwargs, match):
    with pytest.raises(ValueError, match=match):
        delta_orthogonal_(tensor, **kwargs)


def test_engine_refuses_delta_orthogonal_for_an_mlp_and_with_another_init():
    with pytest.raises(ValueError, match="architecture='conv'"):
        network_jacobian_spectrum(2, 4, "linear", weights="delta_orthogonal", trials=1)
    with pytest.raises(ValueError, match="sigma_w2"):
        network_jacobian_spectrum(2, 4, "linear", "kaiming_normal", weights="delta_orthogonal",
                                  architecture="conv", image_size=3, trials=1)
    with pytest.raises(ValueError, match="sigma_w2"):
        network_jacobian_spectrum(2, 4, "linear", weights="delta_orthogonal", sigma_w2=-1.0,
                                  architecture="conv", image_size=3, trials=1)
