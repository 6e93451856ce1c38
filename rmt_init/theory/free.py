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

Modules
-------
This module holds the factors, the atoms, the moments and the constructors; :class:`FreeProductLaw` takes its
edges and intervals from :mod:`rmt_init.theory._free_edges`, its density solver from
:mod:`rmt_init.theory._free_solver` and its distribution-function tables and sampling from
:mod:`rmt_init.theory._free_tables` (mixins, one job each).
"""
from __future__ import annotations

import math
import numbers
from abc import ABC, abstractmethod
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from fractions import Fraction
from functools import cached_property
from typing import Any

import mpmath
import numpy as np

from .._validate import check_real
from . import _series
from ._free_edges import _ATOM_TOL, FreeProductEdges, _real_inverse_array
from ._free_solver import FreeProductSolver
from ._free_tables import FreeProductTables
from .laws import Atom, SpectralLaw

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
_MAX_MOMENT_ORDER = 100  # largest moment order computed from the S-series (cost ~order³, see _exact_moments)
_LOG_FLOAT_LOW = math.log(1e-290)  # laws whose spectral scale lies outside these bounds are refused
_LOG_FLOAT_HIGH = math.log(1e290)  # (their densities or edges would leave float64's range)
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


class FreeProductLaw(FreeProductEdges, FreeProductTables, FreeProductSolver, SpectralLaw):
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


def _log_of_positive(value: Any) -> float:
    """ln of a positive exact rational, integer, mpmath or float number, without converting it to a float first."""
    if isinstance(value, Fraction):
        return math.log(value.numerator) - math.log(value.denominator)
    if isinstance(value, int):
        return math.log(value)
    if isinstance(value, mpmath.mpf):
        return float(mpmath.log(value))
    return math.log(float(value))


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
