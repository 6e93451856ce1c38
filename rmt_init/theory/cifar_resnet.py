"""Mean field of the CIFAR ResNets' input Jacobian: ln m1 per block, with and without batch norm.

Network (He et al. 2016, CVPR, arXiv 1512.03385, §4.2; the engine's ``cifar_resnet``): stem
``x_0 = relu(BN(W_0 ⋆ input))``, then 3n post-activation basic blocks ``x_l = relu(x_{l−1}' + BN(W_2 ⋆
relu(BN(W_1 ⋆ x_{l−1}))))`` (3×3 convs with zero padding, stride 2 in the first conv of stages 2 and 3, shortcut
option A: ``x' = x[:, ::2, ::2]`` with as many zero channels appended), ``kaiming_normal_`` relu weights
(variance 2/fan_in), no biases, BN γ = 1, β = 0 (``BN`` = identity without batch norm), i.i.d. N(0, σ_in²)
inputs and a probe v with E vvᵀ = I. m1 = ‖J‖_F²/n_out = E_v ‖Jv‖²/n_out (J = ∂ layer3 / ∂ input), i.e. the
mean over output units of the tangent's second moment.

Mean field (channels c → ∞; docs/derivations.md §10.7). Per map position p the stream's one-unit law (an atom
at 0 and a density) and the tangent mass m_p(x) = E[t² ; x_l ∈ dx] are carried on a grid. With the channel
averages Q(p) = E x², M(p) = E x, T(p) = E t² and 1_in the in-map 3×3 taps (zero padding):

* conv (per tap weight variance 2/(9c)): pre-activation variance ``V(p) = (2/9) Σ_τ 1_in Q(p + τ)``, tangent
  ``G(p) = (2/9) Σ_τ 1_in T(p + τ)``; relu inner layer: E relu(h)² = V/2, E[relu'(h) g²] = G/2 (exact, by
  the sign symmetry of the conv weights).
* train-mode BN: the per-channel statistics over batch and positions subtract the conv of the channel mean
  (a per-channel offset common to all positions), so ``V(p) = (2/9) Σ_τ [1_in Var(p + τ) + (1_in M(p + τ) −
  A_τ)²]`` with A_τ the mean over output positions of 1_in M(p + τ) (per channel group), then V and G are
  divided by mean_p V (the channel variance). BN's derivative terms of order 1/(B · positions) are dropped.
* residual: x_l = relu(x' + F), F ~ N(0, V_2(p)) independent of the unit's stream (fresh W_2 row), and
  t_l = 1[x' + F > 0](t' + b), b ~ N(0, B_2(p)) the branch tangent: both f and m move by the same Gaussian
  kernel, ``m' = K_p (m + B_2 f)``. The identity path keeps the unit's masks correlated from block to block
  (a unit with large x stays active); ``masks="independent"`` replaces this by the gradient-independence
  product T' = P(active)(T + B_2) for comparison.
* stem: E[t_0² | h_0] = G_0 + (2/27)(h_0²/V_0 − 1) without BN (the probe's component along the input patch),
  and the analogue for the BN-normalised filter with BN.

What is neglected: the correlation of the branch tangent with the branch output after the stem (O(1/receptive
field)), BN's O(1/(B·positions)) derivative terms (a projection: they only lower m1), the channel-to-channel
spread of BN's batch variance κ = E_k[σ̄²/σ̂_k²] > 1 (raises each branch tangent by κ; not small on maps of 4×4
or less, where the per-channel border offsets do not concentrate — first-order effect Σ_l share_l ln κ_l with
``branch_share``), finite-width corrections O(blocks/c), and the stem's per-input fluctuations of V_0 (pass
``stem_variance`` to condition on an input). Discretisation: cell
midpoints, O(h²) (``grid`` cells per block over ``tail`` standard deviations).
"""
from __future__ import annotations

import math
from dataclasses import dataclass

import numpy as np
from scipy import ndimage, signal, special

from .._validate import check_choice, check_int, check_real

__all__ = ["CifarResNetMeanField", "cifar_resnet_mean_field", "MASKS"]

#: how the tangent's relu masks are treated: ``"joint"`` (the unit's own stream, derived) or ``"independent"``
#: (gradient independence, for comparison)
MASKS: tuple[str, ...] = ("joint", "independent")

