"""Batch norm at the end of residual branches: per-block effective scales (De & Smith 2020).

Network (docs/derivations.md §10): the residual stream x_0 (entries of second moment q_0) and blocks

    h_l = W_l x_{l−1} + b_l,    x_l = x_{l−1} + BN(φ(h_l)),    W_ij ~ N(0, σ_w²/N), b ~ N(0, σ_b²),

with train-mode BN over a batch of B examples (per unit: subtract the batch mean μ_l, divide by the batch std
s_l; γ = 1, β = 0). De & Smith 2020 (NeurIPS, "Batch normalization biases residual blocks towards the identity
function in deep networks", arXiv 2002.10444, §2): each BN output has unit variance, so in the wide,
large-batch mean field (branch outputs uncorrelated with the stream at init — true at N → ∞)

    q_l = q_{l−1} + 1 = q_0 + l,                 (stream second moment)
    q̃_l = σ_w² q_{l−1} + σ_b²,                  (pre-activation variance of block l)
    s_l² = Var_z φ(√q̃_l z),                      (the branch's pre-BN batch variance, B → ∞)

and the per-example Jacobian of block l is I + (1/s_l) B_l D_l W_l with D_l = diag φ'(h_l) and BN's per-unit
per-example derivative B_l = 1 − 1/B − ŷ²/B → 1 (the O(1/B) part is not included). So block l is the
"one weight matrix per block" residual factor I + α_l D_l W_l (Tarnowski et al. 2019, arXiv 1809.08848) with

    α_l = 1/s_l,    α_l² σ_w² μ₁,l = σ_w² E[φ'(√q̃_l z)²] / Var φ(√q̃_l z),   μ₁,l = E φ'(√q̃_l z)².

Homogeneous φ without bias: α_l² σ_w² μ₁ = c_φ/q_{l−1} with c_φ = E φ'(z)²/Var φ(z): linear 1, ReLU
1/(1 − 1/π) ≈ 1.467 (the mean subtraction matters: without it, 1). The depth parameter

    τ_L = Σ_{l=1}^{L} α_l² σ_w² μ₁,l = c_φ (ψ(q_0 + L) − ψ(q_0)) ~ c_φ log L      (ψ the digamma function)

grows only logarithmically with depth, against τ = L α² σ_w² μ₁ for a residual net with a fixed branch
scale α: the BN-ResNet behaves like a shallow one (De & Smith §2–3). For linear blocks the Jacobian's mean
squared singular value is exactly Π_l (1 + 1/q_{l−1}) = q_L/q_0 = 1 + L/q_0 (linear growth, not exponential).

Recipe for the law (once ``jacobian_spectrum(..., residual=α)`` takes one α per block): for homogeneous φ
(linear, relu, leaky_relu) with σ_b² = 0 the law of Π(I + α_l D_l W_l) depends on σ_w and α_l only through
α_l σ_w and the (q-independent) law of D², so the BN-ResNet's per-example law is
``jacobian_spectrum(L, φ, residual=bn_residual_alphas(L, φ, q0=q_0, sigma_w2=σ_w²), weights="gaussian",
sigma_w2=σ_w², sigma_b2=0)``. For other φ the law of D_l² must be taken at the pre-activation variance
q̃_l of :func:`bn_residual_mean_field` (``preact_q``), not at a residual recursion without BN.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import special

from .._validate import check_int, check_real
from .activations import Activation, _derivative_moment, gaussian_expectation, get_activation
from .meanfield import _phi_sq_moment

__all__ = ["BNResidualMeanField", "bn_residual_mean_field", "bn_residual_alphas", "bn_residual_depth_parameter"]

_HOMOGENEOUS_C = {"linear": 1.0, "relu": 1.0 / (1.0 - 1.0 / math.pi)}


@dataclass(frozen=True)
class BNResidualMeanField:
    """Per-block mean field of a residual net with BN at the end of each branch (module docstring).

    Arrays of length L (blocks l = 1..L) except ``stream_q`` (length L + 1, q_0..q_L): ``preact_q`` q̃_l,
    ``branch_var`` s_l² (pre-BN batch variance), ``alphas`` 1/s_l, ``mu1`` E φ'(h_l)², ``gain`` α_l² σ_w² μ₁,l
    and ``tau`` the cumulative depth parameter τ_l = Σ_{j ≤ l} gain_j.
    """

    activation: Activation
    sigma_w2: float
    sigma_b2: float
    stream_q: np.ndarray
    preact_q: np.ndarray
    branch_var: np.ndarray
    alphas: np.ndarray
    mu1: np.ndarray
    gain: np.ndarray
    tau: np.ndarray


def _branch_variance(act: Activation, q: float) -> float:
    """Var_z φ(√q z) = E φ² − (E φ)² (closed forms for linear and relu, else kink-aware quadrature)."""
    if act.name == "linear":
        return q
    if act.name == "relu":
        return q * (0.5 - 0.5 / math.pi)
    mean = gaussian_expectation(act.phi, q, act.kinks)
    return _phi_sq_moment(act, q) - mean * mean


def bn_residual_mean_field(
    depth: int,
    activation: str | Activation = "relu",
    *,
    q0: float = 1.0,
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
) -> BNResidualMeanField:
    """The per-block mean field of x_l = x_{l−1} + BN(φ(W_l x_{l−1} + b_l)) at N, B → ∞ (module docstring).

    q_l = q_0 + l, q̃_l = σ_w² q_{l−1} + σ_b², s_l² = Var φ(√q̃_l z), α_l = 1/s_l, μ₁,l = E φ'(√q̃_l z)²,
    gain_l = α_l² σ_w² μ₁,l, τ_l = Σ_{j≤l} gain_j (De & Smith 2020, arXiv 2002.10444, §2;
    docs/derivations.md §10). ``q0`` is the input's second moment per entry.
    """
    depth = check_int("depth", depth, minimum=1)
    act = get_activation(activation)
    q0 = check_real("q0", q0, low=0.0, low_inclusive=False)
    sigma_w2 = check_real("sigma_w2", sigma_w2, low=0.0, low_inclusive=False)
    sigma_b2 = check_real("sigma_b2", sigma_b2, low=0.0)
    stream = q0 + np.arange(depth + 1, dtype=np.float64)
    preact = sigma_w2 * stream[:-1] + sigma_b2
    var = np.array([_branch_variance(act, float(q)) for q in preact])
    if not np.all(var > 0.0):
        bad = float(preact[np.argmin(var)])
        raise ValueError(
            f"activation {act.name!r} has Var φ(h) = 0 at pre-activation variance {bad:g}: BN would divide by 0"
        )
    mu1 = np.array([_derivative_moment(act, float(q), 1.0) for q in preact])
    alphas = 1.0 / np.sqrt(var)
    gain = alphas**2 * sigma_w2 * mu1
    return BNResidualMeanField(act, sigma_w2, sigma_b2, stream, preact, var, alphas, mu1, gain, np.cumsum(gain))


def bn_residual_alphas(
    depth: int,
    activation: str | Activation = "relu",
    *,
    q0: float = 1.0,
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
) -> np.ndarray:
    """Per-block effective residual scales α_l = 1/s_l of a BN-ResNet (s_l the branch's pre-BN batch std).

    With them, block l's per-example Jacobian is I + α_l D_l W_l (W_l of variance σ_w²/N), the factor of
    ``jacobian_spectrum(..., residual=α)``; use the same ``sigma_w2`` there (the recipe and its scope —
    exact for homogeneous φ without bias — are in the module docstring). Linear: α_l = 1/√(σ_w² q_{l−1} +
    σ_b²); ReLU: α_l = 1/√(σ_w² q_{l−1}(1/2 − 1/(2π))), q_{l−1} = q_0 + l − 1 (De & Smith 2020, arXiv
    2002.10444).
    """
    return bn_residual_mean_field(depth, activation, q0=q0, sigma_w2=sigma_w2, sigma_b2=sigma_b2).alphas


def bn_residual_depth_parameter(
    depth: int,
    activation: str | Activation = "relu",
    *,
    q0: float = 1.0,
    sigma_w2: float = 1.0,
    sigma_b2: float = 0.0,
) -> float:
    """τ_L = Σ_l α_l² σ_w² μ₁,l for a BN-ResNet: ~ c_φ log L, not ∝ L (De & Smith 2020, arXiv 2002.10444).

    For linear φ and relu without bias exactly c_φ (ψ(q_0 + L) − ψ(q_0)) (ψ digamma; c_linear = 1,
    c_relu = π/(π − 1)); otherwise the sum of the per-block gains of :func:`bn_residual_mean_field`. It is the
    Tarnowski et al. (2019, arXiv 1809.08848) parameter Σ α_l² σ_w² μ₁ of the product Π(I + α_l D_l W_l),
    whose mean squared singular value is Π(1 + gain_l) (≈ e^τ when every gain is small).
    """
    mf = bn_residual_mean_field(depth, activation, q0=q0, sigma_w2=sigma_w2, sigma_b2=sigma_b2)
    act = mf.activation
    if act.name in _HOMOGENEOUS_C and mf.sigma_b2 == 0.0:
        q0 = float(mf.stream_q[0])
        return float(_HOMOGENEOUS_C[act.name] * (special.digamma(q0 + mf.stream_q.size - 1) - special.digamma(q0)))
    return float(mf.tau[-1])
