"""Batch norm at the end of residual branches (De & Smith 2020, arXiv 2002.10444): rmt_init.theory.residual_bn
against closed forms and torch residual MLPs with BatchNorm1d (docs/derivations.md §10)."""
from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import special

from rmt_init.theory import (
    bn_residual_alphas,
    bn_residual_depth_parameter,
    bn_residual_mean_field,
    derivative_moments,
    gaussian_expectation,
)


@pytest.mark.parametrize("act, sw2, sb2", [("linear", 1.0, 0.0), ("linear", 0.7, 0.3), ("relu", 2.0, 0.0),
                                           ("relu", 1.5, 0.2), ("tanh", 1.2, 0.05)])
def test_mean_field_matches_a_direct_recursion(act, sw2, sb2):
    """Independent recursion: q_l = q_{l−1} + 1, s_l² = E φ² − (E φ)² by scipy's adaptive quad (for relu, with
    its kink, the closed form q̃(1/2 − 1/(2π)) instead)."""
    from scipy import integrate

    L, q0 = 12, 0.8
    phi = {"linear": lambda x: x, "relu": lambda x: np.maximum(x, 0.0), "tanh": np.tanh}[act]
    q, alphas = q0, []
    for _ in range(L):
        qt = sw2 * q + sb2
        if act == "relu":
            var = qt * (0.5 - 0.5 / math.pi)
        else:
            def e(k):
                g = lambda t: phi(math.sqrt(qt) * t) ** k * math.exp(-t * t / 2) / math.sqrt(2 * math.pi)  # noqa: E731
                return integrate.quad(g, -12, 12, epsabs=1e-12, epsrel=1e-12, limit=200)[0]

            var = e(2) - e(1) ** 2
        alphas.append(1.0 / math.sqrt(var))
        q += 1.0
    np.testing.assert_allclose(bn_residual_alphas(L, act, q0=q0, sigma_w2=sw2, sigma_b2=sb2), alphas, rtol=1e-10)
    mf = bn_residual_mean_field(L, act, q0=q0, sigma_w2=sw2, sigma_b2=sb2)
    np.testing.assert_allclose(mf.stream_q, q0 + np.arange(L + 1), rtol=1e-15)
    mu1 = [derivative_moments(act, float(qt), 1) for qt in mf.preact_q]
    np.testing.assert_allclose(mf.gain, np.square(alphas) * sw2 * np.array(mu1), rtol=1e-10)


def test_homogeneous_gains_and_the_exact_linear_mean():
    """Linear: α_l² σ_w² = 1/q_{l−1}, so Π(1 + gain_l) = q_L/q_0; relu: gain = π/((π − 1) q_{l−1})."""
    mf = bn_residual_mean_field(50, "linear", q0=2.0, sigma_w2=3.0)
    np.testing.assert_allclose(mf.gain, 1.0 / (2.0 + np.arange(50)), rtol=1e-14)
    assert np.prod(1.0 + mf.gain) == pytest.approx((2.0 + 50) / 2.0, rel=1e-13)
    mf = bn_residual_mean_field(50, "relu", q0=1.0, sigma_w2=2.0)
    np.testing.assert_allclose(mf.gain, math.pi / ((math.pi - 1.0) * (1.0 + np.arange(50))), rtol=1e-14)
    # the relu constant c_φ = E φ'²/Var φ from quadrature, independently of the closed form
    var = gaussian_expectation(lambda x: np.maximum(x, 0) ** 2, 1.0, (0.0,)) - 1.0 / (2.0 * math.pi)
    assert mf.gain[0] == pytest.approx(0.5 / var, rel=1e-12)


@pytest.mark.parametrize("act, c", [("linear", 1.0), ("relu", math.pi / (math.pi - 1.0))])
def test_depth_parameter_grows_logarithmically(act, c):
    """τ_L = c(ψ(q_0 + L) − ψ(q_0)) = c(log L − ψ(q_0)) + O(1/L), against the per-block sum; a fixed-α residual
    net has τ ∝ L instead."""
    for L in (1, 7, 1000):
        mf = bn_residual_mean_field(L, act, q0=1.5, sigma_w2=2.0)
        assert bn_residual_depth_parameter(L, act, q0=1.5, sigma_w2=2.0) == pytest.approx(mf.tau[-1], rel=1e-12)
    big = 10**6
    tau = bn_residual_depth_parameter(big, act, q0=1.5, sigma_w2=2.0)
    assert abs(tau - c * (math.log(big) - special.digamma(1.5))) <= c * 1.5 / big
    # doubling the depth adds c log 2, not τ itself
    t1, t2 = (bn_residual_depth_parameter(L, act, sigma_w2=2.0) for L in (500, 1000))
    assert t2 - t1 == pytest.approx(c * math.log(2.0), rel=2e-3)


def _bn_resnet(act: str, depth: int, width: int, batch: int, sw2: float, seed: int):
    """x_l = x_{l−1} + BatchNorm1d(φ(W_l x_{l−1})), train mode; returns per-block q̂_l and pre-BN batch variances."""
    g = torch.Generator().manual_seed(seed)
    x = torch.randn(batch, width, generator=g, dtype=torch.float64)
    qs, vs = [x.pow(2).mean().item()], []
    with torch.no_grad():
        for _ in range(depth):
            lin = torch.nn.Linear(width, width, bias=False, dtype=torch.float64)
            torch.nn.init.normal_(lin.weight, 0.0, math.sqrt(sw2 / width), generator=g)
            bn = torch.nn.BatchNorm1d(width, dtype=torch.float64).train()
            y = torch.relu(lin(x)) if act == "relu" else lin(x)
            vs.append(y.var(dim=0, unbiased=False).mean().item())
            x = x + bn(y)
            qs.append(x.pow(2).mean().item())
    return np.array(qs), np.array(vs)


