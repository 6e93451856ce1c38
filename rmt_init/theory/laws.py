"""The spectral-law protocol: one interface for every law ``rmt_init`` returns.

A *spectral law* is the distribution of a nonnegative random variable — for us the squared singular
values λ = σ² of a random matrix, i.e. the eigenvalues of J Jᵀ. It may have point masses (``atoms``:
the mass at 0 of a Marchenko–Pastur law with ratio > 1, or of a ReLU network's Jacobian) next to an
absolutely continuous part carried by one or more intervals.

The method names are those of :mod:`scipy.stats`: ``pdf``, ``logpdf``, ``cdf``, ``sf``, ``ppf``
(alias ``icdf``), ``isf``, ``moment``, ``mean``, ``var``, ``std``, ``median``, ``support``,
``sample`` (alias ``rvs``).

Design (after SciPy's distribution infrastructure, SciPy ≥ 1.15): a law implements what it knows in
closed form — at least the continuous density ``_pdf``, the ``support`` and the ``atoms`` — and
inherits everything else from generic strategies:

* ``cdf``/``sf``: vectorised tanh-sinh quadrature of the density (:func:`scipy.integrate.tanhsinh`,
  which handles the integrable endpoint singularities of spectral laws), started from the nearest
  node of a cached cumulative table;
* ``ppf``/``isf``: a bracketed, safeguarded Newton iteration on that cdf, brackets taken from the table;
* ``moment``: quadrature of ``x**k * pdf`` plus the atoms;
* ``sample``: inverse-transform sampling through ``ppf``.

Why not build directly on ``scipy.stats.make_distribution`` / ``rv_continuous``: neither supports
atoms, and their generic inverse cdf (per point root finding on per point quadrature) took ~16 s for
10⁴ points on a Marchenko–Pastur density in our measurements, where the closed-form inverses below
take milliseconds. We keep SciPy's names and conventions instead.

Conventions: ``pdf`` is the density of the continuous part (it integrates to ``continuous_mass``,
and ``continuous_mass + sum(atom masses) == 1``); it is 0 outside the open intervals of the
continuous part, including at their end points (where some densities diverge). NaN evaluation points
give NaN (as in SciPy); probabilities outside [0, 1] raise ``ValueError``.
"""
from __future__ import annotations

import math
from abc import ABC, abstractmethod
from collections.abc import Callable
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_choice, check_int, check_real

__all__ = ["Law", "SpectralLaw", "SingularValueLaw", "Atom"]

Atom = tuple[float, float]
"""A point mass as ``(location, mass)``."""

_MOMENT_KINDS = ("raw", "central", "standardized")
_QUAD_RTOL = 1e-13
_TABLE_NODES = 65
#: evaluation strategies of ``cdf``, ``sf``, ``ppf``, ``isf`` (``method=``): the law's most accurate one, or
#: a cached table (free products; other laws use their closed forms for both)
_CDF_METHODS = ("default", "table")


def _as_float_array(x: ArrayLike) -> tuple[np.ndarray, bool]:
    arr = np.asarray(x, dtype=float)
    return arr, arr.ndim == 0


def _finish(out: np.ndarray, scalar: bool) -> np.ndarray | float:
    return float(out) if scalar else out


def _tanhsinh(
    f: Callable[[np.ndarray], np.ndarray], a: np.ndarray, b: np.ndarray, atol: float = 1e-300
) -> np.ndarray:
    """Vectorised ∫_a^b f (elementwise over a, b) by tanh-sinh quadrature (relative tolerance 1e−13, or
    ``atol``, whichever is larger)."""
    from scipy.integrate import tanhsinh

    a, b = np.broadcast_arrays(np.asarray(a, float), np.asarray(b, float))
    out = np.zeros(a.shape)
    # tanh-sinh returns NaN on intervals of a few ulps, where the midpoint rule is exact to rounding
    tiny = np.abs(b - a) <= 64 * np.finfo(float).eps * np.maximum(np.abs(a), np.abs(b))
    short = tiny & (b != a)
    if short.any():
        out[short] = f(0.5 * (a[short] + b[short])) * (b[short] - a[short])
    wide = ~tiny
    if wide.any():
        out[wide] = tanhsinh(f, a[wide], b[wide], rtol=_QUAD_RTOL, atol=atol).integral
    return out


