"""Mean-field signal propagation in wide random fully-connected networks.

Setting (Poole et al. 2016, arXiv 1606.05340; Schoenholz et al. 2017, arXiv 1611.01232): weights
``W_ij ~ N(0, σ_w²/n_{l−1})``, biases ``b_i ~ N(0, σ_b²)``, ``h_l = W_l φ(h_{l−1}) + b_l``. In the infinite-width
limit every pre-activation is Gaussian, and two inputs are described by their common variance ``q`` and their
correlation ``c``:

* length map     ``q ↦ σ_w² E_z[φ(√q z)²] + σ_b²``, fixed point ``q*``;
* correlation map ``c ↦ (σ_w² E[φ(u₁)φ(u₂)] + σ_b²)/q_map(q)``, ``(u₁, u₂)`` with variances ``q`` and correlation c;
* ``χ₁ = σ_w² E_z[φ'(√q* z)²]`` — the slope of the c-map at ``c = 1`` and the per-layer growth of squared
  gradients (Schoenholz et al. §3, §5); ``χ₁ < 1`` ordered, ``= 1`` critical, ``> 1`` chaotic;
* depth scales ``ξ = −1/ln(slope)`` of the two maps at their fixed points.

PSG 2017 (Pennington, Schoenholz & Ganguli, arXiv 1711.04735) parametrise the critical line by ``q*``:
``σ_w² = 1/E[φ'(√q* z)²]``, ``σ_b² = q* − σ_w² E[φ(√q* z)²]`` (:func:`critical_point_from_q`).

Degenerate fixed points (documented behaviour):

* ``q* = ∞`` — the length map diverges (e.g. relu with ``σ_w² > 2``, or ``σ_w² = 2`` and ``σ_b² > 0``):
  :func:`q_star` returns ``math.inf``; functions that need ``q*`` (:func:`c_map` without ``q``, :func:`c_star`,
  :func:`depth_scales`, :func:`mean_field`) raise ``ValueError``. :func:`chi1` still answers for the
  positively homogeneous activations (linear, relu, leaky_relu), whose ``χ₁`` does not depend on ``q``.
* ``q* = 0`` — only when ``σ_b² = 0`` and ``φ(0) = 0`` (e.g. tanh with ``σ_w² ≤ 1``): quantities are the
  limits ``q → 0⁺``. For homogeneous activations the c-map does not depend on ``q`` and is used as is; for
  the others the c-map tends to the identity, so :func:`c_star` raises and :func:`mean_field` reports
  ``c_star=None`` and ``xi_c = inf``.
"""
from __future__ import annotations

import math
from dataclasses import dataclass
from typing import Literal, NamedTuple

import numpy as np
from scipy import optimize, special

from rmt_init._validate import check_int, check_real
from rmt_init.theory.activations import (
    Activation,
    _bivariate,
    _derivative_moment,
    _hardtanh_inside_outside,
    gaussian_expectation,
    get_activation,
)

__all__ = [
    "q_map",
    "q_star",
    "q_trajectory",
    "c_map",
    "c_star",
    "c_trajectory",
    "chi1",
    "DepthScales",
    "depth_scales",
    "critical_sigma_w2",
    "CriticalPoint",
    "critical_point_from_q",
    "MeanFieldState",
    "mean_field",
    "CRITICAL_TOL",
]

#: ``|χ₁ − 1| ≤ CRITICAL_TOL`` (or a map slope within this of 1) counts as critical: phase "critical", ξ = ∞.
CRITICAL_TOL = 1e-10
_Q_TINY = 1e-200  # the q → 0⁺ limit is evaluated here (exact to double precision for every activation)
_Q_HUGE = 1e15  # a length map still increasing beyond this is declared divergent (q* = ∞)
_SQRT2 = math.sqrt(2.0)
#: largest depth of q_trajectory / c_trajectory: a c-map step costs up to ~5 ms (bivariate quadrature),
#: so 10⁵ steps is minutes; deeper, use the fixed points and depth_scales
MAX_TRAJECTORY_DEPTH = 100_000


# ============================================================================ validation helpers


def _check_variances(sigma_w2: object, sigma_b2: object) -> tuple[float, float]:
    """σ_w², σ_b² finite and ≥ 0, not both 0.

    σ_w² = 0 with σ_b² > 0 is a valid (trivial) network: every layer outputs its bias, q* = σ_b², χ₁ = 0.
    σ_w² = σ_b² = 0 is refused: every pre-activation is identically 0, so the correlation c, c* and the
    depth scales are undefined (before, ``mean_field("tanh", 0, 0.0)`` returned q* = 0 and χ₁ = 0).
    """
    sw2 = check_real("sigma_w2", sigma_w2, low=0.0)
    sb2 = check_real("sigma_b2", sigma_b2, low=0.0)
    if sw2 == 0.0 and sb2 == 0.0:
        raise ValueError(
            "sigma_w2 and sigma_b2 are both 0: every pre-activation is identically 0 and the correlation is "
            "undefined; valid: sigma_w2 >= 0 and sigma_b2 >= 0, not both 0 (got sigma_w2=0.0, sigma_b2=0.0)"
        )
    return sw2, sb2


