"""Support of a free product: the real inverse of a numerical factor's ψ, the critical values of log χ on the real
axis (the edges), and the intervals that carry density (docs/derivations.md §2.3, §2.6, §3.2).

A mixin of :class:`~rmt_init.theory.free.FreeProductLaw`, which holds the terms and atoms it reads; see that module's
docstring for the conventions (ψ, χ, S).
"""
from __future__ import annotations

import math
from functools import cached_property
from typing import Any

import numpy as np
from scipy.optimize import brentq

_ATOM_TOL = 1e-13  # atoms, and a continuous mass, below this are taken as absent
_U_FLOOR = -(4.0**200)  # the real inverse of ψ looks no further down (its old bracket search: 200 steps of 4)
_BRACKET_GROWTH_MAX = 1e32  # its bracket's factors are squared up to this (4.0: steps of 4, as before; benchmarks)


def _real_psi(factor: Any, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """``factor.one_plus_psi`` at real u; FloatingPointError naming the factor and u where 1 + ψ is not finite.

    On its real branch (u < 1/max d) a factor's 1 + ψ is finite, so a NaN or ±inf there is a failure of the factor's
    own evaluation: read as a comparison it would say "ψ(u) is not above w" and the real inverse would return a wrong
    u, or none ("no real branch"), and an edge of the support would move or vanish without an error."""
    value, u_slope = factor.one_plus_psi(np.asarray(u).astype(complex))
    bad = np.isfinite(u) & ~np.isfinite(value)
    if np.any(bad):
        raise FloatingPointError(
            f"the factor {factor!r} returned a non-finite ψ at the real u = {float(np.asarray(u)[bad][0])!r} on its real "
            "branch, where ψ is finite; the edges of the support cannot be found without it"
        )
    return value, u_slope


def _real_inverse_array(factor: Any, w: np.ndarray) -> np.ndarray:
    """Vectorised real inverse of ψ on its real branch u < 1/max d (``factor``: a :class:`PsiS`).

    ψ increases from −(1 − mass at 0) (u → −∞) to +∞ (u → 1/max d) there, so each w in that range has
    one root. Safeguarded Newton on the bracket [lo, hi] (bisection, geometric for large negative u,
    whenever a Newton step leaves the bracket); returns NaN where w is out of range.
    """
    w = np.asarray(w, float)
    out = np.full(w.shape, np.nan)
    valid = (w > -(1.0 - factor.mass_at_zero)) & np.isfinite(w)
    if not np.any(valid):
        return out
    target = w[valid]
    f = lambda u, w: _real_psi(factor, u)[0].real - 1.0 - w  # noqa: E731
    # the bracket's lower end: −1, −4, −4·16, … (factors squared up to 1e32), only the points still above their
    # target evaluated again; the last point above is the upper end (ψ(u) + 1 ~ |u|^{−1/2} as u → −∞ where d
    # vanishes quadratically, gelu: targets near −1 need u ~ −1e120, which steps of 4 reach in 200 evaluations)
    lo = np.full(target.shape, -1.0)
    hi = np.full(target.shape, (1.0 / factor.xmax) * (1 - 1e-12))
    grow = np.full(target.shape, 4.0)
    above = np.arange(target.size)
    for _ in range(200):
        above = above[f(lo[above], target[above]) > 0]
        hi[above] = np.minimum(hi[above], lo[above])
        above = above[lo[above] > _U_FLOOR]  # roots beyond −4^200 (as far as the steps of 4 went): u ≈ −4^200
        if above.size == 0:
            break
        lo[above] = np.maximum(lo[above] * grow[above], _U_FLOOR)
        grow[above] = np.minimum(grow[above] ** 2, _BRACKET_GROWTH_MAX)
    reachable = f(hi, target) >= 0  # ψ may stay finite up to the cut (smooth maximum of d): no root beyond it
    u = np.where(target > 0, 0.5 * hi, np.where(target < 0, np.where(hi < 0, -np.sqrt(lo * np.minimum(hi, -1e-300)), 0.5 * lo), 0.0))
    todo = np.flatnonzero(reachable)  # safeguarded Newton on the points not yet done
    for _ in range(200):
        if todo.size == 0:
            break
        ut, lt, ht, wt = u[todo], lo[todo], hi[todo], target[todo]
        value, u_slope = _real_psi(factor, ut)
        residual = value.real - 1.0 - wt
        lt = np.where(residual < 0, ut, lt)
        ht = np.where(residual > 0, ut, ht)
        slope = np.where(ut != 0, u_slope.real / np.where(ut == 0, 1.0, ut), np.nan)
        step = np.where(np.isfinite(slope) & (slope > 0), residual / np.where(slope > 0, slope, 1.0), np.nan)
        newton = ut - step
        geometric = (lt < -1.0) & (ht < 0)
        bisect = np.where(geometric, -np.sqrt(np.where(geometric, lt * np.minimum(ht, -1e-300), 1.0)), 0.5 * (lt + ht))
        new = np.where(np.isfinite(newton) & (newton > lt) & (newton < ht), newton, bisect)
        done = (
            (np.abs(residual) <= 2e-16 * np.maximum(1.0, np.abs(wt)))
            | (np.abs(new - ut) <= 4e-16 * np.abs(ut))
            | (ht - lt <= 4e-16 * np.abs(ut))
        )
        lo[todo], hi[todo], u[todo] = lt, ht, np.where(done, ut, new)
        todo = todo[~done]
    out[valid] = np.where(target == 0, 0.0, np.where(reachable, u, np.nan))
    return out


def _segment_grid(a: float, b: float, n: int = 400) -> np.ndarray:
    """Points strictly inside (a, b), dense near finite ends and spread geometrically to infinite ones."""
    if math.isinf(a) and math.isinf(b):
        return np.concatenate([-np.geomspace(1e8, 1e-8, n), np.geomspace(1e-8, 1e8, n)])
    if math.isinf(b):
        return a + np.geomspace(1e-10 * max(1.0, abs(a)), 1e8 * max(1.0, abs(a)), n)
    if math.isinf(a):
        return b - np.geomspace(1e8 * max(1.0, abs(b)), 1e-10 * max(1.0, abs(b)), n)
    width = b - a
    t = np.geomspace(1e-12, 0.5, n // 2)
    return np.unique(np.concatenate([a + width * t, b - width * t[::-1]]))


class FreeProductEdges:
    """Edges and intervals of :class:`~rmt_init.theory.free.FreeProductLaw` (a mixin)."""

    @cached_property
    def _singular_points(self) -> np.ndarray:
        """Where the Stieltjes transform may be singular on the real axis: 0, the atoms, the critical values
        of the inverse map (the candidate edges of the support)."""
        atom_locations = [loc for loc, _ in self.atoms]
        return np.array(sorted({x for x in self._critical_values() if x > 0} | {0.0} | set(atom_locations)))

    @cached_property
    def _geometry(self) -> tuple[tuple[tuple[float, float], ...], tuple[float, float]]:
        """(intervals of the continuous part, support)."""
        self._require_density()
        atom_locations = [loc for loc, _ in self.atoms]
        if self.continuous_mass <= _ATOM_TOL:
            lo, hi = min(atom_locations), max(atom_locations)
            return (), (lo, hi)
        self._require_float_range()
        edges = list(self._singular_points)
        top = edges[-1]
        probes_top = [top * 1.5 + 1.0] if top > 0 else [1.0]
        candidates = edges + probes_top
        intervals: list[list[float]] = []
        for a, b in zip(candidates[:-1], candidates[1:]):
            mids = a + (b - a) * np.array([0.25, 0.5, 0.75])
            if np.any(-np.sin(self._solve(mids).imag) > 1e-10):
                if intervals and intervals[-1][1] == a:
                    intervals[-1][1] = b
                else:
                    intervals.append([a, b])
        if not intervals:
            raise RuntimeError(f"{self!r}: no interval with positive density was found")
        if intervals[-1][1] == candidates[-1]:
            raise RuntimeError(f"{self!r}: the density does not vanish above the last edge {top:g}")
        result = tuple((float(a), float(b)) for a, b in intervals)
        lo = min([result[0][0]] + atom_locations)
        hi = max([result[-1][1]] + atom_locations)
        return result, (lo, hi)

    @property
    def intervals(self) -> tuple[tuple[float, float], ...]:
        return self._geometry[0]

    @property
    def support(self) -> tuple[float, float]:
        return self._geometry[1]

    # ------------------------------------------------------------------ edges
    def _real_log_chi_slope(self, w: float) -> tuple[float, float]:
        """(log χ(w), d log χ/dw) on the real axis, the numerical factors solved for real u."""
        value, slope = self._real_log_chi_slopes(np.array([float(w)]))
        if not (np.isfinite(value[0]) and np.isfinite(slope[0])):
            raise ValueError(f"no real branch of log χ at w = {w!r}")
        return float(value[0]), float(slope[0])

    def _real_log_chi_slopes(self, w: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Vectorised (log χ(w), d log χ/dw) on the real axis (NaN where a real inverse is missing)."""
        w = np.asarray(w, float)
        t = np.log((1.0 + w).astype(complex))
        taus = []
        for term in self.numerical:
            u = _real_inverse_array(term.factor, float(term.scale) * w)
            taus.append(np.log(np.where(np.isfinite(u), u, np.nan).astype(complex)))
        with np.errstate(all="ignore"):
            # a factor's non-finite ψ at its real inverse (a finite u) is its failure, not "no real branch" (the edge
            # search skips NaN slopes): FloatingPointError, as in _real_inverse_array
            outer, self._psi_watch = self._psi_watch, []  # (restored after: a solve's retry may be watching)
            try:
                value, slope, extras = self._log_chi(t, taus)
                watch = self._psi_watch
            finally:
                self._psi_watch = outer
            if watch:
                factor, u = watch[0]
                raise FloatingPointError(
                    f"{self!r}: the factor {factor!r} returned a non-finite ψ at the real u = {u.real!r} on its real "
                    "branch; the edges of the support cannot be found without it"
                )
            total = slope
            for rho, u_dpsi, s_opw, k, _ in extras:
                total = total + k * s_opw / u_dpsi
            return value.real, (total / (1.0 + w)).real

    def _admissible_segments(self) -> list[tuple[float, float]]:
        points = {0.0, -1.0}
        for t in self.rational:
            points.update(x / float(t.scale) for x in t.factor.real_singularities())
        floor = -math.inf
        for t in self.numerical:
            floor = max(floor, -(1.0 - t.factor.mass_at_zero) / float(t.scale))
        cuts = sorted(p for p in points if p > floor) if floor > -math.inf else sorted(points)
        bounds = ([floor] if floor > -math.inf else [-math.inf]) + cuts + [math.inf]
        return [(a, b) for a, b in zip(bounds[:-1], bounds[1:]) if b > a]

    def _critical_values(self) -> list[float]:
        """z = 1/χ(w) at the real critical points of log χ (candidate edges of the support)."""
        values = []
        for a, b in self._admissible_segments():
            grid = _segment_grid(a, b)
            slopes = self._real_log_chi_slopes(grid)[1]
            for i in range(len(grid) - 1):
                s0, s1 = slopes[i], slopes[i + 1]
                if np.isfinite(s0) and np.isfinite(s1) and s0 * s1 < 0:
                    f0, f1 = self._real_log_chi_slope(grid[i])[1], self._real_log_chi_slope(grid[i + 1])[1]
                    if not f0 * f1 < 0:
                        # a sign change that the pointwise evaluation does not reproduce is rounding: next to w = 0
                        # the slope is ~L/w (depth-1000 erf: ±1e11 at w = −1e−12) and its sign there is noise
                        continue
                    root = brentq(lambda w: self._real_log_chi_slope(w)[1], grid[i], grid[i + 1], xtol=1e-300, rtol=8.9e-16)
                    log_chi, _ = self._real_log_chi_slope(root)
                    chi_sign = self._chi_sign(root)
                    if chi_sign > 0:
                        values.append(math.exp(-log_chi))
        return values

    def _chi_sign(self, w: float) -> float:
        """Sign of χ(w) on the real axis (log χ from principal logs has imaginary part 0 or ±π)."""
        t = np.array([np.log(complex(1.0 + w))])
        taus = [np.array([np.log(complex(term.factor.real_inverse(float(term.scale) * w)))]) for term in self.numerical]
        value, _, _ = self._log_chi(t, taus)
        return 1.0 if math.cos(value[0].imag) > 0 else -1.0
