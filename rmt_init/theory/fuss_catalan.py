"""Fuss–Catalan laws: squared singular values of a product of square Gaussian matrices.

For X = G_1 ⋯ G_s with independent N×N Gaussian G_i of entry variance 1/N, the eigenvalues of X Xᵀ
converge (N → ∞) to the Fuss–Catalan law of order s (Penson & Życzkowski 2011, PRE 83, 061118,
arXiv 1103.3453; Alexeev, Götze & Tikhomirov 2010, arXiv 1012.2586): support [0, x_e] with
x_e = (s+1)^{s+1}/s^s, raw moments the Fuss–Catalan numbers C((s+1)k, k)/(sk+1).

Parametrisation used by the fast path (Haagerup & Möller 2012, arXiv 1211.4457, Prop. 5; Neuschel
2014, arXiv 1311.0365; Liu, Song & Wang 2011): for φ ∈ (0, π/(s+1)),

    x(φ) = sin^{s+1}((s+1)φ) / (sin φ · sin^s(sφ)),        (decreasing: x(0+) = x_e, x(π/(s+1)−) = 0)
    ρ(x(φ)) = sin²φ · sin^{s−1}(sφ) / (π sin^s((s+1)φ)).

Distribution function (derived here: the moment series B(u) = Σ m_k u^k solves B = 1 + u B^{s+1}
(Młotkowski 2010); on the support B = e^{iφ} sin((s+1)φ)/sin(sφ), and F(x) = −Im[sB − log(B − 1)]/π
up to a constant; checked against quadrature of ρ to 1e-25 for s ≤ 400):

    F(x(φ)) = 1 − (s+1)φ/π + s·x·ρ(x),      1 − F(x(φ)) = (s+1)φ/π · (1 − exp E(φ)),
    E(φ) = log sinc φ + log sinc((s+1)φ) − log sinc(sφ).

Both forms are sums of positive terms (cdf near 0) or free of cancellation (sf near x_e), so cdf and
sf keep full relative accuracy in their tails.

Log-scale view (``law.log_law()``, the law of ln λ): at depth s the λ of a quantile q near the hard
edge is ≈ e^{(s+1) ln q}, below the float range for s ≥ 100 and q ≤ 1e−3 (``fuss_catalan(100).ppf(1e-6)``
is 0.0). The parametrisation never needs λ itself: ln x(φ), F, 1 − F and x·ρ(x) = sin((s+1)φ) sin φ /
(π sin(sφ)) are all formed from the sines, so the cdf, sf, density, quantiles and samples of ln λ are
closed form at every depth ≤ 10⁶. Below u = 1 − φ(s+1)/π = 1e−280 the hard-edge asymptotics take over:
ln x = (s+1) ln u + C + O(u), F = u·(A + O(u)), x·ρ = u·(B + O(u)), so ln F and ln(xρ) are linear in
ln x with slope 1/(s+1), exact in float64. E[ln λ] = −s.

Evaluation methods for the density (``pdf(x, method=...)``):

* ``"fast"`` (default): vectorised numpy. With t = φ(s+1)/π, the equation x(φ) = x is solved for
  log t near the soft edge (x ≥ x(φ at t=½)) and for log(1−t) near the hard edge, where it is almost
  linear, by a safeguarded (bracketed) Newton iteration started from a tabulated inverse; near the
  soft edge the residual is written as log x_e − log x(φ) = −[(s+1) log sinc((s+1)φ) − log sinc φ
  − s log sinc(sφ)] and x_e is carried as a double-double, so the density keeps its relative
  accuracy within a few ulps of the edge. Everything is done in log space: finite up to depth 10⁴.
* ``"exact"``: the same parametrisation solved with mpmath at ``dps`` digits (any depth).
* ``"meijerg"``: Penson & Życzkowski's Meijer G form through ``mpmath.meijerg`` at ``dps`` digits:

      ρ(x) = (2π)^{−1/2} (s+1)^{−s−1/2} s^{s−3/2} G^{s,0}_{s,s}(η x | a ; b),  η = s^s/(s+1)^{s+1},
      a_i = (i+1−s)/s,  b_j = (j−1−s)/(s+1)   (i, j = 1..s).

  An independent reference, but mpmath's Meijer G takes seconds per point near the soft edge at
  depth ≥ 10 and did not finish in 20 s per point at depth 100: use it for small depths.

Checked values: s = 2, ρ(1/2) = 1/π; s = 3, ρ(1) = 0.1368778, ρ(3) = 0.04469639.
"""
from __future__ import annotations

import math
from functools import cached_property, wraps

import mpmath
import numpy as np
from scipy.special import gammaln

from .._validate import check_int
from ._special import log_sinc, log_sinc_and_cot
from .laws import SpectralLaw

__all__ = ["FussCatalan", "fuss_catalan"]

#: largest depth accepted: the fast path's relative error grows like ε·s on the soft side (measured
#: against mpmath: 5e−12 at s = 10⁶, 5e−10 at s = 10⁷); beyond 10⁶ it is refused rather than degraded
MAX_DEPTH = 10**6
_TABLE_SIZE = 8193
_SOFT_TABLE_MIN = 1e-10  # smallest t tabulated near the soft edge (x_e − x ≈ 1e-19 x_e)
_HARD_TABLE_MIN = 1e-30  # smallest 1 − t tabulated near the hard edge
_MAX_ITERATIONS = 100
_NEWTON_TOL = 1e-9
#: below u = 1 − t = _U_ANCHOR the hard-edge relations are used in closed form (see _hard_anchor)
_U_ANCHOR = 1e-280  # a Newton step below this (in log t) leaves an error of order its square