def _check_q(q: object, name: str = "q") -> float:
    return check_real(name, q, low=0.0, low_inclusive=False)


# ============================================================================ Gaussian moments of φ


def _phi_sq_moment(act: Activation, q: float) -> float:
    """``E_z[φ(√q z)²]`` (closed forms for linear, relu, leaky_relu, erf, hardtanh; else quadrature)."""
    n = act.name
    if n == "linear":
        return q
    if n == "relu":
        return 0.5 * q
    if n == "leaky_relu":
        return 0.5 * q * (1.0 + act.param("negative_slope") ** 2)
    if n == "erf":  # Williams 1997
        return (2.0 / math.pi) * math.asin(2.0 * q / (1.0 + 2.0 * q))
    if n == "hardtanh":
        a, b = act.param("min_val"), act.param("max_val")
        s = math.sqrt(q)
        al, be = a / s, b / s
        pdf = lambda t: math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)  # noqa: E731
        inside, _ = _hardtanh_inside_outside(act, q)
        # E[x²; a<x<b] = q[(Φ(β)−Φ(α)) + αφ(α) − βφ(β)];  plus a²P(x<a) + b²P(x>b)
        return (
            q * (inside + al * pdf(al) - be * pdf(be))
            + a * a * float(special.ndtr(al))
            + b * b * float(special.ndtr(-be))
        )
    return gaussian_expectation(lambda x: act.phi(x) ** 2, q, act.kinks)


def _q_map_slope(act: Activation, q: float, sigma_w2: float) -> float:
    """``d q_map/dq = σ_w² E[φ(x)φ'(x) x]/q`` (Stein's lemma; = ``χ₁ + σ_w² E[φ''φ]`` for smooth φ)."""
    n = act.name
    if act.is_homogeneous:
        return sigma_w2 * _phi_sq_moment(act, 1.0)
    if n == "erf":
        return sigma_w2 * (4.0 / math.pi) / ((1.0 + 2.0 * q) * math.sqrt(1.0 + 4.0 * q))
    if n == "hardtanh":  # E[x²; a < x < b]/q = Φ(β) − Φ(α) + αφ(α) − βφ(β)
        s = math.sqrt(q)
        al, be = act.param("min_val") / s, act.param("max_val") / s
        inside, _ = _hardtanh_inside_outside(act, q)
        pdf = lambda t: math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi)  # noqa: E731
        return sigma_w2 * (inside + al * pdf(al) - be * pdf(be))
    return sigma_w2 * gaussian_expectation(lambda x: act.phi(x) * act.dphi(x) * x, q, act.kinks) / q


def _cross_phi(act: Activation, q: float, c: float) -> float:
    """``E[φ(u₁)φ(u₂)]``, ``Var u = q``, ``corr = c`` (arc-cosine / Williams kernels where available)."""
    n = act.name
    if n == "linear":
        return q * c
    if n in ("relu", "leaky_relu"):
        a = 0.0 if n == "relu" else act.param("negative_slope")
        return q * ((1.0 + a * a) * _arccos_kernel(c) - (2.0 * a * _arccos_kernel(-c) if a else 0.0))
    if n == "erf":
        return (2.0 / math.pi) * math.asin(2.0 * q * c / (1.0 + 2.0 * q))
    s1 = math.sqrt(q)
    s2 = math.sqrt(q * (1.0 - c) * (1.0 + c))
    return _bivariate(act.phi, act.phi, s1, c, s2, act.kinks, act.kinks)


def _cross_dphi(act: Activation, q: float, c: float) -> float:
    """``E[φ'(u₁)φ'(u₂)]`` (Price's theorem: ``∂E[φ(u₁)φ(u₂)]/∂q₁₂``)."""
    n = act.name
    if n == "linear":
        return 1.0
    if n in ("relu", "leaky_relu"):
        a = 0.0 if n == "relu" else act.param("negative_slope")
        theta = math.acos(max(-1.0, min(1.0, c)))
        return ((1.0 + a * a) * (math.pi - theta) + 2.0 * a * theta) / (2.0 * math.pi)
    if n == "erf":
        return (4.0 / math.pi) / math.sqrt((1.0 + 2.0 * q) ** 2 - 4.0 * q * q * c * c)
    s1 = math.sqrt(q)
    s2 = math.sqrt(q * (1.0 - c) * (1.0 + c))
    return _bivariate(act.dphi, act.dphi, s1, c, s2, act.kinks, act.kinks)


def _arccos_kernel(c: float) -> float:
    """``E[relu(z₁) relu(z₂)]`` for unit variances and correlation c (Cho & Saul 2009)."""
    c = max(-1.0, min(1.0, c))
    return (math.sqrt((1.0 - c) * (1.0 + c)) + (math.pi - math.acos(c)) * c) / (2.0 * math.pi)


