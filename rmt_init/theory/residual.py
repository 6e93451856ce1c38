"""Residual networks: the Jacobian factor I + αDW, its free products, the mean field and the large-depth limit.

Block l of the network is h_l = W_l x_{l−1} + b_l, x_l = x_{l−1} + α_l φ(h_l), so the input–output Jacobian is
J = Π_l (I + α_l D_l W_l), D_l = diag φ'(h_l). Each factor's Gram matrix F_l = (I + α_l D_l W_l)ᵀ(I + α_l D_l W_l)
is taken free from the product of the earlier ones, so the law of JJᵀ is F_1 ⊠ ⋯ ⊠ F_L (Tarnowski, Warchoł,
Jastrzębski, Tabor & Nowak 2019, AISTATS, arXiv 1809.08848; Ling & Qiu 2018, arXiv 1807.11694).

The factor (docs/derivations.md §8.1–8.2). With D independent of W (mean field) and W Gaussian or Haar
orthogonal, c = DW is R-diagonal, so the symmetrised law of |1 + αc| is the free additive convolution of
(δ₋₁ + δ₁)/2 with the symmetrised law of |αc| (Haagerup & Larsen 2000, J. Funct. Anal. 176, Prop. 3.5), and
|αc|² = α²σ_w²·K, K = WᵀD²W/σ_w² with S_K = S_{D²}·S_{WᵀW} (S_{WᵀW} = 1/(1 + w) Gaussian, 1 orthogonal).
Through R-transforms this gives, with s = α²σ_w² and g(v) = v(1 + v)S_K(v),

    S_F(w) = e(1 + e)/(w(1 + w)),   s·e(1 + e) = g(w − e)                                     (§8.2)

and, in the variable κ = χ_{D²}(w − e) of the law of D² (Φ(κ) = E[1/(1 − κd)], d ~ φ'(h)²),

    1 + ψ_F(u) = Φ(κ) + e,   s·e(1 + e) = κ Φ(κ)^{1+o},   u (Φ(κ) + e)² = e(1 + e),            (§8.3)

o = 0 (Gaussian) or 1 (orthogonal). For a linear block (d ≡ 1, Gaussian W) this is the "information plus noise"
law of Dozier & Silverstein (2007, J. Multivariate Anal. 98): S_F(w) = 2/(B + √(B² − 4Aw)), B = 1 + s + 2sw,
A = s²(1 + w). Small α: log S_F(w) = −α²σ_w² μ₁ (1 + 2w) + O(α⁴), μ₁ = E φ'(h)², hence the large-depth limit
S(w) = exp(−τ(1 + 2w)), τ = Σ_l α_l² σ_w² μ₁,l, for any activation (Tarnowski et al. 2019) (§8.4).

The support edges of these laws live in :mod:`rmt_init.theory._residual_edges` (``block_edges``,
``product_edges``, re-exported here), the fast distribution function of an interval with soft ends in
:mod:`rmt_init.theory._residual_soft_table` (``SoftEdgeTable``).
"""
from __future__ import annotations

import math
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property
from typing import Any

import mpmath
import numpy as np
from scipy.optimize import minimize_scalar
from scipy.spatial import cKDTree

from .._validate import check_int, check_real
from . import _series
from ._smooth_law import RHO_MIN, bernstein_rho
from .activations import Activation, derivative_moments, gaussian_expectation, get_activation
from .free import (
    FreeProductLaw,
    PsiS,
    RationalS,
    SFactor,
    Term,
    _belinschi,
    _exact,
    dirac_s,
    per_layer_values,
    require_float_moments,
)
from ._residual_edges import _lower_branch, _pole_limit, block_edges, product_edges
from ._residual_soft_table import SoftEdgeTable
from .gaussian_image import GaussianImageS
from .jacobian import JacobianLaw, _d_squared_factor, _power_atoms

__all__ = [
    "ResidualBlockS",
    "ResidualJacobianLaw",
    "ResidualLimitS",
    "ResidualMeanField",
    "residual_block_law",
    "residual_depth_parameter",
    "residual_limit_law",
    "residual_mean_field",
]

_NEWTON_STEPS = 30
_RAY_STEPS = 24
_PREDICT_REACH = 6.0  # a warm start predicts (κ, p) from a solved point up to a factor e^6 away in u
_TOL = 1e-14
_ROUNDING = 8.0 * np.finfo(float).eps  # Newton's residual at the rounding floor of its unknowns


