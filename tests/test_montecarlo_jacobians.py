"""Chained layer Jacobians (rmt_init.montecarlo.jacobians) against torch.func.jacrev, and the network
spectra of rmt_init.montecarlo.network_jacobian_spectrum against Jacobians recomputed with jacrev."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from torch.nn.modules.batchnorm import _BatchNorm

from rmt_init.montecarlo import (
    build_conv,
    build_mlp,
    chained_jacobian,
    network_jacobian_spectrum,
    weight_init,
)
from rmt_init.montecarlo._device import limit_threads, trial_generator
from rmt_init.montecarlo.networks import kaiming_defaults

ACTS = ["linear", "relu", "leaky_relu", "tanh", "hardtanh", "erf", "sigmoid", "selu", "gelu"]


@pytest.fixture(autouse=True)
def _single_thread():
    """The matrices here are tiny: intra-op threads only add synchronisation cost (large on busy CI)."""
    with limit_threads(1):
        yield


def _prepare(model, bn_mode, gen):
    """Put BN layers in the requested state; train-mode BN stops tracking so jacrev sees a pure function."""
    for m in model:
        if isinstance(m, _BatchNorm):
            if bn_mode == "eval":  # arbitrary (non-default) running statistics
                m.running_var.uniform_(0.5, 2.0, generator=gen)
                m.running_mean.normal_(generator=gen)
            else:
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
    model.eval() if bn_mode == "eval" else model.train()


def _jacrev_batch(model, x):
    b = x.shape[0]
    f_in = x[0].numel()
    ref = torch.func.jacrev(model)(x).detach()
    return ref.reshape(b * (ref.numel() // (b * b * f_in)), b * f_in)


@pytest.mark.parametrize("arch", ["mlp", "conv_circular", "conv_zeros"])
@pytest.mark.parametrize("bn_mode", [None, "train", "eval"])
def test_chained_jacobian_equals_jacrev(arch, bn_mode):
    gen = torch.Generator().manual_seed(hash((arch, str(bn_mode))) % 2**31)
    worst = 0.0
    for act in ACTS:
        spec = weight_init("kaiming_normal", default_kwargs=kaiming_defaults(act))
        if arch == "mlp":
            model = build_mlp([5, 7, 4, 6], act, spec, batchnorm=bn_mode is not None, bias=True, generator=gen)
            x = torch.randn(4, 5, dtype=torch.float64, generator=gen)
        else:
            pad = arch.split("_")[1]
            model = build_conv([2, 3, 2], act, spec, batchnorm=bn_mode is not None, bias=True, generator=gen,
                               padding_mode=pad)
            x = torch.randn(3, 2, 4, 4, dtype=torch.float64, generator=gen)
        _prepare(model, bn_mode, gen)
        ref = _jacrev_batch(model, x)
        assert float(ref.abs().max()) > 1e-3  # the comparison is not between zeros
        full = chained_jacobian(model, x, "batch", max_chunk=5)
        worst = max(worst, float((full - ref).abs().max()))
        if bn_mode != "train":  # examples uncoupled: per-example Jacobians are the diagonal blocks
            b, f_in = x.shape[0], x[0].numel()
            f_out = ref.shape[0] // b
            blocks = torch.stack([ref[i * f_out:(i + 1) * f_out, i * f_in:(i + 1) * f_in] for i in range(b)])
            per = chained_jacobian(model, x, "per_example")
            worst = max(worst, float((per - blocks).abs().max()))
            off = ref.clone()
            for i in range(b):
                off[i * f_out:(i + 1) * f_out, i * f_in:(i + 1) * f_in] = 0
            assert float(off.abs().max()) == 0.0
        else:
            with pytest.raises(ValueError, match="per_example"):
                chained_jacobian(model, x, "per_example")
    assert worst <= 1e-10


def _rebuild(seed, t, widths, act, init, *, batchnorm, batch_size, input_variance=1.0, **kw):
    """Rebuild trial t's network and inputs exactly as network_jacobian_spectrum draws them (MLP)."""
    gen = trial_generator(seed, t, torch.device("cpu"))
    spec = weight_init(init, default_kwargs=kaiming_defaults(act), **kw)
    model = build_mlp(widths, act, spec, batchnorm=batchnorm, generator=gen)
    x = math.sqrt(input_variance) * torch.randn((batch_size, widths[0]), generator=gen, dtype=torch.float64)
    return model, x


@pytest.mark.parametrize("mode", [None, "train", "train_diagonal"])
def test_network_spectrum_equals_svd_of_jacrev(mode):
    widths, act, b, seed = (5, 6, 6, 5), "tanh", 4, 9
    res = network_jacobian_spectrum(3, list(widths), act, "xavier_normal", batchnorm=mode, batch_size=b, trials=2,
                                    seed=seed, device="cpu", drop_structural_zeros=False, layer_stats=False)
    for t in range(2):
        model, x = _rebuild(seed, t, widths, act, "xavier_normal", batchnorm=mode is not None, batch_size=b)
        _prepare(model, "train", None)
        ref = _jacrev_batch(model, x)
        if mode == "train_diagonal":
            f_in, f_out = widths[0], widths[-1]
            mats = torch.stack([ref[i * f_out:(i + 1) * f_out, i * f_in:(i + 1) * f_in] for i in range(b)])
        else:
            mats = ref if mode == "train" else torch.stack(
                [ref[i * widths[-1]:(i + 1) * widths[-1], i * widths[0]:(i + 1) * widths[0]] for i in range(b)])
        sv2 = np.sort((torch.linalg.svdvals(mats).detach().numpy() ** 2).ravel())[::-1]
        np.testing.assert_allclose(res.squared_singular_values[t], sv2, rtol=1e-9, atol=1e-12 * sv2.max())
