"""Free multiplicative convolution of spectral laws through S-transforms.

For asymptotically free positive random matrices A, B, the law of A^{1/2} B A^{1/2} is the free
multiplicative convolution μ_A ⊠ μ_B, and S-transforms multiply: S_{A⊠B}(w) = S_A(w) S_B(w)
(Voiculescu 1987). Conventions (docs/derivations.md §0): ψ(u) = Σ_{k≥1} m_k u^k = ∫ uλ/(1 − uλ) dμ(λ),
χ = ψ⁻¹, S(w) = χ(w)(1 + w)/w, Green function G(z) = (1 + ψ(1/z))/z, density ρ(x) = −Im G(x + i0)/π.

Factors
-------
* :class:`RationalS`: S(w) = C Π(1 + a_i w)/Π(1 + b_j w). This covers the Marchenko–Pastur law of
  ratio c and variance v (S = 1/(v(1 + c w)), Marchenko & Pastur 1967), a Dirac mass or Haar-orthogonal
  WᵀW = σ²I (S = 1/σ²), the two-point law (1 − p)δ₀ + pδ_a (S = (1 + w)/(a(p + w)), e.g. D² of ReLU
  and hard-tanh networks; Pennington, Schoenholz & Ganguli 2017, arXiv 1711.04735, Table 1), the
  Fuss–Catalan law (S = (1 + w)^{−s}) and the change of normalising dimension used for rectangular
  products (below).
* :class:`DiscreteS`: a discrete law Σ m_i δ_{x_i} known through ψ(u) = Σ m_i u x_i/(1 − u x_i), whose
  S-transform is inverted numerically inside the solver: empirical laws (samples), the two-point law
  of D² for leaky ReLU.
* :class:`PsiS` subclasses in other modules, e.g. :class:`~rmt_init.theory.gaussian_image.GaussianImageS`,
  the law of φ'(√q z)² of a smooth activation (ψ by singularity-subtracted quadrature).
* :class:`MomentS`: a law known by its moments only (moments of products, no density).

Products
--------
:func:`free_product` multiplies S-transforms; atoms follow Belinschi (2003, Integral Equations Operator
Theory 46): the product has mass max(μ({0}), ν({0})) at 0, and mass μ({a}) + ν({b}) − 1 at ab > 0
whenever that is positive. :func:`change_dimension` re-normalises a law on an n-dimensional space to
an N-dimensional one (adding or removing zero eigenvalues): μ' = (n/N)μ + (1 − n/N)δ₀ and
S'(w) = S(f w)·f(1 + w)/(1 + f w) with f = N/n. With it, the Jacobian of a rectangular network is built
layer by layer, and for linear Gaussian layers reproduces S_{JJᵀ}(w) = Π_l σ_l^{−2}/(1 + (n_L/n_{l−1})w)
(Burda, Jarosz, Livan, Nowak & Swiech 2010, PRE 82, 061114; docs/derivations.md §2.2).

Density (Stieltjes inversion)
-----------------------------
At each point z = x + iη the solver finds w = ψ(1/z) from Log(z·χ(w)) = 0, jointly with ψ_j(u_j) = s_j w
for the numerical factors, by Newton's method in complex arithmetic (each outer step on t after an inner
solve of the ψ_j equations, so that the step is Newton's on the reduced equation even when a factor's
power is the depth), and lets η go from far above the spectrum (10 max_k m_k^{1/k}) down to exactly 0,
predicting each level's start from w ∝ 1/z while far from the spectrum. For Im z > 0 the physical root (the one with Im w < 0) is unique and moves
continuously with z, so this continuation in η never switches branches, and it is vectorised over x.
Then ρ(x) = −Im w/(πx). Support edges are the real critical points of log χ (docs/derivations.md §2.3, §3.2);
the intervals between them that carry density are found by probing.

Moments are exact: the S-series of the factors are multiplied and reverted (``moment(k, method="exact")``
returns a ``Fraction`` when every factor's parameters are exact binary floats or rationals).
"""
from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any, NamedTuple

import mpmath
import numpy as np
from scipy.optimize import brentq

from .._validate import check_int, check_real
from . import _series
from .laws import Atom, SpectralLaw, _tanhsinh, bracketed_mass_step

__all__ = [
    "SFactor",
    "RationalS",
    "PsiS",
    "DiscreteS",
    "MomentS",
    "Term",
    "FreeProductLaw",
    "free_product",
    "change_dimension",
    "marchenko_pastur_s",
    "dirac_s",
    "two_point_s",
    "s_transform",
    "rectangular_product",
]

_SERIES_ORDER = 12
_NEWTON_TOL = 4e-15
_INNER_STEPS = 4
_INNER_SUBSET = True  # Newton's inner steps evaluate only the points they move (False: all active points, as before)
_ATOM_TOL = 1e-13
_SAMPLING_NODES = 2049
_EDGE_FLOOR = float(np.finfo(float).tiny)  # the hard-edge table at 0 goes down to the smallest normal float at most
# (the density is resolved there: ~1e−13 against Fuss–Catalan down to 1e−310)
_EDGE_DEPTH = 16.0  # … or until F has fallen by e^{−16·ln 10}: 10^{16/κ} decades for F ∝ x^κ
_EDGE_SUBTRACTION_NOISE = 1e-12  # a mass below the floor found by subtraction is known to this (absolute)
_EDGE_NOISE = 1e-12  # next to an atom at 0, xρ(x) below this is rounding noise (see FreeProductLaw._hard_edge)
_EDGE_TAIL_OK = 1e-7  # below the table, the power law's mass is used when it is below this (error ~ its square)
_EDGE_PANELS_PER_DECADE = 4  # panels of the ln F table per decade (one per decade left 3e−6 errors, depth-5 FC)
_EDGE_NODE = 32  # the log–log edge table covers the sampling table's panels below this node
_WARM_REACH = 0.25  # a warm start (FreeProductLaw._solve) reaches |ln x − ln x_ref| ≤ this × ln x_ref's distance to a singular point
_WARM_MAX_GAP = 1.0  # … and at most this
_WARM_ITERATIONS = 12
_WARM_INNER = 0  # inner steps of the warm Newton (joint steps next to a root; None: _INNER_STEPS, as before) …
_WARM_JOINT_POWER = 100  # … for laws whose numerical factors' powers are at most this (deeper: ρ_j enters the joint step
# times the power, and depth-1000 tanh's sampling tables took 25 % longer with joint steps, depth 100 the same, depth 6 −25 %)
_WARM_REMEMBER = True  # warm-started roots are remembered too (False: only the η-continuation's)
_WARM_JUMP = 0.25  # a warm Newton root farther than this × the predictor's step from the predictor is rejected
_DEEP_ETA = 1e-2  # η-continuation below this × the spectral scale: steps of ratio³ from the tangent
_SEED_MIN = 32  # more cold points than this are solved from seeds (FreeProductLaw._solve)
_SHORT_STEP = 0.05  # a quantile Newton step this short (× distance to a singular point) adds ∫ρ by Gauss–Legendre
_SOLUTIONS_CAP = 1 << 16  # remembered solutions per law (~3 MB)
_CONTINUATION_FLOOR = 1e-3  # η-continuation stops at this fraction of the distance to the nearest edge
_AXIS_X = 1e-4  # points 0 < x ≤ this × the spectral scale start on the imaginary axis (FreeProductLaw._continue)
_AXIS_START = 4.0  # … at the tabulated η ≤ this × x, from the tangent
_AXIS_PREDICTOR_TOL = 0.05  # the axis path's steps keep the tangent predictor within this of the root
_AXIS_MAX_STEP = 8.0 * math.log(64.0)  # … and at most this in ln η
_MAX_MOMENT_ORDER = 100  # largest moment order computed from the S-series (cost ~order³, see _exact_moments)
_LOG_FLOAT_LOW = math.log(1e-290)  # laws whose spectral scale lies outside these bounds are refused
_LOG_FLOAT_HIGH = math.log(1e290)  # (their densities or edges would leave float64's range)
_RETRY_RATIOS = (0.5, 0.25)  # a point whose η-continuation failed is solved alone on these paths, first converged wins
_LOG_FLOAT_MAX = math.log(np.finfo(float).max)  # … (unless a u_j = e^τ_j of its iterate lies beyond e^{±this})
_UNSOLVED_NOISE = 1e-15  # … and if none converges, its iterate is kept only if xρ = −Im w/π reads below this (density 0)
_EXACT_BITS = 20000  # above this, S-series are multiplied in 60-digit mpmath instead of rationals


def _exact(value: Any) -> Any:
    """An exact rational for a float (its binary value) or an int/Fraction unchanged."""
    if isinstance(value, (int, Fraction)):
        return value
    return Fraction(float(value))


# ============================================================================================ factors
class SFactor(ABC):
    """The S-transform of one law on [0, ∞) with positive mean, as a factor of a free product."""

    #: point masses of the factor's law, (location, mass), sorted
    atoms: tuple[Atom, ...] = ()

    @abstractmethod
    def series(self, order: int) -> list[Any]:
        """Coefficients s_0..s_order of S(w) (exact where the parameters are)."""

    @property
    def mean(self) -> float:
        """m_1 = 1/S(0)."""
        return float(1 / self.series(0)[0])

    @property
    def atom_at_zero(self) -> float:
        return sum(m for loc, m in self.atoms if loc == 0.0)