# ============================================================================ length map


def q_map(q: float, activation: str | Activation, sigma_w2: float, sigma_b2: float) -> float:
    """One step of the length map ``q ↦ σ_w² E_z[φ(√q z)²] + σ_b²`` (Poole et al. 2016, arXiv 1606.05340, eq. 3).

    Example: ``q_map(1.0, "relu", 2.0, 0.0) == 1.0``; ``q_map(1.0, "erf", 1.0, 0.0) == (2/π) arcsin(2/3)``.
    """
    act = get_activation(activation)
    q = _check_q(q)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    return sigma_w2 * _phi_sq_moment(act, q) + sigma_b2


def q_trajectory(
    q0: float, depth: int, activation: str | Activation, sigma_w2: float, sigma_b2: float
) -> np.ndarray:
    """``[q⁰, q¹, …, q^depth]`` obtained by iterating :func:`q_map` from ``q0`` (array of length depth + 1).

    Example: relu, ``σ_w² = 1``, ``σ_b² = 0.5``: ``q^l → q* = 1`` geometrically with ratio ½.
    """
    act = get_activation(activation)
    q = _check_q(q0, "q0")
    depth = _check_trajectory_depth(depth)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    out = np.empty(depth + 1)
    out[0] = q
    for i in range(1, depth + 1):
        q = sigma_w2 * _phi_sq_moment(act, q) + sigma_b2 if q > 0 else sigma_b2
        out[i] = q
        if _fill_cycle(out, i):
            break
    return out


def _check_trajectory_depth(depth: object) -> int:
    depth = check_int("depth", depth, minimum=0)
    if depth > MAX_TRAJECTORY_DEPTH:
        raise ValueError(
            f"depth must be an integer <= {MAX_TRAJECTORY_DEPTH} (and >= 0) for a trajectory; got {depth!r} "
            "(for deeper networks use the fixed point and depth_scales)"
        )
    return depth


def _fill_cycle(out: np.ndarray, i: int) -> bool:
    """Once the iterates repeat exactly (period 1 or 2 — a deterministic map then repeats forever), fill
    the rest of ``out`` from index ``i`` on and return True; the result is identical to iterating."""
    for period in (1, 2):
        # x_i = x_{i−p} implies x_{i+1} = f(x_i) = f(x_{i−p}) = x_{i+1−p}, and so on
        if i >= period and out[i] == out[i - period]:
            rest = out[i + 1 :]
            rest[:] = np.resize(out[i - period + 1 : i + 1], rest.shape)
            return True
    return False


def q_star(
    activation: str | Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0
) -> float:
    """Fixed point ``q*`` of the length map reached by iterating it from ``q0`` (Poole et al. 2016, §2).

    The length map is increasing in q, so the iterates are monotone and converge to the first fixed point in
    the direction they move; that point is bracketed by geometric search and polished by Brent's method
    (relative accuracy ~1e−15). Homogeneous activations use the exact solution of the affine map
    ``q ↦ s q + σ_b²`` with ``s = σ_w² E[φ(z)²]``: ``q* = σ_b²/(1 − s)`` for ``s < 1``.

    Returns ``0.0`` when the iterates decay to zero (possible only for ``σ_b² = 0`` and ``φ(0) = 0``), and
    ``math.inf`` when they grow without bound: e.g. relu with ``σ_w² > 2`` (any σ_b²), or ``σ_w² = 2`` and
    ``σ_b² > 0`` (then ``q^l = q^{l−1} + σ_b²``). For relu at ``σ_w² = 2``, ``σ_b² = 0`` every q is fixed and
    ``q0`` is returned.

    Example: tanh, ``σ_w² = 1.5``, ``σ_b² = 0.05`` → ``q* = 0.41802…``.
    """
    act = get_activation(activation)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    q0 = _check_q(q0, "q0")
    return _q_star(act, sigma_w2, sigma_b2, q0)


def _q_star(act: Activation, sigma_w2: float, sigma_b2: float, q0: float) -> float:
    if sigma_w2 == 0.0:
        return sigma_b2
    if act.is_homogeneous:
        s = sigma_w2 * _phi_sq_moment(act, 1.0)
        if s < 1.0:
            return sigma_b2 / (1.0 - s)
        if s == 1.0 and sigma_b2 == 0.0:
            return q0
        return math.inf

    def gap(q: float) -> float:
        return sigma_w2 * _phi_sq_moment(act, q) + sigma_b2 - q

    g0 = gap(q0)
    if g0 == 0.0:
        return q0
    if g0 > 0.0:  # iterates increase
        lo, hi = q0, max(2.0 * q0, q0 + g0)
        while gap(hi) > 0.0:
            lo, hi = hi, 4.0 * hi
            if hi > _Q_HUGE:
                return math.inf
    else:  # iterates decrease
        # q_map(q0) >= 0 formed directly: q0 + gap(q0) rounded to 0 for q0 = 1e300 and returned q* = 0
        hi, lo = q0, (sigma_w2 * _phi_sq_moment(act, q0) + sigma_b2) / 2.0
        while lo > 0.0 and gap(lo) < 0.0:
            hi, lo = lo, lo / 16.0
            if lo < 1e-250:
                return 0.0
        if lo == 0.0:
            return 0.0
    return float(optimize.brentq(gap, lo, hi, xtol=1e-300, rtol=4 * np.finfo(float).eps, maxiter=500))


