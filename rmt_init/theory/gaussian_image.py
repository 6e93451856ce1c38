"""The S-factor of the law of d(z), z ~ N(0, 1), for a function d analytic near the real axis.

This is the law of the diagonal of D² = diag φ'(h)², h = √q* z, in the Jacobian of a network with a
smooth activation (tanh, erf, sigmoid, gelu; selu on z < 0): Pennington, Schoenholz & Ganguli (2017,
arXiv 1711.04735, §3; 2018, arXiv 1802.09979). The free-product solver needs its

    1 + ψ(u) = E[1/(1 − u d(z))] = Σ_atoms m/(1 − u a) + Σ_pieces ∫_a^b g(z)/(1 − u d(z)) dz,   g = N(0, 1) pdf,

for complex u with Im u ≤ 0 — also when 1/u lies just above the range of d, where the integrand has
poles ζ (roots of d(ζ) = 1/u) arbitrarily close to the real axis, and plain quadrature fails.

Algorithm: singularity subtraction (e.g. Davis & Rabinowitz, *Methods of Numerical Integration*, 2nd ed.
1984, §2.12.7). Every root ζ of d(ζ) = 1/u within a strip around the piece is found by Newton's method
(started from the real crossings of d with Re(1/u), with the first-order imaginary shift, and from the
quadratic approximation at each critical point of d, where two roots meet; only roots within 1.5 panel
widths of the axis, which the rule would not resolve, are kept); the integrand's principal
part R/(z − ζ), R = g(ζ)/(−u d'(ζ)), is subtracted, the analytic remainder is integrated by composite
Gauss–Legendre (10 nodes on panels at most half the strip's width and at most 1 wide: error ≲ 8^{−20} relative, Trefethen
2008, SIAM Rev. 50, Thm 4.5), and R (Log(b − ζ) − Log(a − ζ)) is added back in closed form. The
slope u ψ'(u) = E[u d/(1 − u d)²] is done the same way with the double pole's principal part
g(ζ)A^{−2}[(z − ζ)^{−2} − (ζ + d''/d')(z − ζ)^{−1}], A = −u d'(ζ).

For Im u < 0 (Im(1/u) > 0) every root near a point where d' > 0 lies above the real axis and every root
near a point where d' < 0 below it; the formula above is then the principal value, analytic in u, and it
has the right boundary values on the cut (a real root is taken on that side).

Fast path (issue 15): the law of d is fixed per layer, so its Gauss rule (and those of log d — one rule, or
one per panel of width 4 where log(b/a) > 60 — and of s dμ in s = a/d, a the bottom of the range) is computed once (:mod:`rmt_init.theory._smooth_law`); wherever 1/u is
far enough from the range of d for a rule's O(ρ^{−2n}) error bound to be below ~1e−15 — all of a density's
solver steps in the bulk, and |1/u| below the range (the product's hard edge at 0) — ψ and uψ' are one
sum of 8–128 terms, and the quadrature above is kept for the rest (1/u near the top of the range or, for
gelu, whose φ' vanishes, near 0) (``fast=False``, or assigning
``gauss_rule = None``, keeps it everywhere: the reference path of the tests and benchmarks). Where d has a double
zero (gelu) the rules of log d are built with that zero excised (``zero_rule``); a piece on which d is constant to
4 ulps (selu at q* = 0) is a point mass, ψ's part from it the closed form m/(1 − u d) (``collapsed = None``: the
quadrature). For small 1/u near the positive axis (the product's hard edge at 0) the rule of d's branches to 0 in
log d, pole subtracted (:class:`~rmt_init.theory._smooth_law.DeepRule`; ``deep_rule = False``: the quadrature, which
is off there by up to 4e−6 for gelu and 4e−2 for erf, its poles in the tails 2π/|(log d)'| apart).

Large q (issue 13): the strip shrinks like 1/√q, but d = φ'(√q z)² varies only in a window |z| ≲ c/√q; a factor whose
pieces need more than ``TAIL_ATOMS_FROM`` panels keeps only that window and makes the tails, where d is constant in
float64, atoms (:func:`constant_tails`; docs/derivations.md §3.5): 71–450 panels at any q instead of 36√q.
"""
from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import numpy as np
from scipy.optimize import brentq

from . import _series
from ._quadrature import weighted_sum
from ._smooth_law import N_LOG, RHO_MIN, RHO_MIN_LOG, ImageGaussRule, gaussian_mass
from .free import PsiS
from .laws import Atom

__all__ = ["AnalyticPiece", "GaussianImageS"]

Jet = Callable[[np.ndarray], tuple[np.ndarray, np.ndarray, np.ndarray]]

_GL_T, _GL_W = np.polynomial.legendre.leggauss(10)
_INV_SQRT_2PI = 1.0 / math.sqrt(2.0 * math.pi)
_GRID = 4001
_NEWTON_STEPS = 40
_NODE_BLOCK = 8  # points per pass over a piece's nodes in the quadrature path (its terms stay in cache)
_ZERO_CRITICAL = 1e-12  # a critical value of d below this × its maximum is taken for a zero of d
_TIED_MIN = 16  # nodes of one piece sharing a value of d exactly, from this many on, are summed as one (_PieceRule)
_COLLAPSE_ULPS = 4.0  # d's spread on a piece, in ulps of its maximum, up to which the piece is a point mass


@dataclass(frozen=True)
class AnalyticPiece:
    """z ∈ [lo, hi] (finite), on which the law's continuous part is the image of N(0, 1) under d.

    ``jet(z)`` returns (d, d', d'') at complex z (derivatives in z); d must be analytic in the strip
    |Im z| < ``strip`` around the piece except for the roots of d = 1/u, which the factor subtracts.
    """

    lo: float
    hi: float
    jet: Jet


