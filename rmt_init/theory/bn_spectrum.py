"""Spectrum of the batch Jacobian of a batch-normalised network at initialisation (docs/derivations.md §11).

Network: ``depth`` blocks ``Linear → BatchNorm (train mode, γ = 1, β = 0, biased batch variance) → φ``, width
N → ∞ at fixed batch size B, i.i.d. centred weights of variance ``σ_w²/N``, i.i.d. ``N(0, q₀)`` inputs. The
batch map R^B ⊗ R^N → R^B ⊗ R^N has the Jacobian ``J = J_L ⋯ J_1``, ``J_l = D_l Π_l (I_B ⊗ W_l)`` with, per
channel j, ``Π_l = (1/s_j)(I − 11ᵀ/B − ŷ_j ŷ_jᵀ/B)`` (Yang, Pennington, Rao, Sohl-Dickstein & Schoenholz 2019,
arXiv 1902.08129) and ``D_l = diag φ'``. The law returned is that of the squared singular values of J
(eigenvalues of J Jᵀ), normalised over all B·N dimensions.

Linear φ (docs/derivations.md §11.3): the common mode 1 ⊗ R^N is in the kernel, and on its complement the law
is the free multiplicative convolution

    ``μ_V = ⊠_{l=1}^{L} (ν_l ⊠ MP(σ_w²))``,   ``ν_l = δ₀/(B − 1) + ((B − 2)/(B − 1)) · law(κ_l/(σ_w² X))``,

``X ~ χ²_{B−1}``, ``κ₁ = B/q₀``, ``κ_l = B − 1`` for l ≥ 2; the full law is ``((B − 1)/B) μ_V + δ₀/B``, with
an atom ``2/B`` at 0 in all. σ_w cancels. ``E[X^{−k}] = 1/Π_{j=1}^{k}(B − 1 − 2j)`` is finite only for
``k < (B − 1)/2``: the law has a power-law upper tail, ``P(λ > x) ∝ x^{−(B−1)/2}``, unbounded support, and
its moments of order ``k ≥ (B − 1)/2`` are infinite (m₂ = ∞ at B ≤ 5, m₃ = ∞ at B ≤ 7).

Top of the spectrum (§11.8): no top edge; the largest eigenvalue of a width-N network has the extreme-value law
``exp(−θ B N sf(x))`` (:class:`~rmt_init.theory.bn_largest.LargestEigenvalueLaw`, module
:mod:`rmt_init.theory.bn_largest`). m₁, m₂, m₃ for any φ by the M_B-valued recursion (§11.5):
:func:`~rmt_init.theory.bn_moments.bn_jacobian_moments` (module :mod:`rmt_init.theory.bn_moments`). Per-example blocks: :class:`BNPerExampleLaw` (depth 1,
§11.9), :class:`~rmt_init.theory.bn_per_example.BNPerExampleExactLaw` (linear φ, any depth, §11.10),
:class:`~rmt_init.theory.bn_per_example_nonlinear.BNPerExampleNonlinearLaw` (relu, tanh, depth ≥ 2, §11.11).

Any φ (docs/derivations.md §11.5b): the same product with ``ν_l = law(κ_l λ/(σ_w² X))``, λ the eigenvalues on 1⊥
of ``C = M D P D M`` (l < L) or ``M D² M`` (l = L), ``κ_l = B/α``; the batch permutations S_B act irreducibly on
1⊥, which is all the collapse to scalar freeness needs. The law of λ is sampled (:class:`ChannelLawS`), its mean
exact.
"""
from __future__ import annotations

import math
from fractions import Fraction
from functools import cached_property
from typing import TYPE_CHECKING, Any

import numpy as np
from scipy.optimize import brentq

from .._validate import check_choice, check_int, check_real
from . import _series
if TYPE_CHECKING:
    from .bn_per_example import BNPerExampleExactLaw
    from .bn_per_example_nonlinear import BNPerExampleNonlinearLaw
from .free import FreeProductLaw, PsiS, Term, _dimension_factor, _exact, marchenko_pastur_s, RationalS
from .bn_largest import LargestEigenvalueLaw, _cluster_index, _extremal_index
from .bn_moments import BNJacobianMoments, _sphere_samples, bn_jacobian_moments
from ._deep_tail import DeepTail, build_deep_tail

__all__ = ["bn_jacobian_spectrum", "bn_jacobian_moments", "bn_per_example_mean", "BNBatchJacobianLaw", "BNJacobianMoments",
           "InverseChiSquareS", "ChannelLawS", "BNGenericJacobianLaw", "LargestEigenvalueLaw", "BNPerExampleLaw"]

_GL_T, _GL_W = np.polynomial.legendre.leggauss(10)
_PANEL = 0.5  # largest panel width in v = ln X (1/√a for large a, the width of the density in v)
_DROP = 40.0  # the interval in v ends where the χ² density in v has fallen by e^{−40} below its mode