# ============================================================================ the law of D² seen through Φ
class _DLaw:
    """Φ(κ) = E[1/(1 − κd)] and κΦ'(κ) for the law of d = φ'(h)² (an S-factor, or None for δ₁)."""

    def __init__(self, factor: SFactor | None) -> None:
        self.factor = factor
        if factor is None:
            self.atoms: tuple[tuple[float, float], ...] = ((1.0, 1.0),)
        else:
            self.atoms = tuple(factor.atoms)
        self.numerical = isinstance(factor, PsiS)
        if self.numerical:
            self.dmax = float(factor.xmax)
            self.mass_at_zero = float(factor.mass_at_zero)
            self.tolerance = float(factor.psi_tolerance)
        else:
            # the closed-form laws of D² (δ_a, the two-point law) are their atoms
            if abs(math.fsum(m for _, m in self.atoms) - 1.0) > 1e-12:
                raise ValueError(f"the law of D² {factor!r} is not purely atomic; give it as a PsiS factor")
            self.dmax = max(a for a, _ in self.atoms)
            self.mass_at_zero = math.fsum(m for a, m in self.atoms if a == 0.0)
            self.tolerance = 1e-16
            self._x = np.array([a for a, _ in self.atoms])
            self._m = np.array([m for _, m in self.atoms])
        self.mean = float(1 / self.series(0)[0])
        # E d as the sum of the atoms (s E d − 1 is exactly 0 for a linear block at α²σ_w² = 1)
        self.exact_mean = self.mean if self.numerical else math.fsum(a * m for a, m in self.atoms)

    def series(self, order: int) -> list[Any]:
        if self.factor is None:
            return [1] + [0] * order
        return self.factor.series(order)

    def phi(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        if self.numerical:
            return self.factor.one_plus_psi(kappa)
        kx = kappa[..., None] * self._x
        inverse = 1.0 / (1.0 - kx)
        return (self._m * inverse).sum(axis=-1), (self._m * kx * inverse * inverse).sum(axis=-1)


class _PaddedDLaws:
    """The Gauss rules of L laws of D² side by side, for blocks whose laws of D² differ (a smooth activation: q_l
    changes along the residual stream, docs/derivations.md §8.5): per tier of :mod:`rmt_init.theory._smooth_law`
    (the rule of m nodes used where the Bernstein parameter of 1/κ is ≥ ρ_min) the nodes and weights of all L rules
    as (L, m) arrays, zero weights padding the shorter ones, and the laws' atoms likewise; so that Φ(κ) of any block
    at any point is one gathered sum (:class:`_StackedD`). Built only from factors :meth:`usable` says have such
    rules; the tiers' ρ_min must agree (they are the module's constants)."""

    def __init__(self, factors: Sequence[GaussianImageS], means: Sequence[float]) -> None:
        rules = [f.gauss_rule for f in factors]
        self.factors = list(factors)
        self.a = np.array([r.a for r in rules])
        self.b = np.array([r.b for r in rules])
        self.mean = np.array(means, float)
        thresholds = {self.tiers_of(f) for f in factors}
        if len(thresholds) != 1:
            raise ValueError("the laws of D² have Gauss rules of different tiers")
        self.tiers = []
        for k, rho_min in enumerate(next(iter(thresholds))):
            m = max(r.tiers[k][1].size for r in rules)
            nodes, weights = np.zeros((len(rules), m)), np.zeros((len(rules), m))
            for i, r in enumerate(rules):
                nodes[i, : r.tiers[k][1].size], weights[i, : r.tiers[k][2].size] = r.tiers[k][1], r.tiers[k][2]
            self.tiers.append((rho_min, nodes, weights))
        n_atoms = max(f._atom_x.size for f in factors)
        self.atom_x = self.atom_m = None
        if n_atoms:
            self.atom_x, self.atom_m = np.zeros((len(rules), n_atoms)), np.zeros((len(rules), n_atoms))
            for i, f in enumerate(factors):
                self.atom_x[i, : f._atom_x.size], self.atom_m[i, : f._atom_m.size] = f._atom_x, f._atom_m

    @staticmethod
    def tiers_of(factor: GaussianImageS) -> tuple[float, ...]:
        """The ρ_min of the factor's Gauss-rule tiers (laws padded together must have the same)."""
        return tuple(t[0] for t in factor.gauss_rule.tiers)

    @staticmethod
    def usable(factor: Any) -> bool:
        """A smooth law of D² with a Gauss rule (not collapsed to point masses, which have their own closed form)."""
        return isinstance(factor, GaussianImageS) and factor.collapsed is None and factor.gauss_rule is not None


_PHI_CHUNK = 32768


class _StackedD:
    """The law of D² seen through Φ (as :class:`_DLaw`) for stacked points of several blocks: point i belongs to the
    block ``index[i]`` of a :class:`_PaddedDLaws`. Where 1/κ is outside the Bernstein ellipse of parameter RHO_MIN
    of its block's range of d, Φ and κΦ' are that block's Gauss-rule sums (the same tier, nodes and weights as
    ``GaussianImageS.one_plus_psi``, summed over the padded rows: equal to rounding); elsewhere (κ near the cut)
    its own factor's ``one_plus_psi`` on those points, block by block."""

    numerical = True

    def __init__(self, padded: _PaddedDLaws, index: np.ndarray) -> None:
        self.padded = padded
        self.index = index
        self.mean = padded.mean[index]
        self._a, self._b = padded.a[index], padded.b[index]

    def phi(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        pad, index = self.padded, self.index
        kappa = np.asarray(kappa, complex)
        if kappa.shape != index.shape:
            raise ValueError(f"stacked law of D²: κ has shape {kappa.shape}, the blocks' index {index.shape}")
        with np.errstate(all="ignore"):
            rho = bernstein_rho(1.0 / kappa, self._a, self._b)
        value = np.empty(kappa.shape, complex)
        slope = np.empty(kappa.shape, complex)
        todo = np.ones(kappa.shape, bool)
        with np.errstate(all="ignore"):
            for rho_min, nodes, weights in pad.tiers:
                take = todo & (rho >= rho_min)
                if not take.any():
                    continue
                todo &= ~take
                taken = np.flatnonzero(take)
                for start in range(0, taken.size, _PHI_CHUNK):  # (points × m) temporaries of bounded size
                    sel = taken[start : start + _PHI_CHUNK]
                    rows = index[sel]
                    inverse = 1.0 / (1.0 - kappa[sel, None] * nodes[rows])
                    w = weights[rows]
                    first = np.einsum("ij,ij->i", inverse, w)
                    value[sel] = first
                    slope[sel] = np.einsum("ij,ij->i", inverse * inverse, w) - first
            if pad.atom_x is not None:
                sel = np.flatnonzero(~todo)
                ua = kappa[sel, None] * pad.atom_x[index[sel]]
                inverse = 1.0 / (1.0 - ua)
                m = pad.atom_m[index[sel]]
                value[sel] += np.einsum("ij,ij->i", inverse, m)
                slope[sel] += np.einsum("ij,ij->i", ua * inverse * inverse, m)
        if todo.any():
            rest = np.flatnonzero(todo)
            rows = index[rest]
            order = np.argsort(rows, kind="stable")
            rest, rows = rest[order], rows[order]
            cuts = np.flatnonzero(np.diff(rows)) + 1
            for part in np.split(rest, cuts):
                v, s = pad.factors[index[part[0]]].one_plus_psi(kappa[part])
                value[part], slope[part] = v, s
        return value, slope


def _log_polar(u: np.ndarray) -> np.ndarray:
    """(ln|u|, arg u) per point: the coordinates in which remembered solutions are looked up, so that the nearest one
    is the nearest in ln u (the distance that the warm start's predictor covers; next to a hard edge at 0 |u| spans
    hundreds of decades, and the nearest point in the u-plane could be decades away in ln u)."""
    return np.column_stack([np.log(np.maximum(np.abs(u), np.finfo(float).tiny)), np.angle(u)])


# ============================================================================ one block's factor
class ResidualBlockS(PsiS):
    """The law of the squared singular values of I + αDW (docs/derivations.md §8), as a factor of free products.

    Args:
        d_factor: the S-factor of the law of D² = diag φ'(h)² (``None``: D = I, a linear block).
        s: α²σ_w² (> 0).
        ensemble: ``"gaussian"`` (i.i.d. entries of variance σ_w²/N; uniform entries give the same law) or
            ``"orthogonal"`` (W = σ_w Q, Q Haar orthogonal).

    ψ is computed from the two equations of §8.3 in the unknowns (κ, p = 1 + ψ) by Newton's method (§8.7(f): p keeps
    its relative precision next to a hard edge at 0, where it tends to 0), started from the previous call's solution
    or a remembered one (through the log–log tangent predictor when u has moved by more than 25 %) or else continued
    along the ray from u ≈ 0 (where κ ≈ su, e ≈ u); the exact S-series comes from S_F(w) = e(1 + e)/(w(1 + w)), s·e(1 + e) = g(w − e)
    by series reversion (§8.2), so moments of products are exact (rationals for linear and ReLU blocks).
    """

    mass_at_zero = 0.0
    #: FreeProductLaw._hard_edge estimates the edge exponent at 1e−5 and 1e−3 of its table's top, not at 1e−300
    #: (a cold solve there refines its η-steps for minutes; the exponent only sets the table's depth)
    deep_probes = False

    def __init__(self, d_factor: SFactor | None, s: float, ensemble: str = "gaussian", name: str | None = None) -> None:
        self.s = check_real("alpha**2 * sigma_w2", s, low=0.0, low_inclusive=False)
        if ensemble not in ("gaussian", "orthogonal"):
            raise ValueError(f"ensemble must be 'gaussian' or 'orthogonal'; got {ensemble!r}")
        self.ensemble = ensemble
        self._o = 1 if ensemble == "orthogonal" else 0
        self.d = _DLaw(d_factor)
        self.psi_tolerance = max(1e-14, 10.0 * self.d.tolerance)
        # atoms: I + αDW is the identity on the rows where d = 0, so F has an atom at 1 of mass 2P(d = 0) − 1 when
        # positive (Bercovici–Voiculescu: the atom of (δ₋₁ + δ₁)/2 ⊞ ν at ±1 has mass ½ + ν({0}) − 1)
        zero = self.d.mass_at_zero
        self.atoms = ((1.0, 2.0 * zero - 1.0),) if zero > 0.5 else ()
        self.name = name or f"residual block (α²σ_w²={self.s:g}, {ensemble}, D²: {d_factor!r})"
        self._warm: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.xmax = self._upper_edge()

    def __repr__(self) -> str:
        return self.name

    # ------------------------------------------------------------------ exact series (§8.2)
    def series(self, order: int) -> list[Any]:
        n = order + 1
        s_d = self.d.series(n)
        s_k = s_d if self._o else _series.multiply(s_d, [(-1) ** k for k in range(n + 1)], n)
        g = _series.multiply([0, 1, 1], s_k, n)  # v(1 + v)S_K(v)
        s_exact = _exact(self.s)
        c = [x / s_exact for x in g]
        # E(1 + E) = c: E = Σ_k (−1)^{k−1} Catalan(k−1) c^k
        catalan = [math.comb(2 * k, k) // (k + 1) for k in range(n + 1)]
        h = [0] + [(-1) ** (k - 1) * catalan[k - 1] for k in range(1, n + 1)]
        e_of_v = _compose(h, c, n)
        w_of_v = list(e_of_v)
        w_of_v[1] += 1
        v_of_w = _series.reverse(w_of_v, n)
        numerator = _compose(c, v_of_w, n)  # e(1 + e) as a series in w, starting at order 1
        shifted = numerator[1:] + [0]
        return _series.multiply(shifted, [(-1) ** k for k in range(n + 1)], order)

    # ------------------------------------------------------------------ ψ (§8.3), in the unknowns (κ, p = 1 + ψ)
    def _parts(self, kappa):
        """(Φ − 1, Φ', R, |R|'s rounding scale) at κ, with R = sΦ(Φ − 1) − κΦ^{1+o} = s·e(1 + e) − κΦ^{1+o} at p = 0.

        For an atomic law of D², Φ − 1 = κΨ₁, Ψ₁ = E[d/(1 − κd)], and R = κΦ·Q, Q = (sE d − 1) + κ(sE[d²/(1 − κd)]
        − oΨ₁), free of the cancellation of its O(κ) terms at s E d = 1 (where p ~ κ², §8.7(d)); a numerical law of
        D² forms R directly."""
        o = self._o
        if self.d.numerical:
            phi, k_dphi = self.d.phi(kappa)
            with np.errstate(all="ignore"):
                dphi = np.where(kappa != 0, k_dphi / np.where(kappa != 0, kappa, 1.0), self.d.mean)
            phi1 = phi - 1.0
            first, second = self.s * phi * phi1, kappa * phi ** (1 + o)
            return phi1, dphi, first - second, np.abs(first) + np.abs(second)
        x, m = self.d._x, self.d._m
        inverse = 1.0 / (1.0 - kappa[..., None] * x)
        psi1 = (m * x * inverse).sum(axis=-1)
        dphi = (m * x * inverse * inverse).sum(axis=-1)
        second = (m * x * x * inverse).sum(axis=-1)
        phi1 = kappa * psi1
        phi = 1.0 + phi1
        base = self.s * self.d.exact_mean - 1.0
        q = base + kappa * (self.s * second - o * psi1)
        scale = np.abs(kappa * phi) * (np.abs(base) + np.abs(kappa) * (np.abs(self.s * second) + o * np.abs(psi1)))
        return phi1, dphi, kappa * phi * q, scale

    def _residuals(self, u, kappa, p):
        """The residuals of §8.3 in (κ, p), e = p − Φ, 1 + e = p − (Φ − 1):

            r₁ = s e(1 + e) − κΦ^{1+o} = s p(p − 1 − 2(Φ − 1)) + R,   r₂ = u p² − e(1 + e) = (u − 1)p² + p(1 + 2(Φ − 1)) − Φ(Φ − 1),

        their Jacobian in (κ, p) and the sizes of their terms. In these unknowns p = 1 + ψ keeps its relative
        precision next to a hard edge at 0, where it tends to 0 (§8.7(d)); with e as unknown it was the difference
        Φ + e of numbers near ±1."""
        phi1, dphi, big_r, r_scale = self._parts(kappa)
        o = self._o
        phi = 1.0 + phi1
        two = 1.0 + 2.0 * phi1  # 2Φ − 1
        one_plus_2e = 2.0 * p - two
        r1 = self.s * p * (p - two) + big_r
        r2 = (u - 1.0) * p * p + p * two - phi * phi1
        d_big_g = phi ** (1 + o) + (1 + o) * kappa * phi**o * dphi
        jac = (-self.s * dphi * one_plus_2e - d_big_g, self.s * one_plus_2e, dphi * one_plus_2e, 2.0 * u * p - one_plus_2e)
        ap = np.abs(p)
        scale = (np.abs(self.s) * ap * (ap + np.abs(two)) + r_scale, (np.abs(u) + 1.0) * ap * ap + ap * np.abs(two) + np.abs(phi * phi1))
        return r1, r2, jac, scale

    def _newton(self, u, kappa, p, steps=_NEWTON_STEPS):
        kappa, p = kappa.copy(), p.copy()
        ok = np.zeros(u.shape, bool)
        tol = max(_TOL, self.psi_tolerance)
        for _ in range(steps):
            with np.errstate(all="ignore"):
                r1, r2, (a, b, c, d), (n1, n2) = self._residuals(u, kappa, p)
                det = a * d - b * c
                dk = (r1 * d - r2 * b) / det
                dp = (a * r2 - c * r1) / det
                # what one rounding of each unknown changes the residuals by: where the terms' own sizes n1, n2
                # fall below it (cancelling O(1) terms, s E d > 1 at a hard edge) the test against them can never pass
                m1 = n1 + np.abs(a) * np.abs(kappa) + np.abs(b) * np.abs(p)
                m2 = n2 + np.abs(c) * np.abs(kappa) + np.abs(d) * np.abs(p)
            small = (np.abs(r1) <= tol * n1 + 1e-300) & (np.abs(r2) <= tol * n2 + 1e-300)
            small |= (np.abs(r1) <= _ROUNDING * m1) & (np.abs(r2) <= _ROUNDING * m2)
            # or Newton has stalled at rounding level
            stalled = (np.abs(dk) <= 1e-13 * np.abs(kappa)) & (np.abs(dp) <= 1e-13 * np.abs(p))
            # (a stall far from a root — κ running off to ∞ where Φ(κ) → P(d = 0) — is not a solution)
            near = (np.abs(r1) <= 1e-8 * n1) & (np.abs(r2) <= 1e-8 * n2)
            # a point that passes takes one more step (its error squared: the residuals' scales n1, n2 hold terms
            # larger than p itself, so the test alone would leave p a relative error ~tol·n/|p|), then stops
            step_ok = np.isfinite(dk) & np.isfinite(dp) & ~ok
            ok |= small | (stalled & near & ~np.isnan(dk))
            if not step_ok.any():
                break
            kappa = np.where(step_ok, kappa - dk, kappa)
            p = np.where(step_ok, p - dp, p)
        return kappa, p, ok & np.isfinite(kappa) & np.isfinite(p)

    def _p_of(self, kappa: np.ndarray, e: np.ndarray) -> np.ndarray:
        """p = Φ(κ) + e, for the starting points given in (κ, e) (small |u|, where p is not small)."""
        return 1.0 + self._parts(kappa)[0] + e

    def _warm_start(self, u: np.ndarray, u0: np.ndarray, k0: np.ndarray, p0: np.ndarray):
        """(usable, κ start, p start) for Newton at u from solved points (u0, κ0, p0): within 25 % of |u|, the
        solved point itself; else, within |ln(u/u0)| ≤ _PREDICT_REACH, the log–log tangent κ0(u/u0)^{u0κ'/κ0},
        p0(u/u0)^{u0p'/p0} (d(κ, p)/du = −J⁻¹(0, p²)). Next to a hard edge at 0 the free-product solver's η-steps
        move u by factors up to ~64, beyond the 25 %, and each such point took the 40 Newton runs of
        :meth:`_continue`; κ and p are powers of u there (§8.7(d)), which the predictor follows."""
        with np.errstate(all="ignore"):
            finite = np.isfinite(k0) & np.isfinite(p0)
            close = finite & (np.abs(u - u0) <= 0.25 * np.abs(u) + 1e-300)
            log_ratio = np.log(u / u0)
            _, _, (a, b, c, d), _ = self._residuals(u0, k0, p0)
            det = a * d - b * c
            k_new = k0 * np.exp(u0 * b * p0 * p0 / (det * k0) * log_ratio)
            p_new = p0 * np.exp(-u0 * a * p0 / det * log_ratio)
            far = finite & ~close & (np.abs(log_ratio) <= _PREDICT_REACH) & np.isfinite(k_new) & np.isfinite(p_new)
        return close | far, np.where(far, k_new, k0), np.where(far, p_new, p0)

    def _valid(self, u, kappa, p, ok):
        """Converged, and Im(1 + ψ) ≤ 0 where Im u < 0 (Nevanlinna), 1 + ψ > 0 for real u < 1/max supp F."""
        slack = 1e-9 * np.abs(p)
        lower = u.imag < -1e-12 * np.abs(u)
        good = ok & ~(lower & (p.imag > slack))
        # κ = 0, p = 0 (e = −1) solves both equations for every u; 1 + ψ only tends to 0 like 1/|u| as u → −∞
        good &= np.abs(p) > 1e-8 / (1.0 + np.abs(u) * self.xmax)
        real = (u.imag == 0) & (u.real < 1.0 / self.xmax)
        return good & ~(real & ((p.real <= 0) | (np.abs(p.imag) > slack)))

    def _continue(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Continuation along the ray m·(u/|u| − 0.3i), m growing by 4 per step from min(|u|, 0.01/max supp F) (where
        κ ≈ su, e ≈ u) to |u|, each start the log–log tangent of :meth:`_warm_start`, then down to u (the offset
        shrinking geometrically to 0), so that the path keeps away from the cut and real u inside the support is
        reached from below. Returns (κ, p, converged). (The ray used to start at 1e−8·u whatever |u|: next to a hard
        edge, |u| ~ 1e12 and beyond, that start was far from the small-u regime of its guess.)"""
        mag = np.abs(u)
        direction = np.where(mag > 0, u / np.where(mag > 0, mag, 1.0), 1.0) - 0.3j
        m0 = np.minimum(mag, 0.01 / self.xmax)
        point = m0 * direction
        kappa = self.s * point
        p = self._p_of(kappa, point)
        ok = np.ones(u.shape, bool)
        with np.errstate(divide="ignore"):
            steps = int(np.ceil(np.max(np.log(np.where(mag > 0, mag / m0, 1.0)), initial=0.0) / math.log(4.0)))
        for k in range(1, steps + 1):
            target = np.minimum(m0 * 4.0**k, mag) * direction
            _, k0, p0 = self._warm_start(target, point, kappa, p)
            k_new, p_new, ok_new = self._newton(target, k0, p0, steps=12)
            kappa = np.where(ok_new, k_new, kappa)
            p = np.where(ok_new, p_new, p)
            point = np.where(ok_new, target, point)
        for eps in np.concatenate([0.3 * np.geomspace(1.0, 1e-15, 16)[1:], [0.0]]):
            ur = u - 1j * eps * mag
            k_new, p_new, ok_new = self._newton(ur, kappa, p, steps=12)
            kappa = np.where(ok_new, k_new, kappa)
            p = np.where(ok_new, p_new, p)
            ok &= ok_new | (eps > 0)  # intermediate failures are retried by the next step
        kappa, p, ok = self._newton(u, kappa, p)
        return kappa, p, ok

    def _real_path(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """(κ, p, converged) for real u < 1/max supp F, where the solution is real and analytic in u: Newton along
        the real axis from |u|·max supp F = 0.02 (κ ≈ su, p ≈ 1 + u + su E d). Positive u: the distance to
        1/max supp F halves per step. Negative u: |u| doubles per step, with the log–log tangent predictor
        κ ← κ·2^{uκ'/κ}, p ← p·2^{up'/p} (d(κ, p)/du = −J⁻¹(0, p²)): as u → −∞, κ and p = 1 + ψ → 0 like powers of
        |u| (1/|u| for s E d < 1, |u|^{−1/3}, |u|^{−2/3} at s E d = 1) or κ → a root of Φ + e = 0, p ~ |u|^{−1/2}
        (s E d > 1, §8.7(e)), and a plain step would jump to the spurious root κ = 0, p = 0, which solves both
        equations for every u. (The free-product solver's real inverse of ψ asks for u down to −10¹²; the complex
        ray of :meth:`_continue` costs 40 Newton runs per point.) In the unknowns (κ, p) the far points keep their
        relative precision."""
        u = np.asarray(u, float)
        kappa = np.full(u.shape, np.nan + 0j)
        p_out = np.full(u.shape, np.nan + 0j)
        ok = np.zeros(u.shape, bool)
        for negative, growth in ((False, 2.0), (True, 2.0)):
            group = np.flatnonzero((u < 0) == negative)
            if group.size == 0:
                continue
            target = u[group]
            start = (-0.02 if negative else 0.02) / self.xmax
            far = np.abs(target) > abs(start)
            ratio = np.where(far, target / start, 1.0)
            steps = max(1, int(np.ceil(math.log(float(np.max(ratio))) / math.log(growth)))) if far.any() else 1
            point = np.where(far, start, target)
            k = (self.s * point).astype(complex)
            p = self._p_of(k, point.astype(complex))
            good = np.ones(target.shape, bool)
            top = 1.0 / self.xmax
            if not negative and far.any():
                # toward the edge 1/max supp F (a square-root branch point of the solution) the distance to it halves
                # per step, so that Newton's start stays within its region of convergence there
                ratio = np.where(far, (top - target) / (top - start), 1.0)
                steps = max(1, int(np.ceil(math.log(1.0 / float(np.min(ratio))) / math.log(growth))))
            for step in range(steps + 1):
                if not step:
                    new_point = point
                elif negative:
                    new_point = np.where(far, start * ratio ** (step / steps), target)
                else:
                    new_point = np.where(far, top - (top - start) * ratio ** (step / steps), target)
                if negative and step:
                    with np.errstate(all="ignore"):
                        _, _, (a, b, c, d), _ = self._residuals(point.astype(complex), k, p)
                        det = a * d - b * c
                        gk = (point * b * p * p / det / k).real  # u κ'/κ
                        gp = (-point * a * p / det).real  # u p'/p
                        r = new_point / point
                        k_new, p_new = k * r**gk, p * r**gp
                    fine = np.isfinite(k_new) & np.isfinite(p_new) & (k != 0)
                    k, p = np.where(fine, k_new, k), np.where(fine, p_new, p)
                k_new, p_new, ok_new = self._newton(new_point.astype(complex), k, p, steps=12)
                good &= ok_new
                k, p = np.where(ok_new, k_new, k), np.where(ok_new, p_new, p)
                point = new_point
            kappa[group], p_out[group], ok[group] = k.real + 0j, p.real + 0j, good
        return kappa, p_out, ok

    def _warm_candidates(self, source, u: np.ndarray, done: np.ndarray):
        """Starting points for the points of ``u`` not ``done`` from ``source`` = (u₀, κ₀, p₀, KD-tree or None): the
        previous call's solution at the same index (no tree), else the nearest remembered point; each kept where
        :meth:`_warm_start` reaches. (indices not done, u there, reached, κ₀, p₀), or None where there is none."""
        found = self._warm_lookup(source, u, done)
        if found is None:
            return None
        todo, ut, u0, k0, e0 = found
        near, k0, e0 = self._warm_start(ut, u0, k0, e0)
        return todo, ut, near, k0, e0

    @staticmethod
    def _warm_lookup(source, u: np.ndarray, done: np.ndarray):
        """The look-up of :meth:`_warm_candidates` without the predictor: (indices not done, u there, and the solved
        (u₀, κ₀, p₀) found for them), or None."""
        if source is None or done.all():
            return None
        u0, k0, e0, tree = source
        todo = np.flatnonzero(~done)
        if tree is None:
            if u0.shape != u.shape:
                return None
            nearest = todo
        else:
            nearest = tree.query(_log_polar(u.flat[todo]))[1]
        return todo, u.flat[todo], u0.ravel()[nearest], k0.ravel()[nearest], e0.ravel()[nearest]

    def _solve(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(κ, p = 1 + ψ) at u (the arrays named ``e`` below hold p)."""
        u = np.asarray(u, complex)
        kappa = np.full(u.shape, np.nan + 0j)
        e = np.full(u.shape, np.nan + 0j)
        # a non-finite u (the caller's Newton stepped into a pole) has no solution: it stays NaN, and is never given
        # to Newton or to the KD-tree (which rejects non-finite points)
        done = ~np.isfinite(u)
        # real u below the cut: the real branch, solved apart (from real starts only, so that a start from a nearby
        # complex solution cannot land on another real root)
        real = ~done & (u.imag == 0) & (u.real < 1.0 / self.xmax)
        done = done | real
        for source in (self._warm, self._memory()):
            # start from the solution at the nearest u solved before (the solver moves u continuously, and revisits
            # the same η-paths for neighbouring points)
            found = self._warm_candidates(source, u, done)
            if found is None:
                continue
            todo, ut, near, k0, e0 = found
            if near.any():
                k1, e1, ok = self._newton(ut[near], k0[near], e0[near], steps=12)
                ok = self._valid(ut[near], k1, e1, ok)
                idx = todo[np.flatnonzero(near)[ok]]
                kappa.flat[idx], e.flat[idx] = k1[ok], e1[ok]
                done.flat[idx] = True
        if real.any():
            k1, e1 = self._solve_real(u[real].real)
            kappa[real], e[real] = k1, e1
        small = ~done & (np.abs(u) * self.xmax < 0.05)
        if small.any():
            k0 = self.s * u[small]
            k1, e1, ok = self._newton(u[small], k0, self._p_of(k0, u[small]), steps=12)
            ok = self._valid(u[small], k1, e1, ok)
            idx = np.flatnonzero(small)[ok]
            kappa.flat[idx], e.flat[idx] = k1[ok], e1[ok]
            done.flat[idx] = True
        if not done.all():
            idx = np.flatnonzero(~done)
            k1, e1, ok = self._continue(u.ravel()[idx])
            ok = self._valid(u.ravel()[idx], k1, e1, ok)
            kappa.flat[idx] = np.where(ok, k1, np.nan)
            e.flat[idx] = np.where(ok, e1, np.nan)
        keep = np.isfinite(kappa) & np.isfinite(e) & np.isfinite(u)
        if keep.all():
            self._warm = (u.copy(), kappa.copy(), e.copy(), None)
        self._remember(u[keep], kappa[keep], e[keep])
        return kappa, e

    def _solve_real(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(κ, p) on the real branch, u < 1/max supp F: Newton from the nearest real point solved before (within 25 %
        of |u|), else :meth:`_real_path`. Points where the real path fails are NaN (the ray of :meth:`_continue` ends
        on the same real branch)."""
        kappa = np.full(u.shape, np.nan + 0j)
        e = np.full(u.shape, np.nan + 0j)
        todo = np.ones(u.shape, bool)
        memory = getattr(self, "_real_memory", None)
        if memory is not None and memory[0].size:
            u0, k0, e0 = memory
            i = np.clip(np.searchsorted(u0, u), 1, u0.size - 1) if u0.size > 1 else np.zeros(u.shape, int)
            if u0.size > 1:
                i = np.where(np.abs(u0[i - 1] - u) < np.abs(u0[i] - u), i - 1, i)
            near = np.abs(u0[i] - u) <= 0.25 * np.abs(u)
            if near.any():
                uc = u[near] + 0j
                k1, e1, ok = self._newton(uc, k0[i[near]], e0[i[near]], steps=12)
                ok = self._valid(uc, k1, e1, ok)
                idx = np.flatnonzero(near)[ok]
                kappa[idx], e[idx] = k1[ok].real + 0j, e1[ok].real + 0j
                todo[idx] = False
        if todo.any():
            k1, e1, ok = self._real_path(u[todo])
            ok = self._valid(u[todo] + 0j, k1, e1, ok)
            idx = np.flatnonzero(todo)
            kappa[idx], e[idx] = np.where(ok, k1, np.nan), np.where(ok, e1, np.nan)
        good = np.isfinite(kappa) & np.isfinite(e)
        if good.any():
            parts = [u[good], kappa[good], e[good]]
            if memory is not None:
                parts = [np.concatenate([m, p]) for m, p in zip(memory, parts)]
            order = np.argsort(parts[0], kind="stable")
            self._real_memory = tuple(p[order][: self._MEMORY] for p in parts)
        return kappa, e

    _MEMORY = 200_000

    def _remember(self, u: np.ndarray, kappa: np.ndarray, e: np.ndarray) -> None:
        """Keep the solved points (at most _MEMORY, newest first) as starting points for later calls."""
        if u.size == 0:
            return
        pending = getattr(self, "_pending", [])
        pending.append((u.ravel(), kappa.ravel(), e.ravel()))
        self._pending = pending
        self._pending_size = getattr(self, "_pending_size", 0) + u.size

    def _memory(self):
        """(u, κ, e, KD-tree) of the remembered points; the tree is rebuilt when 10 % new points have come in."""
        stored = getattr(self, "_stored", None)
        pending = getattr(self, "_pending", [])
        new = getattr(self, "_pending_size", 0)
        size = 0 if stored is None else stored[0].size
        if new and (stored is None or new > 0.1 * size):
            parts = pending + ([] if stored is None else [stored[:3]])
            u, k, e = (np.concatenate([p[i] for p in parts])[: self._MEMORY] for i in range(3))
            tree = cKDTree(_log_polar(u))
            self._stored = stored = (u, k, e, tree)
            self._pending = []
            self._pending_size = 0
        return stored

    def one_plus_psi(self, u: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(1 + ψ_F(u), u ψ_F'(u)) for complex u with Im u ≤ 0 (NaN where the solve failed)."""
        u = np.asarray(u, complex)
        kappa, p = self._solve(u)
        return p, self._slope(u, kappa, p)

    def _slope(self, u: np.ndarray, kappa: np.ndarray, p: np.ndarray) -> np.ndarray:
        """u ψ'(u) = u p': d/du of the system, J (κ', p')ᵀ = −(0, p²), so p' = −a p²/det J."""
        with np.errstate(all="ignore"):
            _, _, (a, b, c, d), _ = self._residuals(u, kappa, p)
            return -u * a * p * p / (a * d - b * c)

    # ------------------------------------------------------------------ many blocks at once (issue 13)
    #: :meth:`one_plus_psi_many` stacks the blocks that share their law of D² and ensemble (False: one block at a
    #: time — the reference path of the tests and of benchmarks/bench_residual_many_blocks.py)
    stacked = True
    #: blocks whose smooth laws of D² differ (tanh, erf, gelu, …: q_l changes along the stream) are stacked too, their
    #: Gauss rules padded side by side (:class:`_PaddedDLaws`); False: only blocks sharing their law of D²
    stack_laws = True

    @classmethod
    def one_plus_psi_many(cls, blocks: Sequence[ResidualBlockS], us: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """[:meth:`one_plus_psi` of ``blocks[j]`` at ``us[j]``] for the factors of one free product (called by
        :meth:`FreeProductLaw._log_chi`). Blocks with the same law of D², ensemble and tolerance (the per-block α of
        a BN-ResNet, docs/derivations.md §10) are solved together: each Newton run, continuation ray and residual
        of :meth:`_solve` is one array operation over all their points, s = α²σ_w² and max supp F varying per
        point. Every point follows the same arithmetic as in its own block's :meth:`one_plus_psi` (the solver is
        pointwise; points done early only repeat their last iterate), so the values are the same; the per-block
        state (warm starts, memory of solved points) is kept and updated per block as there. Blocks whose smooth
        laws of D² differ (tanh, erf, sigmoid, selu, gelu: q_l changes along the stream, §8.5) are solved together
        too, Φ of each from its law's Gauss rule padded beside the others' (:class:`_PaddedDLaws`); with all u of one
        shape (the free-product solver's calls) their warm starts are kept per point column (:class:`_StackState`),
        and the values agree with the block-by-block path to the rounding of the Gauss sums (docs/derivations.md
        §8.9)."""
        out: list[Any] = [None] * len(blocks)
        groups: dict[tuple[Any, int, float], list[int]] = {}
        for j, block in enumerate(blocks):
            if cls.stacked and isinstance(block, ResidualBlockS):
                # smooth laws of D² with Gauss rules go together whatever their q (their rules padded side by side)
                factor = block.d.factor
                smooth = cls.stack_laws and _PaddedDLaws.usable(factor)
                law = ("smooth", _PaddedDLaws.tiers_of(factor)) if smooth else id(factor)
                groups.setdefault((law, block._o, block.psi_tolerance), []).append(j)
            else:
                out[j] = block.one_plus_psi(us[j])
        for members in groups.values():
            if len(members) == 1:
                out[members[0]] = blocks[members[0]].one_plus_psi(us[members[0]])
                continue
            group, group_us = [blocks[j] for j in members], [us[j] for j in members]
            state = _stack_state(group)
            if state is not None and len({np.shape(u) for u in group_us}) == 1:
                results = state.one_plus_psi(group_us)
            else:
                results = _stacked_one_plus_psi(group, group_us)
            for j, result in zip(members, results):
                out[j] = result
        return out

    # ------------------------------------------------------------------ the upper edge of F
    def _real_curve(self, kappa: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """On the real branch, κ ∈ (0, 1/max d): (1/χ_F = s p²/(κΦ^{1+o}), p = Φ + e)."""
        phi = self.d.phi(kappa.astype(complex))[0].real
        big_g = kappa * phi ** (1 + self._o)
        e = 2.0 * (big_g / self.s) / (1.0 + np.sqrt(1.0 + 4.0 * big_g / self.s))
        p = phi + e
        return self.s * p * p / big_g, p

    #: :meth:`_upper_edge` evaluates the curve next to the cut (a smooth law's quadrature) only when the minimum may
    #: lie there (False: the whole grid, the path before; the tests compare the two)
    skip_cut = True

    def _curve_values(self, grid: np.ndarray) -> np.ndarray:
        """1/χ_F on the real branch at the ascending grid of κ (∞ where not finite). For a smooth law of D² with a
        Gauss rule, the grid's points whose 1/κ is outside the rule's ellipse (a prefix of the grid: ρ(1/κ) falls
        as κ rises) come first; when their minimum is interior — the curve falls and then rises again there, so the
        first critical point as w rises from 0, the upper edge (§8.3), is found — the points next to the cut, which
        need the law's quadrature (~20 ms a block), are not evaluated (∞); else the whole grid is."""
        factor = self.d.factor
        if self.skip_cut and self.d.numerical and _PaddedDLaws.usable(factor):
            cheap = int(np.count_nonzero(factor.gauss_rule.rho(grid.astype(complex)) >= RHO_MIN))
            if cheap >= 3:
                head = self._real_curve(grid[:cheap])[0]
                head = np.where(np.isfinite(head), head, np.inf)
                i = int(np.argmin(head))
                if 0 < i < cheap - 1 and np.isfinite(head[i]):
                    return np.concatenate([head, np.full(grid.size - cheap, np.inf)])
        values = self._real_curve(grid)[0]
        return np.where(np.isfinite(values), values, np.inf)

    def _upper_edge(self) -> float:
        """max supp F = min over the real branch of 1/χ_F(w), w > 0 (the first critical point; §8.3)."""
        top = 1.0 / self.d.dmax
        grid = top * (1.0 - np.geomspace(1.0, 1e-12, 400))
        grid = grid[(grid > 0) & (grid < top)]
        values = self._curve_values(grid)
        i = int(np.argmin(values))
        lo, hi = grid[max(i - 1, 0)], grid[min(i + 1, len(grid) - 1)]
        res = minimize_scalar(lambda k: float(self._real_curve(np.array([k]))[0][0]), bounds=(lo, hi), method="bounded", options={"xatol": 1e-15 * top})
        return float(min(res.fun, values[i]))


def _stack_view(blocks: Sequence[ResidualBlockS], counts: Sequence[int]) -> ResidualBlockS:
    """A block whose s and max supp F are arrays (block j's values repeated ``counts[j]`` times), for the solver's
    pointwise methods (:meth:`ResidualBlockS._residuals`, ``_newton``, ``_valid``, ``_continue``) on stacked points;
    its law of D² is the blocks' common one, or a :class:`_StackedD` over their padded Gauss rules when they differ."""
    view = object.__new__(ResidualBlockS)
    first = blocks[0]
    view._o, view.psi_tolerance, view.ensemble = first._o, first.psi_tolerance, first.ensemble
    padded = _padded_laws(blocks)
    if padded is None:
        view.d = first.d
    else:
        view.d = _StackedD(padded, np.repeat(np.arange(len(blocks)), counts))
    view.s = np.repeat(np.array([b.s for b in blocks]), counts)
    view.xmax = np.repeat(np.array([b.xmax for b in blocks]), counts)
    view.atoms, view.name = first.atoms, "stacked residual blocks"
    return view


_STATES: dict[tuple[int, ...], _StackState] = {}


def _stack_state(blocks: Sequence[ResidualBlockS]) -> _StackState | None:
    """The :class:`_StackState` of these blocks (their padded Gauss rules and their common solver memory), or None
    when they all share one law of D² (then :func:`_stacked_one_plus_psi` with that law). Kept per tuple of blocks
    (the factors of one free product come in the same order at every call; the state holds the blocks, so their ids
    stay theirs); the 4 most recent tuples are kept."""
    first = blocks[0].d.factor
    if all(b.d.factor is first for b in blocks):
        return None
    key = tuple(id(b) for b in blocks)
    state = _STATES.get(key)
    if state is None:
        if len(_STATES) >= 4:
            _STATES.pop(next(iter(_STATES)))
        state = _STATES[key] = _StackState(blocks)
    return state


def _padded_laws(blocks: Sequence[ResidualBlockS]) -> _PaddedDLaws | None:
    state = _stack_state(blocks)
    return None if state is None else state.padded


class _StackState:
    """L blocks with different smooth laws of D², solved together at points given as L arrays of one shape (one
    u_l per block at each point of the free-product solver): the stages of :meth:`ResidualBlockS._solve` over the
    (L, n) array of all of them, the law of D² through :class:`_StackedD`. The warm starts are kept per point
    column (the L blocks' solutions at one point of the caller): the previous call's columns when the shape is the
    same, else the remembered column nearest in the mean over the blocks of (ln|u_l|, arg u_l) (one KD-tree for all
    blocks; the u_l of one column move together), each block's start then checked and predicted by
    :meth:`ResidualBlockS._warm_start` as in the block's own solve. The arithmetic per point is that of
    :meth:`ResidualBlockS.one_plus_psi`, so the values agree with the block-by-block path to the rounding of the
    Gauss sums (~1e−13 relative measured, tests/test_residual_stacked_laws.py)."""

    def __init__(self, blocks: Sequence[ResidualBlockS]) -> None:
        self.blocks = list(blocks)
        self.padded = _PaddedDLaws([b.d.factor for b in blocks], [b.d.mean for b in blocks])
        self.s = np.array([b.s for b in blocks], float)
        self.xmax = np.array([b.xmax for b in blocks], float)
        self.warm: tuple[np.ndarray, np.ndarray, np.ndarray] | None = None
        self.stored: tuple[np.ndarray, np.ndarray, np.ndarray, cKDTree] | None = None
        self.pending: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
        self.pending_columns = 0
        self.max_columns = max(200, _STACK_MEMORY // len(self.blocks))

    def view(self, rows: np.ndarray) -> ResidualBlockS:
        """A block (as :func:`_stack_view`) for points of the blocks ``rows``."""
        view = object.__new__(ResidualBlockS)
        first = self.blocks[0]
        view._o, view.psi_tolerance, view.ensemble = first._o, first.psi_tolerance, first.ensemble
        view.d = _StackedD(self.padded, rows)
        view.s, view.xmax = self.s[rows], self.xmax[rows]
        view.atoms, view.name = first.atoms, "stacked residual blocks"
        return view

    @staticmethod
    def _features(u: np.ndarray) -> np.ndarray:
        """(mean ln|u_l|, mean arg u_l) per column of the (L, n) array u (NaN where a u_l is not finite)."""
        with np.errstate(all="ignore"):
            log_modulus = np.log(np.maximum(np.abs(u), np.finfo(float).tiny))
            return np.column_stack([log_modulus.mean(axis=0), np.angle(u).mean(axis=0)])

    def _memory(self):
        """(u, κ, p, KD-tree over the columns' features) of the remembered columns (rebuilt when 10 % new ones came
        in), or None."""
        if self.pending_columns and (self.stored is None or self.pending_columns > 0.1 * self.stored[0].shape[1]):
            parts = self.pending[::-1] + ([] if self.stored is None else [self.stored[:3]])
            u, k, p = (np.concatenate([part[i] for part in parts], axis=1)[:, : self.max_columns] for i in range(3))
            features = self._features(u)
            keep = np.all(np.isfinite(features), axis=1)
            u, k, p = u[:, keep], k[:, keep], p[:, keep]
            self.stored = (u, k, p, cKDTree(features[keep])) if keep.any() else None
            self.pending, self.pending_columns = [], 0
        return self.stored

    def _newton_valid(self, flat: np.ndarray, rows: np.ndarray, u: np.ndarray, k0: np.ndarray, p0: np.ndarray,
                      kappa: np.ndarray, p: np.ndarray, done: np.ndarray) -> None:
        """Newton (12 steps) and the validity test at the flat indices ``flat`` (blocks ``rows``) from (κ₀, p₀); the
        valid ones are written into ``kappa``, ``p`` and marked ``done``."""
        view = self.view(rows)
        k1, p1, ok = view._newton(u, k0, p0, steps=12)
        ok = view._valid(u, k1, p1, ok)
        kappa[flat[ok]], p[flat[ok]] = k1[ok], p1[ok]
        done[flat[ok]] = True

    def one_plus_psi(self, us: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
        """[:meth:`ResidualBlockS.one_plus_psi` of block l at ``us[l]``] (all ``us`` of one shape)."""
        L = len(self.blocks)
        shape = np.shape(us[0])
        u = np.stack([np.asarray(x, complex).ravel() for x in us])  # (L, n)
        n = u.shape[1]
        rows_all = np.repeat(np.arange(L), n)
        uf = u.ravel()
        kappa = np.full(uf.shape, np.nan + 0j)
        p = np.full(uf.shape, np.nan + 0j)
        done = ~np.isfinite(uf)
        real = ~done & (uf.imag == 0) & (uf.real < 1.0 / self.xmax[rows_all])
        done |= real
        # the previous call's columns at the same index
        if self.warm is not None and self.warm[0].shape == u.shape and not done.all():
            flat = np.flatnonzero(~done)
            u0, k0, p0 = (a.ravel()[flat] for a in self.warm)
            self._warm_newton(flat, rows_all[flat], uf[flat], u0, k0, p0, kappa, p, done)
        # the nearest remembered column
        memory = self._memory() if not done.all() else None
        if memory is not None:
            mu, mk, mp, tree = memory
            features = self._features(u)
            ask = np.all(np.isfinite(features), axis=1)
            if ask.any():
                nearest = np.zeros(n, int)
                nearest[ask] = tree.query(features[ask])[1]
                flat = np.flatnonzero(~done & np.tile(ask, L))
                rows, cols = rows_all[flat], nearest[flat % n]
                self._warm_newton(flat, rows, uf[flat], mu[rows, cols], mk[rows, cols], mp[rows, cols], kappa, p, done)
        # real u below the cut: each block's real branch
        if real.any():
            for j in np.unique(rows_all[real]):
                flat = np.flatnonzero(real & (rows_all == j))
                kappa[flat], p[flat] = self.blocks[j]._solve_real(uf[flat].real)
        # near u = 0: Newton from κ ≈ su, e ≈ u
        small = ~done & (np.abs(uf) * self.xmax[rows_all] < 0.05)
        if small.any():
            flat = np.flatnonzero(small)
            view = self.view(rows_all[flat])
            k0 = view.s * uf[flat]
            self._newton_valid(flat, rows_all[flat], uf[flat], k0, view._p_of(k0, uf[flat]), kappa, p, done)
        # the rest: the continuation along the ray of ResidualBlockS._continue
        if not done.all():
            flat = np.flatnonzero(~done)
            view = self.view(rows_all[flat])
            k1, p1, ok = view._continue(uf[flat])
            ok = view._valid(uf[flat], k1, p1, ok)
            kappa[flat], p[flat] = np.where(ok, k1, np.nan), np.where(ok, p1, np.nan)
        kappa2, p2 = kappa.reshape(L, n), p.reshape(L, n)
        self.warm = (u.copy(), kappa2.copy(), p2.copy())
        self.pending.append(self.warm)
        self.pending_columns += n
        while self.pending_columns - self.pending[0][0].shape[1] >= self.max_columns:
            self.pending_columns -= self.pending.pop(0)[0].shape[1]  # older than the kept ones: never looked up
        slope = self.view(rows_all)._slope(uf, kappa, p).reshape(L, n)
        return [(p2[j].reshape(shape), slope[j].reshape(shape)) for j in range(L)]

    def _warm_newton(self, flat: np.ndarray, rows: np.ndarray, ut: np.ndarray, u0: np.ndarray, k0: np.ndarray,
                     p0: np.ndarray, kappa: np.ndarray, p: np.ndarray, done: np.ndarray) -> None:
        """Warm starts (:meth:`ResidualBlockS._warm_start`) from solved (u₀, κ₀, p₀), then Newton where they reach."""
        view = self.view(rows)
        near, k0, p0 = view._warm_start(ut, u0, k0, p0)
        if near.any():
            self._newton_valid(flat[near], rows[near], ut[near], k0[near], p0[near], kappa, p, done)


#: remembered (block, point) solutions of a :class:`_StackState` (columns × blocks), newest first
_STACK_MEMORY = 300_000


def _stacked_newton_valid(blocks, pieces, steps):
    """Newton (``steps``) then the validity test for the points ``pieces[j] = (u, κ₀, e₀)`` of block j, all blocks in
    one array; returns [(κ, e, valid)] per block."""
    counts = [p[0].size for p in pieces]
    if sum(counts) == 0:
        return [(p[0], p[0], np.zeros(0, bool)) for p in pieces]
    view = _stack_view(blocks, counts)
    u, k0, e0 = (np.concatenate([p[i] for p in pieces]) for i in range(3))
    k1, e1, ok = view._newton(u, k0, e0, steps=steps)
    ok = view._valid(u, k1, e1, ok)
    cut = np.cumsum(counts)[:-1]
    return list(zip(np.split(k1, cut), np.split(e1, cut), np.split(ok, cut)))


def _stacked_one_plus_psi(blocks: Sequence[ResidualBlockS], us: Sequence[np.ndarray]) -> list[tuple[np.ndarray, np.ndarray]]:
    """:meth:`ResidualBlockS.one_plus_psi` of each block (one law of D², ensemble and tolerance) at its u, the
    stages of :meth:`ResidualBlockS._solve` run once over the points of all blocks (see
    :meth:`ResidualBlockS.one_plus_psi_many`)."""
    n = len(blocks)
    us = [np.asarray(u, complex) for u in us]
    kappas = [np.full(u.shape, np.nan + 0j) for u in us]
    es = [np.full(u.shape, np.nan + 0j) for u in us]
    dones, reals, sources = [], [], []
    for block, u in zip(blocks, us):
        done = ~np.isfinite(u)
        real = ~done & (u.imag == 0) & (u.real < 1.0 / block.xmax)
        dones.append(done | real)
        reals.append(real)
        sources.append((block._warm, block._memory()))
    # warm starts: the previous call's solution at the same index, then the nearest remembered point (the look-up
    # per block, the predictor of ResidualBlockS._warm_start over all blocks' points at once)
    empty = np.zeros(0, complex)
    for stage in range(2):
        found = [ResidualBlockS._warm_lookup(sources[j][stage], us[j], dones[j]) for j in range(n)]
        if all(f is None for f in found):
            continue
        counts = [0 if f is None else f[1].size for f in found]
        view = _stack_view(blocks, counts)
        ut, u0, k0, e0 = (np.concatenate([empty if f is None else f[i] for f in found]) for i in range(1, 5))
        near, k0, e0 = view._warm_start(ut, u0, k0, e0)
        cut = np.cumsum(counts)[:-1]
        pieces, targets = [], []
        for f, utj, nj, kj, ej in zip(found, np.split(ut, cut), np.split(near, cut), np.split(k0, cut), np.split(e0, cut)):
            if f is None:
                pieces.append((empty,) * 3)
                targets.append(None)
                continue
            pieces.append((utj[nj], kj[nj], ej[nj]))
            targets.append((f[0], nj))
        if not any(p[0].size for p in pieces):
            continue
        for j, (k1, e1, ok) in enumerate(_stacked_newton_valid(blocks, pieces, 12)):
            if targets[j] is None or not ok.size:
                continue
            todo, near = targets[j]
            idx = todo[np.flatnonzero(near)[ok]]
            kappas[j].flat[idx], es[j].flat[idx] = k1[ok], e1[ok]
            dones[j].flat[idx] = True
    for j, block in enumerate(blocks):
        if reals[j].any():
            k1, e1 = block._solve_real(us[j][reals[j]].real)
            kappas[j][reals[j]], es[j][reals[j]] = k1, e1
    # near u = 0: Newton from κ ≈ su, e ≈ u
    smalls = [~dones[j] & (np.abs(us[j]) * blocks[j].xmax < 0.05) for j in range(n)]
    counts = [int(m.sum()) for m in smalls]
    if sum(counts):
        u = np.concatenate([us[j][smalls[j]] for j in range(n)])
        view = _stack_view(blocks, counts)
        k0 = view.s * u
        p0 = view._p_of(k0, u)
        cut = np.cumsum(counts)[:-1]
        pieces = list(zip(np.split(u, cut), np.split(k0, cut), np.split(p0, cut)))
        for j, (k1, e1, ok) in enumerate(_stacked_newton_valid(blocks, pieces, 12)):
            idx = np.flatnonzero(smalls[j])[ok]
            kappas[j].flat[idx], es[j].flat[idx] = k1[ok], e1[ok]
            dones[j].flat[idx] = True
    # the rest: the continuation along the ray of ResidualBlockS._continue
    rest = [np.flatnonzero(~dones[j]) for j in range(n)]
    counts = [r.size for r in rest]
    if sum(counts):
        view = _stack_view(blocks, counts)
        u = np.concatenate([us[j].ravel()[rest[j]] for j in range(n)])
        k1, e1, ok = view._continue(u)
        ok = view._valid(u, k1, e1, ok)
        cut = np.cumsum(counts)[:-1]
        for j, k, e, good in zip(range(n), np.split(k1, cut), np.split(e1, cut), np.split(ok, cut)):
            kappas[j].flat[rest[j]] = np.where(good, k, np.nan)
            es[j].flat[rest[j]] = np.where(good, e, np.nan)
    for block, u, kappa, e in zip(blocks, us, kappas, es):
        keep = np.isfinite(kappa) & np.isfinite(e) & np.isfinite(u)
        if keep.all():
            block._warm = (u.copy(), kappa.copy(), e.copy(), None)
        block._remember(u[keep], kappa[keep], e[keep])
    # (1 + ψ, uψ') as in one_plus_psi, over all points at once
    counts = [u.size for u in us]
    view = _stack_view(blocks, counts)
    u, kappa, p = (np.concatenate([a.ravel() for a in arrays]) for arrays in (us, kappas, es))
    slope = view._slope(u, kappa, p)
    cut = np.cumsum(counts)[:-1]
    return [(pj.reshape(uj.shape), sj.reshape(uj.shape)) for pj, sj, uj in zip(np.split(p, cut), np.split(slope, cut), us)]


def _compose(a: Sequence[Any], b: Sequence[Any], n: int) -> list[Any]:
    """a(b(w)) truncated at order n (b(0) = 0), by Horner's rule."""
    out: list[Any] = [0] * (n + 1)
    for coefficient in reversed(list(a[: n + 1]) + [0] * max(0, n + 1 - len(a))):
        out = _series.multiply(out, b, n)
        out[0] += coefficient
    return out


# ============================================================================ the large-depth limit (§8.4)
class ResidualLimitS(RationalS):
    """S(w) = exp(−τ(1 + 2w)): the law of JJᵀ of a residual network as α → 0, L → ∞ with τ fixed (§8.4).

    Mean e^τ, second moment e^{2τ}(1 + 2τ); support [a, b] ⊂ (0, ∞) (no hard edge at 0). The series
    coefficients are e^{−τ}(−2τ)^k/k! in 60-digit arithmetic.
    """

    def __init__(self, tau: float) -> None:
        self.tau = check_real("tau", tau, low=0.0, low_inclusive=False)
        super().__init__(1.0, name=f"residual limit (τ={self.tau:g})")

    def log_s(self, w: np.ndarray, t: np.ndarray, scale: float = 1.0) -> tuple[np.ndarray, np.ndarray]:
        value = -self.tau * (1.0 + 2.0 * scale * w) + 0j
        return value, -2.0 * self.tau * scale * np.exp(t) + 0j

    def real_singularities(self) -> list[float]:
        return []

    def series(self, order: int) -> list[Any]:
        with mpmath.workdps(60):
            tau = mpmath.mpf(self.tau)
            base = mpmath.exp(-tau)
            return [base * (-2 * tau) ** k / mpmath.factorial(k) for k in range(order + 1)]


def residual_limit_law(tau: float) -> FreeProductLaw:
    """The large-depth law of JJᵀ for residual networks at fixed τ = Σ_l α_l² σ_w² E φ'(h_l)² (§8.4):
    S(w) = exp(−τ(1 + 2w)), the same for every activation (Tarnowski et al. 2019, arXiv 1809.08848).

    Mean e^τ, second moment e^{2τ}(1 + 2τ). Example: ``residual_limit_law(0.5).mean() == e^{0.5}``.
    """
    factor = ResidualLimitS(tau)
    return FreeProductLaw([Term(factor)], [], f"residual network limit, τ={factor.tau:g}")


# ============================================================================ mean field (§8.5)
@dataclass(frozen=True)
class ResidualMeanField:
    """Mean field of a residual network (Yang & Schoenholz 2017, NeurIPS; docs/derivations.md §8.5).

    ``q[l]`` = |x_l|²/N and ``p[l]`` = Σ_i x_{l,i}/N for l = 0…L; ``preactivation_variance[l−1]`` = the variance
    σ_w,l² q_{l−1} + σ_b² of h_l for the blocks l = 1…L; ``mu1[l−1]`` = E φ'(h_l)².
    """

    q: tuple[float, ...]
    p: tuple[float, ...]
    preactivation_variance: tuple[float, ...]
    mu1: tuple[float, ...]


def residual_mean_field(
    depth: int,
    activation: str | Activation,
    alpha: float | Sequence[float],
    sigma_w2: float | Sequence[float] = 1.0,
    sigma_b2: float = 0.0,
    q0: float = 1.0,
    p0: float = 0.0,
) -> ResidualMeanField:
    """Length and mean of the residual stream x_l = x_{l−1} + α_l φ(W_l x_{l−1} + b_l) (Yang & Schoenholz 2017):

        v_l = σ_w,l² q_{l−1} + σ_b²,   q_l = q_{l−1} + 2α_l p_{l−1} E φ(h) + α_l² E φ(h)²,   p_l = p_{l−1} + α_l E φ(h),

    h ~ N(0, v_l) (h_{l,i} is asymptotically independent of x_{l−1,i}; docs/derivations.md §8.5). ``q0``/``p0``: the
    input's |x_0|²/N and mean. Example: linear, α = 1, σ_w² = 1, σ_b² = 0: q_l = 2^l q0.
    """
    depth = check_int("depth", depth, minimum=1, maximum=10**6)
    act = get_activation(activation)
    alphas = residual_alphas(alpha, depth)
    variances = per_layer_values("sigma_w2", sigma_w2, depth)
    sigma_b2 = check_real("sigma_b2", sigma_b2, low=0.0)
    q = check_real("q0", q0, low=0.0)
    p = check_real("p0", p0)
    if p * p > q * (1 + 1e-12):
        raise ValueError(f"p0**2 must be <= q0 (the mean squared is at most the mean of squares); got p0={p0!r}, q0={q0!r}")
    qs, ps, vs, mus = [q], [p], [], []
    cache: dict[float, tuple[float, float, float]] = {}
    for a, sw2 in zip(alphas, variances):
        v = sw2 * q + sigma_b2
        if v not in cache:
            cache[v] = _gaussian_moments(act, v)
        m1, m2, mu1 = cache[v]
        q = q + 2.0 * a * p * m1 + a * a * m2
        p = p + a * m1
        qs.append(q)
        ps.append(p)
        vs.append(v)
        mus.append(mu1)
    return ResidualMeanField(tuple(qs), tuple(ps), tuple(vs), tuple(mus))


def _gaussian_moments(act: Activation, v: float) -> tuple[float, float, float]:
    """(E φ(h), E φ(h)², E φ'(h)²) for h ~ N(0, v)."""
    if v == 0.0:
        x = float(act.phi(0.0))
        return x, x * x, float(act.dphi(0.0)) ** 2
    m1 = gaussian_expectation(lambda x: act.phi(x), v, act.kinks)
    m2 = gaussian_expectation(lambda x: act.phi(x) ** 2, v, act.kinks)
    return m1, m2, derivative_moments(act, v, 1)


def residual_alphas(alpha: Any, depth: int) -> list[float]:
    """α as one finite real per block (a number or a sequence of ``depth`` numbers); α < 0 gives the law of |α|
    (W and −W have the same law), α = 0 an identity block."""
    if isinstance(alpha, (int, float, np.floating, np.integer)) and not isinstance(alpha, bool):
        values = [alpha] * depth
    elif isinstance(alpha, (str, bytes)) or not hasattr(alpha, "__iter__"):
        raise ValueError(f"residual must be a real number or a sequence of {depth} real numbers (one per block); got {alpha!r}")
    else:
        values = list(alpha)
        if len(values) != depth:
            raise ValueError(f"residual must be a number or have {depth} entries (one per block); got {len(values)}")
    return [check_real(f"residual[{i}]" if depth > 1 else "residual", a) for i, a in enumerate(values)]


def residual_depth_parameter(
    depth: int,
    activation: str | Activation,
    alpha: float | Sequence[float],
    sigma_w2: float | Sequence[float] = 1.0,
    sigma_b2: float = 0.0,
    q0: float = 1.0,
) -> float:
    """Tarnowski et al.'s single parameter τ = Σ_l α_l² σ_w,l² E φ'(h_l)², h_l ~ N(0, v_l) from the mean field
    (:func:`residual_mean_field`): as α → 0 with τ fixed the law of JJᵀ tends to S(w) = exp(−τ(1 + 2w))
    (:func:`residual_limit_law`) for every activation (docs/derivations.md §8.4). Constant α, linear: τ = α²σ_w²L;
    ReLU: α²σ_w²L/2.
    """
    depth = check_int("depth", depth, minimum=1, maximum=10**6)
    alphas = residual_alphas(alpha, depth)
    variances = per_layer_values("sigma_w2", sigma_w2, depth)
    mf = residual_mean_field(depth, activation, alphas, variances, sigma_b2, q0)
    return math.fsum(a * a * sw2 * mu for a, sw2, mu in zip(alphas, variances, mf.mu1))


# ============================================================================ laws
def residual_block_law(
    alpha: float, activation: str | Activation = "linear", sigma_w2: float = 1.0, q: float = 1.0, weights: str = "gaussian"
) -> FreeProductLaw:
    """The law of the squared singular values of one block's Jacobian I + αDW, D = diag φ'(h), h ~ N(0, q),
    W with entry variance σ_w²/N (docs/derivations.md §8.2–8.3). Mean 1 + α²σ_w² E φ'(h)²; linear Gaussian:
    second moment 1 + 4t + 2t², t = α²σ_w². For α ≠ 0 a depth-1 :class:`ResidualJacobianLaw` (edges from the block's
    κ-curve, §8.3); s = α²σ_w² E φ'(h)² > 1 gives a hard edge at 0 (§8.7(e))."""
    a = check_real("alpha", alpha)
    sw2 = check_real("sigma_w2", sigma_w2, low=0.0, low_inclusive=False)
    qv = check_real("q", q, low=0.0)
    if weights not in ("gaussian", "uniform", "orthogonal"):
        raise ValueError(f"weights must be one of 'gaussian', 'uniform', 'orthogonal'; got {weights!r}")
    act = get_activation(activation)
    if a == 0.0:
        return FreeProductLaw([Term(dirac_s(1.0))], [(1.0, 1.0)], "identity block")
    ensemble = "orthogonal" if weights == "orthogonal" else "gaussian"
    factor = ResidualBlockS(_d_squared_factor(act, qv), a * a * sw2, ensemble)
    # a ResidualJacobianLaw of depth 1, so that the edges come from the block's κ-curve (block_edges, §8.3): the
    # generic w-scan of FreeProductLaw finds no sign change of d log χ/dw at a single block's upper edge (the real
    # inverse of ψ ends there) and raised "the density does not vanish above the last edge"
    law = ResidualJacobianLaw([Term(factor)], list(factor.atoms), repr(factor))
    law.depth = 1
    law.activation = act
    law.ensemble = ensemble
    law.sigma_w2 = (sw2,)
    law.sigma_b2 = 0.0
    law.q_star = (qv,)
    law.widths = None
    law.residual = (a,)
    law.chi1 = 1.0 + factor.s * factor.d.mean
    return law


def residual_product(
    act: Activation, ensemble: str, variances: Sequence[float], alphas: Sequence[float], sigma_b2: float, q0: float
) -> tuple[FreeProductLaw, ResidualMeanField, list[float]]:
    """The law of JJᵀ, J = Π_l (I + α_l D_l W_l), with the per-block laws of D_l² from the mean field (§8.5);
    identical blocks are one factor raised to a power. Returns (law, mean field, per-block means)."""
    depth = len(alphas)
    mf = residual_mean_field(depth, act, alphas, variances, sigma_b2, q0)
    homogeneous = act.name in ("linear", "relu", "leaky_relu")  # the law of φ'(h)² does not depend on Var h > 0
    keys = []
    for a, sw2, v in zip(alphas, variances, mf.preactivation_variance):
        if a == 0.0:
            continue
        keys.append((a * a * sw2, 1.0 if (homogeneous and v > 0) else v))
    counts = Counter(keys)
    terms: list[Term] = []
    atoms: list[tuple[float, float]] | None = None
    d_cache: dict[float, Any] = {}
    for (s, v), k in counts.items():
        if v not in d_cache:
            d_cache[v] = _d_squared_factor(act, v)
        factor = ResidualBlockS(d_cache[v], s, ensemble)
        terms.append(Term(factor, 1, k))
        block_atoms = _power_atoms(list(factor.atoms), k) if factor.atoms else []
        atoms = block_atoms if atoms is None else _belinschi(atoms, block_atoms)
    if not terms:
        return FreeProductLaw([Term(dirac_s(1.0))], [(1.0, 1.0)], "identity"), mf, [1.0] * depth
    means = [1.0 + a * a * sw2 * mu for a, sw2, mu in zip(alphas, variances, mf.mu1)]
    return FreeProductLaw(terms, atoms or [], "residual blocks"), mf, means


# ============================================================================ the network law
class ResidualJacobianLaw(JacobianLaw):
    """A :class:`~rmt_init.theory.jacobian.JacobianLaw` of a residual network (``residual`` holds the α_l, ``q_star``
    the pre-activation variances of the blocks from the mean field, ``mean_field`` the whole
    :class:`ResidualMeanField`, ``chi1`` the geometric mean of the blocks' means). When all blocks are alike the support
    edges come from the κ-parametrised real branches of the block law (:func:`block_edges`), which also give the lower
    edge above 0 that the generic w-scan cannot reach (docs/derivations.md §8.3)."""

    residual: tuple[float, ...]
    mean_field: ResidualMeanField

    @property
    def is_critical(self) -> bool:
        """Residual networks have no order–chaos transition in this sense: False unless every α is 0."""
        return all(a == 0.0 for a in self.residual)

    def _critical_values(self) -> list[float]:
        edges = self._product_edges
        if edges is not None and edges[0] is not None and edges[1] is not None:
            return list(edges)
        if len(self.terms) == 1 and isinstance(self.terms[0].factor, ResidualBlockS) and self.terms[0].scale == 1:
            term = self.terms[0]
            edges = [v for v in block_edges(term.factor, term.power) if v > 0]
            if term.power == 1 and term.factor.d.mass_at_zero == 0.5:
                # P(d = 0) = 1/2 (ReLU): the atom at 1 of mass 2P(d = 0) − 1 is at its threshold, and the density has
                # a one-sided inverse square root there, ρ ≈ (1 − x)^{−1/2}/(2π), with a gap above (§8.3)
                edges.append(1.0)
            if not edges:
                return []
            # Near a hard edge at 0 the κ-curve leaves rounding noise (~1e−22 of the top edge): candidates below 1e−12
            # of the top edge are dropped — unless one block has a lower edge a₁ > 0, when the product's lower edge
            # is ≥ a₁^power (deep products reach 1e−115 of their top edge: ReLU, α = 0.5, depth 1000).
            block = [v for v in block_edges(term.factor, 1) if v > 0] if term.power > 1 else edges
            if len(block) > 1 and min(block) > 1e-12 * max(block):
                floor = term.power * math.log(min(block)) - 1e-9
                return [v for v in edges if math.log(v) >= floor]
            return [v for v in edges if v > 1e-12 * max(edges)]
        if edges is not None and edges[1] is not None and len(self.terms) > 1:
            return [edges[1]]  # the lower branch ends first (s·E d ≥ 1): the generic lower edge 0
        return list(super()._critical_values())

    @cached_property
    def _product_edges(self) -> tuple[float | None, float | None] | None:
        """(lower, upper) edge from :func:`product_edges` for a product of blocks (§8.8): of blocks that differ (tanh:
        the law of D² changes with the stream's variance) — the generic w-scan only reaches w > −1, i.e. the upper
        edge, and misses a lower edge above 0 — or of one block to a power ≥ 2, where the extrema of the κ-curve
        (:func:`block_edges`) include a spurious one below the lower edge (ReLU, α = 0.8, depth 3: 3.2e−4 besides
        the edge 0.0171; Monte Carlo λ_min ≈ 0.016–0.020 at N = 512–1024); or of one orthogonal block with d > 0
        (linear: the arcsine edges (α ∓ 1)² at the poles of Φ, §8.8, where the κ-curve is flat to rounding and left
        ~400 candidate edges). ``None`` for other laws (other single blocks, atoms, scaled terms)."""
        if not self.terms or self.atoms or not all(isinstance(t.factor, ResidualBlockS) and t.scale == 1 for t in self.terms):
            return None
        if sum(t.power for t in self.terms) < 2 and not (self.terms[0].factor._o == 1 and self.terms[0].factor.d.mass_at_zero == 0.0):
            return None  # one block: its κ-curve (block_edges), except orthogonal W with d > 0 (edges at poles of Φ, §8.8)
        return product_edges([(t.factor, t.power) for t in self.terms])

    @cached_property
    def _geometry(self) -> tuple[tuple[tuple[float, float], ...], tuple[float, float]]:
        """A single block with P(d = 0) = 1/2 (ReLU) and edges a < 1 < c < b: the intervals are (a, 1) and (c, b)
        (§8.3: the inverse square root at 1⁻, the gap (1, c) above it; Monte Carlo, N = 3000, α = 0.5: no eigenvalue
        in (1.0001, 1.001)), set without probing the gap, where the continuation of the free-product solver
        stalls next to the two singular points. A product of differing blocks with both edges from
        :func:`product_edges`: the interval [a, b]. Otherwise the generic search."""
        term = self.terms[0] if len(self.terms) == 1 else None
        if term is not None and isinstance(term.factor, ResidualBlockS) and term.power == 1 and term.scale == 1 and not self.atoms:
            if term.factor.d.mass_at_zero == 0.5:
                edges = [float(v) for v in self._singular_points if v > 0.0]
                if len(edges) == 4 and edges[0] < 1.0 == edges[1] < edges[2] < edges[3]:
                    a, _, c, b = edges
                    return ((a, 1.0), (c, b)), (a, b)
        edges = self._product_edges
        if edges is not None and edges[0] is not None and edges[1] is not None and not self.atoms:
            # both edges of a product of differing blocks (§8.8): z(w) is real and monotone on the real branches from
            # w = 0 up to the upper edge and from w = −1 down to the lower one, so no density lies outside [a, b];
            # the generic search would confirm it with three cold solves per interval (~18 s for tanh, depth 8)
            a, b = edges
            return ((a, b),), (a, b)
        return super()._geometry

    def _density(self, x: np.ndarray) -> np.ndarray:
        """The solver's density, set to 0 outside [a, b] when both edges come from :func:`product_edges`: below
        the lower edge the continuation can land on a non-physical root with −Im w > 0 (ReLU, α = 0.8, depth 3:
        ρ(1e−4) = 2.6 where no eigenvalue lies)."""
        out = super()._density(x)
        edges = self._product_edges
        if edges is not None and edges[0] is not None and edges[1] is not None:
            x = np.asarray(x, float)
            out = np.where((x >= edges[0]) & (x <= edges[1]), out, 0.0)
        return out

    # ------------------------------------------------------------------ fast cdf / quantiles (SoftEdgeTable)
    @cached_property
    def _soft_tables(self) -> list[SoftEdgeTable] | None:
        """One :class:`SoftEdgeTable` per interval when every interval has a lower edge above 0 and no atom inside
        (then the edges are soft, square-root ones); ``None`` otherwise (the generic tables of FreeProductLaw)."""
        intervals = self.intervals
        if not intervals or any(a <= 0.0 for a, _ in intervals):
            return None
        if any(a < loc < b for loc, _ in self.atoms for a, b in intervals):
            return None
        try:
            return [SoftEdgeTable(self._pdf_vectorised, a, b, self._inverse_sqrt_ends(a, b)) for a, b in intervals]
        except FloatingPointError:
            return None

    def _inverse_sqrt_ends(self, a: float, b: float) -> tuple[bool, bool]:
        """Which of the edges a, b are inverse-square-root ones: one orthogonal block (power 1) whose edge is the
        limit at the pole of Φ (:func:`_pole_limit`, where z is monotone up to the pole: linear blocks, the arcsine
        law, docs/derivations.md §8.8); every other edge of these laws is a square-root one."""
        if len(self.terms) != 1 or self.terms[0].power != 1 or self.terms[0].scale != 1:
            return (False, False)
        factor = self.terms[0].factor
        if not isinstance(factor, ResidualBlockS) or factor._o != 1:
            return (False, False)
        lower = _lower_branch(factor)
        return (lower is not None and a == _pole_limit(factor, lower), b == _pole_limit(factor, "upper"))

    @cached_property
    def _raw_cdf_tables(self) -> list[tuple[np.ndarray, np.ndarray, np.ndarray]]:
        tables = self._soft_tables
        if tables is None:
            return super()._raw_cdf_tables
        out = []
        for table in tables:
            nodes = table.x_of(np.linspace(0.0, math.pi, 65))
            nodes[0], nodes[-1] = table.a, table.b
            out.append((nodes, table.cdf(nodes), table.sf(nodes)))
        return out

    def _interval_cdf(self, i: int, x: np.ndarray) -> np.ndarray:
        tables = self._soft_tables
        return super()._interval_cdf(i, x) if tables is None else tables[i].cdf(x)

    def _interval_sf(self, i: int, x: np.ndarray) -> np.ndarray:
        tables = self._soft_tables
        return super()._interval_sf(i, x) if tables is None else tables[i].sf(x)

    def _invert_interval(self, i: int, local: np.ndarray, upper_tail: bool) -> np.ndarray:
        tables = self._soft_tables
        return super()._invert_interval(i, local, upper_tail) if tables is None else tables[i].invert(local, upper_tail)

    def _cdf_table(self, x: np.ndarray) -> np.ndarray:
        return super()._cdf_table(x) if self._soft_tables is None else self._cdf(x)

    def _sf_table(self, x: np.ndarray) -> np.ndarray:
        return super()._sf_table(x) if self._soft_tables is None else self._sf(x)

    def _ppf_table(self, q: np.ndarray) -> np.ndarray:
        return super()._ppf_table(q) if self._soft_tables is None else self._ppf(q)

    def _isf_table(self, p: np.ndarray) -> np.ndarray:
        return super()._isf_table(p) if self._soft_tables is None else self._isf(p)

    def _sample_uniform(self, u: np.ndarray) -> np.ndarray:
        return super()._sample_uniform(u) if self._soft_tables is None else self._ppf(u)

    def summary(self) -> dict[str, Any]:
        out = super().summary()
        out["residual"] = self.residual[0] if len(set(self.residual)) == 1 else self.residual
        return out


def residual_jacobian(
    depth: int,
    act: Activation,
    ensemble: str,
    variances: Sequence[float],
    sigma_b2: float,
    residual: Any,
    q0: float,
    description_extra: str = "",
):
    """The :class:`JacobianLaw` of J = Π_l (I + α_l D_l W_l) (called by :func:`~rmt_init.theory.jacobian.jacobian_spectrum`
    with ``residual=``)."""

    alphas = residual_alphas(residual, depth)
    law, mf, means = residual_product(act, ensemble, variances, alphas, sigma_b2, q0)
    alpha_text = f"{alphas[0]:g}" if len(set(alphas)) == 1 else "per block"
    sw_text = f"{variances[0]:g}" if len(set(variances)) == 1 else "per block"
    description = (
        f"Jacobian JJᵀ of a depth-{depth} residual {act.name} network (α={alpha_text}), {ensemble} weights, "
        f"σ_w²={sw_text}, σ_b²={sigma_b2:g}, q0={q0:g}"
    )
    result = ResidualJacobianLaw(law.terms, law.atoms, description)
    require_float_moments(result, "residual", residual)
    result.depth = depth
    result.activation = act
    result.ensemble = ensemble
    result.sigma_w2 = tuple(variances)
    result.sigma_b2 = sigma_b2
    result.q_star = tuple(mf.preactivation_variance)
    result.widths = None
    result.residual = tuple(alphas)
    result.mean_field = mf
    result.chi1 = math.exp(math.fsum(math.log(m) for m in means) / depth)
    return result
