"""Jacobian spectra of convolutional networks at initialization (docs/derivations.md §9).

Network: L layers ``h_l = K_l ⋆ x_{l−1} + b_l``, ``x_l = φ(h_l)``, with c channels, stride 1, odd kernel size
k in each of d spatial dimensions, "same" padding, on images of n positions. The per-example Jacobian
(input → output over all positions and channels, an (nc)×(nc) matrix) is J = D_L W_L ⋯ D_1 W_1 with W_l the
layer's (nc)×(nc) matrix and D_l = diag φ'(h_l) over positions × channels.

**Circular padding is block-circulant** (§9.1): the unitary DFT over positions block-diagonalises W_l into one
c×c block per spatial frequency f, ``K̂_l(f) = Σ_τ W_{l,τ} e^{i f·τ}`` (torch's cross-correlation; τ the tap
offsets). So a *linear* conv net's squared singular values are the union over the n frequencies of those of
``K̂_L(f) ⋯ K̂_1(f)`` (:func:`conv_fourier_blocks`; exact, checked to 1e-10 in the tests).

**Gaussian kernels** (entries of variance σ_w²/(c k^d), i.e. σ_w² = fan_in × variance as in torch): each
K̂(f) has independent entries that are complex Gaussian with ``E|K̂_ij|² = σ_w²/c`` whatever k, and pseudo-
variance ``E K̂_ij² = p(f) σ_w²/c``, ``p(f) = Π_dims (1/k) Σ_{t=−r}^{r} e^{2 i f t}`` (real; p = 1 at the
self-conjugate frequencies 2f ≡ 0, where K̂ is real Ginibre); blocks of different layers are independent.
Exact at finite c (§9.2, Wick's theorem): ``m1 = tr JJᵀ/(nc) = σ_w^{2L}`` and ``m2 = tr (JJᵀ)²/(nc)`` from a
3×3 linear recursion per frequency (:func:`conv_linear_moments`); real Ginibre products give
``m2 = σ_w^{4L}(2 + 1/c)`` at L = 1, complex ones ``2σ_w^4``; at c → ∞ every frequency's product is a
product of L free circular elements, so the law is Fuss–Catalan (m2 = (L + 1)σ_w^{4L}) **for any kernel size**;
finite c adds O(L/c) relative corrections to the variance.

**Delta-orthogonal kernels** (Xiao et al. 2018, arXiv 1806.05393, Algorithm 2): K̂_l(f) = g·H_l for every f,
so J = I_n ⊗ (g^L H_L ⋯ H_1) for a linear net (exact orthogonal law; padding does not matter, only the
centre tap is nonzero), and a nonlinear net is n copies (one per position) of a fully connected
orthogonal net with the same weights: the law is the fully connected orthogonal one.

**Nonlinear Gaussian conv nets (mean field)**: Xiao et al. 2018 §§3–4 show that in the c → ∞ limit the
pre-activations are Gaussian with the same variance q_l at every position, the length map is the fully
connected one (circular padding: every position sees k^d taps of variance σ_w²/(c k^d)), and the spectrum of
JJᵀ is again a free product of the weight and D² laws. The assumption used here: as c → ∞ at fixed n, W_l is
asymptotically free from the D's (the M_n-valued covariance of the kernel maps multiples of the identity to
multiples of the identity, and D_l has the same law at every position, so every conditional expectation
stays scalar). Under it, the law of JJᵀ equals the fully connected :func:`~rmt_init.theory.jacobian_spectrum`
with the same activation, σ_w², σ_b² (Gaussian kernels → Gaussian weights, delta-orthogonal → orthogonal).

What c and k change: c only through finite-c corrections (O(L/c) in the variance; the exact linear m2 of
:func:`conv_linear_moments`); k nothing at c → ∞ with circular padding (the per-tap variance σ_w²/(c k^d)
adjusts), at finite c only through p(f) in the pseudo-variance (a correction of O(1/c)). Zero padding breaks
the circulant structure at the boundary: a fraction ≈ d(k − 1)/n_side of the positions sees fewer taps, an
O(k/n) boundary correction that is not included (delta-orthogonal kernels are exempt: only the centre tap).
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import Any, NamedTuple

import numpy as np

from .._validate import check_choice, check_int, check_real
from .activations import Activation, get_activation
from .jacobian import JacobianLaw, jacobian_spectrum

__all__ = [
    "ConvJacobianLaw",
    "ConvMoments",
    "conv_jacobian_spectrum",
    "conv_fourier_blocks",
    "conv_linear_moments",
    "conv_position_spread",
    "CONV_WEIGHTS",
]

#: conv kernel ensembles with a law here: i.i.d. Gaussian (or uniform: the same limit) entries, and
#: delta-orthogonal (Xiao et al. 2018). torch's ``orthogonal_`` on a conv weight (orthonormal rows of the
#: c × c k^d matrix) gives Fourier blocks that are compressions of a Haar isometry (a Jacobi law), not covered.
CONV_WEIGHTS: tuple[str, ...] = ("gaussian", "uniform", "delta_orthogonal")
_PADDINGS = ("circular", "zeros")
_PADDING_ALIASES = {"zero": "zeros", "periodic": "circular"}


class ConvJacobianLaw(JacobianLaw):
    """The c → ∞ law of a conv net's per-example JJᵀ: a :class:`~rmt_init.theory.jacobian.JacobianLaw` (the
    fully connected law it equals, docs/derivations.md §9.4) plus the conv configuration:
    ``kernel_size``, ``channels`` (None: c → ∞ only), ``padding``, ``conv_weights``
    (``"gaussian"``/``"uniform"``/``"delta_orthogonal"``) and ``exact`` (True when the law is exact rather
    than mean-field: linear nets, any kernel, circular padding or delta-orthogonal kernels)."""

    kernel_size: int
    channels: int | None
    padding: str
    conv_weights: str
    exact: bool

    def summary(self) -> dict[str, Any]:
        """:meth:`JacobianLaw.summary` plus the conv configuration."""
        out = super().summary()
        out.update(
            {
                "weights": self.conv_weights,
                "kernel_size": self.kernel_size,
                "channels": self.channels,
                "padding": self.padding,
                "exact": self.exact,
            }
        )
        return out


def conv_jacobian_spectrum(
    depth: int,
    activation: str | Activation = "linear",
    *,
    kernel_size: int = 3,
    channels: int | None = None,
    weights: str = "gaussian",
    sigma_w2: float | Sequence[float] | None = None,
    sigma_b2: float = 0.0,
    padding: str = "circular",
) -> ConvJacobianLaw:
    """Law of the squared singular values of a conv net's per-example Jacobian as the channel count c → ∞.

    Args:
        depth: number of conv layers L ≥ 1.
        activation: a ``torch.nn.functional`` name or an :class:`~rmt_init.theory.activations.Activation`.
        kernel_size: odd k (same in every spatial dimension); does not change the c → ∞ law.
        channels: the channel count c, stored for reference (the law is the c → ∞ one; for the exact
            finite-c moments of linear Gaussian nets use :func:`conv_linear_moments`).
        weights: ``"gaussian"`` (i.i.d. entries of variance σ_w²/(c k^d); ``"uniform"`` has the same limit)
            or ``"delta_orthogonal"`` (σ_w = gain, Xiao et al. 2018 Algorithm 2).
        sigma_w2: fan_in × entry variance (delta-orthogonal: gain²), one number or one per layer; default
            the critical value for the activation and σ_b² (as :func:`~rmt_init.theory.jacobian_spectrum`).
        sigma_b2: bias variance.
        padding: ``"circular"`` or ``"zeros"`` (zero padding: the circular law, boundary effects of relative
            size O(k/n) not included, except for delta-orthogonal kernels, which are unaffected).

    Returns the fully connected law ``jacobian_spectrum(L, activation, weights=…, sigma_w2, sigma_b2)``
    (Gaussian kernels → ``"gaussian"``, delta-orthogonal → ``"orthogonal"``) as a :class:`ConvJacobianLaw`.
    Exact (not mean-field) for linear nets with circular padding (Gaussian: Fuss–Catalan, the c → ∞ limit of
    each Fourier block's Ginibre product; delta-orthogonal: δ at σ_w^{2L}) and, at any c, for linear
    delta-orthogonal nets; mean-field (Xiao et al. 2018, arXiv 1806.05393, §§3–4; docs/derivations.md
    §9.4) otherwise.
    """
    depth = check_int("depth", depth, minimum=1)
    act = get_activation(activation)
    k = check_int("kernel_size", kernel_size, minimum=1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd (a 'same' convolution with a centre tap); got {kernel_size!r}")
    c = None if channels is None else check_int("channels", channels, minimum=1)
    if isinstance(weights, str) and weights.strip().lower() == "orthogonal":
        raise ValueError(
            "weights='orthogonal' (torch.nn.init.orthogonal_ on a conv weight) has Fourier blocks that are "
            "compressions of a Haar isometry, not covered; valid choices are " + ", ".join(map(repr, CONV_WEIGHTS))
        )
    ens = check_choice("weights", weights, CONV_WEIGHTS)
    pad = check_choice("padding", padding, _PADDINGS, _PADDING_ALIASES)
    fc = jacobian_spectrum(
        depth,
        act,
        weights="orthogonal" if ens == "delta_orthogonal" else "gaussian",
        sigma_w2=sigma_w2,
        sigma_b2=sigma_b2,
    )
    law = ConvJacobianLaw(fc.terms, fc.atoms, "")
    law.__dict__.update(fc.__dict__)
    law.description = (
        f"per-example Jacobian JJᵀ of a depth-{depth} {act.name} conv net, {ens} {k}-tap kernels, "
        f"{pad} padding, c → ∞ (= the fully connected law: {fc.description})"
    )
    law.kernel_size = k
    law.channels = c
    law.padding = pad
    law.conv_weights = ens
    law.exact = act.name == "linear" and (ens == "delta_orthogonal" or pad == "circular")
    return law


# ------------------------------------------------------------------------------------------- Fourier blocks
def _image_shape(image_size: int | Sequence[int], dims: int | None = None) -> tuple[int, ...]:
    if isinstance(image_size, (int, np.integer)) and not isinstance(image_size, bool):
        side = check_int("image_size", image_size, minimum=1)
        return (side,) * (2 if dims is None else dims)
    if isinstance(image_size, (str, bytes)) or not isinstance(image_size, Sequence) or not 1 <= len(image_size) <= 3:
        raise ValueError(f"image_size must be a positive int or 1-3 positive ints; got {image_size!r}")
    shape = tuple(check_int(f"image_size[{i}]", s, minimum=1) for i, s in enumerate(image_size))
    if dims is not None and len(shape) != dims:
        raise ValueError(f"image_size {shape} has {len(shape)} dimensions; the kernel has {dims}")
    return shape


def _frequencies(shape: tuple[int, ...]) -> list[np.ndarray]:
    """Angular frequencies 2π m/n_i of each spatial dimension, as broadcastable grids (indexing 'ij')."""
    return list(np.meshgrid(*[2.0 * np.pi * np.arange(n) / n for n in shape], indexing="ij"))


def conv_fourier_blocks(weight: Any, image_size: int | Sequence[int]) -> np.ndarray:
    """The c_out × c_in Fourier blocks of a circular, stride-1, "same" conv layer (torch cross-correlation).

    ``weight``: array of shape ``(c_out, c_in, k_1, …, k_d)`` (odd k_i; e.g. ``conv.weight.detach().numpy()``);
    ``image_size``: the d spatial sizes (an int: the same in every dimension). Returns a complex array of shape
    ``(*image_size, c_out, c_in)``: at frequency f = 2π m/n, ``K̂(f) = Σ_τ W[:, :, τ + r] e^{i f·τ}``
    (τ ∈ {−r, …, r}^d, r = k//2). With the unitary DFT over positions, ``ŷ(f) = K̂(f) x̂(f)``, so the layer's
    (n c_out) × (n c_in) matrix is unitarily equivalent to ``⊕_f K̂(f)`` (docs/derivations.md §9.1).
    """
    w = np.asarray(weight)
    if w.ndim not in (3, 4, 5) or not np.issubdtype(w.dtype, np.number):
        raise ValueError(f"weight must be a numeric conv weight (c_out, c_in, *kernel); got shape {w.shape}")
    w = w.astype(np.complex128)
    if not np.all(np.isfinite(w)):
        raise ValueError("weight has NaN or infinite entries")
    kernel = w.shape[2:]
    if any(k % 2 == 0 for k in kernel):
        raise ValueError(f"kernel sizes must be odd; got {kernel}")
    shape = _image_shape(image_size, len(kernel))
    grids = _frequencies(shape)
    out = np.zeros((*shape, *w.shape[:2]), dtype=np.complex128)
    for idx in np.ndindex(*kernel):
        tau = [i - k // 2 for i, k in zip(idx, kernel)]
        phase = np.exp(1j * sum(f * t for f, t in zip(grids, tau)))
        out += phase[..., None, None] * w[(slice(None), slice(None), *idx)]
    return out


# ----------------------------------------------------------------------------------- exact finite-c moments
class ConvMoments(NamedTuple):
    """Exact moments of the per-example JJᵀ of a linear circular Gaussian conv net at finite c.

    ``m1 = tr JJᵀ/(nc)``, ``m2 = tr(JJᵀ)²/(nc)`` (expectations), ``variance = m2 − m1²`` (the expected
    spread of one network's spectrum about its expected mean), ``m2_c_infinite`` the Fuss–Catalan value
    (L + 1)σ_w^{4L}, and ``pseudo`` the pseudo-variance ratio p(f) of every frequency (shape ``image_size``).
    """

    m1: float
    m2: float
    variance: float
    m2_c_infinite: float
    pseudo: np.ndarray


def _pseudo_ratio(shape: tuple[int, ...], k: int) -> np.ndarray:
    """p(f) = Π_i (1/k) Σ_{t=−r}^{r} e^{2 i f_i t} = Π_i (1/k)(1 + 2 Σ_{t=1}^{r} cos 2 f_i t) (real)."""
    r = k // 2
    p = np.ones(shape)
    for f in _frequencies(shape):
        p = p * (1.0 + 2.0 * sum(np.cos(2.0 * f * t) for t in range(1, r + 1))) / k
    return p


def _block_m2(depth: int, c: int, q: float) -> float:
    """(1/c) E tr (PPᴴ)² for P a product of L c×c matrices with i.i.d. entries, E|x|² = 1/c, |E x²|² = q/c².

    With A = PPᴴ and (a, b, e) = (E tr A², E (tr A)², E tr(A Ā)), one more factor X maps them by Wick's
    theorem (docs/derivations.md §9.2), v = 1/c:
        a' = v²(c² a + c b + q c e),  b' = v²(c a + c² b + q c e),  e' = v²(c a + c b + q c² e),
    from A = I: (a, b, e) = (c, c², c).
    """
    m = np.array([[c * c, c, q * c], [c, c * c, q * c], [c, c, q * c * c]], dtype=np.float64) / (c * c)
    vec = np.array([c, c * c, c], dtype=np.float64)
    for _ in range(depth):
        vec = m @ vec
    return float(vec[0] / c)


def conv_linear_moments(
    depth: int,
    channels: int,
    image_size: int | Sequence[int],
    *,
    kernel_size: int = 3,
    sigma_w2: float = 1.0,
) -> ConvMoments:
    """Exact m1, m2 of JJᵀ for a linear, circular, stride-1 conv net with Gaussian kernels at finite c.

    Kernels: i.i.d. N(0, σ_w²/(c k^d)) entries, c channels in and out, odd kernel size k in each of the d =
    len(image_size) dimensions (an int image_size means d = 2). Per frequency f the block product is a
    product of L independent c×c matrices with i.i.d. complex Gaussian entries, E|x|² = σ_w²/c and pseudo-
    variance E x² = p(f) σ_w²/c (p real, p = 1 at self-conjugate f: real Ginibre). Then (Wick; docs/
    derivations.md §9.2)

        m1 = σ_w^{2L} exactly,    m2 = σ_w^{4L} (1/n) Σ_f μ₂(L, c, p(f)²),

    μ₂ from the 3×3 recursion of :func:`_block_m2`; e.g. L = 1: μ₂ = 2 + p²/c (real: 2 + 1/c,
    complex circular: 2); c → ∞: μ₂ → L + 1 (Fuss–Catalan). Sizes smaller than k are allowed (the taps alias,
    the formula holds as is).
    """
    depth = check_int("depth", depth, minimum=1)
    c = check_int("channels", channels, minimum=1)
    k = check_int("kernel_size", kernel_size, minimum=1)
    if k % 2 == 0:
        raise ValueError(f"kernel_size must be odd; got {kernel_size!r}")
    s2 = check_real("sigma_w2", sigma_w2, low=0.0, low_inclusive=False)
    shape = _image_shape(image_size)
    p = _pseudo_ratio(shape, k)
    values, counts = np.unique(np.round(p * p, 15), return_counts=True)
    mu2 = math.fsum(cnt * _block_m2(depth, c, float(q)) for q, cnt in zip(values, counts)) / p.size
    m1 = s2**depth
    m2 = s2 ** (2 * depth) * mu2
    return ConvMoments(m1=m1, m2=m2, variance=m2 - m1 * m1, m2_c_infinite=(depth + 1) * s2 ** (2 * depth), pseudo=p)


def conv_position_spread(
    depth: int,
    sigma_w2: float,
    sigma_b2: float,
    input_variance: float,
    channels: int,
    activation: str | Activation = "tanh",
    nodes: int = 48,
) -> float:
    """Variance over positions of the per-position mean m1,x of a delta-orthogonal conv net at finite c.

    With delta-orthogonal kernels J = ⊕_x J_x (one fully connected orthogonal net per position, sharing the
    weights; Xiao et al. 2018, arXiv 1806.05393, §2.4), position x starts from q_1,x = σ_w² |x_x|²/c + σ_b² with
    |x_x|²/c ~ input_variance·χ²_c/c for i.i.d. N(0, input_variance) inputs: a relative spread √(2/c) that relaxes
    only slowly near criticality. Each J_x has mean m1,x = Π_l σ_w² E φ'(√q_l,x z)² along its own mean-field
    trajectory (Pennington et al. 2017, eq. 12), so the pooled spectrum's variance is the law's plus Var_x m1,x,
    computed here by the midpoint rule at ``nodes`` χ²_c quantiles (docs/derivations.md §9.3). Mean field per
    position; at c → ∞ it tends to 0.
    """
    from scipy.stats import chi2

    from .activations import derivative_moments
    from .meanfield import q_map

    depth = check_int("depth", depth, minimum=1)
    sigma_w2 = check_real("sigma_w2", sigma_w2, low=0.0, low_inclusive=False)
    sigma_b2 = check_real("sigma_b2", sigma_b2, low=0.0)
    input_variance = check_real("input_variance", input_variance, low=0.0, low_inclusive=False)
    channels = check_int("channels", channels, minimum=1)
    nodes = check_int("nodes", nodes, minimum=2)
    act = get_activation(activation)
    u = (np.arange(nodes) + 0.5) / nodes
    means = []
    for s in chi2.ppf(u, channels) / channels:
        q, m = sigma_w2 * input_variance * s + sigma_b2, 1.0
        for _ in range(depth):
            m *= sigma_w2 * derivative_moments(act, q, 1)
            q = q_map(q, act, sigma_w2, sigma_b2)
        means.append(m)
    return float(np.var(means))