# ============================================================================ helpers for q*-dependent quantities


def _operating_point(
    act: Activation, sigma_w2: float, sigma_b2: float, q0: float, need_c: bool
) -> tuple[float, float, float]:
    """``(q*, q_eval, σ_b²_eval)``: where to evaluate Gaussian moments for the fixed point q*.

    ``q_eval = q*`` normally; ``1`` for homogeneous activations when ``q* ∈ {0, ∞}`` (their moments and, with
    the bias negligible, their c-map do not depend on q — used only for ``χ₁`` when ``q* = ∞``); the q → 0⁺
    limit point for other activations at ``q* = 0``.
    """
    qs = _q_star(act, sigma_w2, sigma_b2, q0)
    if math.isinf(qs):
        if act.is_homogeneous and not need_c:
            return qs, 1.0, 0.0
        raise ValueError(
            f"the length map of {act.name!r} with sigma_w2={sigma_w2!r}, sigma_b2={sigma_b2!r} diverges "
            "(q* = inf): there is no finite fixed point, so c*, chi1 and the depth scales are undefined. "
            "Use a smaller sigma_w2 (relu: sigma_w2 < 2 when sigma_b2 > 0)."
        )
    if qs == 0.0:
        return 0.0, (1.0 if act.is_homogeneous else _Q_TINY), sigma_b2
    return qs, qs, sigma_b2


def _c_map_value(act: Activation, q: float, c: float, sigma_w2: float, sigma_b2: float) -> float:
    denom = sigma_w2 * _phi_sq_moment(act, q) + sigma_b2
    if denom <= 0.0:
        raise ValueError("sigma_w2 and sigma_b2 are both zero: every pre-activation is 0 and c is undefined")
    return (sigma_w2 * _cross_phi(act, q, c) + sigma_b2) / denom


def _c_map_slope(act: Activation, q: float, c: float, sigma_w2: float, sigma_b2: float) -> float:
    """``∂c'/∂c = σ_w² q E[φ'(u₁)φ'(u₂)] / q_map(q)`` (= ``σ_w² E[φ'φ']`` at ``q = q*``)."""
    denom = sigma_w2 * _phi_sq_moment(act, q) + sigma_b2
    if denom <= 0.0:
        raise ValueError("sigma_w2 and sigma_b2 are both zero: every pre-activation is 0 and c is undefined")
    return sigma_w2 * q * _cross_dphi(act, q, c) / denom


def _depth_scale(slope: float) -> float:
    """``ξ = −1/ln(slope)`` for ``0 ≤ slope < 1``; ∞ within CRITICAL_TOL of 1 (and beyond, unstable)."""
    if slope >= 1.0 - CRITICAL_TOL:
        return math.inf
    if slope <= 0.0:
        return 0.0
    return -1.0 / math.log(slope)


# ============================================================================ correlation map


def c_map(
    c: float,
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
    q: float | None = None,
    q0: float = 1.0,
) -> float:
    """One step of the correlation map (Poole et al. 2016, arXiv 1606.05340, eq. 5):

        ``c' = (σ_w² E[φ(u₁)φ(u₂)] + σ_b²) / (σ_w² E[φ(u₁)²] + σ_b²)``,  ``u₁ = √q z₁``, ``u₂ = √q (c z₁ + √(1−c²) z₂)``.

    ``q`` defaults to the fixed point ``q*`` reached from ``q0`` (then the denominator is ``q*``); raises
    ``ValueError`` if that q* is infinite, or zero for a non-homogeneous φ. Closed forms: relu/leaky_relu
    (arc-cosine kernel, Cho & Saul 2009), erf (Williams 1997), linear; else the kink-aware bivariate quadrature.

    Example (relu, ``σ_w² = 2``, ``σ_b² = 0``): ``c' = (√(1−c²) + (π − arccos c) c)/π``; ``c = 0`` → ``1/π``.
    """
    act = get_activation(activation)
    c = check_real("c", c, low=-1.0, high=1.0)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    if q is None:
        qs, q, sigma_b2 = _operating_point(act, sigma_w2, sigma_b2, _check_q(q0, "q0"), need_c=True)
        if qs == 0.0 and not act.is_homogeneous:
            raise ValueError(_degenerate_c_message(act, sigma_w2))
    else:
        q = _check_q(q)
    return _c_map_value(act, q, c, sigma_w2, sigma_b2)