#: most quadrature panels (10 nodes each) a factor may take; the panel is half the analytic strip of d, which
#: shrinks like 1/√q; pieces needing more than ``TAIL_ATOMS_FROM`` panels first lose their constant tails (below),
#: so this bounds only laws whose d varies across the whole piece; beyond it the factor refuses with a ValueError
MAX_PANELS = 1_000_000
#: pieces needing more panels than this have their constant tails made atoms (:func:`constant_tails`: at large q,
#: d = φ'(√q z)² changes only in a window |z| ≲ c/√q; 0 makes every factor do it, a huge value none). 1000: gelu and
#: erf from q ≈ 770, selu from 7.6e3, tanh from 1.9e4, sigmoid from 7.6e4 (the window then has 71–450 panels; the
#: whole piece's quadrature arrays, 256 points × 10⁴–10⁵ nodes, had taken a depth-1000 gelu stream to 4.4 GB)
TAIL_ATOMS_FROM = 1000
#: d at or below this in a tail is the atom at 0 (the quadrature and the rules then see d ≥ 1e−306 only)
TAIL_ZERO = 1e-306
_TAIL_CHECKS = 2000  # points (geometric and uniform from the cut) at which a tail is checked to be constant


def constant_tails(piece: AnalyticPiece, min_length: float) -> tuple[AnalyticPiece, list[tuple[float, float]]]:
    """The piece without its ends on which d is constant in float64, and those ends as atoms (location, mass).

    At large q, d(z) = φ'(√q z)² (gelu, selu, erf, tanh, sigmoid) changes only in a window |z| ≲ c/√q around the
    activation's transition; outside it d equals its asymptote to rounding (gelu: 1 for √q z ≳ 8.6) or lies below
    ``TAIL_ZERO`` (every φ' → 0: tanh and sigmoid e^{−4|x|}, erf and gelu e^{−x²}, selu e^{2x}; |x| ≲ 27–352 at
    1e−306), where the law of d is, in float64, a point mass: the Gaussian mass of that end at d(end) (or at 0). The
    window is what the panels of width strip/2 must resolve (docs/derivations.md §3.5). An end whose d(end) is the
    tail's value is cut at the switch of the predicate "d(z) is that value (≤ TAIL_ZERO for 0)" found by bisection
    towards the other end (or z = 0, the transition of φ(√q z), where both ends are 0), then checked at
    ``_TAIL_CHECKS`` points of the cut-off part (geometric from the cut, and uniform); an end that fails, or whose
    cut-off part is shorter than ``min_length``, is kept.
    """
    lo, hi = piece.lo, piece.hi

    def value(z: float) -> float:
        return float(np.real(piece.jet(np.array([z], complex))[0][0]))

    def constant(end_value: float, z: np.ndarray) -> np.ndarray:
        d = np.real(piece.jet(np.asarray(z, float).astype(complex))[0])
        if end_value <= TAIL_ZERO:
            return d <= TAIL_ZERO
        return d == end_value

    cuts = [lo, hi]
    atoms: list[tuple[float, float]] = []
    for side, (end, other) in enumerate(((lo, hi), (hi, lo))):
        end_value = value(end)
        # a point where the predicate fails: the other end, else z = 0 (the activations' transition, √q z = 0), else a
        # point of a uniform grid; none: d is constant across the piece (to the grid), left as it is
        candidates = np.concatenate([[other], [0.0] if lo < 0.0 < hi else [], np.linspace(lo, hi, 4001)])
        fails = np.flatnonzero(~constant(end_value, candidates))
        if not fails.size:
            continue
        a, b = end, float(candidates[fails[0]])  # the predicate holds at a, fails at b
        for _ in range(200):
            mid = 0.5 * (a + b)
            if mid in (a, b):
                break
            if constant(end_value, np.array([mid]))[0]:
                a = mid
            else:
                b = mid
        if abs(a - end) < min_length:
            continue
        span = end - a
        check = np.concatenate([a + span * np.geomspace(1e-12, 1.0, _TAIL_CHECKS // 2), np.linspace(a, end, _TAIL_CHECKS // 2)])
        if not constant(end_value, check).all():
            continue
        cuts[side] = a
        mass = gaussian_mass(min(a, end), max(a, end))
        atoms.append((0.0 if end_value <= TAIL_ZERO else end_value, mass))
    if cuts == [lo, hi]:
        return piece, []
    return AnalyticPiece(cuts[0], cuts[1], piece.jet), atoms


def _gaussian(z: np.ndarray) -> np.ndarray:
    return np.exp(-0.5 * z * z) * _INV_SQRT_2PI


class _PieceRule:
    """Nodes, weights and the real geometry of d (monotone runs, critical points) on one piece."""

    def __init__(self, piece: AnalyticPiece, panel: float) -> None:
        self.piece = piece
        lo, hi = piece.lo, piece.hi
        n_panels = max(1, math.ceil((hi - lo) / panel))
        edges = np.linspace(lo, hi, n_panels + 1)
        self.edges = edges
        half = 0.5 * np.diff(edges)
        self.z = ((0.5 * (edges[:-1] + edges[1:]))[:, None] + half[:, None] * _GL_T[None, :]).ravel()
        self.w = (half[:, None] * _GL_W[None, :]).ravel()
        self.g = _gaussian(self.z)
        self.gw = self.g * self.w
        self.d = np.real(piece.jet(self.z.astype(complex))[0])
        # nodes where d takes one value exactly (gelu's right tail, d = 1 in float64 from √q z ≈ 8.6 on: 40–55 % of its
        # nodes at q = 22–82), summed once: Σ_tied g·w/(1 − u d) = (Σ_tied g·w)/(1 − u d) up to the sum's rounding
        values, inverse, counts = np.unique(self.d, return_inverse=True, return_counts=True)
        tied = counts[inverse] >= _TIED_MIN
        self.sum_d, self.sum_gw = self.d[~tied], self.gw[~tied]
        self.tied_d = values[counts >= _TIED_MIN]
        self.tied_gw = np.array([float(self.gw[self.d == value].sum()) for value in self.tied_d])
        zg = np.linspace(lo, hi, _GRID)
        dg, d1g, _ = (np.real(a) for a in piece.jet(zg.astype(complex)))
        self.max_value = float(dg.max())
        self.min_value = float(dg.min())
        self.ends = [(zg[0], (float(dg[0]), float(d1g[0]))), (zg[-1], (float(dg[-1]), float(d1g[-1])))]
        # critical points of d inside the piece (sign changes of d'), refined by Brent's method
        slope = lambda z: float(np.real(piece.jet(np.array([z], complex))[1][0]))  # noqa: E731
        critical = []
        sign = np.sign(d1g)
        for i in np.flatnonzero(sign[:-1] * sign[1:] < 0):
            # (xtol relative to a piece shorter than 1: the windows ~1/√q wide of large q, where 1e−15 would be 0.1 in √q z
            # at q = 1e16 and throw gelu's double zero — excised around it — off by that much)
            critical.append(brentq(slope, zg[i], zg[i + 1], xtol=1e-15 * min(1.0, hi - lo), rtol=1e-15))
        for i in np.flatnonzero(sign[1:-1] == 0) + 1:  # d' exactly 0 at a grid point
            if sign[i - 1] * sign[i + 1] < 0:
                critical.append(float(zg[i]))
        critical.sort()
        self.critical = []
        for zc in critical:
            d0, _, d2 = (complex(a) for a in (x[0] for x in piece.jet(np.array([zc], complex))))
            self.critical.append((zc, d0.real, d2.real))
            self.max_value = max(self.max_value, d0.real)
            self.min_value = min(self.min_value, d0.real)
        # monotone runs between the critical points (and the ends), as interpolation tables z(d)
        breaks = [lo] + [zc for zc, _, _ in self.critical] + [hi]
        self.runs = []
        for a, b in zip(breaks[:-1], breaks[1:]):
            inside = (zg > a) & (zg < b)
            za = np.concatenate([[a], zg[inside], [b]])
            da = np.real(piece.jet(za.astype(complex))[0])
            order = np.argsort(da)
            self.runs.append((da[order], za[order]))


class GaussianImageS(PsiS):
    """S-factor of μ = Σ_atoms m δ_a + (image of N(0, 1) restricted to the pieces under d).

    Args:
        pieces: the :class:`AnalyticPiece` s carrying the continuous part (their Gaussian masses plus the
            atoms' masses must be 1).
        atoms: point masses (location, mass).
        strip: half-width (in z) of the strip in which d is analytic and 1 − u d has no zeros other than
            the subtracted ones; the panels are at most min(1, strip/2) wide.
        exact_moments: k ↦ E[d^k] exactly (closed form or converged quadrature), for the S-series.
        name: shown in reprs and messages.
        fast: use the law's Gauss rule where it is accurate (ψ at u with 1/u away from the cut), the
            pole-subtracted quadrature elsewhere; ``False``: the quadrature everywhere (the reference path).
    """

    #: the composite rule of log d also where d has double zeros (gelu; False: the quadrature there, as before)
    zero_rule = True
    #: the rule of d's branches to 0 in log d for small c near the positive axis (gelu; False: the quadrature there,
    #: as before it — off by up to 4e−6 there, see :class:`~rmt_init.theory._smooth_law.DeepRule`)
    deep_rule = True
    #: the principal parts of the quadrature path subtracted on the panels within this many of Re ζ (None: on all of
    #: them, as before; equal to rounding, 2–3× less time per call for gelu's 1700–3300 nodes)
    near_panels: int | None = 3
    #: measured against 30-digit mpmath quadrature: ≤ 3e−13 unless 1/u is within 1e−5 of a critical value of d
    psi_tolerance = 1e-13
    #: the roots of d(ζ) = c with one jet call for all runs' starts and the duplicates from one table, and their principal
    #: parts for all (point, root) pairs at once (False: one start kind, pair of columns and root column at a time, as
    #: before; the same values bit for bit)
    batched_roots = True
    #: the quadrature's nodes sharing one value of d exactly (gelu's right tail, d = 1) summed as one term (False: node by
    #: node, as before; equal to the sum's rounding)
    tied_nodes = True

    def __init__(
        self,
        pieces: Sequence[AnalyticPiece],
        atoms: Sequence[Atom] = (),
        strip: float = 1.0,
        exact_moments: Callable[[int], Any] | None = None,
        name: str = "gaussian image",
        fast: bool = True,
    ) -> None:
        if not pieces:
            raise ValueError("GaussianImageS needs at least one piece")
        self.strip = float(strip)
        self._max_width = 0.5  # the Gauss rules' widest discretisation panel (their default)
        panel = min(1.0, 0.5 * self.strip)
        panels = sum(max(1, math.ceil((p.hi - p.lo) / panel)) for p in pieces)
        if panels > TAIL_ATOMS_FROM:
            # large q: d varies only in a window ~1/√q wide; its constant tails are point masses (constant_tails),
            # the window keeps the panels of width strip/2 (tens to hundreds of them instead of millions)
            trimmed, atoms = [], list(atoms)
            for p in pieces:
                piece, tails = constant_tails(p, panel)
                trimmed.append(piece)
                atoms.extend(tails)
            pieces = trimmed
            self._max_width = self.strip  # the discretisation of its Gauss rules: panels no wider than the strip
            merged: dict[float, float] = {}
            for a, m in atoms:
                merged[float(a)] = merged.get(float(a), 0.0) + float(m)
            atoms = sorted(merged.items())
            panels = sum(max(1, math.ceil((p.hi - p.lo) / panel)) for p in pieces)
        if panels > MAX_PANELS:
            # the strip of φ'(√q z)² shrinks like 1/√q: gelu at q = 1e12 asked for 3.6e9 panels (a 27 GiB array), and
            # a depth-1000 gelu residual stream (q_L ≈ 2e16) was killed for memory instead of answering
            raise ValueError(
                f"{name}: its quadrature needs {panels} panels of width {panel:.3g} (half its analytic strip "
                f"{self.strip:.3g}, which shrinks like 1/√q); more than MAX_PANELS = {MAX_PANELS} (memory grows with them: 0.6 GB at 3.6e5) is "
                "refused: use a smaller q (a smaller depth, residual scale, or weight/bias variance)"
            )
        self.rules = [_PieceRule(p, panel) for p in pieces]
        # Poles farther than 1.5 panel widths from the axis cost the 10-point rule < 6.2^{−20} of their
        # weight, so they are left alone: subtracting them would add and remove R ∝ g(ζ) = e^{−ζ²/2},
        # which grows like e^{(Im ζ)²/2} off the axis, and lose digits to the cancellation.
        self.subtract_within = 1.5 * panel
        self.atoms = tuple(sorted((float(a), float(m)) for a, m in atoms))
        self._atom_x = np.array([a for a, _ in self.atoms], float)
        # ψ has no poles off its cut without atoms: the free-product solver may take long tangent steps in its
        # η-continuation (FreeProductLaw._continue); an atom at 0 (the constant tails of large q) adds the constant m
        # to 1 + ψ, no pole
        self.tangent_steps = all(a == 0.0 for a, _ in self.atoms)
        self._atom_m = np.array([m for _, m in self.atoms], float)
        self.name = name
        self._exact_moments = exact_moments
        self.xmax = max([r.max_value for r in self.rules] + [float(self._atom_x.max(initial=0.0))])
        self.mass_at_zero = float(self._atom_m[self._atom_x == 0.0].sum())
        total = float(sum(np.dot(r.w, r.g) for r in self.rules) + self._atom_m.sum())
        if abs(total - 1.0) > 1e-12:
            raise ValueError(f"{name}: the pieces and atoms carry mass {total!r}, not 1")
        self._range = (min(r.min_value for r in self.rules), max(r.max_value for r in self.rules))
        # the law's Gauss rule (rmt_init.theory._smooth_law), built on first use: ψ away from the cut in one
        # sum; none where d is constant to rounding on the pieces (selu at q → 0), the quadrature is exact there
        self._fast = fast and self._range[1] - self._range[0] > 1e-12 * self._range[1]
        # d constant to a few ulps on every piece (selu at q* = 0, where the kink gives q = 1e−200 and
        # e^{2√q z} = 1 in float64): each piece is numerically a point mass m = ∫ g at that value, and the
        # quadrature reduces to m/(1 − u d) (its nodes all carry the same d, its roots of d(ζ) = 1/u lie ~1/√q
        # away): that closed form, without the root search. ``collapsed = None`` keeps the quadrature (reference).
        self.collapsed: tuple[np.ndarray, np.ndarray] | None = None
        if fast and all(r.max_value - r.min_value <= _COLLAPSE_ULPS * np.finfo(float).eps * abs(r.max_value) for r in self.rules):
            self.collapsed = (
                np.array([float(np.dot(r.gw, r.d)) / float(r.gw.sum()) for r in self.rules]),
                np.array([float(r.gw.sum()) for r in self.rules]),
            )

    @cached_property
    def gauss_rule(self) -> ImageGaussRule | None:
        """The Gauss rule of the law of d on the pieces (None: the quadrature path everywhere).

        Assigning ``None`` switches a factor to the quadrature path (the reference in the tests and benchmarks).
        """
        if not self._fast:
            return None
        # d vanishing at an interior critical point (gelu): E[1/d] = ∞ and the grid's minimum is no bound, so no
        # rule of a/d there (its lower edge then stays with the quadrature)
        top = self._range[1]
        zeros = []  # (piece, z0, d''(z0), a quarter of the distance to the nearest other critical point or end)
        for i, r in enumerate(self.rules):
            for zc, dc, d2c in r.critical:
                if dc <= _ZERO_CRITICAL * top:
                    others = [abs(zc - z) for z, _, _ in r.critical if z != zc] + [zc - r.piece.lo, r.piece.hi - zc]
                    zeros.append((i, zc, d2c, 0.25 * min(others)))
        pieces = [(r.piece.lo, r.piece.hi, r.piece.jet) for r in self.rules]
        if zeros and not self.zero_rule:
            return ImageGaussRule(pieces, *self._range, inverse=False, max_width=self._max_width)
        # its double zeros are excised and discretised in log √d, so that the composite rule of log d covers the
        # product's lower edge (:mod:`rmt_init.theory._smooth_law`)
        return ImageGaussRule(pieces, *self._range, inverse=not zeros, zeros=zeros, max_width=self._max_width)

    @property
    def underflow_mass(self) -> float:
        """The mass that this factor's ψ puts at d = 0 although the law of d has none there: the Gaussian mass of the
        ends of its pieces where d < 1e−280 (gelu's left tail), which its Gauss rules keep as an atom at 0
        (:attr:`ImageGaussRule.zero_mass`; the deep rule's atom, d < 1e−305, is part of it). 0 on the quadrature
        path (``gauss_rule = None``) and for laws without such ends. The free-product tables read it to tell where a
        product's density near 0 is that of this atom rather than of the law (docs/derivations.md §2.6 (f))."""
        rule = self.gauss_rule
        return float(rule.zero_mass) if rule is not None else 0.0

    def __repr__(self) -> str:
        return self.name

    # ------------------------------------------------------------------ roots of d(ζ) = c
    def _roots(self, rule: _PieceRule, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Roots ζ (n, k) of d(ζ) = c near the piece, with a mask of the valid, distinct ones.

        Columns: one start per monotone run (its interpolated crossing of Re c, shifted by Im c/d'), one per end of the
        piece where d' ≠ 0 (the linear extrapolation), two per critical point (z_c ± √(2(c − d_c)/d''_c)); each is
        refined by Newton on d(ζ) = c and kept if it converged within the strip; a root reached from two starts is
        kept in its first column. With ``batched_roots`` (the default) every run's start takes one jet call and the
        duplicates are found from one (n, k, k) table of distances: the same columns, values and masks as
        :meth:`_roots_by_start` (bit for bit), with ~100 fewer NumPy calls per call — the solver's cold points near the
        cut call this with 1–20 points at a time, where those calls were half of the time (gelu at depth 1).
        """
        if not self.batched_roots:
            return self._roots_by_start(rule, c)
        jet = rule.piece.jet
        starts = []
        if rule.runs:
            inside = np.stack([(c.real > d_sorted[0]) & (c.real < d_sorted[-1]) for d_sorted, _ in rule.runs], axis=1)
            z0 = np.stack([np.interp(c.real, d_sorted, z_sorted) for d_sorted, z_sorted in rule.runs], axis=1).astype(complex)
            d1 = np.real(jet(z0)[1])
            with np.errstate(over="ignore"):  # (d' ~ 1e−300 at the ends of a window cut at d ≥ 1e−306: clipped below)
                shift = np.where(d1 != 0, c.imag[:, None] / np.where(d1 != 0, d1, 1.0), 0.0)
            shift = np.clip(shift, -self.strip, self.strip)
            starts.append(np.where(inside, z0 + 1j * shift, np.nan))
        for end, (d_end, d1_end) in rule.ends:
            if d1_end == 0.0:
                continue
            with np.errstate(all="ignore"):
                z0 = end + (c - d_end) / d1_end
            starts.append(np.where(np.abs(z0 - end) < self.strip, z0, np.nan)[:, None])
        critical = [(zc, dc, d2c) for zc, dc, d2c in rule.critical if d2c != 0.0]
        if critical:
            zc = np.array([x[0] for x in critical])
            dc = np.array([x[1] for x in critical])
            d2c = np.array([x[2] for x in critical])
            offset = np.sqrt(2.0 * (c[:, None] - dc[None, :]) / d2c[None, :] + 0j)
            near = np.abs(offset) < self.strip
            pair = np.stack([np.where(near, zc + offset, np.nan), np.where(near, zc - offset, np.nan)], axis=2)
            starts.append(pair.reshape(c.size, -1))  # columns zc₁ + o, zc₁ − o, zc₂ + o, … (as before)
        if not starts:
            return np.empty((c.size, 0), complex), np.empty((c.size, 0), bool)
        zeta = np.concatenate(starts, axis=1)
        zeta, ok = self._newton_roots(rule, zeta, c)
        # the same root reached from two starts is subtracted once: column i is dropped where an earlier column j still
        # kept holds a root within 1e−10 (1 + |ζ_j|) of it (in column order, as the pairwise loop before)
        columns = np.flatnonzero(ok.any(axis=0))
        if columns.size > 1:
            with np.errstate(all="ignore"):
                close = np.abs(zeta[:, :, None] - zeta[:, None, :]) <= 1e-10 * (1.0 + np.abs(zeta))[:, None, :]
            for i in columns[1:]:
                ok[:, i] &= ~np.any(ok[:, :i] & close[:, i, :i], axis=1)
        return self._physical_side(rule, zeta, ok)

    def _newton_roots(self, rule: _PieceRule, zeta: np.ndarray, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """Newton on d(ζ) = c from the starts ``zeta`` (n, k; NaN: no start), steps capped at half the strip; (ζ, kept):
        kept where the start existed and the root converged (|d − c| ≤ 1e−10|c| + 1e−14|d'|) within the strip."""
        jet = rule.piece.jet
        target = c[:, None]
        active = np.isfinite(zeta)
        zeta = np.where(active, zeta, 0.0)
        todo = np.flatnonzero(active.ravel())
        flat = zeta.ravel()
        flat_target = np.broadcast_to(target, zeta.shape).ravel()
        for _ in range(_NEWTON_STEPS):
            if todo.size == 0:
                break
            zt = flat[todo]
            d0, d1, _ = jet(zt)
            with np.errstate(all="ignore"):  # a zero or overflowing d' gives a non-finite step: dropped below
                step = (d0 - flat_target[todo]) / d1
                big = np.abs(step) > 0.5 * self.strip
                step = np.where(big, step * (0.5 * self.strip) / np.where(big, np.abs(step), 1.0), step)
            finite = np.isfinite(step)
            flat[todo] = np.where(finite, zt - step, zt)
            todo = todo[finite & (np.abs(step) > 1e-15 * (1.0 + np.abs(zt)))]
        zeta = flat.reshape(zeta.shape)
        d0, d1, _ = jet(zeta)
        with np.errstate(all="ignore"):
            ok = (
                active
                & np.isfinite(zeta)
                & (np.abs(d0 - target) <= 1e-10 * np.maximum(np.abs(target), 1e-300) + 1e-14 * np.abs(d1))
                & (np.abs(zeta.imag) < self.subtract_within)
                & (zeta.real > rule.piece.lo - self.strip)
                & (zeta.real < rule.piece.hi + self.strip)
            )
        return zeta, ok

    @staticmethod
    def _physical_side(rule: _PieceRule, zeta: np.ndarray, ok: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """A root exactly on the real axis is taken on its physical side (Im u → 0⁻: the side of d')."""
        on_axis = ok & (zeta.imag == 0.0)
        if on_axis.any():
            side = np.sign(np.real(rule.piece.jet(zeta)[1]))
            zeta = np.where(on_axis, zeta + 1j * side * 1e-300, zeta)
        return zeta, ok

    def _roots_by_start(self, rule: _PieceRule, c: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """:meth:`_roots` one start kind and one pair of columns at a time (``batched_roots = False``: the path before)."""
        jet = rule.piece.jet
        starts = []
        for d_sorted, z_sorted in rule.runs:
            inside = (c.real > d_sorted[0]) & (c.real < d_sorted[-1])
            z0 = np.interp(c.real, d_sorted, z_sorted).astype(complex)
            d1 = np.real(jet(z0)[1])
            with np.errstate(over="ignore"):  # (d' ~ 1e−300 at the ends of a window cut at d ≥ 1e−306: clipped below)
                shift = np.where(d1 != 0, c.imag / np.where(d1 != 0, d1, 1.0), 0.0)
            shift = np.clip(shift, -self.strip, self.strip)
            starts.append(np.where(inside, z0 + 1j * shift, np.nan))
        # roots just beyond an end of the piece where d is monotone (selu at z = 0⁻: c a little above
        # the range), which no run's interpolation reaches: the linear extrapolation from that end
        for end, (d_end, d1_end) in rule.ends:
            if d1_end == 0.0:
                continue
            with np.errstate(all="ignore"):
                z0 = end + (c - d_end) / d1_end
            starts.append(np.where(np.abs(z0 - end) < self.strip, z0, np.nan))
        for zc, dc, d2c in rule.critical:
            if d2c == 0.0:
                continue
            offset = np.sqrt(2.0 * (c - dc) / d2c + 0j)
            near = np.abs(offset) < self.strip
            for sign in (1.0, -1.0):
                starts.append(np.where(near, zc + sign * offset, np.nan))
        if not starts:
            return np.empty((c.size, 0), complex), np.empty((c.size, 0), bool)
        zeta = np.stack(starts, axis=1)
        zeta, ok = self._newton_roots(rule, zeta, c)
        for i in range(zeta.shape[1]):  # the same root reached from two starts is subtracted once
            for j in range(i):
                ok[:, i] &= ~(ok[:, j] & (np.abs(zeta[:, i] - zeta[:, j]) <= 1e-10 * (1.0 + np.abs(zeta[:, j]))))
        return self._physical_side(rule, zeta, ok)

    # ------------------------------------------------------------------ ψ
    def _piece_integrals(self, rule: _PieceRule, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        with np.errstate(all="ignore"):
            c = 1.0 / u
        c = np.where(np.isfinite(c), c, 0.0)
        value = np.empty(u.shape, complex)
        slope = np.empty(u.shape, complex)
        # in blocks of _NODE_BLOCK points, whose (points × nodes) terms stay in cache (gelu at depth 1 has ~1700
        # nodes: a chunk of 256 points made 7 MB arrays, and took twice as long per point; same sums per point)
        d, gw = (rule.sum_d, rule.sum_gw) if self.tied_nodes else (rule.d, rule.gw)
        for start in range(0, u.size, _NODE_BLOCK):
            part = slice(start, start + _NODE_BLOCK)
            inverse = 1.0 / (1.0 - u[part, None] * d[None, :])
            weighted = inverse * gw  # g·w/(1 − u d) at the nodes
            value[part] = weighted.sum(axis=1)
            # E[u d/(1 − u d)²] = E[(1 − u d)^{−2}] − E[(1 − u d)^{−1}]
            slope[part] = (weighted * inverse).sum(axis=1) - value[part]
        if self.tied_nodes and rule.tied_d.size:
            inverse = 1.0 / (1.0 - u[:, None] * rule.tied_d[None, :])
            weighted = inverse * rule.tied_gw
            value += weighted.sum(axis=1)
            slope += (weighted * inverse).sum(axis=1) - weighted.sum(axis=1)
        zeta, ok = self._roots(rule, c)
        a, b = rule.piece.lo, rule.piece.hi
        if self.batched_roots and self.near_panels is not None:
            self._add_principal_parts(rule, u, zeta, ok, value, slope)
            return value, slope
        for k in range(zeta.shape[1]):
            hit = ok[:, k]
            if not hit.any():
                continue
            zk = zeta[hit, k]
            uk = u[hit]
            _, d1, d2 = rule.piece.jet(zk)
            gz = _gaussian(zk)
            big_a = -uk * d1
            residue = gz / big_a
            p2 = residue / big_a
            p1 = -p2 * (zk + d2 / d1)
            # the principal parts, integrated by the same rule (to subtract) and exactly (to add back); with
            # ``near_panels``, on the panels within that many of Re ζ only: on the others the 10-point rule integrates
            # 1/(z − ζ) and 1/(z − ζ)² to ρ^{−20} with ρ ≥ 6 + √35 ≈ 11.9 (|Im ζ| < 1.5 panels), 3e−22 relative
            if self.near_panels is None:
                r = 1.0 / (rule.z[None, :] - zk[:, None])
                s1 = weighted_sum(r, rule.w)
                s2 = weighted_sum(r * r, rule.w)
                a_n, b_n = a, b
                log_part = np.log(b - zk) - np.log(a - zk)
            else:
                s1, s2, a_n, b_n = self._near_panel_sums(rule, zk)
                log_part = np.log(b_n - zk) - np.log(a_n - zk)
            value[hit] += residue * (log_part - s1)
            slope[hit] += p2 * (1.0 / (a_n - zk) - 1.0 / (b_n - zk) - s2) + (p1 - residue) * (log_part - s1)
        return value, slope

    def _near_panel_sums(self, rule: _PieceRule, zk: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
        """(Σ w/(z − ζ), Σ w/(z − ζ)², a_n, b_n) over the ``near_panels`` panels either side of each root ζ's panel
        (clipped to the piece), whose ends are [a_n, b_n]."""
        count = rule.edges.size - 1
        width = (rule.piece.hi - rule.piece.lo) / count
        # (Re ζ may lie ~1/√q away, 1e100 for selu at q = 1e−200: clipped before the cast to int)
        at = np.clip(np.floor((zk.real - rule.piece.lo) / width), -1.0 - self.near_panels, count + self.near_panels).astype(int)
        first = np.clip(at - self.near_panels, 0, count - 1)
        last = np.clip(at + self.near_panels, 0, count - 1)
        span = 2 * self.near_panels + 1
        panels = first[:, None] + np.arange(span)[None, :]
        inside = panels <= last[:, None]
        panels = np.minimum(panels, count - 1)
        index = (panels[:, :, None] * _GL_T.size + np.arange(_GL_T.size)[None, None, :]).reshape(zk.size, -1)
        weights = np.where(np.repeat(inside, _GL_T.size, axis=1), rule.w[index], 0.0)
        r = 1.0 / (rule.z[index] - zk[:, None])
        return (r * weights).sum(axis=1), (r * r * weights).sum(axis=1), rule.edges[first], rule.edges[last + 1]

    def _add_principal_parts(self, rule: _PieceRule, u: np.ndarray, zeta: np.ndarray, ok: np.ndarray, value: np.ndarray,
                             slope: np.ndarray) -> None:
        """The roots' principal parts (see :meth:`_piece_integrals`, ``near_panels``) for all (point, root) pairs at once,
        added into ``value`` and ``slope`` in the order of the loop over root columns (``np.add.at`` is unbuffered and
        applies them in index order: the same sums as that loop, bit for bit)."""
        column, point = np.nonzero(ok.T)  # root-column-major, as the loop over columns
        if point.size == 0:
            return
        zk = zeta[point, column]
        uk = u[point]
        _, d1, d2 = rule.piece.jet(zk)
        gz = _gaussian(zk)
        big_a = -uk * d1
        residue = gz / big_a
        p2 = residue / big_a
        p1 = -p2 * (zk + d2 / d1)
        s1, s2, a_n, b_n = self._near_panel_sums(rule, zk)
        log_part = np.log(b_n - zk) - np.log(a_n - zk)
        np.add.at(value, point, residue * (log_part - s1))
        np.add.at(slope, point, p2 * (1.0 / (a_n - zk) - 1.0 / (b_n - zk) - s2) + (p1 - residue) * (log_part - s1))

    def one_plus_psi(self, u: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray]:
        """(1 + ψ(u), u ψ'(u)) for complex u with Im u ≤ 0 (vectorised; see the module docstring).

        Where 1/u lies outside the Bernstein ellipse of parameter 1.5 around the range of d, the law's Gauss
        rule gives both in one sum (:mod:`rmt_init.theory._smooth_law`: ≲ 3e−15 relative); nearer the cut
        the pole-subtracted quadrature does.
        """
        value, slope, _ = self._evaluate(u, chunk, False)
        return value, slope

    def psi_parts(self, u: np.ndarray, chunk: int = 256) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(1 + ψ(u), u ψ'(u), ψ(u)): where |u| max d ≤ 1/2 (|ψ| ≤ 1: far above the spectrum, and next to the top
        edge of deep products) and the Gauss rule or point masses serve, ψ summed as Σ w u d/(1 − u d) itself,
        with relative accuracy as ψ → 0; NaN elsewhere (where 1 + ψ is the accurate one). The free-product
        solver's residual takes ψ(u) − s w where it is given (docs/derivations.md §2.5)."""
        return self._evaluate(u, chunk, True)

    def _evaluate(self, u: np.ndarray, chunk: int, want_psi: bool) -> tuple[np.ndarray, np.ndarray, np.ndarray | None]:
        u = np.asarray(u, complex)
        flat = u.ravel()
        value = np.zeros(flat.shape, complex)
        slope = np.zeros(flat.shape, complex)
        psi = np.zeros(flat.shape, complex) if want_psi else None
        direct = np.zeros(flat.shape, bool)  # points whose ψ is summed directly
        if self.collapsed is not None:
            near = np.arange(0)
            ua = flat[:, None] * self.collapsed[0][None, :]
            inverse = 1.0 / (1.0 - ua)
            value += weighted_sum(inverse, self.collapsed[1])
            slope += weighted_sum(ua * inverse * inverse, self.collapsed[1])
            if want_psi:
                direct[:] = np.abs(flat) * self.xmax <= 0.5
                psi[direct] += weighted_sum(ua[direct] * inverse[direct], self.collapsed[1])
        elif self.gauss_rule is not None:
            rho = self.gauss_rule.rho(flat)
            far = rho >= RHO_MIN
            # |u| max d ≤ 1/2: |ψ| ≤ 1 and |1 + ψ| ≥ 2/3, so 1 + ψ = (the rule's mass) + ψ keeps its accuracy
            small = far & (np.abs(flat) * self.xmax <= 0.5) if want_psi else np.zeros(far.shape, bool)
            if small.any():
                psi[small], slope[small] = self.gauss_rule.psi(flat[small], rho[small])
                value[small] = self._rule_mass + psi[small]
                direct[small] = True
            rest = far & ~small
            if rest.any():
                value[rest], slope[rest] = self.gauss_rule.one_plus_psi(flat[rest], rho[rest])
            if self.gauss_rule.inverse_tiers is not None and not far.all():
                # |c| at or below the bottom of the range (the product's hard edge): the rule of 1/d
                rest = np.flatnonzero(~far)
                inverse_rho = self.gauss_rule.inverse_rho(flat[rest])
                keep = inverse_rho >= RHO_MIN
                if keep.any():
                    index = rest[keep]
                    value[index], slope[index] = self.gauss_rule.inverse_one_plus_psi(flat[index], inverse_rho[keep])
                    far[index] = True
            low = ~far if self.gauss_rule.log_rule is not None else np.zeros(far.shape, bool)
            if low.any():
                log_rho = self.gauss_rule.log_rho(flat[low])
                low[low] = log_rho >= RHO_MIN_LOG
                if low.any():
                    v, s = self.gauss_rule.log_one_plus_psi(flat[low])
                    # its error bound ρ^{−2n} is absolute (f = c/(c − t) is O(1)): kept where it is ≤ 1e−13
                    # relative to 1 + ψ, which → 0 as 1/u → 0 (measured: ≤ 1.2e−14 relative there)
                    with np.errstate(all="ignore"):
                        good = log_rho[log_rho >= RHO_MIN_LOG] ** (-2.0 * N_LOG) <= 1e-13 * np.abs(v)
                    low[low] = good
                    value[low], slope[low] = v[good], s[good]
            if self.gauss_rule.panels is not None:
                # long log-ranges (erf, sigmoid): the composite rule of log d, where its error bound is ≤ 1e−14
                # relative to 1 + ψ (f is O(1), 1 + ψ → 0 only as 1/u → 0)
                rest = np.flatnonzero(~(far | low))
                if rest.size:
                    bound = self.gauss_rule.panel_bound(flat[rest])
                    rest, bound = rest[bound <= 1e-12], bound[bound <= 1e-12]
                if rest.size:
                    v, s = self.gauss_rule.panel_one_plus_psi(flat[rest])
                    good = bound <= 1e-14 * np.abs(v)
                    value[rest[good]], slope[rest[good]] = v[good], s[good]
                    low[rest[good]] = True
            if self.deep_rule:
                # |c| ≪ the bottom of d's positive values, near the positive axis (gelu's hard edge): the rule of the
                # branches of d reaching 0 in v = log d, pole subtracted (:class:`~rmt_init.theory._smooth_law.DeepRule`)
                rest = np.flatnonzero(~(far | low))
                deep = self.gauss_rule.deep if rest.size else None
                if deep is not None:
                    rest = rest[deep.covers(flat[rest])]
                    if rest.size:
                        value[rest], slope[rest] = deep.one_plus_psi(flat[rest])
                        low[rest] = True
            near = np.flatnonzero(~(far | low))
        else:
            near = np.arange(flat.size)
        for start in range(0, near.size, chunk):
            index = near[start : start + chunk]
            part = flat[index]
            for rule in self.rules:
                v, s = self._piece_integrals(rule, part)
                value[index] += v
                slope[index] += s
        if self._atom_x.size:
            ua = flat[:, None] * self._atom_x[None, :]
            inverse = 1.0 / (1.0 - ua)
            value += weighted_sum(inverse, self._atom_m)
            slope += weighted_sum(ua * inverse * inverse, self._atom_m)
            if want_psi and direct.any():
                psi[direct] += weighted_sum(ua[direct] * inverse[direct], self._atom_m)
        if want_psi:
            psi[~direct] = np.nan  # not summed directly: the solver takes (1 + ψ) − (1 + s w) there
            psi = psi.reshape(u.shape)
        return value.reshape(u.shape), slope.reshape(u.shape), psi

    @cached_property
    def _rule_mass(self) -> float:
        """The mass the Gauss rule carries (the continuous part of the law of d): 1 + ψ = that + ψ on its points."""
        return float(self.gauss_rule.tiers[-1][2].sum())

    # ------------------------------------------------------------------ moments
    def moments(self, order: int) -> list[Any]:
        if self._exact_moments is not None:
            return [self._exact_moments(k) for k in range(1, order + 1)]
        out = []
        for k in range(1, order + 1):
            total = float(np.dot(self._atom_m, self._atom_x**k))
            total += sum(float(np.dot(r.w * r.g, r.d**k)) for r in self.rules)
            out.append(total)
        return out

    def series(self, order: int) -> list[Any]:
        return _series.s_from_moments(self.moments(order + 1), order)