class Law(ABC):
    """A probability law on [0, ∞) with atoms and an absolutely continuous part.

    Subclasses provide ``support``, ``_pdf`` and, where they have them, ``atoms``, ``intervals`` and
    closed-form overrides of ``_cdf``, ``_sf``, ``_ppf``, ``_isf``, ``_moment``, ``_sample``.
    """

    #: evaluation methods accepted by ``pdf(..., method=...)``; the first is the default.
    pdf_methods: tuple[str, ...] = ("fast",)
    #: absolute tolerance of the quadratures of the density behind the generic cdf/sf/ppf (besides the
    #: relative 1e−13); a law whose density carries an absolute error floor sets it to that floor.
    _mass_atol: float = 1e-300

    # ------------------------------------------------------------------ what a law defines
    @property
    @abstractmethod
    def support(self) -> tuple[float, float]:
        """Smallest closed interval ``(lo, hi)`` carrying all the mass, atoms included."""

    @property
    def atoms(self) -> tuple[Atom, ...]:
        """Point masses as ``(location, mass)`` pairs, sorted by location; empty if none."""
        return ()

    @property
    def intervals(self) -> tuple[tuple[float, float], ...]:
        """Disjoint intervals ``(a, b)`` carrying the continuous part, sorted; default: the support."""
        return (self.support,) if self.continuous_mass > 0.0 else ()

    @abstractmethod
    def _pdf(self, x: np.ndarray) -> np.ndarray:
        """Continuous density at points strictly inside one of ``intervals`` (a 1-d float array)."""

    # ------------------------------------------------------------------ derived facts
    @property
    def continuous_mass(self) -> float:
        """Mass of the absolutely continuous part: ``1 - sum of atom masses``."""
        return 1.0 - math.fsum(m for _, m in self.atoms)

    @property
    def upper_edge(self) -> float:
        """The right end of the support (for squared singular values: the top eigenvalue of J Jᵀ)."""
        return float(self.support[1])

    # ------------------------------------------------------------------ density
    def _inside(self, x: np.ndarray) -> np.ndarray:
        mask = np.zeros(x.shape, dtype=bool)
        for a, b in self.intervals:
            mask |= (x > a) & (x < b)
        return mask

    def pdf(self, x: ArrayLike, method: str | None = None, **options: Any) -> np.ndarray | float:
        """Density of the continuous part at ``x`` (0 outside the open intervals of the continuous part).

        ``method`` picks an evaluation strategy among :attr:`pdf_methods` (default: the first);
        ``options`` are passed to it (e.g. ``dps`` for arbitrary-precision methods).
        """
        method = self._check_method(method)
        arr, scalar = _as_float_array(x)
        out = np.zeros(arr.shape)
        inside = self._inside(arr)
        if inside.any():
            evaluate = self._pdf if method == self.pdf_methods[0] else getattr(self, f"_pdf_{method}")
            out[inside] = evaluate(arr[inside], **options)
        out[np.isnan(arr)] = np.nan
        return _finish(out, scalar)

    def logpdf(self, x: ArrayLike) -> np.ndarray | float:
        """Natural log of :meth:`pdf` (``-inf`` where the density is 0)."""
        arr, scalar = _as_float_array(x)
        out = np.full(arr.shape, -np.inf)
        inside = self._inside(arr)
        if inside.any():
            out[inside] = self._logpdf(arr[inside])
        out[np.isnan(arr)] = np.nan
        return _finish(out, scalar)

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(divide="ignore"):
            return np.log(self._pdf(x))

    def _check_method(self, method: str | None) -> str:
        if method is None:
            return self.pdf_methods[0]
        return check_choice("method", method, self.pdf_methods)

    # ------------------------------------------------------------------ distribution function
    def _use_table(self, method: str | None) -> bool:
        """True for ``method="table"``; ``None``/``"default"`` is the law's most accurate strategy."""
        if method is None:
            return False
        return check_choice("method", method, _CDF_METHODS) == "table"

    def cdf(self, x: ArrayLike, method: str | None = None) -> np.ndarray | float:
        """P(λ ≤ x), atoms included.

        ``method``: ``"default"`` (or ``None``) is the law's most accurate strategy (a closed form, or
        quadrature of the density to ~1e−13); ``"table"`` interpolates a cached table of the distribution
        function, for many points at once (laws with a closed-form cdf use it there too). Each law states
        the table's accuracy (free products: :class:`~rmt_init.theory.free.FreeProductLaw`).
        """
        evaluate = self._cdf_table if self._use_table(method) else self._cdf
        arr, scalar = _as_float_array(x)
        out = np.asarray(evaluate(np.atleast_1d(arr).ravel()), float).reshape(arr.shape)
        out = np.asarray(np.clip(out, 0.0, 1.0))
        out[np.isnan(arr)] = np.nan
        return _finish(out, scalar)

    def sf(self, x: ArrayLike, method: str | None = None) -> np.ndarray | float:
        """Survival function P(λ > x) = 1 − cdf(x), computed without cancellation near the top edge.

        ``method`` as for :meth:`cdf` (the table's accuracy is absolute, in probability).
        """
        evaluate = self._sf_table if self._use_table(method) else self._sf
        arr, scalar = _as_float_array(x)
        out = np.asarray(evaluate(np.atleast_1d(arr).ravel()), float).reshape(arr.shape)
        out = np.asarray(np.clip(out, 0.0, 1.0))
        out[np.isnan(arr)] = np.nan
        return _finish(out, scalar)

    # tabulated strategies (method="table"); by default the law's own (closed-form, fast) methods
    def _cdf_table(self, x: np.ndarray) -> np.ndarray:
        return self._cdf(x)

    def _sf_table(self, x: np.ndarray) -> np.ndarray:
        return self._sf(x)

    def _ppf_table(self, q: np.ndarray) -> np.ndarray:
        return self._ppf(q)

    def _isf_table(self, p: np.ndarray) -> np.ndarray:
        return self._isf(p)

    def _atoms_at_most(self, x: np.ndarray) -> np.ndarray:
        total = np.zeros(x.shape)
        for loc, mass in self.atoms:
            total += np.where(x >= loc, mass, 0.0)
        return total

    def _atoms_above(self, x: np.ndarray) -> np.ndarray:
        total = np.zeros(x.shape)
        for loc, mass in self.atoms:
            total += np.where(x < loc, mass, 0.0)
        return total

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        out = self._atoms_at_most(x)
        for i, (a, b) in enumerate(self.intervals):
            out += self._interval_cdf(i, np.clip(x, a, b))
        return out

    def _sf(self, x: np.ndarray) -> np.ndarray:
        out = self._atoms_above(x)
        for i, (a, b) in enumerate(self.intervals):
            out += self._interval_sf(i, np.clip(x, a, b))
        return out

    @cached_property
    def _cdf_tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        """Per interval: nodes, continuous mass below each node, mass above each node."""
        tables = []
        for a, b in self.intervals:
            theta = np.linspace(0.0, np.pi, _TABLE_NODES)
            nodes = a + (b - a) * 0.5 * (1.0 - np.cos(theta))  # clustered at both edges
            nodes[0], nodes[-1] = a, b
            pieces = _tanhsinh(self._pdf_vectorised, nodes[:-1], nodes[1:], self._mass_atol)
            below = np.concatenate([[0.0], np.cumsum(pieces)])
            above = np.concatenate([np.cumsum(pieces[::-1])[::-1], [0.0]])
            tables.append((nodes, below, above))
        return tables

    def _pdf_vectorised(self, x: np.ndarray) -> np.ndarray:
        """``_pdf`` on an array of any shape (tanh-sinh evaluates on 2-d grids)."""
        flat = np.asarray(x, float).ravel()
        out = np.zeros(flat.shape)
        inside = self._inside(flat)
        if inside.any():
            out[inside] = self._pdf(flat[inside])
        return out.reshape(np.shape(x))

    def _interval_cdf(self, i: int, x: np.ndarray) -> np.ndarray:
        """Continuous mass of interval ``i`` in [a_i, x] for x inside [a_i, b_i] (generic: quadrature)."""
        nodes, below, _ = self._cdf_tables[i]
        k = np.clip(np.searchsorted(nodes, x, side="right") - 1, 0, len(nodes) - 2)
        return below[k] + _tanhsinh(self._pdf_vectorised, nodes[k], x, self._mass_atol)

    def _interval_sf(self, i: int, x: np.ndarray) -> np.ndarray:
        nodes, _, above = self._cdf_tables[i]
        k = np.clip(np.searchsorted(nodes, x, side="left"), 1, len(nodes) - 1)
        return above[k] + _tanhsinh(self._pdf_vectorised, x, nodes[k], self._mass_atol)

    # ------------------------------------------------------------------ inverse distribution function
    def ppf(self, q: ArrayLike, method: str | None = None) -> np.ndarray | float:
        """Quantile function: the smallest x with cdf(x) ≥ q (q in [0, 1]); ``method`` as for :meth:`cdf`."""
        evaluate = self._ppf_table if self._use_table(method) else self._ppf
        arr, scalar = self._check_probabilities("q", q)
        out = np.asarray(evaluate(np.atleast_1d(arr).ravel()), float).reshape(arr.shape)
        out[np.isnan(arr)] = np.nan
        return _finish(out, scalar)

    icdf = ppf

    def isf(self, p: ArrayLike, method: str | None = None) -> np.ndarray | float:
        """Inverse survival function: the x with sf(x) = p; accurate for small p (near the top edge).

        ``method`` as for :meth:`cdf` (``"table"`` inverts the tabulated cdf: absolute accuracy in p).
        """
        evaluate = self._isf_table if self._use_table(method) else self._isf
        arr, scalar = self._check_probabilities("p", p)
        out = np.asarray(evaluate(np.atleast_1d(arr).ravel()), float).reshape(arr.shape)
        out[np.isnan(arr)] = np.nan
        return _finish(out, scalar)

    @staticmethod
    def _check_probabilities(name: str, q: ArrayLike) -> tuple[np.ndarray, bool]:
        arr, scalar = _as_float_array(q)
        bad = (arr < 0.0) | (arr > 1.0)
        if bad.any():
            raise ValueError(f"{name} must be a probability in [0, 1]; got {float(arr[bad].ravel()[0])!r}")
        return arr, scalar

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return self._invert(q, upper_tail=False)

    def _isf(self, p: np.ndarray) -> np.ndarray:
        return self._invert(p, upper_tail=True)

    def _pieces(self) -> list[tuple[str, float, float, Any]]:
        """The law cut into consecutive pieces: atoms, and interval parts between atoms.

        Each piece is (kind, lo, hi, data): ("atom", loc, loc, mass) or ("part", lo, hi, i) for the
        part [lo, hi] of interval i. Atoms inside an interval split it, so that walking the pieces in
        order of location walks the distribution function in order.
        """
        pieces: list[tuple[str, float, float, Any]] = [("atom", loc, loc, m) for loc, m in self.atoms]
        for i, (a, b) in enumerate(self.intervals):
            cuts = [a] + sorted(loc for loc, _ in self.atoms if a < loc < b) + [b]
            pieces += [("part", lo, hi, i) for lo, hi in zip(cuts[:-1], cuts[1:])]
        # by location; an atom at the left end of a part comes before the part (at its right end the
        # part starts earlier and so comes first anyway)
        pieces.sort(key=lambda piece: (piece[1], 0 if piece[0] == "atom" else 1))
        return pieces

    def _invert(self, target: np.ndarray, upper_tail: bool) -> np.ndarray:
        """Generic inversion of cdf (``upper_tail=False``) or sf (``True``), atoms included.

        ppf(q) is the smallest x with cdf(x) ≥ q; isf(p) the smallest x with sf(x) ≤ p. The law is
        walked piece by piece from the bottom (or from the top for the sf), and each target is
        inverted inside the piece where its probability falls.
        """
        lo_s, hi_s = self.support
        out = np.full(target.shape, np.nan)
        done = np.isnan(target)
        pieces = self._pieces()
        if upper_tail:
            pieces = pieces[::-1]
        accumulated = 0.0
        for kind, lo, hi, data in pieces:
            if kind == "atom":
                mass = data
            else:
                _, below, _ = self._cdf_tables[data]
                at_lo, at_hi = self._interval_cdf(data, np.array([lo, hi]))
                mass = at_hi - at_lo
            if upper_tail:  # smallest x with sf(x) <= p: inside this piece when p < mass above its bottom
                hit = ~done & (target < accumulated + mass)
            else:  # smallest x with cdf(x) >= q: inside this piece when q <= mass up to its top
                hit = ~done & (target <= accumulated + mass)
            if hit.any():
                if kind == "atom":
                    out[hit] = lo
                else:
                    total = below[-1]
                    # the target in the coordinates of the whole interval (mass below / above x)
                    local = target[hit] - accumulated + ((total - at_hi) if upper_tail else at_lo)
                    out[hit] = np.clip(self._invert_interval(data, local, upper_tail), lo, hi)
                done |= hit
            accumulated += mass
        # Leftovers are targets within rounding of the total mass: the far end of the support.
        out[~done] = lo_s if upper_tail else hi_s
        out[target == 0.0] = hi_s if upper_tail else lo_s
        return out

    def _invert_interval(self, i: int, local: np.ndarray, upper_tail: bool) -> np.ndarray:
        """Solve (continuous mass of interval i below x) = local, or (above x) = local if upper_tail.

        Brackets come from the cumulative table; a Newton step (slope: the density) is taken when it
        stays inside the bracket, a bisection step otherwise.
        """
        nodes, below, above = self._cdf_tables[i]
        n = len(nodes)
        if upper_tail:
            k = n - np.searchsorted(above[::-1], local, side="right")
        else:
            k = np.searchsorted(below, local, side="left")
        k = np.clip(k, 1, n - 1)
        lo, hi = nodes[k - 1].copy(), nodes[k].copy()
        x = 0.5 * (lo + hi)
        eps = 4 * np.finfo(float).eps
        active = np.arange(local.size)
        for _ in range(80):
            xa = x[active]
            if upper_tail:  # mass above x minus target: decreasing in x; flip the sign to increasing
                g = -(self._interval_sf(i, xa) - local[active])
            else:
                g = self._interval_cdf(i, xa) - local[active]
            lo[active] = np.where(g < 0, xa, lo[active])
            hi[active] = np.where(g >= 0, xa, hi[active])
            la, ha = lo[active], hi[active]
            density = self._pdf_vectorised(xa)
            with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
                newton = xa - g / density
                # near a hard edge at 0 the mass grows like a power of x: Newton in ln x converges there
                log_newton = xa * np.exp(-g / (xa * density))
            ok = np.isfinite(newton) & (newton > la) & (newton < ha)
            log_ok = ~ok & np.isfinite(log_newton) & (log_newton > la) & (log_newton < ha)
            # bisection: geometric when the bracket spans orders of magnitude (hi/16 when it reaches 0)
            wide = (ha > 0) & (la >= 0) & (ha > 4.0 * la)
            with np.errstate(invalid="ignore"):
                geometric = np.where(la > 0, np.sqrt(la * ha), ha / 16.0)
            bisection = np.where(wide, geometric, 0.5 * (la + ha))
            new = np.where(ok, newton, np.where(log_ok, log_newton, bisection))
            scale = np.maximum(np.abs(new), np.finfo(float).tiny)
            # converged: the step is at rounding level, or the mass is matched within the quadrature's own
            # accuracy (relative 1e−13 or _mass_atol; closer steps would chase the quadrature's noise)
            matched = np.abs(g) <= 2.0 * _QUAD_RTOL * np.abs(local[active]) + self._mass_atol
            converged = matched | (np.abs(new - xa) <= eps * scale) | (hi[active] - lo[active] <= eps * scale)
            new = np.where(matched, xa, new)
            x[active] = new
            active = active[~converged]
            if active.size == 0:
                break
        return x

    # ------------------------------------------------------------------ moments
    def moment(self, order: float = 1, kind: str = "raw", method: str | None = None) -> Any:
        """Moment of the given order: ``kind`` is "raw" (E[λᵏ]), "central" or "standardized".

        ``method="exact"`` returns an exact rational (``int``/``fractions.Fraction``) where the law
        knows one (integer orders, raw moments); the default returns a float.
        """
        kind = check_choice("kind", kind, _MOMENT_KINDS)
        if method is not None:
            method = check_choice("method", method, ("float", "exact"))
        if method == "exact":
            if kind != "raw":
                raise ValueError(f"method='exact' is available for kind='raw' only; got kind={kind!r}")
            k = check_int("order", order, minimum=0)
            return self._moment_exact(k)
        order = check_real("order", order)
        if kind == "raw":
            return self._raw_moment(order)
        k = check_int("order", order, minimum=0)
        mean = self._raw_moment(1.0)
        central = math.fsum(
            math.comb(k, j) * self._raw_moment(float(j)) * (-mean) ** (k - j) for j in range(k + 1)
        )
        if kind == "central":
            return central
        return central / self.var() ** (k / 2)

    def _raw_moment(self, order: float) -> float:
        if order == 0:
            return 1.0
        return float(self._moment(order))

    def _moment(self, order: float) -> float:
        """Generic raw moment: atoms plus quadrature of ``x**order * pdf`` over each interval."""
        total = math.fsum(m * loc**order for loc, m in self.atoms if m > 0 and (loc != 0.0 or order > 0))
        for a, b in self.intervals:
            piece = _tanhsinh(lambda x: x**order * self._pdf_vectorised(x), np.array(a), np.array(b))
            total += float(piece)
        return total

    def _moment_exact(self, order: int) -> Any:
        raise ValueError(f"{type(self).__name__} has no exact (rational) moments; use the default method")

    def mean(self) -> float:
        """E[λ]."""
        return self._raw_moment(1.0)

    def var(self) -> float:
        """Var[λ] = E[λ²] − E[λ]²."""
        m1 = self._raw_moment(1.0)
        return self._raw_moment(2.0) - m1 * m1

    def std(self) -> float:
        """Standard deviation √Var[λ]."""
        return math.sqrt(max(self.var(), 0.0))

    def median(self) -> float:
        """The median, ppf(1/2)."""
        return float(self.ppf(0.5))

    # ------------------------------------------------------------------ sampling
    def sample(self, n: int | tuple[int, ...] = 1, rng: Any = None) -> np.ndarray:
        """Draw ``n`` independent samples (inverse-transform sampling); ``rng``: seed or Generator."""
        shape = (n,) if isinstance(n, (int, np.integer)) else tuple(n)
        for i, dim in enumerate(shape):
            check_int(f"n[{i}]" if len(shape) > 1 else "n", dim, minimum=0)
        generator = np.random.default_rng(rng)
        u = generator.random(int(np.prod(shape)))
        return np.asarray(self._sample_uniform(u), float).reshape(shape)

    def rvs(self, size: int | tuple[int, ...] | None = None, random_state: Any = None) -> np.ndarray | float:
        """SciPy-style alias of :meth:`sample` (``size=None`` draws one float)."""
        if size is None:
            return float(self.sample(1, rng=random_state)[0])
        return self.sample(size, rng=random_state)

    def _sample_uniform(self, u: np.ndarray) -> np.ndarray:
        """Map uniforms on [0, 1) to samples; default: the quantile function."""
        return self._ppf(u)

    # ------------------------------------------------------------------ display
    def __repr__(self) -> str:
        return f"{type(self).__name__}()"


