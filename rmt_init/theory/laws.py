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
import numbers
from abc import ABC, abstractmethod
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from fractions import Fraction
from functools import cached_property
from typing import Any

import numpy as np
from numpy.typing import ArrayLike

from .._validate import check_choice, check_int, check_real, check_rng

__all__ = ["Law", "SpectralLaw", "SingularValueLaw", "LogLaw", "Atom"]

Atom = tuple[float, float]
"""A point mass as ``(location, mass)``."""

_MOMENT_KINDS = ("raw", "central", "standardized")
#: largest order of an exact (rational) moment, and of a central or standardized moment: above it the
#: exact rationals take seconds (Marchenko–Pastur's Narayana sum at order 16384: 5 s) and the
#: binomial expansion of central moments has no digits left.
MAX_EXACT_ORDER = 4096
MAX_CENTRAL_ORDER = 128
_TINY = float(np.finfo(float).tiny)
#: ln of the smallest normal float: below it e^t is subnormal (or 0) and λ = e^t has lost its digits
_LOG_TINY = math.log(_TINY)
_QUAD_RTOL = 1e-13
_TABLE_NODES = 65
#: evaluation strategies of ``cdf``, ``sf``, ``ppf``, ``isf`` (``method=``): the law's most accurate one, or
#: a cached table (free products; other laws use their closed forms for both)
_CDF_METHODS = ("default", "table")


def _is_real_scalar(e: object) -> bool:
    """A real number (``Fraction``, ``mpmath.mpf`` and other types with ``__float__`` included), not a bool."""
    if isinstance(e, bool):
        return False
    return isinstance(e, numbers.Real) or (hasattr(e, "__float__") and not isinstance(e, numbers.Complex))


def _as_float_array(x: ArrayLike, name: str = "x") -> tuple[np.ndarray, bool]:
    """``x`` as a float64 array (and whether it was a scalar); ``TypeError`` naming ``name`` unless real.

    ``np.asarray(None, float)`` is NaN: without this check ``pdf(None)`` returned NaN instead of
    refusing. Booleans, strings, complex numbers and objects that are not real numbers are refused;
    NaN entries are accepted and give NaN (the SciPy convention).
    """
    try:
        raw = np.asarray(x)
    except (ValueError, TypeError) as exc:  # ragged nested sequences
        raise TypeError(f"{name} must be a real number or an array of real numbers; got {x!r}") from exc
    kind = raw.dtype.kind
    if kind == "O":
        bad = [e for e in raw.ravel() if not _is_real_scalar(e)]
        if bad:
            where = "" if raw.ndim == 0 else f" (contains {bad[0]!r})"
            raise TypeError(f"{name} must be a real number or an array of real numbers; got {x!r}{where}")
    elif kind not in "iuf":
        raise TypeError(f"{name} must be a real number or an array of real numbers; got {x!r} (dtype {raw.dtype})")
    arr = np.asarray(raw, dtype=float)
    return arr, arr.ndim == 0


@contextmanager
def _refuse_out_of_memory(n: Any) -> Iterator[None]:
    """Turn numpy's MemoryError for a sample of size ``n`` into a ValueError that names ``n``."""
    try:
        yield
    except MemoryError:
        raise ValueError(f"n={n!r} samples (8 bytes each, several temporaries) do not fit in memory") from None


def _check_order_at_most(order: int, largest: int, what: str) -> None:
    if order > largest:
        raise ValueError(f"order must be <= {largest} (the largest supported order of {what}); got {order!r}")


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