#: points per block: pdf/cdf/ppf run on blocks of this size, whose Newton temporaries (~40 arrays) stay in cache, so
#: the cost per point is flat in the array's size (one call on 10⁷ points was 2.2× slower per point than ten on 10⁶)
_BLOCK = 1 << 14
_FLOAT_MAX = float(np.finfo(float).max)


def _blockwise(method):
    """Apply an elementwise ``method(self, x)`` to ``x`` in consecutive blocks of ``_BLOCK`` points."""

    @wraps(method)
    def in_blocks(self, x: np.ndarray) -> np.ndarray:
        if x.size <= _BLOCK:
            return method(self, x)
        flat = x.reshape(-1)
        out = np.empty(flat.shape)
        for start in range(0, flat.size, _BLOCK):
            out[start : start + _BLOCK] = method(self, flat[start : start + _BLOCK])
        return out.reshape(x.shape)

    return in_blocks


def _safeguarded_newton(func, v: np.ndarray, lo: np.ndarray, hi: np.ndarray) -> np.ndarray:
    """Solve func(v) = 0 for increasing func on brackets [lo, hi], elementwise (rtsafe).

    ``func(v, index)`` returns (residual, derivative) at the points ``index`` of the arrays. A Newton
    step is taken when it stays inside the bracket, a bisection step otherwise; the bracket shrinks
    with the sign of each residual. A point is done once its Newton step is below ``_NEWTON_TOL``
    (the error left is then of the order of the step squared).
    """
    if v.size == 0:
        return v.copy()
    # The first iteration takes every point through a slice (no gathers: on 10³ points the index
    # bookkeeping costs as much as the arithmetic) and only reads the caller's arrays: its brackets and
    # iterates are fresh arrays, which later iterations (over the points not yet converged) update in place.
    # Most calls end after it, without copying anything.
    active: slice | np.ndarray = slice(None)
    for _ in range(_MAX_ITERATIONS):
        va = v[active]
        r, dr = func(va, active)
        lo_a = np.where(r < 0, va, lo[active])
        hi_a = np.where(r > 0, va, hi[active])
        with np.errstate(divide="ignore", invalid="ignore"):
            newton = va - r / dr
        ok = np.isfinite(newton) & (newton >= lo_a) & (newton <= hi_a)
        done = (ok & (np.abs(newton - va) <= _NEWTON_TOL)) | (r == 0)
        done |= hi_a - lo_a <= 4e-16 * np.maximum(1.0, np.abs(va))
        step = np.where(ok, newton, 0.5 * (lo_a + hi_a))
        if isinstance(active, slice):
            v, lo, hi = step, lo_a, hi_a  # fresh full-size arrays: ours from here on
        else:
            v[active], lo[active], hi[active] = step, lo_a, hi_a
        if done.all():
            break
        active = (np.arange(v.size) if isinstance(active, slice) else active)[~done]
    return v


class _InverseTable:
    """y(x) from samples (x_k, y_k, dy/dx at x_k) with x increasing: a cubic Hermite interpolant.

    Below the table y is extrapolated linearly with dx/dy = ``slope`` (the exact asymptotic slope of
    the log-log relation). Calling it returns (guess, lo, hi): the interpolated y and a bracket one
    table cell wider than the cell of the target on each side.

    The interpolant is stored per cell as a cubic in ``d = x − x_k`` (coefficients computed once), indexed
    by ``searchsorted``'s answer ``j`` directly: ``j = 0`` is the linear extrapolation below the table,
    ``j = n`` the constant above it, and the brackets are tabulated per ``j`` as well, so a call costs one
    search, four gathers and a Horner step (before: ~35 array operations, a quarter of the density's
    cost on 10³ points).
    """

    def __init__(self, xs: np.ndarray, ys: np.ndarray, dydx: np.ndarray, slope: float) -> None:
        self.xs, self.ys, self.dydx, self.slope = xs, ys, dydx, slope
        n = len(xs)
        h = np.diff(xs)
        dy = np.diff(ys)
        m0, m1 = dydx[:-1], dydx[1:]
        # Hermite cubic on [x_k, x_k + h]: y_k + m0 d + c2 d² + c3 d³
        c2 = (3.0 * dy / h - 2.0 * m0 - m1) / h
        c3 = (m0 + m1 - 2.0 * dy / h) / (h * h)
        # row j ↔ searchsorted(xs, target) = j: cell j − 1 (clipped to the table's cells) for 1 ≤ j ≤ n − 1
        cell = np.clip(np.arange(n + 1) - 1, 0, n - 2)
        self._x0 = xs[cell].copy()
        self._c = np.stack([ys[cell], m0[cell], c2[cell], c3[cell]])
        self._lo = ys[np.maximum(cell - 1, 0)]
        self._hi = ys[np.minimum(cell + 2, n - 1)]
        # below the table (j = 0): ys[0] + (x − xs[0]) / slope; the lower bracket then depends on the guess
        self._c[:, 0] = (ys[0], 1.0 / slope, 0.0, 0.0)
        self._x0[0] = xs[0]
        # above it (j = n, target > xs[-1]): the last value, bracket [ys[n−3], ys[-1] + 1e-3]
        self._c[:, n] = (ys[-1], 0.0, 0.0, 0.0)
        self._x0[n] = xs[-1]
        self._hi[n] = ys[-1] + 1e-3

    def __call__(self, target: np.ndarray):
        j = np.searchsorted(self.xs, target)
        d = target - self._x0[j]
        c0, c1, c2, c3 = self._c[:, j]
        guess = ((c3 * d + c2) * d + c1) * d + c0
        lo = self._lo[j]
        below = j == 0
        if below.any():  # (target ≤ xs[0]; at xs[0] itself the guess is ys[0] either way)
            lo = np.where(below, guess - 1.0 - np.abs(guess), lo)
        return guess, lo, self._hi[j]


