"""The Marchenko–Pastur law: eigenvalues of W Wᵀ/n for a p×n matrix W with i.i.d. entries.

Marchenko & Pastur (1967, Math. USSR Sbornik 1, 457). For W of shape p×n with i.i.d. entries of mean 0
and variance v, and ratio c = p/n fixed as n → ∞, the eigenvalues of W Wᵀ/n follow

    ρ(x) = √((x₊ − x)(x − x₋)) / (2π v c x)  on [x₋, x₊],   x± = v(1 ± √c)²,

plus an atom of mass 1 − 1/c at 0 when c > 1 (W Wᵀ then has rank n < p). Raw moments (Narayana
polynomials): m_k = v^k Σ_{j=0}^{k−1} N(k, j+1) c^j with N(k, j) = C(k, j) C(k, j−1)/k, e.g.
m₁ = v, m₂ = v²(1 + c), m₃ = v³(1 + 3c + c²). S-transform: S(w) = 1/(v(1 + c w)).

Distribution function (derived here with x = v(1 + c − 2√c cos θ), θ ∈ [0, π]): the continuous part
has mass

    F_c(θ) = [2√c sin θ + (1 + c) θ − 2|1 − c| arctan(r tan(θ/2))] / (2π c),   r = (1 + √c)/|1 − √c|,

below x (F_c(π) = min(1, 1/c)), with θ = 2 arctan2(√(x − x₋), √(x₊ − x)) computed without
cancellation at both edges. Near a soft lower edge (c ≠ 1) the three terms cancel to O(θ³), so where
they cancel by more than a factor 100 (and for π − θ < 0.1 in the sf) the tail mass is integrated
instead, in θ, where the integrand dF_c/dθ = (2/π) sin²θ · v/x(θ) is smooth.
"""
from __future__ import annotations

import math
from fractions import Fraction

import numpy as np

from .._validate import check_real
from .laws import _LOG_TINY, MAX_EXACT_ORDER, Atom, SpectralLaw, _tanhsinh

__all__ = ["MarchenkoPastur", "marchenko_pastur"]

_TAIL_THETA = 0.1
_MAX_CANCELLATION = 100.0
_INVERSE_GRID = 4097


