"""Support edges of residual-block laws and of their products (docs/derivations.md §8.3, §8.8): the positive extrema
of z(κ) on the real branches of one block (:func:`block_edges`) and, for products of blocks that differ, the real
branches in their own parameters (:func:`product_edges`).

The blocks are :class:`~rmt_init.theory.residual.ResidualBlockS` factors; only their law of D² (``factor.d``, Φ),
``s`` and ``_o`` are read here.
"""
from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING

import numpy as np
from scipy.optimize import minimize_scalar

from .free import DiscreteS

if TYPE_CHECKING:
    from .residual import ResidualBlockS


# ============================================================================ edges of products of one block law
def _real_phi(factor: ResidualBlockS, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``factor.d.phi`` (Φ(κ) = E[1/(1 − κd)] and κΦ'(κ)) at real κ off the poles; FloatingPointError naming the
    factor and κ where Φ is not finite.

    The edge scans evaluate Φ only where it is real and finite (κ < 1/max d; for an atomic law of D² also between and
    beyond its poles, which the grids avoid by ≥ 1e−12 relative), so a NaN or ±inf there is a failure of the law's own
    evaluation. Read as "no real branch" (the z-curve's NaN where the quadratic for e has no real root) it would drop a
    support edge, or shorten a branch table, without an error (docs/derivations.md §8.7(h))."""
    value, slope = factor.d.phi(np.asarray(kappa, float).astype(complex))
    bad = ~np.isfinite(value) & np.isfinite(kappa)
    if np.any(bad):
        raise FloatingPointError(
            f"the law of D² of {factor!r} returned a non-finite Φ at the real κ = {float(np.asarray(kappa)[bad].flat[0])!r}, "
            "where Φ is finite; the edges of the residual law cannot be found without it"
        )
    return value, slope


def _block_curve(factor: ResidualBlockS, power: int, kappa: np.ndarray, sign: float) -> np.ndarray:
    """z = (1 + w)/(w S_F(w)^power) along the real branch parametrised by κ (one root e of s e(1 + e) = κΦ^{1+o}:
    sign +1 the one through e = 0, −1 the other); NaN where it is not real (Φ itself must be finite:
    :func:`_real_phi`)."""
    with np.errstate(all="ignore"):
        phi = _real_phi(factor, kappa)[0].real
        big_g = kappa * phi ** (1 + factor._o)
        disc = 1.0 + 4.0 * big_g / factor.s
        e = 0.5 * (-1.0 + sign * np.sqrt(np.where(disc >= 0, disc, np.nan)))
        w = phi + e - 1.0
        log_s = np.log(np.abs(e * (1.0 + e))) - np.log(np.abs(w * (1.0 + w)))
        s_sign = np.sign(e * (1.0 + e) * w * (1.0 + w))
        z = (1.0 + w) / w * np.exp(-power * log_s) * s_sign**power
    return np.where(np.isfinite(z), z, np.nan)


def block_edges(factor: ResidualBlockS, power: int = 1) -> list[float]:
    """Candidate support edges of F^{⊠power}: the positive local extrema of z(κ) on the real branches (both roots e;
    κ < 0 and 0 < κ < 1/max d), refined by bounded minimisation (docs/derivations.md §8.3)."""
    top = 1.0 / factor.d.dmax
    segments = [-np.geomspace(1e6 * top, 1e-8 * top, 1500), top * np.geomspace(1e-8, 1.0 - 1e-12, 1500)]
    segments[1] = np.unique(np.concatenate([segments[1], top * (1.0 - np.geomspace(0.5, 1e-12, 600))]))
    if _lower_branch(factor) == "outer":
        return _outer_block_edges(factor, power, segments[1])
    beyond = []
    if not factor.d.numerical and power == 1:
        # an atomic law of D² (ReLU: δ₀/2 + δ₁/2) keeps Φ real beyond its poles κ = 1/d: the branch there gives the
        # edge next to the singular point z = 1 of a single block with P(d = 0) = 1/2 (the lower edge of the interval
        # above it); of those candidates only the ones inside the principal edges are kept (the branch also crosses
        # the poles of z)
        poles = sorted({1.0 / a for a, _ in factor.d.atoms if a > 0.0})
        for lo, hi in zip(poles, poles[1:] + [math.inf]):
            if math.isinf(hi):
                beyond.append(lo * np.geomspace(1.0 + 1e-12, 1e12, 1500))
            else:
                beyond.append(lo + (hi - lo) * np.geomspace(1e-12, 1.0 - 1e-12, 1500))
    principal = _curve_extrema(factor, power, segments)
    if factor._o == 1 and _lower_branch(factor) == "inner" and not factor.d.numerical and factor.d.mass_at_zero == 0.0:
        principal = _merge_pole_limits(factor, power, principal, "inner")
    if not beyond or not principal:
        return sorted(principal)
    # z → 1 as κ → ∞ along that branch, leaving rounding-level extrema within ~1e−13 of 1; the true edge c of the
    # gap above 1 lies at c − 1 ≈ 0.009α⁴ (ReLU, σ_w² = 1): kept when c − 1 > 1e−11 (α ≳ 0.02)
    lo, hi = min(principal), max(principal)
    extra = [v for v in _curve_extrema(factor, power, beyond) if lo < v < hi and abs(v - 1.0) > 1e-11]
    return sorted(principal + extra)


def _outer_block_edges(factor: ResidualBlockS, power: int, inner: np.ndarray) -> list[float]:
    """:func:`block_edges` for orthogonal W with s > E[1/d] (docs/derivations.md §8.8): the upper edge on the root
    through e = 0 for 0 < κ < 1/max d, the lower edge on the same root beyond the last pole of Φ, κ > 1/min d (for
    κ < 0 the roots carry u < 0, not the lower edge: linear, s = 2.25, power 3 gave a spurious 0.0740 there, the edge
    being 0.130072). One block (power 1) has its edges at the poles (arcsine-like, z monotone up to them): the limits
    (√(s a) ∓ 1)² of :func:`_pole_limit` are added, and candidates within 1e−9 of each other (rounding-level
    extrema where z is flat next to a pole) are merged, a pole limit taking precedence."""
    low = 1.0 / _d_min(factor)
    beyond = np.unique(np.concatenate([low * np.geomspace(1.0 + 1e-12, 1e12, 1500), low * (1.0 + np.geomspace(1e-12, 0.5, 600))]))
    found = _curve_extrema(factor, power, [inner, beyond], signs=(1.0,))
    return _merge_pole_limits(factor, power, found, "outer")


def _merge_pole_limits(factor: ResidualBlockS, power: int, found: list[float], lower: str) -> list[float]:
    """One orthogonal block (power 1) with d > 0: ``found`` with the pole limits of :func:`_pole_limit` that are edges
    (where :func:`product_edges` finds z monotone up to the pole: linear blocks; a two-atom law's edges are interior)
    added, and candidates within 1e−9 of each other merged, a pole limit taking precedence (z is flat to rounding next
    to the poles, and the scan returned ~400 such extrema for a linear block)."""
    if power != 1:
        return sorted(found)
    limits = [_pole_limit(factor, lower), _pole_limit(factor, "upper")]
    limits = [v for v in product_edges([(factor, 1)]) if v is not None and v in limits]
    out: list[float] = []
    for v in sorted(limits) + sorted(found):
        if v > 0.0 and not any(abs(v - u) <= 1e-9 * u for u in out):
            out.append(v)
    return sorted(out)


def _curve_extrema(factor: ResidualBlockS, power: int, segments: list[np.ndarray], signs: tuple[float, ...] = (1.0, -1.0)) -> list[float]:
    """The positive local extrema of z(κ) on the grids ``segments`` (the roots e in ``signs``), refined (see
    :func:`block_edges`)."""
    edges = []
    for grid in segments:
        for sign in signs:
            z = _block_curve(factor, power, grid, sign)
            for i in range(1, len(grid) - 1):
                z0, z1, z2 = z[i - 1], z[i], z[i + 1]
                if not (np.isfinite(z0) and np.isfinite(z1) and np.isfinite(z2) and z1 > 0):
                    continue
                if np.sign(z1 - z0) * np.sign(z2 - z1) >= 0:  # signs only: the product of the differences overflows on deep products
                    continue
                flip = 1.0 if z1 < z0 else -1.0  # minimum or maximum
                f = lambda k: flip * float(_block_curve(factor, power, np.array([k]), sign)[0])  # noqa: E731
                res = minimize_scalar(f, bounds=(grid[i - 1], grid[i + 1]), method="bounded", options={"xatol": 1e-16 * abs(grid[i]) + 1e-300})
                value = flip * float(res.fun) if np.isfinite(res.fun) else float(z1)
                edges.append(min(value, z1) if flip > 0 else max(value, z1))
    return sorted(edges)


# ============================================================================ edges of products of different blocks
_BRANCH_GRID = 600
_EDGE_GRID = 400
_EDGE_CHUNK = 40


def _atomic_d(factor: ResidualBlockS) -> tuple[np.ndarray, np.ndarray] | None:
    """(locations, masses) of the law of D² when it is purely atomic (linear, δ_c, two-point laws, and a
    :class:`DiscreteS` whose points are all true atoms, as for leaky ReLU); ``None`` for a continuous law (or a
    quadrature standing for one)."""
    d = factor.d
    if not d.numerical:
        return d._x, d._m
    law = d.factor
    if isinstance(law, DiscreteS) and abs(math.fsum(m for _, m in law.atoms) - 1.0) <= 1e-12:
        return law.x, law.m
    return None


def _inverse_mean(factor: ResidualBlockS) -> float:
    """E[1/d] for an atomic law of D² (∞ with an atom at 0, or for a continuous law: d reaches down to 0, §8.8)."""
    law = _atomic_d(factor)
    if law is None or factor.d.mass_at_zero > 0.0:
        return math.inf
    return math.fsum(float(m) / float(a) for a, m in zip(*law))


def _d_min(factor: ResidualBlockS) -> float:
    """min d over the atoms of an atomic law of D² (the last pole 1/min d of Φ)."""
    law = _atomic_d(factor)
    return float(min(a for a, m in zip(*law) if m > 0.0))


def _lower_branch(factor: ResidualBlockS) -> str | None:
    """The real branch of one block that carries the lower edge (docs/derivations.md §8.8): ``"inner"`` for
    s·E d < 1 (the root e → −1 of s e(1 + e) = κΦ^{1+o}, 0 < κ < 1/max d: p = 1 + ψ ≈ κ(E d − 1/s) < 0),
    ``"outer"`` for orthogonal W with s > E[1/d] (the root e → 0, κ = 1/ν beyond every pole of Φ, 0 < ν < min d:
    p ≈ νE[1/d](E[1/d]/s − 1) < 0; the Brown measure of αDQ is the annulus √(s/E[1/d]) ≤ |λ| ≤ √(sE d), Haagerup &
    Larsen 2000, and −1 lies inside its hole), ``None`` otherwise (−1 in the Brown measure's support: lower edge 0;
    or a continuous law of D² such as tanh's, whose d reaches 0 so that no real branch continues beyond the poles)."""
    if factor.s * factor.d.mean < 1.0:
        return "inner"
    if factor._o == 1 and factor.s > _inverse_mean(factor):
        return "outer"
    return None


def _phi_and_slope(factor: ResidualBlockS, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """(Φ(κ), Φ(κ) − 1, Φ'(κ)) for real κ; Φ − 1 = E[κd/(1 − κd)] without cancellation for an atomic law of D²."""
    with np.errstate(all="ignore"):
        phi, k_dphi = _real_phi(factor, kappa)
        phi, dphi = phi.real, (k_dphi / kappa).real
        if factor.d.numerical:
            return phi, phi - 1.0, dphi
        kx = np.asarray(kappa, float)[..., None] * factor.d._x
        return phi, (factor.d._m * kx / (1.0 - kx)).sum(axis=-1), dphi


def _branch(factor: ResidualBlockS, t: np.ndarray, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """One block's real branch in its parameter t (docs/derivations.md §8.3, §8.8): (x, log|e(1 + e)|, dx/dt), with
    e(1 + e) = κΦ(κ)^{1+o}/s = w(1 + w)S_F(w) on both roots of that quadratic, e₊ = the root through e = 0 and

    * ``"upper"``: κ = t ∈ (0, 1/max d), e = e₊, x = log w, w = Φ − 1 + e₊ > 0;
    * ``"inner"``: κ = t ∈ (0, 1/max d), e = −1 − e₊, x = log(−p), p = 1 + w = Φ − 1 − e₊ < 0;
    * ``"outer"``: κ = 1/t, t = ν ∈ (0, min d), e = e₊, x = log(−p), p = Φ + e₊ < 0.

    NaN where the branch is not real or x is not defined (w ≤ 0, p ≥ 0)."""
    o = factor._o
    t = np.asarray(t, float)
    with np.errstate(all="ignore"):
        kappa = 1.0 / t if mode == "outer" else t
        phi, phi1, dphi = _phi_and_slope(factor, kappa)
        big_g = kappa * phi ** (1 + o)
        d_big_g = phi ** (1 + o) + (1 + o) * kappa * phi**o * dphi
        disc = 1.0 + 4.0 * big_g / factor.s
        root = np.sqrt(np.where(disc >= 0.0, disc, np.nan))
        e_plus = 2.0 * (big_g / factor.s) / (1.0 + root)
        de_plus = (d_big_g / factor.s) / root
        if mode == "upper":
            y, dy = phi1 + e_plus, dphi + de_plus
        elif mode == "inner":
            y, dy = e_plus - phi1, de_plus - dphi
        else:  # dκ/dν = −1/ν²
            y, dy = -(phi + e_plus), (dphi + de_plus) / (t * t)
        x = np.where(y > 0.0, np.log(np.where(y > 0.0, y, 1.0)), np.nan)
        return x, np.log(np.abs(big_g / factor.s)), dy / y


class _BranchInverse:
    """t(x) on the monotone piece of one block's branch (:func:`_branch`, ``mode``) that starts at x → −∞ (w = 0 on
    the upper branch, w = −1 on the lower ones): a table in (log t, x), then safeguarded Newton in t.
    ``complete``: the piece runs to the end of the parameter range (a pole of Φ, where |w| → ∞)."""

    def __init__(self, factor: ResidualBlockS, mode: str) -> None:
        self.factor, self.mode = factor, mode
        end = _d_min(factor) if mode == "outer" else 1.0 / factor.d.dmax
        t = np.unique(np.concatenate([end * np.geomspace(1e-12, 0.5, _BRANCH_GRID),
                                      end * (1.0 - np.geomspace(0.5, 1e-13, _BRANCH_GRID // 2))]))
        x = _branch(factor, t, mode)[0]
        good = np.isfinite(x)
        # the monotone piece from t = 0: up to the first non-finite point or turning point of x
        stop = int(np.flatnonzero(~good)[0]) if (~good).any() else len(x)
        rising = np.diff(x[:stop]) > 0
        if (~rising).any():
            stop = int(np.flatnonzero(~rising)[0]) + 1
        self.complete = stop == len(x)
        self.t, self.x = t[:stop], x[:stop]
        self.x_max = float(self.x[-1]) if stop else -math.inf

    def __call__(self, x: np.ndarray) -> np.ndarray:
        """log|e(1 + e)| at the t with x(t) = x (x within the table): safeguarded Newton in t from the table's
        interpolant, inside the bracket of the two table points around x (x rises with t); converged points are
        frozen."""
        x = np.asarray(x, float)
        t = np.exp(np.interp(x, self.x, np.log(self.t)))
        i = np.clip(np.searchsorted(self.x, x), 1, len(self.x) - 1)
        lo, hi = self.t[i - 1].copy(), self.t[i].copy()
        active = np.ones(x.shape, bool)
        for _ in range(40):
            xt, _, dx = _branch(self.factor, t, self.mode)
            residual = xt - x
            hi = np.where(active & (residual > 0), np.minimum(hi, t), hi)
            lo = np.where(active & (residual < 0), np.maximum(lo, t), lo)
            with np.errstate(all="ignore"):
                new = t - residual / dx
            new = np.where(np.isfinite(new) & (new >= lo) & (new <= hi), new, 0.5 * (lo + hi))
            # x(t) is evaluated to a few ulps, so near the root Newton can alternate between two neighbouring t whose
            # residuals are ±1 ulp of x: converged once the residual is within 2 ulps (or t's bracket a few ulps)
            converged = (np.abs(residual) <= 2.0 * np.spacing(np.abs(x))) | (np.abs(new - t) <= 4e-16 * t) | (hi - lo <= 1e-15 * t)
            t = np.where(active & ~(residual == 0), new, t)
            active &= ~converged
            if not active.any():
                break
        return _branch(self.factor, t, self.mode)[1]


def _pole_limit(factor: ResidualBlockS, mode: str) -> float:
    """z at the end of one block's branch, the pole κ = 1/a of Φ (a = max d, or min d on the ``"outer"`` branch):
    there |Φ| → ∞, e ≈ ±|Φ|√(κ/s), p ≈ Φ(1 ± √(κ/s)) and z = s p²/(κΦ^{1+o}) → (√(s a) ± 1)² for orthogonal W, + on
    the upper branch (docs/derivations.md §8.8; linear: the edges (α ± 1)² of the arcsine law of I + αQ). Gaussian W:
    z → ∞ (never reached: its edges are interior extrema)."""
    if factor._o != 1:
        return math.inf
    a = _d_min(factor) if mode == "outer" else factor.d.dmax
    root = math.sqrt(factor.s * a)
    return (root + 1.0) ** 2 if mode == "upper" else (root - 1.0) ** 2


def product_edges(terms: Sequence[tuple[ResidualBlockS, int]]) -> tuple[float | None, float | None]:
    """(lower, upper) edge of F_1^{⊠k_1} ⊠ ⋯ ⊠ F_m^{⊠k_m} for residual blocks F_j (docs/derivations.md §8.8).

    With S_{F_j}(w) = e_j(1 + e_j)/(w(1 + w)) and L = Σ k_j, the inverse of the product's ψ is
    z(w) = (1 + w)/(w Π S_j^{k_j}) = (1 + w)^{1+L} w^{L−1} / Π (e_j(1 + e_j))^{k_j}, each e_j(w) on the block's real
    branch through w (:func:`_branch`): for w > 0 (u = 1/z > 0 below 1/max supp) the root through e = 0, 0 < κ < 1/max d;
    for w < −1 (z below the lower edge: ψ < −1 there) the branch of :func:`_lower_branch` — the root e → −1 with
    0 < κ < 1/max d when s·E d < 1, the root e → 0 with κ beyond the poles of Φ for orthogonal W with s > E[1/d]. The
    upper edge is the first local minimum of z as w rises from 0 (z → ∞), the lower edge the first local maximum as w
    falls from −1 (z → 0); for one block (L = 1, an arcsine-like inverse square root edge) z can be monotone up to the
    pole of Φ, where |w| → ∞: then the edge is its limit there. ``None`` for an edge whose branch ends before its
    extremum, and for the lower edge when some block has no lower branch (−1 in the Brown measure of αDW: the disc of
    radius √(sE d) for Gaussian W, the annulus √(s/E[1/d]) ≤ |λ| ≤ √(sE d) for orthogonal W — lower edge 0)."""
    total = sum(k for _, k in terms)
    out: list[float | None] = []
    for side in ("lower", "upper"):
        modes = [("upper" if side == "upper" else _lower_branch(f)) for f, _ in terms]
        if any(m is None for m in modes):
            out.append(None)
            continue
        inverses = [(_BranchInverse(f, m), k) for (f, k), m in zip(terms, modes)]
        x_max = min(inv.x_max for inv, _ in inverses)
        if not math.isfinite(x_max):
            out.append(None)
            continue
        sign = 1.0 if side == "upper" else -1.0

        def log_z(x: np.ndarray) -> np.ndarray:
            # upper: w = eˣ; lower: w = −1 − eˣ, so |1 + w| = eˣ and |w| = 1 + eˣ without cancellation
            big = np.logaddexp(0.0, x)
            value = ((1 + total) * big + (total - 1) * x) if sign > 0 else ((1 + total) * x + (total - 1) * big)
            for inv, k in inverses:
                value = value - k * inv(x)
            return sign * value  # the upper edge is a minimum of z, the lower one a maximum: minimise both

        x0 = max(max(inv.x[0] for inv, _ in inverses), -30.0)
        grid = np.linspace(x0, x_max, _EDGE_GRID)
        # the grid in chunks from x0 up to its first interior minimum (the same one as on the whole grid: it depends
        # on its two neighbours only): past it x runs to the end of the branches, next to the cut of the laws of D²,
        # whose quadrature took half of the support's time (tanh, α = 0.05, depth 30)
        values = np.empty(0)
        while values.size < grid.size:
            values = np.concatenate([values, log_z(grid[values.size : values.size + _EDGE_CHUNK])])
            interior = np.flatnonzero((values[1:-1] < values[:-2]) & (values[1:-1] <= values[2:]) & np.isfinite(values[1:-1]))
            if interior.size:
                break
        if not interior.size:
            ends = all(inv.complete for inv, _ in inverses)
            if total == 1 and ends and values[-1] <= np.nanmin(values) + 1e-13 * abs(values[-1]):
                out.append(_pole_limit(terms[0][0], modes[0]))  # monotone to the pole: the limit there
            else:
                out.append(None)
            continue
        i = int(interior[0]) + 1
        res = minimize_scalar(lambda t: float(log_z(np.array([t]))[0]), bounds=(grid[i - 1], grid[i + 1]),
                              method="bounded", options={"xatol": 1e-13})
        edge = math.exp(sign * min(float(res.fun), float(values[i])))
        if total == 1 and all(inv.complete for inv, _ in inverses):
            # one block, z flat to rounding next to the pole (|w| ~ 1e13): a rounding-level extremum of the limit
            limit = _pole_limit(terms[0][0], modes[0])
            edge = limit if abs(edge - limit) <= 1e-8 * limit else edge
        out.append(edge)
    return out[0], out[1]