@pytest.mark.parametrize("act, sw2", [("linear", 1.0), ("relu", 2.0)])
def test_stream_and_branch_variances_match_torch_bn_resnets(act, sw2):
    """N = 512, B = 256, L = 10, 8 networks. Stream: q̂_l − q̂_0 = l, tolerance 5 SE + bias bound (l/N linear;
    l²/N relu: relu's branch means depend on each example's norm, and the O(1/√N) per-example means they add to
    the stream correlate with those norms, a cross term O(l/N) per block). Branch: the pre-BN batch variance
    s_l² = (1 − 1/B) σ_w² Var φ(z) q̂_{l−1} (biased batch variance of B independent examples), relative
    tolerance 5 SE + l/N (stated bound for the O(1/N) per-block effects: example correlations, BN's eps); it
    excludes the branch variance without BN's mean subtraction (relu: σ_w² q/2, 47 % larger) and the stream
    without the +1 per block."""
    L, N, B, nets = 10, 512, 256, 8
    runs = [_bn_resnet(act, L, N, B, sw2, seed) for seed in range(nets)]
    q = np.stack([r[0] for r in runs])
    v = np.stack([r[1] for r in runs])
    ell = np.arange(1, L + 1)
    mf = bn_residual_mean_field(L, act, q0=1.0, sigma_w2=sw2)
    growth = q[:, 1:] - q[:, :1]
    se = growth.std(axis=0, ddof=1) / math.sqrt(nets)
    bias = ell / N if act == "linear" else ell**2 / N
    assert np.all(np.abs(growth.mean(axis=0) - (mf.stream_q[1:] - mf.stream_q[0])) <= 5 * se + bias)
    v_phi = mf.branch_var / mf.preact_q  # Var φ(√q̃ z)/q̃ (homogeneous φ, no bias)
    ratio = v / ((1.0 - 1.0 / B) * sw2 * v_phi * q[:, :-1])
    r_se = ratio.std(axis=0, ddof=1) / math.sqrt(nets)
    assert np.all(np.abs(ratio.mean(axis=0) - 1.0) <= 5 * r_se + ell / N)
    assert np.all(5 * r_se + ell / N < 0.3)  # resolves relu's missing mean subtraction (ratio 1.47)
    # the alphas the torch nets realise: 1/s_l from the measured batch std, against the theory at q_0 = 1
    alpha_mc = 1.0 / np.sqrt(v.mean(axis=0))
    np.testing.assert_allclose(alpha_mc, mf.alphas, rtol=0.05)  # 1/B + l²/N + noise ≤ 2.5 % at these sizes


def test_per_example_jacobian_mean_matches_the_alphas():
    """The per-example Jacobian of a torch BN-ResNet (train mode, example 0's output against its own input, the
    rest of the batch fixed; torch.autograd.functional.jacobian): m1 = tr JJᵀ/N against Π_l (1 + α_l² σ_w² μ₁,l)
    (linear: exactly q_L/q_0 = 1 + L at B → ∞; relu 20.05 at L = 8). L = 8, N = 128, B = 64, 6 nets.
    Tolerance 5 SE + (L/B)·m1: BN's O(1/B) per-example correction is not in the theory (measured −1 % here).
    It excludes relu without BN's mean subtraction (gain 1/q: m1 = 9) and a fixed-scale residual net (2^L)."""
    L, N, B = 8, 128, 64
    for act, sw2 in (("linear", 1.0), ("relu", 2.0)):
        m1 = []
        for seed in range(6):
            g = torch.Generator().manual_seed(50 + seed)
            blocks = []
            for _ in range(L):
                lin = torch.nn.Linear(N, N, bias=False, dtype=torch.float64)
                torch.nn.init.normal_(lin.weight, 0.0, math.sqrt(sw2 / N), generator=g)
                blocks.append((lin, torch.nn.BatchNorm1d(N, dtype=torch.float64).train()))

            def net(x, blocks=blocks):
                for lin, bn in blocks:
                    y = lin(x)
                    x = x + bn(torch.relu(y) if act == "relu" else y)
                return x

            batch = torch.randn(B, N, generator=g, dtype=torch.float64)
            jac = torch.autograd.functional.jacobian(lambda x0: net(torch.cat([x0[None], batch[1:]]))[0], batch[0])
            m1.append(float((jac**2).sum()) / N)
        mf = bn_residual_mean_field(L, act, q0=1.0, sigma_w2=sw2)
        pred = float(np.prod(1.0 + mf.gain))
        if act == "linear":
            assert pred == pytest.approx(1.0 + L, rel=1e-13)
        se = np.std(m1, ddof=1) / math.sqrt(len(m1))
        tol = 5 * se + (L / B) * pred
        assert abs(np.mean(m1) - pred) <= tol
        wrong = (1.0 + L) if act == "relu" else 2.0**L
        assert abs(wrong - pred) > tol


@pytest.mark.parametrize(
    "call, match",
    [
        (lambda: bn_residual_alphas(0), "depth"),
        (lambda: bn_residual_alphas(3, "swish"), "activation"),
        (lambda: bn_residual_alphas(3, q0=0.0), "q0"),
        (lambda: bn_residual_alphas(3, sigma_w2=float("nan")), "sigma_w2"),
        (lambda: bn_residual_alphas(3, sigma_b2=-1.0), "sigma_b2"),
        (lambda: bn_residual_depth_parameter(3, q0=-1.0), "q0"),
    ],
)
def test_bad_input_raises_value_error(call, match):
    with pytest.raises(ValueError, match=match):
        call()
