"""Batch normalisation at initialisation: gradient growth and structural zeros.

Network: ``x_l = φ(BN(W_l x_{l−1}))`` with BN in train mode over a batch of B examples (per unit: subtract the
batch mean, divide by the biased batch standard deviation; γ = 1, β = 0), wide layers, i.i.d. centred weights.
Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz (ICLR 2019, arXiv 1902.08129) show that the squared norm of
the gradient grows by a factor ``λ > 1`` per layer at initialisation whatever σ_w, σ_b and φ — BN itself causes
the explosion. Since BN is invariant to the scale of its input and removes any bias, ``λ`` depends only on φ
and B (not on σ_w², σ_b²).

Derivation used here (ours, under the gradient-independence assumption of mean-field backpropagation, as in
Yang et al. and Schoenholz et al. 2017 §5): at the batch-permutation-symmetric fixed point each unit's
normalised batch vector ``n`` is uniform on the sphere ``{Σ_b n_b = 0, Σ_b n_b² = B}``; the backward map of
one layer acts on the B×B gradient covariance ``G`` as

    ``G ↦ (B / (α (B − 3))) E_n[M D G D M]``,  ``M = P − n̂ n̂ᵀ``,  ``D = diag φ'(n)``,  ``n̂ = n/√B``,

with ``P = I − 11ᵀ/B`` and ``α = E[φ(n₁)²] − E[φ(n₁)φ(n₂)]`` (the forward Gram matrix is ``α P`` on the
centred subspace); the factor ``1/(B − 3) = E[1/χ²_{B−1}]`` comes from the random scale of the centred
pre-activations. ``G = P`` is the permutation-invariant (Perron) eigenvector, so

    ``λ(B) = B E[tr(D P D M)] / (α (B − 3)(B − 1))``.

It reproduces ``(B − 2)/(B − 3)`` exactly for linear φ and ``E[φ'(z)²]/Var φ(z)`` as ``B → ∞``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np

from rmt_init._validate import check_int
from rmt_init.theory import _quadrature
from rmt_init.theory.activations import (
    Activation,
    _derivative_moment,
    gaussian_expectation,
    get_activation,
)
from rmt_init.theory.meanfield import _check_variances, _operating_point

__all__ = [
    "bn_gradient_growth",
    "bn_structural_zeros",
    "BatchNormComparison",
    "bn_vs_no_bn",
]


#: largest finite batch size: the finite-B formula cancels in its O(1/B) terms (relu: relative error
#: 1e−8 at B = 1e9, the result 0.44 instead of 1.467 at B = 1e17); at B = 1e6 the finite-B correction
#: to the large-batch limit (batch_size=None) is itself only ≈ 1.6/B
MAX_BATCH_SIZE = 10**6


def _check_batch(batch_size: object) -> int:
    try:
        batch = check_int("batch_size", batch_size, minimum=4)
    except ValueError as err:
        raise ValueError(
            f"{err}; the expected gradient growth of a batch-normalised layer is infinite for B <= 3, "
            "because it involves E[1/chi^2_(B-1)] = 1/(B-3); use batch_size=None for the large-batch limit"
        ) from None
    if batch > MAX_BATCH_SIZE:
        raise ValueError(
            f"batch_size must be an integer in [4, {MAX_BATCH_SIZE}] or None (the large-batch limit, within "
            f"~1.6/B of the finite-B value); got {batch_size!r}"
        )
    return batch


def _large_batch_growth(act: Activation) -> float:
    """``E[φ'(z)²] / Var φ(z)``, ``z ~ N(0, 1)``."""
    if act.name == "linear":
        return 1.0
    if act.name == "relu":
        return math.pi / (math.pi - 1.0)
    k = act.kinks
    m2 = gaussian_expectation(lambda x: act.dphi(x) ** 2, 1.0, k)
    mean = gaussian_expectation(act.phi, 1.0, k)
    second = gaussian_expectation(lambda x: act.phi(x) ** 2, 1.0, k)
    return m2 / (second - mean * mean)


def _sphere_moments(act: Activation, batch: int) -> dict[str, float]:
    """One- and two-coordinate expectations for ``n`` uniform on ``{Σn = 0, ‖n‖² = B}``.

    ``n₁ = √(B−1) cos θ`` with density ``∝ sin^{B−3} θ``; given ``n₁``, ``n₂ = −n₁/(B−1) + √B sin θ ·
    √((B−2)/(B−1)) cos θ'`` with density ``∝ sin^{B−4} θ'`` (the remaining coordinates are uniform on the
    lower-dimensional sphere). Both integrals use the composite rule of ``_quadrature.sine_power_rule``,
    split at the kinks of φ and at the outer angles where a kink enters the inner support.
    """
    b = float(batch)
    kinks = act.kinks
    r1 = math.sqrt(b - 1.0)
    # outer break points: kinks of φ(n1) and where the inner support [mu - s, mu + s] reaches a kink
    brk, entries = [], []
    for k in kinks:
        if abs(k) < r1:
            brk.append(math.acos(k / r1))
        disc = k * k / (b - 1.0) ** 2 - k * k + b * (b - 2.0) / (b - 1.0)
        if disc > 0.0:
            for sgn in (-1.0, 1.0):
                n1 = -k / (b - 1.0) + sgn * math.sqrt(disc)
                if abs(n1) < r1:
                    entries.append(math.acos(n1 / r1))
    breaks = None
    if brk or entries:
        breaks = np.array([brk + entries])
        if entries:  # the inner expectation has a fractional-power singularity there: grade towards it
            graded = _quadrature.grading_points(np.array([entries]), 1e-12, limit=0.5)
            breaks = np.concatenate([breaks, graded], axis=1)
    theta, w = _quadrature.sine_power_rule(batch - 3, breaks)
    theta, w = theta[0], w[0]
    n1 = r1 * np.cos(theta)
    mu = -n1 / (b - 1.0)
    s = math.sqrt(b * (b - 2.0) / (b - 1.0)) * np.sin(theta)
    if kinks:
        t = (np.asarray(kinks)[None, :] - mu[:, None]) / np.where(s > 0, s, 1.0)[:, None]
        inner_breaks = np.arccos(np.clip(t, -1.0, 1.0))
    else:
        inner_breaks = None
    theta2, w2 = _quadrature.sine_power_rule(batch - 4, inner_breaks, n_rows=theta.size)
    n2 = mu[:, None] + s[:, None] * np.cos(theta2)

    d1, d2 = act.dphi(n1), act.dphi(n2)
    p1, p2 = act.phi(n1), act.phi(n2)
    cross = lambda f1, f2: float(np.dot(w, f1 * np.sum(w2 * f2, axis=1)))  # noqa: E731
    return {
        "d2": float(np.dot(w, d1 * d1)),
        "d2n2": float(np.dot(w, (d1 * n1) ** 2)),
        "phi2": float(np.dot(w, p1 * p1)),
        "d_d": cross(d1, d2),
        "dn_dn": cross(d1 * n1, d2 * n2),
        "phi_phi": cross(p1, p2),
    }


def _finite_batch_growth(act: Activation, batch: int) -> float:
    b = float(batch)
    m = _sphere_moments(act, batch)
    trace = (
        (b - 2.0) * m["d2"]
        + (m["d2"] + (b - 1.0) * m["d_d"]) / b
        - m["d2n2"]
        + (m["d2n2"] + (b - 1.0) * m["dn_dn"]) / b
    )
    alpha = m["phi2"] - m["phi_phi"]
    return b * trace / (alpha * (b - 3.0) * (b - 1.0))


def bn_gradient_growth(activation: str | Activation, batch_size: int | None = None) -> float:
    """Per-layer growth factor ``λ`` of the squared input-gradient norm of a wide BN network at init.

    Network ``Linear → BatchNorm (train mode, γ = 1, β = 0, biased batch variance) → φ`` repeated, width → ∞
    (Yang et al. 2019, "A Mean Field Theory of Batch Normalization", ICLR, arXiv 1902.08129).

    * ``batch_size=None`` — large-batch limit ``λ_∞ = E_z[φ'(z)²] / Var_z[φ(z)]``: relu ``π/(π − 1) =
      1.466942`` (docs/derivations.md T20), tanh ``1.177807`` (docs/derivations.md T22), linear 1. The Gaussian Poincaré inequality
      ``Var φ(z) ≤ E φ'(z)²`` gives ``λ_∞ ≥ 1`` with equality only for affine φ.
    * finite ``B`` (``≥ 4``; ``ValueError`` otherwise) — linear: exactly ``(B − 2)/(B − 3)`` (docs/derivations.md T21: B = 4 → 2,
      B = 8 → 1.2). Other φ: the heuristic prediction of the module docstring — infinite width, the BSB1
      fixed point (normalised batch vectors uniform on the centred sphere), and the gradient-independence
      assumption (backward weights independent of forward ones). It reproduces the linear formula exactly
      and the large-B limit; e.g. relu B = 16 → 1.5900, B = 32 → 1.5220, B = 128 → 1.4797. Our torch
      simulations (depth 12, train-mode BN) gave 1.588 ± 0.003 (N = 1024) and 1.587 ± 0.003 (N = 2048) at
      B = 16, 1.521 ± 0.002 (N = 1024) at B = 32, 1.478 ± 0.001 (N = 1024) at B = 128; at N = 512 the
      values are ≈0.5% higher (1.598, 1.523), a finite-width effect. Not a theorem: an approximation whose
      agreement is checked by simulation, not proved.

    ``σ_w²`` and ``σ_b²`` do not enter (BN is scale-invariant and removes biases).
    """
    act = get_activation(activation)
    if batch_size is None:
        return _large_batch_growth(act)
    batch = _check_batch(batch_size)
    if act.name == "linear":
        return (batch - 2.0) / (batch - 3.0)
    return _finite_batch_growth(act, batch)


def bn_structural_zeros(width: int, n_bn_layers: int) -> int:
    """Number of exactly-zero singular values that BN forces on the batch Jacobian of a width-N network.

    One train-mode BN layer, per unit, is invariant to shifting and to rescaling that unit's B
    pre-activations, so its batch Jacobian (size NB × NB) has rank ≤ N(B − 2): ``2N`` structural zeros.
    For the end-to-end batch Jacobian of a network with ``n_bn_layers ≥ 1`` BN layers the null spaces do
    not accumulate — the rank of a product is at most the smallest rank, and for generic weights the later
    layers add no null directions — so the count is ``2N`` whatever the depth (0 without BN). (Checked
    against exact torch Jacobians for 1–3 layers.) Activations with vanishing φ' (relu) add further,
    non-structural zeros. With PyTorch's ``eps`` (default 1e−5) in ``Var + eps`` only the N shift directions
    are exactly null; the N rescaling directions give singular values ≈ (eps/Var) relative to the bulk
    (~1e−6 after one layer, smaller after several) — choose the zero threshold accordingly.

    Example: ``bn_structural_zeros(512, 10) == 1024``.
    """
    width = check_int("width", width, minimum=1)
    n_bn_layers = check_int("n_bn_layers", n_bn_layers, minimum=0)
    return 2 * width if n_bn_layers > 0 else 0


@dataclass(frozen=True)
class BatchNormComparison:
    """Per-layer squared-gradient growth with and without BN for one ``(φ, σ_w², σ_b²)``.

    ``bn_growth`` — :func:`bn_gradient_growth` (independent of σ_w², σ_b²); ``no_bn_growth`` — ``χ₁`` of the
    plain network at its fixed point (:func:`rmt_init.theory.meanfield.chi1`). ``bn_depth_scale`` and
    ``no_bn_depth_scale`` are the numbers of layers over which the squared gradient changes by a factor e
    (``1/|ln λ|``; inf when ``λ = 1``).
    """

    activation: Activation
    sigma_w2: float
    sigma_b2: float
    batch_size: int | None
    bn_growth: float
    no_bn_growth: float

    @property
    def bn_depth_scale(self) -> float:
        return _e_fold(self.bn_growth)

    @property
    def no_bn_depth_scale(self) -> float:
        return _e_fold(self.no_bn_growth)


def _e_fold(growth: float) -> float:
    lg = abs(math.log(growth)) if growth > 0 else math.inf
    return math.inf if lg == 0.0 else 1.0 / lg


def bn_vs_no_bn(
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
    batch_size: int | None = None,
) -> BatchNormComparison:
    """Side-by-side gradient growth: BN network (:func:`bn_gradient_growth`) vs plain network (χ₁).

    At He initialisation of a relu net (σ_w² = 2, σ_b² = 0) the plain network is critical (χ₁ = 1) while the
    BN network explodes by π/(π − 1) ≈ 1.467 per layer (large B) — Yang et al. 2019, arXiv 1902.08129.
    Raises ``ValueError`` where χ₁ is undefined (``q* = ∞`` for a non-homogeneous φ).
    """
    act = get_activation(activation)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    batch = None if batch_size is None else _check_batch(batch_size)
    _, q, _ = _operating_point(act, sigma_w2, sigma_b2, 1.0, need_c=False)
    chi = sigma_w2 * _derivative_moment(act, q, 1.0)
    return BatchNormComparison(act, sigma_w2, sigma_b2, batch, bn_gradient_growth(act, batch), chi)