class _LogChiSquareS(PsiS):
    """What :class:`InverseChiSquareS` and :class:`ChannelLawS` share: ``1 + ψ(u) = p₀ + c ∫ p(v) eᵛ/(eᵛ − uκ) dv``
    over v = ln X (or ln(X/λ)) on a composite Gauss–Legendre grid, with the principal part at the pole
    ``v₀ = Log(uκ)`` subtracted and added back in closed form (see :class:`InverseChiSquareS`)."""

    #: c, the factor on the integrals (the mass of the χ² part)
    _psi_scale = 1.0

    def _set_grid(self, shift_lo: float, shift_hi: float) -> np.ndarray:
        """Panels of width ``min(1/2, a^{−1/2})`` where p exceeds e^{−40} of its mode (v* = ln 2a), the ends moved
        by ``−shift_lo`` / ``−shift_hi``; sets the ends, panel width, weights and log-normaliser, returns the nodes."""
        mode = math.log(2.0 * self.a)
        # ln p(v* + δ) − ln p(v*) = −a(e^δ − 1 − δ): the ends are its roots at −40
        drop = lambda d: self.a * (math.expm1(d) - d) - _DROP  # noqa: E731
        lo = mode + brentq(drop, -_DROP / self.a - 2.0, -1e-9) - shift_lo
        hi = mode + brentq(drop, 1e-9, 10.0) - shift_hi
        self._panel = min(_PANEL, 1.0 / math.sqrt(self.a))
        n_panels = max(1, math.ceil((hi - lo) / self._panel))
        edges = np.linspace(lo, hi, n_panels + 1)
        half = 0.5 * np.diff(edges)
        self._lo, self._hi = lo, hi
        self._w = (half[:, None] * _GL_W[None, :]).ravel()
        self._log_norm = -self.a * math.log(2.0) - math.lgamma(self.a)
        return ((0.5 * (edges[:-1] + edges[1:]))[:, None] + half[:, None] * _GL_T[None, :]).ravel()

    def _poles(self, zeta: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(v₀ = Log ζ on the side Im u < 0, whether v₀ is near enough to the grid for its principal part)."""
        angle = np.angle(zeta)
        angle = np.where((zeta.imag == 0) & (zeta.real < 0), -math.pi, angle)  # the side Im u < 0
        with np.errstate(divide="ignore"):
            v0 = np.log(np.abs(zeta)) + 1j * angle
        h = 2.0 * self._panel  # poles farther than two panel widths from the axis cost < 8^{−20} relative
        near = (np.abs(v0.imag) < h) & (v0.real > self._lo - h) & (v0.real < self._hi + h) & (zeta != 0)
        return v0, near

    def _pole_subtracted(self, f0: np.ndarray, f1: np.ndarray, v: np.ndarray, near: np.ndarray, vn: np.ndarray,
                         r0: np.ndarray, r1: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(Σ w f0, Σ w f1) with the principal parts r/(v − v₀) of the near poles subtracted from the integrands
        (in place) and ∫_lo^hi r dv/(v − v₀) = r (Log(hi − v₀) − Log(lo − v₀)) added back (v₀ on the axis: from
        below, Im u < 0)."""
        out0 = np.zeros(f0.shape[0], complex)
        out1 = np.zeros(f0.shape[0], complex)
        if near.any():
            pole = 1.0 / (v - vn[:, None])
            f0[near] -= r0[:, None] * pole
            f1[near] -= r1[:, None] * pole
            im = -vn.imag
            im = np.where(im == 0, 0.0, im)
            logs = []
            for end in (self._hi, self._lo):
                re = end - vn.real
                logs.append(0.5 * np.log(re * re + im * im) + 1j * np.arctan2(im, re))
            out0[near] += r0 * (logs[0] - logs[1])
            out1[near] += r1 * (logs[0] - logs[1])
        out0 += f0 @ self._w
        out1 += f1 @ self._w
        return out0, out1

    def one_plus_psi(self, u: np.ndarray, chunk: int = 512) -> tuple[np.ndarray, np.ndarray]:
        u = np.asarray(u, complex)
        flat = u.ravel()
        value = np.empty(flat.shape, complex)
        slope = np.empty(flat.shape, complex)
        for start in range(0, flat.size, chunk):
            i0, i1 = self._integrals(flat[start : start + chunk])
            value[start : start + chunk] = self.mass_at_zero + self._psi_scale * i0
            slope[start : start + chunk] = self._psi_scale * i1
        return value.reshape(u.shape), slope.reshape(u.shape)


class InverseChiSquareS(_LogChiSquareS):
    """The law ``ν = δ₀/(B − 1) + ((B − 2)/(B − 1)) · law(κ/X)``, ``X ~ χ²_{B−1}``, as a factor of a free product.

    It is the law of the eigenvalues of one BN channel's squared backward map ``(1/s²)(P − ŷŷᵀ/B)`` on the
    centred subspace 1⊥ (docs/derivations.md §11.3): a projection of rank B − 2 in B − 1 dimensions, times the
    inverse batch variance ``1/s² = κ/X``.

    ``1 + ψ(u) = 1/(B − 1) + ((B − 2)/(B − 1)) E[X/(X − uκ)]``. In ``v = ln X`` the χ²_{B−1} density
    ``p(v) = exp(a v − eᵛ/2)/(2ᵃ Γ(a))`` (``a = (B − 1)/2``) is entire and decays like ``e^{av}`` and
    ``exp(−eᵛ/2)``; the kernel ``eᵛ/(eᵛ − uκ)`` has simple poles at ``v₀ + 2πik``, ``v₀ = Log(uκ)``. The
    integral is composite 10-point Gauss–Legendre on panels of width ``h = min(1/2, a^{−1/2})`` over the
    interval where p exceeds ``e^{−40}`` times its mode (``v* = ln 2a``), after subtracting the principal part
    ``p(v₀)/(v − v₀)`` when ``v₀`` is within 2h of the real axis, added back as
    ``p(v₀)(Log(b − v₀) − Log(a − v₀))`` (singularity subtraction; Davis & Rabinowitz 1984, §2.12.7); the
    other poles are ≥ π away. On the cut (``uκ > 0``) the boundary value from
    ``Im u < 0`` is taken. The slope ``uψ'(u) = ((B − 2)/(B − 1)) ∫ p'(v) eᵛ/(eᵛ − uκ) dv`` (integration by
    parts in v) is done the same way with ``p' = p (a − eᵛ/2)``.
    """

    psi_tolerance = 1e-14

    def __init__(self, batch_size: int, kappa: Any) -> None:
        self.batch = int(batch_size)
        self.kappa = _exact(kappa)
        self.a = (self.batch - 1) / 2.0
        self.weight = (self.batch - 2) / (self.batch - 1)
        self.mass_at_zero = 1.0 / (self.batch - 1)
        self.atoms = ((0.0, self.mass_at_zero),)
        self.xmax = math.inf
        self.name = f"BN channel law (B={self.batch}, κ={float(self.kappa):g})"
        self._v = self._set_grid(0.0, 0.0)

    def __repr__(self) -> str:
        return self.name

    def _p(self, v: np.ndarray) -> np.ndarray:
        return np.exp(self.a * v - 0.5 * np.exp(v) + self._log_norm)

    @property
    def _psi_scale(self) -> float:
        return self.weight

    def _integrals(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(∫ p K dv, ∫ p' K dv), K = eᵛ/(eᵛ − uκ), for a 1-d complex array u."""
        zeta = u * float(self.kappa)
        v0, near = self._poles(zeta)
        v = self._v[None, :]
        ev = np.exp(v)
        pv = self._p(v)
        kernel = ev / (ev - zeta[:, None])
        dp = pv * (self.a - 0.5 * ev)
        f0 = kernel * pv
        f1 = kernel * dp
        vn = v0[near]
        r0 = np.exp(self.a * vn - 0.5 * zeta[near] + self._log_norm)  # p(v₀), e^{v₀} = uκ
        r1 = r0 * (self.a - 0.5 * zeta[near])
        return self._pole_subtracted(f0, f1, v, near, vn, r0, r1)

    def moment_exact(self, k: int) -> Any:
        """``m_k(ν) = ((B − 2)/(B − 1)) κᵏ/Π_{j=1}^{k}(B − 1 − 2j)``; ``math.inf`` when ``k ≥ (B − 1)/2``."""
        if k == 0:
            return 1
        if 2 * k >= self.batch - 1:
            return math.inf
        den = math.prod(self.batch - 1 - 2 * j for j in range(1, k + 1))
        return Fraction(self.batch - 2, self.batch - 1) * self.kappa**k / den

    @property
    def finite_orders(self) -> int:
        """The largest k with ``m_k < ∞``: ``⌈(B − 1)/2⌉ − 1``."""
        return (self.batch - 2) // 2

    def series(self, order: int) -> list[Any]:
        if order + 1 > self.finite_orders:
            raise ValueError(
                f"{self.name}: moments of order >= {(self.batch - 1) / 2:g} are infinite; the S-series is known "
                f"to order {self.finite_orders - 1} only"
            )
        return _series.s_from_moments([self.moment_exact(k) for k in range(1, order + 2)], order)


_GL8_T, _GL8_W = np.polynomial.legendre.leggauss(8)
_PANELS_PER_DECADE = 16
_GAP_NOISE = 1e-15  # xρ(x) below this is the solver's rounding noise (a gap in the support)
_TAIL_MASS = 1e-13  # the log-grid table stops where the mass beyond it (power-law estimate) is below this
_TABLE_MASS_TOL = 5e-3  # the table's continuous mass must be within this (relative) of 1 − atoms, else it refuses; the
# table path divides by its mass, so its cdf is off by at most about this (measured: ≤ 1.4e−4 at B = 16, depth 5
# and B = 64, depth 10; linear B = 4, depth 10 read 0.264 of 0.5 where the walk down met points the solver had not
# solved; relu B = 8, 16 and tanh B = 16, 64 at depth 20 were 0.6–2.2 % over before the deep tail's spline, and B = 4
# at depth 10–20 38–200 % before the continuation's start for heavy tails, docs/derivations.md §11.12; all within
# 1.2e−5 now)


class BNBatchJacobianLaw(FreeProductLaw):
    """Squared singular values of a linear BN network's batch Jacobian (docs/derivations.md §11.3).

    A free product (density by the solver of :class:`~rmt_init.theory.free.FreeProductLaw`) whose factor ν
    has unbounded support and only ``⌈(B − 1)/2⌉ − 1`` finite moments, so: support ``(0, ∞)``; ``moment(k)``
    exact for ``k < (B − 1)/2`` and ``ValueError`` (infinite) above; the distribution function is integrated
    in ``s = ln x`` (8-point Gauss–Legendre on quarter-decade panels, density relative error ~1e−12) between
    the points where the mass left outside, estimated from the local power laws of the density at the hard
    edge and in the tail, is below 1e−13 (that estimate is added).
    """

    def __init__(self, terms: list[Term], atoms: list[tuple[float, float]], description: str, channel: InverseChiSquareS) -> None:
        super().__init__(terms, atoms, description)
        self.channel = channel
        self.batch = channel.batch
        self._finite_orders = channel.finite_orders

    # ------------------------------------------------------------------ geometry
    @cached_property
    def _geometry(self) -> tuple[tuple[tuple[float, float], ...], tuple[float, float]]:
        return ((0.0, math.inf),), (0.0, math.inf)

    @property
    def support(self) -> tuple[float, float]:
        """``(0, ∞)``: the atom 2/B at 0 and the power-law tail."""
        return (0.0, math.inf)

    def _density(self, x: np.ndarray) -> np.ndarray:
        """ρ(x) = −Im w/(πx) from the solver (FreeProductLaw's), set to 0 where xρ(x) ≤ 1e−15: the solver's rounding
        noise inside a gap above 0 (shallow nets). Next to a hard edge at 0 (deep nets, xρ ∝ x^κ) this drops the
        mass below the point where xρ = 1e−15, ≲ 1e−15/κ."""
        x = np.asarray(x, float)
        if self.__dict__.get("_finding_edge"):  # lower_edge's own scan
            return self._solved_density(x)
        self.__dict__["_finding_edge"] = True
        try:
            edge = self.lower_edge
        finally:
            self.__dict__["_finding_edge"] = False
        # below the lower edge (a gap) the density is 0; below 1e−40 × the mean next to a hard edge at 0 it is the
        # deep tail's spline of solved knots (docs/derivations.md §11.12). Neither region needs the solver at every
        # point, whose continuation takes ~0.1–1 s per point that far below the spectrum (plot.compare's log view
        # reaches 1e−300; the cdf table's panels there are ~35 000 points)
        with np.errstate(divide="ignore"):
            s = np.log(np.where(x > 0, x, 1.0))
        s_deep = self._deep_start if edge == 0.0 else -math.inf
        deep = (x > 0) & ((x < edge) | ((edge == 0.0) & (s < s_deep)))
        out = np.zeros(x.shape)
        if (~deep).any():
            out[~deep] = self._solved_density(x[~deep])
        if edge == 0.0 and deep.any():
            xr = self._deep_tail(s[deep])
            out[deep] = np.where(xr > _GAP_NOISE, xr / x[deep], 0.0)
        return out

    def _solved_density(self, x: np.ndarray) -> np.ndarray:
        with np.errstate(over="ignore", invalid="ignore", divide="ignore"):  # far below the spectrum u overflows:
            t = self._solve(x)  # the solver rejects non-finite Newton steps (FreeProductLaw._newton)
        xr = -np.exp(t.real) * np.sin(t.imag) / math.pi
        return np.where(xr > _GAP_NOISE, xr / x, np.where(np.isnan(xr), np.nan, 0.0))  # NaN: no path solved x

    @cached_property
    def _deep_start(self) -> float:
        """s₀ = ln(1e−40 × mean): below it, next to a hard edge at 0, xρ comes from :attr:`_deep_tail`."""
        return math.log(float(self._float_moments(1)[0])) - 40.0 * math.log(10.0)

    @cached_property
    def _deep_tail(self) -> DeepTail:
        """xρ below s₀ (laws with a hard edge at 0 only: below a gap's edge these solves take minutes): a cubic spline
        of ln xρ on solved knots from one decade above s₀ down to the smallest normal float, checked at every
        interval's midpoint to |Δ ln xρ| ≤ 1e−6 (:func:`~rmt_init.theory._deep_tail.build_deep_tail`)."""
        top = self._deep_start + math.log(10.0)
        floor = math.log(np.finfo(float).tiny)
        return build_deep_tail(self._deep_xr, top, floor, _GAP_NOISE)

    def _deep_xr(self, s: np.ndarray) -> np.ndarray:
        """xρ at x = eˢ by the solver; a point its vector call leaves unsolved is solved again alone (from the
        others' remembered roots), NaN if that fails too (the tail then refuses, :func:`build_deep_tail`); at most 4
        per call: a law whose solver fails more often there is refused either way."""
        x = np.exp(s)
        xr = x * self._solved_density(x)
        for i in np.flatnonzero(np.isnan(xr))[:4]:
            xr[i] = x[i] * self._solved_density(x[i : i + 1])[0]
        return xr

    @property
    def lower_edge(self) -> float:
        """The lower end of the continuous part: > 0 for shallow nets (a gap above the atom at 0, like a Wishart
        law's lower edge: each layer's rank-(B − 2) projections), 0 for deep ones (a hard edge). Found on a grid in
        ln x (decades down to 1e−40 of the mean) and refined by 5 rounds of 16 points (relative ~1e−6)."""
        if "_lower_edge_value" not in self.__dict__:
            scale = float(self._float_moments(1)[0])
            step = math.log(10.0)
            s = math.log(scale) - step * np.arange(0, 41)
            xr = np.exp(s) * self._density(np.exp(s))
            empty = xr <= _GAP_NOISE
            # a gap: from some grid point down, the density is rounding noise all the way
            tail_empty = np.flip(np.cumprod(np.flip(empty).astype(int))).astype(bool)
            if not tail_empty.any() or tail_empty[0]:
                self.__dict__["_lower_edge_value"] = 0.0
            else:
                k = int(np.argmax(tail_empty))  # first grid point (going down) of the empty stretch
                lo, hi = s[k], s[k - 1]
                for _ in range(5):
                    grid = np.linspace(lo, hi, 17)
                    filled = np.exp(grid) * self._density(np.exp(grid)) > _GAP_NOISE
                    j = int(np.argmax(filled))
                    lo, hi = grid[max(j - 1, 0)], grid[j]
                self.__dict__["_lower_edge_value"] = float(math.exp(lo))
        return self.__dict__["_lower_edge_value"]

    @cached_property
    def _singular_points(self) -> np.ndarray:
        return np.array([0.0])

    @cached_property
    def extremal_index(self) -> float:
        """θ: the reciprocal mean size of a cluster of tail eigenvalues (docs/derivations.md §11.8); ``1/(B − 2)`` for
        linear φ (a channel with a small batch variance scales a rank-(B − 2) projection), from sampled channel
        eigenvalues otherwise."""
        return _extremal_index(self)

    def largest_eigenvalue(self, width: int) -> "LargestEigenvalueLaw":
        """The extreme-value law of λ_max of one width-``width`` network's batch Jacobian,
        ``P(λ_max ≤ x) = exp(−θ B N sf(x))`` (docs/derivations.md §11.8; :class:`LargestEigenvalueLaw`)."""
        width = check_int("width", width, minimum=1)
        return LargestEigenvalueLaw(self, width, self.extremal_index)

    @property
    def tail_exponent(self) -> float:
        """``a = (B − 1)/2``: ``P(λ > x) ∝ x^{−a}`` as ``x → ∞`` (the tail of ``1/χ²_{B−1}``)."""
        return (self.batch - 1) / 2.0

    # ------------------------------------------------------------------ moments
    def _exact_moments(self, order: int, exact: bool = True) -> list[Any]:
        k = min(order, self._finite_orders)
        finite = self._finite_moments(exact)[:k] if k > 0 else []
        return finite + [math.inf] * (order - k)

    def _finite_moments(self, exact: bool) -> list[Any]:
        key = "_exact_cache" if exact else "_float_cache"
        if key not in self.__dict__:
            import mpmath

            k = self._finite_orders
            with mpmath.workdps(60):
                s = self._series(k - 1, exact) + [0]
                self.__dict__[key] = _series.moments_from_s(s, k)
        return self.__dict__[key]

    def _check_finite_order(self, order: float) -> None:
        if order >= self.tail_exponent:
            raise ValueError(
                f"the moment of order {order!r} of {self!r} is infinite: the law has a power-law tail "
                f"P(λ > x) ∝ x^(−{self.tail_exponent:g}) (the inverse batch variance 1/χ²_(B−1), B = {self.batch}); "
                f"finite orders are < {self.tail_exponent:g}"
            )

    def _moment_exact(self, order: int) -> Any:
        if order == 0:
            return 1
        self._check_finite_order(order)
        return self._exact_moments(order)[order - 1]

    def _moment(self, order: float) -> float:
        self._check_finite_order(order)
        if float(order).is_integer() and order >= 1:
            return float(self._exact_moments(int(order), exact=False)[int(order) - 1])
        return float(math.fsum(m * loc**order for loc, m in self.atoms if loc > 0) + self._continuous_integral(lambda x: x**order))

    def var(self) -> float:
        self._check_finite_order(2)
        return super().var()

    @cached_property
    def _first_moments(self) -> tuple[float, float]:
        """(m₁, m₂) where finite; only the solver's starting guess far from the spectrum uses them."""
        m = self._float_moments(2)
        m1 = float(m[0])
        m2 = float(m[1]) if math.isfinite(m[1]) else 4.0 * m1 * m1
        return m1, m2

    @cached_property
    def _spectral_scale(self) -> float:
        return max(float(m) ** (1.0 / k) for k, m in enumerate(self._float_moments(self._finite_orders), start=1))

    @cached_property
    def _start_height(self) -> float:
        """Where the η-continuation starts, in units of the spectral scale: 10 (FreeProductSolver's), but
        ``100^{1/(a − 1)}`` when m₂ is infinite (B = 4, 5; tail exponent a = (B − 1)/2). There ψ(1/z) − m₁/z decays
        only like |z|^{−a}, so the start's guess is off by ~(scale/|z|)^{a − 1} relative: 30 % at 10 × the scale for
        B = 4, and Newton from it reached a spurious root that the whole continuation then followed (relu, B = 4,
        depth 10: the table held 1.38 against 0.456; docs/derivations.md §11.12)."""
        if self._finite_orders >= 2:
            return 10.0
        return max(10.0, 100.0 ** (1.0 / (self.tail_exponent - 1.0)))

    # ------------------------------------------------------------------ distribution function
    @cached_property
    def _log_table(self) -> tuple[np.ndarray, np.ndarray, np.ndarray, float, float]:
        """(panel ends in s = ln x, continuous mass below each end, xρ(x) at the ends, mass below the first
        end, mass above the last end)."""
        scale = self._float_moments(1)[0]
        step = math.log(10.0) / _PANELS_PER_DECADE

        def resolved(x: np.ndarray, xr: np.ndarray) -> np.ndarray:
            # a point the solver reached no solution at is NaN (unknown), never "no density": the walks below would
            # end the table there and the normalisation would spread the mass they missed over the rest. Solved
            # again alone, it starts from its now-solved neighbours' remembered roots (linear, B = 4, depth 10: x =
            # 28–33 fail in the walk's chunk and converge so, to a table of mass 1 − 2/B within 6e−8); else it raises
            bad = ~np.isfinite(xr)
            if bad.any():
                xr = xr.copy()
                xr[bad] = x[bad] * self._pdf_vectorised(x[bad])
                bad = ~np.isfinite(xr)
            if bad.any():
                raise FloatingPointError(
                    f"{self!r}: the free-product solver reached no solution at x = {float(x[bad][0]):.6g} while "
                    "tabulating the distribution function; the law's cdf, sf and ppf are unknown there (its pdf "
                    "elsewhere and its moments are unaffected)"
                )
            return xr

        def local(s: float, direction: float) -> tuple[float, float]:
            x = np.exp(np.array([s, s + direction * step]))
            xr = resolved(x, x * self._pdf_vectorised(x))
            slope = abs(math.log(xr[1] / xr[0]) / step) if np.all(xr > 0) else math.inf
            return float(xr[0]), slope

        def walk(start: float, direction: float, limit: float, done: Any) -> tuple[float, float, float]:
            """The first point s = start + k·direction·step (k = 0, 1, …; the same floats as stepping one at a
            time) where ``done(s, xρ(s), slope)`` holds, with that xρ and slope (``local`` at each point in turn;
            ``done`` must hold beyond ``limit``). The density is evaluated on chunks of the sequence at once (16,
            32, … 256 points, none past the first one beyond ``limit`` and its neighbour: one solver call per chunk
            instead of one per point); the decision runs over the chunk's values in order."""
            points = [start]
            chunk = 16
            while True:
                while len(points) < chunk + 1 and not (len(points) >= 2 and direction * (points[-2] - limit) > 0):
                    points.append(points[-1] + direction * step)
                x = np.exp(np.array(points))
                xr_all = resolved(x, x * self._pdf_vectorised(x))
                for k in range(len(points) - 1):
                    pair = xr_all[k : k + 2]
                    slope = abs(math.log(pair[1] / pair[0]) / step) if np.all(pair > 0) else math.inf
                    if done(points[k], float(pair[0]), slope):
                        return points[k], float(pair[0]), slope
                points = [points[-1]]
                chunk = min(2 * chunk, 256)

        top = math.log(scale) + 800.0
        hi, xr, slope = walk(math.log(scale) + 2.0, 1.0, top,
                             lambda s, xr, slope: not math.isfinite(slope) or xr <= 0 or xr / max(slope, 1e-3) < _TAIL_MASS or s > top)
        above_is_empty = not math.isfinite(slope)
        if above_is_empty:  # the density is below the noise floor one step up: end the table there
            hi += step
        lo = math.log(scale) - 2.0
        gap_edge = math.log(self.lower_edge) if self.lower_edge > 0 else None
        if gap_edge is not None:
            lo = gap_edge + step
        else:
            bottom = math.log(np.finfo(float).tiny) + 2.0
            lo, _, _ = walk(lo, -1.0, bottom, lambda s, xr, slope: xr / max(slope, 1e-3) < _TAIL_MASS or s < bottom)
        if gap_edge is not None:
            # square-root edge: panels graded geometrically towards it (widths step·2^{−j})
            grading = [gap_edge + step * 2.0 ** (-j) for j in range(40, 0, -1)]
            lo_ends = [gap_edge] + [g for g in grading if g < lo]
        else:
            lo_ends = []
        n = max(1, math.ceil((hi - lo) / step))
        ends = np.concatenate([lo_ends, np.linspace(lo, hi, n + 1)])
        lo = float(ends[0])
        half = 0.5 * np.diff(ends)
        s = (0.5 * (ends[:-1] + ends[1:]))[:, None] + half[:, None] * _GL8_T[None, :]
        x = np.exp(s)
        masses = (resolved(x, x * self._pdf_vectorised(x)) * _GL8_W[None, :]).sum(axis=1) * half
        xr_lo, k_lo = local(lo, 1.0)
        xr_hi, k_hi = local(hi, -1.0)
        below = 0.0 if gap_edge is not None else xr_lo / k_lo if xr_lo > 0 and math.isfinite(k_lo) and k_lo > 0 else 0.0
        above = 0.0 if above_is_empty else xr_hi / k_hi if xr_hi > 0 and math.isfinite(k_hi) and k_hi > 0 else 0.0
        cumulative = below + np.concatenate([[0.0], np.cumsum(masses)])
        xr_ends = resolved(np.exp(ends), np.exp(ends) * self._pdf_vectorised(np.exp(ends)))
        total = float(cumulative[-1] + above)
        if not abs(total - self.continuous_mass) <= _TABLE_MASS_TOL * self.continuous_mass:
            raise FloatingPointError(
                f"{self!r}: its distribution-function table holds continuous mass {total:.6g} against "
                f"{self.continuous_mass:.6g} on [{math.exp(ends[0]):.3g}, {math.exp(ends[-1]):.3g}]; the cdf, sf and ppf "
                "are not resolved (its pdf and moments are unaffected)"
            )
        return ends, cumulative, xr_ends, below, above

    def _table_spline(self) -> Any:
        """The cubic Hermite interpolant of the tabulated continuous cdf in s = ln x (values and slopes xρ at the
        panel ends), built once per table (ppf's bisection evaluates it 80 times); rebuilt if the table object is
        replaced."""
        table = self._log_table
        cached = self.__dict__.get("_table_spline_cache")
        if cached is None or cached[0] is not table:
            from scipy.interpolate import CubicHermiteSpline

            ends, cumulative, xr_ends, _, _ = table
            cached = (table, CubicHermiteSpline(ends, cumulative, xr_ends))
            self.__dict__["_table_spline_cache"] = cached
        return cached[1]

    @property
    def table_mass(self) -> float:
        """The continuous mass the table integrates (tails included): ``1 − 2/B`` up to the quadrature error."""
        _, cumulative, _, _, above = self._log_table
        return float(cumulative[-1] + above)

    def _continuous_integral(self, g: Any) -> float:
        ends, _, _, _, _ = self._log_table
        half = 0.5 * np.diff(ends)
        x = np.exp((0.5 * (ends[:-1] + ends[1:]))[:, None] + half[:, None] * _GL8_T[None, :])
        return float(((g(x) * x * self._pdf_vectorised(x)) * _GL8_W[None, :]).sum(axis=1) @ half)

    def _continuous_below(self, x: np.ndarray, table: bool) -> np.ndarray:
        ends, cumulative, xr_ends, below, above = self._log_table
        out = np.zeros(x.shape)
        pos = x > 0
        s = np.log(np.where(pos, x, 1.0))
        low = pos & (s <= ends[0])
        high = pos & (s >= ends[-1])
        mid = pos & ~low & ~high
        out[low] = below * np.exp((s[low] - ends[0]) * (xr_ends[0] / below if below > 0 else 0.0))
        out[high] = cumulative[-1] + above * (1.0 - np.exp(-(s[high] - ends[-1]) * (xr_ends[-1] / above if above > 0 else 0.0)))
        if mid.any():
            sm = s[mid]
            i = np.clip(np.searchsorted(ends, sm, side="right") - 1, 0, len(ends) - 2)
            if table:
                out[mid] = self._table_spline()(sm)
            else:
                a = ends[i]
                half = 0.5 * (sm - a)
                nodes = (a + half)[:, None] + half[:, None] * _GL8_T[None, :]
                xn = np.exp(nodes)
                out[mid] = cumulative[i] + (xn * self._pdf_vectorised(xn) * _GL8_W[None, :]).sum(axis=1) * half
        if table:
            # the tabulated cdf is normalised to the continuous mass 1 − 2/B: its quadrature deficit (up to 1.4e−4,
            # bn_jacobian_spectrum) would otherwise leave the quantiles above 1 − deficit at the bisection's upper
            # limit, e^60 beyond the table (W₁ of 1e23 in compare, B = 16, depth 2)
            out *= self.continuous_mass / (cumulative[-1] + above)
        return out

    def _cdf(self, x: np.ndarray) -> np.ndarray:
        return self._atoms_at_most(x) + self._continuous_below(np.asarray(x, float), table=False)

    def _continuous_above(self, x: np.ndarray) -> np.ndarray:
        """Continuous mass above x > 0 summed from the top of the table down (the power-law estimate above the
        table, the panels above x, and x's own panel from x up by 8-point Gauss–Legendre): accurate in the tail
        whatever the table's error near the lower edge (B = 4, depth 1: the table's mass is 2.5e−3 above
        1 − 2/B, which ``1 − cdf`` put into the tail)."""
        ends, cumulative, xr_ends, below, above = self._log_table
        out = np.zeros(x.shape)
        s = np.log(x)
        high = s >= ends[-1]
        out[high] = above * np.exp(-(s[high] - ends[-1]) * (xr_ends[-1] / above if above > 0 else 0.0))
        mid = (s > ends[0]) & ~high
        if mid.any():
            sm = s[mid]
            i = np.clip(np.searchsorted(ends, sm, side="right") - 1, 0, len(ends) - 2)
            b = ends[i + 1]
            half = 0.5 * (b - sm)
            xn = np.exp((sm + half)[:, None] + half[:, None] * _GL8_T[None, :])
            part = (xn * self._pdf_vectorised(xn) * _GL8_W[None, :]).sum(axis=1) * half
            out[mid] = part + (cumulative[-1] - cumulative[i + 1]) + above
        low = ~mid & ~high
        out[low] = cumulative[-1] + above - self._continuous_below(x[low], table=False)
        return out

    def _sf(self, x: np.ndarray) -> np.ndarray:
        """``P(λ > x)``: above the continuous part's median summed from the top (:meth:`_continuous_above`), below
        it ``1 − cdf``."""
        x = np.asarray(x, float)
        out = 1.0 - self._cdf(x)
        upper = x > self._continuous_median
        if upper.any():
            out[upper] = self._continuous_above(x[upper])
        return out

    @cached_property
    def _continuous_median(self) -> float:
        ends, cumulative, _, _, above = self._log_table
        k = int(np.searchsorted(cumulative, 0.5 * (cumulative[-1] + above)))
        return float(math.exp(ends[min(k, len(ends) - 1)]))

    def _cdf_table(self, x: np.ndarray) -> np.ndarray:
        return self._atoms_at_most(x) + self._continuous_below(np.asarray(x, float), table=True)

    def _sf_table(self, x: np.ndarray) -> np.ndarray:
        return 1.0 - self._cdf_table(x)

    def _ppf_table(self, q: np.ndarray) -> np.ndarray:
        """Quantiles by bisection in ln x on the tabulated (Hermite) cdf (its error: ~1e−5 in probability)."""
        q = np.asarray(q, float)
        zero = sum(m for loc, m in self.atoms if loc == 0.0)
        ends = self._log_table[0]
        lo = np.full(q.shape, ends[0] - 60.0)
        hi = np.full(q.shape, ends[-1] + 60.0)
        for _ in range(80):
            mid = 0.5 * (lo + hi)
            below = self._cdf_table(np.exp(mid)) < q
            lo = np.where(below, mid, lo)
            hi = np.where(below, hi, mid)
        return np.where(q <= zero, 0.0, np.where(q >= 1.0, math.inf, np.exp(0.5 * (lo + hi))))

    def _ppf(self, q: np.ndarray) -> np.ndarray:
        """Quantiles: the table's, then Newton steps in ln x on the quadrature cdf (to ~1e−12 in probability)."""
        x = self._ppf_table(q)
        q = np.asarray(q, float)
        inner = (x > 0) & np.isfinite(x)
        if inner.any():
            s, target = np.log(x[inner]), q[inner]
            for _ in range(3):
                xs = np.exp(s)
                slope = xs * self._pdf_vectorised(xs)
                step = np.where(slope > 0, (self._cdf(xs) - target) / np.where(slope > 0, slope, 1.0), 0.0)
                s = s - np.clip(step, -0.1, 0.1)
            x = x.copy()
            x[inner] = np.exp(s)
        return x

    def _isf(self, p: np.ndarray) -> np.ndarray:
        """The x with ``sf(x) = p``: for p below the continuous part's upper half by the top-down tail
        (:meth:`_continuous_above`; start from the panel ends, then Newton steps in ln x), else ``ppf(1 − p)``."""
        p = np.asarray(p, float)
        out = np.asarray(self._ppf(1.0 - p), float).copy()
        ends, cumulative, xr_ends, _, above = self._log_table
        tail = (p > 0) & (p < float(self._continuous_above(np.array([self._continuous_median]))[0]))
        if tail.any():
            target = p[tail]
            mass_above = cumulative[-1] - cumulative + above  # at the panel ends, decreasing
            j = np.clip(np.searchsorted(-mass_above, -target), 1, len(ends) - 1)  # first end with mass ≤ target
            # geometric interpolation of the mass between the two ends, then Newton in s = ln x
            m0, m1 = mass_above[j - 1], np.maximum(mass_above[j], 1e-300)
            frac = np.log(m0 / target) / np.log(m0 / m1)
            s = ends[j - 1] + np.clip(frac, 0.0, 1.0) * (ends[j] - ends[j - 1])
            beyond = target < above
            if beyond.any() and above > 0:  # above the table: the power-law estimate inverted
                k = xr_ends[-1] / above
                s[beyond] = ends[-1] + np.log(above / target[beyond]) / k
            for _ in range(6):
                xs = np.exp(s)
                slope = xs * self._pdf_vectorised(xs)
                step = np.where(slope > 0, (self._continuous_above(xs) - target) / np.where(slope > 0, slope, 1.0), 0.0)
                s = s + np.clip(step, -0.5, 0.5)
            out[tail] = np.exp(s)
        return out

    def _isf_table(self, p: np.ndarray) -> np.ndarray:
        return self._ppf_table(1.0 - np.asarray(p, float))

    def _sample_uniform(self, u: np.ndarray) -> np.ndarray:
        return self._ppf_table(u)


# ============================================================================================ any φ: the channel law
_DIRECTIONS = 100_000  # uniform sphere directions sampled for the eigenvalues λ of C (fixed seed)
_EIGENVALUES = 1_500_000  # … or fewer directions for B > 16, keeping this many sampled eigenvalues
_NODES = 256  # quantile nodes the sampled λ are compressed to
_RANK_TOL = 1e-10  # an eigenvalue of C below this × the largest is a zero (rank deficiency; rounding is ~1e−16)


class ChannelLawS(_LogChiSquareS):
    """``ν = p₀ δ₀ + Σ_j w_j · law(κ λ_j/X)``, ``X ~ χ²_{B−1}``: one BN channel's squared backward map on 1⊥, any φ.

    The eigenvalues on 1⊥ of ``(1/s²) C``, ``1/s² = κ/X`` independent of the eigenvalues λ of C (docs/derivations.md
    §11.5b): ``C = M D P D M`` for a layer followed by another (the next layer's weights see only the centred part
    P) and ``C = M D² M`` for the output layer, ``M = P − nnᵀ/B``, ``D = diag φ'(n)``, n uniform on the sphere of
    radius √B in 1⊥. The law of λ (over the B − 1 eigenvalues on 1⊥ and over n) is given as a zero mass p₀ and
    positive nodes λ_j with weights w_j (Σ w_j = 1 − p₀).

    ``1 + ψ(u) = p₀ + Σ_j w_j E[X/(X − uκλ_j)] = p₀ + ∫ p_λ(v) eᵛ/(eᵛ − uκ) dv`` with ``v = ln(X/λ)`` of density
    ``p_λ(v) = Σ_j w_j p(v + ln λ_j)``, p the density of ln X (:class:`InverseChiSquareS`): an entire function,
    so the same composite Gauss–Legendre rule with singularity subtraction at ``v₀ = Log(uκ)`` applies, on the
    union of the shifted intervals. One node ``λ = 1`` of weight ``(B − 2)/(B − 1)`` is the linear channel law.
    """

    psi_tolerance = 1e-14

    def __init__(self, batch_size: int, kappa: Any, locations: np.ndarray, weights: np.ndarray, zero_mass: float,
                 name: str = "BN channel law") -> None:
        self.batch = int(batch_size)
        self.kappa = float(kappa)
        self.a = (self.batch - 1) / 2.0
        self.lam = np.asarray(locations, float)
        self.w = np.asarray(weights, float)
        if self.lam.ndim != 1 or self.lam.shape != self.w.shape or not np.all(self.lam > 0) or not np.all(self.w > 0):
            raise ValueError("locations and weights must be 1-d arrays of positive numbers of the same length")
        self.mass_at_zero = float(zero_mass)
        self.atoms = ((0.0, self.mass_at_zero),) if self.mass_at_zero > 0 else ()
        self.xmax = math.inf
        self.name = f"{name} (B={self.batch}, κ={self.kappa:g})"
        self._shift = np.log(self.lam)
        v = self._set_grid(float(self._shift.max()), float(self._shift.min()))
        self._ev = np.exp(v)
        self._log_ev = np.log(self._ev)[None, :]  # the nodes as the pole terms see them
        pv, dp = self._mixture(v[:, None] + self._shift[None, :], np.exp(v)[:, None] * self.lam[None, :])
        self._pv, self._dp = pv, dp

    def __repr__(self) -> str:
        return self.name

    def _mixture(self, vs: np.ndarray, evs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_λ, p_λ') at v from ``vs = v + ln λ_j`` and ``evs = e^{vs}`` (shape (…, nodes))."""
        pj = np.exp(self.a * vs - 0.5 * evs + self._log_norm) * self.w
        return pj.sum(axis=-1), (pj * (self.a - 0.5 * evs)).sum(axis=-1)

    def _integrals(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(∫ p_λ K dv, ∫ p_λ' K dv), K = eᵛ/(eᵛ − uκ), for a 1-d complex array u (as InverseChiSquareS)."""
        zeta = u * self.kappa
        v0, near = self._poles(zeta)
        kernel = self._ev[None, :] / (self._ev[None, :] - zeta[:, None])
        f0 = kernel * self._pv[None, :]
        f1 = kernel * self._dp[None, :]
        vn = v0[near]
        # p_λ(v₀), p_λ'(v₀) with e^{v₀ + ln λ_j} = uκλ_j exactly
        r0, r1 = self._mixture(vn[:, None] + self._shift[None, :], zeta[near][:, None] * self.lam[None, :])
        return self._pole_subtracted(f0, f1, self._log_ev, near, vn, r0, r1)

    def moment_exact(self, k: int) -> Any:
        """``m_k(ν) = κᵏ Σ_j w_j λ_jᵏ / Π_{i=1}^{k}(B − 1 − 2i)``; ``math.inf`` when ``k ≥ (B − 1)/2`` (λ is bounded:
        the tail is 1/X's)."""
        if k == 0:
            return 1
        if 2 * k >= self.batch - 1:
            return math.inf
        den = math.prod(self.batch - 1 - 2 * j for j in range(1, k + 1))
        return float(math.fsum(self.w * self.lam**k)) * self.kappa**k / den

    @property
    def finite_orders(self) -> int:
        return (self.batch - 2) // 2

    def series(self, order: int) -> list[Any]:
        if order + 1 > self.finite_orders:
            raise ValueError(
                f"{self.name}: moments of order >= {(self.batch - 1) / 2:g} are infinite; the S-series is known "
                f"to order {self.finite_orders - 1} only"
            )
        return _series.s_from_moments([self.moment_exact(k) for k in range(1, order + 2)], order)


def _sphere_eigenvalues(act: Any, batch: int, output: bool, directions: int, seed: int) -> tuple[np.ndarray, int]:
    """The positive eigenvalues on 1⊥ of C (``M D² M`` if ``output``, else ``M D P D M``) over ``directions``
    uniform sphere directions n, and the number of zero ones (rank deficiency beyond the common mode)."""
    rng = np.random.default_rng(seed)
    b = float(batch)
    eye = np.eye(batch)
    p = eye - 1.0 / b
    chunk = max(1, 2_000_000 // (batch * batch))
    positive, zeros, done = [], 0, 0
    while done < directions:
        m = min(chunk, directions - done)
        n = _sphere_samples(batch, m, rng)
        d = act.dphi(n)
        # C = (DM)ᵀ(DM) and (PDM)ᵀ(PDM) share their nonzero eigenvalues with (DM)(DM)ᵀ = D M D and P D M D P (M² = M),
        # which need no matrix product; each has one zero more than C on 1⊥ (the smallest, dropped below)
        c = d[:, :, None] * (p[None] - n[:, :, None] * n[:, None, :] / b) * d[:, None, :]
        if not output:
            c = c - c.mean(axis=1, keepdims=True)
            c = c - c.mean(axis=2, keepdims=True)
        ev = np.linalg.eigvalsh(c)[:, 1:]  # drop the smallest: C's common mode 1 (C1 = 0), the extra zero here
        top = np.maximum(ev[:, -1:], 1e-300)
        small = ev <= _RANK_TOL * top
        zeros += int(small.sum())
        positive.append(ev[~small])
        done += m
    return np.concatenate(positive), zeros


def _two_point_rules(bins: list[np.ndarray]) -> tuple[np.ndarray, np.ndarray]:
    """Each bin's two-point Gauss rule (nodes and counts matching its moments 0–3; one node where the bin is a
    point): the node law has the samples' first three moments exactly, and lies within each bin's range."""
    loc, weight = [], []
    for x in bins:
        mu = float(x.mean())
        y = x - mu
        var = float(np.mean(y * y))
        if var <= (1e-12 * mu) ** 2:
            loc.append(mu)
            weight.append(float(x.size))
            continue
        sd = math.sqrt(var)
        g = float(np.mean(y**3)) / (var * sd)  # skewness: nodes μ + σ(g/2 ± √(1 + g²/4)), weights ∓t/(t₊ − t₋)
        r = math.sqrt(1.0 + 0.25 * g * g)
        tp, tm = 0.5 * g + r, 0.5 * g - r
        loc += [mu + sd * tm, mu + sd * tp]
        weight += [x.size * tp / (tp - tm), x.size * -tm / (tp - tm)]
    return np.array(loc), np.array(weight)


def _exact_mean_eigenvalue(mom: dict[str, float], batch: int, output: bool) -> float:
    """``E tr C/(B − 1)`` from two-coordinate sphere moments (as ``bn_gradient_growth``): ``tr M D² M = tr D² M``
    and ``tr M D P D M = tr D² M − 1ᵀ D M D 1/B`` (M² = M)."""
    b = float(batch)
    t = (b - 1.0) * mom["d2"] - mom["d2n2"]
    if not output:
        t = t - t / b + (b - 1.0) * (mom["d_d"] + mom["dn_dn"]) / b
    return t / (b - 1.0)


_CHANNEL_CACHE: dict[tuple[Any, ...], tuple[np.ndarray, np.ndarray, float]] = {}


def _channel_nodes(act: Any, batch: int, output: bool, directions: int, nodes: int, seed: int) -> tuple[np.ndarray, np.ndarray, float]:
    """(λ_j, w_j, p₀) of C's eigenvalue law on 1⊥: sampled, compressed to ``nodes`` equal-count quantile bins
    (node = the bin's mean), then scaled so that the mean is the exact ``E tr C/(B − 1)``."""
    from .batchnorm import _sphere_moments

    key = (act.name, tuple(sorted(act.kwargs.items())), batch, output, directions, nodes, seed)
    if key not in _CHANNEL_CACHE:
        lam, zeros = _sphere_eigenvalues(act, batch, output, directions, seed)
        total = directions * (batch - 1)
        lam.sort()
        # equal-count bins, the lowest one split geometrically (halves, down to 16 samples): the small eigenvalues
        # (relu: the continuous spectrum reaches 0) set the law's lowest decades
        cuts = np.linspace(0, lam.size, min(nodes, lam.size) + 1).astype(int)[1:-1]
        first = int(cuts[0]) if cuts.size else lam.size
        low = [first >> j for j in range(1, 40) if first >> j >= 16]
        loc, weight = _two_point_rules(np.split(lam, np.unique(np.concatenate([low, cuts]).astype(int))))
        loc, inverse = np.unique(loc, return_inverse=True)  # relu: bins of eigenvalues exactly 1 are one node
        weight = np.bincount(inverse, weights=weight) / total
        target = _exact_mean_eigenvalue(_sphere_moments(act, batch), batch, output)
        loc *= target / float(np.dot(weight, loc))
        _CHANNEL_CACHE[key] = (loc, weight, zeros / total)
    return _CHANNEL_CACHE[key]


class BNGenericJacobianLaw(BNBatchJacobianLaw):
    """:class:`BNBatchJacobianLaw` for any φ (docs/derivations.md §11.5b), with a neighbour sweep of the density.

    The factor laws of relu/tanh channels put the subordination equations close to spurious roots inside the
    support: Newton from a remembered nearby solution occasionally converged to one (relu, B = 16, depth 1: ~1 %
    of a 1800-point grid, 0.7 % of the table's mass lost). FreeProductLaw's warm start now keeps a solution only
    within a quarter of the predictor's step of the predictor (a smooth branch moves by O(step²)); the sweep of
    :meth:`_density` re-solves what still breaks from its neighbours.
    """

    def _density(self, x: np.ndarray) -> np.ndarray:
        """:meth:`BNBatchJacobianLaw._density`, then a sweep over sorted ln x: a point whose xρ differs by more than
        20 % from the linear interpolation of its two neighbours (≤ 0.1 apart in ln x, both inside the support)
        is solved again by η-continuation at the finer ratio ½ and takes that value (a spurious root from a warm
        start whose reference was far; a true sharp feature just costs the re-solve). Up to 5 % of the points."""
        out = super()._density(x)
        x = np.asarray(x, float)
        if x.ndim != 1 or x.size < 5:
            return out
        order = np.argsort(x, kind="stable")
        xs = x[order]
        if xs[0] <= 0:
            return out
        ys = xs * out[order]
        sl = np.log(xs)
        left, mid, right = slice(0, -2), slice(1, -1), slice(2, None)
        width = sl[right] - sl[left]
        with np.errstate(invalid="ignore", divide="ignore"):
            frac = np.where(width > 0, (sl[mid] - sl[left]) / width, 0.5)
        pred = ys[left] + frac * (ys[right] - ys[left])
        flag = (width < 0.1) & (ys[left] > 0) & (ys[right] > 0) & (np.abs(ys[mid] - pred) > 0.2 * np.maximum(pred, ys[mid]))
        idx = order[1:-1][flag]
        if 0 < idx.size <= max(1, x.size // 20):
            with np.errstate(over="ignore", invalid="ignore", divide="ignore"):
                t, ok, taus = self._continue(x[idx], 0.5)
            xr = -np.exp(t.real) * np.sin(t.imag) / math.pi
            # a point whose finer path did not converge keeps its value: its last iterate is no solution (relu, B = 16,
            # depth 1: x = 0.0663 ended at t = 19.7 − iπ, xρ = 6.6e−8, instead of its neighbours' 0.033)
            good = ok & np.isfinite(xr) & (xr > _GAP_NOISE)
            self._remember(x[idx][good], t[good], [tau[good] for tau in taus])
            out = out.copy()
            out[idx] = np.where(good, xr / x[idx], out[idx])
        return out


def _generic_law(depth: int, act: Any, batch: int, q0: float, directions: int, nodes: int, seed: int) -> BNBatchJacobianLaw:
    """The free product of docs/derivations.md §11.5b for any φ (see :func:`bn_jacobian_spectrum`)."""
    from .batchnorm import _sphere_moments

    mom = _sphere_moments(act, batch)
    alpha = mom["phi2"] - mom["phi_phi"]
    kappa = batch / alpha
    f = Fraction(batch, batch - 1)
    last = ChannelLawS(batch, kappa, *_channel_nodes(act, batch, True, directions, nodes, seed), name="BN output channel")
    terms = [Term(last, f, 1), Term(marchenko_pastur_s(1.0), f, depth)]
    zero = last.mass_at_zero
    if depth > 1:
        mid = ChannelLawS(batch, kappa, *_channel_nodes(act, batch, False, directions, nodes, seed), name="BN channel")
        terms.append(Term(mid, f, depth - 1))
        zero = max(zero, mid.mass_at_zero)
    first = batch / q0  # κ₁: layer 1 sees the input Gram q₀ I
    terms += [Term(RationalS(_exact(kappa) / _exact(first), name="first layer")), Term(_dimension_factor(f))]
    atoms = [(0.0, 1.0 / batch + (batch - 1.0) / batch * zero)]
    description = f"BN batch Jacobian ({act.name}, B={batch}, depth={depth}, q0={q0:g})"
    law = BNGenericJacobianLaw(terms, atoms, description, last)
    law.__dict__["_cluster_spec"] = (act, depth)
    return law


_PER_EXAMPLE_DEEP = ("linear", "relu", "tanh")  # block="per_example" at depth ≥ 2 (§11.10, §11.11)
_PER_EXAMPLE_NONLINEAR_MAX_BATCH = 16  # relu/tanh there: KS at B = 16, L = 2 down to the MC noise by N = 512 (§11.11)


def bn_jacobian_spectrum(
    depth: int,
    activation: str = "linear",
    batch_size: int = 16,
    weight_variance: float = 1.0,
    input_variance: float = 1.0,
    *,
    directions: int | None = None,
    seed: int = 0,
    block: str = "batch",
) -> "BNBatchJacobianLaw | BNPerExampleExactLaw | BNPerExampleNonlinearLaw":
    """Law of the squared singular values of the batch Jacobian of a wide batch-normalised network.

    Network (the engine's ``network_jacobian_spectrum(..., batchnorm="train")``): ``depth`` blocks
    ``Linear → BatchNorm1d (train mode, γ = 1, β = 0) → φ``, weights of variance ``weight_variance/N``, inputs
    i.i.d. ``N(0, input_variance)``, width N → ∞ at fixed ``batch_size`` B ≥ 4. The Jacobian of the batch map
    (B·N × B·N) has, for linear φ (docs/derivations.md §11.3),

        ``μ = (1/B) δ₀ + ((B − 1)/B) ⊠_{l=1}^{L} (ν_l ⊠ MP(1))``,
        ``ν_l = δ₀/(B − 1) + ((B − 2)/(B − 1)) law(κ_l/χ²_{B−1})``, ``κ₁ = B/q₀``, ``κ_l = B − 1`` (l ≥ 2),

    (freeness with amalgamation over M_B, collapsed to scalar freeness by the O(B − 1) symmetry; BN statistics
    of Yang et al. 2019, arXiv 1902.08129). Atom ``2/B`` at 0 (the shift and scale directions of each channel:
    :func:`~rmt_init.theory.batchnorm.bn_structural_zeros` is ``2N``). Mean
    ``((B − 2)/(B − 3))^{L} / q₀`` — :func:`~rmt_init.theory.batchnorm.bn_gradient_growth` per layer. The
    upper tail is a power law ``x^{−(B−1)/2}`` (a channel whose B pre-activations nearly coincide has a huge
    ``1/s``): moments of order ``≥ (B − 1)/2`` are infinite and the support is ``[0, ∞)``.

    Any other activation (every name :func:`bn_jacobian_moments` accepts; docs/derivations.md §11.5b): the same
    product with ``ν_l = law(κ_l λ/χ²_{B−1})``, λ the B − 1 eigenvalues on 1⊥ of ``C = M D P D M`` (layers
    followed by another) or ``M D² M`` (the output layer), ``M = P − nnᵀ/B``, ``D = diag φ'(n)``, n uniform on
    the centred sphere of radius √B, ``κ_l = B/α`` with ``α = E φ(n₁)² − E φ(n₁)φ(n₂)`` (the permutation symmetry
    S_B of the batch already collapses the M_B-valued freeness to scalar freeness). Atom at 0:
    ``1/B + ((B − 1)/B) max_l ν_l({0})`` (Belinschi) — 2/B for φ' > 0 (tanh), ≈ 1/2 for relu (rank of C:
    min(k, B − 2), k the positive coordinates of n). The law of λ is sampled from ``directions`` uniform sphere
    directions (``seed``; default 10⁵, and 1.5·10⁶/(B − 1) for B > 16), compressed to two-point Gauss rules on
    256 quantile bins and scaled to the exact mean ``E tr C/(B − 1)``: m₁ is exact (``bn_gradient_growth`` per layer), the tail exponent is unchanged (λ is
    bounded), and the sampling moves the cdf by ≤ 5e−4 between seeds (B = 8–16, depth 1–4; m₂, m₃ within 2 SE of
    :func:`bn_jacobian_moments`). Building the law takes 1–5 s (the eigenvalues of 10⁵ B × B matrices; cached).
    For linear φ ``directions`` and ``seed`` are unused (the law is exact).

    ``weight_variance`` does not enter (BN divides it out); it is validated and kept for symmetry with the
    other laws. Against torch networks: linear (B = 8, 16, N = 128) KS distance ≈ 0.005; relu, tanh (B = 8, 16,
    L = 1–4, N = 64–128) KS 0.002–0.010, KS·N ≤ 0.66 (docs/derivations.md §11.6). The first ``cdf``/``ppf`` call
    builds a table in ln x (3–30 s).

    Accuracy of the table (integrated density against 1 − 2/B): 8e−10 (B = 8, depth 1), 7e−5 (B = 4, depth 1: the
    x^{−3/2} tail's power-law estimate), 2.5e−5 (B = 16, depth 2), 1.4e−4 (B = 16, depth 5; B = 64, depth 10: the steep
    top of the bulk is under-resolved by quarter-decade panels; the mean from the table is then off by 0.3–0.4 %). The density itself agrees with the product
    taken through a Gauss–Laguerre discretised channel law to rounding (B = 64, depth 10, x from 1e−30 to 20).

    The top of the spectrum at width N: ``law.largest_eigenvalue(N)`` (:class:`LargestEigenvalueLaw`,
    ``P(λ_max ≤ x) = exp(−θ B N sf(x))``, docs/derivations.md §11.8). ``sf``/``isf`` in the upper half are summed
    from the top of the table down, so the tail is accurate whatever the table's error near the lower edge.

    ``block="per_example"``: the law of one per-example diagonal block ``J_bb = ∂x_L[b]/∂x_0[b]`` (N × N; the
    engine's ``batchnorm="train_diagonal"``; :class:`BNPerExampleLaw`, docs/derivations.md §11.9). Depth 1, exact,
    any φ: ``law(K²) ⊠ MP(1)``, ``K² = (B/(q₀X)) ((B − 1)/B)² φ'(n_b)² t²``, ``t = 1 − n_b²/(B − 1) ~
    Beta((B − 2)/2, 1/2)``, X ~ χ²_{B−1}; KS against torch 0.002–0.004 (B = 4–16, N = 128–256, within SE).
    Depth ≥ 2, linear φ: exact (:class:`~rmt_init.theory.bn_per_example.BNPerExampleExactLaw`,
    docs/derivations.md §11.10): the M_B-valued compound free Poisson recursion over the layers, reduced by the
    symmetry of the batch fixing 1 and e_b to two complex unknowns per layer. KS against torch (40 networks,
    N = 128): 0.0057 (B = 16, L = 2), 0.0055 (B = 16, L = 3), 0.0065 (B = 8, L = 4; the coherent-path approximation
    of §11.9, which this replaces, had 0.057). Depth ≥ 2, relu and tanh
    (:class:`~rmt_init.theory.bn_per_example_nonlinear.BNPerExampleNonlinearLaw`, docs/derivations.md §11.11): the
    same recursion with ``A_c = (1/s) D M``, the channel average a matrix function of a (B − 2)-dimensional matrix,
    averaged over a sampled rule of batch directions (``seed``); atom 1/2 at 0 for relu. The table takes 13–41 s at
    B = 8 and 1.5–2 min at B = 16 (depth 2, one core). KS against torch at B = 16, L = 2 (N = 128, 256, 512): relu
    0.013, 0.0096, 0.0046 (finite N: the edge of the gap above the atom fills in; at N = 512 within the Monte Carlo
    sample's own noise, 0.006), tanh 0.0031, 0.0025, 0.0024 (at that noise throughout). Batch sizes above 16 (not
    measured) and other activations at depth ≥ 2 raise ValueError.
    """
    from .activations import get_activation

    depth = check_int("depth", depth, minimum=1)
    act = get_activation(activation)
    try:
        batch = check_int("batch_size", batch_size, minimum=4)
    except ValueError as err:
        raise ValueError(f"{err}; the mean squared singular value involves E[1/chi^2_(B-1)] = 1/(B-3), infinite for B <= 3") from None
    check_real("weight_variance", weight_variance, low=0.0, low_inclusive=False)
    q0 = check_real("input_variance", input_variance, low=0.0, low_inclusive=False)
    if directions is None:  # 1.5·10⁶ sampled eigenvalues, at most 10⁵ directions (B ≤ 16)
        directions = min(_DIRECTIONS, math.ceil(_EIGENVALUES / (batch - 1)))
    directions = check_int("directions", directions, minimum=1000)
    seed = check_int("seed", seed, minimum=0)
    block = check_choice("block", block, ("batch", "per_example"))
    if block == "per_example":
        if depth > 1 and act.name not in _PER_EXAMPLE_DEEP:
            raise ValueError(
                f"block='per_example' at depth {depth} > 1 is derived and validated for activations "
                f"{', '.join(repr(a) for a in _PER_EXAMPLE_DEEP)} only (got {act.name!r}); depth 1 takes any activation"
            )
        if depth > 1 and act.name == "linear":  # linear φ: the exact law (docs/derivations.md §11.10)
            from .bn_per_example import BNPerExampleExactLaw

            return BNPerExampleExactLaw(depth, batch, q0)
        if depth > 1 and batch > _PER_EXAMPLE_NONLINEAR_MAX_BATCH:
            raise ValueError(
                f"block='per_example' at depth {depth} > 1 with activation {act.name!r} is validated for batch_size <= "
                f"{_PER_EXAMPLE_NONLINEAR_MAX_BATCH} only (got {batch}): larger batches are not compared with torch "
                "(docs/derivations.md §11.11); its moments are (bn_per_example_moments_nonlinear), and "
                "BNPerExampleNonlinearLaw can be built directly"
            )
        if depth > 1:  # relu, tanh: sampled direction rule (docs/derivations.md §11.11)
            from .bn_per_example_nonlinear import BNPerExampleNonlinearLaw

            return BNPerExampleNonlinearLaw(depth, act, batch, q0, seed=seed)
        return _per_example_law(depth, act, batch, q0)
    if act.name != "linear":
        return _generic_law(depth, act, batch, q0, directions, _NODES, seed)
    kappa = Fraction(batch - 1)
    channel = InverseChiSquareS(batch, kappa)
    first = Fraction(batch) / _exact(q0)  # κ₁: layer 1 sees the input Gram q₀ I instead of the BN output's
    f = Fraction(batch, batch - 1)  # from the centred space (dimension (B − 1)N) to all B·N dimensions
    terms = [
        Term(channel, f, depth),
        Term(marchenko_pastur_s(1.0), f, depth),
        Term(RationalS(kappa / first, name="first layer")),
        Term(_dimension_factor(f)),
    ]
    atoms = [(0.0, 2.0 / batch)]
    description = f"BN batch Jacobian (linear, B={batch}, depth={depth}, q0={q0:g})"
    return BNBatchJacobianLaw(terms, atoms, description, channel)


# ============================================================================================ per-example block: m1
def bn_per_example_mean(depth: int, batch_size: int = 16, input_variance: float = 1.0) -> Fraction:
    """Mean squared singular value of a per-example diagonal block of a linear BN network's batch Jacobian.

    The block ``J_bb = ∂x_L[b]/∂x_0[b]`` (N × N; the engine's ``batchnorm="train_diagonal"``) of the networks of
    :func:`bn_jacobian_spectrum` (linear φ), ``m₁ = E tr(J_bb J_bbᵀ)/N`` as N → ∞ (docs/derivations.md §11.7).
    With ``d = B − 1``, ``p = e_b − 1/B``, ``P = I − 11ᵀ/B`` and the map on M_B
    ``T_l(X) = e_l (α P X P + β tr(P X P) P)``, ``α = (d² − 2)/(d(d + 2))``, ``β = 1/(d(d + 2))``,
    ``e_l = E[γ²/s²] = κ_l/(B − 3)`` (κ₁ = B/q₀, κ_l = B − 1; σ_w² cancels), the block's mean is the (b, b) entry
    of ``T_L ∘ ⋯ ∘ T_1(e_b e_bᵀ)``: ``X_l = a_l ppᵀ + c_l P`` with ``a_l = e_l α a_{l−1}``,
    ``c_l = e_l ((d − 1)/d · c_{l−1} + β (d/B) a_{l−1})``, ``a₀ = 1``, ``c₀ = 0``, and

        ``m₁ = a_L (d/B)² + c_L (d/B)``.

    (Uniform-sphere fourth moments of the normalised batch vector; Yang et al. 2019, arXiv 1902.08129, for the
    BN statistics.) Depth 1: ``m₁ = B d (d² − 1)/(q₀ (B − 3)(d + 2) B²)``. The P part grows by Yang et al.'s
    ``(B − 2)/(B − 3)`` per layer but is fed from the ppᵀ part only through β = O(1/B²), so the block carries a
    fraction of the batch Jacobian's ``((B − 2)/(B − 3))^L`` that falls with depth: 0.31, 0.17 at L = 10, 20
    (B = 8), 0.52, 0.30 (B = 16), 0.84, 0.72 (B = 64); the rest of the growth is in the cross-example blocks.
    Exact rational for rational ``input_variance``.
    """
    depth = check_int("depth", depth, minimum=1)
    try:
        batch = check_int("batch_size", batch_size, minimum=4)
    except ValueError as err:
        raise ValueError(f"{err}; E[1/chi^2_(B-1)] = 1/(B-3) is infinite for B <= 3") from None
    q0 = _exact(check_real("input_variance", input_variance, low=0.0, low_inclusive=False))
    d = Fraction(batch - 1)
    b = Fraction(batch)
    alpha = (d * d - 2) / (d * (d + 2))
    beta = 1 / (d * (d + 2))
    a, c = Fraction(1), Fraction(0)
    for layer in range(depth):
        e = (b / q0 if layer == 0 else d) / (b - 3)
        a, c = e * alpha * a, e * ((d - 1) / d * c + beta * (d / b) * a)
    return a * (d / b) ** 2 + c * d / b


# ============================================================================================ per-example block: law
_BLOCK_BINS = 128  # equal-probability bins of t = 1 − β, each with a 2-point Gauss–Legendre rule in probability
_BLOCK_GRADING = 12  # the outer bins halved this many times towards both ends (the law's lowest decades)


def _per_example_nodes(act: Any, batch: int) -> tuple[np.ndarray, np.ndarray, float, float]:
    """(λ_j, w_j, zero mass, E λ) of ``λ = φ'(n_b)² t²``, ``t = 1 − n_b²/d ~ Beta((B − 2)/2, 1/2)``, n_b = ±√(d(1 − t))
    (each sign with probability ½; d = B − 1): one coordinate of the uniform normalised batch vector
    (docs/derivations.md §11.9). Nodes: Gauss–Legendre in the probability u of t (t = F⁻¹(u)) on equal bins, the
    outer ones graded; then scaled to the mean ``E λ``, a 1-d integral done by adaptive quadrature."""
    from scipy import integrate, stats

    d = batch - 1.0
    dist = stats.beta((batch - 2) / 2.0, 0.5)
    cuts = list(np.linspace(0.0, 1.0, _BLOCK_BINS + 1))
    first, last = cuts[1], cuts[-2]
    cuts += [first * 2.0**-j for j in range(1, _BLOCK_GRADING)] + [1.0 - (1.0 - last) * 2.0**-j for j in range(1, _BLOCK_GRADING)]
    cuts = np.unique(np.array(cuts))
    gt, gw = np.polynomial.legendre.leggauss(2)
    half = 0.5 * np.diff(cuts)
    u = ((0.5 * (cuts[:-1] + cuts[1:]))[:, None] + half[:, None] * gt[None, :]).ravel()
    wu = (half[:, None] * gw[None, :]).ravel()
    t = dist.ppf(u)
    loc, weight = [], []
    for sign in (1.0, -1.0):
        n_b = sign * np.sqrt(d * np.clip(1.0 - t, 0.0, None))
        lam = np.asarray(act.dphi(n_b), float) ** 2 * t * t
        loc.append(lam)
        weight.append(0.5 * wu)
    loc, weight = np.concatenate(loc), np.concatenate(weight)

    def mean_part(sign: float) -> float:
        f = lambda tt: float(np.asarray(act.dphi(sign * math.sqrt(d * max(1.0 - tt, 0.0))), float) ** 2) * tt * tt * dist.pdf(tt)  # noqa: E731
        return integrate.quad(f, 0.0, 1.0, limit=200, epsabs=0.0, epsrel=1e-12)[0]

    if act.name == "linear":  # E t² = p(p + 1)/((p + q)(p + q + 1)), p = (B − 2)/2, q = 1/2
        mean = (batch - 2.0) * batch / ((batch - 1.0) * (batch + 1.0))
    else:
        mean = 0.5 * (mean_part(1.0) + mean_part(-1.0))
    top = float(loc.max())
    positive = loc > _RANK_TOL * top
    zero = float(weight[~positive].sum())
    loc, weight = loc[positive], weight[positive]
    loc, inverse = np.unique(loc, return_inverse=True)
    weight = np.bincount(inverse, weights=weight)
    loc = loc * mean / float(np.dot(weight, loc))
    return loc, weight, zero, mean


class BNPerExampleLaw(BNGenericJacobianLaw):
    """Squared singular values of one per-example diagonal block ``J_bb = ∂x_L[b]/∂x_0[b]`` (N × N) of a BN network's
    batch Jacobian at depth 1 (docs/derivations.md §11.9; exact, any φ). Deeper, linear φ:
    :class:`~rmt_init.theory.bn_per_example.BNPerExampleExactLaw` (§11.10)."""

    @property
    def extremal_index(self) -> float:
        raise ValueError("extremal_index is derived for block='batch' laws only (docs/derivations.md §11.8)")

    def largest_eigenvalue(self, width: int) -> "LargestEigenvalueLaw":
        raise ValueError("largest_eigenvalue is derived for block='batch' laws only (docs/derivations.md §11.8)")


def _per_example_law(depth: int, act: Any, batch: int, q0: float) -> BNPerExampleLaw:
    """The law of docs/derivations.md §11.9 (see :func:`bn_jacobian_spectrum`, ``block="per_example"``)."""
    if depth != 1:
        raise ValueError(f"_per_example_law is the depth-1 law (got depth {depth}); deeper: BNPerExampleExactLaw")
    loc, weight, zero, mean = _per_example_nodes(act, batch)
    kappa = Fraction(batch - 1)  # the channel factor's κ; the first layer's B/q₀ and the readout (d/B)² in `scale`
    channel = ChannelLawS(batch, kappa, loc, weight, zero, name="BN per-example channel")
    d = Fraction(batch - 1)
    per_layer = kappa / (batch - 3) * _exact(mean)  # E[κ λ/X] for the one layer
    target = Fraction(batch) / _exact(q0) / (batch - 3) * (d / batch) ** 2 * _exact(mean)
    scale = target / per_layer  # the product is scaled by this: its mean is `target`
    terms = [Term(channel, 1, 1), Term(marchenko_pastur_s(1.0), 1, 1), Term(RationalS(1 / scale, name="scale"))]
    atoms = [(0.0, zero)] if zero > 0 else []
    description = f"BN per-example block ({act.name}, B={batch}, depth=1, q0={q0:g}; exact)"
    law = BNPerExampleLaw(terms, atoms, description, channel)
    law.__dict__["_mean_exact"] = target
    return law