_ONES3 = np.ones((3, 3))


@dataclass(frozen=True)
class CifarResNetMeanField:
    """Mean-field prediction for ``cifar_resnet(depth, batchnorm=…)``'s trunk (input → layer3).

    Arrays of length 3n + 1 (stem output, then each block's output): ``ln_m1`` (ln of the mean over output
    units of E t², = ln ‖J‖_F²/n_out of the map input → that point), ``ln_q`` (ln of the mean over units of
    E x², zero channels included), ``map_size`` (side of the map). ``ln_t_maps``, ``ln_q_maps``: the same per
    position (ln E t², ln E x² on each point's map, channel averages). ``branch_share`` (length 3n): the
    share of each block's output E t² injected by its branch, E[1[active] b²]/E t² (the first-order
    sensitivity of ln m1 to a factor on that branch's tangent variance, e.g. BN's neglected channel-to-channel
    spread of 1/σ̂²). ``lost_mass``: the largest probability per
    block that left the grid (discretisation check).
    """

    depth: int
    batchnorm: bool
    image_size: int
    masks: str
    ln_m1: np.ndarray
    ln_q: np.ndarray
    map_size: np.ndarray
    lost_mass: float
    ln_t_maps: tuple[np.ndarray, ...]
    ln_q_maps: tuple[np.ndarray, ...]
    branch_share: np.ndarray

    @property
    def ln_t_map(self) -> np.ndarray:
        """ln E t² per position of layer3's output map."""
        return self.ln_t_maps[-1]

    @property
    def blocks(self) -> int:
        """Number of residual blocks 3n."""
        return len(self.ln_m1) - 1

    @property
    def ln_m1_final(self) -> float:
        """ln m1 at the output of ``layer3``."""
        return float(self.ln_m1[-1])


def _tapsum(a: np.ndarray, stride: int = 1) -> np.ndarray:
    """Σ over in-map 3×3 taps (zero padding 1) of a map (..., S, S), output sampled at the stride."""
    k = np.zeros((1,) * (a.ndim - 2) + (3, 3))
    k[..., :, :] = _ONES3
    out = ndimage.correlate(a, k, mode="constant", cval=0.0)
    return out[..., ::stride, ::stride]


def _centred_offset(mg: np.ndarray, stride: int) -> np.ndarray:
    """Σ_τ (1_in M(p + τ) − A_τ)² per output position for one channel group's mean map ``mg`` (S, S)."""
    s = mg.shape[-1]
    pad = np.pad(mg, 1)
    out_s = (s - 1) // stride + 1
    total = np.zeros((out_s, out_s))
    for di in range(3):
        for dj in range(3):
            tap = pad[di : di + s : stride, dj : dj + s : stride][:out_s, :out_s]
            total += (tap - tap.mean()) ** 2
    return total