def c_trajectory(
    c0: float,
    depth: int,
    activation: str | Activation,
    sigma_w2: float,
    sigma_b2: float,
    q: float | None = None,
    q0: float = 1.0,
) -> np.ndarray:
    """``[c⁰, c¹, …, c^depth]`` from iterating :func:`c_map` at fixed ``q`` (default: ``q*`` reached from ``q0``).

    Example (docs/derivations.md T19): relu at ``σ_w² = 2``, ``σ_b² = 0`` from ``c⁰ = 0``: ``1 − c^l ≈ 9π²/(2 l²)``.
    """
    act = get_activation(activation)
    c = check_real("c0", c0, low=-1.0, high=1.0)
    depth = _check_trajectory_depth(depth)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    if q is None:
        qs, q, sigma_b2 = _operating_point(act, sigma_w2, sigma_b2, _check_q(q0, "q0"), need_c=True)
        if qs == 0.0 and not act.is_homogeneous:
            raise ValueError(_degenerate_c_message(act, sigma_w2))
    else:
        q = _check_q(q)
    out = np.empty(depth + 1)
    out[0] = c
    if act.name == "relu":  # fast path: scalar closed form without per-step overhead
        denom = sigma_w2 * 0.5 * q + sigma_b2
        for i in range(1, depth + 1):
            c = min(1.0, (sigma_w2 * q * _arccos_kernel(c) + sigma_b2) / denom)
            out[i] = c
        return out
    for i in range(1, depth + 1):
        c = min(1.0, max(-1.0, _c_map_value(act, q, c, sigma_w2, sigma_b2)))
        out[i] = c
        if _fill_cycle(out, i):
            break
    return out


def _degenerate_c_message(act: Activation, sigma_w2: float) -> str:
    return (
        f"q* = 0 for {act.name!r} with sigma_w2={sigma_w2!r}, sigma_b2=0: the signal variance decays to zero "
        "and the correlation map tends to the identity (every c is marginally preserved), so c* is undefined; "
        "pass q explicitly to evaluate the map at a given variance"
    )


def c_star(
    activation: str | Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0
) -> float:
    """The stable fixed point ``c* ∈ [0, 1]`` of the correlation map at ``q*`` (Poole et al. 2016, §3).

    If the slope of the c-map at ``c = 1`` (= χ₁ at a finite ``q* > 0``) is ≤ 1, ``c* = 1`` (ordered or
    critical phase). Otherwise (chaotic phase) the c-map, increasing and convex on ``[0, 1]`` with
    ``c_map(0) ≥ 0``, has exactly one other fixed point in ``[0, 1)``, found by Brent's method.
    Raises ``ValueError`` when ``q* = ∞`` or when ``q* = 0`` for a non-homogeneous activation (see module doc).

    Example: tanh, ``σ_w² = 4``, ``σ_b² = 0``: φ odd, so ``c* = 0``.
    """
    act = get_activation(activation)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    q0 = _check_q(q0, "q0")
    return _c_star(act, sigma_w2, sigma_b2, q0)


def _c_star(act: Activation, sigma_w2: float, sigma_b2: float, q0: float) -> float:
    qs, q, sb2 = _operating_point(act, sigma_w2, sigma_b2, q0, need_c=True)
    if qs == 0.0 and not act.is_homogeneous:
        raise ValueError(_degenerate_c_message(act, sigma_w2))
    slope1 = _c_map_slope(act, q, 1.0, sigma_w2, sb2)
    if slope1 <= 1.0 + CRITICAL_TOL:
        return 1.0

    def gap(c: float) -> float:
        return _c_map_value(act, q, c, sigma_w2, sb2) - c

    g0 = gap(0.0)
    if g0 <= 0.0:
        return 0.0
    delta = 0.5
    while gap(1.0 - delta) >= 0.0:
        delta *= 0.25
        if delta < 1e-15:
            return 1.0
    return float(optimize.brentq(gap, 0.0, 1.0 - delta, xtol=1e-15, rtol=4 * np.finfo(float).eps))


# ============================================================================ χ₁, depth scales


def chi1(activation: str | Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0) -> float:
    """``χ₁ = σ_w² E_z[φ'(√q* z)²]`` (Schoenholz et al. 2017, arXiv 1611.01232, eq. 8; PSG 2017's χ).

    Per-layer factor of the mean squared singular value of the input–output Jacobian and of squared
    gradient norms. For homogeneous activations it does not depend on q* (relu: ``σ_w²/2``) and is returned
    even when ``q* = ∞``; for others ``q* = ∞`` raises ``ValueError``.

    Example: tanh, ``σ_w² = 1.5``, ``σ_b² = 0.05`` → ``0.93864…`` (ordered phase).
    """
    act = get_activation(activation)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    q0 = _check_q(q0, "q0")
    _, q, _ = _operating_point(act, sigma_w2, sigma_b2, q0, need_c=False)
    return sigma_w2 * _derivative_moment(act, q, 1.0)