class FussCatalan(SpectralLaw):
    """Fuss–Catalan law of order ``depth`` = s (see the module docstring for formulas and sources).

    Squared singular values of G_1⋯G_s, G_i square Gaussian with entry variance 1/N, N → ∞.

    >>> law = FussCatalan(2)
    >>> round(law.pdf(0.5) * math.pi, 12)
    1.0
    >>> law.support, [law.moment(k, method="exact") for k in range(1, 5)]
    ((0.0, 6.75), [1, 3, 12, 55])
    """

    pdf_methods = ("fast", "exact", "meijerg")

    def __init__(self, depth: int) -> None:
        s = check_int("depth", depth, minimum=1)
        if s > MAX_DEPTH:
            raise ValueError(f"depth must be an integer <= {MAX_DEPTH} (and >= 1); got {depth!r}")
        self.depth = s
        with mpmath.workdps(60):
            edge = mpmath.mpf(s + 1) ** (s + 1) / mpmath.mpf(s) ** s
            self._edge_hi = float(edge)
            self._edge_lo = float(edge - self._edge_hi)
            log_edge = mpmath.log(edge)
            self._log_edge_hi = float(log_edge)
            self._log_edge_lo = float(log_edge - self._log_edge_hi)
        self._log_edge = math.log(s + 1) + s * math.log1p(1.0 / s)
        self._phi_max = math.pi / (s + 1)

    def __repr__(self) -> str:
        return f"FussCatalan(depth={self.depth})"

    # ------------------------------------------------------------------ protocol facts
    @property
    def support(self) -> tuple[float, float]:
        """(0, x_e) with x_e = (s+1)^{s+1}/s^s."""
        return (0.0, self._edge_hi)

    # ------------------------------------------------------------------ geometry of the parametrisation
    def _sine_rows(self, t: np.ndarray, u: np.ndarray):
        """φ and the (3, n) array of sin φ, sin((s+1)φ), sin(sφ) (see :meth:`_sines`)."""
        s = self.depth
        phi = self._phi_max * t
        # one (3, n) array filled in place and one sin call instead of three (the per-call overhead dominates
        # on small arrays; np.stack of three temporaries cost as much as the sines on 10³ points)
        angles = np.empty((3,) + t.shape)
        angles[0] = phi
        np.multiply(math.pi, np.minimum(t, u), out=angles[1])
        np.multiply(self._phi_max, np.minimum(s * t, 1.0 + s * u), out=angles[2])
        return phi, np.sin(angles, out=angles)

    def _sines(self, t: np.ndarray, u: np.ndarray):
        """sin φ, sin((s+1)φ), sin(sφ) for φ = πt/(s+1), with u = 1 − t given separately.

        (s+1)φ = πt and π − (s+1)φ = πu; sφ and π − sφ = π(1+su)/(s+1): the smaller argument of
        each complementary pair is used, so each sine keeps its relative accuracy at both ends.
        """
        phi, sines = self._sine_rows(t, u)
        return phi, sines[0], sines[1], sines[2]

    def _log_x_and_rho(self, t: np.ndarray, u: np.ndarray):
        s = self.depth
        log_phi, log_top, log_mid = np.log(self._sine_rows(t, u)[1])
        log_x = (s + 1) * log_top - log_phi - s * log_mid
        log_rho = 2.0 * log_phi + (s - 1) * log_mid - s * log_top - math.log(math.pi)
        return log_x, log_rho

    def _log_x_rho(self, t: np.ndarray, u: np.ndarray) -> np.ndarray:
        """log(x·ρ(x)) = log[sin((s+1)φ) sin φ / (π sin(sφ))] directly: log x and log ρ are each of
        size ~ s·|log u| near the hard edge and would cancel in their sum (1e−9 relative at s = 10⁴)."""
        _, sin_phi, sin_top, sin_mid = self._sines(t, u)
        return np.log(sin_top) + np.log(sin_phi) - np.log(sin_mid) - math.log(math.pi)

    def _soft_deficit(self, t: np.ndarray):
        """D(t) = log x_e − log x(φ) > 0 and dD/dt, without cancellation for small t."""
        s = self.depth
        # the angles πt, φ, sφ in one array: one call of each special function instead of three
        angles = np.empty((3,) + t.shape)
        np.multiply(math.pi, t, out=angles[0])
        phi = np.multiply(self._phi_max, t, out=angles[1])
        np.multiply(s, phi, out=angles[2])
        (log_top, log_phi, log_mid), (cot_top, cot_phi, cot_mid) = log_sinc_and_cot(angles)
        deficit = -((s + 1) * log_top - log_phi - s * log_mid)
        slope = -self._phi_max * ((s + 1) ** 2 * cot_top - cot_phi - s**2 * cot_mid)
        return deficit, slope

    def _hard_log_x(self, u: np.ndarray):
        """log x at t = 1 − u and d log x / d log u (near the hard edge x → 0)."""
        s = self.depth
        t = 1.0 - u
        phi, sines = self._sine_rows(t, u)
        log_phi, log_top, log_mid = np.log(sines, out=sines)
        log_x = (s + 1) * log_top - log_phi - s * log_mid
        angles = np.empty((3,) + u.shape)
        np.multiply(math.pi, u, out=angles[0])
        angles[1] = phi
        np.multiply(self._phi_max, 1.0 + s * u, out=angles[2])
        tan_top, tan_phi, tan_mid = np.tan(angles, out=angles)
        dlog_x = u * self._phi_max * ((s + 1) ** 2 / tan_top + 1.0 / tan_phi - s**2 / tan_mid)
        return log_x, dlog_x

    # ------------------------------------------------------------------ inverse tables (initial guesses)
    @cached_property
    def _tables(self) -> dict:
        """Inverse tables for x → t (soft side), x → u (hard side), q → u and p → t."""
        half = np.array([0.5])
        t = np.geomspace(_SOFT_TABLE_MIN, 0.5, _TABLE_SIZE)
        u = np.geomspace(_HARD_TABLE_MIN, 0.5, _TABLE_SIZE)
        deficit, slope = self._soft_deficit(t)
        log_x_hard, dlog_x_hard = self._hard_log_x(u)
        cdf_hard = self._cdf_from_hard(u)
        x_rho_hard = np.exp(self._log_x_rho(1.0 - u, u))
        sf_soft = self._sf_from_soft(t)
        x_rho_soft = np.exp(self._log_x_rho(t, 1.0 - t))
        return {
            # log D(t) → log t; dlog D/dlog t = t D'/D
            "soft_x": _InverseTable(np.log(deficit), np.log(t), deficit / (t * slope), 2.0),
            # log x(u) → log u
            "hard_x": _InverseTable(log_x_hard, np.log(u), 1.0 / dlog_x_hard, self.depth + 1.0),
            # log F(u) → log u; dF/dlog u = xρ dlog x/dlog u
            "hard_cdf": _InverseTable(np.log(cdf_hard), np.log(u), cdf_hard / (x_rho_hard * dlog_x_hard), 1.0),
            # log(1 − F)(t) → log t; d(1 − F)/dlog t = xρ t D'
            "soft_sf": _InverseTable(np.log(sf_soft), np.log(t), sf_soft / (x_rho_soft * t * slope), 3.0),
            "log_x_mid": float(self._log_x_and_rho(half, half)[0][0]),
            "cdf_mid": float(self._cdf_from_hard(half)[0]),
        }

    def _solve_t(self, x: np.ndarray):
        """(t, u = 1 − t) with x(φ) = x for 0 < x < x_e, each accurate where it is the smaller."""
        log_x = np.log(x)
        soft = log_x >= self._tables["log_x_mid"]
        # log(x / x_e) with x_e as a double-double: the gap x_e − x is exact for x near x_e.
        gap = (self._edge_hi - x[soft]) + self._edge_lo
        return self._solve_t_split(soft, -np.log1p(-gap / self._edge_hi), log_x[~soft])

    def _solve_t_split(self, soft: np.ndarray, deficit: np.ndarray, log_x_hard: np.ndarray):
        """(t, u = 1 − t): from the deficit D = log x_e − log x where ``soft``, from log x elsewhere."""
        t = np.empty(soft.shape)
        u = np.empty(soft.shape)
        if soft.any():
            target = np.log(deficit)

            def residual(v, idx):
                tt = np.exp(v)
                d, slope = self._soft_deficit(tt)
                return np.log(d) - target[idx], tt * slope / d

            ts = np.exp(_safeguarded_newton(residual, *self._tables["soft_x"](target)))
            t[soft], u[soft] = ts, 1.0 - ts
        hard = ~soft
        if hard.any():
            target = log_x_hard

            def residual(w, idx):
                log_xw, dlog = self._hard_log_x(np.exp(w))
                return log_xw - target[idx], dlog

            us = np.exp(_safeguarded_newton(residual, *self._tables["hard_x"](target)))
            t[hard], u[hard] = 1.0 - us, us
        return t, u

    # ------------------------------------------------------------------ density
    def _pdf(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore"):
            return np.minimum(np.exp(self._logpdf(x)), _FLOAT_MAX)  # (a constant: np.finfo costs µs per call)

    @_blockwise
    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        out = np.full(x.shape, -np.inf)
        # Points between the true edge and its double rounding carry no mass.
        inside = ((self._edge_hi - x) + self._edge_lo) > 0
        t, u = self._solve_t(x[inside])
        log_phi, log_top, log_mid = np.log(self._sine_rows(t, u)[1])  # log ρ alone (log x is not needed here)
        s = self.depth
        out[inside] = 2.0 * log_phi + (s - 1) * log_mid - s * log_top - math.log(math.pi)
        return out

    def _pdf_exact(self, x: np.ndarray, dps: int = 40) -> np.ndarray:
        """Density from the parametrisation solved with mpmath at ``dps`` digits, rounded to float."""
        dps = check_int("dps", dps, minimum=15)
        t_fast, u_fast = self._solve_t(x)
        return np.array(
            [float(self.pdf_mp(xi, dps=dps, hint=(ti, ui))) for xi, ti, ui in zip(x, t_fast, u_fast)]
        )

    def _pdf_meijerg(self, x: np.ndarray, dps: int = 30) -> np.ndarray:
        """Density from Penson & Życzkowski's Meijer G form (mpmath), rounded to float."""
        dps = check_int("dps", dps, minimum=15)
        return np.array([float(self.pdf_meijerg_mp(xi, dps=dps)) for xi in x])

    def pdf_mp(self, x: float, dps: int = 40, hint: tuple[float, float] | None = None) -> mpmath.mpf:
        """Density at one point as an mpmath number with ``dps`` digits (parametrisation, mpmath).

        Solves log x(φ) = log x by a bracketed mpmath root finder — for log t = log(φ(s+1)/π) near
        the soft edge, for log(1 − t) near the hard edge, as the fast path does — started from
        ``hint = (t, 1 − t)`` when given, then evaluates ρ(x(φ)). Returns 0 outside the open support.
        """
        s = self.depth
        with mpmath.workdps(dps + 10):
            xm = mpmath.mpf(x)
            edge = mpmath.mpf(s + 1) ** (s + 1) / mpmath.mpf(s) ** s
            if not 0 < xm < edge:
                return mpmath.mpf(0)
            phi_max = mpmath.pi / (s + 1)

            def sines(t, u):
                return (
                    mpmath.sin(phi_max * t),
                    mpmath.sin(mpmath.pi * min(t, u)),
                    mpmath.sin(phi_max * min(s * t, 1 + s * u)),
                )

            def log_x(t, u):
                sin_phi, sin_top, sin_mid = sines(t, u)
                return (s + 1) * mpmath.log(sin_top) - mpmath.log(sin_phi) - s * mpmath.log(sin_mid)

            half = mpmath.mpf(1) / 2
            soft = log_x(half, half) <= mpmath.log(xm)
            if soft:  # unknown v = log t; log x decreases with t, so negate for an increasing function
                def g(v):
                    t = mpmath.exp(v)
                    return mpmath.log(xm) - log_x(t, 1 - t)
            else:  # unknown v = log u; log x increases with u
                def g(v):
                    u = mpmath.exp(v)
                    return log_x(1 - u, u) - mpmath.log(xm)
            guess = None if hint is None else (hint[0] if soft else hint[1])
            v = self._mp_increasing_root(g, guess, dps)
            t, u = (mpmath.exp(v), 1 - mpmath.exp(v)) if soft else (1 - mpmath.exp(v), mpmath.exp(v))
            sin_phi, sin_top, sin_mid = sines(t, u)
            return +(sin_phi**2 * sin_mid ** (s - 1) / (mpmath.pi * sin_top**s))

    @staticmethod
    def _mp_increasing_root(g, guess: float | None, dps: int):
        """Root of an increasing g on (−∞, log ½]: bracket around log(guess), else bisect widely."""
        lo = hi = None
        if guess is not None and 0.0 < guess <= 0.5:
            centre = mpmath.log(mpmath.mpf(guess))
            for width in (1e-8, 1e-5, 1e-2):
                a, b = centre - width, min(centre + width, mpmath.log(mpmath.mpf(1) / 2))
                if g(a) < 0 < g(b):
                    lo, hi = a, b
                    break
        if lo is None:
            lo, hi = -mpmath.mpf(10) * (dps + 400), mpmath.log(mpmath.mpf(1) / 2)
            for _ in range(60):
                mid = (lo + hi) / 2
                if g(mid) < 0:
                    lo = mid
                else:
                    hi = mid
        return mpmath.findroot(g, (lo, hi), solver="anderson")

    def pdf_meijerg_mp(self, x: float, dps: int = 30) -> mpmath.mpf:
        """Density at one point from the Meijer G form (Penson & Życzkowski 2011), as an mpmath number."""
        s = self.depth
        with mpmath.workdps(dps):
            xm = mpmath.mpf(x)
            eta = mpmath.mpf(s) ** s / mpmath.mpf(s + 1) ** (s + 1)
            if not 0 < xm * eta < 1:
                return mpmath.mpf(0)
            a = [mpmath.mpf(i + 1 - s) / s for i in range(1, s + 1)]
            b = [mpmath.mpf(j - 1 - s) / (s + 1) for j in range(1, s + 1)]
            prefactor = (
                (2 * mpmath.pi) ** mpmath.mpf(-0.5)
                * mpmath.mpf(s + 1) ** (-s - mpmath.mpf(0.5))
                * mpmath.mpf(s) ** (s - mpmath.mpf(1.5))
            )
            return prefactor * mpmath.meijerg([[], a], [b, []], eta * xm)

    # ------------------------------------------------------------------ distribution function
    def _cdf_from_hard(self, u: np.ndarray) -> np.ndarray:
        """F = u + s·x·ρ(x) at t = 1 − u (both terms positive: full relative accuracy as x → 0)."""
        return u + self.depth * np.exp(self._log_x_rho(1.0 - u, u))

    def _sf_from_soft(self, t: np.ndarray, u: np.ndarray | None = None) -> np.ndarray:
        """1 − F = −t·expm1(E(φ)), E = log sinc φ + log sinc((s+1)φ) − log sinc(sφ), at φ = πt/(s+1).

        For t ≤ ½ through the cancellation-free ``log_sinc`` (E → 0 as t → 0). For t > ½, given the
        exact complement u = 1 − t, the sines come from the complementary angles (as in ``_sines``):
        sin(πt) formed directly loses a relative ε/u, which at depth 10⁴ reached 1e−12 in 1 − F.
        """
        phi = self._phi_max * t
        exponent = log_sinc(phi) + log_sinc(math.pi * t) - log_sinc(self.depth * phi)
        if u is not None:
            far = t > 0.5
            if far.any():
                _, sin_phi, sin_top, sin_mid = self._sines(t[far], u[far])
                ph = phi[far]
                exponent[far] = (
                    np.log(sin_phi / ph) + np.log(sin_top / (math.pi * t[far])) - np.log(sin_mid / (self.depth * ph))
                )
        return -t * np.expm1(exponent)

    def _split(self, x: np.ndarray):
        lo, hi = self.support
        inside = (x > lo) & (x < hi) & (((self._edge_hi - x) + self._edge_lo) > 0)
        t = np.full(x.shape, np.nan)
        u = np.full(x.shape, np.nan)
        t[inside], u[inside] = self._solve_t(x[inside])
        return inside, t, u

    def _cdf_and_sf(self, t: np.ndarray, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(F, 1 − F) at the parameters (t, u = 1 − t): each from its own positive formula where it is
        ≤ ½, as the complement of the other elsewhere (no cancellation in either tail).

        The choice is made on the value, not on u ≤ ½: for deep laws F(u = ½) is close to 1 (F ≈ 1 −
        2e−4 at s = 10⁴) and 1 − F from the hard side lost 1e−10 relative there.
        """
        cdf = self._cdf_from_hard(u)
        upper = cdf > 0.5
        sf = 1.0 - cdf
        sf[upper] = self._sf_from_soft(t[upper], u[upper])
        cdf[upper] = 1.0 - sf[upper]
        return cdf, sf

    @_blockwise
    def _cdf(self, x: np.ndarray) -> np.ndarray:
        inside, t, u = self._split(x)
        out = np.where(x >= self._edge_hi, 1.0, 0.0)
        out[~inside & (x < self._edge_hi) & (x > 0)] = 1.0  # between the true edge and its rounding
        out[inside] = self._cdf_and_sf(t[inside], u[inside])[0]
        return out

    @_blockwise
    def _sf(self, x: np.ndarray) -> np.ndarray:
        inside, t, u = self._split(x)
        out = np.where(x <= 0, 1.0, 0.0)
        out[inside] = self._cdf_and_sf(t[inside], u[inside])[1]
        return out

    # ------------------------------------------------------------------ quantiles and sampling
    @_blockwise
    def _ppf(self, q: np.ndarray) -> np.ndarray:
        out = np.empty(q.shape)
        lower = q <= self._tables["cdf_mid"]
        out[lower] = self._x_from_cdf(q[lower])
        out[~lower] = self._x_from_sf(1.0 - q[~lower])
        return out

    @_blockwise
    def _isf(self, p: np.ndarray) -> np.ndarray:
        out = np.empty(p.shape)
        upper = p < 1.0 - self._tables["cdf_mid"]
        out[upper] = self._x_from_sf(p[upper])
        lower = ~upper & (p < 1.0)
        uu = self._u_from_log_sf(np.log(p[lower]))
        out[lower] = np.exp(self._log_x_and_rho(1.0 - uu, uu)[0])
        out[p >= 1.0] = 0.0
        return out

    def _x_from_cdf(self, q: np.ndarray) -> np.ndarray:
        """x with F(x) = q ≤ F(mid), solving for log u (u = 1 − t) by safeguarded Newton."""
        out = np.zeros(q.shape)
        positive = q > 0
        if positive.any():
            uu = self._u_from_log_cdf(np.log(q[positive]))
            out[positive] = np.exp(self._log_x_and_rho(1.0 - uu, uu)[0])
        return out

    def _u_from_log_cdf(self, target: np.ndarray) -> np.ndarray:
        """u = 1 − t with log F = target (F ≤ F(mid)), by safeguarded Newton in log u."""

        def residual(w, idx):
            uu = np.exp(w)
            x_rho = np.exp(self._log_x_rho(1.0 - uu, uu))
            cdf = uu + self.depth * x_rho
            _, dlog_x = self._hard_log_x(uu)
            return np.log(cdf) - target[idx], x_rho * dlog_x / cdf

        return np.exp(_safeguarded_newton(residual, *self._tables["hard_cdf"](target)))

    def _u_from_log_sf(self, target: np.ndarray) -> np.ndarray:
        """u = 1 − t with log(1 − F) = target on the hard side (1 − F ≥ 1 − F(mid)), Newton in log u.

        Solving F = 1 − p instead would round 1 − p: a relative error ε/p in p (2e−12 at p = 5e−5).
        """

        def residual(w, idx):
            uu = np.exp(w)
            sf = self._cdf_and_sf(1.0 - uu, uu)[1]
            x_rho = np.exp(self._log_x_rho(1.0 - uu, uu))
            _, dlog_x = self._hard_log_x(uu)
            return target[idx] - np.log(sf), x_rho * dlog_x / sf

        guess, lo, hi = self._tables["hard_cdf"](np.log1p(-np.exp(target)))
        return np.exp(_safeguarded_newton(residual, guess, lo, hi))

    def _x_from_sf(self, p: np.ndarray) -> np.ndarray:
        """x with 1 − F(x) = p < 1 − F(mid), solving for log t by safeguarded Newton."""
        out = np.full(p.shape, self._edge_hi)
        positive = p > 0
        if positive.any():
            out[positive] = self._x_from_deficit(self._deficit_from_log_sf(np.log(p[positive])))
        return out

    def _deficit_from_log_sf(self, target: np.ndarray) -> np.ndarray:
        """D = log x_e − log x with log(1 − F(x)) = target (1 − F < 1 − F(mid)), Newton in log t."""

        def residual(v, idx):
            tt = np.exp(v)
            sf = self._sf_from_soft(tt)
            _, slope = self._soft_deficit(tt)
            x_rho = np.exp(self._log_x_rho(tt, 1.0 - tt))
            return np.log(sf) - target[idx], x_rho * tt * slope / sf

        tt = np.exp(_safeguarded_newton(residual, *self._tables["soft_sf"](target)))
        return self._soft_deficit(tt)[0]

    def _x_from_deficit(self, deficit: np.ndarray) -> np.ndarray:
        """x = x_e·exp(−D) with x_e a double-double; near the edge as x_e + x_e·expm1(−D)."""
        near = deficit < 0.5
        return np.where(
            near,
            self._edge_hi + (self._edge_hi * np.expm1(-deficit) + self._edge_lo * np.exp(-deficit)),
            self._edge_hi * np.exp(-deficit),
        )

    def _sample_uniform(self, u: np.ndarray) -> np.ndarray:
        return self._ppf(u)

    # ------------------------------------------------------------------ log-scale view (t = ln λ)
    @cached_property
    def _hard_anchor(self) -> tuple[float, float, float]:
        """(log x, log F, log xρ) at u = _U_ANCHOR, the start of the hard-edge asymptotics.

        At t = 1 − u with u → 0, from the parametrisation: log x = (s+1) log u + C + O(u), and F = u +
        s·xρ and xρ = sin(πu) sin φ / (π sin(sφ)) are u·(const + O(u)). So below the anchor log F and
        log xρ are log u plus constants and log x is (s+1) log u plus a constant, to a relative O(u)
        ≤ 1e−280: exact in float64. This carries the law below the float range of u itself (where
        x(φ) and F underflow), e.g. ln λ < −(s+1)·745.
        """
        u = np.array([_U_ANCHOR])
        log_x = self._log_x_and_rho(1.0 - u, u)[0]
        return float(log_x[0]), float(np.log(self._cdf_from_hard(u))[0]), float(self._log_x_rho(1.0 - u, u)[0])

    def _log_support(self) -> tuple[float, float]:
        """(−∞, ln x_e), ln x_e correctly rounded (ln of the rounded x_e may differ by an ulp)."""
        return (-math.inf, self._log_edge_hi)

    def _log_split(self, log_x: np.ndarray):
        """For points t = ln λ: masks (inside the support and above the anchor / below it) and (t, u)."""
        deficit = (self._log_edge_hi - log_x) + self._log_edge_lo  # ln x_e − ln λ, x_e a double-double
        inside = (deficit > 0) & (log_x > -np.inf)
        deep = inside & (log_x < self._hard_anchor[0])
        mid = inside & ~deep
        soft = log_x[mid] >= self._tables["log_x_mid"]
        t_par, u_par = self._solve_t_split(soft, deficit[mid][soft], log_x[mid][~soft])
        return inside, deep, mid, t_par, u_par

    def _log_cdf(self, log_x: np.ndarray) -> np.ndarray:
        """P(ln λ ≤ t) in closed form: F = u + s·xρ (hard side), 1 − t·(−expm1 E) (soft side)."""
        inside, deep, mid, t_par, u_par = self._log_split(log_x)
        out = np.where(log_x > 0, 1.0, 0.0)  # outside: 1 above the edge, 0 at t = −∞
        out[np.isnan(log_x)] = np.nan
        out[mid] = self._cdf_and_sf(t_par, u_par)[0]
        log_x0, log_f0, _ = self._hard_anchor
        out[deep] = np.exp(log_f0 + (log_x[deep] - log_x0) / (self.depth + 1))
        return out

    def _log_sf(self, log_x: np.ndarray) -> np.ndarray:
        """P(ln λ > t) in closed form (no cancellation near the soft edge)."""
        inside, deep, mid, t_par, u_par = self._log_split(log_x)
        out = np.where(log_x > 0, 0.0, 1.0)
        out[np.isnan(log_x)] = np.nan
        out[mid] = self._cdf_and_sf(t_par, u_par)[1]
        out[deep] = 1.0  # 1 − F with F < 1e−280
        return out

    def _log_pdf(self, log_x: np.ndarray) -> np.ndarray:
        """Density of ln λ: xρ(x) = sin(πt')·sin φ / (π sin(sφ)) at the solved φ (0 outside)."""
        inside, deep, mid, t_par, u_par = self._log_split(log_x)
        out = np.zeros(log_x.shape)
        out[np.isnan(log_x)] = np.nan
        out[mid] = np.exp(self._log_x_rho(t_par, u_par))
        log_x0, _, log_xrho0 = self._hard_anchor
        out[deep] = np.exp(log_xrho0 + (log_x[deep] - log_x0) / (self.depth + 1))
        return out

    def _log_from_lower(self, q: np.ndarray) -> np.ndarray:
        """ln λ with F(λ) = q ≤ F(mid): Newton in log u, or the hard-edge asymptotics below the anchor."""
        out = np.full(q.shape, -np.inf)
        log_x0, log_f0, _ = self._hard_anchor
        with np.errstate(divide="ignore"):
            log_q = np.log(q)
        deep = (q > 0) & (log_q < log_f0)
        out[deep] = log_x0 + (self.depth + 1) * (log_q[deep] - log_f0)
        mid = (q > 0) & ~deep
        uu = self._u_from_log_cdf(log_q[mid])
        out[mid] = self._log_x_and_rho(1.0 - uu, uu)[0]
        return out

    def _log_from_upper(self, p: np.ndarray) -> np.ndarray:
        """ln λ with 1 − F(λ) = p < 1 − F(mid): ln x_e − D (x_e a double-double)."""
        out = np.full(p.shape, self._log_edge_hi)
        positive = p > 0
        deficit = self._deficit_from_log_sf(np.log(p[positive]))
        out[positive] = (self._log_edge_hi - deficit) + self._log_edge_lo
        return out

    def _log_ppf(self, q: np.ndarray) -> np.ndarray:
        out = np.empty(q.shape)
        lower = q <= self._tables["cdf_mid"]
        out[lower] = self._log_from_lower(q[lower])
        out[~lower] = self._log_from_upper(1.0 - q[~lower])
        return out

    def _log_isf(self, p: np.ndarray) -> np.ndarray:
        out = np.empty(p.shape)
        upper = p < 1.0 - self._tables["cdf_mid"]
        out[upper] = self._log_from_upper(p[upper])
        # 1 − p below ~1e−280 (the anchor) would need p within 1e−280 of 1: only p = 1 itself
        lower = ~upper & (p < 1.0)
        uu = self._u_from_log_sf(np.log(p[lower]))
        out[lower] = self._log_x_and_rho(1.0 - uu, uu)[0]
        out[p >= 1.0] = -np.inf
        return out

    def _log_mean(self) -> float:
        """E[ln λ] = −s."""
        return self.log_moment()

    # ------------------------------------------------------------------ moments
    def _moment_exact(self, order: int) -> int:
        """The Fuss–Catalan number C((s+1)k, k)/(sk+1) (an integer)."""
        s = self.depth
        return math.comb((s + 1) * order, order) // (s * order + 1)

    def _log_moment_float(self, t: float) -> float:
        """ln E[x^t] = lnΓ((s+1)t+1) − lnΓ(t+1) − lnΓ(st+2)."""
        s = self.depth
        return float(gammaln((s + 1) * t + 1) - gammaln(t + 1) - gammaln(s * t + 2))

    @cached_property
    def largest_float_moment_order(self) -> int:
        """The largest integer order whose raw moment is below the float64 maximum (1.8e308).

        E[x^k] grows like x_e^k (ln x_e = (s+1) ln(s+1) − s ln s), so this is ≈ 709.78/ln x_e.
        """
        log_max = math.log(np.finfo(float).max)
        lo, hi = 1, 2
        while self._log_moment_float(hi) <= log_max:
            lo, hi = hi, 2 * hi
        while hi - lo > 1:  # moments increase with the order (x_e > 1)
            mid = (lo + hi) // 2
            lo, hi = (mid, hi) if self._log_moment_float(mid) <= log_max else (lo, mid)
        while float(self._moment_exact(lo)) > np.finfo(float).max:  # pragma: no cover (lnΓ rounding)
            lo -= 1
        return lo

    def _moment(self, order: float) -> float:
        """E[x^t] = Γ((s+1)t+1) / (Γ(t+1) Γ(st+2)) for t > −1/(s+1) (Penson & Życzkowski 2011).

        Orders whose moment exceeds the float range are refused (ValueError stating the largest
        order), before any big-integer arithmetic (C((s+1)k, k) for k = 10¹⁰ would not finish).
        """
        s = self.depth
        if order > 1 and self._log_moment_float(order) > math.log(np.finfo(float).max) + 1e-9 * order:
            raise ValueError(
                f"order must be <= {self.largest_float_moment_order} for {self!r}: the moment of order "
                f"{order!r} is ≈ e^{self._log_moment_float(order):.6g}, beyond the float64 range "
                "(use moment(k, method='exact') for an exact integer)"
            )
        if float(order).is_integer() and order >= 0:
            try:
                return float(self._moment_exact(int(order)))
            except OverflowError:  # within lnΓ's rounding of the float maximum
                raise ValueError(
                    f"order must be <= {self.largest_float_moment_order} for {self!r}: the moment of order "
                    f"{order!r} is beyond the float64 range (use moment(k, method='exact'))"
                ) from None
        if order <= -1.0 / (s + 1):
            raise ValueError(
                f"the moment of order {order!r} of FussCatalan(depth={s}) diverges; "
                f"orders must be > -1/(depth+1) = {-1.0 / (s + 1):.6g}"
            )
        t = float(order)
        return float(np.exp(gammaln((s + 1) * t + 1) - gammaln(t + 1) - gammaln(s * t + 2)))

    def mean(self) -> float:
        """E[λ] = 1."""
        return 1.0

    def var(self) -> float:
        """Var[λ] = s (the second Fuss–Catalan number is s + 1)."""
        return float(self.depth)

    def log_moment(self) -> float:
        """E[log λ] = −s (log-means add under free multiplication; Haagerup & Möller 2012)."""
        return -float(self.depth)


def fuss_catalan(depth: int) -> FussCatalan:
    """Squared-singular-value law of a product of ``depth`` square Gaussian matrices (variance 1/N).

    See :class:`FussCatalan`. Example: ``fuss_catalan(3).support == (0.0, 256/27)``.
    """
    return FussCatalan(depth)