def bracketed_mass_step(
    x: np.ndarray, g: np.ndarray, density: np.ndarray, lo: np.ndarray, hi: np.ndarray, target: np.ndarray,
    mass_atol: float,
) -> tuple[np.ndarray, np.ndarray]:
    """One safeguarded step of solving ``mass(x) = target`` per point inside the bracket ``[lo, hi]``.

    ``g = mass(x) − target`` (increasing in x) and ``density = mass'(x)``. Newton's step when it stays inside
    the bracket; else Newton in ln x (near a hard edge at 0 the mass grows like a power of x, where it
    converges); else bisection, geometric when the bracket spans orders of magnitude (hi/16 when it reaches 0).
    Returns the new iterates and which points have converged: the step is at rounding level, or the mass is
    matched within the quadrature's own accuracy (relative ``2·_QUAD_RTOL`` or ``mass_atol``; closer steps
    would chase the quadrature's noise) — a matched point keeps ``x``.
    """
    eps = 4 * np.finfo(float).eps
    with np.errstate(divide="ignore", invalid="ignore", over="ignore"):
        newton = x - g / density
        log_newton = x * np.exp(-g / (x * density))
    ok = np.isfinite(newton) & (newton > lo) & (newton < hi)
    log_ok = ~ok & np.isfinite(log_newton) & (log_newton > lo) & (log_newton < hi)
    wide = (hi > 0) & (lo >= 0) & (hi > 4.0 * lo)
    with np.errstate(invalid="ignore"):
        geometric = np.where(lo > 0, np.sqrt(lo * hi), hi / 16.0)
    bisection = np.where(wide, geometric, 0.5 * (lo + hi))
    new = np.where(ok, newton, np.where(log_ok, log_newton, bisection))
    scale = np.maximum(np.abs(new), np.finfo(float).tiny)
    matched = np.abs(g) <= 2.0 * _QUAD_RTOL * np.abs(target) + mass_atol
    converged = matched | (np.abs(new - x) <= eps * scale) | (hi - lo <= eps * scale)
    return np.where(matched, x, new), converged


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
        arr, scalar = _as_float_array(x, "x")
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
        # at the interval's top the table's own total (not the last panel's quadrature added to the one below it,
        # which can land an ulp short: cdf(upper edge) must be exactly the mass)
        return np.where(x >= nodes[-1], below[-1], below[k] + _tanhsinh(self._pdf_vectorised, nodes[k], x, self._mass_atol))

    def _interval_sf(self, i: int, x: np.ndarray) -> np.ndarray:
        nodes, _, above = self._cdf_tables[i]
        k = np.clip(np.searchsorted(nodes, x, side="left"), 1, len(nodes) - 1)
        return np.where(x <= nodes[0], above[0], above[k] + _tanhsinh(self._pdf_vectorised, x, nodes[k], self._mass_atol))

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
        arr, scalar = _as_float_array(q, name)
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

    def _table_bracket(
        self, i: int, local: np.ndarray, upper_tail: bool
    ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """The cumulative table's cell holding each target mass of interval i: its ends ``lo, hi`` (copies, for
        the caller to narrow) and its upper node index ``k`` (``nodes[k − 1] ≤ x ≤ nodes[k]``)."""
        nodes, below, above = self._cdf_tables[i]
        n = len(nodes)
        if upper_tail:
            k = n - np.searchsorted(above[::-1], local, side="right")
        else:
            k = np.searchsorted(below, local, side="left")
        k = np.clip(k, 1, n - 1)
        return nodes[k - 1].copy(), nodes[k].copy(), k

    def _invert_interval(self, i: int, local: np.ndarray, upper_tail: bool) -> np.ndarray:
        """Solve (continuous mass of interval i below x) = local, or (above x) = local if upper_tail.

        Brackets come from the cumulative table; a Newton step (slope: the density) is taken when it
        stays inside the bracket, a bisection step otherwise (:func:`bracketed_mass_step`).
        """
        lo, hi, _ = self._table_bracket(i, local, upper_tail)
        x = 0.5 * (lo + hi)
        active = np.arange(local.size)
        for _ in range(80):
            xa = x[active]
            if upper_tail:  # mass above x minus target: decreasing in x; flip the sign to increasing
                g = -(self._interval_sf(i, xa) - local[active])
            else:
                g = self._interval_cdf(i, xa) - local[active]
            lo[active] = np.where(g < 0, xa, lo[active])
            hi[active] = np.where(g >= 0, xa, hi[active])
            new, converged = bracketed_mass_step(
                xa, g, self._pdf_vectorised(xa), lo[active], hi[active], local[active], self._mass_atol
            )
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
            _check_order_at_most(k, MAX_EXACT_ORDER, "exact moments")
            return self._moment_exact(k)
        order = check_real("order", order)
        if kind == "raw":
            return self._raw_moment(order)
        k = check_int("order", order, minimum=0)
        _check_order_at_most(k, MAX_CENTRAL_ORDER, f"{kind} moments")
        exact_moments = [self._moment_exact(j) for j in range(k + 1)] if self._has_exact_moments() else []
        if exact_moments and all(isinstance(m, (int, Fraction)) for m in exact_moments):
            # exact rationals: the binomial expansion then loses nothing to cancellation
            m1 = Fraction(exact_moments[1]) if k >= 1 else Fraction(0)
            exact = sum(math.comb(k, j) * Fraction(m) * (-m1) ** (k - j) for j, m in enumerate(exact_moments))
            central = self._finite_float(exact, k, kind)
        else:
            mean = self._raw_moment(1.0)
            central = math.fsum(
                math.comb(k, j) * self._raw_moment(float(j)) * (-mean) ** (k - j) for j in range(k + 1)
            )
        if kind == "central":
            return central
        return self._finite_float(central / self.var() ** (k / 2), k, kind)

    def _has_exact_moments(self) -> bool:
        return type(self)._moment_exact is not Law._moment_exact

    def _finite_float(self, value: Any, order: float, kind: str = "raw") -> float:
        """``float(value)``, or ``ValueError`` if it is not finite in float64 (overflow, divergence)."""
        try:
            out = float(value)
        except OverflowError:
            out = math.inf
        if not math.isfinite(out):
            raise ValueError(
                f"the {kind} moment of order {order!r} of {self!r} is not finite in float64 "
                f"(it overflows 1.8e308 or diverges); got {out!r}. Use a smaller order"
                + (", or method='exact' for integer orders" if kind == "raw" and self._has_exact_moments() else "")
            )
        return out

    def _raw_moment(self, order: float) -> float:
        if order == 0:
            return 1.0
        return self._finite_float(self._moment(order), order)

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
        generator = check_rng("rng", rng)
        with _refuse_out_of_memory(n):
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

    # ------------------------------------------------------------------ log-scale view
    def log_law(self) -> "LogLaw":
        """The law of t = ln λ (see :class:`LogLaw`): usable where λ itself under- or overflows.

        An atom at λ = 0 becomes mass at t = −∞. The law answers through the hooks ``_log_cdf``,
        ``_log_sf``, ``_log_ppf``, ``_log_isf``, ``_log_pdf`` and ``_log_mean``; their defaults go
        through λ = e^t where e^t is a normal float and refuse (``ValueError``) where it is not and the
        continuous part may carry mass there. Laws with a closed form in log variables override them.
        """
        return LogLaw(self)

    def _log_support(self) -> tuple[float, float]:
        """(ln lo, ln hi) of the support (ln 0 = −∞); a law that knows ln of its edges better overrides."""
        lo, hi = self.support
        return (-math.inf if lo == 0.0 else math.log(lo), -math.inf if hi == 0.0 else math.log(hi))

    def _mass_at_zero(self) -> float:
        return math.fsum(m for loc, m in self.atoms if loc == 0.0)

    def _refuse_below_float_range(self, name: str, values: np.ndarray) -> None:
        """``ValueError`` unless nothing but the atom at 0 lies below the smallest normal float."""
        reaches = any(a < _TINY for a, _ in self.intervals) or any(0.0 < loc < _TINY for loc, _ in self.atoms)
        if reaches and values.size:
            raise ValueError(
                f"{name}={float(values.ravel()[0])!r} is below the float range of {self!r}: there λ = e^t "
                f"< {_TINY:.4g} (t < {_LOG_TINY:.6g}) is not a normal float, the law's continuous part has "
                "mass there and it has no closed form in log variables"
            )

    def _log_cdf(self, t: np.ndarray) -> np.ndarray:
        """P(ln λ ≤ t) (mass at 0 included), through cdf(e^t) where e^t is a normal float."""
        return self._through_exp(t, self._cdf, below=self._mass_at_zero())

    def _log_sf(self, t: np.ndarray) -> np.ndarray:
        """P(ln λ > t), through sf(e^t) where e^t is a normal float."""
        return self._through_exp(t, self._sf, below=float(self._sf(np.zeros(1))[0]))

    def _through_exp(self, t: np.ndarray, evaluate: Any, below: float) -> np.ndarray:
        """``evaluate(e^t)`` where e^t is a normal float (or t = −∞); ``below`` under the float range, where
        only the atom at 0 may carry mass (refused otherwise)."""
        with np.errstate(over="ignore"):
            x = np.exp(t)
        out = np.full(t.shape, np.nan)
        direct = (x >= _TINY) | np.isneginf(t)
        out[direct] = evaluate(x[direct])
        low = ~direct & ~np.isnan(t)
        self._refuse_below_float_range("t", t[low])
        out[low] = below
        return out

    def _log_pdf(self, t: np.ndarray) -> np.ndarray:
        """Density of ln λ, e^t ρ(e^t), where e^t is a normal float (0 beyond the top edge)."""
        with np.errstate(over="ignore"):
            x = np.exp(t)
        out = np.zeros(t.shape)
        finite = np.isfinite(x) & (x >= _TINY)
        out[finite] = x[finite] * self._pdf_vectorised(x[finite])
        low = (x < _TINY) & ~np.isneginf(t)
        self._refuse_below_float_range("t", t[low])
        out[np.isnan(t)] = np.nan
        return out

    def _log_of_quantile(self, name: str, target: np.ndarray, x: np.ndarray, at_zero: np.ndarray) -> np.ndarray:
        out = np.full(x.shape, np.nan)
        normal = x >= _TINY
        with np.errstate(divide="ignore"):
            out[normal] = np.log(x[normal])
        zero = ~normal & at_zero
        out[zero] = -np.inf
        self._refuse_below_float_range(name, target[~normal & ~zero & ~np.isnan(target)])
        return out

    def _log_ppf(self, q: np.ndarray) -> np.ndarray:
        """Quantile of ln λ: ln ppf(q); −∞ for q at most the mass at 0 (or q = 0 at a hard edge)."""
        at_zero = (q <= self._mass_at_zero()) | (q == 0.0)
        return self._log_of_quantile("q", q, self._ppf(q), at_zero)

    def _log_isf(self, p: np.ndarray) -> np.ndarray:
        """Inverse survival function of ln λ: ln isf(p); −∞ for p ≥ P(λ > 0)."""
        at_zero = (p >= self._sf(np.zeros(1))[0]) | (p == 1.0)
        return self._log_of_quantile("p", p, self._isf(p), at_zero)

    def _log_sample_uniform(self, u: np.ndarray) -> np.ndarray:
        """Uniforms on [0, 1) to samples of ln λ; default: the quantile function of ln λ."""
        return self._log_ppf(u)

    def _log_mean(self) -> float:
        """E[ln λ]: −∞ with an atom at 0; else atoms plus quadrature of ln x · ρ(x).

        Where the continuous part reaches 0, the mass m below the smallest normal float is left out of
        the quadrature: accepted when m < 1e−30 (its share m·(ln tiny − 1/α) of the mean is then below
        1e−24 for any edge exponent α ≥ 1e−6, ρ ~ x^{α−1}), refused otherwise.
        """
        if self._mass_at_zero() > 0.0:
            return -math.inf
        if any(a < _TINY for a, _ in self.intervals):
            below = float(self._cdf(np.array([_TINY]))[0]) - self._mass_at_zero()
            if below > 1e-30:
                raise ValueError(
                    f"E[ln λ] of {self!r} is not known: its mass below the smallest normal float is {below:.3g}"
                )
        total = math.fsum(m * math.log(loc) for loc, m in self.atoms if m > 0)
        for a, b in self.intervals:
            lo = max(a, _TINY)

            def integrand(x: np.ndarray) -> np.ndarray:
                return np.log(np.maximum(x, _TINY)) * self._pdf_vectorised(x)

            total += float(_tanhsinh(integrand, np.array(lo), np.array(b)))
        return total

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

    # log view: ln σ = (ln λ)/2, so every hook is the squared law's at 2t (a deep law's σ underflows too)
    def _log_support(self) -> tuple[float, float]:
        lo, hi = self.squared._log_support()
        return (lo / 2.0, hi / 2.0)

    def _log_cdf(self, t: np.ndarray) -> np.ndarray:
        return self.squared._log_cdf(2.0 * t)

    def _log_sf(self, t: np.ndarray) -> np.ndarray:
        return self.squared._log_sf(2.0 * t)

    def _log_pdf(self, t: np.ndarray) -> np.ndarray:
        return 2.0 * self.squared._log_pdf(2.0 * t)

    def _log_ppf(self, q: np.ndarray) -> np.ndarray:
        return self.squared._log_ppf(q) / 2.0

    def _log_isf(self, p: np.ndarray) -> np.ndarray:
        return self.squared._log_isf(p) / 2.0

    def _log_sample_uniform(self, u: np.ndarray) -> np.ndarray:
        return self.squared._log_sample_uniform(u) / 2.0

    def _log_mean(self) -> float:
        return self.squared._log_mean() / 2.0

    def squared_law(self) -> SpectralLaw:
        """The law of λ = σ² this law was made from."""
        return self.squared

    def __repr__(self) -> str:
        return f"SingularValueLaw({self.squared!r})"


class LogLaw:
    """Law of t = ln λ for a law of λ ≥ 0: the log-scale view of :meth:`Law.log_law`.

    cdf(t) = P(λ ≤ e^t), sf(t) = P(λ > e^t), ppf(q) = ln F⁻¹(q), pdf(t) = e^t ρ(e^t) (density of the
    continuous part, in t); support: ln of the law's edges (−∞ for an edge at 0). An atom of mass m at
    λ = 0 is mass m at t = −∞: cdf(−∞) = m and ppf(q) = −∞ for q ≤ m. Deep laws keep their digits here
    where λ itself is below the float range: the Fuss–Catalan law of depth 100 has ppf(1e−6) ≈ e^{−1370}
    (0 as a float), while ``fuss_catalan(100).log_law().ppf(1e-6)`` is finite.

    Every method delegates to the hooks ``_log_*`` of the law (see :meth:`Law.log_law`).
    """

    def __init__(self, law: Law) -> None:
        self.law = law

    def __repr__(self) -> str:
        return f"LogLaw({self.law!r})"

    @staticmethod
    def _log(x: float) -> float:
        return -math.inf if x == 0.0 else math.log(x)

    @property
    def support(self) -> tuple[float, float]:
        """(ln lo, ln hi) of the law's support (ln 0 = −∞)."""
        return self.law._log_support()

    @property
    def atoms(self) -> tuple[Atom, ...]:
        """The law's atoms at ln of their locations (an atom at 0 is at −∞)."""
        return tuple((self._log(loc), m) for loc, m in self.law.atoms)

    @property
    def intervals(self) -> tuple[tuple[float, float], ...]:
        """ln of the intervals of the continuous part."""
        return tuple((self._log(a), self._log(b)) for a, b in self.law.intervals)

    @property
    def continuous_mass(self) -> float:
        return self.law.continuous_mass

    def _apply(self, hook: Callable[[np.ndarray], np.ndarray], arr: np.ndarray, scalar: bool):
        flat = np.atleast_1d(arr).ravel()
        out = np.asarray(hook(flat), float).reshape(arr.shape)
        out[np.isnan(arr)] = np.nan
        return _finish(out, scalar)

    def pdf(self, t: ArrayLike) -> np.ndarray | float:
        """Density of ln λ at t: e^t ρ(e^t)."""
        return self._apply(self.law._log_pdf, *_as_float_array(t, "t"))

    def logpdf(self, t: ArrayLike) -> np.ndarray | float:
        """ln of :meth:`pdf` (−∞ where it is 0)."""
        with np.errstate(divide="ignore"):
            return np.log(self.pdf(t))

    def cdf(self, t: ArrayLike) -> np.ndarray | float:
        """P(ln λ ≤ t)."""
        arr, scalar = _as_float_array(t, "t")
        return self._apply(lambda v: np.clip(self.law._log_cdf(v), 0.0, 1.0), arr, scalar)

    def sf(self, t: ArrayLike) -> np.ndarray | float:
        """P(ln λ > t), without cancellation in the upper tail."""
        arr, scalar = _as_float_array(t, "t")
        return self._apply(lambda v: np.clip(self.law._log_sf(v), 0.0, 1.0), arr, scalar)

    def ppf(self, q: ArrayLike) -> np.ndarray | float:
        """Quantile of ln λ: the smallest t with cdf(t) ≥ q."""
        return self._apply(self.law._log_ppf, *Law._check_probabilities("q", q))

    icdf = ppf

    def isf(self, p: ArrayLike) -> np.ndarray | float:
        """Inverse survival function of ln λ (accurate for small p)."""
        return self._apply(self.law._log_isf, *Law._check_probabilities("p", p))

    def median(self) -> float:
        """ppf(1/2)."""
        return float(self.ppf(0.5))

    def mean(self) -> float:
        """E[ln λ] (−∞ with an atom at 0); ``ValueError`` where the law does not know it."""
        return self.law._log_mean()

    def sample(self, n: int | tuple[int, ...] = 1, rng: Any = None) -> np.ndarray:
        """``n`` independent samples of ln λ (inverse transform in log variables); ``rng``: seed or Generator."""
        shape = (n,) if isinstance(n, (int, np.integer)) else tuple(n)
        for i, dim in enumerate(shape):
            check_int(f"n[{i}]" if len(shape) > 1 else "n", dim, minimum=0)
        generator = check_rng("rng", rng)
        with _refuse_out_of_memory(n):
            u = generator.random(int(np.prod(shape)))
            return np.asarray(self.law._log_sample_uniform(u), float).reshape(shape)