class DepthScales(NamedTuple):
    """Depth scales of Schoenholz et al. 2017 (arXiv 1611.01232, §3): ``|q^l − q*|``, ``|c^l − c*| ~ e^{−l/ξ}``."""

    xi_q: float
    xi_c: float


def depth_scales(
    activation: str | Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0
) -> DepthScales:
    """``(ξ_q, ξ_c)`` (Schoenholz et al. 2017, arXiv 1611.01232, eqs. 4 and 7):

        ``ξ_q⁻¹ = −ln[χ₁ + σ_w² E(φ''(√q* z) φ(√q* z))]`` = −ln(slope of the length map at q*),
        ``ξ_c⁻¹ = −ln[σ_w² E(φ'(u₁) φ'(u₂))]`` at ``c*`` = −ln(slope of the c-map at c*).

    The slopes are computed as derivatives of the maps (Stein/Price identities), which also covers kinked φ
    where ``φ''`` has Dirac masses. In the ordered phase ``ξ_c = −1/ln χ₁``. ``ξ = inf`` when the slope is
    within CRITICAL_TOL of 1 (criticality; also relu at ``σ_b² = 0``, whose c-map has slope 1 at c = 1 for
    every σ_w²), and ``0`` for slope 0 (``σ_w² = 0``). No warnings are emitted.

    Example: tanh, ``σ_w² = 1.5``, ``σ_b² = 0.05`` → ``ξ_q = 1.68…``, ``ξ_c = 15.79…``.
    """
    act = get_activation(activation)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    q0 = _check_q(q0, "q0")
    return _depth_scales(act, sigma_w2, sigma_b2, q0)


def _depth_scales(act: Activation, sigma_w2: float, sigma_b2: float, q0: float) -> DepthScales:
    qs, q, sb2 = _operating_point(act, sigma_w2, sigma_b2, q0, need_c=True)
    xi_q = _depth_scale(_q_map_slope(act, q, sigma_w2))
    if qs == 0.0 and not act.is_homogeneous:
        return DepthScales(xi_q, math.inf)
    cs = _c_star(act, sigma_w2, sigma_b2, q0)
    return DepthScales(xi_q, _depth_scale(_c_map_slope(act, q, cs, sigma_w2, sb2)))


# ============================================================================ critical line


class CriticalPoint(NamedTuple):
    """A point ``(σ_w², σ_b²)`` on the order-to-chaos line ``χ₁ = 1``."""

    sigma_w2: float
    sigma_b2: float


def _critical_sigma_b2(act: Activation, q: float) -> float:
    """``σ_b²(q*) = q* − E[φ²]/μ₁`` along the critical line (cancellation-free for hardtanh)."""
    mu1 = _derivative_moment(act, q, 1.0)
    if act.name == "hardtanh":
        # p σ_b² = E[x² − q − b²; x > b] + E[x² − q − a²; x < a] = q[g(b/s) + g(−a/s)],
        # g(t) = t (φ(t) − t Φ(−t)), computed with erfcx to avoid cancellation.
        s = math.sqrt(q)

        def g(t: float) -> float:
            # φ(t) − tΦ(−t) = e^{−t²/2}[1/√(2π) − (t/2) erfcx(t/√2)] (t ≥ 0); direct for t < 0
            if t >= 0:
                inner = 1.0 / math.sqrt(2 * math.pi) - 0.5 * t * float(special.erfcx(t / _SQRT2))
                return t * math.exp(-0.5 * t * t) * inner
            return t * (math.exp(-0.5 * t * t) / math.sqrt(2 * math.pi) - t * float(special.ndtr(-t)))

        return q * (g(act.param("max_val") / s) + g(-act.param("min_val") / s)) / mu1
    return q - _phi_sq_moment(act, q) / mu1


def critical_point_from_q(activation: str | Activation, q_star: float) -> CriticalPoint:
    """The critical ``(σ_w², σ_b²)`` whose fixed point is ``q*`` (Pennington, Schoenholz & Ganguli 2017, §2.3):

        ``σ_w² = 1/E_z[φ'(√q* z)²]``,  ``σ_b² = q* − σ_w² E_z[φ(√q* z)²]``.

    Used to choose small-``q*`` critical initialisations for dynamical isometry. As in
    :func:`critical_sigma_w2`, q* need not be an attracting fixed point (gelu, small q*). Raises ``ValueError`` if
    the required ``σ_b²`` is negative (no critical point has this q*); rounding-level negatives
    (``> −1e−13 q*``) are returned as 0.

    Example (docs/derivations.md T15): hardtanh at ``q* = 1/4``: ``σ_w² = 1/erf(√2) = 1.047669…``, ``σ_b² = 8.9e−3``.
    """
    act = get_activation(activation)
    q = _check_q(q_star, "q_star")
    mu1 = _derivative_moment(act, q, 1.0)
    if mu1 <= 0.0:
        raise ValueError(f"E[phi'(sqrt(q*) z)^2] = 0 for {act.name!r} at q*={q!r}: chi1 = 1 is unreachable")
    sb2 = _critical_sigma_b2(act, q)
    if sb2 < 0.0:
        if sb2 > -1e-13 * q:
            sb2 = 0.0
        else:
            raise ValueError(
                f"no critical point of {act.name!r} has q*={q!r}: it would need sigma_b2 = {sb2!r} < 0"
            )
    return CriticalPoint(1.0 / mu1, sb2)