class SpectralLaw(Law):
    """Law of the squared singular values λ = σ² (eigenvalues of J Jᵀ) of a random matrix J."""

    def singular_value_law(self) -> "SingularValueLaw":
        """The law of the singular values σ = √λ: density 2σ·pdf(σ²), cdf(σ) = F(σ²)."""
        return SingularValueLaw(self)

    @property
    def top_singular_value(self) -> float:
        """√(upper edge): the largest singular value of J in the limit the law describes."""
        return math.sqrt(self.upper_edge)


class SingularValueLaw(Law):
    """Law of σ = √λ for a :class:`SpectralLaw` of λ; every method delegates to the squared law.

    Density: p(σ) = 2σ ρ(σ²); cdf(σ) = F(σ²); ppf(q) = √F⁻¹(q); E[σᵏ] = E[λ^{k/2}].
    """

    def __init__(self, squared: SpectralLaw) -> None:
        self.squared = squared
        self.pdf_methods = squared.pdf_methods

    @property
    def support(self) -> tuple[float, float]:
        lo, hi = self.squared.support
        return (math.sqrt(lo), math.sqrt(hi))

    @property
    def atoms(self) -> tuple[Atom, ...]:
        return tuple((math.sqrt(loc), m) for loc, m in self.squared.atoms)

    @property
    def intervals(self) -> tuple[tuple[float, float], ...]:
        return tuple((math.sqrt(a), math.sqrt(b)) for a, b in self.squared.intervals)

    def _pdf(self, x: np.ndarray, **options: Any) -> np.ndarray:
        return 2.0 * x * self.squared.pdf(x * x, **options)

    def __getattr__(self, name: str) -> Any:
        # pdf(..., method="exact") dispatches to _pdf_exact etc.: forward those to the squared law.
        if name.startswith("_pdf_"):
            squared_method = getattr(self.squared, name)
            return lambda x, **options: 2.0 * x * squared_method(x * x, **options)
        raise AttributeError(name)

    def _logpdf(self, x: np.ndarray) -> np.ndarray:
        return np.log(2.0 * x) + self.squared.logpdf(x * x)

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return self.squared.cdf(np.where(x > 0, x * x, 0.0))

    def _sf(self, x: np.ndarray) -> np.ndarray:
        return self.squared.sf(np.where(x > 0, x * x, 0.0))

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        return np.sqrt(self.squared.ppf(q))

    def _isf(self, p: np.ndarray) -> np.ndarray:
        return np.sqrt(self.squared.isf(p))

    def _cdf_table(self, x: np.ndarray) -> np.ndarray:
        return self.squared.cdf(np.where(x > 0, x * x, 0.0), method="table")

    def _sf_table(self, x: np.ndarray) -> np.ndarray:
        return self.squared.sf(np.where(x > 0, x * x, 0.0), method="table")

    def _ppf_table(self, q: np.ndarray) -> np.ndarray:
        return np.sqrt(self.squared.ppf(q, method="table"))

    def _isf_table(self, p: np.ndarray) -> np.ndarray:
        return np.sqrt(self.squared.isf(p, method="table"))

    def _moment(self, order: float) -> float:
        return self.squared.moment(order / 2.0)

    def _sample_uniform(self, u: np.ndarray) -> np.ndarray:
        return np.sqrt(self.squared._sample_uniform(u))

    def squared_law(self) -> SpectralLaw:
        """The law of λ = σ² this law was made from."""
        return self.squared

    def __repr__(self) -> str:
        return f"SingularValueLaw({self.squared!r})"