class MarchenkoPastur(SpectralLaw):
    """Marchenko–Pastur law of ratio c = p/n and entry variance v (see the module docstring).

    >>> law = MarchenkoPastur(ratio=0.5)
    >>> law.support, law.moment(2), law.atoms
    ((0.08578643762690492, 2.914213562373095), 1.5, ())
    >>> MarchenkoPastur(ratio=4).atoms
    ((0.0, 0.75),)
    """

    def __init__(self, ratio: float, variance: float = 1.0) -> None:
        self.ratio = check_real("ratio", ratio, low=0.0, low_inclusive=False)
        self.variance = check_real("variance", variance, low=0.0, low_inclusive=False)
        c, v = self.ratio, self.variance
        root = math.sqrt(c)
        self._lower = v * (1.0 - root) ** 2
        self._upper = v * (1.0 + root) ** 2

    def __repr__(self) -> str:
        return f"MarchenkoPastur(ratio={self.ratio!r}, variance={self.variance!r})"

    # ------------------------------------------------------------------ protocol facts
    @property
    def support(self) -> tuple[float, float]:
        lo = 0.0 if self.ratio >= 1.0 else self._lower
        return (lo, self._upper)

    @property
    def atoms(self) -> tuple[Atom, ...]:
        if self.ratio > 1.0:
            return ((0.0, 1.0 - 1.0 / self.ratio),)
        return ()

    @property
    def intervals(self) -> tuple[tuple[float, float], ...]:
        return ((self._lower, self._upper),)

    # ------------------------------------------------------------------ density
    def _pdf(self, x: np.ndarray) -> np.ndarray:
        c, v = self.ratio, self.variance
        # factored so that neither (x₊ − x)(x − x₋) nor v·c·x overflows (variance 1e300 gave NaN)
        return (np.sqrt(self._upper - x) / x) * (np.sqrt(x - self._lower) / (2.0 * math.pi * v * c))

    # ------------------------------------------------------------------ distribution function
    def _theta(self, x: np.ndarray) -> np.ndarray:
        return 2.0 * np.arctan2(np.sqrt(np.maximum(x - self._lower, 0.0)), np.sqrt(np.maximum(self._upper - x, 0.0)))

    def _continuous_below_theta(self, theta: np.ndarray) -> np.ndarray:
        """F_c(θ): continuous mass below x(θ) (closed form)."""
        return self._closed_form_terms(theta)[0]

    def _closed_form_terms(self, theta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """F_c(θ) and the sum of the absolute values of its terms (their ratio measures cancellation).

        2 arctan(r tan(θ/2)) = θ + 2 arctan δ with δ = (r − 1)T/(1 + rT²), T = tan(θ/2), folds the
        terms linear in θ together, so that only O(√c) terms cancel (not O(1) ones) for small c.
        """
        c = self.ratio
        root = math.sqrt(c)
        # 1 + c − |1 − c| = 2 min(1, c); r − 1 = 2 min(1, √c)/|1 − √c|, both formed without cancellation
        first = 2.0 * root * np.sin(theta)
        second = 2.0 * min(1.0, c) * theta
        third = np.zeros_like(theta)
        if c != 1.0:
            r_minus_1 = 2.0 * min(1.0, root) / abs(1.0 - root)
            half_tan = np.tan(0.5 * theta)
            delta = r_minus_1 * half_tan / (1.0 + (1.0 + r_minus_1) * half_tan**2)
            third = 2.0 * abs(1.0 - c) * np.arctan(delta)
        scale = 2.0 * math.pi * c
        return (first + second - third) / scale, (np.abs(first) + second + third) / scale

    def _angle_density(self, angle: np.ndarray, from_top: bool) -> np.ndarray:
        """dF_c/dθ = (2/π) sin²θ · v / x(θ), at θ = angle (from the bottom) or θ = π − angle."""
        width = self._upper - self._lower
        half = np.sin(0.5 * angle) ** 2
        x = self._upper - width * half if from_top else self._lower + width * half
        return (2.0 / math.pi) * np.sin(angle) ** 2 * self.variance / x

    def _tail_mass(self, angle: np.ndarray, from_top: bool) -> np.ndarray:
        """Continuous mass within ``angle`` of the bottom (or top) edge, by quadrature in θ.

        In θ the integrand is smooth and the end point is resolved to full relative precision,
        unlike a quadrature in x on an interval of a few ulps of x₊.
        """
        return _tanhsinh(lambda t: self._angle_density(t, from_top), np.zeros(angle.shape), angle)

    def _interval_cdf(self, i: int, x: np.ndarray) -> np.ndarray:
        theta = self._theta(x)
        out, magnitude = self._closed_form_terms(theta)
        # Near a soft lower edge the closed form cancels to O(θ³): integrate where it loses > 2 digits.
        tail = magnitude > _MAX_CANCELLATION * np.abs(out)
        if tail.any():
            out[tail] = self._tail_mass(theta[tail], from_top=False)
        return out

    def _interval_sf(self, i: int, x: np.ndarray) -> np.ndarray:
        theta = self._theta(x)
        out = self.continuous_mass - self._continuous_below_theta(theta)
        # π − θ computed directly (no cancellation) for the points near the top edge
        complement = 2.0 * np.arctan2(
            np.sqrt(np.maximum(self._upper - x, 0.0)), np.sqrt(np.maximum(x - self._lower, 0.0))
        )
        tail = complement < _TAIL_THETA
        if tail.any():
            out[tail] = self._tail_mass(complement[tail], from_top=True)
        return out

    # ------------------------------------------------------------------ quantiles
    def _theta_from_mass(self, mass: np.ndarray) -> np.ndarray:
        """θ with F_c(θ) = mass (0 ≤ mass ≤ continuous mass): table guess, then safeguarded Newton.

        dF_c/dθ = (2/π) sin²θ · v / x(θ) (from ρ dx/dθ).
        """
        grid = np.linspace(0.0, math.pi, _INVERSE_GRID)
        values = self._continuous_below_theta(grid)
        k = np.clip(np.searchsorted(values, mass) - 1, 0, _INVERSE_GRID - 2)
        lo, hi = grid[k].copy(), grid[k + 1].copy()
        theta = np.interp(mass, values, grid)
        v = self.variance
        active = np.arange(mass.size)  # only the points not yet converged are iterated (10⁶ samples: 9.6 s before)
        for _ in range(60):
            th = theta[active]
            f = self._continuous_below_theta(th) - mass[active]
            la = np.where(f < 0, th, lo[active])
            ha = np.where(f > 0, th, hi[active])
            lo[active], hi[active] = la, ha
            x = self._x_from_theta(th)  # v(1 + c − 2√c cos θ) cancels for c ≈ 1, θ → 0
            slope = (2.0 / math.pi) * np.sin(th) ** 2 * v / x
            with np.errstate(divide="ignore", invalid="ignore"):
                newton = th - f / slope
            ok = np.isfinite(newton) & (newton >= la) & (newton <= ha)
            new = np.where(ok, newton, 0.5 * (la + ha))
            theta[active] = new
            active = active[np.abs(new - th) > 1e-15 * np.maximum(th, 1e-300)]
            if active.size == 0:
                break
        return theta

    def _x_from_theta(self, theta: np.ndarray) -> np.ndarray:
        """x(θ) = x₋ + (x₊ − x₋) sin²(θ/2): no cancellation near either edge."""
        return self._lower + (self._upper - self._lower) * np.sin(0.5 * theta) ** 2

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        atom = 1.0 - self.continuous_mass
        out = np.zeros(q.shape)
        continuous = q > atom
        mass = np.minimum(q[continuous] - atom, self.continuous_mass)
        out[continuous] = self._x_from_theta(self._theta_from_mass(mass))
        if atom == 0.0:
            out[q == 0.0] = self._lower
        return out

    def _isf(self, p: np.ndarray) -> np.ndarray:
        return self._ppf(1.0 - p)

    # ------------------------------------------------------------------ log-scale view (t = ln λ)
    # For ratio = 1 the continuous part reaches the hard edge 0 (ρ ~ x^{−1/2}); there, with
    # x = 4v sin²(θ/2) and F = (sin θ + θ)/π, the log view is closed form below the float range:
    # θ = 2 arcsin(e^{(t − ln 4v)/2}), e^t ρ(e^t) = √((4v − x) x)/(2πv), and for q < 1e−100 (θ < 2e−100,
    # where sin θ = θ to O(θ²)) the quantile is t = ln 4v + 2 ln(πq/4). Other ratios have no continuous
    # mass near 0: the defaults through λ = e^t serve.
    _LOG_DEEP_Q = 1e-100

    def _hard_edge_log(self, t: np.ndarray) -> np.ndarray:
        """Points of t below the float range (where the ratio-1 hard edge needs the closed form)."""
        return (t < _LOG_TINY) & (t > -np.inf) if self.ratio == 1.0 else np.zeros(t.shape, bool)

    def _log_hard_cdf(self, t: np.ndarray) -> np.ndarray:
        theta = 2.0 * np.arcsin(np.exp(0.5 * (t - math.log(4.0 * self.variance))))
        return (np.sin(theta) + theta) / math.pi

    def _log_cdf(self, t: np.ndarray) -> np.ndarray:
        low = self._hard_edge_log(t)
        out = np.empty(t.shape)
        out[~low] = super()._log_cdf(t[~low])
        out[low] = self._log_hard_cdf(t[low])
        return out

    def _log_sf(self, t: np.ndarray) -> np.ndarray:
        low = self._hard_edge_log(t)
        out = np.empty(t.shape)
        out[~low] = super()._log_sf(t[~low])
        out[low] = 1.0 - self._log_hard_cdf(t[low])
        return out

    def _log_pdf(self, t: np.ndarray) -> np.ndarray:
        low = self._hard_edge_log(t)
        out = np.empty(t.shape)
        out[~low] = super()._log_pdf(t[~low])
        log_4v = math.log(4.0 * self.variance)
        tl = t[low]
        out[low] = np.exp(0.5 * (tl + log_4v + np.log1p(-np.exp(tl - log_4v)))) / (2.0 * math.pi * self.variance)
        return out

    def _log_ppf(self, q: np.ndarray) -> np.ndarray:
        if self.ratio != 1.0:
            return super()._log_ppf(q)
        deep = (q > 0) & (q < self._LOG_DEEP_Q)
        out = np.empty(q.shape)
        out[~deep] = super()._log_ppf(q[~deep])
        out[deep] = math.log(4.0 * self.variance) + 2.0 * np.log(0.25 * math.pi * q[deep])
        return out

    # ------------------------------------------------------------------ moments
    def _moment_exact(self, order: int) -> Fraction:
        """v^k Σ_{j=0}^{k−1} N(k, j+1) c^j (Narayana), exact in the binary values of c and v.

        With c = a/2^e (a float is a dyadic rational) the sum times 2^{e(k−1)} is an integer, summed by
        Horner's rule in integers; N(k, j+2) = N(k, j+1)(k−j)(k−j−1)/((j+1)(j+2)). Summing Fractions
        took 5 s at order 1024 (and did not finish at 10⁴); this takes 0.3 s at order 4096.
        """
        k = order
        c, v = Fraction(self.ratio), Fraction(self.variance)
        if k == 0:
            return Fraction(1)
        a, b = c.numerator, c.denominator
        e = b.bit_length() - 1  # b = 2^e
        narayana = [1]
        for j in range(k - 1):
            narayana.append(narayana[-1] * (k - j) * (k - j - 1) // ((j + 1) * (j + 2)))
        acc = 0
        for j in range(k - 1, -1, -1):
            acc = acc * a + (narayana[j] << (e * (k - 1 - j)))
        return v**k * Fraction(acc, 1 << (e * (k - 1)))

    def _moment(self, order: float) -> float:
        if float(order).is_integer() and order >= 0:
            if order > MAX_EXACT_ORDER:
                raise ValueError(
                    f"order must be <= {MAX_EXACT_ORDER} (the largest supported integer order of {self!r}); "
                    f"got {order!r}"
                )
            return float(self._moment_exact(int(order)))
        diverges = (self.ratio == 1.0 and order <= -0.5) or (self.ratio > 1.0 and order < 0)
        if diverges:
            raise ValueError(
                f"the moment of order {order!r} of MarchenkoPastur(ratio={self.ratio}) diverges; "
                "orders must be > -1/2 for ratio = 1 and >= 0 for ratio > 1 (atom at 0)"
            )
        return super()._moment(order)

    def mean(self) -> float:
        """E[λ] = v."""
        return self.variance

    def var(self) -> float:
        """Var[λ] = v² c."""
        return self.variance**2 * self.ratio


def marchenko_pastur(ratio: float, variance: float = 1.0) -> MarchenkoPastur:
    """Law of the eigenvalues of W Wᵀ/n, W of shape p×n, i.i.d. entries of variance ``variance``.

    ``ratio`` = p/n > 0; for ratio > 1 the law has an atom of mass 1 − 1/ratio at 0. See
    :class:`MarchenkoPastur`.
    """
    return MarchenkoPastur(ratio, variance)