def critical_sigma_w2(activation: str | Activation, sigma_b2: float, *, attracting: bool = True) -> float:
    """``σ_w²`` on the order-to-chaos line ``χ₁ = 1`` at bias variance ``σ_b²`` (Poole et al. 2016, Fig. 2;
    Schoenholz et al. 2017, §3).

    Homogeneous activations: ``χ₁`` does not depend on q*, so the line is ``σ_w² = 1/μ₁`` for every σ_b²
    (relu 2, leaky_relu ``2/(1+a²)``, linear 1) — note q* is then infinite when ``σ_b² > 0``. Others: the
    critical fixed points are the solutions q* of ``σ_b²(q*) = q* − E[φ(√q* z)²]/μ₁(q*) = σ_b²`` (found on a
    log grid ``q* ∈ [1e−12, 1e12]``, then Brent), each with ``σ_w² = 1/μ₁(q*)``. For ``σ_b² = 0`` and
    ``φ(0) = 0`` the candidate is the ``q* → 0`` limit ``1/φ'(0)²`` (tanh 1, erf π/4).

    A critical point is only meaningful if a network actually settles there, i.e. if q* *attracts* the length
    map (its slope ``σ_w² E[φ(x)φ'(x)x]/q*`` ≤ 1; Poole et al. 2016 §2, Hayou et al. 2019 Def. 2 ask for
    convergence of ``q^l``). With ``attracting=True`` (default) the smallest attracting critical q* is used, so
    :func:`chi1` at the returned ``σ_w²`` (iterating from ``q0`` in that point's basin) gives 1, and a
    ``ValueError`` explains when every critical fixed point repels. That happens for gelu below
    ``σ_b² = 0.172922…``: its critical branch turns attracting at q* = (3 + √17)/2, where the slope is exactly 1
    (checked to 30 digits); at smaller q* the map pushes the variance away, to 0 or ∞, so no initialisation at
    that σ_b² is critical — also at ``σ_b² = 0``, where ``q ↦ 4 E[φ(√q z)²] > q`` near 0.
    ``attracting=False`` returns the smallest critical q*'s ``σ_w²`` whether or not it attracts (the formal
    line; see also :func:`critical_point_from_q`).

    Example (docs/derivations.md T18): tanh, ``σ_b² = 0.05`` → ``1.760955…`` (q* = 0.570048…).
    """
    act = get_activation(activation)
    sigma_b2 = check_real("sigma_b2", sigma_b2, low=0.0)
    if not isinstance(attracting, bool):
        raise ValueError(f"attracting must be True or False; got {attracting!r}")
    if act.is_homogeneous:
        return 1.0 / _derivative_moment(act, 1.0, 1.0)
    if sigma_b2 == 0.0 and float(act.phi(0.0)) == 0.0:
        sigma_w2 = 1.0 / _derivative_moment(act, _Q_TINY, 1.0)
        # q* = 0 has slope σ_w² φ'(0)² = 1: it attracts iff the map lies below the diagonal just above 0
        q = 1e-4
        if attracting and sigma_w2 * _phi_sq_moment(act, q) > q:
            raise ValueError(
                f"{act.name!r} at sigma_b2=0 has no attracting critical point: at sigma_w2={sigma_w2:.6g} "
                f"(chi1 = 1 as q* -> 0) the length map rises above q near 0, so the variance moves away from "
                f"q* = 0. {_attracting_hint(act)}"
            )
        return sigma_w2

    def gap(log_q: float) -> float:
        return _critical_sigma_b2(act, math.exp(log_q)) - sigma_b2

    grid = np.linspace(math.log(1e-12), math.log(1e12), 97)
    roots: list[float] = []
    prev_x, prev_g = grid[0], gap(grid[0])
    for x in grid[1:]:
        gx = gap(x)
        if prev_g == 0.0:
            roots.append(prev_x)
        elif (prev_g < 0.0) != (gx < 0.0) and gx != 0.0:
            roots.append(optimize.brentq(gap, prev_x, x, xtol=1e-15, rtol=4 * np.finfo(float).eps))
        prev_x, prev_g = x, gx
    repelling: list[tuple[float, float]] = []
    for root in roots:
        q = math.exp(root)
        sigma_w2 = 1.0 / _derivative_moment(act, q, 1.0)
        slope = _q_map_slope(act, q, sigma_w2)
        if not attracting or slope <= 1.0 + CRITICAL_TOL:
            return sigma_w2
        repelling.append((q, slope))
    if repelling:
        q, slope = repelling[0]
        raise ValueError(
            f"{act.name!r} at sigma_b2={sigma_b2!r} has no attracting critical point: chi1 = 1 at q* = {q:.6g} "
            f"(sigma_w2 = {1.0 / _derivative_moment(act, q, 1.0):.6g}), but that fixed point repels the length "
            f"map (slope {slope:.4g} > 1), so the variance never settles there. {_attracting_hint(act)} "
            "(attracting=False returns the repelling point.)"
        )
    lo = min(gap(x) for x in grid[::8]) + sigma_b2
    hi = max(gap(x) for x in grid[::8]) + sigma_b2
    raise ValueError(
        f"no critical point of {act.name!r} at sigma_b2={sigma_b2!r}: along chi1 = 1 the bias variance "
        f"ranges over about [{lo:.3g}, {hi:.3g}] for q* in [1e-12, 1e12]"
    )