class RationalS(SFactor):
    """S(w) = C · Π_i (1 + a_i w) / Π_j (1 + b_j w) (see the module docstring for the laws it covers)."""

    def __init__(
        self,
        constant: float,
        zeros: Sequence[float] = (),
        poles: Sequence[float] = (),
        atoms: Sequence[Atom] = (),
        name: str = "rational",
    ) -> None:
        self.constant = constant
        self.zeros = tuple(zeros)
        self.poles = tuple(poles)
        self.atoms = tuple(sorted((float(loc), float(m)) for loc, m in atoms))
        self.name = name

    def __repr__(self) -> str:
        return self.name

    def log_s(self, w: np.ndarray, t: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        """(log S(scale·w), d/dt log S(scale·w)) with t = log(1 + w) and w = expm1(t).

        Each log(1 + c w) (c = a·scale) is t itself when c = 1, and log1p(c w) otherwise, so that
        the factor stays accurate as w → −1 (the hard edge at 0) and as w → 0 (far from the spectrum).
        """
        one_plus_w = np.exp(t)
        value = np.full(w.shape, complex(math.log(float(self.constant))))
        slope = np.zeros(w.shape, complex)
        for sign, coefficients in ((1.0, self.zeros), (-1.0, self.poles)):
            for a in coefficients:
                c = float(a) * scale
                if c == 1.0:
                    value += sign * t
                    slope += sign
                else:
                    value += sign * np.log1p(c * w)
                    slope += sign * c * one_plus_w / (1.0 + c * w)
        return value, slope

    def real_singularities(self) -> list[float]:
        return [-1.0 / float(a) for a in self.zeros + self.poles if float(a) != 0.0]

    def series(self, order: int) -> list[Any]:
        out: list[Any] = [_exact(self.constant)] + [0] * order
        for a in self.zeros:
            out = _series.multiply(out, [1, _exact(a)], order)
        for b in self.poles:
            out = _series.multiply(out, _series.reciprocal([1, _exact(b)], order), order)
        return out


class PsiS(SFactor):
    """A factor whose S-transform is inverted numerically inside the solver, through ψ itself.

    Subclasses give :meth:`one_plus_psi` (vectorised over complex u, accurate as 1 + ψ → 0), ``xmax``
    (the right end of the law's support), ``mass_at_zero`` and ``atoms``. ψ only has to be right for
    Im u ≤ 0 (its boundary values on the cut from below): the solver keeps u there, where the physical
    (subordination) solution lives (Belinschi & Bercovici 2007, Math. Z. 255: the subordination
    functions of ⊠ map the lower half-plane of u = 1/z into itself).
    """

    xmax: float
    mass_at_zero: float
    #: relative accuracy of 1 + ψ(u) (it bounds how far Newton's residual can go down)
    psi_tolerance: float = 1e-15

    @abstractmethod
    def one_plus_psi(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1 + ψ(u), u ψ'(u)) for a complex array u."""

    def real_inverse(self, w: float) -> float:
        """The real u < 1/max(x) with ψ(u) = w (ψ increases from −(1 − mass at 0) to +∞ there)."""
        u = float(_real_inverse_array(self, np.array([float(w)]))[0])
        if not math.isfinite(u):
            raise ValueError(f"no real u with psi(u) = {w} (psi > {-(1.0 - self.mass_at_zero)} on its real branch)")
        return u


class DiscreteS(PsiS):
    """A discrete law Σ m_i δ_{x_i} (x_i ≥ 0) entering a free product through ψ.

    ``true_atoms`` are the point masses of the law being modelled (for the atoms of products); the
    remaining locations may stand for a continuous part (a quadrature rule); the product is then the
    exact product with that discrete law, not with the continuous one.
    """

    def __init__(
        self,
        locations: Sequence[float],
        masses: Sequence[float],
        true_atoms: Sequence[Atom] = (),
        name: str = "discrete",
        exact_moments: Any = None,
    ) -> None:
        x = np.asarray(locations, float)
        m = np.asarray(masses, float)
        if x.shape != m.shape or x.ndim != 1 or x.size == 0:
            raise ValueError("locations and masses must be 1-d arrays of the same nonzero length")
        if np.any(~np.isfinite(x)) or np.any(x < 0):
            raise ValueError("the locations of a spectral law must be finite and >= 0")
        if np.any(m < 0) or not math.isclose(float(m.sum()), 1.0, rel_tol=0, abs_tol=1e-10):
            raise ValueError(f"masses must be >= 0 and sum to 1; they sum to {float(m.sum())!r}")
        keep = m > 0
        self.x = x[keep]
        self.m = m[keep] / m[keep].sum()
        self.atoms = tuple(sorted((float(a), float(b)) for a, b in true_atoms))
        self.name = name
        self._exact_moments = exact_moments
        self.xmax = float(self.x.max())
        self.mass_at_zero = float(self.m[self.x == 0].sum())
        if float(np.dot(self.m, self.x)) <= 0:
            raise ValueError("a factor of a free product needs a positive mean")

    def __repr__(self) -> str:
        return self.name

    def one_plus_psi(self, u: np.ndarray, chunk: int = 2048) -> tuple[np.ndarray, np.ndarray]:
        """(1 + ψ(u), u ψ'(u)) = (Σ m/(1 − ux), Σ m ux/(1 − ux)²): accurate when 1 + ψ is tiny (u → −∞)."""
        u = np.asarray(u, complex)
        flat = u.ravel()
        value = np.empty(flat.shape, complex)
        slope = np.empty(flat.shape, complex)
        x, m = self.x[None, :], self.m[None, :]
        for start in range(0, flat.size, chunk):
            ux = flat[start : start + chunk, None] * x
            inverse = 1.0 / (1.0 - ux)
            value[start : start + chunk] = np.sum(m * inverse, axis=1)
            slope[start : start + chunk] = np.sum(m * ux * inverse * inverse, axis=1)
        return value.reshape(u.shape), slope.reshape(u.shape)

    def moments(self, order: int) -> list[Any]:
        if self._exact_moments is not None:
            return [self._exact_moments(k) for k in range(1, order + 1)]
        return [float(np.dot(self.m, self.x**k)) for k in range(1, order + 1)]

    def series(self, order: int) -> list[Any]:
        return _series.s_from_moments(self.moments(order + 1), order)


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


class MomentS(SFactor):
    """A law known by its raw moments m_1, m_2, … only: enough for the moments of products.

    ``moments`` is a list [m_1, m_2, …] or a callable k ↦ m_k (any order on demand); ``atoms`` are the
    law's point masses, which still give the atoms of products (Belinschi 2003).
    """

    def __init__(self, moments: Sequence[Any] | Any, name: str = "moments", atoms: Sequence[Atom] = ()) -> None:
        self._moment = moments if callable(moments) else None
        self.moments = None if callable(moments) else list(moments)
        first = self._moment(1) if self._moment is not None else (self.moments[0] if self.moments else 0)
        if not first > 0:
            raise ValueError(f"MomentS needs m_1 > 0; got {first!r}")
        self.name = name
        self.atoms = tuple(sorted((float(a), float(m)) for a, m in atoms))

    def __repr__(self) -> str:
        return self.name

    def series(self, order: int) -> list[Any]:
        if self._moment is not None:
            return _series.s_from_moments([self._moment(k) for k in range(1, order + 2)], order)
        if order + 1 > len(self.moments):
            raise ValueError(
                f"{self.name}: {len(self.moments)} moments give the S-series to order {len(self.moments) - 1} only"
            )
        return _series.s_from_moments(self.moments, order)


def marchenko_pastur_s(ratio: float, variance: float = 1.0) -> RationalS:
    """S(w) = 1/(v(1 + c w)) of the Marchenko–Pastur law of ratio c, variance v (atom 1 − 1/c at 0 if c > 1)."""
    c = check_real("ratio", ratio, low=0.0, low_inclusive=False)
    v = check_real("variance", variance, low=0.0, low_inclusive=False)
    atoms = ((0.0, 1.0 - 1.0 / c),) if c > 1 else ()
    return RationalS(1 / _exact(v), poles=(c,), atoms=atoms, name=f"MP(ratio={c:g}, variance={v:g})")


def dirac_s(location: float) -> RationalS:
    """S(w) = 1/a of the point mass at a > 0 (also Haar-orthogonal WᵀW = a·I)."""
    a = check_real("location", location, low=0.0, low_inclusive=False)
    return RationalS(1 / _exact(a), atoms=((a, 1.0),), name=f"δ({a:g})")


def two_point_s(p: float, location: float = 1.0) -> RationalS:
    """S(w) = (1 + w)/(a(p + w)) of (1 − p)δ₀ + pδ_a (e.g. D² of ReLU: p = ½; hard-tanh: p = P(|h| < 1))."""
    p = check_real("p", p, low=0.0, high=1.0, low_inclusive=False)
    a = check_real("location", location, low=0.0, low_inclusive=False)
    if p == 1.0:
        return dirac_s(a)
    atoms = ((0.0, 1.0 - p), (a, p))
    return RationalS(1 / (_exact(a) * _exact(p)), zeros=(1,), poles=(1 / _exact(p),), atoms=atoms, name=f"Bernoulli(p={p:g})·{a:g}")


def _dimension_factor(f: Any) -> RationalS:
    """f(1 + w)/(1 + f w): the extra factor of a change of normalising dimension by f = N/n."""
    return RationalS(_exact(f), zeros=(1,), poles=(_exact(f),), name=f"dimension×{float(f):g}")


# ============================================================================================ terms
@dataclass(frozen=True)
class Term:
    """S_factor(scale·w)^power: one factor of a product, evaluated at a rescaled argument."""

    factor: SFactor
    scale: Any = 1
    power: int = 1


def _merge_terms(terms: Iterable[Term]) -> list[Term]:
    merged: dict[tuple[int, Any], int] = {}
    keep: dict[tuple[int, Any], SFactor] = {}
    for t in terms:
        key = (id(t.factor), _exact(t.scale))
        merged[key] = merged.get(key, 0) + t.power
        keep[key] = t.factor
    return [Term(keep[k], k[1], p) for k, p in merged.items() if p != 0]


# ============================================================================================ atoms
def _belinschi(mu: Sequence[Atom], nu: Sequence[Atom]) -> list[Atom]:
    """Atoms of μ ⊠ ν from those of μ and ν (Belinschi 2003)."""
    zero = max((m for loc, m in mu if loc == 0.0), default=0.0)
    zero = max(zero, max((m for loc, m in nu if loc == 0.0), default=0.0))
    out: dict[float, float] = {}
    if zero > _ATOM_TOL:
        out[0.0] = zero
    for a, ma in mu:
        for b, mb in nu:
            if a > 0 and b > 0 and ma + mb - 1.0 > _ATOM_TOL:
                out[a * b] = out.get(a * b, 0.0) + ma + mb - 1.0
    return sorted(out.items())


def _rescale_atoms(atoms: Sequence[Atom], f: float) -> list[Atom]:
    """Atoms after a change of dimension by f = N/n: nonzero masses ×1/f, the rest at 0."""
    nonzero = [(loc, m / f) for loc, m in atoms if loc != 0.0]
    old_zero = math.fsum(m for loc, m in atoms if loc == 0.0)
    zero = 1.0 - (1.0 - old_zero) / f  # all nonzero mass (atoms and continuous part) shrinks by 1/f
    if zero < -1e-12:
        raise ValueError(
            f"cannot change dimension by {f:g}: the law has nonzero mass {1 - zero:g} × {f:g} > 1 "
            "(its rank exceeds the new dimension)"
        )
    return ([(0.0, zero)] if zero > _ATOM_TOL else []) + nonzero


# ============================================================================================ the law
class EdgeTable(NamedTuple):
    """ln F against ln x near a hard edge at 0 (both increasing), with the power ``F ∝ x^{exponent}``
    continuing it below the first node (see ``FreeProductLaw._hard_edge``)."""

    log_x: np.ndarray
    log_f: np.ndarray
    exponent: float
    slopes: np.ndarray  # d ln F / d ln x at the nodes

    def cdf(self, x: np.ndarray) -> np.ndarray:
        from scipy.interpolate import CubicHermiteSpline

        with np.errstate(divide="ignore"):
            lx = np.log(x)  # subnormal x too (ln 5e−324 = −744.4)
        hermite = CubicHermiteSpline(self.log_x, self.log_f, self.slopes)
        inside = hermite(np.clip(lx, self.log_x[0], self.log_x[-1]))
        below = self.log_f[0] + self.exponent * (lx - self.log_x[0])
        return np.exp(np.where(lx < self.log_x[0], below, inside))

    def ppf(self, f: np.ndarray) -> np.ndarray:
        from scipy.interpolate import PchipInterpolator

        with np.errstate(divide="ignore"):
            lf = np.log(f)
        inside = PchipInterpolator(self.log_f, self.log_x)(np.clip(lf, self.log_f[0], self.log_f[-1]))
        below = self.log_x[0] + (lf - self.log_f[0]) / self.exponent
        return np.exp(np.where(lf < self.log_f[0], below, inside))


_GAUSS_8 = np.polynomial.legendre.leggauss(8)


class HardEdge(NamedTuple):
    """The continuous mass near a hard edge at 0, integrated in s = ln x (see ``FreeProductLaw._hard_edge``).

    ``log_x``: panel ends s_0 < … < s_n (quarter decades, s_n = ln x_J, x_J the first node of the cdf
    tables); ``cumulative``: the continuous mass below each (the first is the mass below the table's floor
    x_low = e^{s_0}); ``exponent``: κ with F ∝ x^κ below x_low; ``slopes``: d ln F/d ln x = xρ(x)/F at
    the nodes; ``total``: the interval's continuous mass.
    """

    log_x: np.ndarray
    cumulative: np.ndarray
    exponent: float
    slopes: np.ndarray
    total: float

    @property
    def top(self) -> float:
        return float(np.exp(self.log_x[-1]))

    def mass_below(self, x: np.ndarray, density: Any) -> np.ndarray:
        """F(x) for 0 ≤ x ≤ x_J: the panel's cumulative mass plus ∫_{s_k}^{ln x} xρ ds by 8-point
        Gauss–Legendre (xρ is smooth in s; error ≲ 1e−15 relative on a quarter decade); below the floor, the
        power law L_m (x/x_low)^κ."""
        x = np.asarray(x, float)
        out = np.zeros(x.shape)
        with np.errstate(divide="ignore"):
            s = np.log(x)
        below = (x > 0) & (s < self.log_x[0])
        out[below] = self.cumulative[0] * np.exp(self.exponent * (s[below] - self.log_x[0]))
        inside = (x > 0) & ~below
        if inside.any():
            si = np.minimum(s[inside], self.log_x[-1])
            k = np.clip(np.searchsorted(self.log_x, si, side="right") - 1, 0, len(self.log_x) - 2)
            g, gw = _GAUSS_8
            half = 0.5 * (si - self.log_x[k])
            nodes = np.exp(self.log_x[k][:, None] + half[:, None] * (1.0 + g[None, :]))
            pieces = (density(nodes) * nodes * gw[None, :]).sum(axis=1) * half
            out[inside] = self.cumulative[k] + pieces
        return out

    def edge_table(self) -> EdgeTable:
        return EdgeTable(self.log_x, np.log(self.cumulative), self.exponent, self.slopes)


class FreeProductLaw(SpectralLaw):
    """A free multiplicative convolution, given by its S-transform terms and its atoms.

    Build it with :func:`free_product`, :func:`change_dimension`, :func:`rectangular_product` or
    :func:`rmt_init.jacobian_spectrum`; see the module docstring for the algorithms.

    Distribution function (``cdf``/``sf``/``ppf``/``isf``, ``method=``):

    * ``"default"``: tanh–sinh quadrature of the density (relative 1e−13, absolute 1e−15 per panel);
      next to a hard edge at 0 the mass is integrated in ln x down to the smallest normal float (or to
      where it is negligible), and the mass below that is the law's exact continuous mass less the mass
      above — so deep laws, much of whose mass lies below every float (Fuss–Catalan of depth 1000:
      F(1e−300) = 0.50), still reach 1 at the upper edge (depths 10–1000 agree with the closed-form
      Fuss–Catalan cdf to 5e−12; below ~2e−308, F continues as a power law, within 1e−6). Quantiles
      below the smallest float come out as 0.
    * ``"table"``: cubic Hermite interpolation of F on 2049 Chebyshev nodes per interval (exact slopes ρ),
      log–log interpolation next to a hard edge at 0, atoms with their exact masses (F(0) is the atom's
      mass). Absolute error ≤ 2e−7 in probability (tests: ≤ 1.6e−7 for Fuss–Catalan depths 2–1000,
      ≤ 3e−8 for ReLU depths 4–16, at the edges, next to the atom and in the bulk), ≤ 5e−7 relative below
      1e−2; its quantiles are within ~2e−7/(xρ(x)) relative in x. Building it costs ~20k densities, then
      each point costs microseconds: for many points (KS distances, plots).
    """

    # Within δ of a soft edge the density carries a relative error ~ulp(edge)/δ (the edge itself is known to
    # an ulp; measured 4e−3 at δ = 1e−15 of the support for Fuss–Catalan depth 2, ~4e−10 absolute at 1e−12),
    # so a relative 1e−13 on the panels there is unreachable and tanh–sinh spent its maximum level (16k
    # densities per panel) trying. 1e−15 of the mass is ample.
    _mass_atol = 1e-15

    def __init__(self, terms: Sequence[Term], atoms: Sequence[Atom], description: str = "free product") -> None:
        self.terms = _merge_terms(terms)
        self._atoms = tuple(sorted((float(loc), float(m)) for loc, m in atoms if m > _ATOM_TOL))
        self.description = description
        self.rational = [t for t in self.terms if isinstance(t.factor, RationalS)]
        self._n_logs = 2 + sum(abs(t.power) * (1 + len(getattr(t.factor, "zeros", ())) + len(getattr(t.factor, "poles", ()))) for t in self.terms)
        self.numerical = [t for t in self.terms if isinstance(t.factor, PsiS)]
        if any(isinstance(t.factor, MomentS) for t in self.terms):
            self._moments_only = True
        else:
            self._moments_only = False

    def __repr__(self) -> str:
        return f"FreeProductLaw({self.description})"

    # ------------------------------------------------------------------ atoms, support
    @property
    def atoms(self) -> tuple[Atom, ...]:
        return self._atoms

    @property
    def has_density(self) -> bool:
        """False when a factor is known by its moments only (then only moments are available)."""
        return not self._moments_only

    def _require_density(self) -> None:
        if self._moments_only:
            names = ", ".join(repr(t.factor) for t in self.terms if isinstance(t.factor, MomentS))
            raise ValueError(
                f"{self!r} has a factor known by its moments only ({names}): its moments, mean and "
                "variance are exact, but its density, cdf, quantiles, support and samples are not available "
                "(for a network with a smooth activation, sample the spectrum with rmt_init.montecarlo)"
            )

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

    # ------------------------------------------------------------------ distribution function near 0
    #: the generic tanh–sinh tables of :class:`~rmt_init.theory.laws.Law` (their first panel at a hard edge at
    #: 0 misses the mass below the smallest float; :attr:`_cdf_tables` replaces it)
    @cached_property
    def _raw_cdf_tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """As :meth:`SpectralLaw._cdf_tables`, but the first panel [0, x₁] of an interval starting at 0 is left out
        (its mass counted as 0): :attr:`_hard_edge` replaces it, and its tanh–sinh nodes reach x ~ 1e−310, each a
        cold solve there (minutes for the residual laws with a hard edge, docs/derivations.md §8.7(e));
        :attr:`_cdf_tables` adds it only where the law has no hard-edge table."""
        from .laws import _TABLE_NODES

        tables = []
        for a, b in self.intervals:
            theta = np.linspace(0.0, np.pi, _TABLE_NODES)
            nodes = a + (b - a) * 0.5 * (1.0 - np.cos(theta))  # clustered at both edges
            nodes[0], nodes[-1] = a, b
            pieces = np.zeros(len(nodes) - 1)
            first = 1 if a == 0.0 else 0
            pieces[first:] = _tanhsinh(self._pdf_vectorised, nodes[first:-1], nodes[first + 1 :], self._mass_atol)
            below = np.concatenate([[0.0], np.cumsum(pieces)])
            above = np.concatenate([np.cumsum(pieces[::-1])[::-1], [0.0]])
            tables.append((nodes, below, above))
        return tables

    @cached_property
    def _interval_masses(self) -> list[float]:
        """The continuous mass of each interval: exact (``continuous_mass`` less the others) for an interval
        starting at 0, whose mass may lie partly below the smallest float; quadrature for the others."""
        masses = [float(below[-1]) for _, below, _ in self._raw_cdf_tables]
        if self.intervals and self.intervals[0][0] == 0.0:
            masses[0] = self.continuous_mass - math.fsum(masses[1:])
        return masses

    @cached_property
    def _hard_edge(self) -> HardEdge | None:
        """The distribution function of the first interval near a hard edge at 0, in s = ln x.

        There ρ ~ C x^{−α} (α = L/(L+1) for a Fuss–Catalan-type edge) and F ∝ x^κ, κ = 1 − α, so in s the
        measure xρ(x) ds is smooth and decays like e^{κs}. It is integrated by 8-point Gauss–Legendre on
        panels of a quarter decade below x_J, widening to 0.05/κ in ln x further down, from x_J (the first node of the cdf tables, ~6e−4 of the interval) down to
        the floor x_low: where F has fallen by 10^{−16} (16/κ decades) or to the smallest normal float,
        whichever comes first (the density is resolved there, ~1e−13 relative). The mass below the floor
        is the power law's x_low ρ(x_low)/κ when that is below 1e−7 (its relative error is of the order of
        F itself, so ≲ 1e−14 absolute), else — for deep laws, where much mass lies below every float
        (Fuss–Catalan of depth 1000: F(1e−300) = 0.50) — the interval's exact mass less the mass above the
        floor. ``None`` when the density near 0 is not positive (not resolved there).
        """
        if not self.intervals or self.intervals[0][0] != 0.0:
            return None
        nodes, _, above = self._raw_cdf_tables[0]
        x_j, total = float(nodes[1]), self._interval_masses[0]
        # κ from the density at the deepest resolved pair of points (the power law sets in late for deep
        # products: depth-200 Fuss–Catalan has a local exponent −1.0003 at 1e−3 of the interval, −200/201 at 0)
        probes = np.array([1e2 * _EDGE_FLOOR, 1e10 * _EDGE_FLOOR, 1e-5 * x_j, 1e-3 * x_j])  # two pairs (low, high)
        # Next to an atom at 0 the solver's w tends to −(1 − atom), and xρ(x) = −Im w/π carries an absolute
        # rounding noise ~1e−17 (depth-8 ReLU: 2.6× off at x = 1e−200, where xρ ~ 1e−27): only xρ above
        # _EDGE_NOISE counts as resolved there; the mass below is then ~_EDGE_NOISE/κ, far below 1e−7.
        noise = _EDGE_NOISE if any(loc == 0.0 for loc, _ in self.atoms) else 0.0
        # (factors that declare ``deep_probes = False`` — residual blocks, whose density at 1e−300 costs a cold solve
        # with refined η-steps, minutes — are probed at the upper pair only; κ only sets the table's depth here)
        deep = all(getattr(term.factor, "deep_probes", True) for term in self.numerical)
        rho = self._pdf_vectorised(probes) if deep else np.concatenate([[np.nan, np.nan], self._pdf_vectorised(probes[2:])])
        good = np.isfinite(rho) & (rho > 0) & (probes * rho > noise)
        if not good[2:].all():
            return None
        i = 0 if good[:2].all() else 2
        kappa = min(max(1.0 - math.log(rho[i] / rho[i + 1]) / math.log(probes[i + 1] / probes[i]), 1e-6), 2.0)
        # panels: quarter decades below x_J, widening by 1.25 per panel down to 0.05/κ in ln x (F varies on
        # the scale 1/κ there: F = C x^κ (1 + c x^κ + …)), so a depth-1000 law needs ~40 panels, not 1200
        depth_limited = _EDGE_DEPTH / kappa < math.log10(x_j / _EDGE_FLOOR)
        bottom_log = math.log(x_j) - _EDGE_DEPTH / kappa * math.log(10.0) if depth_limited else math.log(_EDGE_FLOOR)
        step = math.log(10.0) / _EDGE_PANELS_PER_DECADE
        cap = max(step, 0.05 / kappa)
        ends = [math.log(x_j)]
        while ends[-1] > bottom_log:
            ends.append(max(ends[-1] - min(step * 1.25 ** (len(ends) - 1), cap), bottom_log))
        log_edges = np.array(ends[::-1])  # increasing
        g, gw = _GAUSS_8
        half = 0.5 * np.diff(log_edges)
        x = np.exp((0.5 * (log_edges[:-1] + log_edges[1:]))[:, None] + half[:, None] * g[None, :])
        density = self._pdf_vectorised(x)
        resolved = np.all(np.isfinite(density) & (density > 0) & (x * density > noise), axis=1)
        if not resolved.all():  # keep the panels above the highest unresolved one
            first = int(np.flatnonzero(~resolved)[-1]) + 1
            if first >= len(resolved):
                return None
            log_edges, x, density, half = log_edges[first:], x[first:], density[first:], half[first:]
            depth_limited = False  # the table did not reach its depth
        masses = (density * x * gw[None, :]).sum(axis=1) * half
        x_low = math.exp(log_edges[0])
        rho_low = self._pdf_vectorised(np.array([x_low, 10.0 * x_low]))
        if not np.all(np.isfinite(rho_low) & (rho_low > 0)):
            return None
        local = min(max(1.0 - math.log(rho_low[0] / rho_low[1]) / math.log(10.0), 1e-12), 2.0)
        tail = x_low * float(rho_low[0]) / local
        # (a depth-limited table whose power law still leaves more than _EDGE_TAIL_OK below it had its κ from the upper
        # probes — the lower ones unresolved — and F ∝ x^κ with slowly varying κ there: gelu at depth 1, σ_b² = 0.5,
        # whose mass below 1e−215 is 1.28e−6, the power law 0.35 % off; the subtraction below is exact to ~1e−13)
        if tail <= _EDGE_TAIL_OK:
            bottom, exponent = tail, local
        else:  # the mass above the floor subtracted from the exact total (absolute error ~1e−13)
            bottom = total - float(above[1]) - math.fsum(masses)
            if bottom > _EDGE_SUBTRACTION_NOISE:
                exponent = x_low * float(rho_low[0]) / bottom  # the exact d ln F/d ln x at the floor
            else:  # within the subtraction's rounding of 0: the power law, capped at that rounding
                bottom, exponent = min(tail, _EDGE_SUBTRACTION_NOISE), local
        cumulative = bottom + np.concatenate([[0.0], np.cumsum(masses)])
        edges_x = np.exp(log_edges)
        slopes = edges_x * self._pdf_vectorised(edges_x) / cumulative
        return HardEdge(log_edges, cumulative, exponent, slopes, total)

    @cached_property
    def _cdf_tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """The generic tables, with the first panel at a hard edge at 0 taken from :attr:`_hard_edge`."""
        tables = list(self._raw_cdf_tables)
        edge = self._hard_edge
        if edge is None and self.intervals and self.intervals[0][0] == 0.0:  # the first panel, left out above
            nodes, below, above = tables[0]
            first = float(_tanhsinh(self._pdf_vectorised, nodes[:1], nodes[1:2], self._mass_atol)[0])
            tables[0] = (nodes, np.concatenate([[0.0], below[1:] + first]), np.concatenate([[above[0] + first], above[1:]]))
        if edge is not None:
            nodes, below, above = tables[0]
            pieces = np.diff(below)[1:]
            below = np.concatenate([[0.0], edge.cumulative[-1] + np.concatenate([[0.0], np.cumsum(pieces)])])
            above = np.concatenate([[edge.total], above[1:]])
            tables[0] = (nodes, below, above)
        return tables

    def _interval_cdf(self, i: int, x: np.ndarray) -> np.ndarray:
        edge = self._hard_edge if i == 0 else None
        if edge is None:
            return super()._interval_cdf(i, x)
        out = np.empty(x.shape)
        near = x < edge.top
        out[near] = self._edge_mass_below(edge, x[near])
        if (~near).any():
            out[~near] = super()._interval_cdf(i, x[~near])
        return out

    def _edge_mass_below(self, edge: HardEdge, x: np.ndarray) -> np.ndarray:
        """F near the hard edge: the table down to its floor, the log-variable table below it where the
        law has one (subnormal x), else the power law."""
        out = edge.mass_below(x, self._pdf_vectorised)
        tiny = (x > 0) & (np.log(np.where(x > 0, x, 1.0)) < edge.log_x[0])
        if tiny.any() and edge.cumulative[0] > _EDGE_TAIL_OK and self._deep_edge is not None:
            out[tiny] = self._below_floor_mass(np.log(x[tiny]), "x", float(x[tiny].min()))
        return out

    def _interval_sf(self, i: int, x: np.ndarray) -> np.ndarray:
        edge = self._hard_edge if i == 0 else None
        if edge is None:
            return super()._interval_sf(i, x)
        out = np.empty(x.shape)
        near = x < edge.top
        out[near] = edge.total - self._edge_mass_below(edge, x[near])
        if (~near).any():
            out[~near] = super()._interval_sf(i, x[~near])
        return out

    def _invert_interval(self, i: int, local: np.ndarray, upper_tail: bool) -> np.ndarray:
        """As :meth:`Law._invert_interval`; near a hard edge at 0 Newton's method in s = ln x on the exact
        mass of :meth:`HardEdge.mass_below`, from the log–log table's quantile (and the power law below the
        floor, in closed form: quantiles below the smallest float come out as 0)."""
        edge = self._hard_edge if i == 0 else None
        if edge is None:
            return self._invert_bulk(i, local, upper_tail)
        mass = edge.total - local if upper_tail else local
        near = mass < edge.cumulative[-1]
        out = np.empty(local.shape)
        if (~near).any():
            out[~near] = self._invert_bulk(i, local[~near], upper_tail)
        if near.any():
            target = mass[near]
            x = edge.edge_table().ppf(target)
            floor = target < edge.cumulative[0]
            if floor.any() and edge.cumulative[0] > _EDGE_TAIL_OK and self._deep_edge is not None:
                # quantiles below e^{−746} round to 0: only the targets above that mass are solved
                representable = floor & (target > self._mass_below_zero_quantile)
                x[floor] = 0.0
                if representable.any():
                    x[representable] = np.exp(self._deep_log_quantile(target[representable]))
            lo_s, hi_s = edge.log_x[0], edge.log_x[-1]
            s = np.log(np.where(floor, 1.0, x))
            # Newton in s per point: a point stops once its step is at rounding level in s or its mass is
            # matched to the rounding of the Gauss–Legendre sum (steps of noise/κ otherwise never end)
            active = np.flatnonzero(~floor & (x > 0))
            for _ in range(6):
                if active.size == 0:
                    break
                xa = np.exp(s[active])
                goal = target[active]
                g = self._edge_mass_below(edge, xa) - goal
                p = xa * self._pdf_vectorised(xa)
                with np.errstate(divide="ignore", invalid="ignore"):
                    step = np.where(p > 0, g / p, 0.0)
                s[active] = np.clip(s[active] - step, lo_s, hi_s)
                done = (np.abs(step) <= 1e-15 * np.maximum(1.0, np.abs(s[active]))) | (np.abs(g) <= 1e-15 * goal)
                active = active[~done]
            out[near] = np.where(floor, x, np.exp(s))
        return out

    def _invert_bulk(self, i: int, local: np.ndarray, upper_tail: bool) -> np.ndarray:
        """As :meth:`Law._invert_interval` (bracket from the cumulative table, Newton inside it, bisection
        otherwise, the same per-point convergence tests), with two savings: the start is the secant of the
        table's masses across the bracket (not its midpoint), and once a point's steps are short — within
        _SHORT_STEP of its distance to the nearest singular point, where ρ is analytic — the mass at the new
        iterate is the old one plus ∫ρ over the step by 8-point Gauss–Legendre (error ≲ (step/2δ)^16, far
        below the quadrature's 1e−13) instead of a tanh–sinh quadrature from the table node."""
        _, below, above = self._cdf_tables[i]
        lo, hi, k = self._table_bracket(i, local, upper_tail)
        with np.errstate(divide="ignore", invalid="ignore"):
            if upper_tail:
                frac = (above[k - 1] - local) / (above[k - 1] - above[k])
            else:
                frac = (local - below[k - 1]) / (below[k] - below[k - 1])
        x = lo + (hi - lo) * np.where(np.isfinite(frac), np.clip(frac, 0.01, 0.99), 0.5)
        singular = self._singular_points
        previous_x = np.full(x.shape, np.nan)
        previous_g = np.zeros(x.shape)
        g8, w8 = _GAUSS_8
        active = np.arange(local.size)
        for _ in range(80):
            if active.size == 0:
                break
            xa = x[active]
            px = previous_x[active]
            j = np.clip(np.searchsorted(singular, px), 1, singular.size - 1) if singular.size > 1 else np.zeros(px.shape, int)
            reach = np.minimum(np.abs(px - singular[j - 1]), np.abs(singular[j] - px)) if singular.size > 1 else np.abs(px)
            short = np.isfinite(px) & (np.abs(xa - px) <= _SHORT_STEP * reach)
            g = np.empty(xa.shape)
            if short.any():  # g grows by ∫ρ over the step (the mass below grows, the mass above shrinks)
                a, b = px[short], xa[short]
                half = 0.5 * (b - a)
                points = (0.5 * (a + b))[:, None] + half[:, None] * g8[None, :]
                g[short] = previous_g[active][short] + (self._pdf_vectorised(points) * w8[None, :]).sum(axis=1) * half
            far = ~short
            if far.any():
                if upper_tail:  # mass above x minus target: decreasing in x; flip the sign to increasing
                    g[far] = -(self._interval_sf(i, xa[far]) - local[active][far])
                else:
                    g[far] = self._interval_cdf(i, xa[far]) - local[active][far]
            previous_x[active], previous_g[active] = xa, g
            lo[active] = np.where(g < 0, xa, lo[active])
            hi[active] = np.where(g >= 0, xa, hi[active])
            x[active], converged = bracketed_mass_step(
                xa, g, self._pdf_vectorised(xa), lo[active], hi[active], local[active], self._mass_atol
            )
            active = active[~converged]
        return x

    # ------------------------------------------------------------------ the law of t = ln λ (log-scale view)
    def _below_floor_mass(self, t: np.ndarray, name: str, value: float) -> np.ndarray:
        """Continuous mass below e^t for t below the floor (~ln 2.2e−308): where the mass below the floor is
        ≤ 1e−7, the hard edge's power law F(x_low)·e^{κ(t − ln x_low)} (relative error of the order of F
        itself); above, the log-variable table :attr:`_deep_edge` (deep laws); ValueError where the law has
        none (a factor given through ψ, or the two masses below the floor disagree)."""
        if not self.intervals or self.intervals[0][0] > 0.0:
            return np.zeros(t.shape)
        edge = self._hard_edge
        deep = self._deep_edge if edge is not None and edge.cumulative[0] > _EDGE_TAIL_OK else None
        if deep is not None:
            ends, t_ends, slopes, cumulative, exponent = deep
            out = np.empty(t.shape)
            below = t < ends[0]
            out[below] = cumulative[0] * np.exp(exponent * (t[below] - ends[0]))
            inside = ~below
            if inside.any():
                si = np.minimum(t[inside], ends[-1])
                k = np.clip(np.searchsorted(ends, si, side="right") - 1, 0, len(ends) - 2)
                g, gw = _GAUSS_8
                half = 0.5 * (si - ends[k])
                nodes = ends[k][:, None] + half[:, None] * (1.0 + g[None, :])
                p = self._log_density(ends, t_ends, slopes, nodes.ravel()).reshape(nodes.shape)
                out[inside] = cumulative[k] + (p * gw[None, :]).sum(axis=1) * half
            return out
        if edge is None or edge.cumulative[0] > _EDGE_TAIL_OK:
            mass = "an unknown mass" if edge is None else f"mass {edge.cumulative[0]:.3g}"
            raise ValueError(
                f"{name} = {value!r} is out of reach: the law of ln λ is resolved down to ln λ = "
                f"{math.log(_EDGE_FLOOR):.6g}, and {mass} lies below, where F is not yet a power law ({self!r})"
            )
        return edge.cumulative[0] * np.exp(edge.exponent * (t - edge.log_x[0]))

    @cached_property
    def _deep_edge(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray, float] | None:
        """The law of s = ln λ below the hard-edge table's floor, for laws with much mass there.

        The characteristic equation involves z only through log z (see :meth:`_newton`), so it is solved
        at log z = s for s below ln(2.2e−308): from the table's floor downward along the real s axis
        (inside the support, the root with Im t ∈ (−π, 0); predictor t + Δs·dt/ds with dt/ds = −1/∂_t log χ),
        on panels widening to 0.05/κ, until F has fallen by 1e−16 (or, next to an atom at 0, to where
        sρ-rounding dominates); the density of s is p(s) = −Im w/π. Then the mass below the floor found
        this way must equal the one found by subtraction (the exact total less the mass above), to 1e−9;
        otherwise ``None`` (and the log view refuses). Only for laws whose factors are all rational.
        Returns (panel ends, increasing; t at them; dt/ds at them; cumulative mass; exponent below).
        """
        edge = self._hard_edge
        if edge is None or edge.cumulative[0] <= _EDGE_TAIL_OK or self.numerical:
            return None
        noise = _EDGE_NOISE if any(loc == 0.0 for loc, _ in self.atoms) else 0.0
        s0 = float(edge.log_x[0])
        kappa = edge.exponent
        start = self._solve(np.array([math.exp(s0)]))
        dummy = np.array([1j])

        def slope(t):
            return -1.0 / self._log_chi(t, [])[1]

        ends, ts, slopes = [s0], [start], [slope(start)]
        step = math.log(10.0) / _EDGE_PANELS_PER_DECADE
        cap = max(step, 0.05 / kappa)
        h = step
        target = edge.cumulative[0] * 1e-16
        while True:
            s_new = ends[-1] - h
            guess = ts[-1] - h * slopes[-1]
            t_new, _, ok = self._newton(dummy, guess, [], log_z=np.array([s_new + 0j]))
            if not (ok.all() and -math.pi < t_new[0].imag < 0):
                h *= 0.5
                if h < 1e-6:
                    return None
                continue
            ends.append(s_new)
            ts.append(t_new)
            slopes.append(slope(t_new))
            p = -math.exp(t_new[0].real) * math.sin(t_new[0].imag) / math.pi
            if p <= max(noise, kappa * target) or len(ends) > 20000:
                break
            h = min(1.5 * h, cap)
        ends_arr, t_arr, slope_arr = np.array(ends[::-1]), np.concatenate(ts[::-1]), np.concatenate(slopes[::-1])
        density = self._log_density(ends_arr, t_arr, slope_arr, ends_arr)
        g, gw = _GAUSS_8
        half = 0.5 * np.diff(ends_arr)
        nodes = (0.5 * (ends_arr[:-1] + ends_arr[1:]))[:, None] + half[:, None] * g[None, :]
        p_nodes = self._log_density(ends_arr, t_arr, slope_arr, nodes.ravel()).reshape(nodes.shape)
        masses = (p_nodes * gw[None, :]).sum(axis=1) * half
        local = max(math.log(density[1] / density[0]) / (ends_arr[1] - ends_arr[0]), 1e-12)  # d ln p/ds at the bottom
        tail = density[0] / local
        cumulative = tail + np.concatenate([[0.0], np.cumsum(masses)])
        if not abs(cumulative[-1] - edge.cumulative[0]) <= 1e-9:
            return None
        cumulative *= edge.cumulative[0] / cumulative[-1]  # the subtraction's value at the floor (~1e−13 change)
        return ends_arr, t_arr, slope_arr, cumulative, local

    @cached_property
    def _mass_below_zero_quantile(self) -> float:
        """The continuous mass below e^{−746} (below which e^s rounds to 0), from :attr:`_deep_edge`."""
        return float(self._below_floor_mass(np.array([-746.0]), "x", 0.0)[0])

    def _deep_log_quantile(self, local: np.ndarray) -> np.ndarray:
        """s = ln x with continuous mass ``local`` below x, below the floor (:attr:`_deep_edge`): Newton in s
        on the table's mass, from ln F interpolated linearly in s; the power law below the table."""
        ends, t_ends, slopes, cumulative, exponent = self._deep_edge
        result = ends[0] + np.log(local / cumulative[0]) / exponent
        inside = local >= cumulative[0]
        if inside.any():
            target = np.minimum(local[inside], cumulative[-1])
            k = np.clip(np.searchsorted(cumulative, target, side="right") - 1, 0, len(ends) - 2)
            lf0, lf1 = np.log(cumulative[k]), np.log(cumulative[k + 1])
            si = ends[k] + (np.log(target) - lf0) / (lf1 - lf0) * (ends[k + 1] - ends[k])
            active = np.arange(si.size)  # per point: a point stops once its own step is at rounding level
            for _ in range(8):
                if active.size == 0:
                    break
                sa = si[active]
                g = self._below_floor_mass(sa, "q", float(target.max())) - target[active]
                p = self._log_density(ends, t_ends, slopes, sa)
                step = np.where(p > 0, g / np.where(p > 0, p, 1.0), 0.0)
                si[active] = np.clip(sa - step, ends[k[active]], ends[k[active] + 1])
                active = active[np.abs(step) > 1e-14 * np.maximum(1.0, np.abs(si[active]))]
            result[inside] = si
        return result

    def _log_density(self, ends: np.ndarray, t_ends: np.ndarray, slopes: np.ndarray, s: np.ndarray) -> np.ndarray:
        """p(s) = −Im w(e^s)/π below the float range, Newton from the nearest solved point (a predictor)."""
        k = np.clip(np.searchsorted(ends, s), 0, len(ends) - 1)
        k = np.where((k > 0) & (np.abs(s - ends[np.maximum(k - 1, 0)]) < np.abs(s - ends[k])), k - 1, k)
        guess = t_ends[k] + (s - ends[k]) * slopes[k]
        t, _, ok = self._newton(np.full(s.shape, 1j), guess, [], log_z=s + 0j)
        if not ok.all():
            raise RuntimeError(f"{self!r}: the log-variable solve did not converge at s = {s[~ok][:3]}")
        return -np.exp(t.real) * np.sin(t.imag) / math.pi

    def _log_cdf(self, t: np.ndarray) -> np.ndarray:
        """P(ln λ ≤ t); t = −∞ is λ = 0 (atoms at 0). Numpy float64 array in, array out."""
        return self._log_tail(t, upper=False)

    def _log_sf(self, t: np.ndarray) -> np.ndarray:
        """P(ln λ > t)."""
        return self._log_tail(t, upper=True)

    def _log_tail(self, t: np.ndarray, upper: bool) -> np.ndarray:
        """cdf (or sf) of ln λ: through e^t above the floor, the mass below the floor under it."""
        t = np.asarray(t, float)
        out = np.full(t.shape, np.nan)
        low = t < math.log(_EDGE_FLOOR)
        high = ~low & ~np.isnan(t)
        if high.any():
            out[high] = (self._sf if upper else self._cdf)(np.exp(t[high]))
        if low.any():
            below = self._mass_at_zero() + self._below_floor_mass(t[low], "t", float(t[low].min()))
            out[low] = 1.0 - below if upper else below
        return out

    def _log_pdf(self, t: np.ndarray) -> np.ndarray:
        """Density of ln λ at t: e^t ρ(e^t) (the continuous part; κ F(e^t) below the floor)."""
        t = np.asarray(t, float)
        out = np.full(t.shape, np.nan)
        low = t < math.log(_EDGE_FLOOR)
        high = ~low & ~np.isnan(t)
        if high.any():
            with np.errstate(over="ignore"):
                x = np.exp(t[high])
            x = np.where(np.isfinite(x), x, 0.0)  # e^t beyond the float range: above the top edge, density 0
            out[high] = x * self._pdf_vectorised(x)
        if low.any():
            mass = self._below_floor_mass(t[low], "t", float(t[low].min()))
            deep = self._deep_edge if self._hard_edge is not None and self._hard_edge.cumulative[0] > _EDGE_TAIL_OK else None
            if deep is not None:
                ends, t_ends, slopes, _, exponent = deep
                tl = t[low]
                inside = tl >= ends[0]
                density = exponent * mass
                if inside.any():
                    density[inside] = self._log_density(ends, t_ends, slopes, tl[inside])
                out[low] = density
            else:
                out[low] = (self._hard_edge.exponent * mass) if self._hard_edge is not None else 0.0
        return out

    def _log_ppf(self, q: np.ndarray) -> np.ndarray:
        """The q-quantile of ln λ (−∞ inside the atoms at 0)."""
        q = np.asarray(q, float)
        zero = self._mass_at_zero()
        edge = self._hard_edge
        x = self._ppf(q)
        with np.errstate(divide="ignore"):
            out = np.log(x)
        low = (q > zero) & (x < _EDGE_FLOOR) & ~np.isnan(q)
        if low.any():
            self._below_floor_mass(np.array([-np.inf]), "q", float(q[low].max()))  # refuses where not resolved
            local = q[low] - zero
            deep = self._deep_edge if edge.cumulative[0] > _EDGE_TAIL_OK else None
            if deep is None:
                out[low] = edge.log_x[0] + np.log(local / edge.cumulative[0]) / edge.exponent
            else:
                out[low] = self._deep_log_quantile(local)
        return out

    def _log_isf(self, p: np.ndarray) -> np.ndarray:
        """Inverse survival function of ln λ: ln isf(p); below the floor the lower-tail quantile
        :meth:`_log_ppf` at 1 − p (an absolute error of 1e−16 in p, as the mass there is far from 0)."""
        p = np.asarray(p, float)
        x = self._isf(p)
        with np.errstate(divide="ignore"):
            out = np.log(x)
        low = (x < _EDGE_FLOOR) & (p < 1.0 - self._mass_at_zero()) & ~np.isnan(p)
        if low.any():
            out[low] = self._log_ppf(1.0 - p[low])
        return out

    def _log_mean(self) -> float:
        """E[ln λ]: −∞ with an atom at 0; else the atoms, plus ∫ ln x ρ(x) dx by tanh–sinh above the hard-edge
        table, ∫ s p(s) ds (s = ln x) by Gauss–Legendre on its panels and on the log-variable table below the
        float range, and the power-law tail ∫ s dF = F(s_b)(s_b − 1/κ) below that (Fuss–Catalan: −L)."""
        self._require_density()
        if self._mass_at_zero() > 0.0:
            return -math.inf
        terms = [m * math.log(loc) for loc, m in self.atoms]
        g, gw = _GAUSS_8
        log_integrand = lambda x: np.log(np.where(x > 0, x, 1.0)) * self._pdf_vectorised(x)  # noqa: E731
        for i, (a, b) in enumerate(self.intervals):
            edge = self._hard_edge if i == 0 else None
            if edge is None:
                nodes, _, _ = self._raw_cdf_tables[i]
                if a == 0.0:
                    raise ValueError(f"E[ln λ] of {self!r}: the density near 0 is not resolved")
                terms.append(float(np.sum(_tanhsinh(log_integrand, nodes[:-1], nodes[1:], self._mass_atol))))
                continue
            nodes, _, _ = self._raw_cdf_tables[i]
            terms.append(float(np.sum(_tanhsinh(log_integrand, nodes[1:-1], nodes[2:], self._mass_atol))))
            half = 0.5 * np.diff(edge.log_x)
            s_nodes = (0.5 * (edge.log_x[:-1] + edge.log_x[1:]))[:, None] + half[:, None] * g[None, :]
            x = np.exp(s_nodes)
            terms.append(float(np.sum((s_nodes * x * self._pdf_vectorised(x) * gw[None, :]).sum(axis=1) * half)))
            deep = self._deep_edge if edge.cumulative[0] > _EDGE_TAIL_OK else None
            if edge.cumulative[0] > _EDGE_TAIL_OK and deep is None:
                self._below_floor_mass(np.array([-np.inf]), "t", -math.inf)  # refuses
            if deep is None:
                terms.append(edge.cumulative[0] * (edge.log_x[0] - 1.0 / edge.exponent))
            else:
                ends, t_ends, slopes, cumulative, exponent = deep
                half = 0.5 * np.diff(ends)
                s_nodes = (0.5 * (ends[:-1] + ends[1:]))[:, None] + half[:, None] * g[None, :]
                p = self._log_density(ends, t_ends, slopes, s_nodes.ravel()).reshape(s_nodes.shape)
                terms.append(float(np.sum((s_nodes * p * gw[None, :]).sum(axis=1) * half)))
                terms.append(cumulative[0] * (ends[0] - 1.0 / exponent))
        return math.fsum(terms)

    # ------------------------------------------------------------------ tables (method="table") and sampling
    @cached_property
    def _sampling_tables(self) -> list[tuple[np.ndarray, np.ndarray, EdgeTable | None]]:
        """Per interval: (cumulative continuous mass at the nodes, nodes, hard-edge table), 2049 Chebyshev nodes.

        Panel masses by 8-point Gauss–Legendre (tanh–sinh on the 4 panels at each end, where the
        density may have an integrable singularity). For an interval starting at 0 the nodes below node
        ``_EDGE_NODE`` (~6e−4 of the interval) take the exact mass of :attr:`_hard_edge` (whose log–log table
        interpolates there), and the cumulative sum starts from the mass at that node (mass below the
        smallest float included); then each interval is rescaled to its mass (a ~1e−10 change).
        """
        g, gw = _GAUSS_8
        tables = []
        for i, (a, b) in enumerate(self.intervals):
            theta = np.linspace(0.0, np.pi, _SAMPLING_NODES)
            nodes = a + (b - a) * 0.5 * (1.0 - np.cos(theta))
            nodes[0], nodes[-1] = a, b
            lo, hi = nodes[:-1], nodes[1:]
            half = 0.5 * (hi - lo)
            x = half[:, None] * g[None, :] + (0.5 * (hi + lo))[:, None]
            masses = (self._pdf_vectorised(x) * gw[None, :]).sum(axis=1) * half
            edge = self._hard_edge if i == 0 else None
            # (with a hard-edge table the panels below _EDGE_NODE take its masses: no tanh–sinh there, whose nodes
            # reach x ~ 1e−300, each a cold solve)
            ends = np.r_[0 if edge is None else 4 : 4, len(lo) - 4 : len(lo)]
            masses[ends] = _tanhsinh(self._pdf_vectorised, lo[ends], hi[ends], self._mass_atol)
            cumulative = np.concatenate([[0.0], np.cumsum(masses)])
            if edge is not None:
                near = edge.mass_below(nodes[1 : _EDGE_NODE + 1], self._pdf_vectorised)
                cumulative[1 : _EDGE_NODE + 1] = near
                cumulative[_EDGE_NODE:] = near[-1] + np.concatenate([[0.0], np.cumsum(masses[_EDGE_NODE:])])
            cumulative *= self._interval_masses[i] / cumulative[-1]
            tables.append((cumulative, nodes, edge.edge_table() if edge is not None else None))
        return tables

    @cached_property
    def _cdf_interpolants(self) -> list[Any]:
        """Per interval: the cubic Hermite interpolant of the tabulated F with the exact slopes F' = ρ at
        the nodes (O(h⁴); PCHIP's estimated slopes are O(h) and left 3e−6 errors where F ∝ x^{1/6}).
        The first node is left out when the density diverges there (a hard edge at 0)."""
        from scipy.interpolate import CubicHermiteSpline

        out = []
        for (a, b), (cumulative, nodes, _) in zip(self.intervals, self._sampling_tables):
            keep = np.concatenate([[True], np.diff(nodes) > 0])
            x, f = nodes[keep], cumulative[keep]
            slope = self._pdf_vectorised(x)  # 0 at the end points (outside the open support)
            start = 1 if a == 0.0 else 0
            out.append(CubicHermiteSpline(x[start:], f[start:], slope[start:]))
        return out

    def _cdf_table(self, x: np.ndarray) -> np.ndarray:
        """The distribution function from the tables (``cdf(x, method="table")``): fast, for many points.

        Between the 2049 Chebyshev nodes of each interval a cubic Hermite interpolant with the exact slopes
        ρ; below ~6e−4 of an interval starting at 0 (a hard edge) ln F against ln x on quarter decades
        (:attr:`_hard_edge`, down to ~2e−308 or where F is 1e−16 of its value there), the power law F ∝ x^κ
        below; atoms with their exact masses, and F exactly constant outside the intervals (at an atom at
        0, F(0) is the atom's mass). Accuracy (tests, against the closed-form Fuss–Catalan cdf): ≤ 2e−7
        absolute everywhere, ≤ 5e−7 relative below 1e−2 (depths 2–50); deep laws keep the mass below the
        smallest float.
        """
        from scipy.interpolate import PchipInterpolator

        x = np.asarray(x, float)
        out = self._atoms_at_most(x)
        for i, ((a, b), (cumulative, nodes, edge), hermite) in enumerate(
            zip(self.intervals, self._sampling_tables, self._cdf_interpolants)
        ):
            clipped = np.clip(x, a, b)
            inside = hermite(clipped)
            if edge is not None:  # hard edge at 0: the log–log table below node _EDGE_NODE
                near = (x > a) & (x < nodes[_EDGE_NODE])
                inside[near] = edge.cdf(x[near])
            elif a == 0.0:  # below the first node the density may diverge: the monotone PCHIP there
                first = clipped < nodes[1]
                keep = np.concatenate([[True], np.diff(nodes) > 0])
                inside[first] = PchipInterpolator(nodes[keep], cumulative[keep])(clipped[first])
            inside = np.where(x <= a, 0.0, np.where(x >= b, cumulative[-1], inside))
            out += np.clip(inside, 0.0, cumulative[-1])
        return out

    def _sf_table(self, x: np.ndarray) -> np.ndarray:
        """1 − the tabulated cdf, summed piece by piece (absolute accuracy as :meth:`_cdf_table`)."""
        x = np.asarray(x, float)
        below = self._cdf_table(x) - self._atoms_at_most(x)
        return self._atoms_above(x) + np.maximum(math.fsum(self._interval_masses) - below, 0.0)

    def _ppf_table(self, q: np.ndarray) -> np.ndarray:
        """The quantile function from the tables (``ppf(q, method="table")``): a monotone (PCHIP) interpolant
        of the inverse through the 2049 nodes per interval, the log–log table near a hard edge at 0, atoms
        with their exact masses. Accuracy (tests): ≤ 5e−5 relative in x against the exact quantiles."""
        from scipy.interpolate import PchipInterpolator

        q = np.asarray(q, float)
        if any(a < loc < b for loc, _ in self.atoms for a, b in self.intervals):
            return self._ppf(q)
        pieces = [(loc, "atom", m) for loc, m in self.atoms]
        pieces += [(a, "part", i) for i, (a, _) in enumerate(self.intervals)]
        pieces.sort(key=lambda p: (p[0], 0 if p[1] == "atom" else 1))
        out = np.full(q.shape, self.support[1])
        done = np.isnan(q)
        accumulated = 0.0
        for loc, kind, data in pieces:
            if kind == "atom":
                hit = ~done & (q <= accumulated + data)
                out[hit] = loc
                accumulated += data
            else:
                cumulative, nodes, edge = self._sampling_tables[data]
                hit = ~done & (q <= accumulated + cumulative[-1])
                if hit.any():
                    local = np.clip(q[hit] - accumulated, 0.0, cumulative[-1])
                    keep = np.concatenate([[True], np.diff(cumulative) > 0])
                    x = np.clip(PchipInterpolator(cumulative[keep], nodes[keep])(local), nodes[0], nodes[-1])
                    if edge is not None:  # hard edge at 0: the log–log table below node _EDGE_NODE
                        near = (local > 0) & (local < cumulative[_EDGE_NODE])
                        x[near] = np.clip(edge.ppf(local[near]), nodes[0], nodes[_EDGE_NODE])
                    out[hit] = x
                accumulated += cumulative[-1]
            done |= hit
        out[q == 0.0] = self.support[0]
        out[q == 1.0] = self.support[1]
        return out

    def _isf_table(self, p: np.ndarray) -> np.ndarray:
        return self._ppf_table(1.0 - np.asarray(p, float))

    def _sample_uniform(self, u: np.ndarray) -> np.ndarray:
        """Inverse-transform sampling through the tabulated quantile function (:meth:`_ppf_table`)."""
        return self._ppf_table(u)

    # ------------------------------------------------------------------ log χ and its derivatives
    def _log_chi(self, t: np.ndarray, taus: list[np.ndarray]):
        """log χ (up to 2πi) in the unknowns t = log(1 + w), τ_j = log u_j.

        Returns (log χ, ∂/∂t at fixed τ, [(ρ_j, ∂ρ_j/∂τ_j, s_j, power_j)]) with the residuals
        ρ_j = (1 + ψ_j(u_j)) − (1 + s_j w) of the numerical factors (∂ρ_j/∂t = −s_j (1 + w)).
        """
        w = np.expm1(t)
        one_plus_w = np.exp(t)
        value = np.log(w) - t
        slope = one_plus_w / w - 1.0
        for term in self.rational:
            v, d = term.factor.log_s(w, t, float(term.scale))
            value += term.power * v
            slope += term.power * d
        extras = []
        for term, tau, (one_plus_psi, u_dpsi, psi) in zip(self.numerical, taus, _numerical_psi(self.numerical, taus)):
            s = float(term.scale)
            one_plus_sw = one_plus_w if s == 1.0 else 1.0 + s * w
            log_one_plus_sw = t if s == 1.0 else np.log1p(s * w)
            value += term.power * (tau + log_one_plus_sw - np.log(s * w))
            slope += term.power * (s * one_plus_w / one_plus_sw - one_plus_w / w)
            # ρ_j = ψ_j − s w from ψ_j itself where the factor gives it: (1 + ψ_j) − (1 + s w) carries the rounding
            # of 1 + ψ_j (~1e−16 absolute), which the depth amplifies where |w| ≪ 1 (next to a deep law's top edge)
            rho = one_plus_psi - one_plus_sw if psi is None else np.where(np.isnan(psi), one_plus_psi - one_plus_sw, psi - s * w)
            if self._psi_watch is not None:
                self._watch_psi(term, tau, one_plus_psi, u_dpsi)
            extras.append((rho, u_dpsi, s * one_plus_w, term.power, term.factor.psi_tolerance * np.abs(one_plus_psi)))
        return value, slope, extras

    #: while a point's last-resort continuation runs (:meth:`_solve_cold_taus`): the first (factor, u) at which a
    #: numerical factor returned a non-finite 1 + ψ or uψ' at a finite u ≠ 0, else None (not watching: None)
    _psi_watch: list | None = None

    def _watch_psi(self, term: Term, tau: np.ndarray, one_plus_psi: np.ndarray, u_dpsi: np.ndarray) -> None:
        """Record in :attr:`_psi_watch` the first finite u = e^τ at which ``term``'s factor gave a non-finite value."""
        if self._psi_watch:
            return
        with np.errstate(over="ignore", invalid="ignore"):
            u = np.exp(np.asarray(tau, complex))
            bad = np.isfinite(u) & (u != 0) & ~(np.isfinite(one_plus_psi) & np.isfinite(u_dpsi))
        if np.any(bad):
            self._psi_watch.append((term.factor, complex(np.ravel(u)[np.flatnonzero(np.ravel(bad))[0]])))

    # a factor's ψ is NaN where its own solve failed; those steps are rejected below (np.isfinite), not warned about
    @np.errstate(divide="ignore", invalid="ignore")
    def _newton(self, z: np.ndarray, t: np.ndarray, taus: list[np.ndarray], iterations: int = 40, log_z: np.ndarray | None = None,
                slopes: list | None = None, inner: int | None = None):
        """Newton on Log(zχ) = 0 and ψ_j(u_j) = s_j w in (t, τ_j); keeps Im w < 0 (Im t ∈ (−π, 0)) for Im z > 0.

        z enters only through log z: ``log_z`` (if given) replaces np.log(z), so that z = e^{log z} may lie
        below the float range (then pass z = 1j to keep the branch guard, valid inside the support).
        Each point is iterated until it converges (or its step is rejected as non-finite: it then keeps its
        last finite iterate, reported as not converged); converged points are not evaluated again.
        ``slopes`` (a list, if given) receives the reduced slope ∂_t log χ + Σ_j k_j s_j (1 + w)/(u_j ψ_j') and each
        dτ_j/dt = s_j (1 + w)/(u_j ψ_j') at each converged point's last evaluation (one step before its root, within
        Newton's tolerance; NaN where not converged): the data :meth:`_remember` keeps, without another evaluation.
        ``inner``: inner steps per outer step (default _INNER_STEPS); with fewer, the outer step is the joint Newton
        step in (t, τ_j) (fine next to a root: warm starts), and a point counts as converged by its step only once
        every ρ_j is also at the inner steps' tolerance."""
        shape = np.shape(z)
        z = np.asarray(z).reshape(-1)
        t = np.array(t, complex).reshape(-1)
        taus = [np.array(tau, complex).reshape(-1) for tau in taus]
        converged = np.zeros(z.shape, bool)
        log_z = (np.log(z) if log_z is None else np.asarray(log_z, complex)).reshape(-1)
        active = np.arange(z.size)
        if slopes is not None:
            slope_out = np.full(z.shape, np.nan, complex)
            dtaus_out = [np.full(z.shape, np.nan, complex) for _ in taus]
        # a zero ∂ψ/∂τ (at a pole of a discrete factor's ψ) makes the step non-finite: rejected below, so the
        # divisions that form it are silenced here
        with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
            for _ in range(iterations):
                if active.size == 0:
                    break
                za, ta, lza = z[active], t[active], log_z[active]
                taua = [tau[active] for tau in taus]
                positive_eta = za.imag > 0
                log_chi, a, extras = self._log_chi(ta, taua)
                # inner Newton: solve ψ_j(u_j) = s_j w at the current t first, so that the outer step is
                # Newton's step on the reduced equation Log(zχ(w)) = 0 alone. (A joint step in (t, τ_j) lets the
                # residuals ρ_j enter multiplied by the power of the factor — the depth — and diverges for deep
                # products far from the spectrum.)
                inner_steps = _INNER_STEPS if inner is None else inner
                for _inner in range(inner_steps if extras else 0):
                    big = np.zeros(za.shape, bool)
                    for tau, (rho, u_dpsi, s_opw, k, noise) in zip(taua, extras):
                        floor = np.maximum(2.0 * noise, _tau_rounding(tau, u_dpsi))
                        big |= np.abs(rho) > np.maximum(1e-14 * np.abs(s_opw), floor)
                    if not big.any():
                        break
                    for tau, (rho, u_dpsi, *_) in zip(taua, extras):
                        step = np.where(big, rho / u_dpsi, 0)
                        tau[...] = np.where(np.isfinite(step), tau - step, tau)
                    sub = np.flatnonzero(big)
                    if _INNER_SUBSET and sub.size < big.size:
                        # only the points whose τ_j moved are evaluated again (the others' values are unchanged:
                        # _log_chi is point-wise), so a few slow points no longer cost a full evaluation per step
                        log_chi_s, a_s, extras_s = self._log_chi(ta[sub], [tau[sub] for tau in taua])
                        log_chi, a = log_chi.copy(), a.copy()
                        log_chi[sub], a[sub] = log_chi_s, a_s
                        merged = []
                        for full, part in zip(extras, extras_s):
                            fields = []
                            for f_full, f_part in zip(full, part):
                                if isinstance(f_full, np.ndarray):
                                    f_full = np.array(f_full, dtype=np.result_type(f_full, f_part))
                                    f_full[sub] = f_part
                                fields.append(f_full)
                            merged.append(tuple(fields))
                        extras = merged
                    else:
                        log_chi, a, extras = self._log_chi(ta, taua)
                r0 = lza + log_chi
                r0 = r0.real + 1j * np.angle(np.exp(1j * r0.imag))  # principal Log(zχ)
                numerator = r0.copy()
                denominator = a.copy()
                for rho, u_dpsi, s_opw, k, _ in extras:
                    numerator -= k * rho / u_dpsi
                    denominator += k * s_opw / u_dpsi
                dt = -numerator / denominator
                too_big = np.abs(dt) > 1.0
                dt[too_big] /= np.abs(dt[too_big])
                for _halving in range(40):
                    bad = positive_eta & (((ta + dt).imag >= 0) | ((ta + dt).imag <= -math.pi))
                    if not bad.any():
                        break
                    dt[bad] *= 0.5
                new_taus = [tau + (s_opw * dt - rho) / u_dpsi for tau, (rho, u_dpsi, s_opw, *_) in zip(taua, extras)]
                # a step into a pole of ψ (or from a non-finite slope) is rejected: those points keep their
                # last finite iterate and are reported as not converged, so the caller refines them
                finite = np.isfinite(ta + dt)
                for new_tau in new_taus:
                    finite &= np.isfinite(new_tau)
                dt = np.where(finite, dt, 0)
                for tau, tau_a, new_tau in zip(taus, taua, new_taus):
                    tau[active] = np.where(finite, new_tau, tau_a)
                t[active] = ta + dt
                residual = np.abs(r0)
                # the residual cannot go below the rounding of the sum of logarithms that forms it, nor below
                # the error of a numerical ψ_j carried into log χ through τ_j (times the factor's power)
                rounding = 1e-15 * (self._n_logs + np.abs(lza) + np.abs(log_chi))
                for tau, (rho, u_dpsi, s_opw, k, noise) in zip(taua, extras):
                    residual = np.maximum(residual, np.abs(rho) / np.abs(s_opw))
                    rounding = rounding + abs(k) * (2.0 * noise / np.abs(u_dpsi) + _tau_rounding(tau, u_dpsi) / np.abs(s_opw))
                small_step = np.abs(dt) <= _NEWTON_TOL * np.maximum(1.0, np.abs(ta + dt))
                if inner_steps < _INNER_STEPS:  # joint steps: τ_j must have converged too
                    for tau, (rho, u_dpsi, s_opw, k, noise) in zip(taua, extras):
                        floor = np.maximum(2.0 * noise, _tau_rounding(tau, u_dpsi))
                        small_step &= np.abs(rho) <= np.maximum(1e-14 * np.abs(s_opw), floor)
                # no convergence where the rounding bound is not finite, nor where the step took some u_j = e^{τ_j}
                # out of the float range: a |uψ'| ~ 1e−68 gave τ steps to ~1e67 with a bound 2·noise/|uψ'| ~ 1e55 that
                # passed any residual (depth-1 gelu, σ_b² = 1); the point stays unconverged and takes the fallbacks
                trusted = np.isfinite(rounding)
                for new_tau in new_taus:
                    trusted &= np.abs(new_tau.real) <= _LOG_FLOAT_MAX
                done = finite & trusted & (small_step | (residual <= rounding))
                converged[active] = done
                if slopes is not None and done.any():
                    slope_out[active[done]] = denominator[done]
                    for out, (_, u_dpsi, s_opw, *_) in zip(dtaus_out, extras):
                        out[active[done]] = (s_opw / u_dpsi)[done]
                # a rejected step repeats itself: such a point stays where it is, unconverged
                active = active[finite & ~done]
        if slopes is not None:
            slopes.append((slope_out.reshape(shape), [d.reshape(shape) for d in dtaus_out]))
        return t.reshape(shape), [tau.reshape(shape) for tau in taus], converged.reshape(shape)

    @cached_property
    def _first_moments(self) -> tuple[float, float]:
        m = self._float_moments(2)
        return float(m[0]), float(m[1])

    @cached_property
    def _spectral_scale(self) -> float:
        """max_k m_k^{1/k}, k ≤ 12: a lower bound of the upper edge, close to it for deep products (where
        √m₂ is far below the edge and a start at 10√m₂ would be inside the moment series' circle)."""
        # in logs: the high moments of a chaotic deep law (σ_w² = 3, depth 100: m_12 ~ 10^570) leave the
        # float range long before m_k^{1/k} does
        return math.exp(self._log_spectral_scale)

    @cached_property
    def _log_spectral_scale(self) -> float:
        """ln of :attr:`_spectral_scale`, from the moments in mpmath (no under- or overflow)."""
        moments = self._exact_moments(_SERIES_ORDER, exact=False)
        return max(_log_of_positive(m) / k for k, m in enumerate(moments, start=1))

    def _require_float_range(self) -> None:
        """ValueError when the law lies outside float64's range: its density, edges and quantiles (a lower bound
        of its upper edge is max_k m_k^{1/k}) would under- or overflow, and a wrong answer would follow."""
        log_scale = self._log_spectral_scale
        if not _LOG_FLOAT_LOW <= log_scale <= _LOG_FLOAT_HIGH:
            raise ValueError(
                f"{self!r} lies outside the float64 range: its spectral scale max_k m_k^(1/k) is "
                f"e^{log_scale:.6g} (10^{log_scale / math.log(10):.1f}), and its density, edges and quantiles "
                f"need it within 10^{_LOG_FLOAT_LOW / math.log(10):.0f}..10^{_LOG_FLOAT_HIGH / math.log(10):.0f}; "
                "its moments are still available (law.moment(k, method=\"exact\")) — for the spectrum, take a "
                "shallower depth or rescale the weights (sigma_w2) so that the product stays in range"
            )

    def _solve(self, x: np.ndarray, ratio: float = 0.25) -> np.ndarray:
        """t = log(1 + w), w = ψ(1/z), at z = x + i0 inside the support.

        Where a solution at a nearby point x_ref is known (:attr:`_solutions`: every point solved inside the
        support so far), Newton at z = x + i0 from the predictor t_ref + (s − s_ref)·dt/ds, s = ln z,
        dt/ds = −1/∂_t log χ — a few steps instead of the η-continuation's dozens of solves. The equation
        involves z only through s (:meth:`_newton`), and t(s + i0) is analytic in s away from the logarithms
        of the positive singular points (edges, atoms; 0 is at s = −∞): "nearby" is |s − s_ref| ≤
        _WARM_REACH·δ (δ: the distance in s from s_ref to the nearest of them, with none between) and ≤
        _WARM_MAX_GAP. A warm point is kept when Newton converged to a root inside the support (−π < Im t < 0);
        the others take the continuation (:meth:`_solve_cold`). With numerically inverted factors the unknowns
        τ_j = log u_j start from τ_ref + (t − t_ref)·dτ_j/dt, dτ_j/dt = s_j(1 + w)/(u ψ_j'), dt/ds = −1/(∂_t log χ
        + Σ_j k_j s_j (1 + w)/(u ψ_j')) (the reduced equation's slope, as in :meth:`_newton`), and a warm point
        is kept only if each u_j also stays on its branch (Im u_j ≤ 0). Next to a root, warm Newton takes joint steps in
        (t, τ_j) (``_WARM_INNER = 0``: no inner steps, about half the ψ evaluations; for factors of power ≤
        _WARM_JOINT_POWER), and the roots it accepts are
        remembered too (``_WARM_REMEMBER``), with the slopes its last evaluation gave, so that a table's later passes
        (tanh–sinh levels, the hard-edge and sampling tables) start next to them.
        """
        x = np.asarray(x, float)
        t = np.empty(x.shape, complex)
        cold = np.ones(x.shape, bool)
        if ratio == 0.25 and x.size:
            warm_t, warm = self._solve_warm(x)
            t[warm] = warm_t[warm]
            cold = ~warm
        if ratio == 0.25 and cold.sum() > _SEED_MIN:
            # many cold points (a table's first pass): the continuation at seeds within warm reach of all of
            # them, then Newton from the seeds for the rest (those not accepted take the continuation below)
            idx = np.flatnonzero(cold)
            seeds = idx[self._seeds(x[idx])]
            tc, taus = self._solve_cold_taus(x[seeds], ratio)
            t[seeds] = tc
            cold[seeds] = False
            self._remember(x[seeds], tc, taus)
            warm_t, warm = self._solve_warm(x[cold])
            rest = np.flatnonzero(cold)
            t[rest[warm]] = warm_t[warm]
            cold[rest[warm]] = False
        if cold.any():
            tc, taus = self._solve_cold_taus(x[cold], ratio)
            t[cold] = tc
            self._remember(x[cold], tc, taus)
        return t

    def _seeds(self, x: np.ndarray) -> np.ndarray:
        """Indices of a subset of x > 0 such that every x is within warm reach (see :meth:`_solve`) of one on its
        side of every positive singular point (greedy in ln x); x ≤ 0 are all seeds."""
        positive = self._singular_points[self._singular_points > 0]
        with np.errstate(divide="ignore"):
            log_x = np.log(np.where(x > 0, x, 0.0))
        order = np.argsort(log_x, kind="stable")
        reach = np.full(x.shape, _WARM_MAX_GAP)
        side = np.zeros(x.shape, int)
        if positive.size:
            logs = np.log(positive)
            reach = np.minimum(_WARM_REACH * np.min(np.abs(log_x[:, None] - logs[None, :]), axis=1), _WARM_MAX_GAP)
            side = np.searchsorted(logs, log_x)
        chosen = np.zeros(x.shape, bool)
        chosen[x <= 0] = True
        last = None
        for i in order[x[order] > 0]:
            if last is None or side[i] != side[last] or log_x[i] - log_x[last] > 0.9 * reach[last]:
                chosen[i] = True
                last = i
        return np.flatnonzero(chosen)

    @cached_property
    def _solutions(self) -> dict[str, np.ndarray]:
        """Points solved inside the support: ln x (sorted), t, ∂_t log χ at t, and δ (distance to the
        nearest singular point)."""
        empty = np.zeros(0)
        n = len(self.numerical)
        return {"log_x": empty, "t": empty.astype(complex), "slope": empty.astype(complex), "reach": empty,
                "taus": np.zeros((n, 0), complex), "dtaus": np.zeros((n, 0), complex)}

    def _remember(self, x: np.ndarray, t: np.ndarray, taus: list[np.ndarray] | None = None,
                  slopes: tuple[np.ndarray, list[np.ndarray]] | None = None) -> None:
        """Add the solutions inside the support (−sin Im t > 0, x > 0) to :attr:`_solutions` (capped). ``slopes``:
        their reduced slopes and dτ_j/dt where the caller has them (from :meth:`_newton`), else one evaluation here."""
        taus = np.array(taus, complex).reshape(len(taus), x.size) if taus else np.zeros((0, x.size), complex)
        keep = (x > 0) & np.isfinite(t) & (-np.sin(t.imag) > 0) & (t.imag > -math.pi)
        keep &= np.all(np.isfinite(taus) & (np.sin(taus.imag) <= 0.0), axis=0)  # Im u_j ≤ 0
        if slopes is not None:
            given_slope = np.asarray(slopes[0], complex).reshape(x.size)
            given_dtaus = np.array(slopes[1], complex).reshape(len(slopes[1]), x.size)
            keep &= np.isfinite(given_slope) & np.all(np.isfinite(given_dtaus), axis=0)
        if not keep.any():
            return
        x, t, taus = x[keep], t[keep], taus[:, keep]
        positive = self._singular_points[self._singular_points > 0]
        log_x = np.log(x)
        # the distance in s = ln x to the nearest singular point (0 is at s = −∞)
        reach = np.min(np.abs(log_x[:, None] - np.log(positive)[None, :]), axis=1) if positive.size else np.full(x.shape, np.inf)
        memo = self._solutions
        log_x = np.concatenate([memo["log_x"], log_x])
        order = np.argsort(log_x, kind="stable")
        if order.size > _SOLUTIONS_CAP:  # thin evenly rather than drop a region
            order = order[:: -(-order.size // _SOLUTIONS_CAP)]
        memo["log_x"] = log_x[order]
        memo["t"] = np.concatenate([memo["t"], t])[order]
        if slopes is not None:
            slope, dtaus = given_slope[keep], list(given_dtaus[:, keep])
        else:
            _, slope, extras = self._log_chi(t, list(taus))
            dtaus = []
            for _, u_dpsi, s_opw, k, _ in extras:
                slope = slope + k * s_opw / u_dpsi
                dtaus.append(s_opw / u_dpsi)
        memo["slope"] = np.concatenate([memo["slope"], slope])[order]
        memo["reach"] = np.concatenate([memo["reach"], reach])[order]
        memo["taus"] = np.concatenate([memo["taus"], taus], axis=1)[:, order]
        memo["dtaus"] = np.concatenate([memo["dtaus"], np.array(dtaus, complex).reshape(taus.shape)], axis=1)[:, order]

    def _solve_warm(self, x: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(t, accepted) by Newton from the nearest remembered solution (see :meth:`_solve`)."""
        memo = self._solutions
        accepted = np.zeros(x.shape, bool)
        t = np.zeros(x.shape, complex)
        if memo["log_x"].size == 0:
            return t, accepted
        with np.errstate(divide="ignore"):
            log_x = np.log(np.where(x > 0, x, 0.0))
        ref = memo["log_x"]
        k = np.clip(np.searchsorted(ref, log_x), 1, ref.size - 1) if ref.size > 1 else np.zeros(x.shape, int)
        if ref.size > 1:
            k = np.where(np.abs(log_x - ref[k - 1]) < np.abs(log_x - ref[k]), k - 1, k)
        singular = np.log(self._singular_points[self._singular_points > 0])
        same_side = np.searchsorted(singular, log_x) == np.searchsorted(singular, ref[k])
        reach = np.minimum(_WARM_REACH * memo["reach"][k], _WARM_MAX_GAP)
        near = (x > 0) & same_side & (np.abs(log_x - ref[k]) <= reach)
        idx = np.flatnonzero(near)
        if idx.size == 0:
            return t, accepted
        gap = log_x[idx] - ref[k[idx]]
        guess = memo["t"][k[idx]] - gap / memo["slope"][k[idx]]
        tau_guess = [tau[k[idx]] + (guess - memo["t"][k[idx]]) * dtau[k[idx]] for tau, dtau in zip(memo["taus"], memo["dtaus"])]
        found: list = []
        solved, solved_taus, ok = self._newton(x[idx] + 0j, guess, tau_guess, iterations=_WARM_ITERATIONS,
                                               slopes=found if _WARM_REMEMBER else None, inner=self._warm_inner)
        ok &= np.isfinite(solved) & (solved.imag < 0) & (solved.imag > -math.pi) & (-np.sin(solved.imag) > 0)
        for tau in solved_taus:  # each u_j = e^{τ_j} on its branch, Im u_j ≤ 0
            ok &= np.isfinite(tau) & (np.sin(tau.imag) <= 0.0)
        # a smooth branch moves O(step²) away from the first-order predictor: Newton that went farther than
        # _WARM_JUMP × the predictor's step reached another root of the same equations (a spurious one inside
        # the support: BN batch Jacobian, linear, B = 4, depth 1, ρ(0.0518) = 1.17 instead of 0.411 on a cdf
        # table's grid, 2.5e−3 of mass), and the point takes the continuation
        step = guess - memo["t"][k[idx]]
        ok &= np.abs(solved - guess) <= _WARM_JUMP * np.abs(step) + 1e-12 * (1.0 + np.abs(guess))
        t[idx] = solved
        accepted[idx] = ok
        # the accepted roots are remembered too, so that later passes start next to them (not where they would overflow
        # the memory and thin it: the sparse cold seeds next to the edges are worth more than a dense bulk)
        if found and ok.any() and memo["log_x"].size + int(ok.sum()) <= _SOLUTIONS_CAP:
            slope, dtaus = found[0]
            self._remember(x[idx][ok], solved[ok], [tau[ok] for tau in solved_taus], (slope[ok], [d[ok] for d in dtaus]))
        return t, accepted

    @property
    def _warm_inner(self) -> int | None:
        """Inner steps of the warm Newton: _WARM_INNER (joint steps) where every numerical factor's power is at most
        _WARM_JOINT_POWER, else the default (see :meth:`_newton`)."""
        if all(abs(term.power) <= _WARM_JOINT_POWER for term in self.numerical):
            return _WARM_INNER
        return None

    def _solve_cold(self, x: np.ndarray, ratio: float = 0.25) -> np.ndarray:
        """t at z = x + i0 by η-continuation from far above the spectrum (:meth:`_solve_cold_taus`)."""
        return self._solve_cold_taus(x, ratio)[0]

    def _solve_cold_taus(self, x: np.ndarray, ratio: float = 0.25) -> tuple[np.ndarray, list[np.ndarray]]:
        """(t, τ_j) at z = x + i0 by η-continuation from far above the spectrum.

        Points whose continuation fails (Newton stuck at a pole of a discrete factor's ψ) are solved again one at a
        time on other paths (:data:`_RETRY_RATIOS`: η ratio ½, then ¼, start height set by the point itself), and
        take the first that converges. A point that none reaches raises FloatingPointError if a numerical factor
        gave a non-finite ψ at a finite u on the way; else its iterate is returned if it reads as density 0 (far
        below a gap's edge, where u = 1/z leaves the float range; the retries stop at such an iterate), and NaN if it
        would give a positive density: it is no solution, and the density there is unknown (docs/derivations.md §2.6)."""
        t, ok, taus = self._continue(x, ratio)
        if not ok.all() and ratio < 0.5:
            for i in np.flatnonzero(~ok):
                first = None
                for retry in _RETRY_RATIOS:
                    self._psi_watch = []
                    try:
                        t_i, ok_i, taus_i = self._continue(x[i : i + 1], retry)
                        watch = self._psi_watch
                    finally:
                        self._psi_watch = None
                    if not ok_i[0] and watch:
                        # the factor's non-finite ψ rejected Newton's steps there: the iterate is not a solution, and
                        # its density would be silently wrong (a NaN from a smooth factor's rule once gave cdf tables
                        # of mass 1.001). That is an error in the factor.
                        factor, u = watch[0]
                        raise FloatingPointError(
                            f"{self!r}: the factor {factor!r} returned a non-finite ψ at u = {u!r}, and the solution at "
                            f"x = {float(x[i])!r} could not be reached without it; the law's density there is unknown"
                        )
                    if ok_i[0]:
                        break
                    if first is None:
                        first = (t_i, taus_i)
                    if _reads_as_zero_density(complex(t_i[0])) and any(abs(tau[0].real) > _LOG_FLOAT_MAX for tau in taus_i):
                        break  # u_j = e^τ_j left the float range (far below a gap's edge): no other path gets further
                if not ok_i[0]:
                    # no path converged: the finer path's iterate if it reads as density 0, else NaN (unknown; the
                    # density is NaN there, which the hard-edge table reads as an unresolved panel)
                    t_i, taus_i = first
                    if not _reads_as_zero_density(complex(t_i[0])):
                        t_i = np.full(1, complex(math.nan, math.nan))
                        taus_i = [np.full(1, complex(math.nan, math.nan)) for _ in taus_i]
                t[i : i + 1] = t_i
                for tau, tau_i in zip(taus, taus_i):
                    tau[i : i + 1] = tau_i
        return t, taus

    def _continue(self, x: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        """(t, converged, τ_j) at z = x + i0 by η-continuation; the points next to 0 (x ≤ _AXIS_X × the
        spectral scale) from the imaginary axis where the law allows it (:meth:`_continue_from_axis`), the
        others (and any the axis path fails) by :meth:`_continue_eta`."""
        low = np.zeros(x.shape, bool)
        if ratio == 0.25 and x.size and self._axis_allowed and _DEEP_ETA > 0.0:  # _DEEP_ETA = 0: the plain path
            low = (x > 0) & (x <= _AXIS_X * self._axis_scale)
        if not low.any():
            return self._continue_eta(x, ratio)
        t = np.empty(x.shape, complex)
        ok = np.zeros(x.shape, bool)
        taus = [np.empty(x.shape, complex) for _ in self.numerical]
        idx = np.flatnonzero(low)
        t_l, taus_l, ok_l = self._continue_from_axis(x[idx])
        t[idx], ok[idx] = t_l, ok_l
        for tau, tau_l in zip(taus, taus_l):
            tau[idx] = tau_l
        rest = np.flatnonzero(~ok)
        if rest.size:
            t_r, ok_r, taus_r = self._continue_eta(x[rest], ratio)
            t[rest], ok[rest] = t_r, ok_r
            for tau, tau_r in zip(taus, taus_r):
                tau[rest] = tau_r
        return t, ok, taus

    @cached_property
    def _tangent_steps(self) -> bool:
        """Whether the continuation may take long steps from the tangent predictor: laws without atoms whose
        numerical factors declare a ψ without poles off its cut (``tangent_steps``); with atoms or discrete
        factors, a long step can land on another branch of t."""
        return bool(self.numerical) and not self.atoms and all(getattr(term.factor, "tangent_steps", False) for term in self.numerical)

    @cached_property
    def _axis_allowed(self) -> bool:
        """Whether :meth:`_continue` may start points next to 0 on the imaginary axis: laws without atoms whose
        numerical factors all state whether they allow tangent steps (the smooth factors,
        :class:`~rmt_init.theory.gaussian_image.GaussianImageS`; with an atom in the factor, SELU's d, only short
        steps follow the axis path down, see :meth:`_continue_from_axis`)."""
        return bool(self.numerical) and not self.atoms and all(hasattr(term.factor, "tangent_steps") for term in self.numerical)

    @cached_property
    def _axis_scale(self) -> float:
        """The scale below which x counts as next to 0 for :meth:`_continue`: the spectral scale, or the
        smallest positive singular point if that is lower."""
        positive = self._singular_points[self._singular_points > 0]
        return min(self._spectral_scale, float(positive.min()) if positive.size else math.inf)

    @cached_property
    def _axis(self) -> dict[str, Any]:
        """The solution on the imaginary axis z = iη (s = ln η + iπ/2), built down from η = 10 × the spectral
        scale by :meth:`_extend_axis` as far as it is asked for: ln η (decreasing), t, τ_j, the reduced slope
        ∂_t log χ + Σ_j k_j s_j (1 + w)/(u ψ_j') and dτ_j/dt (as in :meth:`_remember`); ``end``: True once a
        step failed (the path then stops there)."""
        return {"log_eta": np.zeros(0), "t": np.zeros(0, complex), "taus": np.zeros((len(self.numerical), 0), complex),
                "slope": np.zeros(0, complex), "dtaus": np.zeros((len(self.numerical), 0), complex), "end": False}

    def _axis_slopes(self, t: np.ndarray, taus: list[np.ndarray]) -> tuple[np.ndarray, list[np.ndarray]]:
        """The reduced slope d log χ/dt along the solution and dτ_j/dt (see :meth:`_newton`); NaN where some
        u_j ψ_j' is 0 or not finite (no tangent there: the callers refuse those points)."""
        _, slope, extras = self._log_chi(t, taus)
        usable = np.ones(np.shape(slope), bool)
        for _, u_dpsi, *_ in extras:
            usable &= np.isfinite(u_dpsi) & (u_dpsi != 0)
        dtaus = []
        for _, u_dpsi, s_opw, k, _ in extras:
            ratio = np.where(usable, s_opw / np.where(usable, u_dpsi, 1.0), np.nan)
            slope = slope + k * ratio
            dtaus.append(ratio)
        return slope, dtaus

    def _axis_newton(self, log_eta: float, t: complex, taus: list[complex]):
        """Newton at z = iη given ln η (z enters only through ln z = ln η + iπ/2; z = i keeps the branch guard);
        (t, τ_j, accepted): converged, on the branch −π < Im t < 0 with Im w < 0, and each Im u_j ≤ 0."""
        solved, solved_taus, ok = self._newton(
            np.array([1j]), np.array([t], complex), [np.array([tau], complex) for tau in taus],
            log_z=np.array([log_eta + 0.5j * math.pi]))
        ok = bool(ok[0]) and bool(np.isfinite(solved[0])) and -math.pi < solved[0].imag < 0 and -math.sin(solved[0].imag) > 0
        for tau in solved_taus:
            ok = ok and bool(np.isfinite(tau[0])) and math.sin(tau[0].imag) <= 0.0
        return complex(solved[0]), [complex(tau[0]) for tau in solved_taus], ok

    def _extend_axis(self, log_eta_min: float) -> None:
        """Extend :attr:`_axis` down to ln η ≤ ``log_eta_min`` (or to where a step fails).

        From η = 10 × scale (w ≈ m₁/z + m₂/z²) down to _DEEP_ETA × scale in steps of 1/4 with the far predictor
        w ∝ 1/z, then from the tangent in s = ln z (t is analytic there: the axis keeps a distance ≥ π/2 in s
        from every positive singular point, and 0 is at s = −∞) with steps Δs adapted to the predictor's error
        e = |t − t_pred|: accepted when Newton converged on the branch and e ≤ _AXIS_PREDICTOR_TOL, halved
        otherwise, doubled (up to _AXIS_MAX_STEP) after a step with e below a quarter of that.
        """
        axis = self._axis
        if axis["end"] or (axis["log_eta"].size and axis["log_eta"][-1] <= log_eta_min):
            return
        scale = self._spectral_scale
        log_scale = math.log(scale)
        points = [(float(v), complex(t), [complex(tau) for tau in taus], complex(sl), [complex(d) for d in dts])
                  for v, t, taus, sl, dts in zip(axis["log_eta"], axis["t"], axis["taus"].T, axis["slope"], axis["dtaus"].T)]
        if not points:
            m1, m2 = self._first_moments
            log_eta = math.log(10.0) + log_scale
            z = 1j * math.exp(log_eta)
            w = m1 / z + m2 / z**2
            t0 = complex(np.log1p(w))
            taus0 = [complex(np.log(float(term.scale) * w / term.factor.mean)) for term in self.numerical]
            t0, taus0, ok = self._axis_newton(log_eta, t0, taus0)
            if not ok:
                axis["end"] = True
                return
            slope, dtaus = self._axis_slopes(np.array([t0]), [np.array([tau]) for tau in taus0])
            points.append((log_eta, t0, taus0, complex(slope[0]), [complex(d[0]) for d in dtaus]))
        step = math.log(64.0)
        deep = math.log(_DEEP_ETA) + log_scale
        while points[-1][0] > log_eta_min:
            log_eta, t, taus, slope, dtaus = points[-1]
            if log_eta > deep:  # as in _continue_eta: steps of 1/4, far from the spectrum from w ∝ 1/z
                new = log_eta - math.log(4.0)
                if log_eta - math.log(4.0) > log_scale + math.log(4.0):  # |z| > 4 × scale at the new point
                    t_pred, tau_pred = complex(np.log1p(complex(np.expm1(t)) * 4.0)), [tau + math.log(4.0) for tau in taus]
                else:
                    t_pred, tau_pred = t, list(taus)
                check = False
            else:
                new = log_eta - step
                dt = step / slope  # Δt = −Δs/slope, Δs = −step
                t_pred, tau_pred = t + dt, [tau + dt * d for tau, d in zip(taus, dtaus)]
                check = True
            t_new, taus_new, ok = self._axis_newton(new, t_pred, tau_pred)
            error = max([abs(t_new - t_pred)] + [abs(a - b) for a, b in zip(taus_new, tau_pred)]) if ok else math.inf
            if check and (not ok or error > _AXIS_PREDICTOR_TOL):
                if step <= math.log(4.0) / 8:
                    axis["end"] = True
                    break
                step *= 0.5
                continue
            if not ok:
                axis["end"] = True
                break
            if check and error < 0.25 * _AXIS_PREDICTOR_TOL:  # the doubled step's error ~4× this: within the tolerance
                step = min(2.0 * step, _AXIS_MAX_STEP)
            slope_new, dtaus_new = self._axis_slopes(np.array([t_new]), [np.array([tau]) for tau in taus_new])
            points.append((new, t_new, taus_new, complex(slope_new[0]), [complex(d[0]) for d in dtaus_new]))
        n = len(self.numerical)
        axis["log_eta"] = np.array([p[0] for p in points])
        axis["t"] = np.array([p[1] for p in points], complex)
        axis["taus"] = np.array([p[2] for p in points], complex).T.reshape(n, len(points))
        axis["slope"] = np.array([p[3] for p in points], complex)
        axis["dtaus"] = np.array([p[4] for p in points], complex).T.reshape(n, len(points))

    def _continue_from_axis(self, x: np.ndarray) -> tuple[np.ndarray, list[np.ndarray], np.ndarray]:
        """(t, τ_j, accepted) at z = x + i0 for 0 < x ≪ the spectral scale, starting on the imaginary axis.

        Far above x the path z = x + iη of :meth:`_continue_eta` is the imaginary axis to O(x/η), so every such
        point starts at η = _AXIS_START·x from the axis solution (:attr:`_axis`) at the smallest tabulated
        η_k ≥ _AXIS_START·x, by the tangent predictor over Δs = ln(η/η_k) + ln(1 − ix/η) (at most one axis step,
        whose predictor error was ≤ _AXIS_PREDICTOR_TOL), then goes down in η by steps of 1/64 from the tangent
        (1/4 from the last solution where the law forbids tangent steps) to its floor (10⁻³x, as in
        :meth:`_continue_eta`) and to η = 0. t(z) and u_j(z) are single-valued analytic in the upper half-plane,
        so the root reached is the one the continuation from far above finds (equal to Newton's tolerance). Points
        whose Newton fails or whose start lands farther than 2·_AXIS_PREDICTOR_TOL from its predictor are
        reported as not accepted (the caller continues them from far above). docs/derivations.md §2.4.
        """
        n = x.size
        log_x = np.log(x)
        self._extend_axis(float(log_x.min()) + math.log(_AXIS_START))
        axis = self._axis
        t = np.zeros(n, complex)
        taus = [np.zeros(n, complex) for _ in self.numerical]
        ok = np.zeros(n, bool)
        ref = axis["log_eta"]
        if ref.size < 2:
            return t, taus, ok
        # the smallest tabulated η_k ≥ _AXIS_START·x (ref decreases; where the path stopped short, its last point)
        k = np.searchsorted(-ref, -(log_x + math.log(_AXIS_START)), side="right") - 1
        idx = np.flatnonzero(k >= 0)
        if idx.size == 0:
            return t, taus, ok
        kk = k[idx]
        xa = x[idx]
        # start at η = _AXIS_START·x, from the tangent at η_k: Δs = ln(x + iη) − ln(iη_k) = ln(η/η_k) + ln(1 − ix/η)
        # (|Δs| at most one axis step, whose predictor error was ≤ _AXIS_PREDICTOR_TOL); where the path stopped
        # short of _AXIS_START·x, at η_k itself
        log_eta = np.where(kk < ref.size - 1, np.log(xa) + math.log(_AXIS_START), ref[kk])
        eta = np.exp(log_eta)
        floor = 1e-15 * np.maximum(xa, np.finfo(float).tiny)
        if self._singular_points.size:
            floor = np.maximum(floor, _CONTINUATION_FLOOR * self._singular_distance(xa))
        ds = (log_eta - ref[kk]) + np.log1p(-1j * (xa / eta))
        dt = -ds / axis["slope"][kk]
        t_pred = axis["t"][kk] + dt
        tau_pred = [tau[kk] + dt * d[kk] for tau, d in zip(axis["taus"], axis["dtaus"])]
        eta = np.maximum(eta, floor)
        ta, taua, good = self._newton(xa + 1j * eta, t_pred, tau_pred)
        # the start is kept only where the root is as near the predictor as along the axis path (else another
        # root may have been found; those points take the continuation from far above)
        good &= np.abs(ta - t_pred) <= 2.0 * _AXIS_PREDICTOR_TOL
        for tau, pred in zip(taua, tau_pred):
            good &= np.abs(tau - pred) <= 2.0 * _AXIS_PREDICTOR_TOL
        tangent = self._tangent_steps
        step = 1.0 / 64.0 if tangent else 0.25
        while True:
            active = np.flatnonzero(good & (eta > floor))
            if active.size == 0:
                break
            e_old = eta[active]
            e_new = np.maximum(e_old * step, floor[active])
            t_start, tau_start = ta[active], [tau[active] for tau in taua]
            if tangent:
                z_old, z_new = xa[active] + 1j * e_old, xa[active] + 1j * e_new
                slope, dtaus = self._axis_slopes(t_start, tau_start)
                # no tangent where the slope is 0 or not finite (a u_j ψ_j' = 0): those points are refused
                usable = np.isfinite(slope) & (slope != 0)
                for d in dtaus:
                    usable &= np.isfinite(d)
                if not usable.all():
                    good[active[~usable]] = False
                    active, e_old, e_new = active[usable], e_old[usable], e_new[usable]
                    z_old, z_new, slope = z_old[usable], z_new[usable], slope[usable]
                    t_start, tau_start = t_start[usable], [tau[usable] for tau in tau_start]
                    dtaus = [d[usable] for d in dtaus]
                    if active.size == 0:
                        continue
                dt = -(np.log(z_new) - np.log(z_old)) / slope
                t_start, tau_start = t_start + dt, [tau + dt * d for tau, d in zip(tau_start, dtaus)]
            t_new, taus_new, conv = self._newton(xa[active] + 1j * e_new, t_start, tau_start)
            ta[active] = t_new
            for tau, new in zip(taua, taus_new):
                tau[active] = new
            eta[active] = e_new
            good[active] = conv
        ta, taua, conv = self._newton(xa + 0j, ta, taua)
        good &= conv & np.isfinite(ta) & (ta.imag <= 0) & (ta.imag > -math.pi)
        t[idx], ok[idx] = ta, good
        for tau, new in zip(taus, taua):
            tau[idx] = new
        return t, taus, ok

    def _singular_distance(self, x: np.ndarray) -> np.ndarray:
        """Distance from each x to the nearest singular point (edges, atoms, 0)."""
        return np.min(np.abs(x[:, None] - self._singular_points[None, :]), axis=1)

    def _continue_eta(self, x: np.ndarray, ratio: float) -> tuple[np.ndarray, np.ndarray, list[np.ndarray]]:
        m1, m2 = self._first_moments
        scale = max(self._spectral_scale, max((loc for loc, _ in self.atoms), default=0.0))
        eta = 10.0 * scale + 10.0 * np.max(np.abs(x), initial=0.0)
        z = x + 1j * eta
        w = m1 / z + m2 / z**2
        t = np.log1p(w)
        taus = [np.log(float(term.scale) * w / term.factor.mean) for term in self.numerical]
        t, taus, ok = self._newton(z, t, taus)
        # η decreases geometrically for every point down to its own floor, then the last step goes to
        # η = 0. w(z) is analytic in a disc around x whose radius is x's distance δ to the nearest singular
        # point (an edge, an atom, 0), so Newton from η = δ/1000 lands on the right branch at η = 0; the
        # floor is that, but never below 1e-15·x (points near the hard edge at 0 need η ≪ x).
        failed = ~ok
        floor = 1e-15 * np.maximum(np.abs(x), np.finfo(float).tiny)
        if self._singular_points.size and self.continuous_mass > _ATOM_TOL:
            distance = np.min(np.abs(x[:, None] - self._singular_points[None, :]), axis=1)
            floor = np.maximum(floor, _CONTINUATION_FLOOR * distance)
        tangent = self._tangent_steps  # long tangent steps only where no other branch is near (see there)
        while True:
            # below _DEEP_ETA × scale, steps of ratio³ from the tangent predictor (t(s) is analytic in s = ln z
            # there, far from every singular point but those it stops short of by its floor)
            step = ratio**3 if tangent and ratio == 0.25 and eta <= _DEEP_ETA * scale else ratio
            eta *= step
            active = np.flatnonzero(eta * ratio >= floor * ratio**2) if eta > floor.min() else np.array([], int)
            if active.size == 0:
                break
            za = x[active] + 1j * np.maximum(eta, floor[active])
            t_old, taus_old = t[active], [tau[active] for tau in taus]
            # predictor: far from the spectrum w = ψ(1/z) ≈ m₁/z, and each u_j ∝ w, so all scale like 1/z
            far = np.abs(za) > 4.0 * scale
            # log(z_prev/z) as a difference of logs: both lie in the upper half-plane, so the difference is the
            # principal log of the ratio, and no complex division over/underflows at |z| ~ 1e-300 or 1e300
            z_prev = x[active] + 1j * np.maximum(eta / step, floor[active])
            shift = np.where(far, np.log(z_prev) - np.log(za), 0.0)
            t_start = np.where(far, np.log1p(np.expm1(t_old) * np.exp(shift)), t_old)
            tau_start = [tau + shift for tau in taus_old]
            if step != ratio:  # the tangent: dt/ds = −1/(reduced slope), dτ_j/dt as in _remember
                # only from iterates inside the float range (a failed point continues from its last iterate, whose
                # u_j = e^τ_j may have left it: no tangent there, :meth:`_axis_slopes`), the others keep t_start
                usable = ~far & np.isfinite(t_old)
                for tau in taus_old:
                    usable &= np.isfinite(tau) & (np.abs(tau.real) <= _LOG_FLOAT_MAX)
                idx = np.flatnonzero(usable)
                if idx.size:
                    slope, dtaus = self._axis_slopes(t_old[idx], [tau[idx] for tau in taus_old])
                    with np.errstate(invalid="ignore"):  # NaN slope (no tangent): dt NaN, not used
                        dt = (np.log(z_prev[idx]) - np.log(za[idx])) / slope  # Δt = −Δs/slope, Δs = ln za − ln z_prev
                    good = np.isfinite(dt) & (np.abs(dt) < 0.5)
                    sel = idx[good]
                    dt, dtaus = dt[good], [dtau[good] for dtau in dtaus]
                    t_start = t_start.copy()
                    t_start[sel] = t_old[sel] + dt
                    tau_start = [tau0.copy() for tau0 in tau_start]
                    for tau0, tau, dtau in zip(tau_start, taus_old, dtaus):
                        tau0[sel] = tau[sel] + dt * dtau
            ta, taua, ok = self._newton(za, t_start, tau_start)
            if not ok.all():
                # redo the step in small ones, from the last converged point of the failed paths
                ta = np.where(ok, ta, t_old)
                taua = [np.where(ok, new, old) for new, old in zip(taua, taus_old)]
                ta, taua, ok = self._refine(x[active], ta, taua, ok, eta / step, eta, floor[active])
                failed[active] |= ~ok
            t[active] = ta
            for tau, new in zip(taus, taua):
                tau[active] = new
        t, taus, ok = self._newton(x + 0j, t, taus)
        return t, ok & ~failed, taus

    def _refine(self, x, t, taus, ok, eta_from, eta_to, floor):
        """Redo one continuation step in 40 small ones for the points that did not converge."""
        idx = np.flatnonzero(~ok)
        ti = t[idx]
        taui = [tau[idx] for tau in taus]
        for eta in np.geomspace(eta_from, eta_to, 40)[1:]:
            ti, taui, oki = self._newton(x[idx] + 1j * np.maximum(eta, floor[idx]), ti, taui)
        ok = ok.copy()
        ok[idx] = oki
        t = t.copy()
        t[idx] = ti
        out = []
        for tau, new in zip(taus, taui):
            tau = tau.copy()
            tau[idx] = new
            out.append(tau)
        return t, out, ok

    def _density(self, x: np.ndarray) -> np.ndarray:
        """ρ(x) = −Im G(x + i0)/π = −Im w/(πx); |Im w| within rounding of 0 (outside the support) is 0."""
        x = np.asarray(x, float)
        t = self._solve(x)
        # Im w = Im e^t = e^{Re t} sin(Im t): exact even when w is within 1e-300 of −1. Outside the
        # support w is real (Im t = 0 or ±π); rounding leaves |sin(Im t)| of a few ulps there.
        sine = np.sin(t.imag)
        inside = -sine > 8 * np.finfo(float).eps
        # Next to a hard edge at 0, Im t → 0 like a power of x and is computed with full relative accuracy
        # (relu/orthogonal depth 3: Im t = −5e−101 at x = 1e−300, exactly ∝ x^{1/3}); the rounding threshold
        # above is meant for the soft edges, so below 1e−3 of an interval starting at 0 any −sin > 0 counts.
        if self.intervals and self.intervals[0][0] == 0.0:
            inside |= (x < 1e-3 * self.intervals[0][1]) & (-sine > 0)
        # next to an integrable singularity at 0 a density can exceed the float range at subnormal x (deep
        # chaotic products: ρ ~ x^{−L/(L+1)}/scale); it is then +inf there, not a warning
        # (t is NaN where no path solved the point, :meth:`_solve_cold_taus`: the density there is unknown, NaN)
        with np.errstate(over="ignore", divide="ignore"):
            return np.where(inside, -np.exp(t.real) * sine / (math.pi * x), np.where(np.isnan(t), np.nan, 0.0))

    def _pdf(self, x: np.ndarray) -> np.ndarray:
        self._require_density()
        return self._density(x)

    def pdf(self, x: Any, method: str | None = None, **options: Any) -> np.ndarray | float:
        """Density at ``x`` (:meth:`SpectralLaw.pdf`). A point that no η-path solves (:meth:`_solve_cold_taus`:
        density unknown, NaN internally, where the tables treat it as an unresolved panel) raises
        ``FloatingPointError`` naming it, rather than returning NaN for a finite ``x``."""
        return self._refuse_unsolved(x, super().pdf(x, method, **options))

    def logpdf(self, x: Any) -> np.ndarray | float:
        """ln :meth:`pdf`; refuses the points :meth:`pdf` refuses."""
        return self._refuse_unsolved(x, super().logpdf(x))

    def _refuse_unsolved(self, x: Any, out: Any) -> Any:
        bad = np.isnan(np.asarray(out, float)) & ~np.isnan(np.asarray(x, float))
        if bad.any():
            where = np.asarray(x, float)[bad].ravel()
            raise FloatingPointError(
                f"{self!r}: the free-product solver reached no solution at x = {float(where[0])!r}"
                f"{f' (and {where.size - 1} more points)' if where.size > 1 else ''}; the density there is unknown"
            )
        return out

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

    # ------------------------------------------------------------------ moments
    def _series(self, order: int, exact: bool = True) -> list[Any]:
        """The S-series to ``order``: exact rationals while their size stays small, else 60-digit mpmath.

        Raising a series with 53-bit rational coefficients to the power L (depth) makes denominators of
        ~53·L·order bits; beyond _EXACT_BITS (or always, with ``exact=False``) the product is taken in
        mpmath floats with 60 significant digits instead (ample for float64 moments: each series
        operation loses at most a few digits).
        """
        factor_series = [_series.scale_argument(t.factor.series(order), _exact(t.scale), order) for t in self.terms]
        bits = sum(
            abs(t.power) * max((c.denominator.bit_length() for c in fs if isinstance(c, Fraction)), default=0)
            for t, fs in zip(self.terms, factor_series)
        )
        # float coefficients (a factor known only to float precision) go to mpmath too: a product of float
        # series underflows at depth (leaky_relu, σ_w² = 1/3, depth 200: m_6 ~ 1e−350 became 0.0)
        floats = any(isinstance(c, float) for fs in factor_series for c in fs)
        if bits > _EXACT_BITS or not exact or floats:
            factor_series = [[mpmath.mpf(c.numerator) / c.denominator if isinstance(c, Fraction) else mpmath.mpf(c) for c in fs] for fs in factor_series]
        s: list[Any] = [1] + [0] * order
        for t, fs in zip(self.terms, factor_series):
            s = _series.multiply(s, _series.power(fs, t.power, order), order)
        return s

    @cached_property
    def _moment_cache(self) -> list[Any]:
        with mpmath.workdps(60):
            return _series.moments_from_s(self._series(_SERIES_ORDER), _SERIES_ORDER)

    @cached_property
    def _float_moment_cache(self) -> list[Any]:
        """The first moments in 60-digit mpmath: what the law's construction and its float methods need. The
        exact rationals (:attr:`_moment_cache`) are built only when asked for: with float weight variances
        (torch_default: σ_w² = 1/3 rounded) their denominators grow to thousands of bits at depth 50 and cost
        seconds of gcds."""
        with mpmath.workdps(60):
            return _series.moments_from_s(self._series(_SERIES_ORDER, exact=False), _SERIES_ORDER)

    def _float_moments(self, order: int) -> list[float]:
        return [float(m) for m in self._exact_moments(order, exact=False)]

    def _exact_moments(self, order: int, exact: bool = True) -> list[Any]:
        """m_1..m_order from the S-series (exact rationals where possible; 60-digit floats with
        ``exact=False``). Orders above ``_MAX_MOMENT_ORDER`` are refused: the series reversion costs ~order³
        operations on numbers that grow with the order (order 100 of a depth-4 ReLU law: 3 s exact)."""
        if order <= _SERIES_ORDER:
            return (self._moment_cache if exact else self._float_moment_cache)[:order]
        if order > _MAX_MOMENT_ORDER:
            raise ValueError(
                f"order must be <= {_MAX_MOMENT_ORDER} (the largest supported order of the moments of a free "
                f"product, from its S-series); got {order!r}"
            )
        with mpmath.workdps(60):
            return _series.moments_from_s(self._series(order, exact), order)

    def _moment_exact(self, order: int) -> Any:
        if order == 0:
            return 1
        return self._exact_moments(order)[order - 1]

    def _moment(self, order: float) -> float:
        if float(order).is_integer() and order >= 1:
            return float(self._exact_moments(int(order), exact=False)[int(order) - 1])
        self._require_density()
        return super()._moment(order)

    def mean(self) -> float:
        return float(self._moment_exact(1))

    def var(self) -> float:
        m1, m2 = self._exact_moments(2)
        return float(m2 - m1 * m1)


def _reads_as_zero_density(t: complex) -> bool:
    """Whether t = log(1 + w) gives density 0 both to :meth:`FreeProductLaw._density` (−sin Im t within 8ε of 0) and to
    laws that threshold xρ = −Im w/π (BN: below _UNSOLVED_NOISE); False for a non-finite t."""
    if not (math.isfinite(t.real) and math.isfinite(t.imag)):
        return False
    x_rho = -math.exp(t.real) * math.sin(t.imag) / math.pi if t.real < 700.0 else math.copysign(math.inf, -math.sin(t.imag))
    return x_rho <= _UNSOLVED_NOISE and -math.sin(t.imag) <= 8 * np.finfo(float).eps


def _tau_rounding(tau: np.ndarray, u_dpsi: np.ndarray) -> np.ndarray:
    """The change of a numerical factor's ψ under one rounding of its unknown τ = log u: |∂ψ/∂τ|·4ε(1 + |τ|).

    ρ = ψ(u) − s w cannot be driven below it. Next to a square-root edge of the factor (a branch point of its ψ,
    |∂ψ/∂τ| ~ |u − 1/b|^{−1/2}) it exceeds the factor's own ``psi_tolerance``: one linear Gaussian block, α = 1.5, at
    1e−6 below its upper edge, |∂ψ/∂τ| = 1128 and ρ jittered at 1e−12 between τ one ulp apart, so Newton ran all
    its iterations, was refined in 40 η-steps that did the same (~5500 block solves, 7–90 s a point), and the cdf
    tables of that law took many minutes (docs/derivations.md §8.7(g))."""
    return 4.0 * np.finfo(float).eps * (1.0 + np.abs(tau)) * np.abs(u_dpsi)


def _numerical_psi(terms: Sequence[Term], taus: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray, np.ndarray | None]]:
    """(1 + ψ_j(u_j), u_j ψ_j'(u_j), ψ_j(u_j) or None) of the numerical factors at u_j = e^{τ_j}; ψ_j itself from
    factors that sum it with relative accuracy where |ψ_j| ≪ 1 (a method ``psi_parts``, NaN where they do not,
    e.g. the smooth factors), else None;
    factors whose class solves several at once (a classmethod ``one_plus_psi_many(factors, us)``, e.g. residual
    blocks) are handed over together."""
    us = [np.exp(tau) for tau in taus]
    out: list[Any] = [None] * len(us)
    groups: dict[Any, list[int]] = {}
    for j, term in enumerate(terms):
        many = getattr(type(term.factor), "one_plus_psi_many", None)
        parts = getattr(term.factor, "psi_parts", None)
        if many is not None:
            groups.setdefault(many, []).append(j)
        elif parts is not None:
            out[j] = parts(us[j])
        else:
            out[j] = (*term.factor.one_plus_psi(us[j]), None)
    for many, members in groups.items():
        for j, result in zip(members, many([terms[j].factor for j in members], [us[j] for j in members])):
            out[j] = (*result, None)
    return out


def _log_of_positive(value: Any) -> float:
    """ln of a positive exact rational, integer, mpmath or float number, without converting it to a float first."""
    if isinstance(value, Fraction):
        return math.log(value.numerator) - math.log(value.denominator)
    if isinstance(value, int):
        return math.log(value)
    if isinstance(value, mpmath.mpf):
        return float(mpmath.log(value))
    return math.log(float(value))


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


# ============================================================================================ building
def s_transform(law: Any) -> list[Term]:
    """The S-transform terms of a law or factor (laws of this package are decomposed exactly)."""
    from .fuss_catalan import FussCatalan
    from .marchenko_pastur import MarchenkoPastur

    if isinstance(law, FreeProductLaw):
        return list(law.terms)
    if isinstance(law, SFactor):
        return [Term(law)]
    if isinstance(law, FussCatalan):
        return [Term(marchenko_pastur_s(1.0), 1, law.depth)]
    if isinstance(law, MarchenkoPastur):
        return [Term(marchenko_pastur_s(law.ratio, law.variance))]
    raise ValueError(
        f"cannot take the S-transform of {law!r}; give a law of this package, an SFactor, "
        "or a discrete law (DiscreteS)"
    )


def _atoms_of(law: Any) -> list[Atom]:
    if isinstance(law, (SpectralLaw, SFactor)):
        return list(law.atoms)
    raise ValueError(f"not a law: {law!r}")


def free_product(*laws: Any, description: str | None = None) -> FreeProductLaw:
    """The free multiplicative convolution μ_1 ⊠ μ_2 ⊠ … of spectral laws (or S-transform factors).

    Example: ``free_product(marchenko_pastur(1), marchenko_pastur(1))`` is the Fuss–Catalan law of
    order 2; its mean is 1 and its second moment 3.
    """
    if not laws:
        raise ValueError("free_product needs at least one law")
    terms: list[Term] = []
    atoms: list[Atom] | None = None
    for law in laws:
        terms += s_transform(law)
        law_atoms = _atoms_of(law)
        atoms = law_atoms if atoms is None else _belinschi(atoms, law_atoms)
    name = description or " ⊠ ".join(repr(law) for law in laws)
    return FreeProductLaw(terms, atoms or [], name)


def change_dimension(law: Any, ratio: float, description: str | None = None) -> FreeProductLaw:
    """Re-normalise a law from an n-dimensional space to an N-dimensional one, ratio = N/n.

    μ' = (1/ratio)μ + (1 − 1/ratio)δ₀ (zero eigenvalues added when ratio > 1, removed when < 1) and
    S'(w) = S(ratio·w)·ratio(1 + w)/(1 + ratio·w).
    """
    f = check_real("ratio", ratio, low=0.0, low_inclusive=False)
    terms = [Term(t.factor, _exact(t.scale) * _exact(f), t.power) for t in s_transform(law)]
    terms.append(Term(_dimension_factor(f)))
    atoms = _rescale_atoms(_atoms_of(law), f)
    return FreeProductLaw(terms, atoms, description or f"{law!r} in dimension ×{f:g}")


def per_layer_values(name: str, values: Any, count: int) -> list[float]:
    """``values`` as ``count`` positive finite floats: one number for every layer, or one per layer.

    Anything else (``None``, a string, a complex number, a wrong length) raises ``ValueError`` naming ``name``.
    """
    if isinstance(values, numbers.Real) and not isinstance(values, bool):
        return [check_real(name, values, low=0.0, low_inclusive=False)] * count  # checked once (depth 10⁶: 1.5 s)
    elif isinstance(values, (str, bytes)) or not isinstance(values, Iterable):
        raise ValueError(f"{name} must be a positive number or a sequence of {count} positive numbers (one per layer); got {values!r}")
    values = list(values)
    if len(values) != count:
        raise ValueError(f"{name} must be a number or have {count} entries (one per layer); got {len(values)}")
    return [
        check_real(f"{name}[{i}]" if count > 1 else name, v, low=0.0, low_inclusive=False) for i, v in enumerate(values)
    ]


def require_float_moments(law: "FreeProductLaw", name: str, value: Any) -> None:
    """Refuse a law whose first moments leave the float range, naming the parameter that scales it."""
    try:
        m1, m2 = law._first_moments
    except OverflowError:
        m1 = m2 = math.inf
    if not (math.isfinite(m1) and math.isfinite(m2)):
        raise ValueError(
            f"{name}={value!r}: the law's mean or second moment leaves the float range (the spectrum scales as "
            f"the product of the layers' variances); the law at unit variances, scaled by that product, is the "
            "same law in representable units"
        )


def rectangular_product(widths: Sequence[int], variances: Sequence[float] | float = 1.0) -> FreeProductLaw:
    """Squared singular values of W_L ⋯ W_1, W_l of shape n_l × n_{l−1} with entries of variance σ_l²/n_{l−1}.

    ``widths`` = [n_0, …, n_L]; the law lives on the n_L-dimensional output side:
    S(w) = Π_l σ_l^{−2}/(1 + (n_L/n_{l−1}) w), atom 1 − min_l n_l / n_L at 0 (docs/derivations.md §2.2).
    """
    from .._validate import check_widths

    widths = check_widths("widths", widths)
    if len(widths) < 2:
        raise ValueError(f"widths must list n_0, …, n_L with L >= 1; got {widths!r}")
    depth = len(widths) - 1
    variances = per_layer_values("variances", variances, depth)
    n_out = widths[-1]
    terms = [Term(RationalS(1 / _exact(v), poles=(Fraction(n_out, n_in),), name=f"W{l + 1}")) for l, (v, n_in) in enumerate(zip(variances, widths[:-1]))]
    zero = 1.0 - min(widths) / n_out
    atoms = [(0.0, zero)] if zero > 0 else []
    law = FreeProductLaw(terms, atoms, f"rectangular Gaussian product, widths {list(widths)}")
    require_float_moments(law, "variances", variances if len(set(variances)) > 1 else variances[0])
    return law
