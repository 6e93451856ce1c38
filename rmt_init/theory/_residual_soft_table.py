"""Fast distribution function of a residual law on an interval with soft (inverse-square-root or square-root) ends:
the density on Chebyshev nodes of a variable that removes the end singularities, doubled until converged
(docs/derivations.md §8.7).
"""
from __future__ import annotations

import math
from typing import Any

import numpy as np
from scipy.fft import dct
from scipy.interpolate import PchipInterpolator

_SOFT_START = 64
_SOFT_MAX = 1024
_SOFT_TOL = 1e-12
#: a table whose error estimate is still above this fraction of its mass at N = _SOFT_MAX refuses (FloatingPointError)
_SOFT_GIVE_UP = 1e-9


class SoftEdgeTable:
    """The distribution function of a density on [a, b] (0 < a) with square-root edges, in closed form.

    With t = ln x and t = t_a + (t_b − t_a)(1 − cos θ)/2, θ ∈ [0, π], the mass element is g(θ) dθ,
    g = x ρ(x) (t_b − t_a) sin θ / 2. A square-root edge ρ ∝ √(x − a) gives g ∝ sin²θ · (smooth), so g is even,
    2π-periodic and analytic in θ: its cosine series g = Σ c_k cos kθ (from the density at θ_j = πj/N by a type-I
    DCT, i.e. the trapezoidal rule, N doubled from 64 until Σ_{k > N/2} |c_k|/k ≤ 1e−12 of the mass or N = 1024)
    converges geometrically, and F(θ) = c_0 θ + Σ_k c_k sin(kθ)/k is the cdf, sf = c_0(π − θ) − Σ_k c_k sin(kθ)/k
    (the trapezoidal rule converges geometrically for periodic analytic g: Trefethen & Weideman 2014, SIAM Rev. 56). Quantiles: a monotone (PCHIP) inverse of F on 8N points, then Newton in θ with the
    slope g from the same series — no further density evaluations. ``error`` estimates the absolute error of F.
    ``inverse_sqrt`` (lower, upper): edges where ρ ≈ c/√|x − edge| instead (one orthogonal linear block): g tends to
    a nonzero limit there, taken from the nearest nodes (:meth:`_ends`; docs/derivations.md §8.8).
    """

    def __init__(self, density: Any, a: float, b: float, inverse_sqrt: tuple[bool, bool] = (False, False)) -> None:
        self.a, self.b = float(a), float(b)
        self.ta, self.tb = math.log(a), math.log(b)
        self.inverse_sqrt = inverse_sqrt
        n = _SOFT_START
        values = self._ends(self._samples(density, np.arange(n + 1) * (math.pi / n)))
        while True:
            y = dct(values, type=1) / n
            y[0] *= 0.5
            y[-1] *= 0.5
            mass = y[0] * math.pi
            # |F error| ≤ Σ |c_k|/k over the unresolved coefficients, estimated by the upper half of those we have
            tail = float((np.abs(y[n // 2 :]) / np.arange(n // 2, n + 1)).sum())
            if tail <= _SOFT_TOL * abs(mass) or n >= _SOFT_MAX:
                break
            odd = (2 * np.arange(n) + 1) * (math.pi / (2 * n))
            merged = np.empty(2 * n + 1)
            merged[0::2] = values
            merged[1::2] = self._samples(density, odd)
            values, n = self._ends(merged), 2 * n
        if tail > _SOFT_GIVE_UP * abs(mass):
            # not resolved by N = _SOFT_MAX nodes (a spike the cosine series cannot follow: a single gelu block at
            # q0 = 1e4, α = 0.5 stopped with mass 1.0038, error estimate 2.8e−3): refuse, the caller takes the
            # generic adaptive tables instead
            raise FloatingPointError(f"soft-edge table not resolved at N = {n}: error estimate {tail:.2g} of mass {mass:.6g}")
        self.n = n
        self.coefficients = y
        self.mass = float(mass)
        self.error = tail
        self._k = np.arange(1, n + 1)
        grid = np.linspace(0.0, math.pi, 8 * n + 1)
        below = self._below(grid)
        # the points above every earlier one (the same as diff > 0 where the table's cdf is monotone; where a density
        # the table does not resolve makes it wiggle — gelu's near-ReLU laws at large q — diff > 0 kept a decreasing
        # sequence and the interpolator refused it)
        keep = np.concatenate([[True], below[1:] > np.maximum.accumulate(below)[:-1]])
        self._inverse = PchipInterpolator(below[keep], grid[keep])

    def _ends(self, values: np.ndarray) -> np.ndarray:
        """``values`` with g at an inverse-square-root edge (``inverse_sqrt``: lower, upper) set to its limit there.

        At such an edge (ρ ≈ c/√|x − edge|: one orthogonal linear block, the arcsine law, §8.8) g → a nonzero limit
        (x − a ∝ 1 − cos θ, so xρ·sin θ stays finite), and g is still even and analytic in θ; the limit is the value
        at θ = 0 (π) of the polynomial in θ² through g at the four nearest nodes (error O(θ₁⁸), θ₁ = π/N), never a
        density solve at the edge itself. Taking g = 0 there (right for a square-root edge) had cost a mass of
        ~(π/N)g(0): the table ran to N = 1024 and its cdf was off by 1.8e−4 (arcsine on [0.25, 6.25])."""
        n = len(values) - 1
        nodes = (np.arange(1, 5) * (math.pi / n)) ** 2
        weights = np.array([np.prod([nodes[j] / (nodes[j] - nodes[k]) for j in range(4) if j != k]) for k in range(4)])
        out = values.copy()
        if self.inverse_sqrt[0]:
            out[0] = float(weights @ values[1:5])
        if self.inverse_sqrt[1]:
            out[-1] = float(weights @ values[-2:-6:-1])
        return out

    def _samples(self, density: Any, theta: np.ndarray) -> np.ndarray:
        x = self.x_of(theta)
        inner = (theta > 0) & (theta < math.pi)
        out = np.zeros(theta.shape)
        out[inner] = density(x[inner]) * x[inner] * 0.5 * (self.tb - self.ta) * np.sin(theta[inner])
        if not np.all(np.isfinite(out)):
            raise FloatingPointError("non-finite density")
        return out

    def x_of(self, theta: np.ndarray) -> np.ndarray:
        return np.exp(self.ta + (self.tb - self.ta) * 0.5 * (1.0 - np.cos(theta)))

    def theta_of(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore", invalid="ignore"):
            r = (np.log(np.clip(x, self.a, self.b)) - self.ta) / (self.tb - self.ta)
        return np.arccos(np.clip(1.0 - 2.0 * r, -1.0, 1.0))

    def _series(self, theta: np.ndarray, sine: bool) -> np.ndarray:
        out = np.empty(theta.shape)
        flat, res = theta.ravel(), out.ravel()
        weights = self.coefficients[1:] / self._k if sine else self.coefficients[1:]
        for start in range(0, flat.size, 2048):
            chunk = flat[start : start + 2048]
            trig = np.sin if sine else np.cos
            res[start : start + 2048] = trig(chunk[:, None] * self._k[None, :]) @ weights
        return res.reshape(theta.shape)

    def _below(self, theta: np.ndarray) -> np.ndarray:
        return self.coefficients[0] * theta + self._series(theta, True)

    def _above(self, theta: np.ndarray) -> np.ndarray:
        return self.coefficients[0] * (math.pi - theta) - self._series(theta, True)

    def cdf(self, x: np.ndarray) -> np.ndarray:
        """Mass in [a, x] (x clipped to [a, b]): 0 at a, ``mass`` at b."""
        x = np.asarray(x, float)
        out = np.clip(self._below(self.theta_of(x)), 0.0, self.mass)
        return np.where(x <= self.a, 0.0, np.where(x >= self.b, self.mass, out))

    def sf(self, x: np.ndarray) -> np.ndarray:
        """Mass in [x, b]."""
        x = np.asarray(x, float)
        out = np.clip(self._above(self.theta_of(x)), 0.0, self.mass)
        return np.where(x <= self.a, self.mass, np.where(x >= self.b, 0.0, out))

    def invert(self, target: np.ndarray, upper_tail: bool) -> np.ndarray:
        """The x with cdf(x) = target (sf(x) = target if ``upper_tail``)."""
        target = np.clip(np.asarray(target, float), 0.0, self.mass)
        below = self.mass - target if upper_tail else target
        theta = np.clip(self._inverse(below), 0.0, math.pi)
        active = np.flatnonzero((below > 0.0) & (below < self.mass))
        for _ in range(8):
            th, goal = theta[active], target[active]
            residual = goal - self._above(th) if upper_tail else self._below(th) - goal
            slope = self.coefficients[0] + self._series(th, False)
            with np.errstate(divide="ignore", invalid="ignore"):
                step = np.where(slope > 0, residual / slope, 0.0)
            step = np.where(np.isfinite(step), step, 0.0)
            theta[active] = np.clip(th - step, 0.0, math.pi)
            active = active[np.abs(step) > 1e-14]
            if active.size == 0:
                break
        out = self.x_of(theta)
        out = np.where(below <= 0.0, self.a, np.where(below >= self.mass, self.b, out))
        return np.clip(out, self.a, self.b)