def _attracting_hint(act: Activation) -> str:
    """Where on the critical branch ``q* ↦ (1/μ₁(q*), σ_b²(q*))`` the fixed point turns attracting.

    Scans ``q* ∈ [1e−8, 1e8]`` on a log grid for sign changes of (slope − 1), refines each by Brent, and
    reports the σ_b² there (for gelu: q* ≈ 3.5616, σ_b² ≈ 0.17292).
    """

    def excess(log_q: float) -> float:
        q = math.exp(log_q)
        return _q_map_slope(act, q, 1.0 / _derivative_moment(act, q, 1.0)) - 1.0

    grid = np.linspace(math.log(1e-8), math.log(1e8), 65)
    values = [excess(x) for x in grid]
    turns = []
    for x0, x1, e0, e1 in zip(grid[:-1], grid[1:], values[:-1], values[1:]):
        if (e0 > 0.0) != (e1 > 0.0):
            q = math.exp(optimize.brentq(excess, x0, x1, xtol=1e-12))
            into = "attracting" if e1 <= 0.0 else "repelling"
            turns.append(f"it turns {into} at q* = {q:.6g} (sigma_b2 = {_critical_sigma_b2(act, q):.6g})")
    if not turns:
        return "No critical q* in [1e-8, 1e8] attracts."
    return "Along the critical line " + "; ".join(turns) + "."


# ============================================================================ summary


@dataclass(frozen=True)
class MeanFieldState:
    """Summary of the mean-field fixed point of one ``(activation, σ_w², σ_b²)``.

    ``phase`` is decided by χ₁ (gradient growth per layer): ``"ordered"`` (χ₁ < 1), ``"critical"``
    (``|χ₁ − 1| ≤ CRITICAL_TOL``), ``"chaotic"`` (χ₁ > 1). ``c_star`` is ``None`` when it is undefined
    (``q* = 0`` with a non-homogeneous activation, see :mod:`rmt_init.theory.meanfield`).
    """

    activation: Activation
    sigma_w2: float
    sigma_b2: float
    q_star: float
    c_star: float | None
    chi1: float
    xi_q: float
    xi_c: float
    phase: Literal["ordered", "critical", "chaotic"]


def mean_field(
    activation: str | Activation, sigma_w2: float, sigma_b2: float, q0: float = 1.0
) -> MeanFieldState:
    """All mean-field quantities at once: ``q*``, ``c*``, ``χ₁``, ``ξ_q``, ``ξ_c`` and the phase
    (Poole et al. 2016, arXiv 1606.05340; Schoenholz et al. 2017, arXiv 1611.01232).

    Raises ``ValueError`` if ``q* = ∞`` (no finite fixed point).

    Example: ``mean_field("relu", 2.0, 0.0)`` → q* = 1, c* = 1, χ₁ = 1, phase "critical", ξ_c = inf.
    """
    act = get_activation(activation)
    sigma_w2, sigma_b2 = _check_variances(sigma_w2, sigma_b2)
    q0 = _check_q(q0, "q0")
    qs, q, _ = _operating_point(act, sigma_w2, sigma_b2, q0, need_c=True)
    x1 = sigma_w2 * _derivative_moment(act, q, 1.0)
    scales = _depth_scales(act, sigma_w2, sigma_b2, q0)
    cs = None if (qs == 0.0 and not act.is_homogeneous) else _c_star(act, sigma_w2, sigma_b2, q0)
    if abs(x1 - 1.0) <= CRITICAL_TOL:
        phase = "critical"
    else:
        phase = "ordered" if x1 < 1.0 else "chaotic"
    return MeanFieldState(act, sigma_w2, sigma_b2, qs, cs, x1, scales.xi_q, scales.xi_c, phase)