class _Law:
    """Per channel group g and position p: masses ``w[g, p, j]`` on cells [(j)h, (j+1)h) (midpoints), the atom
    at 0 ``a[g, p]``, and the tangent masses ``m[g, p, j]`` (t = 0 on the atom). Group weights ``gw``."""

    def __init__(self, w: np.ndarray, a: np.ndarray, m: np.ndarray, h: float, gw: np.ndarray) -> None:
        self.w, self.a, self.m, self.h, self.gw = w, a, m, h, gw

    @property
    def x(self) -> np.ndarray:
        return (np.arange(self.w.shape[-1]) + 0.5) * self.h

    def moments(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Per group and position: E x² and E x (over the units of the group), E t²."""
        x = self.x
        return self.w @ (x * x), self.w @ x, self.m.sum(-1)


def _rebin(mass: np.ndarray, h_old: float, h_new: float, n: int) -> np.ndarray:
    """Re-bin cell masses (uniform within cells of width h_old) onto n cells of width h_new (mass conserving
    up to what lies beyond n·h_new): linear interpolation of the cumulative masses at the new edges."""
    n_old = mass.shape[-1]
    cdf = np.concatenate([np.zeros(mass.shape[:-1] + (1,)), np.cumsum(mass, axis=-1)], axis=-1)
    pos = np.minimum(np.arange(n + 1) * (h_new / h_old), float(n_old))  # new edges in old cell units
    lo = np.minimum(np.floor(pos).astype(np.int64), n_old - 1)
    frac = pos - lo
    at = cdf[..., lo] * (1.0 - frac) + cdf[..., lo + 1] * frac
    return np.diff(at, axis=-1)


def _transfer(
    law: _Law, var: np.ndarray, bvar: np.ndarray, n: int, tail: float, independent: bool
) -> tuple[float, np.ndarray]:
    """x ← relu(x + F), t ← 1[·](t + b) per position; F ~ N(0, var[p]), b ~ N(0, bvar[p]). In place; returns
    the largest mass lost beyond the grid and the tangent mass injected by the branch (E[1[·] b²], per group
    and position)."""
    q, mean, _ = law.moments()
    scale = math.sqrt(float(np.max(q + var[None])))
    h = tail * scale / n
    w = _rebin(law.w, law.h, h, n)
    m = _rebin(law.m, law.h, h, n)
    sig = np.sqrt(var)[None, :, None]  # (1, P, 1)
    d = np.arange(-(n - 1), n)
    kern = special.ndtr((d + 0.5) * h / sig) - special.ndtr((d - 0.5) * h / sig)  # (1, P, 2n−1)
    x = (np.arange(n) + 0.5) * h
    to_atom = special.ndtr(-x / sig)  # from cell k to the atom
    edges = np.arange(n + 1) * h / sig
    from_atom = np.diff(special.ndtr(edges), axis=-1)  # (1, P, n)
    b = bvar[None, :, None]
    g, p = w.shape[0], w.shape[1]
    kern_b = np.broadcast_to(kern, (g, p, 2 * n - 1))
    w_new = signal.fftconvolve(w, kern_b, mode="full", axes=-1)[..., n - 1 : 2 * n - 1]
    m_new = signal.fftconvolve(m + b * w, kern_b, mode="full", axes=-1)[..., n - 1 : 2 * n - 1]
    w_new += law.a[..., None] * from_atom
    m_new += (law.a[..., None] * b) * from_atom
    injected = bvar[None] * (1.0 - np.sum(w * to_atom, axis=-1) - 0.5 * law.a)
    a_new = np.sum(w * to_atom, axis=-1) + 0.5 * law.a
    w_new = np.maximum(w_new, 0.0)
    m_new = np.maximum(m_new, 0.0)
    total = w.sum(-1) + law.a
    lost = float(np.max(total - w_new.sum(-1) - a_new))
    if independent:
        # gradient independence: E[t'² | x'] = T + B_2 on the active units (each group's mass is 1)
        m_new = w_new * (law.m.sum(-1) + bvar[None])[..., None]
    law.w, law.a, law.m, law.h = w_new, a_new, m_new, h
    return lost, injected


def _stem(v0: np.ndarray, batchnorm: bool, n: int, tail: float, independent: bool) -> _Law:
    """x_0 = relu(h_0), h_0 ~ N(0, V_0(p)) (BN: V_0 / mean V_0), with E[t_0² | h_0] as in the module docstring."""
    s = v0.shape[0]
    counts = _tapsum(np.ones((s, s)))  # n_taps(p)
    g0 = (2.0 / 9.0) * counts  # probe's tangent variance per unit (3 channels × taps × 2/27)
    if batchnorm:
        sigma2 = float(v0.mean())
        var = v0 / sigma2
    else:
        sigma2 = 1.0
        var = v0
    var_f = var.reshape(-1)
    scale = math.sqrt(float(var_f.max()))
    h = tail * scale / n
    edges = np.arange(n + 1) * h
    x = (np.arange(n) + 0.5) * h
    sig = np.sqrt(var_f)[:, None]
    w = np.diff(special.ndtr(edges[None, :] / sig), axis=-1)  # P(h ∈ cell), h > 0 half
    # E[h² ; cell] / V for the in-cell second moment of the standard normal: use the midpoint value
    z2 = (x[None, :] / sig) ** 2
    if not batchnorm:
        cond = g0.reshape(-1)[:, None] + (2.0 / 27.0) * (z2 - 1.0)
    else:
        # the BN-normalised filter w/|w|√d̄: E[t_0² | u_1] = ((m − 1) + u_1² (27 − m)) / (26 d̄), m = 3 n_taps,
        # u_1² = z²/27 (E u_1² = 1/27), d̄ = σ_0² / 2 (unit-variance inputs: the mean in-map share)
        mm = 3.0 * counts.reshape(-1)[:, None]
        dbar = sigma2 / 2.0
        cond = ((mm - 1.0) + (z2 / 27.0) * (27.0 - mm)) / (26.0 * dbar)
    if independent:
        cond = np.broadcast_to((g0.reshape(-1) / sigma2)[:, None], w.shape)
    m = w * cond
    return _Law(w[None], np.full((1, var_f.size), 0.5), m[None], h, np.ones(1))


def cifar_resnet_mean_field(
    depth: int,
    *,
    batchnorm: bool,
    image_size: int = 32,
    input_variance: float = 1.0,
    stem_variance: np.ndarray | None = None,
    masks: str = "joint",
    grid: int = 256,
    tail: float = 12.0,
) -> CifarResNetMeanField:
    """Mean-field ln m1 (and ln E x²) per block of ``cifar_resnet(depth, batchnorm=…)`` at channels → ∞.

    Formulas: module docstring and docs/derivations.md §10.7 (conv mean field per position as in Xiao et al.
    2018, arXiv 1806.05393; residual stream as a per-unit Markov chain x_l = relu(x_{l−1} + F_l); BN in the
    branches as in De & Smith 2020, arXiv 2002.10444).

    Args:
        depth: 6n + 2 (8, 14, 20, 32, 44, 56, 110, …).
        batchnorm: train-mode BN after every conv (the engine's default) or none.
        image_size: S of the 3×S×S inputs, a multiple of 4 (≥ 4).
        input_variance: σ_in² of the i.i.d. input entries (m1 does not depend on it without BN).
        stem_variance: optional (S, S) map of the stem pre-activation variance V_0(p) = (2/27) Σ_window x² of
            one input (conditions on that input); default its expectation (2/9)·σ_in²·n_taps(p).
        masks: ``"joint"`` (derived) or ``"independent"`` (gradient-independence comparison).
        grid: cells of the per-position law (≥ 16); error O(grid⁻²).
        tail: grid extent in units of the largest standard deviation (≥ 4).
    """
    d = check_int("depth", depth, minimum=8)
    if (d - 2) % 6 != 0:
        raise ValueError(f"depth must be 6n + 2 with n >= 1 (8, 14, 20, 32, 44, 56, 110, …); got {depth!r}")
    if not isinstance(batchnorm, (bool, np.bool_)):
        raise ValueError(f"batchnorm must be True or False; got {batchnorm!r}")
    batchnorm = bool(batchnorm)
    s = check_int("image_size", image_size, minimum=4)
    if s % 4 != 0:
        raise ValueError(f"image_size must be a multiple of 4 (two stride-2 stages); got {image_size!r}")
    sin2 = check_real("input_variance", input_variance, low=0.0, low_inclusive=False)
    masks = check_choice("masks", masks, MASKS)
    n_grid = check_int("grid", grid, minimum=16)
    tail = check_real("tail", tail, low=4.0)
    counts = _tapsum(np.ones((s, s)))
    if stem_variance is None:
        v0 = (2.0 / 9.0) * sin2 * counts
    else:
        v0 = np.asarray(stem_variance, dtype=np.float64)
        if v0.shape != (s, s) or not np.all(np.isfinite(v0)) or np.any(v0 <= 0):
            raise ValueError(f"stem_variance must be a finite positive ({s}, {s}) array; got shape {v0.shape}")
    independent = masks == "independent"
    n = (d - 2) // 6
    law = _stem(v0, batchnorm, n_grid, tail, independent)
    size = s
    lnx = 0.0  # x is stored in units of exp(lnx)
    lnt = 0.0
    ln_m1, ln_q, sizes = [], [], []
    lost = 0.0

    shares: list[float] = []
    t_maps: list[np.ndarray] = []
    q_maps: list[np.ndarray] = []

    def record() -> None:
        q, _, t = law.moments()
        qa, ta = law.gw @ q, law.gw @ t
        ln_q.append(math.log(float(qa.mean())) + 2 * lnx)
        ln_m1.append(math.log(float(ta.mean())) + lnt)
        with np.errstate(divide="ignore"):
            q_maps.append(np.log(qa).reshape(size, size) + 2 * lnx)
            t_maps.append(np.log(ta).reshape(size, size) + lnt)
        sizes.append(size)

    law_shape = (1, s * s)
    law.w = law.w.reshape(law_shape + (n_grid,))
    record()
    for stage in range(3):
        for i in range(n):
            stride = 2 if (stage > 0 and i == 0) else 1
            q, mean, t = law.moments()  # (G, P)
            gq = q.reshape(-1, size, size)
            gm = mean.reshape(-1, size, size)
            gt = t.reshape(-1, size, size)
            # conv 1 (stride), channel averages over the groups
            qa = np.tensordot(law.gw, gq, axes=1)
            ta = np.tensordot(law.gw, gt, axes=1)
            out = size // stride
            if batchnorm:
                var_in = np.tensordot(law.gw, gq - gm**2, axes=1)
                v1 = _tapsum(var_in, stride)
                for gi in range(gm.shape[0]):
                    v1 = v1 + law.gw[gi] * _centred_offset(gm[gi], stride)
                v1 *= 2.0 / 9.0
                sig1 = float(v1.mean())
                v1 = v1 / sig1
                g1 = (2.0 / 9.0) * _tapsum(ta, stride) / sig1
                ea2 = v1 / 2.0
                ea = np.sqrt(v1 / (2.0 * math.pi))
                v2 = (2.0 / 9.0) * (_tapsum(ea2 - ea**2) + _centred_offset(ea, 1))
                sig2 = float(v2.mean())
                v2 = v2 / sig2
                b2 = (2.0 / 9.0) * _tapsum(g1 / 2.0) / sig2
                # to the stored units
                v2 = v2 * math.exp(-2 * lnx)
                b2 = b2 * math.exp(-2 * lnx)  # t² stored in units e^{lnt}; 1/σ_1² carries e^{−2 lnx}
            else:
                v1 = (2.0 / 9.0) * _tapsum(qa, stride)
                g1 = (2.0 / 9.0) * _tapsum(ta, stride)
                v2 = (2.0 / 9.0) * _tapsum(v1 / 2.0)
                b2 = (2.0 / 9.0) * _tapsum(g1 / 2.0)
            if stride == 2:
                # option A: subsample the stream, append as many zero channels (a new group: atom at 0, t = 0)
                n_g = law.w.shape[0]
                w = law.w.reshape(n_g, size, size, n_grid)[:, ::2, ::2].reshape(n_g, out * out, n_grid)
                m = law.m.reshape(n_g, size, size, n_grid)[:, ::2, ::2].reshape(n_g, out * out, n_grid)
                a = law.a.reshape(n_g, size, size)[:, ::2, ::2].reshape(n_g, out * out)
                law = _Law(
                    np.concatenate([w, np.zeros((1, out * out, n_grid))]),
                    np.concatenate([a, np.ones((1, out * out))]),
                    np.concatenate([m, np.zeros((1, out * out, n_grid))]),
                    law.h,
                    np.concatenate([law.gw / 2.0, [0.5]]),
                )
                size = out
            lost_l, injected = _transfer(law, v2.reshape(-1), b2.reshape(-1), n_grid, tail, independent)
            lost = max(lost, lost_l)
            shares.append(float(law.gw @ injected.mean(-1)) / float(law.gw @ law.m.sum(-1).mean(-1)))
            # renormalise the stored units (x by its rms, t² by its mean)
            q, _, t = law.moments()
            qm = float(law.gw @ q.mean(-1))
            tm = float(law.gw @ t.mean(-1))
            if qm > 0:
                law.h /= math.sqrt(qm)
                lnx += 0.5 * math.log(qm)
            if tm > 0:
                law.m = law.m / tm
                lnt += math.log(tm)
            record()
    return CifarResNetMeanField(
        depth=d, batchnorm=batchnorm, image_size=s, masks=masks, ln_m1=np.asarray(ln_m1),
        ln_q=np.asarray(ln_q), map_size=np.asarray(sizes), lost_mass=lost,
        ln_t_maps=tuple(t_maps), ln_q_maps=tuple(q_maps), branch_share=np.asarray(shares),
    )
