"""Chained layer Jacobians (rmt_init.montecarlo.jacobians) against torch.func.jacrev, and the network
spectra of rmt_init.montecarlo.network_jacobian_spectrum against Jacobians recomputed with jacrev."""
from __future__ import annotations

import math
import zlib

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
    # A stable seed (str hashes change with PYTHONHASHSEED: some draws gave a dead relu net, all-zero Jacobian).
    gen = torch.Generator().manual_seed(zlib.crc32(f"{arch}-{bn_mode}".encode()))
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


# --- every supported module type against jacrev ------------------------------------------------------------
# Tolerance 1e-10 (float64): entries are O(1) and each path is a handful of O(1)-conditioned products of
# small matrices, so rounding is a few hundred ulps (≲ 1e-13) at most; 1e-10 leaves a wide margin while any
# modelling error (a missing term, a wrong reshape) is O(0.01–1), as measured for Softmax/LayerNorm.
JAC_TOL = 1e-10


class _TanhSameForward(torch.nn.Tanh):
    """A subclass that keeps Tanh.forward: its Jacobian is still known exactly."""


def _check_against_jacrev(model, x, per_example=True):
    model = model.to(torch.float64)
    ref = _jacrev_batch(model, x)
    assert float(ref.abs().max()) > 1e-3  # the comparison is not between zeros
    err = float((chained_jacobian(model, x, "batch", max_chunk=7) - ref).abs().max())
    assert err <= JAC_TOL, err
    if per_example:
        b, f_in = x.shape[0], x[0].numel()
        f_out = ref.shape[0] // b
        blocks = torch.stack([ref[i * f_out:(i + 1) * f_out, i * f_in:(i + 1) * f_in] for i in range(b)])
        err = float((chained_jacobian(model, x, "per_example") - blocks).abs().max())
        assert err <= JAC_TOL, err


def _elementwise_modules():
    from rmt_init.montecarlo.jacobians import ELEMENTWISE_ACTIVATIONS

    special = {
        torch.nn.PReLU: lambda: torch.nn.PReLU(num_parameters=6, init=0.3),
        torch.nn.Threshold: lambda: torch.nn.Threshold(0.1, -2.0),
        torch.nn.Hardshrink: lambda: torch.nn.Hardshrink(0.3),
        torch.nn.Softshrink: lambda: torch.nn.Softshrink(0.3),
        torch.nn.Softplus: lambda: torch.nn.Softplus(beta=2.0, threshold=1.0),
    }
    return [pytest.param(special.get(cls, cls), id=cls.__name__) for cls in ELEMENTWISE_ACTIVATIONS]


@pytest.mark.filterwarnings("ignore:There is a performance drop:UserWarning")  # jacrev of RReLU (torch's note)
@pytest.mark.parametrize("make", _elementwise_modules())
def test_every_listed_elementwise_activation_matches_jacrev(make):
    gen = torch.Generator().manual_seed(11)
    act = make()
    if isinstance(act, torch.nn.RReLU):
        act.eval()  # deterministic slope (lower + upper)/2; train mode is refused
    model = torch.nn.Sequential(torch.nn.Linear(5, 6), act, torch.nn.Linear(6, 4))
    with torch.no_grad():
        for p in model.parameters():
            p.normal_(generator=gen)
    x = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    _check_against_jacrev(model, x)


def test_other_supported_modules_match_jacrev():
    nn = torch.nn
    gen = torch.Generator().manual_seed(5)
    torch.manual_seed(5)
    x2 = torch.randn(3, 5, dtype=torch.float64, generator=gen)
    # in-place activation, eval-mode dropout, p = 0 dropout in train mode, a subclass keeping forward,
    # nested Sequential, identity only
    drop_eval = nn.Dropout(0.5).eval()
    cases = [
        (nn.Sequential(nn.Linear(5, 6), nn.ReLU(inplace=True), drop_eval, nn.Linear(6, 4)), x2, True),
        (nn.Sequential(nn.Linear(5, 6), nn.Dropout(0.0), nn.AlphaDropout(0.0), _TanhSameForward()), x2, True),
        (nn.Sequential(nn.Sequential(nn.Linear(5, 6), nn.GELU()), nn.Sequential(nn.Linear(6, 4), nn.SiLU())), x2, True),
        (nn.Sequential(nn.Identity()), x2, True),
        (nn.Sequential(), x2, True),
    ]
    # Conv1d / Conv3d with BN1d / BN3d (train: batch statistics), strided, grouped and dilated Conv2d,
    # Flatten → Linear and Unflatten → Conv2d
    cases += [
        (nn.Sequential(nn.Conv1d(2, 4, 3, padding=1, padding_mode="reflect"), nn.BatchNorm1d(4), nn.Tanh()),
         torch.randn(3, 2, 5, dtype=torch.float64, generator=gen), False),
        (nn.Sequential(nn.Conv3d(2, 2, 3, padding=1, padding_mode="circular"), nn.BatchNorm3d(2), nn.ELU()),
         torch.randn(2, 2, 3, 3, 3, dtype=torch.float64, generator=gen), False),
        (nn.Sequential(nn.Conv2d(4, 4, 3, stride=2, padding=2, dilation=2, groups=2), nn.Softplus(),
                       nn.Flatten(), nn.Linear(16, 3), nn.Unflatten(1, (3, 1, 1)), nn.Conv2d(3, 2, 1)),
         torch.randn(2, 4, 4, 4, dtype=torch.float64, generator=gen), True),
    ]
    bn_eval = nn.Sequential(nn.Linear(5, 6), nn.BatchNorm1d(6), nn.Mish())
    bn_eval[1].running_var.uniform_(0.5, 2.0, generator=gen)
    bn_eval[1].running_mean.normal_(generator=gen)
    cases.append((bn_eval.eval(), x2, True))
    for model, x, per_example in cases:
        model = model.to(torch.float64)
        for m in model.modules():  # jacrev sees the same pure function (no running-statistics update)
            if isinstance(m, _BatchNorm) and m.training:
                m.track_running_stats = False
                m.running_mean = m.running_var = m.num_batches_tracked = None
        with torch.no_grad():
            for p in model.parameters():
                p.normal_(generator=gen)
        if not per_example:
            with pytest.raises(ValueError, match="per_example"):
                chained_jacobian(model, x, "per_example")
        if len(model) and not isinstance(model[0], nn.Identity):
            _check_against_jacrev(model, x, per_example)
        else:  # identity map: the Jacobian is the identity
            np.testing.assert_array_equal(chained_jacobian(model, x, "batch").numpy(), np.eye(x.numel()))
            np.testing.assert_array_equal(chained_jacobian(model, x).numpy(), np.broadcast_to(np.eye(5), (3, 5, 5)))
